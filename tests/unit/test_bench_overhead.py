"""benchmarks/bench_orchestration_overhead.py without a cluster: the bare sequence it would run for a real
render, the secrets it fills in, floe-test's phase lines, the comparison, and the skip path of `make benchmarks`."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from floe_model.paths import REPO_ROOT
from floe_test.redact import MASK
from floe_test.run import phase
from testing.errors import InfraError

WORK = Path("/work-of-the-bench")
NODE_IMAGE = "floe-testinfra/node:v1.34.0-test"


def _load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_orchestration_overhead", REPO_ROOT / "benchmarks" / "bench_orchestration_overhead.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A real `floe-test render` of the air-gapped integration stack (the pinned node image: nothing built here)."""
    out = tmp_path_factory.mktemp("render-bench")
    return bench.render_stack("integration", out, {"variant": "airgapped", "nodeImage": ""})


def _markers_in(folder: Path) -> set[str]:
    text = "".join(p.read_text() for p in folder.rglob("*.yaml"))
    return set(re.findall(r"<secret:([^>]+)>", text))


def test_each_secret_gets_one_value_shared_by_every_release_and_the_secret(rendered):
    values = bench.generate_secrets(rendered)
    assert set(values) == _markers_in(rendered.dir)
    assert len(set(values.values())) == len(values), "two secrets got the same value"
    files = {name: yaml.safe_load(text) for name, text in bench.bare_inputs(rendered, values).items()}
    postgres, dagster = files["values-postgresql.yaml"], files["values-dagster.yaml"]
    (secret,) = [m for m in files.values() if m.get("kind") == "Secret"]
    # The password the test Job connects with is the one PostgreSQL was installed with...
    assert secret["stringData"]["FLOE_POSTGRES_PASSWORD"] == postgres["auth"]["postgresPassword"]
    assert postgres["auth"]["postgresPassword"] == values["postgresPassword"]
    # ...and Dagster's database password is the one the postgresql release created its user with.
    assert dagster["postgresql"]["postgresqlPassword"] == postgres["databases"][0]["password"]
    assert postgres["databases"][0]["password"] == values["dagsterDbPassword"]
    assert not any("<secret" in text for text in bench.bare_inputs(rendered, values).values())


def test_markers_inside_longer_strings_are_replaced_and_an_unnamed_secret_is_refused():
    url = "postgresql://dagster:<secret:db>@postgresql:5432/<secret:db>"
    assert bench.substitute({"a": [url]}, {"db": "s3cr3t"}) == {
        "a": ["postgresql://dagster:s3cr3t@postgresql:5432/s3cr3t"]
    }
    with pytest.raises(InfraError, match="unnamed <secret>"):
        bench.substitute({"password": "<secret>"}, {})


def test_the_kind_config_is_the_rendered_one_under_the_bare_cluster_name(rendered):
    config = yaml.safe_load(bench.bare_inputs(rendered, bench.generate_secrets(rendered))["kind-config.yaml"])
    assert config["name"] == bench.BARE_CLUSTER != rendered.plan["cluster_name"]
    assert {k: v for k, v in config.items() if k != "name"} == {
        k: v for k, v in rendered.kind_config.items() if k != "name"
    }


