"""floe-test run end to end with the Automation API stack faked at its boundary: phases, signals, exit codes.

A real SIGTERM is sent to this process in the phase under test; the run must still collect (when it
got that far), destroy, restore the signal handler and leave no temporary files.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import floe_test.run as run_module
from floe_model.settings import RUN_SETTINGS_ENV
from floe_test import doctor
from floe_test.collect import Collection
from floe_test.run import EXIT_FAILED, EXIT_INFRA, EXIT_PASSED, RunOptions, detach_kept_resources, run
from tests.unit.collect_fakes import FakeCore


def sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@dataclass
class Deployment:
    version: int = 3
    deployment: dict[str, Any] = field(default_factory=dict)


def state_resources() -> list[dict[str, Any]]:
    return [
        {"urn": "urn:stack", "type": "pulumi:pulumi:Stack"},
        {"urn": "urn:cluster", "type": "floe:testinfra:KindCluster", "parent": "urn:stack"},
        {"urn": "urn:run", "type": "floe:testinfra:TestNamespace", "parent": "urn:stack"},
        {"urn": "urn:run-ns", "type": "kubernetes:core/v1:Namespace", "parent": "urn:run"},
        {"urn": "urn:tests", "type": "floe:testinfra:TestJob", "parent": "urn:stack"},
        {"urn": "urn:tests-job", "type": "kubernetes:batch/v1:Job", "parent": "urn:tests"},
        {"urn": "urn:tests-pvc", "type": "kubernetes:core/v1:PersistentVolumeClaim", "parent": "urn:tests"},
    ]


@dataclass
class FakeStack:
    """The Automation API Stack's surface that run() uses."""

    up_hook: Any = None
    calls: list[str] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    imported: Deployment | None = None

    def set_config(self, key: str, value: Any) -> None:
        self.config[key] = value.value

    def up(self, on_output: Any = None) -> None:
        self.calls.append("up")
        if self.up_hook:
            self.up_hook()

    def refresh(self, on_output: Any = None, clear_pending_creates: bool = False) -> None:
        assert clear_pending_creates, "an interrupted up's pending creates must be dropped before the destroy"
        self.calls.append("refresh")

    def destroy(self, on_output: Any = None) -> None:
        self.calls.append("destroy")

    def export_stack(self) -> Deployment:
        self.calls.append("export")
        return Deployment(deployment={"resources": state_resources()})

    def import_stack(self, state: Deployment) -> None:
        self.calls.append("import")
        self.imported = state


@dataclass
class Harness:
    stack: FakeStack
    core: FakeCore
    tmp: Path
    out: Path
    job_state: str | None = "Complete"
    wait_hook: Any = None
    collect_hook: Any = None
    diagnose_hook: Any = None
    wait_timeout: float | None = None
    regressions: list[dict[str, Any]] = field(default_factory=list)
    selected: int = 0
    env: dict[str, str] = field(default_factory=dict)
    clusters: list[str] = field(default_factory=list)
    """kind clusters present at preflight."""
    leak_checks: list[str] = field(default_factory=list)


