"""``floe-test run STACK``: preflight -> up -> wait for the test Job -> collect -> destroy.

Driven through the Pulumi Automation API with the local file backend. ``destroy`` runs in
``finally`` (also after Ctrl-C/SIGTERM/SIGHUP and after a half-finished ``up``) unless the cluster is
to be kept. Every phase is bounded (floe_model/bounds.py); past the bound of refresh or destroy the
exact commands to finish by hand are printed. Exit code: 0 tests passed, 1 tests failed, 2 anything
else (floe_test/_private/entry.py).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from components.cluster_steps import DIAGNOSTICS_ENV
from floe_model.bounds import DESTROY_SECONDS, JOB_WAIT_MARGIN_SECONDS, REFRESH_SECONDS, RunBounds
from floe_model.paths import REPO_ROOT, STATE_DIR
from floe_model.proc import child_pids, process_alive, signal_quietly
from floe_model.settings import RUN_SETTINGS_ENV
from floe_test._private.engine_bound import EngineBound
from floe_test._private.reaper import become_subreaper, end_leftovers
from floe_test.collect import ClusterApi, Target, collect, debug_commands, wait_for_job
from floe_test.report import append_history
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
    from floe_build.toolchain import pulumi_env

    env = pulumi_env()
    env.setdefault("PULUMI_BACKEND_URL", f"file://{STATE_DIR / 'pulumi'}")
    env.setdefault("PULUMI_CONFIG_PASSPHRASE", "")
    return env


def select_stack(stack_name: str, env: dict[str, str]) -> Any:
    from pulumi import automation as auto

    from floe_build.toolchain import Toolchain

    (STATE_DIR / "pulumi").mkdir(parents=True, exist_ok=True)
    # The pinned CLI by path: the Automation API otherwise looks for `pulumi` on the caller's PATH
    # (only `make` puts bin/ there; `floe-test run` straight from .venv must work too).
    command = auto.PulumiCommand(root=str(Toolchain().pulumi_root))
    opts = auto.LocalWorkspaceOptions(work_dir=str(REPO_ROOT), env_vars=env, pulumi_command=command)
    return auto.create_or_select_stack(stack_name=stack_name, work_dir=str(REPO_ROOT), opts=opts)


__all__ = ["JOB_WAIT_MARGIN_SECONDS", "RunOptions", "cleanup", "run"]

#: How long a failed run's namespace (Job, pod, results volume) is kept for debugging.
KEEP_FAILED_TTL_SECONDS = 3600
#: Types whose resources are detached from the stack on failure, so ``destroy`` leaves them in the cluster.
KEPT_TYPES = ("floe:testinfra:TestNamespace", "floe:testinfra:TestJob")


def existing_stack(stack_name: str, env: dict[str, str]) -> Any | None:
    """The stack if this checkout's backend has its state, else ``None`` (nothing is created)."""
    from pulumi import automation as auto

    from floe_build.toolchain import Toolchain

    if not (STATE_DIR / "pulumi").is_dir():
        return None
    command = auto.PulumiCommand(root=str(Toolchain().pulumi_root))
    opts = auto.LocalWorkspaceOptions(work_dir=str(REPO_ROOT), env_vars=env, pulumi_command=command)
    try:
        return auto.select_stack(stack_name=stack_name, work_dir=str(REPO_ROOT), opts=opts)
    except auto.StackNotFoundError:
        return None


def stack_kubeconfig(stack_name: str) -> str | None:
    """The secret ``floe-testinfra:kubeconfig`` of an existing stack (clusterMode kubeconfig)."""
    stack = existing_stack(stack_name, pulumi_environment())
    if stack is None:
        return None
    try:
        return str(stack.get_config("floe-testinfra:kubeconfig").value)
    except Exception:
        return None


def kind_clusters() -> list[str]:
    """Running kind clusters (empty when kind or Docker cannot tell)."""
    from components.cluster_steps import existing_clusters

    try:
        return existing_clusters()
    except InfraError:
        return []