def test_the_bare_sequence_for_the_rendered_stack(rendered):
    steps = bench.bare_steps(rendered, NODE_IMAGE, WORK)
    plan = rendered.plan
    assert plan["releases"].index("postgresql") < plan["releases"].index("dagster")
    assert [s.name for s in steps] == [
        "kind create cluster",
        *(f"kind load docker-image {image}" for image in plan["images"]),
        "kubectl apply namespaces",
        *(f"helm install {name}" for name in plan["releases"]),
        "kubectl apply manifests",
        "kubectl wait job/test-runner",
        "kind delete cluster",
    ]
    by_name = {s.name: s for s in steps}
    create = by_name["kind create cluster"].argv
    assert create[:3] == ["kind", "create", "cluster"]
    assert _flag(create, "--image") == NODE_IMAGE
    assert _flag(create, "--config") == str(WORK / "kind-config.yaml")
    assert _flag(create, "--wait") == "5m"
    for step in steps:
        argv = [*step.argv, *(step.race or [])]
        assert plan["cluster_name"] not in argv, f"{step.name} names the floe stack's cluster"
        if argv[0] == "kind":
            assert _flag(argv, "--name") == bench.BARE_CLUSTER
        if argv[0] != "kind" or argv[1] != "load":
            # Never ~/.kube/config: the bare cluster must not become anyone's current context.
            assert _flag(argv, "--kubeconfig") == str(WORK / "kubeconfig"), step.name

    kinds = {f"manifests/{name}": m["kind"] for name, m in rendered.manifests.items()}
    namespaces = _files(by_name["kubectl apply namespaces"].argv)
    rest = _files(by_name["kubectl apply manifests"].argv)
    assert {kinds[f] for f in namespaces} == {"Namespace"}
    assert sorted(namespaces + rest) == sorted(kinds), "every rendered manifest is applied exactly once"
    assert kinds[rest[-1]] == "Job" and "Secret" in {kinds[f] for f in rest}

    for release in rendered.releases:
        helm = by_name[f"helm install {release['name']}"].argv
        assert helm[:4] == ["helm", "install", release["name"], release["chart"]]
        assert _flag(helm, "--namespace") == release["namespace"]
        assert _flag(helm, "--values") == str(WORK / f"values-{release['name']}.yaml")
        assert {"--wait", "--wait-for-jobs"} <= set(helm) and _flag(helm, "--timeout") == "10m"

    wait = by_name["kubectl wait job/test-runner"]
    job = rendered.job
    deadline = job["spec"]["activeDeadlineSeconds"] + bench.JOB_WAIT_MARGIN_SECONDS
    assert {wait.argv[-1], wait.race[-1]} == {"--for=condition=complete", "--for=condition=failed"}
    assert _flag(wait.argv, "--namespace") == job["metadata"]["namespace"]
    assert f"--timeout={deadline}s" in wait.argv
    assert by_name["kind delete cluster"].group == "destroy" and wait.group == "wait"

    # Every input file a command reads is one the bench writes.
    written = {str(WORK / name) for name in bench.bare_inputs(rendered, bench.generate_secrets(rendered))}
    read = {a for s in steps for a in s.argv if a.startswith(str(WORK)) and not a.endswith("kubeconfig")}
    assert read <= written


def test_the_dry_run_masks_every_generated_secret(rendered):
    values = bench.generate_secrets(rendered)
    text = "\n".join(bench.dry_run_lines(rendered, NODE_IMAGE, WORK, values))
    assert not [name for name, value in values.items() if value in text]
    assert f"postgresPassword={MASK}" in text and f"dagsterDbPassword={MASK}" in text
    assert f"$ kind create cluster --name {bench.BARE_CLUSTER} --image {NODE_IMAGE}" in text


def test_phase_lines_are_read_as_floe_test_writes_them(capsys):
    with phase("up (stack integration, run r1a2b3c4d)"):
        pass
    written = capsys.readouterr().err.splitlines()
    assert [name for name, _ in bench.parse_phases(written)] == ["up (stack integration, run r1a2b3c4d)"]
    lines = [
        "[floe-test] ▶ preflight\n",
        "[floe-test] ◀ preflight (0.9s)\n",
        "[kind-cluster] Creating kind cluster floe-integration (1 node(s)); waiting ≤ 300s (12.0s)\n",
        "[floe-test] ◀ up (stack integration, run r1a2b3c4d) (183.4s)\n",
        "[floe-test] ◀ wait for job/test-runner in namespace floe-test-r1a2b3c4d (97.0s)\n",
        "[floe-test] ◀ collect into test-results/integration (4.2s)\n",
        "[floe-test] ◀ destroy (21s)\n",
    ]
    phases = bench.parse_phases(lines)
    assert phases == [
        ("preflight", 0.9),
        ("up (stack integration, run r1a2b3c4d)", 183.4),
        ("wait for job/test-runner in namespace floe-test-r1a2b3c4d", 97.0),
        ("collect into test-results/integration", 4.2),
        ("destroy", 21.0),
    ]
    assert [bench.phase_key(name) for name, _ in phases] == ["preflight", "up", "wait", "collect", "destroy"]


