"""Live: the E2E services' offline images (make airgapped-images E2E=1) keep the upstream charts' contracts.

Each image runs under ``docker run`` and is checked as its chart uses it: the user it runs as, its entry
point, the port and path of the chart's probes, and the version it reports. The services are also wired
together as the E2E profile wires them: OTLP traces through the collector into Jaeger (found again through
Jaeger's query API), Prometheus scraping the collector's own metrics, Nessie (the Polaris stand-in)
writing an Iceberg table's metadata into moto's S3 (the MinIO stand-in).

The images take tens of minutes to build cold (Go builds), so they are not built here: when one is
missing at its current content hash, the tests skip naming ``make airgapped-images E2E=1``.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_build.e2e_images import E2E_IMAGE_KEYS
from floe_build.service_images import ServiceImages
from floe_model.paths import REPO_ROOT
from floe_model.versions import load_versions
from testing.errors import WaitTimeout
from testing.polling import Check, wait_for_condition
from tests.docker._docker import Container, config, docker, docker_reason, network, running

pytestmark = pytest.mark.skipif(docker_reason() is not None, reason=f"needs Docker: {docker_reason()}")

#: The real chart archives (the offline chart repository beside the checkout).
CHARTS = Path(os.environ.get("FLOE_CHART_ARCHIVES", REPO_ROOT.parent / "shared" / "charts"))


@pytest.fixture(scope="module")
def refs() -> dict[str, str]:
    images = ServiceImages()
    missing = images.missing(E2E_IMAGE_KEYS)
    if missing:
        pytest.skip(f"E2E images not built: {', '.join(missing)} (make airgapped-images E2E=1)")
    return images.build(E2E_IMAGE_KEYS)  # all cached: only re-tags the fixed refs


def http(url: str, *, method: str = "GET", body: bytes | None = None, timeout: float = 5) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(exc).encode()


def wait_http(container: Container, url: Callable[[], str], *, timeout: float = 120, want: int = 200) -> bytes:
    def answered() -> Check[tuple[int, bytes]]:
        status, body = http(url())
        return Check(status == want, (status, body[:200]))

    try:
        result = wait_for_condition(answered, timeout=timeout, interval=1, description=f"{url()} in {container.name}")
    except WaitTimeout as exc:
        pytest.fail(f"{exc}\ncontainer log:\n{container.logs()}")
    assert result is not None
    return result[1]


def wait_for(check: Callable[[], Check[Any]], container: Container, what: str, timeout: float = 120) -> Any:
    try:
        return wait_for_condition(check, timeout=timeout, interval=2, description=f"{what} ({container.name})")
    except WaitTimeout as exc:
        pytest.fail(f"{exc}\ncontainer log:\n{container.logs()}")


def process_ids(container: Container) -> str:
    """``"UID GID"`` of the container's main process, from /proc (scratch images have no `id`)."""
    status = docker("inspect", "-f", "{{.State.Pid}}", container.name)
    lines = Path(f"/proc/{status}/status").read_text().splitlines()
    return " ".join(line.split(":", 1)[1].split()[0] for line in lines if line.startswith(("Uid:", "Gid:")))


def _helm() -> Path:
    from floe_build.toolchain import Toolchain

    chain = Toolchain()
    return chain.tool_dir("helm", chain.pinned("helm")) / "bin" / "helm"


def chart_archive(key: str) -> Path:
    pin = load_versions().charts[key]
    archive = CHARTS / f"{pin.name}-{pin.version}.tgz"
    assert archive.is_file(), f"chart {key}: {archive} is missing (the offline chart repository, ../shared/charts)"
    return archive


