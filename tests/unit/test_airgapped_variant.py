"""The ``airgapped`` variants (integration; reduced e2e): the same charts, locally built images, same endpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from floe_build import service_images
from floe_model.image_ref import normalize
from floe_model.paths import REPO_ROOT
from floe_model.versions import load_versions
from floe_test.render import render
from tests.unit.conftest import load_rendered, objects
from tests.unit.test_stacks import _image_refs

AIRGAPPED_KEYS = {
    "postgres-airgapped",
    "dagster-airgapped",
    "dagster-code-airgapped",
    "test-runner-airgapped",
    "python-base-airgapped",
    "busybox-airgapped",
}
#: Built by the preload (content-tagged), not by `make airgapped-images`.
PRELOAD_BUILT = {"test-runner-airgapped", "dagster-code-airgapped"}


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


def test_releases_are_our_postgresql_and_the_upstream_dagster_chart(airgapped):
    assert set(airgapped["releases"]) == {"postgresql", "dagster"}  # the rest need images not built here yet
    postgresql, dagster = airgapped["releases"]["postgresql"], airgapped["releases"]["dagster"]
    assert Path(postgresql["chart"]) == REPO_ROOT / "charts" / "postgresql" and postgresql["repo"] is None
    pin = load_versions().charts["dagster"]
    assert (dagster["repo"], dagster["chartName"], dagster["version"]) == (pin.repo, pin.name, pin.version)
    assert Path(dagster["archive"]).name == f"dagster-{pin.version}.tgz"


def test_only_airgapped_images_are_deployed_or_preloaded(airgapped):
    versions = load_versions()
    allowed = {normalize(f"{versions.images[k].repository}:x").rsplit(":", 1)[0] for k in AIRGAPPED_KEYS}

    def repository(ref: str) -> str:
        return normalize(ref).rsplit(":", 1)[0]

    preloaded = {normalize(ref) for ref in airgapped["plan"]["images"]}
    for ref in airgapped["plan"]["images"]:
        assert repository(ref) in allowed, ref
    for name, release in airgapped["releases"].items():
        refs = _image_refs(release["values"])
        assert refs, name
        for ref in refs:
            assert repository(ref) in allowed and normalize(ref) in preloaded, (name, ref)
    (job,) = objects(airgapped, "Job")
    images = {c["image"] for c in job["spec"]["template"]["spec"]["containers"]}
    assert {repository(ref) for ref in images} <= allowed


def test_airgapped_images_are_local_tags_never_pulled():
    versions = load_versions()
    for key in AIRGAPPED_KEYS:
        pin = versions.images[key]
        assert pin.repository.startswith("floe-testinfra/") and pin.digest is None, key
    assert versions.images["dagster-airgapped"].tag.split("-")[0] == versions.images["dagster"].tag
    assert {r.key for r in service_images.recipes(versions)} | PRELOAD_BUILT == AIRGAPPED_KEYS


def test_endpoints_are_those_of_the_default_profile(rendered, airgapped):
    stack = airgapped["plan"]["stack"]
    default, variant = _job_env(rendered[stack]), _job_env(airgapped)
    keys = [k for k in default if k.startswith(("FLOE_POSTGRES_", "FLOE_DAGSTER_"))]
    assert {k: variant.get(k) for k in keys} == {k: default[k] for k in keys}
    deployed = {e["name"]: e for e in json.loads(variant["FLOE_SERVICES"])}
    assert set(deployed) == {"postgres", "dagster", "dagster-code"}
    assert [e for e in json.loads(default["FLOE_SERVICES"]) if e["name"] in deployed] == list(deployed.values())
    assert variant["FLOE_VARIANT"] == "airgapped" and default["FLOE_VARIANT"] == ""


def test_reduced_e2e_keeps_three_nodes_and_spreads_the_platform_pods(tmp_path):
    render("e2e", tmp_path, overrides={"variant": "airgapped"})
    airgapped = load_rendered(tmp_path)
    assert airgapped["plan"]["nodes"] == {"control-plane": 1, "worker": 2}
    spread = {"floe.dev/spread": "platform"}
    postgresql = airgapped["releases"]["postgresql"]["values"]
    assert postgresql["podLabels"] == spread
    (constraint,) = postgresql["topologySpreadConstraints"]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert constraint["labelSelector"] == {"matchLabels": spread}
    # The Dagster chart has no topologySpreadConstraints: its pods carry the label and a preferred
    # anti-affinity on it instead.
    dagster = airgapped["releases"]["dagster"]["values"]
    pods = [dagster["dagsterWebserver"], dagster["dagsterDaemon"], *dagster["dagster-user-deployments"]["deployments"]]
    for pod in pods:
        assert pod["labels"] == spread
        (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["podAffinityTerm"] == {
            "topologyKey": "kubernetes.io/hostname",
            "labelSelector": {"matchLabels": spread},
        }


def test_dagster_library_versions_follow_the_dagster_release():
    assert service_images.dagster_library_version("1.12.19") == "0.28.19"
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
