"""The ``airgapped`` variants (integration; reduced e2e): local charts, locally built images, same endpoints."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from floe_test.airgap import service_images
from floe_test.paths import REPO_ROOT
from floe_test.render import render
from floe_test.versions import load_versions
from tests.unit.conftest import load_rendered, objects
from tests.unit.test_stacks import _image_refs

AIRGAPPED_KEYS = {
    "postgres-airgapped",
    "dagster-airgapped",
    "test-runner-airgapped",
    "python-base-airgapped",
    "busybox-airgapped",
}


def _pinned_helm() -> Path:
    """The pinned helm in the tool cache (there as soon as `make tools` ran once, even in a fresh clone)."""
    from floe_test.toolchain import Toolchain

    chain = Toolchain()
    return chain.tool_dir("helm", chain.pinned("helm")) / "bin" / "helm"


HELM = _pinned_helm()
CHART = REPO_ROOT / "charts" / "dagster-lite"


@pytest.fixture(scope="module", params=["integration", "e2e"])
def airgapped(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp(f"render-airgapped-{request.param}")
    render(request.param, out, overrides={"variant": "airgapped"})
    return load_rendered(out)


def _job_env(stack: dict[str, Any]) -> dict[str, str]:
    (job,) = objects(stack, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_every_manifest_validates_strictly(airgapped):
    version = load_versions().kubernetes_schema_version
    assert airgapped["manifests"]
    for manifest in airgapped["manifests"]:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_releases_use_only_local_charts(airgapped):
    assert set(airgapped["releases"]) == {"postgresql", "dagster"}  # the rest need registry images
    for name, release in airgapped["releases"].items():
        assert release["repo"] is None and release["version"] is None, name
        chart = Path(release["chart"])
        assert chart.is_relative_to(REPO_ROOT / "charts") and (chart / "Chart.yaml").is_file(), chart
    assert Path(airgapped["releases"]["dagster"]["chart"]) == CHART


def test_only_airgapped_images_are_deployed_or_preloaded(airgapped):
    versions = load_versions()
    allowed = {versions.images[k].repository for k in AIRGAPPED_KEYS if k in versions.images}
    for ref in airgapped["plan"]["images"]:
        assert ref.rsplit(":", 1)[0] in allowed, ref
    for name, release in airgapped["releases"].items():
        refs = _image_refs(release["values"])
        assert refs, name
        for ref in refs:
            assert ref.rsplit(":", 1)[0] in allowed and ref in airgapped["plan"]["images"], (name, ref)
    (job,) = objects(airgapped, "Job")
    images = {c["image"] for c in job["spec"]["template"]["spec"]["containers"]}
    assert {ref.rsplit(":", 1)[0] for ref in images} <= allowed


def test_airgapped_images_are_local_tags_never_pulled():
    versions = load_versions()
    for key in AIRGAPPED_KEYS:
        pin = versions.images[key]
        assert pin.repository.startswith("floe-testinfra/") and pin.digest is None, key
    assert versions.images["dagster-airgapped"].tag.split("-")[0] == versions.images["dagster"].tag
    assert {r.key for r in service_images.recipes(versions)} | {"test-runner-airgapped"} == AIRGAPPED_KEYS


def test_endpoints_are_those_of_the_default_profile(rendered, airgapped):
    stack = airgapped["plan"]["stack"]
    default, variant = _job_env(rendered[stack]), _job_env(airgapped)
    keys = [k for k in default if k.startswith(("FLOE_POSTGRES_", "FLOE_DAGSTER_"))]
    assert {k: variant.get(k) for k in keys} == {k: default[k] for k in keys}
    deployed = {e["name"]: e for e in json.loads(variant["FLOE_SERVICES"])}
    assert set(deployed) == {"postgres", "dagster"}
    assert [e for e in json.loads(default["FLOE_SERVICES"]) if e["name"] in deployed] == list(deployed.values())
    assert variant["FLOE_VARIANT"] == "airgapped" and default["FLOE_VARIANT"] == ""


def test_reduced_e2e_keeps_three_nodes_and_spreads_the_platform_pods(tmp_path):
    render("e2e", tmp_path, overrides={"variant": "airgapped"})
    airgapped = load_rendered(tmp_path)
    assert airgapped["plan"]["nodes"] == {"control-plane": 1, "worker": 2}
    for name in ("postgresql", "dagster"):
        values = airgapped["releases"][name]["values"]
        assert values["podLabels"] == {"floe.dev/spread": "platform"}, name
        (spread,) = values["topologySpreadConstraints"]
        assert spread["topologyKey"] == "kubernetes.io/hostname", name
        assert spread["labelSelector"] == {"matchLabels": {"floe.dev/spread": "platform"}}, name


def test_dagster_library_versions_follow_the_dagster_release():
    assert service_images.dagster_library_version("1.13.24") == "0.29.24"
    assert service_images.dagster_library_version("1.9.3") == "0.25.3"


def test_content_hash_changes_with_recipe_args_and_extra_ca(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    base = service_images.content_hash(tmp_path, {"args": {"A": "1"}}, {})
    assert base == service_images.content_hash(tmp_path, {"args": {"A": "1"}}, {})
    assert base != service_images.content_hash(tmp_path, {"args": {"A": "2"}}, {})
    assert base != service_images.content_hash(tmp_path, {"args": {"A": "1"}}, {"x.crt": b"pem"})
    (tmp_path / "Dockerfile").write_text('FROM scratch\nCMD ["sh"]\n')
    assert base != service_images.content_hash(tmp_path, {"args": {"A": "1"}}, {})


# ------------------------------------------------------------------------------------ charts/dagster-lite
def _helm_template(tmp_path: Path, release_values: dict[str, Any]) -> list[dict[str, Any]]:
    if not HELM.is_file():
        pytest.skip(f"helm: the pinned version is not installed at {HELM} (make tools)")
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(release_values))
    proc = subprocess.run(
        [str(HELM), "template", "dagster", str(CHART), "--namespace", "floe-platform", "-f", str(values)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def test_dagster_lite_renders_the_names_ports_and_labels_the_tests_use(tmp_path, airgapped):
    values = json.loads(json.dumps(airgapped["releases"]["dagster"]["values"]).replace("<secret:", "secret-<"))
    docs = _helm_template(tmp_path, values)
    version = load_versions().kubernetes_schema_version
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)
    by_kind: dict[str, dict[str, Any]] = {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}
    service = by_kind["Service/dagster-dagster-webserver"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    webserver = by_kind["Deployment/dagster-dagster-webserver"]["spec"]["template"]
    daemon = by_kind["Deployment/dagster-dagster-daemon"]["spec"]["template"]
    assert service["spec"]["selector"].items() <= webserver["metadata"]["labels"].items()
    for pod in (webserver, daemon):
        assert pod["metadata"]["labels"]["app.kubernetes.io/instance"] == "dagster"  # the endpoint's podSelector
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"] + spec["initContainers"]:
            assert container["image"] == load_versions().images["dagster-airgapped"].ref
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}
            assert sc["readOnlyRootFilesystem"] is True
    (web,) = webserver["spec"]["containers"]
    assert web["command"][:6] == ["dagster-webserver", "-h", "0.0.0.0", "-p", "80", "-w"]
    assert web["readinessProbe"]["httpGet"] == {"path": "/server_info", "port": "http"}
    (dmn,) = daemon["spec"]["containers"]
    assert dmn["command"][:2] == ["dagster-daemon", "run"]
    instance = yaml.safe_load(by_kind["ConfigMap/dagster-dagster-instance"]["data"]["dagster.yaml"])
    db = instance["storage"]["postgres"]["postgres_db"]
    assert db["hostname"] == "postgresql.floe-platform.svc.cluster.local"
    assert db["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert "secret-<" not in json.dumps(by_kind["ConfigMap/dagster-dagster-instance"])
    expected_spread = airgapped["releases"]["dagster"]["values"].get("topologySpreadConstraints")
    for pod in (webserver, daemon):
        assert pod["spec"].get("topologySpreadConstraints") == expected_spread


def test_dagster_lite_refuses_missing_password(tmp_path):
    if not HELM.is_file():
        pytest.skip(f"helm: the pinned version is not installed at {HELM} (make tools)")
    proc = subprocess.run(
        [str(HELM), "template", "dagster", str(CHART), "--set", "image.tag=x", "--set", "postgresql.postgresqlHost=pg"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0 and "postgresqlPassword is required" in proc.stderr
