"""ImagePreload: images already on every node are skipped; nothing is pulled that Docker already has."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components import preload_steps as preload
from components.image_preload import ImagePreload, ImagePreloadArgs, TestRunnerBuild
from floe_model.paths import REPO_ROOT
from testing.errors import ConfigError


@pytest.fixture
def fake_engine(monkeypatch):
    """Fake docker/kind at the process boundary; record every command the preload would run."""
    state = {"nodes": ["c-control-plane", "c-worker"], "on_node": {}, "local": set(), "ran": []}
    monkeypatch.setattr(preload, "docker_running", lambda: None)
    monkeypatch.setattr(preload, "nodes", lambda cluster: state["nodes"])
    monkeypatch.setattr(preload, "node_images", lambda node: state["on_node"].get(node, set()))
    monkeypatch.setattr(preload, "local_image_present", lambda ref: ref in state["local"])

    def run(argv, **kw):
        state["ran"].append(argv)
        listed = "\n".join(state.get("tags", [])) if argv[:3] == ["docker", "image", "ls"] else ""
        return subprocess.CompletedProcess(argv, 0, listed, "")

    monkeypatch.setattr(preload, "run", run)
    return state


def test_image_present_on_every_node_is_skipped(fake_engine):
    fake_engine["on_node"] = {n: {"docker.io/library/busybox:1.37.0"} for n in fake_engine["nodes"]}
    report = preload.preload("c", ["busybox:1.37.0"], build_ref=None, build=None)
    assert report == [{"image": "busybox:1.37.0", "action": "present", "seconds": 0.0}]
    assert fake_engine["ran"] == []


def test_image_in_local_docker_store_is_loaded_without_pulling(fake_engine):
    fake_engine["local"] = {"postgres:16"}
    fake_engine["on_node"] = {"c-control-plane": {"docker.io/library/postgres:16"}}
    (entry,) = preload.preload("c", ["postgres:16"], build_ref=None, build=None)
    assert entry["source"] == "local" and entry["nodes"] == ["c-worker"]
    assert not any(argv[:2] == ["docker", "pull"] for argv in fake_engine["ran"])
    assert fake_engine["ran"] == [["kind", "load", "docker-image", "--name", "c", "--nodes", "c-worker", "postgres:16"]]


def test_missing_image_is_pulled_once_then_loaded(fake_engine):
    preload.preload("c", ["redis:7"], build_ref=None, build=None)
    assert fake_engine["ran"][0] == ["docker", "pull", "redis:7"]
    assert fake_engine["ran"][1][:3] == ["kind", "load", "docker-image"]


def test_test_runner_is_built_not_pulled(fake_engine):
    build = {"dockerfile": "testing/Dockerfile", "context": "."}
    preload.preload("c", ["ghcr.io/x/runner:c-1"], build_ref="ghcr.io/x/runner:c-1", build=build)
    assert fake_engine["ran"][0] == ["docker", "build", "-f", "testing/Dockerfile", "-t", "ghcr.io/x/runner:c-1", "."]


def test_a_new_build_removes_the_earlier_content_tagged_builds_only(fake_engine):
    fake_engine["tags"] = ["c-0ld", "c-1", "v1.2", "c-older"]
    build = {"dockerfile": "testing/Dockerfile", "context": "."}
    preload.preload("c", ["ghcr.io/x/runner:c-1"], build_ref="ghcr.io/x/runner:c-1", build=build)
    removals = [argv for argv in fake_engine["ran"] if argv[:3] == ["docker", "image", "rm"]]
    assert removals == [["docker", "image", "rm", "ghcr.io/x/runner:c-0ld", "ghcr.io/x/runner:c-older"]]


@pytest.mark.parametrize(
    ("images", "message"),
    [([], "at least one image"), (["redis:latest"], "mutable tag 'latest'"), (["redis"], "tag or digest")],
    ids=["none", "latest", "untagged"],
)
def test_unpinned_images_are_rejected(images, message):
    with pytest.raises(ConfigError, match=message):
        ImagePreload("p", ImagePreloadArgs(cluster_name="c", images=images))


def test_missing_dockerfile_is_rejected(tmp_path: Path):
    build = TestRunnerBuild(dockerfile=tmp_path / "Dockerfile", context=tmp_path)
    with pytest.raises(ConfigError, match="does not exist"):
        ImagePreload(
            "p",
            ImagePreloadArgs(cluster_name="c", images=["x/r:1"], test_runner_image="x/r:1", test_runner_build=build),
        )


def test_platform_services_name_missing_secrets():
    from components.platform_services import PlatformServices, PlatformServicesArgs
    from floe_model.profiles import load_profile
    from floe_model.versions import load_versions

    versions = load_versions()
    profile = load_profile("integration", versions)
    with pytest.raises(ConfigError, match="dagsterDbPassword, postgresPassword"):
        PlatformServices("p", PlatformServicesArgs(services=profile.services, versions=versions, secrets={}))


def test_offline_stack_names_every_missing_chart_and_how_to_get_it(tmp_path, monkeypatch):
    import shutil

    from floe_model.versions import load_versions
    from floe_test.cli import main

    monkeypatch.setenv("FLOE_OFFLINE_CHARTS", str(tmp_path / "no-offline-repo"))
    cache = tmp_path / "charts"
    cache.mkdir()
    dagster = load_versions().charts["dagster"]
    shutil.copy(f"{REPO_ROOT.parent}/shared/charts/dagster-{dagster.version}.tgz", cache)
    args = [
        "render",
        "e2e",
        "--out",
        str(tmp_path / "out"),
        "--set",
        "offlineCharts=true",
        "--set",
        f"chartCacheDir={cache}",
    ]
    from floe_test.render import render

    with pytest.raises(ConfigError) as info:
        render("e2e", tmp_path / "out", overrides={"offlineCharts": "true", "chartCacheDir": str(cache)})
    message = str(info.value)
    assert "charts.polaris: chart polaris 1.7.0 is not in" in message
    assert f"helm pull polaris --repo https://downloads.apache.org/polaris/helm-chart --version 1.7.0 -d {cache}" in (
        message
    )
    assert "charts.dagster" not in message  # in the cache
    assert "charts.postgresql" not in message  # our own charts are always local
    assert main(args) == 2


def test_offline_stack_with_services_disabled_needs_no_chart(tmp_path):
    from floe_test.render import render

    cache = tmp_path / "charts"
    cache.mkdir()
    summary = render(
        "integration",
        tmp_path / "out",
        overrides={"offlineCharts": "true", "chartCacheDir": str(cache), "servicesEnabled": "false"},
    )
    assert summary["releases"] == []
