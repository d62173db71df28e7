"""``floe-test run STACK``: preflight -> up -> wait for the test Job -> collect -> destroy.

Driven through the Pulumi Automation API with the local file backend. ``destroy`` runs in
``finally`` (also after Ctrl-C/SIGTERM and after a half-finished ``up``) unless the cluster is to be
kept. Exit code: 0 tests passed, 1 tests failed, 2 infrastructure or usage error.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from floe_test._private.proc import child_pids, process_alive, signal_quietly
from floe_test.collect import ClusterApi, Target, collect, debug_commands, wait_for_job
from floe_test.kindctl import DIAGNOSTICS_ENV
from floe_test.paths import REPO_ROOT, STATE_DIR
from floe_test.report import append_history
from floe_test.settings import RUN_SETTINGS_ENV
from testing.errors import InfraError, PrerequisiteError

EXIT_PASSED, EXIT_FAILED, EXIT_INFRA = 0, 1, 2


@dataclass
class RunOptions:
    stack: str
    out: Path
    keep_cluster: bool = False
    keep_on_failure: bool = False
    reuse: bool = False
    adopt: bool = False
    run_id: str | None = None
    ci: bool = False
    perf_history: Path | None = None
    perf_thresholds: Path | None = None
    perf_strict: bool = False
    overrides: dict[str, str] = field(default_factory=dict)
    """Per-run settings (``--set KEY=VALUE``), e.g. variant=airgapped; never written to the stack file."""


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


def engine_output(line: str) -> None:
    """Pulumi's progress, one line each (the Automation API hands lines without their newline)."""
    print(line.rstrip("\n"), file=sys.stderr, flush=True)


#: The last line of a Python traceback: ``package.module.ErrorName: message``.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*?:")


def engine_failure(exc: Exception, *, most: int = 5) -> str:
    """The resource errors of a failed Pulumi operation, not the tail of its output (which ends in the
    language host's own shutdown traceback)."""
    lines = [line.strip() for line in str(exc).splitlines()]
    errors = []
    for i, line in enumerate(lines):
        if not line.startswith("error:") or "update failed" in line or "preview failed" in line:
            continue
        if "Program failed with an unhandled exception" in line:
            # The program's own exception: its message (the line after the traceback, and the
            # problem lines under it) says what is wrong; the "error:" line alone does not.
            raised = next((j for j in range(i + 1, len(lines)) if _EXCEPTION_LINE.match(lines[j])), None)
            if raised is not None:
                detail = [lines[raised]]
                detail += [x for x in lines[raised + 1 : raised + 1 + most] if x.startswith("- ")]
                line = "error: " + " ".join(detail)
        errors.append(line)
    picked = list(dict.fromkeys(errors))[:most]
    return f"{type(exc).__name__}: " + ("\n".join(picked) if picked else str(exc)[-2000:])


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


def select_stack(stack_name: str, env: dict[str, str]) -> Any:
    from pulumi import automation as auto

    from floe_test.toolchain import Toolchain

    (STATE_DIR / "pulumi").mkdir(parents=True, exist_ok=True)
    # The pinned CLI by path: the Automation API otherwise looks for `pulumi` on the caller's PATH
    # (only `make` puts bin/ there; `floe-test run` straight from .venv must work too).
    command = auto.PulumiCommand(root=str(Toolchain().pulumi_root))
    opts = auto.LocalWorkspaceOptions(work_dir=str(REPO_ROOT), env_vars=env, pulumi_command=command)
    return auto.create_or_select_stack(stack_name=stack_name, work_dir=str(REPO_ROOT), opts=opts)


#: The Job's own deadline ends it; the wait allows this much more for Kubernetes to say so (the
#: pod's grace period, the Job controller) before calling the run an infrastructure problem.
JOB_WAIT_MARGIN_SECONDS = 300
#: How long a failed run's namespace (Job, pod, results volume) is kept for debugging.
KEEP_FAILED_TTL_SECONDS = 3600
#: Types whose resources are detached from the stack on failure, so ``destroy`` leaves them in the cluster.
KEPT_TYPES = ("floe:testinfra:TestNamespace", "floe:testinfra:TestJob")


def run_target(settings: Any, run_id: str) -> Target:
    """Every name of a run, from the stack settings (never from stack outputs a failed up may not write)."""
    from floe_test.profiles import load_profile
    from floe_test.versions import load_versions

    versions = load_versions()
    profile = load_profile(settings.profile, versions, variant=settings.variant)
    return Target(
        cluster=settings.cluster_name,
        namespace=f"{settings.namespace_prefix}-{run_id}",
        platform_namespace=profile.platform_namespace,
        job="test-runner",
        helper_image=versions.images[profile.test_job.helper_image].ref,
    )


def detach_kept_resources(deployment: dict[str, Any], types: Sequence[str] = KEPT_TYPES) -> list[str]:
    """Remove the run's namespace and Job (and their children) from a stack export; return their URNs."""
    resources = deployment.get("resources") or []
    removed = {r["urn"] for r in resources if r.get("type") in types}
    changed = True
    while changed:
        before = len(removed)
        removed |= {r["urn"] for r in resources if r.get("parent") in removed}
        changed = len(removed) != before
    deployment["resources"] = [r for r in resources if r["urn"] not in removed]
    return sorted(removed)