def run_target(settings: Any, run_id: str) -> Target:
    """Every name of a run, from the stack settings (never from stack outputs a failed up may not write)."""
    from floe_model.profiles import load_profile
    from floe_model.versions import load_versions

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
    """Ctrl-C, SIGTERM and SIGHUP (a closed terminal), handled so that a run never leaves anything behind.

    - Outside engine operations (the wait for the Job), the first signal interrupts at once.
    - During an engine operation (``pulumi up``) it is deferred: Pulumi is asked to stop after the
      operations in flight (its own graceful cancel), and the interrupt takes effect when it has
      returned. Raising inside the Automation API call instead leaves the CLI writing into a closed
      pipe: it dies holding the stack's lock, with half-created resources and orphaned plugins
      (found by a live drill). A terminal Ctrl-C reaches the Pulumi CLI itself (same process group);
      SIGTERM and SIGHUP, typically sent to our process alone, are forwarded to it as SIGINT.
    - While cleaning up (collect, destroy), further signals are reported, not obeyed.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

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
                if signum != signal.SIGINT:
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
    from floe_build._run import AirgapError
    from floe_test.program import plan_stack

    try:
        return plan_stack(settings)
    except AirgapError as exc:
        raise PrerequisiteError(str(exc)) from None


class BoundExceeded(InfraError):
    """An engine operation outlived its bound and was stopped."""


def run(options: RunOptions) -> int:
    from floe_model.bounds import run_bounds
    from floe_model.settings import KNOWN_STACKS, read_stack_file, settings_with_overrides
    from floe_test.doctor import diagnose, report
    from floe_test.preflight import check_fence_possible, check_out_dir, check_run_id

    if options.stack not in KNOWN_STACKS:
        read_stack_file(options.stack)  # raises the "unknown stack" error naming the known ones
    # Arguments first: a bad --run-id or --out must stop the run before anything exists.
    if options.run_id is not None:
        check_run_id(options.run_id)
    check_out_dir(options.out)
    overrides = {**options.overrides, **({"clusterMode": "adopt"} if options.adopt else {})}
    settings = settings_with_overrides(options.stack, overrides)
    run_id = options.run_id or new_run_id()
    target = run_target(settings, run_id)
    history = options.perf_history or STATE_DIR / "perf" / f"{options.stack}.jsonl"
    with _Interrupts() as interrupts:
        try:
            with phase("preflight"):
                plan = preflight_plan(settings)
                bounds = run_bounds(settings, plan)
                log(
                    f"bounds: up ≤ {bounds.up}s, tests ≤ {bounds.job}s, collect ≤ {bounds.collect}s, "
                    f"refresh ≤ {bounds.refresh}s, destroy ≤ {bounds.destroy}s (whole run ≤ {bounds.total}s)"
                )
                check_fence_possible(settings, plan, stack_kubeconfig=lambda: stack_kubeconfig(options.stack))
                checks = diagnose(
                    options.stack,
                    node_image=plan.node_image,
                    local_node_image=settings.node_image == "local",
                    kind_config=plan.kind_config.data if settings.cluster_mode == "create" else None,
                )
                if not report(checks):
                    log("preflight failed: nothing was created")
                    return EXIT_INFRA
                # A cluster that is there now is not this run's to clean up if it leaks; one that is not, is.
                preexisting = settings.cluster_mode != "create" or settings.cluster_name in kind_clusters()
        except KeyboardInterrupt as exc:
            log(f"interrupted during preflight ({str(exc) or 'Ctrl-C'}): nothing was created, nothing to destroy")
            return EXIT_INFRA
        # Orphans of the engine (plugins of a CLI killed by a signal) come back to us and end with the run.
        adopting = become_subreaper()
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
                bounded_engine("up", bounds.up, lambda: stack.up(on_output=engine_output))
            with phase(f"wait for job/{target.job} in namespace {target.namespace}"):
                job_state = wait_for_job(target.cluster, target.namespace, target.job, timeout=bounds.job)
        except KeyboardInterrupt as exc:
            reason = f"interrupted ({str(exc) or 'Ctrl-C'})"
        except InfraError as exc:
            reason = str(exc)
        except Exception as exc:  # Automation API CommandError and friends: recorded, then cleaned up
            reason = engine_failure(exc)
        finally:
            # From here on a second Ctrl-C/SIGTERM/SIGHUP must not skip the destroy.
            interrupts.cleaning = True
            with phase(f"collect into {options.out} (≤ {bounds.collect}s)"):
                collection, problem = bounded_collect(
                    lambda: collect(
                        target.cluster,
                        target.namespace,
                        options.out,
                        job_state=job_state,
                        reason=reason,
                        target=target,
                        perf_history=history,
                        perf_thresholds=options.perf_thresholds,
                    ),
                    bounds.collect,
                )
                if collection is not None:
                    job_state = collection.job_state
                else:
                    log(f"collection incomplete: {problem}")
                    reason = reason or f"collection incomplete: {problem}"
            code = exit_code_for(job_state) if job_state else EXIT_INFRA
            failed = code != EXIT_PASSED
            keep = options.keep_cluster or (options.keep_on_failure and failed)
            if keep:
                if failed and job_state:
                    print_debug_commands(target)
                log(
                    f"keeping the cluster {target.cluster} with everything in it: "
                    f"`kubectl --context {target.kube_context} -n {target.namespace} get all`; "
                    f"remove it later with `make test-k8s-cleanup` (floe-test cleanup --stack {options.stack})"
                )
            else:
                if failed and job_state:
                    keep_or_explain(stack, target, settings, options)
                with phase("destroy"):
                    try:
                        destroy_stack(
                            stack,
                            bounds=bounds,
                            by_hand=finish_by_hand(options.stack, settings, target, plan, env),
                        )
                    except BaseException as exc:
                        log(f"destroy incomplete: {exc}")
                        reason = reason or f"destroy incomplete: {exc}"
            if adopting:
                # Before the leak check: an orphaned creation deletes its own cluster once its parent is gone.
                end_leftovers(log=log)
            if not keep and not preexisting:
                remove_leaked_cluster(target.cluster)
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


def keep_or_explain(stack: Any, target: Target, settings: Any, options: RunOptions) -> None:
    """A failed run: keep its namespace for debugging where it can outlive the stack, else say where to look.

    In create mode the stack owns the cluster and ``destroy`` deletes it with every namespace in it:
    only keeping the whole cluster (--keep-on-failure) keeps anything, so nothing else is promised.
    """
    if settings.cluster_mode == "create":
        log(
            f"the failed run's namespace {target.namespace} goes with cluster {target.cluster}, which the stack "
            f"deletes now; what was collected is in {options.out}. To keep the cluster of a failed run for "
            "debugging: --keep-on-failure (make test-k8s KEEP_ON_FAILURE=1), then `make test-k8s-cleanup`"
        )
        return
    if options.ci:
        log(f"CI run: namespace {target.namespace} is not kept; what was collected is in {options.out}")
        return
    try:
        kept = keep_failed_run(stack, target)
    except BaseException as exc:
        log(f"could not keep namespace {target.namespace}: {exc}")
        return
    print_debug_commands(target)
    log(
        f"kept namespace {target.namespace} (Job and results) in cluster {target.cluster}, outside the stack: "
        f"{len(kept)} resource(s); the sweeper deletes it after {KEEP_FAILED_TTL_SECONDS}s "
        f"(`kubectl --context {target.kube_context} delete namespace {target.namespace}` removes it now)"
    )


def bounded_engine(what: str, seconds: float, operation: Any) -> Any:
    """Run one engine operation under its bound; past it Pulumi is stopped and :class:`BoundExceeded` raised."""
    with EngineBound(what, seconds, log=log) as bound:
        try:
            return operation()
        except Exception as exc:
            if bound.expired:
                raise BoundExceeded(
                    f"{what} did not finish within its bound of {seconds:.0f}s and was stopped ({type(exc).__name__})"
                ) from exc
            raise


def bounded_collect(operation: Any, seconds: float) -> tuple[Any, str]:
    """(the collection, "") or (None, why not): collect runs in a worker so its bound holds whatever
    it waits on; past the bound the run moves on to the destroy."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["result"] = operation()
        except BaseException as exc:  # reported, never raised: collection must not prevent the destroy
            box["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=work, name="collect", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        return None, f"collect did not finish within its bound of {seconds:.0f}s; destroying anyway"
    if "result" in box:
        return box["result"], ""
    return None, str(box.get("error", "no result"))


def remove_leaked_cluster(cluster: str) -> None:
    """After the destroy: the cluster this run set out to create must be gone, even if its creation was
    cut short before Pulumi recorded it (an interrupt, a killed engine). Deleted only if ours."""
    from components.cluster_marker import judge
    from components.cluster_steps import existing_clusters

    try:
        if cluster not in existing_clusters():
            return
    except InfraError as exc:
        log(f"could not check for a leftover kind cluster {cluster}: {exc}")
        return
    verdict = judge(cluster)
    if not verdict.ours:
        log(f"kind cluster {cluster} is still there but not deleted: {verdict.reason}")
        return
    log(f"kind cluster {cluster} outlived the stack (its creation was cut short): deleting it")
    delete_kind_cluster(cluster)


def delete_kind_cluster(cluster: str, *, timeout: float = 300) -> bool:
    from components.cluster_steps import existing_clusters
    from floe_model.proc import run as run_tool

    try:
        run_tool(
            ["kind", "delete", "cluster", "--name", cluster], timeout=timeout, what=f"deleting kind cluster {cluster}"
        )
    except InfraError as exc:
        if cluster in kind_clusters():
            log(f"kind cluster {cluster} not deleted: {exc}; delete it by hand: kind delete cluster --name {cluster}")
            return False
    return cluster not in existing_clusters()


def finish_by_hand(stack_name: str, settings: Any, target: Target, plan: Any, env: dict[str, str]) -> list[str]:
    """The exact commands that finish a destroy that could not (bounded, or failed)."""
    from floe_build.toolchain import Toolchain

    pulumi = Toolchain().pulumi_root / "bin" / "pulumi"
    lines = [
        f"cd {REPO_ROOT}",
        f"export PULUMI_BACKEND_URL={env.get('PULUMI_BACKEND_URL', '')} PULUMI_CONFIG_PASSPHRASE= "
        f"PULUMI_HOME={env.get('PULUMI_HOME', '')} PULUMI_SKIP_UPDATE_CHECK=true",
    ]
    if settings.cluster_mode == "create":
        # Everything the stack made lives in (or is) this cluster.
        lines.append(f"kind delete cluster --name {settings.cluster_name}")
    else:
        context = f"--context {target.kube_context}" if settings.cluster_mode == "adopt" else ""
        kinds = "validatingadmissionpolicybinding,validatingadmissionpolicy,clusterrolebinding,clusterrole"
        lines.append(f"kubectl {context} delete {kinds} -l floe.dev/run-id={settings.run_id}".replace("  ", " "))
        for service in plan.profile.enabled_services:
            helm_context = f"--kube-context {target.kube_context} " if settings.cluster_mode == "adopt" else ""
            lines.append(f"helm {helm_context}uninstall -n {service.namespace} {service.name}")
        namespaces = {target.namespace, *(s.namespace for s in plan.profile.enabled_services)} - {"kube-system"}
        lines.append(f"kubectl {context} delete namespace {' '.join(sorted(namespaces))}".replace("  ", " "))
    lines += [
        f"{pulumi} cancel --yes --stack {stack_name}    # only if it says the stack is locked",
        f"{pulumi} stack rm --force --preserve-config --yes --stack {stack_name}    # forget what is deleted",
    ]
    return lines


def _engine_with_lock_retry(stack: Any, what: str, seconds: float, operation: Any) -> Any:
    """An engine operation; a lock left by a dead Pulumi process (a killed earlier run) is removed once."""
    try:
        return bounded_engine(what, seconds, operation)
    except BoundExceeded:
        raise
    except Exception as exc:
        if not break_stale_lock(stack, exc):
            raise
    return bounded_engine(what, seconds, operation)


def destroy_stack(stack: Any, *, bounds: RunBounds | None = None, by_hand: Sequence[str] = ()) -> None:
    """Refresh, then destroy, each bounded; past a bound or on failure, print the commands to finish by hand."""
    refresh_bound = bounds.refresh if bounds else REFRESH_SECONDS
    destroy_bound = bounds.destroy if bounds else DESTROY_SECONDS
    try:
        # Refresh first: an interrupted up leaves pending operations a bare destroy trips over. Its
        # pending creates (interrupted mid-create) are dropped: everything is destroyed anyway, and
        # otherwise they stay in the state and warn on every later run.
        _engine_with_lock_retry(
            stack,
            "refresh",
            refresh_bound,
            lambda: stack.refresh(on_output=engine_output, clear_pending_creates=True),
        )
    except Exception as exc:
        log(f"refresh before destroy failed ({str(exc).strip().splitlines()[-1:] or exc}); destroying anyway")
    try:
        _engine_with_lock_retry(stack, "destroy", destroy_bound, lambda: stack.destroy(on_output=engine_output))
    except Exception as exc:
        if by_hand:
            log("finish the destroy by hand:")
            for line in by_hand:
                print(f"    {line}", file=sys.stderr, flush=True)
        raise InfraError(engine_failure(exc) if not isinstance(exc, InfraError) else str(exc)) from None


def cleanup(stacks: Sequence[str] = ()) -> int:
    """Destroy the stacks this checkout has state for, then delete the kind clusters this checkout
    created (by the marker on their nodes, never by name alone); print what is skipped and why."""
    from components.cluster_marker import judge
    from floe_model.settings import KNOWN_STACKS

    env = pulumi_environment()
    code = EXIT_PASSED
    chosen = tuple(stacks) or KNOWN_STACKS
    for name in chosen:
        stack = existing_stack(name, env)
        if stack is None:
            log(f"stack {name}: no state in this checkout, nothing to destroy")
            continue
        try:
            with phase(f"destroy stack {name}"):
                destroy_stack(stack)
        except Exception as exc:
            log(f"stack {name}: {exc}")
            code = EXIT_INFRA
    try:
        from components.cluster_steps import existing_clusters

        clusters = existing_clusters()
    except InfraError as exc:
        log(f"kind clusters not checked: {exc}")
        return EXIT_INFRA
    for cluster in clusters:
        verdict = judge(cluster)
        if verdict.ours and (not stacks or verdict.stack in chosen):
            with phase(f"delete kind cluster {cluster} ({verdict.reason})"):
                if not delete_kind_cluster(cluster):
                    code = EXIT_INFRA
        elif verdict.ours:
            log(f"skipped kind cluster {cluster}: this checkout's, but of stack {verdict.stack or '?'}, not asked for")
        else:
            log(f"skipped kind cluster {cluster}: {verdict.reason}")
    return code
