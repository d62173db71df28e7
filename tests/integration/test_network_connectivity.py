"""Live: DNS, TCP, HTTP, NetworkPolicy allow/deny and connection reuse (REQ-643)."""

from __future__ import annotations

import pytest

from testing.connectivity import check_endpoint_path, check_network_policy, measure_connection_reuse
from testing.endpoints import load_endpoints
from testing.k8s_client import KubeClient

pytestmark = pytest.mark.integration


def _endpoints_or_skip() -> list[object]:
    endpoints = list(load_endpoints().values())
    if not endpoints:
        pytest.skip("no service endpoints: FLOE_SERVICES not set (run inside the test Job, or export it)")
    return endpoints


def test_every_service_passes_dns_tcp_and_http_hops(kube: KubeClient) -> None:
    from testing.endpoints import Endpoint

    failures = []
    for endpoint in _endpoints_or_skip():
        assert isinstance(endpoint, Endpoint)
        try:
            check_endpoint_path(endpoint, timeout=30)
        except Exception as exc:
            failures.append(f"{endpoint.name}: {exc}")
    assert not failures, "\n".join(failures)


def test_pooled_client_reuses_connections_to_an_http_service(kube: KubeClient) -> None:
    from testing.endpoints import Endpoint

    http = [e for e in _endpoints_or_skip() if isinstance(e, Endpoint) and e.protocol == "http"]
    if not http:
        pytest.skip("no http endpoint in FLOE_SERVICES")
    report = measure_connection_reuse(http[0].probe_url, requests=20)
    assert report.requests == 20
    assert report.connections <= 2, f"20 requests opened {report.connections} connections"


def test_network_policy_allows_and_denies(kube: KubeClient, isolated_namespace: str) -> None:
    report = check_network_policy(kube, isolated_namespace, timeout=180, on_step=print)
    assert report.ok, report
