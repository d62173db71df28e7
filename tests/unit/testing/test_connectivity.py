"""Connectivity hops against real local servers; connection reuse measured server-side."""

from __future__ import annotations

import httpx
import pytest

from testing.connectivity import (
    DEFAULT_PROBE_IMAGE,
    ConnectivityError,
    _classify_wget,
    check_dns,
    check_endpoint_path,
    measure_connection_reuse,
    probe_image,
)
from testing.endpoints import Endpoint

from .conftest import HttpServer, SilentServer


def test_dns_hop_resolves_localhost() -> None:
    result = check_dns("localhost")
    assert result.ok and "127.0.0.1" in result.detail


def test_dns_hop_failure_names_the_hop() -> None:
    with pytest.raises(ConnectivityError, match=r"^DNS hop failed for nothing-here\.invalid"):
        check_endpoint_path(Endpoint("x", "nothing-here.invalid", 80, "http"))


def test_tcp_hop_failure_names_the_hop(closed_port: int) -> None:
    with pytest.raises(ConnectivityError, match=rf"^TCP hop failed for 127.0.0.1:{closed_port}: connection refused"):
        check_endpoint_path(Endpoint("x", "127.0.0.1", closed_port, "tcp"), timeout=1)


def test_http_hop_failure_names_the_hop(silent_server: SilentServer) -> None:
    with pytest.raises(ConnectivityError, match=r"^HTTP hop failed .*no HTTP answer within 0\.3s") as info:
        check_endpoint_path(Endpoint("x", "127.0.0.1", silent_server.port, "http"), timeout=0.3)
    assert info.value.hop == "http"


def test_all_hops_pass_against_a_working_service(http_server: HttpServer) -> None:
    hops = check_endpoint_path(Endpoint("x", "localhost", http_server.port, "http"), timeout=2)
    assert [h.hop for h in hops] == ["dns", "tcp", "http"]


def test_pooled_client_serves_many_requests_over_one_connection(http_server: HttpServer) -> None:
    with httpx.Client(timeout=5) as client:
        report = measure_connection_reuse(http_server.url, requests=50, client=client)
    assert (report.requests, report.failures) == (50, [])
    assert http_server.requests == 50
    assert http_server.connections == report.connections == 1  # counted by the server and by the client


def test_unpooled_requests_open_one_connection_each(http_server: HttpServer) -> None:
    for _ in range(5):
        with httpx.Client(timeout=5) as client:
            client.get(http_server.url)
    assert http_server.connections == 5  # the server's count is honest: no reuse without a pool


@pytest.mark.parametrize(
    ("output", "hop"),
    [
        ("PROBE_FAIL\nwget: bad address 'np-server.ns.svc.cluster.local:8080'", "dns"),
        ("PROBE_FAIL\nwget: download timed out", "tcp"),
        ("PROBE_FAIL\nwget: can't connect to remote host (10.0.0.1): Connection refused", "tcp"),
        ("PROBE_FAIL\nwget: server returned error: HTTP/1.1 404 Not Found", "http"),
    ],
    ids=["dns", "timeout", "refused", "http-error"],
)
def test_probe_pod_output_names_the_failed_hop(output: str, hop: str) -> None:
    assert _classify_wget(output)[0] == hop


def test_probe_image_comes_from_the_environment_or_the_stacks_busybox() -> None:
    assert probe_image({"FLOE_PROBE_IMAGE": "registry.local/busybox:9"}) == "registry.local/busybox:9"
    assert probe_image({}) == DEFAULT_PROBE_IMAGE


def test_default_probe_image_matches_versions_yaml() -> None:
    yaml = pytest.importorskip("yaml")
    from pathlib import Path

    versions = yaml.safe_load((Path(__file__).resolve().parents[3] / "versions.yaml").read_text())
    busybox = versions["images"]["busybox"]
    assert f"{busybox['repository']}:{busybox['tag']}" == DEFAULT_PROBE_IMAGE