@pytest.fixture
def harness(tmp_path, monkeypatch) -> Harness:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    h = Harness(FakeStack(), FakeCore(), tmp, tmp_path / "out")

    def diagnose(stack: str, **_: Any) -> list[doctor.Check]:
        if h.diagnose_hook:
            h.diagnose_hook()
        return [doctor.Check("docker", True, "engine running")]

    def select(stack: str, env: dict[str, str]) -> FakeStack:
        h.selected += 1
        h.env = env
        return h.stack

    def wait(cluster: str, namespace: str, job: str, *, timeout: float) -> str | None:
        h.wait_timeout = timeout
        if h.wait_hook:
            h.wait_hook()
        return h.job_state

    def collect(cluster: str, namespace: str, out: Path, *, job_state: str | None, target: Any, **_: Any) -> Collection:
        h.stack.calls.append("collect")
        if h.collect_hook:
            h.collect_hook()
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.md").write_text("summary\n")
        result = Collection(target, out, job_state, "")
        result.perf = {"run_id": "r1", "tests": {"t::a": {"call": 1.0, "outcome": "passed"}}, "resources": {}}
        result.regressions = h.regressions
        return result

    class FakeApi:
        core = h.core

    monkeypatch.setattr(doctor, "diagnose", diagnose)
    monkeypatch.setattr(run_module, "select_stack", select)
    monkeypatch.setattr(run_module, "pulumi_environment", dict)
    monkeypatch.setattr(run_module, "wait_for_job", wait)
    monkeypatch.setattr(run_module, "collect", collect)
    monkeypatch.setattr(run_module.ClusterApi, "for_kind", classmethod(lambda cls, cluster: FakeApi()))
    monkeypatch.setattr(run_module, "kind_clusters", lambda: list(h.clusters))
    monkeypatch.setattr(run_module, "become_subreaper", lambda: True)
    monkeypatch.setattr(run_module, "end_leftovers", lambda **_: h.leak_checks.append("ended leftovers") or [])
    monkeypatch.setattr(run_module, "remove_leaked_cluster", h.leak_checks.append)
    monkeypatch.setattr(run_module, "finish_by_hand", lambda *a: ["kind delete cluster --name floe-integration"])
    return h


def options(h: Harness, **kwargs: Any) -> RunOptions:
    return RunOptions(stack="integration", out=h.out, run_id="r1", perf_history=h.tmp.parent / "history.jsonl",
                      **kwargs)


def assert_clean(h: Harness) -> None:
    assert list(h.tmp.iterdir()) == [], "temporary files left behind"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL or callable(signal.getsignal(signal.SIGTERM))
    assert not isinstance(getattr(signal.getsignal(signal.SIGTERM), "__self__", None), run_module._Interrupts)


@pytest.mark.parametrize(
    ("state", "code"), [("Complete", EXIT_PASSED), ("Failed", EXIT_FAILED), (None, EXIT_INFRA)],
    ids=["passed-0", "tests-failed-1", "never-finished-2"],
)
def test_exit_code_is_the_tests_result_and_everything_is_destroyed(harness, state, code):
    harness.job_state = state
    assert run(options(harness)) == code
    assert harness.stack.calls[-1] == "destroy"
    assert harness.stack.calls.index("collect") < harness.stack.calls.index("destroy")
    per_run = json.loads(harness.env[RUN_SETTINGS_ENV])
    assert per_run == {"runId": "r1", "ci": "false", "reuseCluster": "false"}
    assert harness.stack.config == {}, "a run must not rewrite the committed Pulumi.<stack>.yaml"
    assert_clean(harness)


@pytest.mark.parametrize(("overrides", "bound"), [({}, 3600 + 300), ({"jobDeadlineSeconds": "600"}, 600 + 300)],
                         ids=["profile-deadline", "stack-setting"])
def test_the_job_wait_is_bounded_by_the_jobs_own_deadline(harness, overrides, bound):
    assert run(options(harness, overrides=overrides)) == EXIT_PASSED
    assert harness.wait_timeout == bound


def test_failed_run_in_create_mode_promises_no_namespace_that_dies_with_the_cluster(harness, capsys):
    harness.job_state = "Failed"
    assert run(options(harness)) == EXIT_FAILED
    assert harness.stack.calls == ["up", "collect", "refresh", "destroy"]  # nothing detached: it all goes
    assert not harness.core.patched
    err = capsys.readouterr().err
    assert "goes with cluster floe-integration, which the stack deletes now" in err
    assert "KEEP_ON_FAILURE=1" in err
    assert "kept namespace" not in err and "debug the failed run" not in err


