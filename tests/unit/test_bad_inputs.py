"""Malformed kind configs, profiles, stack settings and version pins: each gets a clear error that
names the file and the field, and `floe-test render` exits 2 leaving nothing behind."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from floe_test.cli import main
from floe_test.kind_config import validate_kind_config
from floe_test.paths import K8S_DIR, VERSIONS_FILE
from floe_test.profiles import parse_profile
from floe_test.settings import parse_settings
from floe_test.versions import load_versions, parse_versions
from testing.errors import ConfigError

KIND = yaml.safe_load((K8S_DIR / "kind-config-e2e.yaml").read_text())
PROFILE = yaml.safe_load((K8S_DIR / "values-integration.yaml").read_text())


def mutate(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    node: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    last = parts[-1]
    if value is DELETE:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


DELETE = object()

KIND_CASES = [
    ("wrong-api-version", "apiVersion", "kind.x-k8s.io/v1alpha3", "apiVersion: must be 'kind.x-k8s.io/v1alpha4'"),
    ("wrong-kind", "kind", "Config", "kind: must be 'Cluster'"),
    ("unknown-top-level-field", "nodez", [], "nodez: unknown field"),
    ("no-nodes", "nodes", [], "nodes: must list at least one node"),
    ("bad-role", "nodes.1.role", "master", "nodes[1].role: must be one of control-plane, worker"),
    ("no-control-plane", "nodes.0.role", "worker", "must have at least one control-plane node"),
    (
        "unquoted-label-value",
        "nodes.0.labels",
        {"ingress-ready": True},
        "nodes[0].labels: must map label names to string",
    ),
    ("port-out-of-range", "nodes.0.extraPortMappings.0.hostPort", 70000, "hostPort: must be a port number"),
    ("bad-protocol", "nodes.0.extraPortMappings.0.protocol", "HTTP", "protocol: must be one of SCTP, TCP, UDP"),
    (
        "mount-without-host-path",
        "nodes.1.extraMounts",
        [{"containerPath": "/data"}],
        "extraMounts[0].hostPath: required",
    ),
    ("unknown-node-field", "nodes.1.cpus", 2, "nodes[1].cpus: unknown field"),
    (
        "duplicate-host-port",
        "nodes.0.extraPortMappings.1.hostPort",
        31080,
        "host port 31080/TCP on 127.0.0.1 is mapped twice",
    ),
]


@pytest.mark.parametrize(("path", "value", "message"), [c[1:] for c in KIND_CASES], ids=[c[0] for c in KIND_CASES])
def test_malformed_kind_config_is_rejected_naming_the_field(path, value, message):
    with pytest.raises(ConfigError) as info:
        validate_kind_config(mutate(KIND, path, value), "kind-config-e2e.yaml")
    assert message in str(info.value)
    assert "kind-config-e2e.yaml" in str(info.value)


def test_every_problem_is_reported_at_once():
    bad = mutate(mutate(KIND, "kind", "Config"), "nodes.1.role", "master")
    with pytest.raises(ConfigError) as info:
        validate_kind_config(bad, "f.yaml")
    assert len(info.value.problems) == 2


PROFILE_CASES = [
    ("unknown-field", "servcies", {}, "servcies: unknown field"),
    (
        "chart-not-pinned",
        "services.dagster.chart",
        {"pinned": "dagstr"},
        "pinned chart 'dagstr' is not in versions.yaml",
    ),
    ("chart-without-source", "services.dagster.chart", "dagster", "must be {pinned: KEY}"),
    ("local-chart-missing", "services.postgresql.chart", {"local": "charts/nope"}, "has no Chart.yaml"),
    (
        "unknown-image-key",
        "services.postgresql.values.image.tag",
        "{{tag:postgress}}",
        "names no image in versions.yaml",
    ),
    ("unbounded-timeout", "services.dagster.timeoutSeconds", 0, "must be 1-3600 seconds"),
    ("enabled-not-bool", "services.dagster.enabled", "yes", "must be true or false"),
    (
        "endpoint-missing-value",
        "services.postgresql.endpoints.0.port",
        "{{values:service.nope}}",
        "refers to a value the service does not set: values.service.nope",
    ),
    ("endpoint-bad-protocol", "services.postgresql.endpoints.0.protocol", "udp", "must be http or tcp"),
    ("infinite-job-deadline", "testJob.activeDeadlineSeconds", -1, "never infinite"),
    ("bad-namespace", "platformNamespace", "Floe_Platform", "is not a valid namespace name"),
    ("values-ref-outside-endpoint", "services.dagster.values.x", "{{values:a}}", "may only be used in endpoints"),
]


@pytest.mark.parametrize(
    ("path", "value", "message"), [c[1:] for c in PROFILE_CASES], ids=[c[0] for c in PROFILE_CASES]
)
def test_malformed_profile_is_rejected_naming_the_field(path, value, message):
    with pytest.raises(ConfigError) as info:
        parse_profile(mutate(PROFILE, path, value), "values-integration.yaml", K8S_DIR, load_versions())
    assert message in str(info.value)
    assert "values-integration.yaml" in str(info.value)


SETTINGS_CASES = [
    ("unknown-key", {"clustername": "x"}, "floe-testinfra:clustername: unknown setting"),
    ("bad-mode", {"clusterMode": "reuse"}, "must be create, adopt or kubeconfig"),
    ("timeout-not-a-number", {"readyTimeoutSeconds": "5m"}, "must be a whole number of seconds"),
    ("timeout-unbounded", {"readyTimeoutSeconds": "0"}, "must be between 1 and 3600"),
    ("bad-bool", {"exposePorts": "yes"}, "must be true or false"),
    ("bad-cluster-name", {"clusterName": "Floe_Int"}, "must be a lower-case DNS label"),
    ("bad-mounts", {"extraMounts": "{not json"}, "must be a JSON list"),
    ("unclosed-quote", {"pytestArgs": "-k 'health"}, "pytestArgs: must be shell-quoted arguments"),
]


@pytest.mark.parametrize(("values", "message"), [c[1:] for c in SETTINGS_CASES], ids=[c[0] for c in SETTINGS_CASES])
def test_bad_stack_settings_are_rejected(values, message):
    with pytest.raises(ConfigError, match=message):
        parse_settings("integration", values)


def test_node_image_must_be_pinned_by_digest():
    data = yaml.safe_load(VERSIONS_FILE.read_text())
    data["kind"]["node_image"] = "kindest/node:v1.34.0"
    with pytest.raises(ConfigError, match=r"kind\.node_image: must be pinned by digest"):
        parse_versions(data, "versions.yaml")


def test_render_of_an_unknown_stack_exits_2_naming_the_known_ones(tmp_path, capsys):
    assert main(["render", "staging", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "unknown stack" in err and "integration" in err and "e2e" in err
    assert not (tmp_path / "out").exists()


def test_render_with_a_malformed_profile_exits_2_naming_file_and_field(tmp_path, capsys):
    profile = tmp_path / "values-broken.yaml"
    profile.write_text(yaml.safe_dump(mutate(PROFILE, "services.dagster.timeoutSeconds", "ten")))
    code = main(["render", "integration", "--out", str(tmp_path / "out"), "--set", f"profile={profile}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "values-broken.yaml: services.dagster.timeoutSeconds" in err
    assert not (tmp_path / "out").exists()


def test_render_with_invalid_yaml_names_the_line(tmp_path, capsys):
    config = tmp_path / "kind.yaml"
    config.write_text("kind: Cluster\nnodes:\n  - role: [worker\n")
    assert main(["render", "integration", "--out", str(tmp_path / "out"), "--set", f"kindConfig={config}"]) == 2
    assert "not valid YAML" in capsys.readouterr().err


VARIANT_PROFILE = {
    **PROFILE,
    "variants": {
        "airgapped": {
            "images": {"postgres": "redis"},
            "services": {"dagster": {"enabled": False}},
            "testJob": {"activeDeadlineSeconds": 1200},
        }
    },
}


def test_a_variant_remaps_images_and_replaces_service_fields():
    from floe_test.profiles import apply_variant

    data = apply_variant(VARIANT_PROFILE, "airgapped", "values-integration.yaml")
    profile = parse_profile(data, "values-integration.yaml", K8S_DIR, load_versions())
    postgres = next(s for s in profile.services if s.name == "postgresql")
    assert postgres.images == ("redis",)
    assert not next(s for s in profile.services if s.name == "dagster").enabled
    assert profile.test_job.active_deadline_seconds == 1200
    assert "variants" not in data


def test_without_a_variant_the_profile_is_unchanged():
    from floe_test.profiles import apply_variant

    data = apply_variant(VARIANT_PROFILE, None, "values-integration.yaml")
    assert data == {k: v for k, v in VARIANT_PROFILE.items() if k != "variants"}


@pytest.mark.parametrize(
    ("variant", "spec", "message"),
    [
        ("offline", None, "unknown variant 'offline' (this profile has: airgapped)"),
        ("airgapped", {"services": {"cube": {"enabled": False}}}, "variants.airgapped.services.cube: no such service"),
        ("airgapped", {"charts": {}}, "variants.airgapped.charts: unknown field"),
    ],
    ids=["unknown-variant", "unknown-service", "unknown-field"],
)
def test_bad_variants_are_rejected(variant, spec, message):
    from floe_test.profiles import apply_variant

    data = copy.deepcopy(VARIANT_PROFILE)
    if spec is not None:
        data["variants"]["airgapped"] = spec
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_variant(data, variant, "values-integration.yaml")


def test_per_run_settings_come_from_the_environment_not_the_stack_file():
    from floe_test.settings import RUN_SETTINGS_ENV, run_overrides

    assert run_overrides({RUN_SETTINGS_ENV: '{"runId": "r1", "ci": "true"}'}) == {"runId": "r1", "ci": "true"}
    assert run_overrides({}) == {}
    with pytest.raises(ConfigError, match="FLOE_RUN_SETTINGS: -: must be a JSON object"):
        run_overrides({RUN_SETTINGS_ENV: '["runId"]'})
