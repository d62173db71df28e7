"""Cluster lifecycle steps run by the KindCluster component (through pulumi-command).

``ensure`` creates the cluster, or adopts an existing one whose config hash matches, then waits
(bounded) for every node to be Ready and prints one JSON document on stdout:
``{"kubeconfig": ..., "nodes": [...], "adopted": bool, "config_hash": ...}``. Progress goes to stderr.
``delete`` removes a cluster this stack created; it is idempotent.

Input on stdin (JSON): ``{"config": <rendered kind config YAML>, "kubeconfig": <only for mode kubeconfig>}``
so neither the config nor a kubeconfig ever appears on a command line.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import yaml

from floe_model.kind_config import CONFIG_HASH_LABEL
from floe_model.paths import STATE_DIR, display
from floe_model.proc import docker_running, run
from testing.errors import ConfigError, InfraError, PrerequisiteError
from testing.polling import Check, wait_for_condition


def log(message: str) -> None:
    print(f"[kind-cluster] {message}", file=sys.stderr, flush=True)


def existing_clusters() -> list[str]:
    out = run(["kind", "get", "clusters"], timeout=60, what="listing kind clusters").stdout
    return [line.strip() for line in out.splitlines() if line.strip()]


def kind_kubeconfig(name: str) -> str:
    return run(
        ["kind", "get", "kubeconfig", "--name", name], timeout=60, what=f"reading the kubeconfig of kind cluster {name}"
    ).stdout


def _core_api(kubeconfig: str) -> Any:
    from kubernetes import client, config

    api_client = config.new_client_from_config_dict(yaml.safe_load(kubeconfig))  # type: ignore[no-untyped-call]
    return client.CoreV1Api(api_client)


def node_states(kubeconfig: str) -> dict[str, dict[str, Any]]:
    nodes = _core_api(kubeconfig).list_node(_request_timeout=20).items
    states = {}
    for node in nodes:
        ready = next((c.status for c in node.status.conditions or [] if c.type == "Ready"), "Unknown")
        states[node.metadata.name] = {"ready": ready == "True", "labels": node.metadata.labels or {}}
    return states


def wait_nodes_ready(kubeconfig: str, *, expected: int, timeout: float, cluster: str) -> list[str]:
    def check() -> Check[dict[str, bool]]:
        states = {name: s["ready"] for name, s in node_states(kubeconfig).items()}
        return Check(len(states) >= expected and all(states.values()), states)

    log(f"Waiting ≤ {timeout:.0f}s for {expected} node(s) of cluster {cluster} to be Ready")
    states = wait_for_condition(
        check,
        timeout=timeout,
        interval=2,
        description=f"all {expected} nodes of kind cluster {cluster} Ready",
        hint=f"inspect with `kubectl --context kind-{cluster} describe nodes`; on small machines raise "
        "readyTimeout in the stack config",
    )
    return sorted(states or {})


def cluster_hash(kubeconfig: str) -> set[str]:
    return {s["labels"].get(CONFIG_HASH_LABEL, "<none>") for s in node_states(kubeconfig).values()}


def ensure(args: argparse.Namespace, payload: dict[str, Any]) -> dict[str, Any]:
    config_yaml = payload.get("config", "")
    config = yaml.safe_load(config_yaml) if config_yaml else {}
    expected_nodes = len(config.get("nodes", [])) or 1
    if args.mode == "kubeconfig":
        kubeconfig = payload.get("kubeconfig") or ""
        if not kubeconfig:
            raise ConfigError("clusterMode kubeconfig needs the secret config value floe-testinfra:kubeconfig")
        nodes = wait_nodes_ready(kubeconfig, expected=1, timeout=args.timeout, cluster=args.name)
        return {"kubeconfig": kubeconfig, "nodes": nodes, "adopted": True, "config_hash": args.hash}
    reason = docker_running()
    if reason:
        raise PrerequisiteError(reason)
    adopted = args.name in existing_clusters()
    if adopted and args.mode == "create" and not getattr(args, "reuse", True):
        raise InfraError(
            f"kind cluster {args.name} already exists and reuse was not asked for; reuse it "
            "(`floe-test run --reuse`, as `make test-k8s` does) or delete it "
            f"(`kind delete cluster --name {args.name}`)"
        )
    if adopted:
        kubeconfig = kind_kubeconfig(args.name)
        found = cluster_hash(kubeconfig)
        if found != {args.hash}:
            raise InfraError(
                f"kind cluster {args.name} already exists but was made from a different config "
                f"(its config hash {', '.join(sorted(found))}, this stack's {args.hash}); it is not reused. "
                f"Delete it (`kind delete cluster --name {args.name}` or `make test-k8s-cleanup`) "
                "or set another clusterName in the stack config"
            )
        log(f"Reusing kind cluster {args.name} (config hash {args.hash} matches)")
    elif args.mode == "adopt":
        raise InfraError(
            f"clusterMode is adopt but kind cluster {args.name} does not exist; "
            "create it first (CI: helm/kind-action with the rendered kind config) or use mode create"
        )
    else:
        with tempfile.TemporaryDirectory(prefix="floe-kind-") as tmp:
            path = Path(tmp) / "kind-config.yaml"
            path.write_text(config_yaml, encoding="utf-8")
            log(
                f"Creating kind cluster {args.name} ({expected_nodes} node(s), image {args.image}); "
                f"waiting ≤ {args.timeout:.0f}s"
            )
            create_cluster(args.name, path, args.image, timeout=args.timeout)
        kubeconfig = kind_kubeconfig(args.name)
    nodes = wait_nodes_ready(kubeconfig, expected=expected_nodes, timeout=args.timeout, cluster=args.name)
    return {"kubeconfig": kubeconfig, "nodes": nodes, "adopted": adopted, "config_hash": args.hash}


#: Where a failed creation's node logs go (`kind export logs`); the orchestrator points it into the
#: run's results folder.
DIAGNOSTICS_ENV = "FLOE_DIAGNOSTICS_DIR"
#: kubeadm's, kind's and Docker's own error lines in `kind create cluster` output ("Command Output:"
#: starts what the failed command printed, e.g. Docker's "port is already allocated").
_KUBEADM_ERROR = re.compile(
    r"\[ERROR [^\]]*\]|error execution phase|^error:|ERROR: failed to create cluster|Error response from daemon"
    r"|^Command Output: \S",
    re.I,
)
#: A quoted command line in kind's errors ("docker run --name ... 30 flags ..."): shown by its start only.
_LONG_COMMAND = re.compile(r'command "([^"]{80})[^"]{20,}"')


def create_cluster(name: str, config: Path, image: str, *, timeout: float) -> None:
    """``kind create cluster``; when it fails, the error shows why (kubeadm's first error lines and the
    kubelet's last journal lines of each node, exported before the nodes are removed), not the tail of
    a stack trace, and no node is left behind."""
    argv = ["kind", "create", "cluster", "--name", name, "--config", str(config), "--image", image]
    # --retain: kind would otherwise delete the nodes, and their logs with them, before we can read them.
    argv += ["--wait", f"{int(timeout)}s", "--retain"]
    try:
        proc = run(argv, timeout=timeout + 300, what=f"creating kind cluster {name}", check=False)
    except InfraError:  # the bound: nothing to diagnose but the time, and nothing may stay
        _delete_quietly(name)
        raise
    if proc.returncode == 0:
        return
    detail = creation_failure_detail(name, proc.stdout + proc.stderr)
    _delete_quietly(name)
    raise InfraError(f"creating kind cluster {name} failed (kind exit {proc.returncode}).\n{detail}")


def creation_failure_detail(name: str, output: str, *, logs_root: Path | None = None) -> str:
    """kubeadm's first error lines from kind's output and each node's last kubelet journal lines from
    ``kind export logs`` (kept in the diagnostics folder, named in the message)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [_LONG_COMMAND.sub(r'command "\1 …"', line) for line in lines if _KUBEADM_ERROR.search(line)]
    parts = ["kind/kubeadm said:", *(f"  {line[:400]}" for line in (errors[:8] or lines[-8:]))]
    root = logs_root or Path(os.environ.get(DIAGNOSTICS_ENV) or STATE_DIR / "kind-logs")
    folder = root / f"{name}-{time.strftime('%Y%m%dT%H%M%S')}"
    try:
        run(["kind", "export", "logs", str(folder), "--name", name], timeout=180, what=f"exporting logs of {name}")
    except InfraError as exc:
        return "\n".join([*parts, f"(node logs could not be exported: {exc})"])
    for journal in sorted(folder.glob("*/kubelet.log")):
        tail = [line for line in journal.read_text(errors="replace").splitlines() if line.strip()][-10:]
        parts += [f"last kubelet journal lines on {journal.parent.name}:", *(f"  {line[:300]}" for line in tail)]
    parts.append(f"node logs (kubelet, containerd, journal): {display(folder)}")
    return "\n".join(parts)


def _delete_quietly(name: str) -> None:
    if name in existing_clusters():
        log(f"Deleting the failed cluster {name}")
        run(["kind", "delete", "cluster", "--name", name], timeout=300, what=f"deleting cluster {name}", check=False)


def delete(args: argparse.Namespace) -> None:
    if args.name not in existing_clusters():
        log(f"kind cluster {args.name} is already gone")
        return
    log(f"Deleting kind cluster {args.name}")
    run(["kind", "delete", "cluster", "--name", args.name], timeout=300, what=f"deleting kind cluster {args.name}")


def creation_guard(args: argparse.Namespace) -> AbstractContextManager[None]:
    """In create mode, a cluster this invocation creates is deleted again unless its result reaches
    Pulumi (interrupts and failures included): see components/_private/creation_guard.py."""
    from components._private.creation_guard import deleted_unless_created

    if args.mode != "create":
        return nullcontext()
    try:
        existed = args.name in existing_clusters()
    except InfraError:  # kind or Docker unusable: ensure says so itself, and creates nothing
        return nullcontext()
    return deleted_unless_created(args.name, existed=existed)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m components.cluster_steps", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ens = sub.add_parser("ensure", help="create or adopt the cluster and wait for its nodes")
    ens.add_argument("--name", required=True)
    ens.add_argument("--hash", required=True)
    ens.add_argument("--image", required=True)
    ens.add_argument("--mode", choices=["create", "adopt", "kubeconfig"], default="create")
    ens.add_argument("--timeout", type=float, default=300)
    ens.add_argument("--no-reuse", dest="reuse", action="store_false", help="an existing cluster is an error")
    dele = sub.add_parser("delete", help="delete the cluster if it exists")
    dele.add_argument("--name", required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if args.command == "delete":
            delete(args)
            return 0
        payload = json.loads(sys.stdin.read() or "{}")
        with creation_guard(args):
            print(json.dumps(ensure(args, payload)), flush=True)
    except InfraError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # the exit-code contract: one message, exit 2 (floe_test/_private/entry.py)
        from floe_test._private.entry import failure_message

        print(f"error: {failure_message(exc)}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    from floe_test._private.entry import module_main

    raise SystemExit(module_main(main, "python -m components.cluster_steps"))