def test_failed_run_on_an_adopted_cluster_keeps_its_namespace_outside_the_stack_with_a_ttl(harness, monkeypatch,
                                                                                           capsys):
    import floe_test.preflight as preflight

    monkeypatch.setattr(preflight, "check_fence_possible", lambda *a, **k: None)
    harness.job_state = "Failed"
    assert run(options(harness, adopt=True)) == EXIT_FAILED
    assert harness.stack.calls == ["up", "collect", "export", "import", "refresh", "destroy"]
    left = {r["urn"] for r in harness.stack.imported.deployment["resources"]}
    assert left == {"urn:stack", "urn:cluster"}
    (namespace, body), = harness.core.patched
    assert namespace == "floe-test-r1"
    assert "floe.dev/expires-at" in body["metadata"]["labels"]
    err = capsys.readouterr().err
    for command in ("logs job/test-runner", "exec", "get events", "top nodes"):
        assert command in err
    assert harness.leak_checks == ["ended leftovers"]  # an adopted cluster is never this run's to delete


def test_keep_on_failure_keeps_the_cluster_and_says_how_to_remove_it(harness, capsys):
    harness.job_state = "Failed"
    assert run(options(harness, keep_on_failure=True)) == EXIT_FAILED
    assert "destroy" not in harness.stack.calls
    err = capsys.readouterr().err
    assert "keeping the cluster floe-integration with everything in it" in err
    assert "make test-k8s-cleanup" in err and "debug the failed run in namespace floe-test-r1" in err


def test_a_cluster_this_run_was_creating_is_checked_for_leaks_after_the_destroy_then_orphans_end(harness):
    assert run(options(harness)) == EXIT_PASSED
    assert harness.leak_checks == ["ended leftovers", "floe-integration"]


def test_a_cluster_that_was_there_before_is_never_deleted_as_a_leak(harness):
    harness.clusters = ["floe-integration"]
    assert run(options(harness)) == EXIT_PASSED
    assert harness.leak_checks == ["ended leftovers"]


def test_passed_run_is_not_detached(harness):
    assert run(options(harness)) == EXIT_PASSED
    assert "export" not in harness.stack.calls and not harness.core.patched


@pytest.mark.parametrize(
    ("flags", "state", "destroyed"),
    [({"keep_on_failure": True}, "Failed", False), ({"keep_on_failure": True}, "Complete", True),
     ({"keep_cluster": True}, "Complete", False)],
    ids=["keep-on-failure-failed", "keep-on-failure-passed", "keep-cluster"],
)
def test_keep_flags(harness, flags, state, destroyed):
    harness.job_state = state
    run(options(harness, **flags))
    assert ("destroy" in harness.stack.calls) is destroyed


def test_up_failing_half_way_is_an_infrastructure_error_and_still_destroys(harness, capsys):
    def fail() -> None:
        raise RuntimeError("CommandError: helm release dagster: timed out waiting for the condition")

    harness.stack.up_hook = fail
    assert run(options(harness)) == EXIT_INFRA
    assert harness.stack.calls == ["up", "collect", "refresh", "destroy"]
    assert "timed out waiting for the condition" in capsys.readouterr().err


def test_sigterm_during_preflight_creates_and_destroys_nothing(harness):
    harness.diagnose_hook = sigterm
    assert run(options(harness)) == EXIT_INFRA
    assert harness.selected == 0 and harness.stack.calls == []
    assert_clean(harness)


def test_sigterm_during_wait_interrupts_at_once_then_collects_and_destroys(harness, capsys):
    harness.wait_hook = sigterm
    assert run(options(harness)) == EXIT_INFRA
    assert harness.stack.calls[-3:] == ["collect", "refresh", "destroy"]
    assert "interrupted (SIGTERM)" in capsys.readouterr().err
    assert_clean(harness)


