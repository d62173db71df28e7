"""Checks a run makes before anything exists: its own arguments, and whether the cluster can fence the runner.

Every check raises one :class:`~testing.errors.ConfigError` / :class:`~testing.errors.PrerequisiteError`
naming the culprit; ``floe-test run`` then exits 2 with nothing created (no stack, no cluster, no files).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from components.runner_sandbox import MIN_POLICY_KUBERNETES
from testing.errors import ConfigError, ConfigProblem, PrerequisiteError

_RUN_ID = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
_VERSION = re.compile(r"v?(\d+)\.(\d+)(?:\.(\d+))?")
POLICY_GROUP = "admissionregistration.k8s.io/v1"


def check_run_id(run_id: str, *, option: str = "--run-id") -> None:
    """A run id becomes a namespace name and a label value: lower-case DNS label, ≤ 32 characters."""
    if not _RUN_ID.match(run_id):
        raise ConfigError(
            [
                ConfigProblem(
                    option,
                    run_id or "''",
                    "must be lower-case letters, digits and '-', start and end alphanumeric, at most 32 "
                    "characters (it names the run's namespace and labels)",
                )
            ]
        )


def check_out_dir(out: Path, *, option: str = "--out") -> None:
    """``out`` must be a folder (or not exist yet) under a folder this user can write."""
    if out.exists() and not out.is_dir():
        raise ConfigError([ConfigProblem(option, str(out), "is a file, not a folder; name a folder for the results")])
    parent = next((p for p in [out, *out.parents] if p.exists()), None)
    if parent is None or not parent.is_dir():
        raise ConfigError([ConfigProblem(option, str(out), f"cannot be created: {parent} is not a folder")])
    import os

    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError([ConfigProblem(option, str(out), f"cannot be created: {parent} is not writable")])


def parse_version(text: str) -> tuple[int, int] | None:
    found = _VERSION.search(text or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def node_image_version(node_image: str, pinned_kubernetes: str, *, local: bool) -> tuple[int, int]:
    """The Kubernetes version a node image runs: the pin for the pinned or locally built image, else
    the image's tag (kindest/node:vX.Y.Z)."""
    if local:
        version = parse_version(pinned_kubernetes)
    else:
        tag = node_image.split("@", 1)[0].rsplit(":", 1)[-1] if ":" in node_image.split("@", 1)[0] else ""
        version = parse_version(tag) if tag.startswith("v") else None
    if version is None:
        raise ConfigError(
            [
                ConfigProblem(
                    "nodeImage",
                    node_image,
                    "cannot tell which Kubernetes version this node image runs: tag it vMAJOR.MINOR.PATCH "
                    "(the runner's admission fence needs Kubernetes ≥ "
                    f"{MIN_POLICY_KUBERNETES[0]}.{MIN_POLICY_KUBERNETES[1]})",
                )
            ]
        )
    return version


def require_policy_support(version: tuple[int, int], where: str, *, served: bool | None = True) -> None:
    """Refuse to run unprotected: the runner's fence is a ValidatingAdmissionPolicy (v1 since 1.30)."""
    major, minor = MIN_POLICY_KUBERNETES
    if version < MIN_POLICY_KUBERNETES:
        raise PrerequisiteError(
            f"{where} runs Kubernetes {version[0]}.{version[1]}; the test runner's admission fence "
            f"(ValidatingAdmissionPolicy, {POLICY_GROUP}) needs ≥ {major}.{minor}: refusing to run unprotected. "
            "Use a newer cluster (or clusterMode create with the pinned node image)"
        )
    if served is False:
        raise PrerequisiteError(
            f"{where} does not serve validatingadmissionpolicies in {POLICY_GROUP} (disabled?): the test "
            "runner's admission fence cannot be created; refusing to run unprotected"
        )


def server_policy_support(api_client: Any) -> tuple[tuple[int, int], bool]:
    """(server version, whether it serves ValidatingAdmissionPolicy v1), asked of the API server."""
    from kubernetes import client as k8s

    info = k8s.VersionApi(api_client).get_code(_request_timeout=(5.0, 20.0))
    version = (int(re.sub(r"\D", "", info.major) or 0), int(re.sub(r"\D", "", info.minor) or 0))
    try:
        resources = k8s.AdmissionregistrationV1Api(api_client).get_api_resources(_request_timeout=(5.0, 20.0))
    except Exception:
        return version, False
    served = any(r.name == "validatingadmissionpolicies" for r in resources.resources or [])
    return version, served


def check_cluster_policy_support(kubeconfig: str, context: str | None, where: str) -> None:
    import yaml
    from kubernetes import config

    try:
        api_client = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
            yaml.safe_load(kubeconfig), context=context or None
        )
        version, served = server_policy_support(api_client)
    except Exception as exc:
        raise PrerequisiteError(
            f"{where}: could not ask the API server for its version ({type(exc).__name__}: {exc}); "
            "is the cluster running and the kubeconfig right?"
        ) from None
    require_policy_support(version, where, served=served)


def check_fence_possible(
    settings: Any,
    plan: Any,
    *,
    kind_kubeconfig: Callable[[str], str] | None = None,
    stack_kubeconfig: Callable[[], str | None] | None = None,
) -> None:
    """Whether the cluster this run uses can fence the runner; raises before anything is created."""
    mode = settings.cluster_mode
    if mode == "create":
        version = node_image_version(plan.node_image, plan.versions.kubernetes, local=settings.node_image == "local")
        require_policy_support(version, f"node image {plan.node_image}")
        return
    if mode == "adopt":
        from components.cluster_steps import existing_clusters
        from components.cluster_steps import kind_kubeconfig as read_kind

        if kind_kubeconfig is None and settings.cluster_name not in existing_clusters():
            raise PrerequisiteError(
                f"clusterMode adopt but kind cluster {settings.cluster_name} does not exist; create it first "
                "(CI: helm/kind-action with the rendered kind config) or use clusterMode create"
            )
        kubeconfig = (kind_kubeconfig or read_kind)(settings.cluster_name)
        check_cluster_policy_support(
            kubeconfig, f"kind-{settings.cluster_name}", f"kind cluster {settings.cluster_name}"
        )
        return
    given = stack_kubeconfig() if stack_kubeconfig is not None else None
    if not given:
        raise ConfigError(
            [
                ConfigProblem(
                    f"Pulumi.{settings.stack}.yaml",
                    "floe-testinfra:kubeconfig",
                    "clusterMode kubeconfig needs the secret kubeconfig of the cluster: "
                    f"`pulumi config set --secret floe-testinfra:kubeconfig -s {settings.stack} < KUBECONFIG`",
                )
            ]
        )
    check_cluster_policy_support(given, None, "the cluster of floe-testinfra:kubeconfig")
