"""REQ-640: the integration environment has exactly its services, all Ready and reachable."""

from __future__ import annotations

import os

import pytest

from testing.cluster import require_cluster
from testing.health import check_services

pytestmark = pytest.mark.integration

INTEGRATION_RELEASES = {"postgresql", "dagster"}
NOT_IN_INTEGRATION = {"polaris", "cube", "minio", "jaeger", "otel-collector", "monitoring", "redis"}


def _platform_instances(kube) -> set[str]:
    ns = os.environ.get("FLOE_PLATFORM_NAMESPACE", "floe-platform")
    pods = kube.core.list_namespaced_pod(ns, _request_timeout=30).items
    return {(p.metadata.labels or {}).get("app.kubernetes.io/instance", "") for p in pods}


def test_only_the_required_services_are_deployed():
    kube = require_cluster()
    if os.environ.get("FLOE_PROFILE", "integration") != "integration":
        pytest.skip(f"profile {os.environ['FLOE_PROFILE']}: this test is for the integration profile")
    instances = _platform_instances(kube)
    assert instances >= INTEGRATION_RELEASES
    assert not (instances & NOT_IN_INTEGRATION)


def test_services_are_ready_and_answer():
    kube = require_cluster()
    report = check_services(["postgres", "dagster"], kube=kube, timeout=300)
    report.raise_for_status()
