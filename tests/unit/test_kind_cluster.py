"""KindCluster: modes, reuse keyed by the config hash, and the lifecycle commands it runs."""

from __future__ import annotations

import argparse
import subprocess

import pytest

from components import cluster_steps as kindctl
from components.kind_cluster import KindCluster, KindClusterArgs
from floe_model.kind_config import config_hash, load_kind_config, render_kind_config, with_hash_label
from floe_model.paths import K8S_DIR
from floe_model.settings import parse_settings
from floe_model.versions import load_versions
from floe_test.program import plan_stack
from floe_test.render import run_under_mocks
from testing.errors import ConfigError, InfraError, PrerequisiteError

IMAGE = load_versions().node_image


def rendered_config(**options):
    return render_kind_config(
        load_kind_config(K8S_DIR / "kind-config.yaml"), cluster_name="floe-integration", **options
    )


def test_hash_is_stable_and_covers_config_and_versions():
    config = rendered_config()
    base = config_hash(config, kind_version="v0.30.0", node_image=IMAGE)
    assert base == config_hash(rendered_config(), kind_version="v0.30.0", node_image=IMAGE)
    assert base == config_hash(with_hash_label(config, base), kind_version="v0.30.0", node_image=IMAGE)
    assert base != config_hash(config, kind_version="v0.31.0", node_image=IMAGE)
    assert base != config_hash(rendered_config(expose_ports=False), kind_version="v0.30.0", node_image=IMAGE)


def test_stack_options_shape_the_rendered_config():
    config = rendered_config(expose_ports=False, extra_mounts=[{"hostPath": "/data", "containerPath": "/data"}])
    (node,) = config.data["nodes"]
    assert "extraPortMappings" not in node
    assert node["extraMounts"] == [{"hostPath": "/data", "containerPath": "/data"}]
    assert config.node_names == ["floe-integration-control-plane"]


def test_e2e_node_names_follow_kind_naming():
    config = render_kind_config(load_kind_config(K8S_DIR / "kind-config-e2e.yaml"), cluster_name="floe-e2e")
    assert config.node_names == ["floe-e2e-control-plane", "floe-e2e-worker", "floe-e2e-worker2"]


def _args(**change):
    config = with_hash_label(rendered_config(), "h1")
    base = {"cluster_name": "floe-integration", "config": config, "config_hash": "h1", "node_image": IMAGE}
    return KindClusterArgs(**{**base, **change})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mode": "kubeconfig"}, "needs a kubeconfig"),
        ({"kubeconfig": "apiVersion: v1"}, "only used with mode 'kubeconfig'"),
        ({"node_image": "kindest/node:v1.34.0"}, "pinned by digest"),
        ({"ready_timeout_seconds": 0}, "ready_timeout_seconds"),
        ({"cluster_name": "other"}, "the rendered config names cluster"),
        ({"mode": "recreate"}, "must be one of create, adopt, kubeconfig"),
    ],
    ids=[
        "kubeconfig-mode-without-kubeconfig",
        "kubeconfig-in-create-mode",
        "unpinned-image",
        "zero-timeout",
        "name-mismatch",
        "unknown-mode",
    ],
)
def test_bad_cluster_inputs_fail_before_anything_is_created(change, message):
    with pytest.raises(ConfigError, match=message):
        KindCluster("c", _args(**change))


@pytest.mark.parametrize(("mode", "deletes"), [("create", True), ("adopt", False)])
def test_created_clusters_are_deleted_on_destroy_adopted_ones_kept(mode, deletes):
    plan = plan_stack(parse_settings("integration", {"clusterMode": mode}))
    resources, outputs = run_under_mocks(plan, stack="integration")
    (lifecycle,) = [r for r in resources if r.name == "cluster-lifecycle"]
    assert f"--mode {mode}" in lifecycle.inputs["create"]
    assert f"--hash {plan.config_hash}" in lifecycle.inputs["create"]
    assert bool(lifecycle.inputs.get("delete")) is deletes
    assert outputs["nodeNames"] == ["floe-integration-control-plane"]


def test_kubeconfig_output_is_secret():
    plan = plan_stack(parse_settings("integration", {}))
    resources, _ = run_under_mocks(plan, stack="integration")
    (provider,) = [r for r in resources if r.type == "pulumi:providers:kubernetes"]
    assert "4dabf18193072939515e22adb298388d" in provider.inputs["kubeconfig"]  # Pulumi's secret signature


def _ensure_args(mode="create", reuse=True):
    return argparse.Namespace(name="floe-integration", hash="h1", image=IMAGE, mode=mode, timeout=5, reuse=reuse)


@pytest.fixture
def fake_kind(monkeypatch):
    """Replace the tool boundary (docker, kind, API server); the decisions under test stay real."""
    state = {"clusters": [], "hash": {"h1"}, "created": [], "docker": None}
    monkeypatch.setattr(kindctl, "docker_running", lambda: state["docker"])
    monkeypatch.setattr(kindctl, "existing_clusters", lambda: list(state["clusters"]))
    monkeypatch.setattr(kindctl, "kind_kubeconfig", lambda name: f"kubeconfig-of-{name}")
    monkeypatch.setattr(kindctl, "cluster_hash", lambda kubeconfig: state["hash"])
    monkeypatch.setattr(kindctl, "wait_nodes_ready", lambda kubeconfig, **kw: ["floe-integration-control-plane"])
    def run(argv, **kw):
        state["created"].append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(kindctl, "run", run)
    return state