@pytest.mark.parametrize("cancelled", [False, True], ids=["up-completed", "up-cancelled"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "sigint"])
def test_a_signal_during_up_lets_pulumi_stop_gracefully_then_collects_and_destroys(harness, monkeypatch, capsys,
                                                                                   signum, cancelled):
    # Raising inside the Automation API call left the CLI dead with the stack locked (live drill):
    # the engine call must return on its own; SIGTERM is forwarded to the CLI as SIGINT (a terminal
    # Ctrl-C reaches it directly, so SIGINT is not forwarded: Pulumi's second SIGINT means "force").
    forwarded: list[tuple[int, int]] = []
    monkeypatch.setattr(run_module, "child_pids", lambda parent: [4242])
    monkeypatch.setattr(run_module, "signal_quietly", lambda pid, sig: forwarded.append((pid, sig)))
    finished: list[str] = []

    def up_interrupted() -> None:
        os.kill(os.getpid(), signum)
        finished.append("up returned normally")  # not interrupted mid-call
        if cancelled:
            raise RuntimeError("error: update canceled")  # what Pulumi reports after a graceful stop

    harness.stack.up_hook = up_interrupted
    assert run(options(harness)) == EXIT_INFRA
    assert finished == ["up returned normally"]
    assert forwarded == ([(4242, signal.SIGINT)] if signum == signal.SIGTERM else [])
    assert harness.stack.calls == ["up", "collect", "refresh", "destroy"]  # no wait for the Job
    err = capsys.readouterr().err
    assert "asking Pulumi to stop after the operations in flight" in err
    assert f"interrupted ({signal.Signals(signum).name} during the engine operation)" in err
    assert_clean(harness)


def test_a_lock_left_by_a_dead_pulumi_process_is_removed_before_the_destroy(harness, monkeypatch):
    cancelled: list[str] = []
    dead = "error: the stack is currently locked by 1 lock(s). ... created by root@vm (pid 999999999) at 2026"

    def refresh(on_output: Any = None, clear_pending_creates: bool = False) -> None:
        harness.stack.calls.append("refresh")
        if not cancelled:
            raise RuntimeError(dead)

    monkeypatch.setattr(harness.stack, "refresh", refresh)
    monkeypatch.setattr(harness.stack, "cancel", lambda: cancelled.append("cancel"), raising=False)
    assert run(options(harness)) == EXIT_PASSED
    assert cancelled == ["cancel"]
    assert harness.stack.calls[-3:] == ["refresh", "refresh", "destroy"]


def test_a_lock_held_by_a_live_process_is_never_broken(harness, monkeypatch):
    live = f"error: the stack is currently locked by 1 lock(s). created by root@vm (pid {os.getpid()}) at 2026"
    monkeypatch.setattr(harness.stack, "cancel", lambda: pytest.fail("broke a live process's lock"), raising=False)
    assert not run_module.break_stale_lock(harness.stack, RuntimeError(live))


def test_child_pids_finds_this_process_children() -> None:
    import subprocess

    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        assert child.pid in run_module.child_pids(os.getpid())
    finally:
        child.communicate(b"")


def test_sigterm_during_collect_is_reported_and_the_destroy_still_runs(harness, capsys):
    harness.collect_hook = sigterm
    assert run(options(harness)) == EXIT_PASSED
    assert harness.stack.calls[-1] == "destroy"
    assert "finishing collect/destroy first" in capsys.readouterr().err
    assert_clean(harness)


def test_ctrl_c_inside_collect_still_destroys(harness):
    def interrupt() -> None:
        raise KeyboardInterrupt

    harness.collect_hook = interrupt
    assert run(options(harness)) == EXIT_PASSED  # the Job's result stands; collection was cut short
    assert harness.stack.calls[-1] == "destroy"
    assert_clean(harness)


def test_perf_regressions_fail_the_run_only_with_perf_strict(harness):
    harness.regressions = [{"test": "t::a", "baseline_s": 1.0, "current_s": 9.0, "delta_s": 8.0, "ratio": 9.0}]
    assert run(options(harness)) == EXIT_PASSED
    assert run(options(harness, perf_strict=True)) == EXIT_FAILED


def test_every_run_appends_to_the_perf_history(harness):
    run(options(harness))
    run(options(harness))
    lines = (harness.tmp.parent / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2 and '"t::a":1.0' in lines[0]


def test_detach_removes_namespace_and_job_with_their_children_only():
    deployment = {"resources": state_resources()}
    removed = detach_kept_resources(deployment)
    assert removed == ["urn:run", "urn:run-ns", "urn:tests", "urn:tests-job", "urn:tests-pvc"]
    assert [r["urn"] for r in deployment["resources"]] == ["urn:stack", "urn:cluster"]
