"""Which kind clusters are this checkout's to delete: a marker set at creation, checked before deleting.

Every node of a cluster a stack creates carries labels from the rendered kind config (kind passes
them to the kubelet, so they exist from the node's first registration):

    floe.dev/managed-by=floe-testinfra
    floe.dev/owner=<hash of this machine's name and this checkout's path>
    floe.dev/stack=<stack>

``floe-test cleanup`` deletes a cluster only when its nodes carry this checkout's owner label, read
from the API server, or, when that does not answer (a half-created cluster), from the kubeadm config
kind wrote into the control-plane container. A cluster with the same name but no marker, another
checkout's cluster, or one whose marker cannot be read is skipped, and the reason is printed.
A name alone never decides.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from floe_model.paths import REPO_ROOT

#: Not app.kubernetes.io/managed-by: the kubelet refuses --node-labels in the kubernetes.io namespace.
MANAGED_BY_LABEL = "floe.dev/managed-by"
MANAGED_BY = "floe-testinfra"
OWNER_LABEL = "floe.dev/owner"
STACK_LABEL = "floe.dev/stack"
MARKER_KEYS = (MANAGED_BY_LABEL, OWNER_LABEL, STACK_LABEL)


def owner_id(root: Path = REPO_ROOT, host: str | None = None) -> str:
    """This checkout on this machine, as a label value (the same checkout always gets the same id)."""
    text = f"{host or socket.gethostname()}:{root.resolve()}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def marker_labels(stack: str) -> dict[str, str]:
    return {MANAGED_BY_LABEL: MANAGED_BY, OWNER_LABEL: owner_id(), STACK_LABEL: stack}


@dataclass(frozen=True)
class Verdict:
    """Whether a cluster may be deleted by this checkout, and why (printed either way)."""

    cluster: str
    ours: bool
    reason: str
    stack: str = ""


def labels_from_api(cluster: str) -> dict[str, str] | None:
    """The control-plane node's labels, from the API server (``None`` when it does not answer)."""
    from components.cluster_steps import kind_kubeconfig, node_states

    try:
        states = node_states(kind_kubeconfig(cluster))
    except Exception:
        return None
    control = [s for name, s in sorted(states.items()) if "control-plane" in name] or list(states.values())
    return dict(control[0]["labels"]) if control else None


_NODE_LABELS = re.compile(r"node-labels:\s*\"?([^\"\n]*)")


def labels_from_container(cluster: str) -> dict[str, str] | None:
    """The node labels kind wrote into the kubeadm config of the control-plane container."""
    from floe_model.proc import run

    try:
        proc = run(
            ["docker", "exec", f"{cluster}-control-plane", "cat", "/kind/kubeadm.conf"],
            timeout=30,
            what=f"reading the kubeadm config of kind cluster {cluster}",
            check=False,
        )
    except Exception:
        return None
    if proc.returncode != 0:
        return None
    return node_labels_of(proc.stdout)


def node_labels_of(kubeadm_config: str) -> dict[str, str]:
    """The ``node-labels`` kubelet argument(s) of a kubeadm config, as a dict."""
    labels: dict[str, str] = {}
    for found in _NODE_LABELS.finditer(kubeadm_config):
        for pair in found.group(1).split(","):
            key, sep, value = pair.strip().partition("=")
            if sep:
                labels[key] = value
    return labels


def judge(
    cluster: str,
    *,
    from_api: Callable[[str], dict[str, str] | None] = labels_from_api,
    from_container: Callable[[str], dict[str, str] | None] = labels_from_container,
    owner: str | None = None,
) -> Verdict:
    labels = from_api(cluster)
    if labels is None:
        labels = from_container(cluster)
    if labels is None:
        return Verdict(
            cluster,
            False,
            "its marker cannot be read (API server and control-plane container unreachable); if it is "
            f"yours, delete it by hand: kind delete cluster --name {cluster}",
        )
    stack = labels.get(STACK_LABEL, "")
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY or OWNER_LABEL not in labels:
        return Verdict(cluster, False, f"not created by floe-testinfra (its nodes lack {OWNER_LABEL})", stack)
    mine = owner or owner_id()
    if labels[OWNER_LABEL] != mine:
        return Verdict(
            cluster,
            False,
            f"created by floe-testinfra from another checkout or machine ({OWNER_LABEL}={labels[OWNER_LABEL]}, "
            f"this checkout's is {mine})",
            stack,
        )
    return Verdict(cluster, True, f"created by this checkout ({OWNER_LABEL}={mine})", stack)
