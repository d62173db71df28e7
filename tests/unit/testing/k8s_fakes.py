"""A fake of the official client's CoreV1Api, at the client boundary, returning real model objects."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException


def pod(name: str, *, namespace: str = "floe-platform", phase: str = "Running", ready: bool = True,
        waiting: str | None = None, terminated: str | None = None, last_terminated: str | None = None,
        restarts: int = 0, pod_reason: str | None = None, container: str = "main",
        init_waiting: str | None = None) -> k8s.V1Pod:
    state = k8s.V1ContainerState(
        waiting=k8s.V1ContainerStateWaiting(reason=waiting, message=f"{waiting} message") if waiting else None,
        terminated=k8s.V1ContainerStateTerminated(reason=terminated, exit_code=137) if terminated else None,
        running=None if (waiting or terminated) else k8s.V1ContainerStateRunning(),
    )
    last = k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(reason=last_terminated, exit_code=1)
                                ) if last_terminated else k8s.V1ContainerState()
    statuses = [k8s.V1ContainerStatus(name=container, image="img:1", image_id="", ready=ready,
                                      restart_count=restarts, state=state, last_state=last)]
    init = None
    if init_waiting:
        init = [k8s.V1ContainerStatus(name="init", image="img:1", image_id="", ready=False, restart_count=0,
                                      state=k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(
                                          reason=init_waiting, message="pull failed")))]
    conditions = [k8s.V1PodCondition(type="Ready", status="True" if ready else "False")]
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels={"app": "svc"}),
        status=k8s.V1PodStatus(phase=phase, reason=pod_reason, message="The node was low on memory."
                               if pod_reason else None, conditions=conditions, container_statuses=statuses,
                               init_container_statuses=init),
    )


def event(reason: str, message: str, *, minute: int, kind: str = "Warning", count: int = 1) -> k8s.CoreV1Event:
    return k8s.CoreV1Event(
        metadata=k8s.V1ObjectMeta(name=f"e{minute}"), involved_object=k8s.V1ObjectReference(name="x"),
        reason=reason, message=message, type=kind, count=count,
        last_timestamp=dt.datetime(2026, 5, 1, 12, minute, tzinfo=dt.UTC),
    )


def namespace(name: str, *, age_hours: float, labels: dict[str, str], now: dt.datetime,
              phase: str = "Active") -> k8s.V1Namespace:
    return k8s.V1Namespace(
        metadata=k8s.V1ObjectMeta(name=name, labels=labels,
                                  creation_timestamp=now - dt.timedelta(hours=age_hours)),
        status=k8s.V1NamespaceStatus(phase=phase),
    )


@dataclass
class FakeCore:
    """Answers like CoreV1Api from scripted state; records calls."""

    pod_sequence: list[list[k8s.V1Pod]] = field(default_factory=list)
    logs: dict[tuple[str, str, bool], str] = field(default_factory=dict)
    events: list[k8s.CoreV1Event] = field(default_factory=list)
    namespaces: dict[str, k8s.V1Namespace] = field(default_factory=dict)
    gone_after_reads: int = 0
    calls: list[tuple[str, Any]] = field(default_factory=list)
    _list_calls: int = 0
    _ns_reads: dict[str, int] = field(default_factory=dict)

    def list_namespaced_pod(self, namespace: str, label_selector: str = "", **_: Any) -> k8s.V1PodList:
        index = min(self._list_calls, len(self.pod_sequence) - 1)
        self._list_calls += 1
        return k8s.V1PodList(items=self.pod_sequence[index] if self.pod_sequence else [])

    def read_namespaced_pod_log(self, name: str, namespace: str, container: str = "", previous: bool = False,
                                tail_lines: int = 0, **_: Any) -> str:
        self.calls.append(("logs", (name, container, previous, tail_lines)))
        if (name, container, previous) not in self.logs:
            raise ApiException(status=400, reason="container is waiting to start")
        return "\n".join(self.logs[(name, container, previous)].splitlines()[-tail_lines:]) + "\n"

    def list_namespaced_event(self, namespace: str, field_selector: str = "", **_: Any) -> k8s.CoreV1EventList:
        return k8s.CoreV1EventList(items=list(self.events))

    def list_namespace(self, label_selector: str = "", **_: Any) -> k8s.V1NamespaceList:
        self.calls.append(("list_namespace", label_selector))
        wanted = [s for s in label_selector.split(",") if s]

        def match(ns: k8s.V1Namespace) -> bool:
            labels = ns.metadata.labels or {}
            for sel in wanted:
                key, _, value = sel.partition("=")
                if key not in labels or (value and labels[key] != value):
                    return False
            return True

        return k8s.V1NamespaceList(items=[ns for ns in self.namespaces.values() if match(ns)])

    def create_namespace(self, body: k8s.V1Namespace, **_: Any) -> k8s.V1Namespace:
        self.calls.append(("create_namespace", body))
        body.status = k8s.V1NamespaceStatus(phase="Active")
        self.namespaces[body.metadata.name] = body
        return body

    def delete_namespace(self, name: str, **_: Any) -> None:
        self.calls.append(("delete_namespace", name))
        if name not in self.namespaces:
            raise ApiException(status=404, reason="Not Found")
        self.namespaces[name].status = k8s.V1NamespaceStatus(phase="Terminating")

    def read_namespace(self, name: str, **_: Any) -> k8s.V1Namespace:
        reads = self._ns_reads.get(name, 0) + 1
        self._ns_reads[name] = reads
        ns = self.namespaces.get(name)
        if ns is None or (ns.status.phase == "Terminating" and reads > self.gone_after_reads):
            self.namespaces.pop(name, None)
            raise ApiException(status=404, reason="Not Found")
        return ns

    def patch_namespace(self, name: str, body: dict[str, Any], **_: Any) -> None:
        self.calls.append(("patch_namespace", (name, body)))
        self.namespaces[name].metadata.labels.update(body["metadata"]["labels"])
