"""Waiting for the test Job and collecting everything a failed run needs, before any destroy.

Layout of ``--out DIR`` (stable, documented in docs/guides/test-debugging.md):
``junit.xml``, ``coverage.xml`` and the rest of ``/results``; ``logs/<namespace>/<pod>.log``;
``events.txt``; ``pods.txt`` (status of non-ready pods); ``summary.md``; ``metrics.json``.
``/results`` is read from the PersistentVolumeClaim by a short-lived pod running an image already in
the nodes (the helper image), so it works after the test pod is gone or hit its deadline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from floe_test.kindctl import kind_kubeconfig
from testing.errors import InfraError
from testing.polling import Check, wait_for_condition

READER_POD = "results-reader"


def _clients(cluster: str) -> tuple[Any, Any]:
    from kubernetes import client, config

    api = config.new_client_from_config_dict(yaml.safe_load(kind_kubeconfig(cluster)))
    return client.CoreV1Api(api), client.BatchV1Api(api)


def job_state(batch: Any, namespace: str, job: str) -> str | None:
    status = batch.read_namespaced_job_status(job, namespace, _request_timeout=20).status
    for cond in status.conditions or []:
        if cond.type in {"Complete", "Failed"} and cond.status == "True":
            return str(cond.type)
    return None


def wait_for_job(cluster: str, namespace: str, job: str, *, timeout: float = 3900) -> str:
    """Wait for Complete or Failed (bounded by the Job's own deadline plus a margin)."""
    _, batch = _clients(cluster)

    def check() -> Check[str | None]:
        state = job_state(batch, namespace, job)
        return Check(state is not None, state)

    state = wait_for_condition(
        check,
        timeout=timeout,
        interval=5,
        description=f"job/{job} in namespace {namespace} to finish",
        hint=f"kubectl --context kind-{cluster} -n {namespace} logs job/{job}",
    )
    return str(state)


def collect(cluster: str, namespace: str, out: Path, *, job_state: str | None, reason: str = "") -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {
        "cluster": cluster,
        "namespace": namespace,
        "job_state": job_state,
        "reason": reason,
        "collected": [],
        "missing": [],
    }
    try:
        core, _ = _clients(cluster)
    except InfraError as exc:
        summary["missing"].append(f"cluster unreachable: {exc}")
        _write_summary(out, summary)
        return summary
    for pod in core.list_namespaced_pod(namespace, _request_timeout=30).items:
        name = pod.metadata.name
        if name == READER_POD:
            continue
        path = out / "logs" / namespace / f"{name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.write_text(core.read_namespaced_pod_log(name, namespace, _request_timeout=60))
            summary["collected"].append(str(path.relative_to(out)))
        except Exception as exc:
            summary["missing"].append(f"logs of pod {name}: {exc}")
    events = core.list_event_for_all_namespaces(_request_timeout=30).items
    (out / "events.txt").write_text(
        "\n".join(
            f"{e.last_timestamp or e.event_time} {e.involved_object.namespace}/{e.involved_object.kind}/"
            f"{e.involved_object.name} {e.type} {e.reason}: {e.message}"
            for e in events
        )
    )
    not_ready = [
        p
        for p in core.list_pod_for_all_namespaces(_request_timeout=30).items
        if p.status.phase not in {"Running", "Succeeded"}
    ]
    (out / "pods.txt").write_text(
        "\n".join(
            f"{p.metadata.namespace}/{p.metadata.name} {p.status.phase}: "
            f"{p.status.reason or ''} {p.status.message or ''}"
            for p in not_ready
        )
    )
    _write_summary(out, summary)
    return summary


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    (out / "metrics.json").write_text(json.dumps({"job_state": summary["job_state"]}, indent=2))
    lines = [
        f"# Test run in `{summary['namespace']}` on kind cluster `{summary['cluster']}`",
        "",
        f"- Job state: **{summary['job_state'] or 'not finished'}**",
    ]
    if summary["reason"]:
        lines.append(f"- Infrastructure problem: {summary['reason']}")
    lines += [f"- Collected: {len(summary['collected'])} file(s)"] + [f"- Missing: {m}" for m in summary["missing"]]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
