"""Kind cluster configs: strict validation against kind's v1alpha4 API, the final rendered config,
and the config hash that keys cluster reuse.

kind itself decodes configs strictly (unknown fields are errors), so we do the same before anything
is created, naming the file and the field. The field lists mirror kind's
``pkg/apis/config/v1alpha4/types.go`` for kind v0.30.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floe_model.paths import display
from floe_model.yamlfile import load_mapping
from testing.errors import ConfigError, ConfigProblem

API_VERSION = "kind.x-k8s.io/v1alpha4"
#: Node label carrying the config hash, so an existing cluster can be checked before reuse.
CONFIG_HASH_LABEL = "floe.dev/config-hash"

_CLUSTER_FIELDS = {
    "kind",
    "apiVersion",
    "name",
    "nodes",
    "networking",
    "featureGates",
    "runtimeConfig",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
    "containerdConfigPatches",
    "containerdConfigPatchesJSON6902",
}
_NODE_FIELDS = {
    "role",
    "image",
    "labels",
    "extraMounts",
    "extraPortMappings",
    "kubeadmConfigPatches",
    "kubeadmConfigPatchesJSON6902",
}
_NETWORKING_FIELDS = {
    "ipFamily",
    "apiServerPort",
    "apiServerAddress",
    "podSubnet",
    "serviceSubnet",
    "disableDefaultCNI",
    "kubeProxyMode",
    "dnsSearch",
}
_MOUNT_FIELDS = {"hostPath", "containerPath", "readOnly", "selinuxRelabel", "propagation"}
_PORT_FIELDS = {"containerPort", "hostPort", "listenAddress", "protocol"}
_ROLES = {"control-plane", "worker"}
_PROTOCOLS = {"TCP", "UDP", "SCTP"}
_PROPAGATION = {"None", "HostToContainer", "Bidirectional"}


@dataclass(frozen=True)
class KindConfig:
    """A validated kind config and what the stack needs to know about it."""

    source: str
    data: dict[str, Any]

    @property
    def control_planes(self) -> int:
        return sum(1 for n in self.data["nodes"] if n["role"] == "control-plane")

    @property
    def workers(self) -> int:
        return sum(1 for n in self.data["nodes"] if n["role"] == "worker")

    @property
    def node_names(self) -> list[str]:
        """Container (and Kubernetes node) names kind gives the nodes of cluster ``name``."""
        name = self.data.get("name", "kind")
        names = []
        cp = wk = 0
        for node in self.data["nodes"]:
            if node["role"] == "control-plane":
                cp += 1
                names.append(f"{name}-control-plane" + ("" if cp == 1 else str(cp)))
            else:
                wk += 1
                names.append(f"{name}-worker" + ("" if wk == 1 else str(wk)))
        return names


def load_kind_config(path: Path) -> KindConfig:
    source = display(path)
    data = load_mapping(path)
    validate_kind_config(data, source)
    return KindConfig(source, data)


def validate_kind_config(data: Mapping[str, Any], source: str) -> None:
    problems: list[ConfigProblem] = []

    def bad(field: str, problem: str) -> None:
        problems.append(ConfigProblem(source, field, problem))

    def unknown(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
        for key in obj:
            if key not in allowed:
                bad(f"{where}{key}", f"unknown field (kind {API_VERSION} accepts: {', '.join(sorted(allowed))})")

    if data.get("kind") != "Cluster":
        bad("kind", f"must be 'Cluster', found {data.get('kind')!r}")
    if data.get("apiVersion") != API_VERSION:
        bad("apiVersion", f"must be {API_VERSION!r}, found {data.get('apiVersion')!r}")
    unknown(data, _CLUSTER_FIELDS, "")
    networking = data.get("networking", {})
    if not isinstance(networking, Mapping):
        bad("networking", "must be a mapping")
    else:
        unknown(networking, _NETWORKING_FIELDS, "networking.")
    for field in ("kubeadmConfigPatches", "containerdConfigPatches"):
        patches = data.get(field, [])
        if not isinstance(patches, list) or not all(isinstance(p, str) for p in patches):
            bad(field, "must be a list of strings (each one a YAML/TOML patch)")
    nodes = data.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        bad("nodes", "must list at least one node")
        nodes = []
    for i, node in enumerate(nodes):
        where = f"nodes[{i}]."
        if not isinstance(node, Mapping):
            bad(f"nodes[{i}]", "must be a mapping")
            continue
        unknown(node, _NODE_FIELDS, where)
        if node.get("role") not in _ROLES:
            bad(f"{where}role", f"must be one of control-plane, worker; found {node.get('role')!r}")
        labels = node.get("labels", {})
        if not isinstance(labels, Mapping) or not all(isinstance(v, str) for v in labels.values()):
            bad(f"{where}labels", "must map label names to string values (quote 'true')")
        else:
            for key in labels:
                if not kubelet_accepts_label(str(key)):
                    bad(
                        f"{where}labels.{key}",
                        "the kubelet refuses node labels in the kubernetes.io and k8s.io namespaces (kind passes "
                        "them as --node-labels) except node.kubernetes.io/*, kubelet.kubernetes.io/* and a few "
                        "well-known ones; use your own prefix",
                    )
        _check_list(node.get("extraMounts", []), _MOUNT_FIELDS, f"{where}extraMounts", bad, _check_mount)
        _check_list(node.get("extraPortMappings", []), _PORT_FIELDS, f"{where}extraPortMappings", bad, _check_port)
    if nodes and not any(isinstance(n, Mapping) and n.get("role") == "control-plane" for n in nodes):
        bad("nodes", "must have at least one control-plane node")
    host_ports = [
        (p.get("listenAddress", "0.0.0.0"), p.get("hostPort"), p.get("protocol", "TCP"))
        for n in nodes
        if isinstance(n, Mapping)
        for p in n.get("extraPortMappings", []) or []
        if isinstance(p, Mapping) and p.get("hostPort")
    ]
    for dup in sorted({hp for hp in host_ports if host_ports.count(hp) > 1}, key=str):
        bad("nodes[].extraPortMappings", f"host port {dup[1]}/{dup[2]} on {dup[0]} is mapped twice")
    if problems:
        raise ConfigError(problems)


#: What kubelet --node-labels accepts in the kubernetes.io / k8s.io namespaces (kubelet's own list).
_KUBELET_LABEL_PREFIXES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")
_KUBELET_LABELS = {
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "beta.kubernetes.io/os",
    "failure-domain.beta.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "kubernetes.io/arch",
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/region",
    "topology.kubernetes.io/zone",
}


def kubelet_accepts_label(key: str) -> bool:
    """Whether the kubelet accepts ``key`` in --node-labels (a node then never registers, otherwise)."""
    domain = key.split("/", 1)[0] if "/" in key else ""
    restricted = domain in {"kubernetes.io", "k8s.io"} or domain.endswith((".kubernetes.io", ".k8s.io"))
    return not restricted or key in _KUBELET_LABELS or key.startswith(_KUBELET_LABEL_PREFIXES)


def _check_list(items: Any, allowed: set[str], where: str, bad: Any, check_item: Any) -> None:
    if not isinstance(items, list):
        bad(where, "must be a list")
        return
    for j, item in enumerate(items):
        if not isinstance(item, Mapping):
            bad(f"{where}[{j}]", "must be a mapping")
            continue
        for key in item:
            if key not in allowed:
                bad(f"{where}[{j}].{key}", f"unknown field (accepts: {', '.join(sorted(allowed))})")
        check_item(item, f"{where}[{j}]", bad)


def _check_mount(mount: Mapping[str, Any], where: str, bad: Any) -> None:
    for key in ("hostPath", "containerPath"):
        if not isinstance(mount.get(key), str) or not mount.get(key):
            bad(f"{where}.{key}", "required path is missing")
    if "propagation" in mount and mount["propagation"] not in _PROPAGATION:
        bad(f"{where}.propagation", f"must be one of {', '.join(sorted(_PROPAGATION))}")


def _check_port(port: Mapping[str, Any], where: str, bad: Any) -> None:
    for key in ("containerPort", "hostPort"):
        value = port.get(key)
        required = key == "containerPort" or value is not None
        if required and (not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 65535):
            bad(f"{where}.{key}", f"must be a port number 0-65535, found {value!r}")
    if port.get("protocol", "TCP") not in _PROTOCOLS:
        bad(f"{where}.protocol", f"must be one of {', '.join(sorted(_PROTOCOLS))}")


def render_kind_config(
    base: KindConfig,
    *,
    cluster_name: str,
    expose_ports: bool = True,
    extra_mounts: Sequence[Mapping[str, Any]] = (),
    containerd_patches: Sequence[str] = (),
) -> KindConfig:
    """The config kind will actually get: named, with stack options applied and the hash labelled.

    The hash covers everything else in the config; it is added to every node as a label afterwards
    so an existing cluster can be compared with what this stack would create.
    """
    data = copy.deepcopy(base.data)
    data["name"] = cluster_name
    for node in data["nodes"]:
        if not expose_ports:
            node.pop("extraPortMappings", None)
        if extra_mounts:
            node.setdefault("extraMounts", []).extend(dict(m) for m in extra_mounts)
    if containerd_patches:
        data.setdefault("containerdConfigPatches", []).extend(containerd_patches)
    validate_kind_config(data, f"{base.source} (rendered for cluster {cluster_name})")
    return KindConfig(base.source, data)


def config_hash(config: KindConfig, *, kind_version: str, node_image: str) -> str:
    """Short hash of the config (without the hash and marker labels) and the versions that make the cluster.

    The marker (``components.cluster_marker``: who created the cluster) is left out, so the same config
    has the same hash from any checkout.
    """
    from components.cluster_marker import MARKER_KEYS

    data = copy.deepcopy(config.data)
    for node in data["nodes"]:
        for key in (CONFIG_HASH_LABEL, *MARKER_KEYS):
            (node.get("labels") or {}).pop(key, None)
    payload = json.dumps({"config": data, "kind": kind_version, "image": node_image}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def with_hash_label(config: KindConfig, digest: str, marker: Mapping[str, str] | None = None) -> KindConfig:
    """The config with the hash label (and the creator's marker labels) on every node."""
    data = copy.deepcopy(config.data)
    for node in data["nodes"]:
        labels = node.setdefault("labels", {})
        labels.update(marker or {})
        labels[CONFIG_HASH_LABEL] = digest
    return KindConfig(config.source, data)


def unpinned_node_images(config: KindConfig, *, allowed: Sequence[str] = ()) -> list[str]:
    """``nodes[i].image: ...`` problems: a per-node image overrides the stack's node image, so a
    registry image there must carry a digest too (``allowed``: images built on this machine)."""
    problems = []
    for i, node in enumerate(config.data["nodes"]):
        image = node.get("image")
        if image is not None and "@sha256:" not in str(image) and image not in allowed:
            problems.append(f"nodes[{i}].image: {image!r} must be pinned by digest (IMAGE:TAG@sha256:...)")
    return problems