def test_missing_cluster_is_created_with_config_image_and_wait(fake_kind):
    result = kindctl.ensure(_ensure_args(), {"config": "kind: Cluster\nnodes: [{role: control-plane}]\n"})
    (argv,) = fake_kind["created"]
    assert argv[:3] == ["kind", "create", "cluster"]
    assert "--config" in argv and argv[argv.index("--image") + 1] == IMAGE and "--wait" in argv
    assert result["adopted"] is False and result["kubeconfig"] == "kubeconfig-of-floe-integration"


def test_cluster_with_the_same_hash_is_reused_not_recreated(fake_kind):
    fake_kind["clusters"] = ["floe-integration"]
    result = kindctl.ensure(_ensure_args(), {"config": "nodes: [{role: control-plane}]"})
    assert result["adopted"] is True and fake_kind["created"] == []


def test_cluster_with_another_hash_is_an_error_that_says_how_to_proceed(fake_kind):
    fake_kind["clusters"] = ["floe-integration"]
    fake_kind["hash"] = {"zz"}
    with pytest.raises(InfraError, match=r"different config .*kind delete cluster --name floe-integration"):
        kindctl.ensure(_ensure_args(), {"config": "nodes: [{role: control-plane}]"})
    assert fake_kind["created"] == []


def test_adopting_a_missing_cluster_fails(fake_kind):
    with pytest.raises(InfraError, match="does not exist"):
        kindctl.ensure(_ensure_args("adopt"), {"config": "nodes: [{role: control-plane}]"})


def test_docker_not_running_stops_before_anything_is_created(fake_kind):
    fake_kind["docker"] = "the Docker engine is not running"
    with pytest.raises(PrerequisiteError, match="Docker engine is not running"):
        kindctl.ensure(_ensure_args(), {"config": "nodes: [{role: control-plane}]"})
    assert fake_kind["created"] == []


def test_an_existing_cluster_is_an_error_unless_reuse_was_asked_for(fake_kind):
    fake_kind["clusters"] = ["floe-integration"]
    with pytest.raises(InfraError, match=r"already exists and reuse was not asked for.*--reuse"):
        kindctl.ensure(_ensure_args(reuse=False), {"config": "nodes: [{role: control-plane}]"})
    assert fake_kind["created"] == []


@pytest.mark.parametrize(("reuse", "flag"), [("true", False), ("false", True)])
def test_reuse_setting_reaches_the_lifecycle_command(reuse, flag):
    plan = plan_stack(parse_settings("integration", {"reuseCluster": reuse}))
    resources, _ = run_under_mocks(plan, stack="integration")
    (lifecycle,) = [r for r in resources if r.name == "cluster-lifecycle"]
    assert ("--no-reuse" in lifecycle.inputs["create"]) is flag


def test_a_local_node_image_needs_no_digest_and_changes_the_hash(monkeypatch):
    import floe_build.cluster_smoke as airgap

    monkeypatch.setattr(airgap, "node_image_tag", lambda kubernetes: "floe-testinfra/node:v1.34.0-abc")
    monkeypatch.setattr(airgap, "containerd_patches", lambda: ["[plugins]\n  restrict_oom_score_adj = true\n"])
    pinned = plan_stack(parse_settings("integration", {}))
    local = plan_stack(parse_settings("integration", {"nodeImage": "local"}))
    assert local.node_image == "floe-testinfra/node:v1.34.0-abc"
    assert local.config_hash != pinned.config_hash
    assert local.kind_config.data["containerdConfigPatches"] == ["[plugins]\n  restrict_oom_score_adj = true\n"]
    assert "containerdConfigPatches" not in pinned.kind_config.data
    resources, _ = run_under_mocks(local, stack="integration")
    (lifecycle,) = [r for r in resources if r.name == "cluster-lifecycle"]
    assert "--image floe-testinfra/node:v1.34.0-abc" in lifecycle.inputs["create"]


def test_per_run_settings_reach_the_run_not_the_stack_file(monkeypatch, tmp_path):
    from floe_test import doctor
    from floe_test.cli import main

    seen = {}
    monkeypatch.setattr(doctor, "diagnose", lambda stack, **_: [doctor.Check("docker", False, "not running", "start")])

    def fake_run(options):
        seen.update(options.overrides)
        return 2

    import floe_test.run as run_module

    monkeypatch.setattr(run_module, "run", fake_run)
    assert main(["run", "integration", "--set", "variant=airgapped", "--set", "nodeImage=local"]) == 2
    assert seen == {"variant": "airgapped", "nodeImage": "local"}


def test_the_kubeconfig_on_stdout_is_never_logged():
    plan = plan_stack(parse_settings("integration", {}))
    resources, _ = run_under_mocks(plan, stack="integration")
    (lifecycle,) = [r for r in resources if r.name == "cluster-lifecycle"]
    assert lifecycle.inputs["logging"] == "stderr"
