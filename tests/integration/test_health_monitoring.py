"""Live: health monitoring against a real cluster (REQ-642). Skips with a reason without one."""

from __future__ import annotations

import uuid

import pytest
from kubernetes import client as k8s

from testing.cluster import require_cluster
from testing.health import check_services
from testing.k8s_client import KubeClient, PodsFailed
from testing.plugin import get_settings
from testing.sandbox import restricted_container, restricted_pod

pytestmark = pytest.mark.integration


def _pod(name: str, image: str, command: list[str] | None = None, **spec: object) -> k8s.V1Pod:
    # Namespaces of a run enforce the restricted pod security level.
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels={"floe.dev/health-test": name}),
        spec=k8s.V1PodSpec(termination_grace_period_seconds=0, restart_policy=str(spec.pop("restart", "Always")),
                           security_context=restricted_pod(),
                           containers=[k8s.V1Container(name="main", image=image, command=command,
                                                       image_pull_policy="IfNotPresent",
                                                       security_context=restricted_container())]),
    )


def test_image_pull_failure_ends_the_wait_at_once_with_the_reason(kube: KubeClient, isolated_namespace: str) -> None:
    kube.create_pod(isolated_namespace, _pod("bad-image", f"floe.invalid/none:{uuid.uuid4().hex[:6]}"))
    with pytest.raises(PodsFailed) as info:
        kube.wait_pods_ready(isolated_namespace, "floe.dev/health-test=bad-image", timeout=120, interval=1)
    message = str(info.value)
    assert "container main of pod/bad-image" in message
    assert ("ImagePullBackOff" in message) or ("ErrImagePull" in message)
    assert info.value.elapsed < 100


def test_crashloop_is_reported_with_its_last_log_lines(kube: KubeClient, isolated_namespace: str) -> None:
    from testing.connectivity import probe_image

    kube.create_pod(isolated_namespace, _pod("crasher", probe_image(),
                                             ["sh", "-c", "echo floe-crash-marker; exit 3"]))
    with pytest.raises(PodsFailed) as info:
        kube.wait_pods_ready(isolated_namespace, "floe.dev/health-test=crasher", timeout=180, interval=1)
    message = str(info.value)
    assert "CrashLoopBackOff" in message
    assert "floe-crash-marker" in message
    assert "exit code 3" in message


def test_every_described_service_is_healthy(pytestconfig: pytest.Config) -> None:
    require_cluster(get_settings(pytestconfig).context)
    from testing.endpoints import load_endpoints

    names = sorted(load_endpoints())
    if not names:
        pytest.skip("no service endpoints: FLOE_SERVICES not set (run inside the test Job, or export it)")
    settings = get_settings(pytestconfig)
    report = check_services(names, kube=require_cluster(settings.context), timeout=settings.health_timeout,
                            probe_timeout=settings.probe_timeout)
    assert report.healthy, "unhealthy services:\n" + report.summary()