def test_the_comparison_pairs_each_floe_phase_with_the_bare_steps_doing_its_work():
    bare = bench.BareResult(
        steps=[
            bench.StepResult("kind create cluster", "up", 60.0, True),
            bench.StepResult("helm install postgresql", "up", 40.0, True),
            bench.StepResult("kubectl wait job/test-runner", "wait", 50.0, True),
            bench.StepResult("kind delete cluster", "destroy", 10.0, True),
        ],
        seconds=160.0,
        job_state="Failed",
    )
    floe = bench.FloeResult(
        seconds=200.0,
        exit_code=1,
        phases=[
            ("preflight", 2.0),
            ("up (stack s, run r)", 120.0),
            ("wait for job/x", 55.0),
            ("collect into o", 5.0),
            ("destroy", 15.0),
        ],
    )
    compared = bench.comparison(bare, floe)
    rows = {r["what"]: (r["bare"], r["floe"]) for r in compared["rows"]}
    assert rows[bench.GROUPS["up"]] == (100.0, 120.0)
    assert rows[bench.GROUPS["wait"]] == (50.0, 55.0)
    assert rows[bench.GROUPS["destroy"]] == (10.0, 15.0)
    assert rows["preflight (floe only)"] == (None, 2.0) and rows["collect (floe only)"] == (None, 5.0)
    assert rows["outside phases (floe only)"] == (None, pytest.approx(3.0))
    assert compared["ratio"] == pytest.approx(1.25)
    assert compared["overhead_seconds"] == pytest.approx(40.0)
    assert compared["floe_only_seconds"] == pytest.approx(10.0)


def test_a_missing_prerequisite_is_one_skipped_line_and_exit_0_or_2_with_strict(monkeypatch, capsys):
    monkeypatch.setattr(bench, "check_prerequisites", lambda stack, overrides: (["no Docker", "no node image"], None))
    monkeypatch.setattr(bench, "measure", lambda *a: pytest.fail("measured without its prerequisites"))
    assert bench.main([]) == 0
    assert capsys.readouterr().out == "skipped: no Docker; no node image\n"
    assert bench.main(["--strict"]) == 2


def _flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def _files(argv: list[str]) -> list[str]:
    return [str(Path(argv[i + 1]).relative_to(WORK)) for i, a in enumerate(argv) if a == "-f"]


# --- the runners, with stand-in commands (no cluster) ------------------------------------------------------


def test_the_job_wait_ends_with_the_first_command_that_succeeds_and_stops_the_other():
    assert bench.race(["sleep", "60"], ["true"], timeout=30) == 1
    assert bench.race(["true"], ["sleep", "60"], timeout=30) == 0
    with pytest.raises(InfraError, match="both failed"):
        bench.race(["false"], ["false"], timeout=30)


def _step(name: str, script: str, group: str = "up") -> Any:
    return bench.Step(name, ["sh", "-c", script], 30, group)


def test_a_failed_bare_step_stops_the_sequence_and_the_cluster_is_still_deleted(tmp_path):
    marker = tmp_path / "deleted"
    steps = [
        _step("create", "true"),
        _step("helm install x", "echo 'Error: timed out waiting for the condition' >&2; exit 1"),
        _step("never run", f"touch {tmp_path / 'ran'}"),
        _step("kind delete cluster", f"touch {marker}", "destroy"),
    ]
    result = bench.run_bare(steps, tmp_path)
    assert [(s.name, s.ok) for s in result.steps] == [
        ("create", True),
        ("helm install x", False),
        ("kind delete cluster", True),
    ]
    assert "timed out waiting for the condition" in result.failure
    assert marker.exists() and not (tmp_path / "ran").exists()


def test_a_bare_cluster_that_someone_else_created_meanwhile_is_not_deleted(tmp_path):
    marker = tmp_path / "deleted"
    steps = [
        _step(
            "create", "echo 'ERROR: node(s) already exist for a cluster with the name \"floe-bench-bare\"' >&2; exit 1"
        ),
        _step("kind delete cluster", f"touch {marker}", "destroy"),
    ]
    result = bench.run_bare(steps, tmp_path)
    assert result.failure and not marker.exists()


def test_the_floe_run_is_timed_with_its_phases_and_only_an_infrastructure_exit_is_a_failure(tmp_path):
    script = (
        "import sys; print('[floe-test] ◀ up (stack s, run r) (1.5s)', file=sys.stderr); "
        "print('engine output'); print('[floe-test] ◀ destroy (0.5s)', file=sys.stderr); sys.exit(int(sys.argv[1]))"
    )
    tests_failed = bench.run_floe([sys.executable, "-c", script, "1"], tmp_path / "floe.log")
    assert tests_failed.exit_code == 1 and not tests_failed.failure
    assert tests_failed.phases == [("up (stack s, run r)", 1.5), ("destroy", 0.5)]
    assert "engine output" in (tmp_path / "floe.log").read_text()
    broken = bench.run_floe([sys.executable, "-c", script, "2"], tmp_path / "floe2.log")
    assert "exited 2" in broken.failure
