"""Pure functions over Kubernetes pod objects (``kubernetes.client.V1Pod``): readiness and failures.

Kept free of API calls so they are tested table-driven with real model objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Container waiting reasons that will not fix themselves: a wait ends at once when one is seen.
WAITING_FAILURE_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "InvalidImageName",
    }
)
#: Container termination reasons that mean the pod is broken.
TERMINATED_FAILURE_REASONS = frozenset({"OOMKilled"})
#: Pod-level reasons (``status.reason``) that mean the pod is gone for good.
POD_FAILURE_REASONS = frozenset({"Evicted"})


@dataclass(frozen=True)
class PodFailure:
    """One broken container (or pod) and why."""

    namespace: str
    pod: str
    container: str
    """Container name, or ``-`` for a pod-level failure (Evicted)."""
    reason: str
    """``CrashLoopBackOff``, ``ImagePullBackOff``, ``OOMKilled``, ``Evicted``, ..."""
    message: str = ""
    """The kubelet's message, plus the last termination when the container restarted."""
    restarts: int = 0
    logs: str = ""
    """Last log lines of the container (filled by the client; empty when there are none)."""
    events: tuple[str, ...] = field(default=())
    """Recent events of the pod, oldest first (filled by the client)."""

    def headline(self) -> str:
        where = f"pod/{self.pod} in namespace {self.namespace}"
        if self.container != "-":
            where = f"container {self.container} of {where}"
        text = f"{where}: {self.reason}"
        if self.restarts:
            text += f" (restarts: {self.restarts})"
        if self.message:
            text += f": {self.message}"
        return text

    def report(self) -> str:
        """The full text for an error message: headline, recent events and last log lines."""
        lines = [self.headline()]
        if self.events:
            lines.append("  recent events:")
            lines.extend(f"    {e}" for e in self.events)
        if self.logs.strip():
            log_lines = self.logs.rstrip("\n").splitlines()
            lines.append(f"  last {len(log_lines)} log lines of {self.container}:")
            lines.extend(f"    | {line}" for line in log_lines)
        elif self.container != "-":
            lines.append("  (no log lines: the container has not written any or never started)")
        return "\n".join(lines)


def _name(pod: Any) -> tuple[str, str]:
    meta = pod.metadata
    return (getattr(meta, "namespace", None) or "", getattr(meta, "name", None) or "?")


def pod_failures(pod: Any) -> list[PodFailure]:
    """Every unrecoverable failure of a pod (a ``V1Pod``), without logs or events."""
    namespace, name = _name(pod)
    status = pod.status
    if status is None:
        return []
    failures: list[PodFailure] = []
    if (status.reason or "") in POD_FAILURE_REASONS:
        failures.append(PodFailure(namespace, name, "-", status.reason, status.message or ""))
    statuses = list(status.init_container_statuses or []) + list(status.container_statuses or [])
    for cs in statuses:
        state = cs.state
        last = cs.last_state.terminated if cs.last_state is not None else None
        last_text = ""
        if last is not None:
            last_text = f"last termination: {last.reason or 'unknown'} (exit code {last.exit_code})"
        waiting = state.waiting if state is not None else None
        terminated = state.terminated if state is not None else None
        if waiting is not None and (waiting.reason or "") in WAITING_FAILURE_REASONS:
            message = "; ".join(x for x in (waiting.message or "", last_text) if x)
            failures.append(PodFailure(namespace, name, cs.name, waiting.reason, message, cs.restart_count or 0))
        elif terminated is not None and (terminated.reason or "") in TERMINATED_FAILURE_REASONS:
            failures.append(
                PodFailure(
                    namespace,
                    name,
                    cs.name,
                    terminated.reason,
                    f"exit code {terminated.exit_code}",
                    cs.restart_count or 0,
                )
            )
        elif last is not None and (last.reason or "") in TERMINATED_FAILURE_REASONS and not cs.ready:
            failures.append(PodFailure(namespace, name, cs.name, last.reason, last_text, cs.restart_count or 0))
    return failures


def pod_is_ready(pod: Any) -> bool:
    """The pod's ``Ready`` condition is ``True`` (and it is not being deleted)."""
    if pod.metadata is not None and pod.metadata.deletion_timestamp is not None:
        return False
    status = pod.status
    if status is None or status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (status.conditions or []))


def pod_summary(pod: Any) -> str:
    """One short line of a pod's state, for "last state seen" in timeouts."""
    _, name = _name(pod)
    status = pod.status
    if status is None:
        return f"{name}: no status yet"
    parts = [status.phase or "Unknown"]
    for cs in status.container_statuses or []:
        state = cs.state
        if state is not None and state.waiting is not None:
            parts.append(f"{cs.name} waiting: {state.waiting.reason}")
        elif state is not None and state.terminated is not None:
            parts.append(f"{cs.name} terminated: {state.terminated.reason}")
        elif not cs.ready:
            parts.append(f"{cs.name} not ready")
    if pod_is_ready(pod):
        parts.append("Ready")
    return f"{name}: {', '.join(parts)}"
