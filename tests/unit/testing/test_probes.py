"""Probes against real local servers: each failure names its hop; every probe is bounded."""

from __future__ import annotations

import json
import time

import pytest

from testing.errors import ConfigError, WaitTimeout
from testing.probes import probe_http, probe_postgres, probe_tcp, resolve_target, wait_for_service

from .conftest import HttpServer, Postgres, SilentServer


def test_http_probe_passes_on_expected_status(http_server: HttpServer) -> None:
    result = probe_http(http_server.url, timeout=2)
    assert (result.ok, result.detail) == (True, "HTTP 200")


@pytest.mark.parametrize(
    ("status", "body", "kwargs", "hop", "detail"),
    [
        (503, b"starting", {}, "http", "HTTP 503 (expected 200)"),
        (200, b"DOWN", {"body_contains": '"UP"'}, "body", "body lacks"),
        (200, b"{}", {"body_check": lambda b: json.loads(b).get("status") == "UP"}, "body", "body check failed"),
        (401, b"", {"expect_status": 200}, "http", "HTTP 401"),
    ],
    ids=["wrong-status", "body-missing-text", "body-check-false", "unauthorised"],
)
def test_http_probe_fails_at_the_named_hop(http_server: HttpServer, status: int, body: bytes,
                                           kwargs: dict[str, object], hop: str, detail: str) -> None:
    http_server.status, http_server.body = status, body
    result = probe_http(http_server.url, timeout=2, **kwargs)  # type: ignore[arg-type]
    assert (result.ok, result.hop) == (False, hop)
    assert detail in result.detail


def test_http_probe_body_check_passes_on_matching_body(http_server: HttpServer) -> None:
    http_server.body = b'{"status": "UP"}'
    assert probe_http(http_server.url, timeout=2, body_contains='"UP"').ok


def test_http_probe_of_closed_port_fails_the_tcp_hop(closed_port: int) -> None:
    result = probe_http(f"http://127.0.0.1:{closed_port}/", timeout=2)
    assert (result.ok, result.hop) == (False, "tcp")
    assert "refused" in result.detail


def test_http_probe_of_silent_server_fails_the_http_hop_within_its_bound(silent_server: SilentServer) -> None:
    start = time.monotonic()
    result = probe_http(silent_server.url, timeout=0.5)
    elapsed = time.monotonic() - start
    assert (result.ok, result.hop) == (False, "http")
    assert "no HTTP answer within 0.5s" in result.detail
    assert 0.4 <= elapsed < 2.0


def test_unresolvable_name_fails_the_dns_hop() -> None:
    result = probe_http("http://no-such-service.invalid:80/", timeout=2)
    assert (result.ok, result.hop) == (False, "dns")


def test_tcp_probe_passes_when_something_listens(silent_server: SilentServer) -> None:
    assert probe_tcp("127.0.0.1", silent_server.port, timeout=2).ok


def test_tcp_probe_of_closed_port_is_refused(closed_port: int) -> None:
    result = probe_tcp("127.0.0.1", closed_port, timeout=2)
    assert (result.ok, result.hop, str(result).startswith("tcp://127.0.0.1")) == (False, "tcp", True)


def test_wait_for_service_returns_the_successful_probe(http_server: HttpServer) -> None:
    result = wait_for_service(http_server.url, timeout=5, probe_timeout=1, interval=0.05)
    assert result.ok


def test_wait_for_service_times_out_naming_target_and_last_state(silent_server: SilentServer) -> None:
    with pytest.raises(WaitTimeout) as info:
        wait_for_service(silent_server.url, timeout=0.6, probe_timeout=0.2, interval=0.05)
    message = str(info.value)
    assert silent_server.url in message
    assert "http hop failed" in message


def test_wait_for_service_tcp_mode_by_name_from_the_job_environment(
        silent_server: SilentServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOE_SERVICES", json.dumps(
        [{"name": "pg", "host": "127.0.0.1", "port": silent_server.port, "protocol": "tcp"}]))
    assert wait_for_service("pg", timeout=2, probe_timeout=1).detail == "TCP connect succeeded"


@pytest.mark.parametrize(
    ("target", "kwargs", "expected"),
    [
        ("http://h:81/x", {}, ("h", 81, "http", "http://h:81/x")),
        ("h:5432", {"protocol": "tcp"}, ("h", 5432, "tcp", "")),
        ("svc", {"namespace": "ns", "port": 80, "path": "/health"},
         ("svc.ns.svc.cluster.local", 80, "http", "http://svc.ns.svc.cluster.local:80/health")),
    ],
    ids=["url", "host-port", "service-name"],
)
def test_resolve_target_understands_urls_addresses_and_names(target: str, kwargs: dict[str, object],
                                                             expected: tuple[object, ...]) -> None:
    e = resolve_target(target, **kwargs)  # type: ignore[arg-type]
    assert (e.host, e.port, e.protocol, e.url) == expected


def test_resolve_target_without_port_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOE_SERVICES", raising=False)
    with pytest.raises(ConfigError, match="no port"):
        resolve_target("svc", namespace="ns")


def test_postgres_probe_answers_select_1(postgres_server: Postgres) -> None:
    result = probe_postgres(postgres_server.host, postgres_server.port, password=postgres_server.password,
                            timeout=5)
    assert result.ok, str(result)


def test_postgres_probe_with_wrong_password_fails_the_sql_hop(postgres_server: Postgres) -> None:
    result = probe_postgres(postgres_server.host, postgres_server.port, password="wrong", timeout=5)
    assert (result.ok, result.hop) == (False, "sql")
    assert "password authentication failed" in result.detail


def test_postgres_probe_of_a_silent_server_is_bounded(silent_server: SilentServer) -> None:
    start = time.monotonic()
    result = probe_postgres("127.0.0.1", silent_server.port, password="x", timeout=1)
    assert (result.ok, result.hop) == (False, "sql")
    assert time.monotonic() - start < 4
