"""The chart contract (floe_test.contract) of both stacks and their offline variants: 4 renders.

Every release is templated from its REAL chart (the archive the chart cache holds: pulled, or from the
offline chart repository) with the merged values ``floe-test render`` records, by the pinned helm, for the
pinned Kubernetes. Nothing here skips: a missing chart or helm fails the test, naming what is missing.
The last tests put each of the four deploy blockers of issue 12 back and show the contract fail, naming
the release and the object.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.charts import ChartCache, ChartUnavailable, pinned_helm
from floe_model.image_ref import InvalidReference, is_valid, normalize
from floe_model.paths import CHARTS_DIR
from floe_model.versions import load_versions
from floe_test.contract import ContractReport, SchemaValidator, check_render, template_release
from floe_test.render import render

RENDERS = [("integration", ""), ("integration", "airgapped"), ("e2e", ""), ("e2e", "airgapped")]
KUBERNETES = load_versions().kubernetes


def _helm() -> Path:
    helm = pinned_helm()
    assert helm is not None, "the pinned helm is not installed: run `make tools` (chart tests never skip)"
    return helm


def _render(out: Path, stack: str, variant: str) -> Path:
    render(stack, out, overrides={"variant": variant} if variant else {})
    return out


@pytest.fixture(scope="module", params=RENDERS, ids=[f"{s}-{v or 'default'}" for s, v in RENDERS])
def contract(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ContractReport]:
    stack, variant = request.param
    out = _render(tmp_path_factory.mktemp(f"contract-{stack}-{variant or 'default'}"), stack, variant)
    return out, check_render(out, helm=_helm(), kube_version=KUBERNETES, variant=variant)


@pytest.fixture(scope="module")
def e2e_render(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _render(tmp_path_factory.mktemp("contract-e2e-base"), "e2e", "")


def test_every_release_meets_the_contract(contract: tuple[Path, ContractReport]) -> None:
    _out, report = contract
    print(report.summary())  # the object counts per release, in the test's output
    assert report.ok, report.summary()


def test_every_release_renders_objects_and_each_is_counted(contract: tuple[Path, ContractReport]) -> None:
    out, report = contract
    releases = {p.stem for p in (out / "releases").glob("*.yaml")}
    assert releases and set(report.objects) == releases | {"stack"}
    assert all(report.objects[r] > 0 for r in releases), report.objects
    assert report.endpoints, "the test Job describes no endpoint"


def test_pinned_releases_are_templated_from_the_cached_chart_archive(contract: tuple[Path, ContractReport]) -> None:
    out, _report = contract
    versions = load_versions()
    for path in (out / "releases").glob("*.yaml"):
        release = yaml.safe_load(path.read_text())
        if release["repo"] is None:
            assert Path(release["chart"]).parent == CHARTS_DIR, release["chart"]  # charts/<ours>
            continue
        pin = next(p for p in versions.charts.values() if p.name == release["chartName"])
        archive = Path(release["archive"])
        assert archive.name == f"{pin.name}-{pin.version}.tgz" and archive.is_file(), archive
        assert release["version"] == pin.version and release["source"] in {"cache", "pulled", "offline repository"}


def test_the_offline_variants_substitute_images_never_charts(tmp_path: Path) -> None:
    for stack in ("integration", "e2e"):
        charts = {}
        for variant in ("", "airgapped"):
            out = _render(tmp_path / f"{stack}-{variant or 'default'}", stack, variant)
            charts[variant] = {
                p.stem: (yaml.safe_load(p.read_text()).get("archive") or yaml.safe_load(p.read_text())["chart"])
                for p in (out / "releases").glob("*.yaml")
            }
        assert charts["airgapped"], stack
        assert {r: charts[""][r] for r in charts["airgapped"]} == charts["airgapped"], stack
        assert charts["airgapped"]["dagster"].endswith(f"dagster-{load_versions().charts['dagster'].version}.tgz")
    assert not (Path(__file__).parents[2] / "charts" / "dagster-lite").exists()


def test_dagster_chart_and_images_are_one_release() -> None:
    versions = load_versions()
    release = versions.charts["dagster"].version
    assert versions.images["dagster"].tag == release
    assert versions.images["dagster-airgapped"].tag.split("-")[0] == release
    requirements = (Path(__file__).parents[2] / "images" / "dagster-code" / "requirements.txt").read_text()
    assert f"\ndagster=={release}\n" in requirements


# ------------------------------------------------------------------------------- the four blockers back
def _copy(render_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "render"
    shutil.copytree(render_dir, copy)
    return copy


def _edit_values(out: Path, release: str, edit: Any) -> None:
    path = out / "releases" / f"{release}.yaml"
    data = yaml.safe_load(path.read_text())
    edit(data["values"])
    path.write_text(yaml.safe_dump(data))


def _findings(out: Path) -> list[str]:
    return [str(f) for f in check_render(out, helm=_helm(), kube_version=KUBERNETES).findings]


def test_blocker_empty_registry_fails_naming_the_release_and_the_object(e2e_render: Path, tmp_path: Path) -> None:
    out = _copy(e2e_render, tmp_path)

    def empty_registry(values: dict[str, Any]) -> None:
        image = values["prometheusOperator"]["image"]
        image["repository"] = f"{image['registry']}/{image['repository']}"
        image["registry"] = ""

    _edit_values(out, "monitoring", empty_registry)
    findings = _findings(out)
    assert findings and all(f.startswith("release monitoring: Deployment/monitoring-operator") for f in findings)
    assert any("'/quay.io/prometheus-operator/prometheus-operator:v0.93.1' is not a valid" in f for f in findings)


def test_blocker_kube_system_namespace_fails(e2e_render: Path, tmp_path: Path) -> None:
    out = _copy(e2e_render, tmp_path)
    labels = {"pod-security.kubernetes.io/enforce": "baseline"}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "labels": labels}}
    (out / "manifests" / "namespace-kube-system.yaml").write_text(yaml.safe_dump(namespace))
    (finding,) = _findings(out)
    assert finding.startswith("release stack: Namespace/kube-system: a namespace every cluster has")


def test_blocker_dagster_without_user_deployments_fails(e2e_render: Path, tmp_path: Path) -> None:
    out = _copy(e2e_render, tmp_path)

    def no_code_location(values: dict[str, Any]) -> None:
        values["dagster-user-deployments"] = {"enabled": False, "enableSubchart": False}

    _edit_values(out, "dagster", no_code_location)
    (finding,) = _findings(out)
    assert finding.startswith("release -: endpoint dagster-code (service/floe-demo in namespace floe-platform")
    assert finding.endswith("no release renders this Service")


def test_blocker_minio_selector_no_pod_carries_fails(e2e_render: Path, tmp_path: Path) -> None:
    import json

    out = _copy(e2e_render, tmp_path)
    job_path = next((out / "manifests").glob("*job-test-runner.yaml"))
    job = yaml.safe_load(job_path.read_text())
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    entry = next(e for e in env if e["name"] == "FLOE_SERVICES")
    services = json.loads(entry["value"])
    next(s for s in services if s["name"] == "minio")["pod_selector"] = "app.kubernetes.io/instance=minio"
    entry["value"] = json.dumps(services)
    job_path.write_text(yaml.safe_dump(job))
    (finding,) = _findings(out)
    assert finding.startswith("release minio: endpoint minio (service/minio in namespace floe-platform, port 9000)")
    assert "pod_selector 'app.kubernetes.io/instance=minio' matches no pod" in finding


def test_a_misspelt_field_of_a_custom_resource_is_rejected_by_its_crd(e2e_render: Path) -> None:
    release = yaml.safe_load((e2e_render / "releases" / "monitoring.yaml").read_text())
    objects = template_release(release, helm=_helm(), kube_version=KUBERNETES).objects
    crds = [o for o in objects if o["kind"] == "CustomResourceDefinition"]
    (prometheus,) = [o for o in objects if o["kind"] == "Prometheus"]
    validator = SchemaValidator(KUBERNETES, crds)
    assert validator.problems(prometheus) == []
    bad = {**prometheus, "spec": {**prometheus["spec"], "retentionn": "6h"}}
    (problem,) = validator.problems(bad)
    assert "retentionn" in problem


def test_dagster_values_meet_its_schema_offline_where_helm_cannot_check_them(e2e_render: Path, tmp_path: Path) -> None:
    release = yaml.safe_load((e2e_render / "releases" / "dagster.yaml").read_text())
    assert release["schemaValidation"] == "on" or release["schemaValidation"].startswith("skipped: ")
    out = _copy(e2e_render, tmp_path)

    def stand_in_key(values: dict[str, Any]) -> None:
        values["dagsterWebserver"]["podLabels"] = {"floe.dev/spread": "platform"}  # dagster-lite's key, not the chart's

    _edit_values(out, "dagster", stand_in_key)
    if release["schemaValidation"] == "on":  # Helm validates it (the schema's references are readable here)
        with pytest.raises(RuntimeError, match="podLabels"):
            _findings(out)
        return
    (finding,) = _findings(out)
    assert finding.startswith("release dagster: values: values of the chart: dagsterWebserver: ")
    assert "'podLabels' was unexpected" in finding


def test_a_kind_no_schema_knows_is_a_finding() -> None:
    problems = SchemaValidator(KUBERNETES, []).problems({"apiVersion": "example.com/v1", "kind": "Widget"})
    assert problems and "neither built into Kubernetes" in problems[0]


# ------------------------------------------------------------------------------------------ the chart cache
def test_a_missing_chart_fails_naming_it_and_every_source_tried(tmp_path: Path) -> None:
    pin = load_versions().charts["polaris"]
    cache = ChartCache(cache_dir=tmp_path / "cache", offline_dir=tmp_path / "no-repo", allow_pull=False)
    with pytest.raises(ChartUnavailable) as info:
        cache.get("polaris", pin)
    message = str(info.value)
    assert f"chart polaris {pin.version} is not in {tmp_path / 'cache'}" in message
    assert "helm pull: not tried (offlineCharts=true)" in message
    assert f"offline chart repository {tmp_path / 'no-repo'}: no such folder" in message


def test_an_offline_archive_whose_digest_differs_from_the_index_is_refused(tmp_path: Path) -> None:
    pin = load_versions().charts["minio"]
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / f"minio-{pin.version}.tgz").write_bytes(b"not the chart")
    index = {"entries": {"minio": [{"version": pin.version, "urls": [f"minio-{pin.version}.tgz"], "digest": "0" * 64}]}}
    (repo / "index.yaml").write_text(yaml.safe_dump(index))
    cache = ChartCache(cache_dir=tmp_path / "cache", offline_dir=repo, allow_pull=False)
    with pytest.raises(ChartUnavailable, match=r"index\.yaml says 0000"):
        cache.get("minio", pin)


def test_rendering_a_stack_without_its_charts_fails_not_skips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from testing.errors import ConfigError

    monkeypatch.setenv("FLOE_OFFLINE_CHARTS", str(tmp_path / "empty"))
    with pytest.raises(ConfigError) as info:
        render("e2e", tmp_path / "out", overrides={"offlineCharts": "true", "chartCacheDir": str(tmp_path / "c")})
    for key in ("dagster", "polaris", "minio", "jaeger", "kube-prometheus-stack"):
        assert f"charts.{key}" in str(info.value)


# --------------------------------------------------------------------------------------------- references
@pytest.mark.parametrize(
    ("reference", "normalized"),
    [
        ("busybox:1.37.0", "docker.io/library/busybox:1.37.0"),
        ("floe-testinfra/postgres-airgapped:15-bookworm", "docker.io/floe-testinfra/postgres-airgapped:15-bookworm"),
        ("quay.io/prometheus/prometheus:v3.5.0", "quay.io/prometheus/prometheus:v3.5.0"),
        ("localhost:5000/x/y:1", "localhost:5000/x/y:1"),
        ("index.docker.io/dagster/dagster-celery-k8s:1.12.19", "docker.io/dagster/dagster-celery-k8s:1.12.19"),
        ("postgres:16@sha256:" + "a" * 64, "docker.io/library/postgres:16@sha256:" + "a" * 64),
    ],
    ids=["official", "user", "quay", "port", "legacy-hub", "digest"],
)
def test_references_normalise_as_containerd_stores_them(reference: str, normalized: str) -> None:
    assert normalize(reference) == normalized


@pytest.mark.parametrize(
    "reference",
    ["/quay.io/prometheus-operator/prometheus-operator:v0.93.1", "quay.io/X:1", "x:", "x@sha256:abc", "", "a//b:1"],
    ids=["leading-slash", "upper-path", "empty-tag", "short-digest", "empty", "empty-component"],
)
def test_invalid_references_are_rejected(reference: str) -> None:
    assert not is_valid(reference)
    with pytest.raises(InvalidReference):
        normalize(reference)
