"""``floe-test run STACK``: preflight -> up -> wait for the test Job -> collect -> destroy.

Driven through the Pulumi Automation API with the local file backend. ``destroy`` runs in
``finally`` (also after Ctrl-C/SIGTERM and after a half-finished ``up``) unless the cluster is to be
kept. Exit code: 0 tests passed, 1 tests failed, 2 infrastructure or usage error.
"""

from __future__ import annotations

import secrets
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from floe_test.paths import REPO_ROOT, STATE_DIR
from testing.errors import InfraError

EXIT_PASSED, EXIT_FAILED, EXIT_INFRA = 0, 1, 2


@dataclass
class RunOptions:
    stack: str
    out: Path
    keep_cluster: bool = False
    keep_on_failure: bool = False
    reuse: bool = True
    adopt: bool = False
    run_id: str | None = None
    ci: bool = False


def log(message: str) -> None:
    print(f"[floe-test] {message}", file=sys.stderr, flush=True)


@contextmanager
def phase(name: str) -> Iterator[None]:
    started = time.monotonic()
    log(f"▶ {name}")
    try:
        yield
    finally:
        log(f"◀ {name} ({time.monotonic() - started:.1f}s)")


def new_run_id() -> str:
    return f"r{secrets.token_hex(4)}"


def exit_code_for(job_state: str | None) -> int:
    """The tests' result: Complete -> 0, Failed (tests failed or deadline hit) -> 1, else 2."""
    return {"Complete": EXIT_PASSED, "Failed": EXIT_FAILED}.get(job_state or "", EXIT_INFRA)


def pulumi_environment() -> dict[str, str]:
    from floe_test.toolchain import pulumi_env

    env = pulumi_env()
    env.setdefault("PULUMI_BACKEND_URL", f"file://{STATE_DIR / 'pulumi'}")
    env.setdefault("PULUMI_CONFIG_PASSPHRASE", "")
    return env


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def select_stack(stack_name: str, env: dict[str, str]) -> Any:
    from pulumi import automation as auto

    (STATE_DIR / "pulumi").mkdir(parents=True, exist_ok=True)
    opts = auto.LocalWorkspaceOptions(work_dir=str(REPO_ROOT), env_vars=env)
    return auto.create_or_select_stack(stack_name=stack_name, work_dir=str(REPO_ROOT), opts=opts)


def run(options: RunOptions) -> int:
    from floe_test.collect import collect, wait_for_job
    from floe_test.doctor import diagnose, report
    from floe_test.settings import KNOWN_STACKS, parse_settings, read_stack_file

    if options.stack not in KNOWN_STACKS:
        read_stack_file(options.stack)  # raises the "unknown stack" error naming the known ones
    settings = parse_settings(options.stack, read_stack_file(options.stack))
    with phase("preflight"):
        if not report(diagnose(options.stack)):
            log("preflight failed: nothing was created")
            return EXIT_INFRA
    run_id = options.run_id or new_run_id()
    env = pulumi_environment()
    stack = select_stack(options.stack, env)
    from pulumi import automation as auto

    stack.set_config("floe-testinfra:runId", auto.ConfigValue(run_id))
    stack.set_config("floe-testinfra:ci", auto.ConfigValue("true" if options.ci else "false"))
    if options.adopt:
        stack.set_config("floe-testinfra:clusterMode", auto.ConfigValue("adopt"))
    previous = {sig: signal.signal(sig, _raise_interrupt) for sig in (signal.SIGTERM,)}
    job_state: str | None = None
    reason = ""
    namespace = f"{settings.namespace_prefix}-{run_id}"
    try:
        with phase(f"up (stack {options.stack}, run {run_id})"):
            stack.up(on_output=lambda line: print(line, file=sys.stderr, end=""))
        with phase(f"wait for job/test-runner in namespace {namespace}"):
            job_state = wait_for_job(settings.cluster_name, namespace, "test-runner")
    except KeyboardInterrupt as exc:
        reason = f"interrupted ({exc or 'Ctrl-C'})"
    except InfraError as exc:
        reason = str(exc)
    except Exception as exc:  # Automation API CommandError and friends: recorded, then cleaned up
        reason = f"{type(exc).__name__}: {str(exc)[-2000:]}"
    finally:
        with phase(f"collect into {options.out}"):
            try:
                collect(settings.cluster_name, namespace, options.out, job_state=job_state, reason=reason)
            except Exception as exc:  # collection must never prevent the destroy below
                log(f"collection incomplete: {exc}")
        keep = options.keep_cluster or (options.keep_on_failure and exit_code_for(job_state) != EXIT_PASSED)
        if keep:
            log(
                f"keeping the cluster: inspect with `kubectl --context kind-{settings.cluster_name} -n {namespace} "
                "get all`; remove with `make test-k8s-cleanup`"
            )
        else:
            with phase("destroy"):
                try:
                    stack.destroy(on_output=lambda line: print(line, file=sys.stderr, end=""))
                except Exception as exc:
                    log(f"destroy failed: {exc}; run `make test-k8s-cleanup`")
                    reason = reason or f"destroy failed: {exc}"
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if reason:
        log(f"infrastructure problem: {reason}")
        return EXIT_INFRA if job_state is None else exit_code_for(job_state)
    return exit_code_for(job_state)


def cleanup() -> int:
    """Destroy both stacks and delete this project's leftover kind clusters (found by name)."""
    from floe_test._private.proc import run as run_tool
    from floe_test.settings import KNOWN_STACKS, parse_settings, read_stack_file

    env = pulumi_environment()
    code = EXIT_PASSED
    for name in KNOWN_STACKS:
        settings = parse_settings(name, read_stack_file(name))
        try:
            with phase(f"destroy stack {name}"):
                select_stack(name, env).destroy(on_output=lambda line: print(line, file=sys.stderr, end=""))
        except Exception as exc:
            log(f"stack {name}: {exc}")
            code = EXIT_INFRA
        clusters = run_tool(["kind", "get", "clusters"], timeout=60, what="listing kind clusters").stdout.split()
        if settings.cluster_name in clusters:
            run_tool(
                ["kind", "delete", "cluster", "--name", settings.cluster_name],
                timeout=300,
                what=f"deleting kind cluster {settings.cluster_name}",
            )
    return code
