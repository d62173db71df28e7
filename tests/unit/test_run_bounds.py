"""Every phase of a run is bounded; past a bound Pulumi is stopped and the way to finish is printed.

Also: SIGHUP (a closed terminal) is handled like SIGTERM, and CI gives each cluster job at least the
run's own bound, computed from the same settings.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from functools import partial
from typing import Any

import pytest
import yaml

import floe_test.run as run_module
from floe_model.bounds import CI_SETUP_MINUTES, RunBounds, ci_timeout_minutes, run_bounds
from floe_model.paths import REPO_ROOT
from floe_model.settings import parse_settings, read_stack_file
from floe_test._private.engine_bound import EngineBound
from floe_test.program import plan_stack
from floe_test.run import EXIT_INFRA, EXIT_PASSED, run
from testing.errors import InfraError
from tests.unit.test_run_orchestration import FakeStack, assert_clean, harness, options  # noqa: F401


class Stuck:
    """An engine operation that runs until Pulumi is asked to stop (then fails like a cancelled update)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.signals: list[tuple[int, int]] = []

    def send(self, pid: int, signum: int) -> None:
        self.signals.append((pid, signum))
        self.stop.set()

    def __call__(self, *args: Any, **kwargs: Any) -> None:
        if not self.stop.wait(10):
            raise AssertionError("never stopped: the bound did not hold")
        raise RuntimeError("error: update canceled")


def bound_with(stuck: Stuck, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(run_module, "EngineBound", partial(EngineBound, find_cli=lambda: [4242], send=stuck.send))


def test_a_destroy_past_its_bound_is_stopped_and_the_commands_to_finish_are_printed(monkeypatch, capsys):
    stuck = Stuck()
    bound_with(stuck, monkeypatch)
    stack = FakeStack()
    monkeypatch.setattr(stack, "destroy", stuck)
    started = time.monotonic()
    with pytest.raises(InfraError, match="destroy did not finish within its bound of 1s"):
        run_module.destroy_stack(stack, bounds=RunBounds(up=1, job=1, refresh=1, destroy=1),
                                 by_hand=["kind delete cluster --name floe-x", "pulumi stack rm --force"])
    assert time.monotonic() - started < 5
    assert stuck.signals == [(4242, signal.SIGINT)]  # asked to stop the way Ctrl-C does, first
    err = capsys.readouterr().err
    assert "finish the destroy by hand:" in err
    assert "    kind delete cluster --name floe-x" in err


def test_a_refresh_past_its_bound_is_stopped_and_the_destroy_still_runs(monkeypatch, capsys):
    stuck = Stuck()
    bound_with(stuck, monkeypatch)
    stack = FakeStack()
    monkeypatch.setattr(stack, "refresh", stuck)
    run_module.destroy_stack(stack, bounds=RunBounds(up=1, job=1, refresh=1, destroy=5))
    assert stack.calls == ["destroy"]
    assert "refresh did not finish within its bound of 1s" in capsys.readouterr().err


def test_pulumi_is_killed_when_it_ignores_the_stop(monkeypatch):
    sent: list[int] = []
    done = threading.Event()

    def send(pid: int, signum: int) -> None:
        sent.append(signum)
        if signum == signal.SIGKILL:
            done.set()

    with EngineBound("up", 0.1, grace=0.2, log=lambda _: None, find_cli=lambda: [4242], send=send) as bound:
        assert done.wait(5)
    assert bound.expired and sent[0] == signal.SIGINT and signal.SIGKILL in sent


def test_an_up_past_its_bound_is_stopped_then_collected_and_destroyed(harness, monkeypatch, capsys):  # noqa: F811
    stuck = Stuck()
    bound_with(stuck, monkeypatch)
    monkeypatch.setattr("floe_model.bounds.run_bounds", lambda s, p: RunBounds(up=1, job=5))
    harness.stack.up_hook = stuck
    assert run(options(harness)) == EXIT_INFRA
    assert harness.stack.calls == ["up", "collect", "refresh", "destroy"]
    assert "up did not finish within its bound of 1s" in capsys.readouterr().err
    assert_clean(harness)


def test_a_collect_past_its_bound_does_not_hold_up_the_destroy(harness, monkeypatch, capsys):  # noqa: F811
    release = threading.Event()
    monkeypatch.setattr("floe_model.bounds.run_bounds", lambda s, p: RunBounds(up=60, job=60, collect=1))
    harness.collect_hook = lambda: release.wait(10)
    started = time.monotonic()
    assert run(options(harness)) == EXIT_PASSED  # the Job's result (from the wait) stands
    release.set()
    assert time.monotonic() - started < 8
    assert harness.stack.calls[-2:] == ["refresh", "destroy"]
    assert "collect did not finish within its bound of 1s" in capsys.readouterr().err


def sighup() -> None:
    os.kill(os.getpid(), signal.SIGHUP)


def test_sighup_during_the_wait_interrupts_then_collects_and_destroys(harness, capsys):  # noqa: F811
    harness.wait_hook = sighup
    assert run(options(harness)) == EXIT_INFRA
    assert harness.stack.calls[-3:] == ["collect", "refresh", "destroy"]
    assert "interrupted (SIGHUP)" in capsys.readouterr().err
    assert_clean(harness)


def test_sighup_during_up_is_forwarded_to_pulumi_as_sigint(harness, monkeypatch, capsys):  # noqa: F811
    forwarded: list[tuple[int, int]] = []
    monkeypatch.setattr(run_module, "child_pids", lambda parent: [4242])
    monkeypatch.setattr(run_module, "signal_quietly", lambda pid, sig: forwarded.append((pid, sig)))
    harness.stack.up_hook = sighup
    assert run(options(harness)) == EXIT_INFRA
    assert forwarded == [(4242, signal.SIGINT)]
    assert harness.stack.calls == ["up", "collect", "refresh", "destroy"]
    assert "interrupted (SIGHUP during the engine operation)" in capsys.readouterr().err


def test_sighup_during_collect_is_reported_and_the_destroy_still_runs(harness, capsys):  # noqa: F811
    harness.collect_hook = sighup
    assert run(options(harness)) == EXIT_PASSED
    assert harness.stack.calls[-1] == "destroy"
    assert "SIGHUP received during clean-up" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, signal.default_int_handler) or callable(
        signal.getsignal(signal.SIGHUP)
    )


