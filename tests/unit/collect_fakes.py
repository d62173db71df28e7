"""Fakes of the official client's APIs at the client boundary, answering with kubernetes.client models."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import tarfile
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from floe_test.collect import BEGIN_MARKER, END_MARKER, ClusterApi, Target

TARGET = Target(
    cluster="floe-integration",
    namespace="floe-test-r1",
    platform_namespace="floe-platform",
    helper_image="busybox:1.37.0@sha256:abc",
)


def tar_gz(files: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if symlink:
            info = tarfile.TarInfo("./link")
            info.type = tarfile.SYMTYPE
            info.linkname = symlink
            tar.addfile(info)
    return buf.getvalue()


def reader_log(archive: bytes, *, end: bool = True) -> str:
    encoded = base64.encodebytes(archive).decode()  # 76-character lines, like busybox base64
    return f"{BEGIN_MARKER}\n{encoded}" + (f"{END_MARKER}\n" if end else "")


def pod(name: str, namespace: str, *, phase: str = "Running", ready: bool = True, labels: dict[str, str] | None = None,
        waiting: str | None = None, restarts: int = 0, env: list[k8s.V1EnvVar] | None = None) -> k8s.V1Pod:
    state = k8s.V1ContainerState(
        waiting=k8s.V1ContainerStateWaiting(reason=waiting, message=f"{waiting} detail") if waiting else None,
        running=None if waiting else k8s.V1ContainerStateRunning(),
    )
    last = k8s.V1ContainerState(terminated=k8s.V1ContainerStateTerminated(reason="Error", exit_code=1)) if restarts \
        else None
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels=labels or {"app": name}),
        spec=k8s.V1PodSpec(node_name="floe-integration-control-plane",
                           containers=[k8s.V1Container(name="main", image="img:1", env=env)]),
        status=k8s.V1PodStatus(
            phase=phase,
            conditions=[k8s.V1PodCondition(type="Ready", status="True" if ready else "False")],
            container_statuses=[k8s.V1ContainerStatus(name="main", image="img:1", image_id="", ready=ready,
                                                      restart_count=restarts, state=state, last_state=last)],
        ),
    )


def event(namespace: str, obj: str, reason: str, message: str, minute: int) -> k8s.CoreV1Event:
    return k8s.CoreV1Event(
        metadata=k8s.V1ObjectMeta(name=f"{obj}.{minute}", namespace=namespace),
        involved_object=k8s.V1ObjectReference(kind="Pod", name=obj, namespace=namespace),
        reason=reason, message=message, type="Warning", count=1,
        last_timestamp=dt.datetime(2026, 5, 1, 12, minute, tzinfo=dt.UTC),
    )


def secret(name: str, namespace: str, data: dict[str, str], labels: dict[str, str] | None = None) -> k8s.V1Secret:
    return k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name=name, namespace=namespace, labels=labels),
        data={k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    )


def helm_secret(release: str, namespace: str, version: int, status: str, values: dict[str, Any]) -> k8s.V1Secret:
    record = {
        "name": release, "namespace": namespace, "version": version,
        "info": {"status": status, "description": "Install complete", "last_deployed": "2026-05-01T12:00:00Z"},
        "chart": {"metadata": {"name": release, "version": "1.2.3", "appVersion": "9.9"}, "values": values},
        "config": values, "manifest": f"password: {values.get('password', '')}",
    }
    helm_b64 = base64.b64encode(gzip.compress(json.dumps(record).encode())).decode()
    return k8s.V1Secret(
        metadata=k8s.V1ObjectMeta(name=f"sh.helm.release.v1.{release}.v{version}", namespace=namespace,
                                  labels={"owner": "helm", "name": release, "version": str(version)}),
        data={"release": base64.b64encode(helm_b64.encode()).decode()},
    )


def not_found() -> ApiException:
    return ApiException(status=404, reason="Not Found")


@dataclass
class FakeCore:
    pods: dict[str, list[k8s.V1Pod]] = field(default_factory=dict)
    logs: dict[tuple[str, str, bool], str] = field(default_factory=dict)
    events: dict[str, list[k8s.CoreV1Event]] = field(default_factory=dict)
    secrets: dict[str, list[k8s.V1Secret]] = field(default_factory=dict)
    claims: set[tuple[str, str]] = field(default_factory=set)
    nodes: list[k8s.V1Node] = field(default_factory=list)
    reader_archive: bytes = b""
    reader_end: bool = True
    reader_phases: list[str] = field(default_factory=lambda: ["Pending", "Succeeded"])
    reader_waiting: str | None = None
    created: list[dict[str, Any]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    patched: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _reads: int = 0

    def list_namespaced_pod(self, namespace: str, label_selector: str = "", **_: Any) -> k8s.V1PodList:
        items = self.pods.get(namespace, [])
        if label_selector:
            key, _, value = label_selector.partition("=")
            items = [p for p in items if (p.metadata.labels or {}).get(key) == value]
        return k8s.V1PodList(items=items)

    def read_namespaced_pod_log(self, name: str, namespace: str, container: str = "", previous: bool = False,
                                **_: Any) -> str:
        if name.startswith("results-reader"):
            return reader_log(self.reader_archive, end=self.reader_end)
        if (namespace, name, previous) not in self.logs:
            raise ApiException(status=400, reason="container is waiting to start")
        return self.logs[(namespace, name, previous)]

    def list_namespaced_event(self, namespace: str, field_selector: str = "", **_: Any) -> k8s.CoreV1EventList:
        items = self.events.get(namespace, [])
        if field_selector:
            wanted = field_selector.split("=", 1)[1]
            items = [e for e in items if e.involved_object.name == wanted]
        return k8s.CoreV1EventList(items=items)

    def list_namespaced_secret(self, namespace: str, label_selector: str = "", **_: Any) -> k8s.V1SecretList:
        items = self.secrets.get(namespace, [])
        if label_selector:
            key, _, value = label_selector.partition("=")
            items = [s for s in items if (s.metadata.labels or {}).get(key) == value]
        return k8s.V1SecretList(items=items)

    def read_namespaced_persistent_volume_claim(self, name: str, namespace: str, **_: Any) -> Any:
        if (namespace, name) not in self.claims:
            raise not_found()
        return k8s.V1PersistentVolumeClaim(metadata=k8s.V1ObjectMeta(name=name, namespace=namespace))

    def create_namespaced_pod(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        self.created.append(body)

    def read_namespaced_pod(self, name: str, namespace: str, **_: Any) -> k8s.V1Pod:
        phase = self.reader_phases[min(self._reads, len(self.reader_phases) - 1)]
        self._reads += 1
        return pod(name, namespace, phase=phase, ready=False, waiting=self.reader_waiting)

    def delete_namespaced_pod(self, name: str, namespace: str, **_: Any) -> None:
        self.deleted.append(name)

    def list_node(self, **_: Any) -> k8s.V1NodeList:
        return k8s.V1NodeList(items=self.nodes)

    def patch_namespace(self, name: str, body: dict[str, Any], **_: Any) -> None:
        self.patched.append((name, body))


@dataclass
class FakeBatch:
    condition: tuple[str, str, str] | None = ("Complete", "", "")
    """(type, reason, message) of the Job's finished condition; None: not finished; 'absent': 404."""
    absent: bool = False
    active: int = 0

    def read_namespaced_job_status(self, name: str, namespace: str, **_: Any) -> k8s.V1Job:
        if self.absent:
            raise not_found()
        conditions = []
        if self.condition:
            kind, reason, message = self.condition
            conditions.append(k8s.V1JobCondition(type=kind, status="True", reason=reason or None,
                                                 message=message or None))
        return k8s.V1Job(metadata=k8s.V1ObjectMeta(name=name), status=k8s.V1JobStatus(conditions=conditions,
                                                                                   active=self.active or None))


