"""Concurrent health checks against real local servers; absent vs broken."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from testing.endpoints import Endpoint
from testing.errors import HealthCheckFailed, ServiceUnavailable
from testing.health import ServiceRequirement, check_services, probe_many
from testing.k8s_client import KubeClient

from .conftest import HttpServer, Postgres, SilentServer
from .k8s_fakes import FakeCore, pod


def services_env(*entries: dict[str, object]) -> dict[str, str]:
    return {"FLOE_SERVICES": json.dumps(list(entries))}


def http_entry(name: str, port: int, **extra: object) -> dict[str, object]:
    return {"name": name, "host": "127.0.0.1", "port": port, "protocol": "http", "path": "/", **extra}


def test_healthy_absent_and_broken_are_told_apart(http_server: HttpServer, silent_server: SilentServer) -> None:
    env = services_env(http_entry("dagster", http_server.port), http_entry("polaris", silent_server.port))
    report = check_services(["dagster", "polaris", "minio"], timeout=0.6, probe_timeout=0.2, interval=0.05,
                            environ=env)
    assert {s.name: s.status for s in report.services} == {"dagster": "healthy", "polaris": "broken",
                                                           "minio": "absent"}
    assert "http hop failed" in report.by_status("broken")[0].detail


def test_broken_wins_over_absent_when_raising(silent_server: SilentServer) -> None:
    env = services_env(http_entry("polaris", silent_server.port))
    report = check_services(["polaris", "minio"], timeout=0.3, probe_timeout=0.1, interval=0.05, environ=env)
    with pytest.raises(HealthCheckFailed, match="present but broken: polaris"):
        report.raise_for_status()


def test_only_absent_raises_service_unavailable() -> None:
    report = check_services(["minio"], timeout=1, environ=services_env())
    with pytest.raises(ServiceUnavailable, match="minio"):
        report.raise_for_status()


def test_services_are_checked_concurrently(silent_servers: Callable[[], SilentServer]) -> None:
    servers = [silent_servers() for _ in range(4)]
    env = services_env(*(http_entry(f"s{i}", s.port) for i, s in enumerate(servers)))
    start = time.monotonic()
    report = check_services([f"s{i}" for i in range(4)], timeout=0.8, probe_timeout=0.3, interval=0.05,
                            environ=env)
    elapsed = time.monotonic() - start
    assert all(s.status == "broken" for s in report.services)
    assert elapsed < 1.6, f"4 services x 0.8 s took {elapsed:.2f}s: not concurrent"


def test_crashing_pods_make_a_service_broken_with_the_pod_report(http_server: HttpServer) -> None:
    env = services_env(http_entry("dagster", http_server.port, namespace="floe-platform",
                                  pod_selector="app=dagster"))
    core = FakeCore(pod_sequence=[[pod("dagster-0", waiting="CrashLoopBackOff", restarts=2, ready=False)]])
    report = check_services(["dagster"], kube=KubeClient(core=core, networking=object()), timeout=5,
                            environ=env)
    (health,) = report.services
    assert health.status == "broken"
    assert "pod/dagster-0 in namespace floe-platform: CrashLoopBackOff" in health.detail


def test_postgres_requirement_runs_a_query(postgres_server: Postgres) -> None:
    env = {**services_env({"name": "postgres", "host": postgres_server.host, "port": postgres_server.port,
                           "protocol": "tcp"}), "FLOE_POSTGRES_PASSWORD": postgres_server.password}
    report = check_services(["postgres"], timeout=10, environ=env)
    assert report.healthy, report.summary()
    assert "SELECT 1 answered" in report.services[0].detail


def test_postgres_requirement_with_bad_password_is_broken_not_healthy(postgres_server: Postgres) -> None:
    env = {**services_env({"name": "postgres", "host": postgres_server.host, "port": postgres_server.port,
                           "protocol": "tcp"}), "FLOE_POSTGRES_PASSWORD": "wrong"}
    report = check_services([ServiceRequirement("postgres", probe="postgres")], timeout=1, interval=0.1,
                            environ=env)
    assert report.services[0].status == "broken"
    assert "password authentication failed" in report.services[0].detail


def test_probe_many_fans_out(http_server: HttpServer, silent_servers: Callable[[], SilentServer]) -> None:
    endpoints = [Endpoint(f"s{i}", "127.0.0.1", silent_servers().port, "http") for i in range(3)]
    endpoints.append(Endpoint("ok", "127.0.0.1", http_server.port, "http"))
    start = time.monotonic()
    results = probe_many(endpoints, probe_timeout=0.4)
    assert time.monotonic() - start < 1.0
    assert [r.ok for r in results] == [False, False, False, True]


def test_a_probe_that_cannot_succeed_ends_the_wait_at_once(monkeypatch: pytest.MonkeyPatch,
                                                           postgres_server: Postgres) -> None:
    # A missing client library will not appear by asking again: the check must say so at once,
    # not after the whole health timeout (found in a real cluster: the runner image lacked psycopg).
    import builtins

    real_import = builtins.__import__

    def no_psycopg(name: str, *args: object, **kwargs: object) -> object:
        if name == "psycopg":
            raise ImportError("No module named 'psycopg'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    env = {**services_env({"name": "postgres", "host": postgres_server.host, "port": postgres_server.port,
                           "protocol": "tcp"}), "FLOE_POSTGRES_PASSWORD": postgres_server.password}
    start = time.monotonic()
    report = check_services(["postgres"], timeout=30, interval=0.05, environ=env)
    assert time.monotonic() - start < 5
    (health,) = report.services
    assert health.status == "broken"
    assert "gave up" in health.detail
    assert "psycopg is not installed" in health.detail
