"""Malformed kind configs, profiles, stack settings and version pins: each gets a clear error that
names the file and the field, and `floe-test render` exits 2 leaving nothing behind."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from floe_model.kind_config import validate_kind_config
from floe_model.paths import K8S_DIR, VERSIONS_FILE
from floe_model.profiles import parse_profile
from floe_model.settings import parse_settings
from floe_model.versions import load_versions, parse_versions
from floe_test.cli import main
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
    from floe_model.profiles import apply_variant

    data = apply_variant(VARIANT_PROFILE, "airgapped", "values-integration.yaml")
    profile = parse_profile(data, "values-integration.yaml", K8S_DIR, load_versions())
    postgres = next(s for s in profile.services if s.name == "postgresql")
    assert postgres.images == ("redis",)
    assert not next(s for s in profile.services if s.name == "dagster").enabled
    assert profile.test_job.active_deadline_seconds == 1200
    assert "variants" not in data


def test_without_a_variant_the_profile_is_unchanged():
    from floe_model.profiles import apply_variant

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
    from floe_model.profiles import apply_variant

    data = copy.deepcopy(VARIANT_PROFILE)
    if spec is not None:
        data["variants"]["airgapped"] = spec
    with pytest.raises(ConfigError, match=re.escape(message)):
        apply_variant(data, variant, "values-integration.yaml")


def test_per_run_settings_come_from_the_environment_not_the_stack_file():
    from floe_model.settings import RUN_SETTINGS_ENV, run_overrides

    assert run_overrides({RUN_SETTINGS_ENV: '{"runId": "r1", "ci": "true"}'}) == {"runId": "r1", "ci": "true"}
    assert run_overrides({}) == {}
    with pytest.raises(ConfigError, match="FLOE_RUN_SETTINGS: -: must be a JSON object"):
        run_overrides({RUN_SETTINGS_ENV: '["runId"]'})


# --- Every entry point, end to end: input -> exit code 2, one message naming the culprit, nothing left ---

DIGEST = "sha256:" + "a" * 64
KIND_BASE = (K8S_DIR / "kind-config.yaml").read_text()
PROFILE_TEXT = (K8S_DIR / "values-integration.yaml").read_text()


def profile_with(path: str, value: Any) -> str:
    return yaml.safe_dump(mutate(PROFILE, path, value))


def kind_with(path: str, value: Any) -> str:
    return yaml.safe_dump(mutate(yaml.safe_load(KIND_BASE), path, value))


DUPLICATE_SERVICE = PROFILE_TEXT.replace("services:\n", "services:\n  dagster:\n    chart: {pinned: dagster}\n", 1)


class CliCase:
    """One bad input: the command line, files it refers to ({tmp}/NAME), what must come out."""

    def __init__(self, id: str, argv: list[str], message: str, *, files: dict[str, str] | None = None,
                 also: tuple[str, ...] = (), patch: str = "") -> None:
        self.id, self.argv, self.message = id, argv, message
        self.files, self.also, self.patch = files or {}, also, patch


def set_case(id: str, setting: str, message: str, command: str = "render") -> CliCase:
    out = ["--out", "{tmp}/out"]
    return CliCase(id, [command, "integration", *out, "--set", setting], message, also=("--set",))


CLI_CASES = [
    # render: the stack, --out, --set
    CliCase("render-unknown-stack", ["render", "staging", "--out", "{tmp}/out"], "unknown stack"),
    CliCase("render-out-is-a-file", ["render", "integration", "--out", "{tmp}/afile"], "is a file",
            files={"afile": "x"}, also=("--out",)),
    CliCase("render-out-is-a-foreign-folder", ["render", "integration", "--out", "{tmp}/mine"],
            "other files than an earlier render", files={"mine/notes.txt": "keep me"}),
    CliCase("render-set-without-equals", ["render", "integration", "--out", "{tmp}/out", "--set", "variant"],
            "must be KEY=VALUE"),
    CliCase("render-set-empty-key", ["render", "integration", "--out", "{tmp}/out", "--set", "=x"],
            "must be KEY=VALUE"),
    set_case("set-unknown-key", "clustername=x", "clustername=x: unknown setting"),
    set_case("set-timeout-not-a-number", "readyTimeoutSeconds=5m", "must be a whole number of seconds"),
    set_case("set-timeout-zero", "readyTimeoutSeconds=0", "must be between 1 and 3600"),
    set_case("set-deadline-unbounded", "jobDeadlineSeconds=99999", "must be between 1 and 21600"),
    set_case("set-deadline-below-test-timeout", "jobDeadlineSeconds=60", "shorter than one test's timeout"),
    set_case("set-bad-bool", "exposePorts=yes", "must be true or false"),
    set_case("set-bad-cluster-name", "clusterName=Floe_Int", "must be a lower-case DNS label"),
    set_case("set-cluster-name-too-long", "clusterName=" + "a" * 41, "must be a lower-case DNS label"),
    set_case("set-bad-mounts", "extraMounts={not json", "must be a JSON list"),
    set_case("set-mounts-not-a-list", 'extraMounts={"hostPath": "/x"}', "must be a JSON list"),
    set_case("set-unclosed-quote", "pytestArgs=-k 'health", "must be shell-quoted arguments"),
    set_case("set-bad-mode", "clusterMode=reuse", "must be create, adopt or kubeconfig"),
    set_case("set-bad-run-id", "runId=Bad_Id", "must be lower-case letters"),
    set_case("set-node-image-without-digest", "nodeImage=kindest/node:v1.34.0", "must be pinned by digest"),
    set_case("set-unknown-variant", "variant=offline", "unknown variant 'offline'"),
    set_case("set-disable-unknown-service", "disabledServices=nope", "cannot disable unknown service(s): nope"),
    set_case("set-bad-bool-services", "servicesEnabled=maybe", "must be true or false"),
    # kind configs given by --set kindConfig=FILE
    CliCase("kind-config-missing", ["render", "integration", "--out", "{tmp}/out", "--set",
                                    "kindConfig={tmp}/nope.yaml"], "file not found"),
    CliCase("kind-config-not-yaml", ["render", "integration", "--out", "{tmp}/out", "--set",
                                     "kindConfig={tmp}/k.yaml"], "not valid YAML",
            files={"k.yaml": "kind: Cluster\nnodes:\n  - role: [worker\n"}),
    CliCase("kind-config-duplicate-key", ["render", "integration", "--out", "{tmp}/out", "--set",
                                          "kindConfig={tmp}/k.yaml"], "found duplicate key 'nodes'",
            files={"k.yaml": KIND_BASE + "nodes:\n  - role: control-plane\n"}),
    CliCase("kind-config-node-image-without-digest", ["render", "integration", "--out", "{tmp}/out", "--set",
                                                      "kindConfig={tmp}/k.yaml"],
            "nodes[0].image: 'kindest/node:v1.34.0' must be pinned by digest",
            files={"k.yaml": kind_with("nodes.0.image", "kindest/node:v1.34.0")}),
    CliCase("kind-config-wrong-api", ["render", "integration", "--out", "{tmp}/out", "--set",
                                      "kindConfig={tmp}/k.yaml"], "apiVersion: must be 'kind.x-k8s.io/v1alpha4'",
            files={"k.yaml": kind_with("apiVersion", "kind.x-k8s.io/v1alpha3")}),
    CliCase("kind-config-no-control-plane", ["render", "integration", "--out", "{tmp}/out", "--set",
                                             "kindConfig={tmp}/k.yaml"], "must have at least one control-plane",
            files={"k.yaml": kind_with("nodes.0.role", "worker")}),
    CliCase("kind-config-label-the-kubelet-refuses", ["render", "integration", "--out", "{tmp}/out", "--set",
                                                      "kindConfig={tmp}/k.yaml"],
            "nodes[0].labels.app.kubernetes.io/managed-by: the kubelet refuses node labels",
            files={"k.yaml": kind_with("nodes.0.labels", {"app.kubernetes.io/managed-by": "me"})}),
    CliCase("kind-config-a-list", ["render", "integration", "--out", "{tmp}/out", "--set",
                                   "kindConfig={tmp}/k.yaml"], "must be a YAML mapping, found a list",
            files={"k.yaml": "- kind: Cluster\n"}),
    CliCase("kind-config-empty", ["render", "integration", "--out", "{tmp}/out", "--set",
                                  "kindConfig={tmp}/k.yaml"], "must be a YAML mapping, found empty",
            files={"k.yaml": ""}),
    # profiles given by --set profile=FILE
    *[
        CliCase(f"profile-{id}", ["render", "integration", "--out", "{tmp}/out", "--set",
                                  "profile={tmp}/values-bad.yaml"], message, files={"values-bad.yaml": text})
        for id, text, message in [
            ("missing", None, "file not found"),
            ("duplicate-service", DUPLICATE_SERVICE, "found duplicate key 'dagster'"),
            ("empty-secret", profile_with("services.postgresql.values.auth.postgresPassword", "{{secret:}}"),
             "{{secret:}} needs a name"),
            ("secret-without-name", profile_with("services.postgresql.values.auth.postgresPassword", "{{secret}}"),
             "{{secret:NAME}} needs a name"),
            ("unknown-placeholder", profile_with("services.postgresql.values.auth.postgresPassword",
                                                 "{{secrets:postgresPassword}}"), "unknown placeholder {{secrets:"),
            ("secret-named-like-a-setting", profile_with("services.postgresql.values.auth.postgresPassword",
                                                         "{{secret:profile}}"), "unknown secret 'profile'"),
            ("secret-with-odd-name", profile_with("services.postgresql.values.auth.postgresPassword",
                                                  "{{secret:pg-pass}}"), "unknown secret 'pg-pass'"),
            ("secret-env-unknown", profile_with("testJob.secretEnv", {"FLOE_PW": "noSuchSecret"}),
             "testJob.secretEnv.FLOE_PW: unknown secret 'noSuchSecret'"),
            ("secret-inside-a-string", profile_with("services.postgresql.values.auth.postgresPassword",
                                                    "pw-{{secret:postgresPassword}}"), "must be the whole value"),
            ("namespace-with-argument", profile_with("services.dagster.values.x", "{{namespace:kube-system}}"),
             "takes no argument"),
            ("unknown-field", profile_with("servcies", {}), "servcies: unknown field"),
            ("unbounded-timeout", profile_with("services.dagster.timeoutSeconds", 0), "must be 1-3600 seconds"),
            ("unknown-image", profile_with("services.postgresql.values.image.tag", "{{tag:postgress}}"),
             "names no image in versions.yaml"),
            ("unknown-chart", profile_with("services.dagster.chart", {"pinned": "dagstr"}), "pinned chart 'dagstr'"),
            ("bad-protocol", profile_with("services.postgresql.endpoints.0.protocol", "udp"), "must be http or tcp"),
            ("infinite-deadline", profile_with("testJob.activeDeadlineSeconds", -1), "never infinite"),
            ("a-list", "- profile: x\n", "must be a YAML mapping, found a list"),
            ("not-yaml", "profile: [x\n", "not valid YAML"),
        ]
    ],
    # run: everything is checked before a stack, a cluster or a file exists
    CliCase("run-unknown-stack", ["run", "staging", "--out", "{tmp}/out"], "unknown stack"),
    CliCase("run-bad-run-id", ["run", "integration", "--out", "{tmp}/out", "--run-id", "Bad_ID"],
            "--run-id: Bad_ID: must be lower-case"),
    CliCase("run-run-id-too-long", ["run", "integration", "--out", "{tmp}/out", "--run-id", "r" * 40],
            "at most 32 characters"),
    CliCase("run-run-id-trailing-dash", ["run", "integration", "--out", "{tmp}/out", "--run-id", "r1-"],
            "--run-id: r1-:"),
    CliCase("run-out-is-a-file", ["run", "integration", "--out", "{tmp}/afile"], "--out: ", files={"afile": "x"},
            also=("is a file",)),
    CliCase("run-out-under-a-file", ["run", "integration", "--out", "{tmp}/afile/results"], "cannot be created",
            files={"afile": "x"}),
    set_case("run-set-unknown-key", "clustername=x", "clustername=x: unknown setting", command="run"),
    set_case("run-set-node-image-without-digest", "nodeImage=kindest/node:v1.29.0", "must be pinned by digest",
             command="run"),
    CliCase("run-node-image-too-old-for-the-fence", ["run", "integration", "--out", "{tmp}/out", "--set",
                                                     f"nodeImage=kindest/node:v1.29.0@{DIGEST}"],
            "needs ≥ 1.30: refusing to run unprotected"),
    CliCase("run-node-image-version-unknown", ["run", "integration", "--out", "{tmp}/out", "--set",
                                               f"nodeImage=example.org/node@{DIGEST}"],
            "cannot tell which Kubernetes version"),
    set_case("run-deadline-below-test-timeout", "jobDeadlineSeconds=10", "shorter than one test's timeout",
             command="run"),
    CliCase("run-kubeconfig-mode-without-kubeconfig", ["run", "integration", "--out", "{tmp}/out", "--set",
                                                       "clusterMode=kubeconfig"],
            "floe-testinfra:kubeconfig: clusterMode kubeconfig needs the secret"),
    CliCase("run-adopt-missing-cluster", ["run", "integration", "--out", "{tmp}/out", "--adopt"],
            "clusterMode adopt but kind cluster floe-integration does not exist", patch="no-clusters"),
    CliCase("run-adopt-cluster-too-old", ["run", "integration", "--out", "{tmp}/out", "--adopt"],
            "runs Kubernetes 1.29; the test runner's admission fence", patch="old-cluster"),
    CliCase("run-adopt-cluster-without-policies", ["run", "integration", "--out", "{tmp}/out", "--adopt"],
            "does not serve validatingadmissionpolicies", patch="no-policy-api"),
    CliCase("run-profile-with-empty-secret", ["run", "integration", "--out", "{tmp}/out", "--set",
                                              "profile={tmp}/values-bad.yaml"], "needs a name",
            files={"values-bad.yaml": profile_with("services.postgresql.values.auth.postgresPassword",
                                                   "{{secret:}}")}),
    CliCase("run-e2e-disable-unknown", ["run", "e2e", "--out", "{tmp}/out", "--set", "disabledServices=cubee"],
            "cannot disable unknown service(s): cubee"),
    # collect, cleanup, perf, versions, doctor, the parser
    CliCase("collect-unknown-stack", ["collect", "staging", "--out", "{tmp}/out"], "unknown stack"),
    CliCase("collect-out-is-a-file", ["collect", "integration", "--out", "{tmp}/afile"], "is a file",
            files={"afile": "x"}),
    CliCase("collect-bad-run-id", ["collect", "integration", "--out", "{tmp}/out", "--run-id", "BAD"], "--run-id"),
    CliCase("cleanup-unknown-stack", ["cleanup", "--stack", "staging"], "invalid choice: 'staging'"),
    CliCase("perf-compare-without-results", ["perf", "compare"], "perf compare needs --results DIR"),
    CliCase("perf-compare-without-perf-json", ["perf", "compare", "--results", "{tmp}"], "perf.json does not exist"),
    CliCase("perf-thresholds-duplicate-key", ["perf", "compare", "--results", "{tmp}/res", "--perf-thresholds",
                                              "{tmp}/t.yaml"], "found duplicate key 'default'",
            files={"t.yaml": "default: {relative: 0.5, absolute: 1}\ndefault: {relative: 1, absolute: 1}\n",
                   "res/perf.json": '{"tests": {}}'}),
    CliCase("versions-unknown-key", ["versions", "kind.nope"], "has no key 'kind.nope'"),
    CliCase("versions-section", ["versions", "kind"], "is a section, not a value"),
    CliCase("doctor-unknown-stack", ["doctor", "staging"], "invalid choice: 'staging'"),
    CliCase("no-command", [], "the following arguments are required: COMMAND"),
    CliCase("unknown-command", ["deploy"], "invalid choice: 'deploy'"),
    CliCase("run-unknown-option", ["run", "integration", "--kept"], "unrecognized arguments: --kept"),
]


@pytest.fixture
def no_side_effects(monkeypatch, tmp_path):
    """Fails the test if anything would be created; returns the calls seen."""
    import components.cluster_steps as kindctl
    import floe_test.preflight as preflight
    import floe_test.run as run_module
    from floe_test import doctor

    seen: list[str] = []

    def refuse(what: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            seen.append(what)
            pytest.fail(f"{what} was reached: bad input must stop before it")

        return call

    monkeypatch.setattr(run_module, "select_stack", refuse("select_stack (creates the stack)"))
    monkeypatch.setattr(doctor, "diagnose", refuse("doctor (preflight checks after input validation)"))
    monkeypatch.setattr(run_module, "stack_kubeconfig", lambda stack: None)
    monkeypatch.setattr(kindctl, "existing_clusters", lambda: [])
    monkeypatch.setattr(run_module.ClusterApi, "for_kind", classmethod(refuse("a cluster connection")))
    monkeypatch.chdir(tmp_path)
    return {"seen": seen, "preflight": preflight, "kindctl": kindctl}


def apply_patch(name: str, monkeypatch: pytest.MonkeyPatch, env: dict[str, Any]) -> None:
    preflight, kindctl = env["preflight"], env["kindctl"]
    if name in {"old-cluster", "no-policy-api"}:
        monkeypatch.setattr(kindctl, "existing_clusters", lambda: ["floe-integration"])
        monkeypatch.setattr(kindctl, "kind_kubeconfig", lambda name: "apiVersion: v1\nkind: Config\n")
        monkeypatch.setattr(preflight, "check_cluster_policy_support", lambda kc, ctx, where:
                            preflight.require_policy_support((1, 29) if name == "old-cluster" else (1, 34), where,
                                                             served=name != "no-policy-api"))


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.id for c in CLI_CASES])
def test_bad_input_exits_2_naming_the_culprit_and_leaves_nothing(case: CliCase, tmp_path, capsys, monkeypatch,
                                                                  no_side_effects):
    from floe_model.paths import STATE_DIR

    for name, text in case.files.items():
        if text is None:
            continue
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    apply_patch(case.patch, monkeypatch, no_side_effects)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    state_before = sorted(STATE_DIR.rglob("*")) if STATE_DIR.exists() else []
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]

    assert main(argv) == 2

    err = capsys.readouterr().err
    assert case.message in err, err
    for word in case.also:
        assert word in err, err
    assert "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before, "files were left behind"
    assert (sorted(STATE_DIR.rglob("*")) if STATE_DIR.exists() else []) == state_before, "state was created"
    assert no_side_effects["seen"] == []


def test_there_are_at_least_sixty_bad_inputs_end_to_end():
    assert len(CLI_CASES) + len(MODULE_CASES) >= 60


MODULE_CASES = [
    ("versions-get-unknown", ["floe_model.versions", "get", "nope"], "has no key 'nope'"),
    ("versions-no-args", ["floe_model.versions"], "usage: python -m floe_model.versions get KEY"),
    ("fence-without-kubeconfig", ["components.fence_check", "--namespace", "floe-test-x", "--run-id", "x"],
     "refusing to run unprotected: no kubeconfig"),
    ("fence-missing-run-id", ["components.fence_check", "--namespace", "floe-test-x"], "--run-id"),
    ("kindctl-missing-name", ["components.cluster_steps", "ensure"], "the following arguments are required"),
    ("kindctl-bad-mode", ["components.cluster_steps", "ensure", "--name", "x", "--hash", "h", "--image", "i", "--mode",
                          "reuse"], "invalid choice: 'reuse'"),
    ("kindctl-ensure-not-json", ["components.cluster_steps", "ensure", "--name", "x", "--hash", "h", "--image", "i"],
     "error: unexpected JSONDecodeError"),
    ("airgap-unknown-step", ["floe_build", "bake"], "invalid choice: 'bake'"),
    ("toolchain-unknown-tool", ["floe_build.toolchain", "install", "--tool", "kubectx"], "invalid choice: 'kubectx'"),
    ("preload-without-cluster", ["components.preload_steps"], "the following arguments are required: --cluster"),
    ("cli-module-no-command", ["floe_test.cli"], "the following arguments are required: COMMAND"),
]


@pytest.mark.parametrize(("argv", "message"), [c[1:] for c in MODULE_CASES], ids=[c[0] for c in MODULE_CASES])
def test_python_m_entry_points_exit_2_with_one_message(argv, message, tmp_path):
    import subprocess
    import sys

    from floe_model.paths import REPO_ROOT

    proc = subprocess.run([sys.executable, "-m", *argv], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, input="not json" if "ensure" in argv else "", check=False)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback_the_contract_otherwise_hides(tmp_path, capsys, monkeypatch):
    import floe_test.render as render_module

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(render_module, "render", boom)
    assert main(["render", "integration", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unexpected RuntimeError: a bug (run again with --debug" in err and "Traceback" not in err
    assert main(["render", "integration", "--out", str(tmp_path / "o"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_duplicate_keys_in_versions_yaml_are_rejected(tmp_path):
    path = tmp_path / "versions.yaml"
    path.write_text(VERSIONS_FILE.read_text() + "\nkind:\n  version: v0.31.0\n")
    with pytest.raises(ConfigError, match="found duplicate key 'kind'"):
        load_versions.__wrapped__(path)


def test_duplicate_keys_in_a_stack_file_are_rejected(tmp_path, monkeypatch):
    import floe_model.settings as settings

    path = tmp_path / "Pulumi.integration.yaml"
    path.write_text("config:\n  floe-testinfra:profile: integration\n  floe-testinfra:profile: e2e\n")
    monkeypatch.setattr(settings, "stack_file", lambda stack: path)
    with pytest.raises(ConfigError, match="found duplicate key 'floe-testinfra:profile'"):
        settings.read_stack_file("integration")


def test_the_committed_versions_yaml_has_one_checksums_block():
    assert VERSIONS_FILE.read_text().count("\nchecksums:") == 1
    assert set(load_versions().raw["checksums"]) == {"kind", "kubectl", "helm"}


def test_render_replaces_an_earlier_render_whole(tmp_path):
    from floe_test.render import render

    out = tmp_path / "render"
    render("integration", out)
    (out / "manifests" / "stale-from-an-older-render.yaml").write_text("kind: Stale\n")
    render("integration", out)
    assert not (out / "manifests" / "stale-from-an-older-render.yaml").exists()
    assert (out / "plan.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["render"]  # no staging folder left
