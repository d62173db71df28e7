"""Live: bounded waits against the real API end with typed errors naming what they waited for."""

from __future__ import annotations

import time

import pytest

from testing.errors import WaitTimeout
from testing.k8s_client import KubeClient
from testing.probes import wait_for_service

pytestmark = pytest.mark.integration


def test_wait_for_absent_pods_times_out_within_its_bound(kube: KubeClient, isolated_namespace: str) -> None:
    start = time.monotonic()
    with pytest.raises(WaitTimeout, match=rf"no pods match 'app=none' in namespace {isolated_namespace}"):
        kube.wait_pods_ready(isolated_namespace, "app=none", timeout=5, interval=1)
    assert time.monotonic() - start < 15


def test_wait_for_service_without_endpoints_times_out_naming_the_hop(kube: KubeClient,
                                                                     isolated_namespace: str) -> None:
    from kubernetes import client as k8s

    kube.core.create_namespaced_service(isolated_namespace, k8s.V1Service(
        metadata=k8s.V1ObjectMeta(name="nobody-home"),
        spec=k8s.V1ServiceSpec(selector={"app": "none"}, ports=[k8s.V1ServicePort(port=80)])))
    with pytest.raises(WaitTimeout) as info:
        wait_for_service("nobody-home", namespace=isolated_namespace, port=80, timeout=6, probe_timeout=2)
    assert "hop failed" in str(info.value)