# --- CI --------------------------------------------------------------------------------------------


def workflow_timeouts() -> dict[str, int]:
    workflow = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "tests.yml").read_text())
    return {m["stack"]: int(m["timeout"]) for m in workflow["jobs"]["cluster"]["strategy"]["matrix"]["include"]}


@pytest.mark.parametrize("stack", ["integration", "e2e"])
def test_each_ci_cluster_job_outlasts_the_runs_own_bound(stack):
    # CI runs `floe-test run STACK --adopt --ci`: the same settings, in adopt mode.
    settings = parse_settings(stack, {**read_stack_file(stack), "clusterMode": "adopt", "ci": "true"})
    bounds = run_bounds(settings, plan_stack(settings))
    needed = ci_timeout_minutes(bounds)
    assert workflow_timeouts()[stack] == needed, (
        f"set timeout: {needed} for {stack} in .github/workflows/tests.yml: the run may take "
        f"{bounds.total}s ({bounds}), plus {CI_SETUP_MINUTES} min of CI setup"
    )
    assert math.ceil(bounds.total / 60) < needed  # the run's own bound stops it before CI does


def test_the_run_bound_adds_up_its_phases():
    settings = parse_settings("integration", read_stack_file("integration"))
    bounds = run_bounds(settings, plan_stack(settings))
    assert bounds.job == 3600 + 300
    assert bounds.total == bounds.up + bounds.job + bounds.collect + bounds.refresh + bounds.destroy
    shorter = run_bounds(parse_settings("integration", {"jobDeadlineSeconds": "600"}),
                         plan_stack(parse_settings("integration", {"jobDeadlineSeconds": "600"})))
    assert shorter.job == 900 and shorter.total < bounds.total


def test_an_orphaned_engine_process_comes_back_and_is_ended_with_the_run(tmp_path):
    # Live drill: SIGHUP killed the Pulumi CLI and its language host (in a process group of its own)
    # ran on, orphaned. As a subreaper the run adopts such orphans and ends them when it is done.
    import subprocess
    import sys

    script = (
        "import subprocess, sys\n"
        "from floe_test._private.reaper import become_subreaper, descendants, end_leftovers\n"
        "from testing.polling import wait_for_condition\n"
        "import os\n"
        "assert become_subreaper()\n"
        # the 'CLI' starts a 'plugin' in its own session and dies: the plugin is orphaned
        "subprocess.run(['sh', '-c', 'setsid sleep 300 >/dev/null 2>&1 & echo $!'], check=True,"
        " stdout=open(sys.argv[1], 'w'))\n"
        "orphan = int(open(sys.argv[1]).read())\n"
        "wait_for_condition(lambda: orphan in descendants(os.getpid()), timeout=10, interval=0.1,"
        " description='the orphan to be adopted')\n"
        "ended = end_leftovers(settle=1, log=print, is_engine=lambda pid: True)\n"
        "print('ENDED', str(orphan) in ended)\n"
        "os.kill(orphan, 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "pid")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert "ENDED True" in proc.stdout, proc.stdout + proc.stderr
    assert "ProcessLookupError" in proc.stderr  # the orphan is gone (and reaped: no zombie answers kill 0)