def render(chart_key: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    helm = _helm()
    assert helm.is_file(), f"helm: the pinned version is not installed at {helm} (make tools)"
    proc = subprocess.run(
        [str(helm), "template", "rel", str(chart_archive(chart_key)), "--kube-version", "1.34.0", "-f", "-"],
        input=yaml.safe_dump(values),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


# ------------------------------------------------------------------------------ collector, Jaeger, Prometheus
def collector_relay_config(refs: dict[str, str], jaeger_host: str) -> str:
    """The collector's config as the opentelemetry-collector chart renders it, with the E2E profile's export
    of traces to Jaeger over OTLP (the chart's default receivers stay in: jaeger, prometheus, zipkin)."""
    repository, tag = refs["otel-collector-airgapped"].rsplit(":", 1)
    docs = render(
        "opentelemetry-collector",
        {
            "mode": "deployment",
            "image": {"repository": repository, "tag": tag},
            "config": {
                "exporters": {"otlp/jaeger": {"endpoint": f"{jaeger_host}:4317", "tls": {"insecure": True}}},
                "service": {"pipelines": {"traces": {"exporters": ["otlp/jaeger"]}}},
            },
        },
    )
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    # What the image must do with the chart's pod: no command (the image's entry point), args only.
    assert "command" not in container and container["args"] == ["--config=/conf/relay.yaml"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/", "port": 13133}
    return str(config_map["data"]["relay"])


def otlp_span(service: str) -> bytes:
    now = time.time_ns()
    span = {
        "traceId": os.urandom(16).hex(),
        "spanId": os.urandom(8).hex(),
        "name": "image-test-span",
        "kind": 1,
        "startTimeUnixNano": str(now - 1_000_000),
        "endTimeUnixNano": str(now),
    }
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": [span]}]}]}).encode()


def test_collector_jaeger_and_prometheus_work_together_as_in_the_e2e_profile(refs, tmp_path):
    collector_ref, jaeger_ref, prometheus_ref = (
        refs["otel-collector-airgapped"],
        refs["jaeger-airgapped"],
        refs["prometheus-airgapped"],
    )
    assert config(collector_ref, "Entrypoint") == '["/otelcol-contrib"]'
    assert config(collector_ref, "User") == '"10001:10001"'
    assert (
        config(jaeger_ref, "Entrypoint") == '["/cmd/jaeger/jaeger-linux"]' and config(jaeger_ref, "User") == '"10001"'
    )
    with network() as net:
        relay = tmp_path / "conf"
        relay.mkdir()
        (relay / "relay.yaml").write_text(collector_relay_config(refs, "jaeger"))
        relay.chmod(0o755)
        (relay / "relay.yaml").chmod(0o644)
        prom = tmp_path / "prom"
        prom.mkdir()
        (prom / "prometheus.yml").write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "2s"},
                    "scrape_configs": [{"job_name": "otel", "static_configs": [{"targets": ["collector:8888"]}]}],
                }
            )
        )
        prom.chmod(0o755)
        (prom / "prometheus.yml").chmod(0o644)
        pod_env = [f"--env={k}=0.0.0.0" for k in ("MY_POD_IP", "OTEL_K8S_POD_IP")]
        pod_env += [f"--env={k}=test" for k in ("OTEL_K8S_NODE_NAME", "OTEL_K8S_NAMESPACE", "OTEL_K8S_POD_NAME")]
        with (
            running(jaeger_ref, options=["--network", net, "--network-alias", "jaeger"]) as jaeger,
            running(
                collector_ref,
                "--config=/conf/relay.yaml",
                options=["--network", net, "--network-alias", "collector", "-v", f"{relay}:/conf:ro", *pod_env],
            ) as collector,
            running(
                prometheus_ref,
                "--config.file=/etc/prometheus/custom/prometheus.yml",
                "--storage.tsdb.path=/prometheus",
                options=["--network", net, "-v", f"{prom}:/etc/prometheus/custom:ro"],
            ) as prometheus,
        ):
            # The charts' probes: the collector's health_check, Jaeger's healthcheckv2, Prometheus /-/ready.
            wait_http(collector, lambda: f"http://{collector.ip}:13133/")
            wait_http(jaeger, lambda: f"http://{jaeger.ip}:13133/status")
            wait_http(prometheus, lambda: f"http://{prometheus.ip}:9090/-/ready")
            assert process_ids(collector) == "10001 10001"
            assert process_ids(jaeger) == "10001 10001"
            assert process_ids(prometheus) == "65534 65534"

            service = f"floe-image-test-{os.getpid()}"
            status, body = http(f"http://{collector.ip}:4318/v1/traces", method="POST", body=otlp_span(service))
            assert status == 200, body

            def span_in_jaeger() -> Check[str]:
                status, body = http(f"http://{jaeger.ip}:16686/api/traces?service={service}&limit=5")
                found = status == 200 and any(
                    s["operationName"] == "image-test-span" for t in json.loads(body)["data"] for s in t["spans"]
                )
                return Check(found, f"HTTP {status}: {body[:200]!r}")

            wait_for(span_in_jaeger, collector, f"the span of {service} in Jaeger's query API", timeout=90)

            def collector_scraped() -> Check[str]:
                query = urllib.request.quote('count({__name__=~"otelcol_.+",job="otel"})')
                status, body = http(f"http://{prometheus.ip}:9090/api/v1/query?query={query}")
                result = json.loads(body)["data"]["result"] if status == 200 else []
                return Check(bool(result) and float(result[0]["value"][1]) > 0, f"HTTP {status}: {body[:200]!r}")

            wait_for(collector_scraped, prometheus, "the collector's own metrics in Prometheus", timeout=90)


