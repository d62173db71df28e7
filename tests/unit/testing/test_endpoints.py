"""Endpoints come from the test Job's FLOE_* variables, one place, validated."""

from __future__ import annotations

import json

import pytest

from testing.endpoints import Endpoint, get_endpoint, load_endpoints
from testing.errors import ConfigError, ServiceUnavailable

SERVICES = [
    {"name": "postgres", "service": "postgres", "namespace": "floe-platform", "host": "postgres.floe-platform.svc",
     "port": 5432, "protocol": "tcp", "path": "/", "expect_status": 200, "pod_selector": "app=postgres"},
    {"name": "dagster", "service": "dagster-webserver", "namespace": "floe-platform",
     "host": "dagster-webserver.floe-platform.svc", "port": 80, "protocol": "http", "path": "/server_info",
     "expect_status": 200, "pod_selector": "app.kubernetes.io/instance=dagster"},
]


def env(**extra: str) -> dict[str, str]:
    return {"FLOE_SERVICES": json.dumps(SERVICES), **extra}


def test_services_json_gives_every_endpoint() -> None:
    endpoints = load_endpoints(env())
    assert sorted(endpoints) == ["dagster", "postgres"]
    assert endpoints["dagster"].probe_url == "http://dagster-webserver.floe-platform.svc:80/server_info"
    assert endpoints["postgres"].pod_selector == "app=postgres"


def test_per_service_variables_override_host_and_port() -> None:
    e = load_endpoints(env(FLOE_DAGSTER_HOST="127.0.0.1", FLOE_DAGSTER_PORT="3000"))["dagster"]
    assert (e.host, e.port, e.probe_url) == ("127.0.0.1", 3000, "http://127.0.0.1:3000/server_info")


def test_a_service_known_only_by_host_and_port_variables_is_found() -> None:
    e = load_endpoints({"FLOE_MINIO_HOST": "minio", "FLOE_MINIO_PORT": "9000",
                        "FLOE_MINIO_URL": "http://minio:9000/minio/health/ready"})["minio"]
    assert (e.protocol, e.path, e.base_url) == ("http", "/minio/health/ready", "http://minio:9000")


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("{not json", "-"),
        (json.dumps({"name": "x"}), "-"),
        (json.dumps([{"host": "h", "port": 1}]), "[0].name"),
        (json.dumps([{"name": "x", "host": "h", "port": "http"}]), "[0].port"),
        (json.dumps([{"name": "x", "host": "h", "port": 70000}]), "[0].port"),
        (json.dumps([{"name": "x", "host": "h", "port": 1, "protocol": "udp"}]), "[0].protocol"),
        (json.dumps([{"name": "x", "host": "h", "port": 1, "expect_status": 999}]), "[0].expect_status"),
        (json.dumps([{"name": "x", "port": 1}]), "[0].host"),
    ],
    ids=["invalid-json", "not-a-list", "no-name", "port-not-number", "port-out-of-range", "bad-protocol",
         "bad-status", "no-host"],
)
def test_bad_services_json_is_a_config_error_naming_the_field(raw: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_endpoints({"FLOE_SERVICES": raw})
    assert info.value.problems[0].field == field


def test_absent_service_is_unavailable_with_next_step() -> None:
    with pytest.raises(ServiceUnavailable, match=r"'polaris' is not deployed.*known: dagster, postgres"):
        get_endpoint("polaris", env())


def test_absent_environment_says_the_job_variables_are_missing() -> None:
    with pytest.raises(ServiceUnavailable, match="FLOE_SERVICES is not set"):
        get_endpoint("postgres", {})


def test_service_and_namespace_make_the_cluster_dns_name() -> None:
    raw = json.dumps([{"name": "p", "service": "pol", "namespace": "ns", "port": 8182}])
    assert load_endpoints({"FLOE_SERVICES": raw})["p"].host == "pol.ns.svc.cluster.local"


def test_endpoint_str_names_service_and_namespace() -> None:
    e = Endpoint("pg", "pg.ns.svc", 5432, service="pg", namespace="ns")
    assert str(e) == "pg (service/pg in namespace ns, tcp://pg.ns.svc:5432)"