@dataclass
class FakeCustom:
    available: bool = True

    def list_cluster_custom_object(self, group: str, version: str, plural: str, **_: Any) -> dict[str, Any]:
        if not self.available:
            raise ApiException(status=404, reason="the server could not find the requested resource")
        return {"items": [{"metadata": {"name": "floe-integration-control-plane"},
                           "usage": {"cpu": "850123456n", "memory": "2097152Ki"}}]}


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def api(core: FakeCore, batch: FakeBatch | None = None, custom: FakeCustom | None = None,
        kubeconfig: dict[str, Any] | None = None) -> ClusterApi:
    return ClusterApi(core, batch or FakeBatch(), custom or FakeCustom(), kubeconfig or {})


JUNIT_FAILED = b"""<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="3">
<testcase classname="tests.integration.test_dagster" name="test_webserver_answers" time="1.5">
<properties><property name="floe.perf.call_s" value="1.4"/></properties></testcase>
<testcase classname="tests.integration.test_dagster" name="test_run_launches" time="12.0">
<failure message="AssertionError: run state FAILURE != SUCCESS">Traceback\nAssertionError: run state FAILURE</failure>
</testcase>
<testcase classname="tests.integration.test_db" name="test_flaky_connect" time="0.3">
<properties><property name="floe.reruns" value="1"/></properties></testcase>
</testsuite></testsuites>
"""