def test_collector_reports_its_release_and_holds_the_chart_default_components(refs):
    ref = refs["otel-collector-airgapped"]
    version = load_versions().images["otel-collector-airgapped"].tag
    assert f"version {version}" in docker("run", "--rm", ref, "--version")
    components = yaml.safe_load(docker("run", "--rm", ref, "components"))
    names = {
        kind: {c["name"] for c in components[kind]} for kind in ("receivers", "processors", "exporters", "extensions")
    }
    assert {"otlp", "jaeger", "prometheus", "zipkin"} <= names["receivers"]
    assert {"batch", "memory_limiter"} <= names["processors"]
    assert {"debug", "otlp_grpc", "otlp_http", "prometheus"} <= names["exporters"] or {
        "debug",
        "otlp",
        "otlphttp",
        "prometheus",
    } <= names["exporters"]
    assert "health_check" in names["extensions"]


def test_prometheus_keeps_the_upstream_image_contract(refs):
    ref = refs["prometheus-airgapped"]
    assert config(ref, "Entrypoint") == '["/bin/prometheus"]'
    assert config(ref, "Cmd") == '["--config.file=/etc/prometheus/prometheus.yml","--storage.tsdb.path=/prometheus"]'
    assert config(ref, "User") == '"65534:65534"' and config(ref, "WorkingDir") == '"/prometheus"'
    assert "9090/tcp" in config(ref, "ExposedPorts")
    version = load_versions().images["prometheus-airgapped"].tag.lstrip("v")
    assert f"prometheus, version {version} " in docker("run", "--rm", ref, "--version")
    assert f"promtool, version {version} " in docker("run", "--rm", "--entrypoint", "/bin/promtool", ref, "--version")
    # The default command: the example configuration, storage in /prometheus, answered on the chart's probe path.
    with running(ref, options=["--read-only", "--tmpfs", "/prometheus:uid=65534,gid=65534"]) as prometheus:
        wait_http(prometheus, lambda: f"http://{prometheus.ip}:9090/-/ready")
        status, body = http(f"http://{prometheus.ip}:9090/api/v1/status/buildinfo")
        assert status == 200 and json.loads(body)["data"]["version"] == version


@pytest.mark.parametrize(
    ("key", "entrypoint"),
    [
        ("prometheus-operator-airgapped", "/bin/operator"),
        ("prometheus-config-reloader-airgapped", "/bin/prometheus-config-reloader"),
    ],
    ids=["operator", "config-reloader"],
)
def test_prometheus_operator_binaries_keep_their_paths_user_and_version(refs, key, entrypoint):
    ref = refs[key]
    assert config(ref, "Entrypoint") == json.dumps([entrypoint]) and config(ref, "User") == '"65534"'
    version = load_versions().images[key].tag.lstrip("v")
    out = subprocess.run(["docker", "run", "--rm", ref, "--version"], capture_output=True, text=True, timeout=120)
    assert f"version {version}" in out.stdout + out.stderr


def kube_prometheus_stack_values(refs: dict[str, str]) -> dict[str, Any]:
    """The kube-prometheus-stack values that swap the three images in (registry docker.io: an empty
    registry renders a reference starting with '/')."""

    def image(key: str) -> dict[str, str]:
        repository, tag = refs[key].rsplit(":", 1)
        return {"registry": "docker.io", "repository": repository, "tag": tag}

    return {
        "alertmanager": {"enabled": False},
        "grafana": {"enabled": False},
        "nodeExporter": {"enabled": False},
        "kubeStateMetrics": {"enabled": False},
        "prometheusOperator": {
            "image": image("prometheus-operator-airgapped"),
            "prometheusConfigReloader": {"image": image("prometheus-config-reloader-airgapped")},
            "admissionWebhooks": {"enabled": False},
            "tls": {"enabled": False},
        },
        "prometheus": {"prometheusSpec": {"image": image("prometheus-airgapped")}},
    }


