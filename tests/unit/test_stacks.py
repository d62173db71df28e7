"""Both stacks, rendered by the real Pulumi program under mocks, meet the acceptance criteria."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from floe_model.image_ref import normalize
from floe_model.versions import load_versions
from tests.unit.conftest import objects

STACKS = ("integration", "e2e")


@pytest.mark.parametrize("stack", STACKS)
def test_every_rendered_manifest_is_valid_for_the_pinned_kubernetes_in_strict_mode(rendered, stack):
    version = load_versions().kubernetes_schema_version
    assert rendered[stack]["manifests"], "the stack rendered no Kubernetes objects"
    for manifest in rendered[stack]["manifests"]:
        kubernetes_validate.validate(manifest, version, strict=True)


def test_strict_validation_rejects_an_unknown_field(rendered):
    job = dict(objects(rendered["integration"], "Job")[0])
    job["spec"] = {**job["spec"], "backofLimit": 0}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, load_versions().kubernetes_schema_version, strict=True)


def test_integration_deploys_only_dagster_and_postgresql_besides_metrics_server(rendered):
    releases = rendered["integration"]["releases"]
    platform = sorted(n for n, r in releases.items() if r["namespace"] == "floe-platform")
    assert platform == ["dagster", "postgresql"]
    assert releases["metrics-server"]["namespace"] == "kube-system"
    assert "--kubelet-insecure-tls" in releases["metrics-server"]["values"]["args"]


def test_e2e_deploys_the_full_platform(rendered):
    expected = {
        "dagster",
        "polaris",
        "cube",
        "otel-collector",
        "jaeger",
        "monitoring",
        "postgresql",
        "redis",
        "minio",
        "metrics-server",
    }
    assert set(rendered["e2e"]["plan"]["releases"]) == expected


@pytest.mark.parametrize(("stack", "control_planes", "workers"), [("integration", 1, 0), ("e2e", 1, 2)])
def test_node_counts_follow_the_kind_config(rendered, stack, control_planes, workers):
    assert rendered[stack]["plan"]["nodes"] == {"control-plane": control_planes, "worker": workers}
    roles = [n["role"] for n in rendered[stack]["kind_config"]["nodes"]]
    assert roles.count("control-plane") == control_planes and roles.count("worker") == workers


@pytest.mark.parametrize("stack", STACKS)
def test_kind_config_is_named_and_every_node_carries_the_config_hash(rendered, stack):
    config, plan = rendered[stack]["kind_config"], rendered[stack]["plan"]
    assert config["name"] == f"floe-{stack}"
    assert {n["labels"]["floe.dev/config-hash"] for n in config["nodes"]} == {plan["config_hash"]}


@pytest.mark.parametrize("stack", STACKS)
def test_every_release_is_pinned_and_every_image_preloaded(rendered, stack):
    versions = load_versions()
    images = set(rendered[stack]["plan"]["images"])
    for name, release in rendered[stack]["releases"].items():
        if release["repo"]:
            assert release["version"], f"{name} has no pinned chart version"
        else:
            assert release["chart"].endswith(("charts/postgresql", "charts/app")), release["chart"]
        for ref in _image_refs(release["values"]):
            assert normalize(ref) in {normalize(i) for i in images}, ref
    for ref in images:
        assert not ref.endswith(":latest")
    assert versions.images["busybox"].ref in images


def _image_refs(values: Any) -> list[str]:
    found: list[str] = []
    if isinstance(values, dict):
        if isinstance(values.get("repository"), str) and isinstance(values.get("tag"), str):
            registry = values.get("registry")
            prefix = f"{registry}/" if isinstance(registry, str) and registry else ""
            found.append(f"{prefix}{values['repository']}:{values['tag']}")
        for value in values.values():
            found += _image_refs(value)
    elif isinstance(values, list):
        for value in values:
            found += _image_refs(value)
    return found


def _secret_like(values: Any, path: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(values, dict):
        for key, value in values.items():
            here = f"{path}.{key}"
            if isinstance(value, str) and any(w in key.lower() for w in ("password", "secret")):
                found.append((here, value))
            found += _secret_like(value, here)
    elif isinstance(values, list):
        for i, value in enumerate(values):
            found += _secret_like(value, f"{path}[{i}]")
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_no_secret_value_is_rendered(rendered, stack):
    secrets = [item for r in rendered[stack]["releases"].values() for item in _secret_like(r["values"])]
    assert secrets, "expected the profiles to pass secrets to the charts"
    plain = [(path, v) for path, v in secrets if not v.startswith("<secret:")]
    assert plain == []
    secret = objects(rendered[stack], "Secret")[0]
    assert secret["stringData"] and all(v.startswith("<secret:") for v in secret["stringData"].values())


@pytest.mark.parametrize("stack", STACKS)
def test_test_namespace_is_unique_per_run_and_restricted(rendered, stack):
    ns = [n for n in objects(rendered[stack], "Namespace") if n["metadata"]["name"] == "floe-test-local"]
    assert len(ns) == 1
    labels = ns[0]["metadata"]["labels"]
    assert labels["floe.dev/run-id"] == "local"
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_e2e_platform_pods_are_spread_across_nodes(rendered):
    spread = 0
    for release in rendered["e2e"]["releases"].values():
        for tsc in release["values"].get("topologySpreadConstraints", []):
            assert tsc["topologyKey"] == "kubernetes.io/hostname"
            spread += 1
    assert spread >= 4


def test_disabling_the_platform_services_creates_no_release(tmp_path):
    from floe_test.render import render

    summary = render("integration", tmp_path, overrides={"servicesEnabled": "false"})
    assert summary["releases"] == []
    assert not list((tmp_path / "releases").iterdir())
    assert (tmp_path / "manifests" / "floe-test-local-job-test-runner.yaml").is_file()
