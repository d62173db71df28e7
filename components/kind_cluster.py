"""KindCluster: a Kind cluster as a Pulumi resource (create, adopt, or an existing kubeconfig)."""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from typing import Any, Literal

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s
import yaml

from components._private.labels import TYPE_PREFIX
from components._private.validation import Problems
from floe_model.kind_config import KindConfig

ClusterMode = Literal["create", "adopt", "kubeconfig"]
_MODES = ("create", "adopt", "kubeconfig")


@dataclass(frozen=True, kw_only=True)
class KindClusterArgs:
    """Inputs of :class:`KindCluster`."""

    cluster_name: str
    """Kind cluster name (container names and the kubectl context ``kind-<name>`` derive from it)."""
    config: KindConfig
    """The rendered kind config (named, hash-labelled) that kind is given."""
    config_hash: str
    """Hash of the config and versions: an existing cluster is reused only when it matches."""
    node_image: str
    """Node image pinned by digest (versions.yaml ``kind.node_image``), or a local one (see below)."""
    node_image_local: bool = False
    """The node image was built on this machine (content-hash tag, never pulled): no digest needed."""
    mode: ClusterMode = "create"
    """``create`` (reuse a same-hash cluster), ``adopt`` (must already exist), ``kubeconfig`` (any cluster)."""
    kubeconfig: pulumi.Input[str] | None = None
    """Only for mode ``kubeconfig``: the cluster's kubeconfig (a secret)."""
    ready_timeout_seconds: int = 300
    """Bound on cluster creation and on all nodes becoming Ready."""
    reuse: bool = True
    """Reuse a running cluster whose config hash matches; ``False`` makes an existing one an error."""
    retain_on_destroy: bool | None = None
    """Keep the cluster on ``pulumi destroy``; default: keep adopted clusters, delete created ones."""


class KindCluster(pulumi.ComponentResource):
    """A Kind cluster; its kubeconfig is a secret and its provider deploys everything else."""

    cluster_name: pulumi.Output[str]
    """The kind cluster name."""
    kubeconfig: pulumi.Output[str]
    """Kubeconfig of the cluster (secret)."""
    node_names: pulumi.Output[list[str]]
    """Names of the cluster's nodes, all Ready when the component is done."""
    config_hash: pulumi.Output[str]
    """The config hash the cluster was created (or checked) with."""
    adopted: pulumi.Output[bool]
    """True when an existing cluster was reused rather than created."""
    provider: k8s.Provider
    """Kubernetes provider for everything deployed into this cluster."""

    def __init__(self, name: str, args: KindClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:KindCluster", name, None, opts)
        _validate(args)
        retain = args.retain_on_destroy if args.retain_on_destroy is not None else args.mode != "create"
        python = shlex.quote(sys.executable)
        ensure = (
            f"{python} -m components.cluster_steps ensure --name {shlex.quote(args.cluster_name)} "
            f"--hash {args.config_hash} --image {shlex.quote(args.node_image)} --mode {args.mode} "
            f"--timeout {args.ready_timeout_seconds}" + ("" if args.reuse else " --no-reuse")
        )
        delete = (
            None if retain else f"{python} -m components.cluster_steps delete --name {shlex.quote(args.cluster_name)}"
        )
        payload: pulumi.Output[str] = pulumi.Output.all(args.kubeconfig).apply(
            lambda kc: json.dumps(
                {"config": yaml.safe_dump(args.config.data, sort_keys=False), "kubeconfig": kc[0] or ""}
            )
        )
        lifecycle = command.local.Command(
            f"{name}-lifecycle",
            create=ensure,
            delete=delete,
            # stdout carries the kubeconfig: captured as a secret output, never logged.
            logging=command.local.Logging.STDERR,
            stdin=_secret(payload) if args.kubeconfig is not None else payload,
            triggers=[args.config_hash, args.cluster_name, args.node_image, args.mode],
            opts=pulumi.ResourceOptions(
                parent=self,
                additional_secret_outputs=["stdout"],
                custom_timeouts=pulumi.CustomTimeouts(create=f"{args.ready_timeout_seconds * 2 + 300}s", delete="10m"),
            ),
        )
        result: pulumi.Output[dict[str, Any]] = lifecycle.stdout.apply(_parse_result)
        self.cluster_name = pulumi.Output.from_input(args.cluster_name)
        self.kubeconfig = pulumi.Output.secret(result.apply(lambda r: str(r["kubeconfig"])))
        self.node_names = pulumi.Output.unsecret(result.apply(lambda r: [str(n) for n in r["nodes"]]))
        self.adopted = pulumi.Output.unsecret(result.apply(lambda r: bool(r["adopted"])))
        self.config_hash = pulumi.Output.from_input(args.config_hash)
        self.provider = k8s.Provider(
            f"{name}-provider",
            kubeconfig=self.kubeconfig,
            context=f"kind-{args.cluster_name}" if args.mode != "kubeconfig" else None,
            # A cluster this stack created goes with the stack: when it no longer answers (deleted,
            # stopped), what lived in it is dropped from the state instead of hanging the destroy. A
            # cluster that outlives the stack (adopt, kubeconfig) is never given up on this way.
            delete_unreachable=True if not retain else None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs(
            {
                "cluster_name": self.cluster_name,
                "kubeconfig": self.kubeconfig,
                "node_names": self.node_names,
                "config_hash": self.config_hash,
                "adopted": self.adopted,
            }
        )


def _secret(value: pulumi.Output[str]) -> pulumi.Output[str]:
    secret: pulumi.Output[str] = pulumi.Output.secret(value)
    return secret


def _parse_result(stdout: str) -> dict[str, Any]:
    """The JSON document ``kindctl ensure`` prints (its last line; earlier lines are never expected)."""
    lines = [line for line in (stdout or "").splitlines() if line.strip()]
    if not lines:
        return {"kubeconfig": "", "nodes": [], "adopted": False}
    parsed: dict[str, Any] = json.loads(lines[-1])
    return parsed


def _validate(args: KindClusterArgs) -> None:
    problems = Problems("KindCluster")
    problems.dns_label("cluster_name", args.cluster_name, max_len=40)
    if args.mode not in _MODES:
        problems.add("mode", f"must be one of {', '.join(_MODES)}, got {args.mode!r}")
    if args.mode == "kubeconfig" and args.kubeconfig is None:
        problems.add("kubeconfig", "mode 'kubeconfig' needs a kubeconfig (set the secret floe-testinfra:kubeconfig)")
    if args.mode != "kubeconfig" and args.kubeconfig is not None:
        problems.add("kubeconfig", f"is only used with mode 'kubeconfig', not {args.mode!r}")
    if "@sha256:" not in args.node_image and not args.node_image_local:
        problems.add("node_image", f"{args.node_image!r} must be pinned by digest (IMAGE:TAG@sha256:...)")
    problems.positive("ready_timeout_seconds", args.ready_timeout_seconds, maximum=3600)
    if args.config.data.get("name") != args.cluster_name:
        problems.add(
            "config", f"the rendered config names cluster {args.config.data.get('name')!r}, not {args.cluster_name!r}"
        )
    problems.raise_if_any()
