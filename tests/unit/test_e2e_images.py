"""The E2E services' offline images: version mapping, pins, recipes and content-hash caching (no Docker)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from floe_build import e2e_images, service_images
from floe_build._run import AirgapError
from floe_build.e2e_images import (
    E2E_IMAGE_KEYS,
    e2e_recipes,
    jaeger_module_version,
    prometheus_module_version,
    substitutes,
)
from floe_build.node_parts import GoBinary
from floe_model.versions import load_versions


@pytest.mark.parametrize(
    ("tag", "module"),
    [("v3.5.0", "v0.305.0"), ("3.14.2", "v0.314.2"), ("v2.53.1", "v0.53.1")],
    ids=["3.5.0", "3.14.2", "2.53.1"],
)
def test_prometheus_releases_map_to_their_go_module_versions(tag, module):
    assert prometheus_module_version(tag) == module


@pytest.mark.parametrize(("tag", "module"), [("2.12.0", "v1.75.0"), ("v2.0.0", "v1.63.0"), ("2.19.1", "v1.82.1")])
def test_jaeger_v2_releases_map_to_the_v1_module_tags_published_with_them(tag, module):
    assert jaeger_module_version(tag) == module


@pytest.mark.parametrize(
    ("function", "tag"),
    [(prometheus_module_version, "v4.0.0"), (jaeger_module_version, "1.75.0"), (jaeger_module_version, "latest")],
    ids=["prometheus-4", "jaeger-1", "not-a-version"],
)
def test_unknown_version_schemes_are_refused(function, tag):
    with pytest.raises(AirgapError):
        function(tag)


def test_every_e2e_image_is_a_local_pin_that_names_what_it_replaces():
    versions = load_versions()
    subs = substitutes(versions)
    assert set(subs) == set(E2E_IMAGE_KEYS)
    for key in E2E_IMAGE_KEYS:
        pin = versions.images[key]
        assert pin.repository == f"floe-testinfra/{key}" and pin.digest is None, key
        assert pin.tag != "content" and pin.tag != "latest", key
    assert {s.upstream for s in subs.values()} == {
        "otel-collector", "prometheus", "prometheus-operator", "prometheus-config-reloader",
        "metrics-server", "jaeger", "redis", "polaris", "minio",
    }  # fmt: skip


def _release(tag: str) -> str:
    match = re.search(r"\d+\.\d+\.\d+", tag)
    assert match, tag
    return match.group(0)


def test_a_version_that_differs_from_the_upstream_pin_says_why_and_stand_ins_say_so():
    versions = load_versions()
    for sub in substitutes(versions).values():
        upstream = versions.images[sub.upstream].tag
        if sub.upstream in ("polaris", "minio"):
            assert sub.stand_in, sub.key
        elif _release(sub.runs) != _release(upstream):
            assert sub.note and _release(upstream) in sub.note and _release(sub.runs) in sub.note, sub.key
            assert not sub.stand_in, sub.key
        else:
            assert not sub.stand_in, sub.key
    assert {k for k, s in substitutes(versions).items() if s.stand_in} == {"nessie-airgapped", "moto-airgapped"}


def test_operator_and_config_reloader_share_one_version():
    images = load_versions().images
    assert images["prometheus-operator-airgapped"].tag == images["prometheus-config-reloader-airgapped"].tag
    assert images["prometheus-operator-airgapped"].tag == images["prometheus-operator"].tag


def test_a_missing_upstream_key_is_refused():
    versions = load_versions()
    raw = {**versions.raw, "images": {**versions.raw["images"]}}
    raw["images"]["jaeger-airgapped"] = {**raw["images"]["jaeger-airgapped"], "upstream": "jaeger-nope"}
    broken = dataclasses.replace(versions, raw=raw)
    with pytest.raises(AirgapError, match=r"images.jaeger-airgapped.upstream"):
        substitutes(broken)


def test_collector_manifest_pins_every_component_to_the_image_release():
    recipe = service_images.RECIPES_DIR / "otel-collector" / "builder-config.yaml"
    manifest = yaml.safe_load(recipe.read_text())
    release = load_versions().images["otel-collector-airgapped"].tag
    assert manifest["dist"]["version"] == release and manifest["dist"]["name"] == "otelcol-contrib"
    for kind in ("receivers", "processors", "exporters", "extensions"):
        for component in manifest[kind]:
            assert component["gomod"].endswith(f" v{release}"), component
    for provider in manifest["providers"]:
        assert re.search(r" v1\.\d+\.\d+$", provider["gomod"]), provider  # confmap providers are 1.x
    assert manifest["telemetry"]["gomod"].endswith(f" v{release}")
    named = {c["gomod"].split()[0].rsplit("/", 1)[-1] for kind in ("receivers", "exporters") for c in manifest[kind]}
    # The chart's default config (otlp, jaeger, prometheus, zipkin in; debug out) and the E2E profile's exports.
    assert {"otlpreceiver", "jaegerreceiver", "prometheusreceiver", "zipkinreceiver"} <= named
    assert {"debugexporter", "otlpexporter", "otlphttpexporter", "prometheusexporter"} <= named


def test_every_e2e_recipe_has_a_dockerfile_and_builds_after_the_integration_images():
    versions = load_versions()
    plan = service_images.all_recipes(versions, e2e=True)
    keys = [r.key for r in plan]
    assert keys[: len(service_images.IMAGE_KEYS)] == list(service_images.IMAGE_KEYS)
    assert keys[len(service_images.IMAGE_KEYS) :] == list(E2E_IMAGE_KEYS)
    for recipe in e2e_recipes(versions):
        assert (service_images.RECIPES_DIR / recipe.recipe / "Dockerfile").is_file(), recipe.key
        assert recipe.base is None or recipe.base in keys[: keys.index(recipe.key)], recipe.key
    assert [r.key for r in service_images.all_recipes(versions, e2e=False)] == list(service_images.IMAGE_KEYS)


def test_go_binaries_carry_the_release_in_their_version_ldflags():
    versions = load_versions()
    files = {dest: artifact for r in e2e_recipes(versions) for dest, artifact in r.files.items()}
    specs: dict[str, GoBinary] = {d: a.spec for d, a in files.items() if hasattr(a, "spec")}
    assert "version.Version=3.5.0 " in specs["bin/prometheus"].ldflags + " "
    assert specs["bin/prometheus"].version == "v0.305.0" and specs["bin/prometheus"].main == "./cmd/prometheus"
    assert "version.Version=0.93.1 " in specs["bin/operator"].ldflags + " "
    assert {d for d, _m in specs["bin/operator"].siblings} == {"pkg/apis/monitoring", "pkg/client"}
    assert specs["bin/metrics-server"].ldflags.endswith("version.gitVersion=v0.8.0")
    assert specs["bin/metrics-server"].version == "v0.8.0" and not specs["bin/metrics-server"].main
    assert "latestVersion=v2.12.0" in specs["bin/jaeger-linux"].ldflags
    assert specs["bin/jaeger-linux"].version == "v1.75.0"


def test_node_image_binary_keys_do_not_move_when_upstream_mode_is_unused():
    plain = GoBinary("coredns", "github.com/coredns/coredns", "v1.12.1")
    assert set(plain.inputs()) == {"name", "package", "version", "recipe_files", "requires", "ldflags"}
    upstream = GoBinary("p", "m", "v1", main="./cmd/p", siblings=(("a", "m/a"),), tags=("netgo",))
    assert {"main", "siblings", "tags"} <= set(upstream.inputs())


# ------------------------------------------------------------------------------------- content-hash caching
@dataclass(frozen=True)
class _FakeArtifact:
    key: str
    path: Path | None = None

    def produce(self) -> Path:
        if self.path is None:
            raise AssertionError("a cached image must not build its files")
        return self.path


@dataclass
class _FakeRootfs:
    image: str = "floe-testinfra/rootfs:abc"

    def ensure(self) -> str:
        return self.image


def test_an_artifact_key_is_part_of_the_image_content_hash_and_a_cached_image_builds_nothing(monkeypatch, tmp_path):
    versions = load_versions()
    images = service_images.ServiceImages(versions=versions, cache=tmp_path, rootfs=_FakeRootfs())  # type: ignore[arg-type]
    recipe = service_images.Recipe("jaeger-airgapped", "jaeger", files={"bin/jaeger-linux": _FakeArtifact("k1")})
    other = service_images.Recipe("jaeger-airgapped", "jaeger", files={"bin/jaeger-linux": _FakeArtifact("k2")})
    content_ref = images._content_ref(recipe, _FakeRootfs.image, {})[0]
    assert content_ref == images._content_ref(recipe, _FakeRootfs.image, {})[0]
    assert content_ref != images._content_ref(other, _FakeRootfs.image, {})[0]
    assert content_ref.startswith("floe-testinfra/jaeger-airgapped:")

    monkeypatch.setattr(e2e_images, "e2e_recipes", lambda v: [recipe])
    present = {content_ref}
    commands: list[list[str]] = []
    monkeypatch.setattr(service_images, "image_exists", lambda ref: ref in present)
    monkeypatch.setattr(service_images, "run_logged", lambda argv, **kw: commands.append(list(argv)) or 0.0)
    fixed = versions.images["jaeger-airgapped"].ref
    assert images.missing(["jaeger-airgapped"]) == []
    assert images.build(["jaeger-airgapped"]) == {"jaeger-airgapped": fixed}
    assert commands == [["docker", "tag", content_ref, fixed]]  # no docker build, no artifact produced
    present.clear()
    assert images.missing(["jaeger-airgapped"]) == ["jaeger-airgapped"]


def test_ready_asks_for_the_integration_images_only():
    from floe_build import ready

    assert ready.recipes is service_images.recipes
    assert not {r.key for r in service_images.recipes(load_versions())} & set(E2E_IMAGE_KEYS)