def test_operator_accepts_the_args_kube_prometheus_stack_gives_it(refs):
    docs = render("kube-prometheus-stack", kube_prometheus_stack_values(refs))
    (operator,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "docker.io/" + refs["prometheus-operator-airgapped"] and "command" not in container
    reloader = "--prometheus-config-reloader=docker.io/" + refs["prometheus-config-reloader-airgapped"]
    assert reloader in container["args"]
    (prometheus,) = [d for d in docs if d["kind"] == "Prometheus"]
    assert prometheus["spec"]["image"] == "docker.io/" + refs["prometheus-airgapped"]
    assert prometheus["spec"]["version"] == load_versions().images["prometheus-airgapped"].tag
    # Out of a cluster the operator stops at the API server connection, after its flags parsed.
    out = subprocess.run(
        ["docker", "run", "--rm", "--read-only", refs["prometheus-operator-airgapped"], *container["args"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    log = out.stdout + out.stderr
    assert out.returncode != 0 and "flag provided but not defined" not in log and "KUBERNETES_SERVICE_HOST" in log, log


def test_metrics_server_reports_its_version_and_runs_as_nobody(refs):
    ref = refs["metrics-server-airgapped"]
    assert config(ref, "Entrypoint") == '["/metrics-server"]' and config(ref, "User") == '"65534"'
    assert docker("run", "--rm", ref, "--version") == load_versions().images["metrics-server-airgapped"].tag
    # The chart's args up to the kubeconfig: flags parse, and it stops only for lack of a cluster.
    chart = render("metrics-server", {"image": {"repository": "x", "tag": "y"}, "args": ["--kubelet-insecure-tls"]})
    (deployment,) = [d for d in chart if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "command" not in container
    out = subprocess.run(
        ["docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", ref, *container["args"]],  # noqa: S108 - its own tmpfs
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        out.returncode != 0
        and "unknown flag" not in out.stderr
        and "KUBERNETES_SERVICE_HOST" in out.stderr + out.stdout
    ), out.stderr[-2000:]


def test_jaeger_reports_its_release_and_fits_the_jaeger_charts_pod(refs):
    ref = refs["jaeger-airgapped"]
    out = json.loads(docker("run", "--rm", ref, "version").splitlines()[-1])
    assert out["gitVersion"] == "v" + load_versions().images["jaeger-airgapped"].tag
    repository, tag = ref.rsplit(":", 1)
    docs = render("jaeger", {"jaeger": {"image": {"repository": repository, "tag": tag}}})
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    # No command, no args: the image's entry point with its embedded all-in-one configuration.
    assert container["image"] == ref and "command" not in container and not container.get("args")
    assert container["readinessProbe"]["httpGet"] == {"path": "/status", "port": 13133, "scheme": "HTTP"}
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


# ------------------------------------------------------------------------------------------------ Redis
def test_redis_runs_the_profile_args_as_uid_999_and_answers_ping_over_the_network(refs):
    ref = refs["redis-airgapped"]
    assert config(ref, "Entrypoint") == '["docker-entrypoint.sh"]' and config(ref, "Cmd") == '["redis-server"]'
    assert config(ref, "WorkingDir") == '"/data"' and "6379/tcp" in config(ref, "ExposedPorts")
    version = load_versions().images["redis-airgapped"].tag.split("-")[0]
    assert f"v={version} " in docker("run", "--rm", ref, "redis-server", "--version")
    with network() as net:
        # As root (upstream's default: the entry point drops to redis) and as the profile runs it (uid 999,
        # read-only root file system, the deployment's flags only).
        for options in (["--network", net], ["--network", net, "--user", "999:999", "--read-only", "--tmpfs", "/data"]):
            with running(ref, "--save", "", "--appendonly", "no", "--dir", "/data", options=options) as redis:

                def pong() -> Check[str]:
                    probe = subprocess.run(
                        [
                            "docker",
                            "run",
                            "--rm",
                            "--network",
                            net,
                            "--entrypoint",
                            "redis-cli",
                            ref,
                            "-h",
                            redis.name,
                            "ping",
                        ],
                        capture_output=True,
                        text=True,
                        timeout=60,
                        check=False,
                    )
                    return Check(probe.stdout.strip() == "PONG", (probe.stdout + probe.stderr).strip())

                wait_for(pong, redis, "PONG from another container")
                assert process_ids(redis) == "999 999"


# ------------------------------------------------------------------------------------- MinIO and Polaris stand-ins
S3_ROUND_TRIP = """
import boto3
s3 = boto3.client("s3", endpoint_url="http://minio:9000", aws_access_key_id="floe-admin",
                  aws_secret_access_key="secret-key", region_name="us-east-1")
s3.create_bucket(Bucket="roundtrip")
s3.put_object(Bucket="roundtrip", Key="a/b.txt", Body=b"hello s3")
print(s3.get_object(Bucket="roundtrip", Key="a/b.txt")["Body"].read().decode())
"""


def test_moto_runs_the_minio_charts_command_and_its_bucket_job(refs):
    ref = refs["moto-airgapped"]
    docs = render(
        "minio",
        {
            "mode": "standalone",
            "replicas": 1,
            "rootUser": "floe-admin",
            "rootPassword": "secret-key",
            "persistence": {"enabled": False},
            "resources": {"requests": {"memory": "256Mi"}},
            "buckets": [{"name": "floe-warehouse", "policy": "none", "purge": False}],
            "users": [],  # the chart's default console user needs `mc admin`, which the stand-in refuses
        },
    )
    (job,) = [d for d in docs if d["kind"] == "Job"]
    assert [c["command"] for c in job["spec"]["template"]["spec"]["containers"]] == [["/bin/sh", "/config/initialize"]]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (server,) = deployment["spec"]["template"]["spec"]["containers"]
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    with (
        network() as net,
        running(
            ref,
            *server["command"][1:],
            options=[
                "--network",
                net,
                "--network-alias",
                "minio",
                "--user",
                "1000:1000",
                "--entrypoint",
                server["command"][0],
                "-e",
                "MINIO_ROOT_USER=floe-admin",
                "-e",
                "MINIO_ROOT_PASSWORD=secret-key",
            ],
        ) as minio,
    ):
        wait_http(minio, lambda: f"http://{minio.ip}:9000/minio/health/ready")
        wait_http(minio, lambda: f"http://{minio.ip}:9000/minio/health/live")
        job = subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "-i",
                "--network",
                net,
                "-e",
                "MINIO_ENDPOINT=minio",
                "-e",
                "MINIO_PORT=9000",
                "--tmpfs",
                "/etc/minio/mc",
                "--entrypoint",
                "/bin/sh",
                ref,
                "-c",
                "mkdir -p /config && printf floe-admin >/config/rootUser && printf secret-key >/config/rootPassword"
                " && cat >/config/initialize && /bin/sh /config/initialize",
            ],
            input=config_map["data"]["initialize"],
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert job.returncode == 0, job.stdout + job.stderr
        assert "Creating bucket 'floe-warehouse'" in job.stdout, job.stdout + job.stderr
        client = ["docker", "run", "--rm", "--network", net, "--entrypoint", "python", ref, "-c"]
        listing = subprocess.run([*client, S3_ROUND_TRIP], capture_output=True, text=True, timeout=120, check=False)
        assert listing.stdout.strip() == "hello s3", listing.stderr[-2000:]


#: Polaris chart values that run the Nessie stand-in (also in docs/guides/air-gapped.md): the image, and
#: Nessie's warehouse and S3 settings as advancedConfig (the chart writes them into application.properties);
#: the S3 keys come from the environment (FLOE_S3_NAME/FLOE_S3_SECRET, from a Secret in a cluster).
def polaris_chart_values(ref: str, s3_endpoint: str) -> dict[str, Any]:
    repository, tag = ref.rsplit(":", 1)
    options = "nessie.catalog.service.s3.default-options"
    return {
        "image": {"repository": repository, "tag": tag},
        "persistence": {"type": "in-memory"},
        "advancedConfig": {
            "nessie.version.store.type": "IN_MEMORY",
            "nessie.catalog.default-warehouse": "warehouse",
            "nessie.catalog.warehouses.warehouse.location": "s3://warehouse/",
            f"{options}.endpoint": s3_endpoint,
            f"{options}.path-style-access": "true",
            f"{options}.region": "us-east-1",
            f"{options}.access-key": "urn:nessie-secret:quarkus:floe.s3",
        },
    }


def test_nessie_runs_the_polaris_charts_config_and_writes_iceberg_tables_into_s3(refs, tmp_path):
    ref = refs["nessie-airgapped"]
    assert config(ref, "User") == '"10000:10001"' and config(ref, "Entrypoint") == '["run-java.sh"]'
    assert config(ref, "WorkingDir") == '"/deployments"'
    assert 'version "21.' in docker("run", "--rm", "--entrypoint", "sh", ref, "-c", "java -version 2>&1")
    docs = render("polaris", polaris_chart_values(ref, "http://minio:9000/"))
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "command" not in container and "args" not in container
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"/deployments/config", "/tmp"}  # noqa: S108 - the chart's emptyDir
    assert {(p["name"], p["containerPort"]) for p in container["ports"]} == {
        ("polaris-http", 8181),
        ("polaris-mgmt", 8182),
    }
    probes = {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")}
    assert probes == {"/q/health/live", "/q/health/ready"}
    pod = deployment["spec"]["template"]["spec"]
    user = f"{container['securityContext']['runAsUser']}:{pod['securityContext']['fsGroup']}"
    conf = tmp_path / "config"
    conf.mkdir()
    (conf / "application.properties").write_text(config_map["data"]["application.properties"])
    conf.chmod(0o755)
    (conf / "application.properties").chmod(0o644)
    moto = refs["moto-airgapped"]
    secrets = ["-e", "FLOE_S3_NAME=floe-admin", "-e", "FLOE_S3_SECRET=secret-key"]
    chart_pod = ["--user", user, "--read-only", "--tmpfs", "/tmp", "-v", f"{conf}:/deployments/config:ro"]  # noqa: S108
    with (
        network() as net,
        running(moto, "server", "/data", options=["--network", net, "--network-alias", "minio"]) as minio,
        running(ref, options=["--network", net, *chart_pod, *secrets]) as nessie,
    ):
        wait_http(minio, lambda: f"http://{minio.ip}:9000/minio/health/ready")
        make_bucket = S3_ROUND_TRIP.replace('"roundtrip"', '"warehouse"')
        client = ["docker", "run", "--rm", "--network", net, "--entrypoint", "python", moto, "-c"]
        made = subprocess.run([*client, make_bucket], capture_output=True, text=True, timeout=120, check=False)
        assert made.stdout.strip() == "hello s3", made.stderr[-2000:]
        # The Polaris chart's probes, then the Iceberg REST protocol itself.
        wait_http(nessie, lambda: f"http://{nessie.ip}:8182/q/health/ready", timeout=240)
        wait_http(nessie, lambda: f"http://{nessie.ip}:8182/q/health/live")
        assert process_ids(nessie) == "10000 10001"
        base = f"http://{nessie.ip}:8181/iceberg/v1"
        status, body = http(f"{base}/config")
        assert status == 200, body
        prefix = json.loads(body)["defaults"]["prefix"]
        status, body = http(f"{base}/{prefix}/namespaces", method="POST", body=b'{"namespace": ["floe"]}')
        assert status == 200, body
        table = {
            "name": "events",
            "stage-create": False,
            "schema": {
                "type": "struct",
                "schema-id": 0,
                "fields": [{"id": 1, "name": "id", "type": "long", "required": False}],
            },
        }
        status, body = http(f"{base}/{prefix}/namespaces/floe/tables", method="POST", body=json.dumps(table).encode())
        assert status == 200, body
        location = json.loads(body)["metadata-location"]
        assert location.startswith("s3://warehouse/floe/events")
        read_back = (
            "import boto3, json\n"
            "s3 = boto3.client('s3', endpoint_url='http://minio:9000', region_name='us-east-1',"
            " aws_access_key_id='a', aws_secret_access_key='b')\n"
            f"body = s3.get_object(Bucket='warehouse', Key='{location.removeprefix('s3://warehouse/')}')['Body']\n"
            "print(json.loads(body.read())['format-version'])\n"
        )
        fetched = subprocess.run([*client, read_back], capture_output=True, text=True, timeout=120, check=False)
        assert fetched.stdout.strip() in ("1", "2"), fetched.stderr[-2000:]