def keep_failed_run(stack: Any, target: Target, *, ttl: int = KEEP_FAILED_TTL_SECONDS, api: Any = None) -> list[str]:
    """Take the failed run's namespace and Job out of the stack (``destroy`` leaves them) and give it a TTL."""
    from testing.isolation import EXPIRES_AT_LABEL, TEST_ID_LABEL

    exported = stack.export_stack()
    deployment = dict(exported.deployment or {})
    removed = detach_kept_resources(deployment)
    if removed:
        exported.deployment = deployment
        stack.import_stack(exported)
    expires = int(time.time()) + ttl
    core = api.core if api is not None else ClusterApi.for_kind(target.cluster).core
    core.patch_namespace(
        target.namespace,
        {"metadata": {"labels": {EXPIRES_AT_LABEL: str(expires), TEST_ID_LABEL: "kept-failed-run"}}},
        _request_timeout=(5.0, 30.0),
    )
    return removed


def print_debug_commands(target: Target) -> None:
    log(f"debug the failed run in namespace {target.namespace} (kept for {KEEP_FAILED_TTL_SECONDS}s):")
    for command in debug_commands(target):
        print(f"    {command}", file=sys.stderr, flush=True)


class _Interrupts:
    """Ctrl-C and SIGTERM, handled so that a run never leaves anything behind.

    - Outside engine operations (the wait for the Job), the first signal interrupts at once.
    - During an engine operation (``pulumi up``) it is deferred: Pulumi is asked to stop after the
      operations in flight (its own graceful cancel), and the interrupt takes effect when it has
      returned. Raising inside the Automation API call instead leaves the CLI writing into a closed
      pipe: it dies holding the stack's lock, with half-created resources and orphaned plugins
      (found by a live drill). A terminal Ctrl-C reaches the Pulumi CLI itself (same process group);
      SIGTERM, typically sent to our process alone, is forwarded to it as SIGINT.
    - While cleaning up (collect, destroy), further signals are reported, not obeyed.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.cleaning = False
        self.engine_busy = False
        self.pending: str | None = None
        self.previous: dict[int, Any] = {}

    def handler(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.cleaning:
            log(f"{name} received during clean-up: finishing collect/destroy first")
            return
        if self.engine_busy:
            if self.pending is None:
                self.pending = name
                log(f"{name}: asking Pulumi to stop after the operations in flight; then collect and destroy")
                if signum == signal.SIGTERM:
                    for pid in child_pids(os.getpid()):
                        signal_quietly(pid, signal.SIGINT)
            else:
                log(f"{name}: already stopping; waiting for Pulumi to finish the operations in flight")
            return
        raise KeyboardInterrupt(name)

    @contextmanager
    def engine(self) -> Iterator[None]:
        """An engine operation: interrupts wait for it to return, then take effect."""
        self.engine_busy = True
        try:
            yield
        except Exception as exc:
            if self.pending:  # the engine stopped because it was asked to: say so, not its error
                raise KeyboardInterrupt(f"{self.pending} during the engine operation") from exc
            raise
        finally:
            self.engine_busy = False
        if self.pending:
            raise KeyboardInterrupt(f"{self.pending} during the engine operation")

    def __enter__(self) -> _Interrupts:
        self.previous = {sig: signal.signal(sig, self.handler) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self.previous.items():
            signal.signal(sig, old)


#: "... locked by 1 lock(s) ... created by root@vm (pid 1024) at ...": a lock and its holder.
_LOCK_HOLDER = re.compile(r"currently locked.*?\(pid (\d+)\)", re.S)


def break_stale_lock(stack: Any, error: Exception) -> bool:
    """When ``error`` is Pulumi's "stack is locked" and the holder (on this machine) is dead, remove
    the lock (`pulumi cancel`) so the destroy can proceed. True when a lock was removed."""
    found = _LOCK_HOLDER.search(str(error))
    if not found or process_alive(int(found.group(1))):
        return False
    log(f"the stack's lock belongs to pid {found.group(1)}, which is gone: removing it (pulumi cancel)")
    stack.cancel()
    return True


def preflight_plan(settings: Any) -> Any:
    """The stack's plan, made before anything exists: a bad profile, kind config or settings that
    contradict each other fail now, not after the cluster is up."""
    from floe_test.airgap._run import AirgapError
    from floe_test.program import plan_stack

    try:
        return plan_stack(settings)
    except AirgapError as exc:
        raise PrerequisiteError(str(exc)) from None


def run(options: RunOptions) -> int:
    from floe_test.doctor import diagnose, report
    from floe_test.settings import KNOWN_STACKS, parse_settings, read_stack_file

    if options.stack not in KNOWN_STACKS:
        read_stack_file(options.stack)  # raises the "unknown stack" error naming the known ones
    settings = parse_settings(options.stack, {**read_stack_file(options.stack), **options.overrides})
    run_id = options.run_id or new_run_id()
    target = run_target(settings, run_id)
    history = options.perf_history or STATE_DIR / "perf" / f"{options.stack}.jsonl"
    with _Interrupts() as interrupts:
        try:
            with phase("preflight"):
                plan = preflight_plan(settings)
                checks = diagnose(
                    options.stack,
                    node_image=plan.node_image,
                    local_node_image=settings.node_image == "local",
                    kind_config=plan.kind_config.data if settings.cluster_mode == "create" else None,
                )
                if not report(checks):
                    log("preflight failed: nothing was created")
                    return EXIT_INFRA
        except KeyboardInterrupt as exc:
            log(f"interrupted during preflight ({str(exc) or 'Ctrl-C'}): nothing was created, nothing to destroy")
            return EXIT_INFRA
        env = pulumi_environment()
        per_run = {
            **options.overrides,
            "runId": run_id,
            "ci": str(options.ci).lower(),
            "reuseCluster": str(options.reuse).lower(),
        }
        if options.adopt:
            per_run["clusterMode"] = "adopt"
        env[RUN_SETTINGS_ENV] = json.dumps(per_run)
        # A failed `kind create` exports its node logs here, so they are among the run's results.
        env[DIAGNOSTICS_ENV] = str((options.out / "cluster-create").resolve())
        stack = select_stack(options.stack, env)

        job_state: str | None = None
        reason = ""
        collection: Any = None
        try:
            with phase(f"up (stack {options.stack}, run {run_id})"), interrupts.engine():
                stack.up(on_output=engine_output)
            with phase(f"wait for job/{target.job} in namespace {target.namespace}"):
                deadline = settings.job_deadline_seconds or plan.profile.test_job.active_deadline_seconds
                job_state = wait_for_job(
                    target.cluster, target.namespace, target.job, timeout=deadline + JOB_WAIT_MARGIN_SECONDS
                )
        except KeyboardInterrupt as exc:
            reason = f"interrupted ({str(exc) or 'Ctrl-C'})"
        except InfraError as exc:
            reason = str(exc)
        except Exception as exc:  # Automation API CommandError and friends: recorded, then cleaned up
            reason = engine_failure(exc)
        finally:
            # From here on a second Ctrl-C/SIGTERM must not skip the destroy.
            interrupts.cleaning = True
            with phase(f"collect into {options.out}"):
                try:
                    collection = collect(
                        target.cluster,
                        target.namespace,
                        options.out,
                        job_state=job_state,
                        reason=reason,
                        target=target,
                        perf_history=history,
                        perf_thresholds=options.perf_thresholds,
                    )
                    job_state = collection.job_state
                except BaseException as exc:  # collection must never prevent the destroy below
                    log(f"collection incomplete: {type(exc).__name__}: {exc}")
                    reason = reason or f"collection interrupted: {exc}"
            code = exit_code_for(job_state) if job_state else EXIT_INFRA
            failed = code != EXIT_PASSED
            keep = options.keep_cluster or (options.keep_on_failure and failed)
            if failed and job_state:
                print_debug_commands(target)
            if keep:
                log(
                    f"keeping the cluster: `kubectl --context {target.kube_context} -n {target.namespace} get all`; "
                    "remove it with `make test-k8s-cleanup`"
                )
            else:
                if failed and job_state:
                    try:
                        kept = keep_failed_run(stack, target)
                        log(
                            f"kept namespace {target.namespace} (Job and results) outside the stack: {len(kept)} "
                            f"resource(s); the sweeper deletes it after {KEEP_FAILED_TTL_SECONDS}s"
                        )
                    except BaseException as exc:
                        log(f"could not keep namespace {target.namespace}: {exc}")
                with phase("destroy"):
                    try:
                        destroy_stack(stack)
                    except BaseException as exc:
                        log(f"destroy failed: {exc}; run `make test-k8s-cleanup`")
                        reason = reason or f"destroy failed: {exc}"
    if collection is not None and collection.perf:
        try:
            append_history(collection.perf, history)
        except OSError as exc:
            log(f"perf history {history} not updated: {exc}")
        if collection.regressions:
            log(f"{len(collection.regressions)} perf regression(s), see {options.out / 'summary.md'}")
            if options.perf_strict and code == EXIT_PASSED:
                log("--perf-strict: failing the run because of the perf regressions")
                code = EXIT_FAILED
    if reason:
        log(f"infrastructure problem: {reason}")
    log(f"summary: {options.out / 'summary.md'}; exit code {code}")
    return code


def destroy_stack(stack: Any) -> None:
    """Refresh, then destroy; a lock left by a dead Pulumi process is removed first."""
    for attempt in (1, 2):
        # Refresh first: an interrupted up leaves pending operations a bare destroy trips over. Its
        # pending creates (interrupted mid-create) are dropped: everything is destroyed anyway, and
        # otherwise they stay in the state and warn on every later run.
        try:
            stack.refresh(on_output=engine_output, clear_pending_creates=True)
        except Exception as exc:
            if attempt == 1 and break_stale_lock(stack, exc):
                continue
            log(f"refresh before destroy failed ({exc}); destroying anyway")
        stack.destroy(on_output=engine_output)
        return


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
                destroy_stack(select_stack(name, env))
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
