"""Orchestration overhead: `floe-test run` against the bare kind/kubectl/helm sequence doing the same work.

The stack is rendered once without a cluster (`floe-test render`); then, in the same run and one after
the other, two sequences deploy it and run its test Job:

- bare (the baseline): `kind create cluster` from the rendered kind config (another cluster name),
  `kind load docker-image` per image, `kubectl apply` of the namespaces, `helm install --wait` per
  release (secret markers replaced by values generated for this run), `kubectl apply` of the other
  manifests, `kubectl wait` until the Job is complete or failed, `kind delete cluster`; each step timed;
- floe: `floe-test run STACK` (preflight, up, wait, collect, destroy), timed as a whole and per phase.

Prints floe's total as a ratio to the bare total, the overhead (floe - bare) and where it goes. A failed
Job is a result, not an error: both sequences report it. Needs Docker, the pinned tools (`make tools`),
the node image and every image of the stack in the local Docker store; without them it prints
`skipped: <reason>` and exits 0 (2 with --strict). It creates two Kind clusters in turn: on a small
machine never run it beside another cluster run.

    .venv/bin/python benchmarks/bench_orchestration_overhead.py [--stack integration] [--variant airgapped]
        [--node-image local] [--order bare-first|floe-first] [--json PATH] [--workdir DIR] [--dry-run] [--strict]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import secrets
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from floe_model.paths import REPO_ROOT
from floe_model.proc import docker_running, find_tool, run
from floe_test.doctor import busy_host_ports
from floe_test.redact import MASK
from testing.errors import InfraError

BARE_CLUSTER = "floe-bench-bare"
KIND_WAIT = "5m"
HELM_TIMEOUT = "10m"
#: floe's wait_for_job bounds the wait by the Job's deadline plus this margin; the bare wait does the same.
JOB_WAIT_MARGIN_SECONDS = 300
#: A bound on the whole `floe-test run`; its own phases are bounded well inside it.
FLOE_RUN_TIMEOUT_SECONDS = 3 * 3600
EXIT_SKIPPED_STRICT, EXIT_INTERRUPTED = 2, 130

SECRET_MARKER = re.compile(r"<secret:([^>]+)>")
#: `[floe-test] ◀ <phase> (<seconds>s)`, written by floe_test.run.phase when a phase ends.
PHASE_END = re.compile(r"^\[floe-test\] ◀ (?P<name>.+) \((?P<seconds>\d+(?:\.\d+)?)s\)\s*$")
#: Which floe phase each group of bare steps does the work of; floe's other phases have no bare twin.
GROUPS = {"up": "cluster, images, services, Job created", "wait": "tests (Job to finish)", "destroy": "teardown"}


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- the rendered stack and the bare sequence (pure: what the unit tests check) -------------------------


@dataclass(frozen=True)
class Rendered:
    """A `floe-test render` output folder, read back."""

    dir: Path
    plan: dict[str, Any]
    kind_config: dict[str, Any]
    releases: list[dict[str, Any]]
    """In plan.json's order: the order the program declares them (postgresql before dagster)."""
    manifests: dict[str, dict[str, Any]]
    """File name -> object, sorted by file name."""

    @property
    def job(self) -> dict[str, Any]:
        jobs = [m for m in self.manifests.values() if m["kind"] == "Job"]
        if len(jobs) != 1:
            raise InfraError(f"{self.dir}: expected one Job manifest, found {len(jobs)}")
        return jobs[0]


def load_rendered(folder: Path) -> Rendered:
    plan = json.loads((folder / "plan.json").read_text())
    releases = [yaml.safe_load((folder / "releases" / f"{name}.yaml").read_text()) for name in plan["releases"]]
    manifests = {p.name: yaml.safe_load(p.read_text()) for p in sorted((folder / "manifests").glob("*.yaml"))}
    return Rendered(folder, plan, yaml.safe_load((folder / "kind-config.yaml").read_text()), releases, manifests)


def secret_names(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(secret_names(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(secret_names(v) for v in value))
    return set(SECRET_MARKER.findall(value)) if isinstance(value, str) else set()


def substitute(value: Any, values: dict[str, str]) -> Any:
    """``value`` with every ``<secret:NAME>`` marker replaced by ``values[NAME]``, inside longer strings too."""
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if not isinstance(value, str):
        return value
    if value == "<secret>":
        # render writes this for a secret it could not name: there is nothing to substitute it with.
        raise InfraError("the render holds an unnamed <secret> value; the bare sequence cannot fill it in")
    return SECRET_MARKER.sub(lambda m: values[m.group(1)], value)


def generate_secrets(rendered: Rendered) -> dict[str, str]:
    """One value per secret name found anywhere in the render, so every release and the Secret agree."""
    names = secret_names([r["values"] for r in rendered.releases]) | secret_names(list(rendered.manifests.values()))
    return {name: secrets.token_urlsafe(24) for name in sorted(names)}


def _is_namespace(manifest: dict[str, Any]) -> bool:
    return manifest["kind"] == "Namespace"


def bare_inputs(rendered: Rendered, values: dict[str, str]) -> dict[str, str]:
    """The files the bare sequence reads, relative to its work folder -> their text."""
    kind_config = {**rendered.kind_config, "name": BARE_CLUSTER}
    files = {"kind-config.yaml": yaml.safe_dump(kind_config, sort_keys=False)}
    for release in rendered.releases:
        files[f"values-{release['name']}.yaml"] = yaml.safe_dump(substitute(release["values"], values), sort_keys=False)
    for name, manifest in rendered.manifests.items():
        files[f"manifests/{name}"] = yaml.safe_dump(substitute(manifest, values), sort_keys=False)
    return files


@dataclass(frozen=True)
class Step:
    name: str
    argv: list[str]
    timeout: float
    group: str
    """The floe phase doing the same work: up, wait or destroy."""
    race: list[str] | None = None
    """A second command run beside ``argv``: the step ends when either succeeds (the Job wait)."""


def bare_steps(rendered: Rendered, node_image: str, work: Path) -> list[Step]:
    kubeconfig = str(work / "kubeconfig")
    # Every command names the bare cluster's own kubeconfig: kind would otherwise add the cluster to
    # ~/.kube/config and make it the current context under anyone else's kubectl on this machine.
    kubectl = ["kubectl", "--kubeconfig", kubeconfig]
    steps = [
        Step(
            "kind create cluster",
            [
                "kind",
                "create",
                "cluster",
                "--name",
                BARE_CLUSTER,
                "--image",
                node_image,
                "--config",
                str(work / "kind-config.yaml"),
                "--kubeconfig",
                kubeconfig,
                "--wait",
                KIND_WAIT,
            ],
            timeout=300 + 300,
            group="up",
        )
    ]
    steps += [
        Step(
            f"kind load docker-image {image}",
            ["kind", "load", "docker-image", "--name", BARE_CLUSTER, image],
            1200,
            "up",
        )
        for image in rendered.plan["images"]
    ]
    names = list(rendered.manifests)
    namespaces = [n for n in names if _is_namespace(rendered.manifests[n])]
    steps.append(
        Step(
            "kubectl apply namespaces",
            [*kubectl, "apply", *(a for n in namespaces for a in ("-f", str(work / "manifests" / n)))],
            120,
            "up",
        )
    )
    for release in rendered.releases:
        source = [release["chart"]]
        if release.get("repo"):
            source += ["--repo", release["repo"]]
        if release.get("version"):
            source += ["--version", str(release["version"])]
        steps.append(
            Step(
                f"helm install {release['name']}",
                # --wait-for-jobs: floe's releases set wait_for_jobs too.
                [
                    "helm",
                    "install",
                    release["name"],
                    *source,
                    "--namespace",
                    release["namespace"],
                    "--values",
                    str(work / f"values-{release['name']}.yaml"),
                    "--wait",
                    "--wait-for-jobs",
                    "--timeout",
                    HELM_TIMEOUT,
                    "--kubeconfig",
                    kubeconfig,
                ],
                660 + 60,
                "up",
            )
        )
    # The Job last, so its pod starts with its Secret, ServiceAccount and claim already there.
    rest = sorted((n for n in names if n not in namespaces), key=lambda n: rendered.manifests[n]["kind"] == "Job")
    steps.append(
        Step(
            "kubectl apply manifests",
            [*kubectl, "apply", *(a for n in rest for a in ("-f", str(work / "manifests" / n)))],
            120,
            "up",
        )
    )
    job = rendered.job
    meta = job["metadata"]
    bound = int(job["spec"].get("activeDeadlineSeconds", 3600)) + JOB_WAIT_MARGIN_SECONDS
    wait = [*kubectl, "wait", "--namespace", meta["namespace"], f"job/{meta['name']}", f"--timeout={bound}s"]
    # kubectl wait takes one condition: wait for both at once and stop at the first that holds.
    steps.append(
        Step(
            f"kubectl wait job/{meta['name']}",
            [*wait, "--for=condition=complete"],
            bound + 30,
            "wait",
            race=[*wait, "--for=condition=failed"],
        )
    )
    steps.append(
        Step(
            "kind delete cluster",
            ["kind", "delete", "cluster", "--name", BARE_CLUSTER, "--kubeconfig", kubeconfig],
            300,
            "destroy",
        )
    )
    return steps


def dry_run_lines(rendered: Rendered, node_image: str, work: Path, values: dict[str, str]) -> list[str]:
    """The bare commands and what their input files hold; secret values masked."""
    lines = []
    for step in bare_steps(rendered, node_image, work):
        lines.append(f"$ {shlex.join(step.argv)}")
        if step.race:
            lines.append(f"  (beside it, the first to succeed ends the wait: $ {shlex.join(step.race)})")
    lines.append(f"{work / 'kind-config.yaml'}: the rendered kind-config.yaml, named {BARE_CLUSTER}")
    for release in rendered.releases:
        found = ", ".join(f"{n}={MASK}" for n in sorted(secret_names(release["values"]))) or "no secrets"
        lines.append(
            f"{work / ('values-' + release['name'] + '.yaml')}: values of releases/{release['name']}.yaml; {found}"
        )
    for name, manifest in rendered.manifests.items():
        if found := sorted(secret_names(manifest)):
            lines.append(f"{work / 'manifests' / name}: {', '.join(f'{n}={MASK}' for n in found)}")
    lines.append(f"secrets generated for this run, one value per name shared by every file above: {', '.join(values)}")
    return lines


def parse_phases(lines: Sequence[str]) -> list[tuple[str, float]]:
    """(phase, seconds) for each phase floe-test reported as ended, in order."""
    return [(m["name"], float(m["seconds"])) for line in lines if (m := PHASE_END.match(line.rstrip("\n")))]


def phase_key(name: str) -> str:
    """`up (stack integration, run r1)` -> `up`; `wait for job/...` -> `wait`; `collect into ...` -> `collect`."""
    return name.split(maxsplit=1)[0]


# --- preflight --------------------------------------------------------------------------------------------


class Skip(Exception):
    """A prerequisite is missing: nothing was created."""


def overrides_of(args: argparse.Namespace) -> dict[str, str]:
    return {"variant": args.variant, "nodeImage": args.node_image}


def set_args(overrides: dict[str, str]) -> list[str]:
    return [a for key, value in overrides.items() for a in ("--set", f"{key}={value}")]


def floe_cli() -> str:
    beside = Path(sys.executable).with_name("floe-test")
    if beside.exists():
        return str(beside)
    return find_tool("floe-test")


def plan_of(stack: str, overrides: dict[str, str]) -> Any:
    """The program's own plan, so the node image is resolved as `floe-test run` resolves it."""
    from floe_model.settings import parse_settings, read_stack_file
    from floe_test.program import plan_stack

    return plan_stack(parse_settings(stack, {**read_stack_file(stack), **overrides}))


def check_prerequisites(stack: str, overrides: dict[str, str]) -> tuple[list[str], Any | None]:
    """What is missing to run both sequences (read-only checks), and the program's plan when it resolves."""
    from floe_build import AirgapError

    try:
        plan = plan_of(stack, overrides)
    except (AirgapError, InfraError) as exc:  # e.g. no node image recorded: the message says what to do
        return [str(exc)], None
    reason = docker_running()
    if reason:
        return [reason], plan
    from components.cluster_steps import existing_clusters
    from components.preload_steps import local_image_present
    from floe_test.doctor import diagnose

    missing = [f"{c.name}: {c.detail} ({c.fix})" for c in diagnose(stack) if c.required and not c.ok]
    if not local_image_present(plan.node_image):
        missing.append(f"node image {plan.node_image} is not in the local Docker store (`make node-image`)")
    clusters = existing_clusters()
    if plan.settings.cluster_name in clusters:
        missing.append(
            f"kind cluster {plan.settings.cluster_name} exists: `floe-test run` would reuse it and the figure "
            "would be wrong; run `make test-k8s-cleanup` first"
        )
    if BARE_CLUSTER in clusters:
        missing.append(
            f"kind cluster {BARE_CLUSTER} exists (left by an interrupted benchmark, or one running now); "
            f"once no benchmark runs: `kind delete cluster --name {BARE_CLUSTER}`"
        )
    for ref in plan.images:
        if local_image_present(ref):
            continue
        if ref == plan.test_runner_image:
            base = plan.versions.images[plan.profile.test_job.base_image].ref
            missing.append(
                f"test-runner image {ref} is not in the local Docker store (floe-test run would build it, the "
                f"bare sequence cannot): `docker build -f {REPO_ROOT / 'testing' / 'Dockerfile'} "
                f"--build-arg BASE_IMAGE={base} -t {ref} {REPO_ROOT}`"
            )
        else:
            missing.append(f"image {ref} is not in the local Docker store (air-gapped: `make airgapped-images`)")
    missing += [
        f"host port {port} of the kind config is in use (another kind cluster?)"
        for port in busy_host_ports(plan.kind_config.data)
    ]
    return missing, plan


def render_stack(stack: str, out: Path, overrides: dict[str, str]) -> Rendered:
    proc = subprocess.run(
        [floe_cli(), "render", stack, "--out", str(out), *set_args(overrides)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if proc.returncode != 0:
        raise InfraError(f"floe-test render {stack} exited {proc.returncode}: {(proc.stderr or proc.stdout).strip()}")
    return load_rendered(out)


# --- running the sequences -----------------------------------------------------------------------------------


@dataclass
class StepResult:
    name: str
    group: str
    seconds: float
    ok: bool
    detail: str = ""


@dataclass
class BareResult:
    steps: list[StepResult] = field(default_factory=list)
    seconds: float = 0.0
    job_state: str | None = None
    failure: str = ""


@dataclass
class FloeResult:
    seconds: float = 0.0
    exit_code: int | None = None
    phases: list[tuple[str, float]] = field(default_factory=list)
    log: str = ""
    failure: str = ""


def race(first: list[str], second: list[str], timeout: float) -> int:
    """Run both commands; 0 or 1: which succeeded first. The other is stopped."""
    procs = [
        subprocess.Popen([find_tool(a[0]), *a[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for a in (first, second)
    ]
    ended: queue.SimpleQueue[int] = queue.SimpleQueue()
    for index, proc in enumerate(procs):
        threading.Thread(target=lambda i=index, p=proc: (p.wait(), ended.put(i)), daemon=True).start()
    try:
        errors = []
        for _ in procs:
            try:
                index = ended.get(timeout=timeout)
            except queue.Empty:
                raise InfraError(f"`{shlex.join(first)}` did not finish within {timeout:.0f}s") from None
            if procs[index].returncode == 0:
                return index
            errors.append(procs[index].stderr.read().strip() if procs[index].stderr else "")
        raise InfraError(f"`{shlex.join(first)}` and its twin both failed: {' | '.join(errors)}")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
            proc.communicate()


def run_to_the_end(argv: list[str], timeout: float, logfile: Path) -> int:
    """Run a clean-up command that Ctrl-C must not cut short: its own session, waited for through interrupts."""
    with logfile.open("a") as out:
        proc = subprocess.Popen(
            [find_tool(argv[0]), *argv[1:]], stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while True:
            try:
                return proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except KeyboardInterrupt:
                log(f"still deleting kind cluster {BARE_CLUSTER}: it has to go before the benchmark stops")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                return -1


def run_bare(steps: list[Step], work: Path) -> BareResult:
    result = BareResult()
    *deploy, delete = steps
    ours = True
    started = time.monotonic()
    try:
        for step in deploy:
            log(f"▶ {step.name}")
            t0 = time.monotonic()
            detail = ""
            try:
                if step.race:
                    result.job_state = ("Complete", "Failed")[race(step.argv, step.race, step.timeout)]
                    detail = f"job {result.job_state}"
                else:
                    run(step.argv, timeout=step.timeout, what=f"bare: {step.name}")
            except InfraError as exc:
                # Created by someone else since the preflight: theirs, not ours to delete.
                ours = not (step is deploy[0] and "already exist" in str(exc))
                result.steps.append(StepResult(step.name, step.group, time.monotonic() - t0, False, str(exc)))
                result.failure = str(exc)
                log(f"bare sequence stopped: {exc}")
                break
            seconds = time.monotonic() - t0
            result.steps.append(StepResult(step.name, step.group, seconds, True, detail))
            log(f"◀ {step.name} ({seconds:.1f}s)")
    finally:
        # Also after a failed step or Ctrl-C: a partly created cluster is deleted too (kind delete is idempotent).
        if ours:
            log(f"▶ {delete.name} {BARE_CLUSTER}")
            t0 = time.monotonic()
            code = run_to_the_end(delete.argv, delete.timeout, work / "kind-delete.log")
            seconds = time.monotonic() - t0
            detail = (
                ""
                if code == 0
                else f"exit {code}, see {work / 'kind-delete.log'}; `kind delete cluster --name {BARE_CLUSTER}`"
            )
            result.steps.append(StepResult(delete.name, delete.group, seconds, code == 0, detail))
            log(f"◀ {delete.name} ({seconds:.1f}s)" + (f" FAILED: {detail}" if detail else ""))
            if detail and not result.failure:
                result.failure = f"{delete.name}: {detail}"
        result.seconds = time.monotonic() - started
    return result


def run_floe(argv: list[str], logfile: Path) -> FloeResult:
    """`floe-test run`, timed; its output goes to ``logfile``, its phase lines also to the terminal."""
    result = FloeResult()
    started = time.monotonic()
    # Its own session: a Ctrl-C here becomes one SIGTERM to it (floe-test then collects and destroys) instead of
    # a SIGINT per keypress that could cut its destroy short.
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1, start_new_session=True
    )
    timer = threading.Timer(FLOE_RUN_TIMEOUT_SECONDS, proc.send_signal, [signal.SIGTERM])
    timer.daemon = True
    timer.start()
    interrupted = False
    lines: list[str] = []
    assert proc.stdout is not None
    with logfile.open("w") as out:
        while True:
            try:
                for line in proc.stdout:  # read to the end, also after an interrupt: a full pipe would block it
                    out.write(line)
                    lines.append(line)
                    if line.startswith(("[floe-test] ▶", "[floe-test] ◀")):
                        print(line.rstrip("\n"), file=sys.stderr, flush=True)
                break
            except KeyboardInterrupt:
                if not interrupted:
                    interrupted = True
                    proc.send_signal(signal.SIGTERM)
                log("interrupted: waiting for floe-test to collect and destroy its stack")
    result.exit_code = proc.wait()
    timer.cancel()
    result.seconds = time.monotonic() - started
    result.phases = parse_phases(lines)
    result.log = str(logfile)
    if interrupted:
        raise KeyboardInterrupt
    if result.exit_code not in (0, 1):
        tail = "".join(lines[-20:])
        result.failure = f"floe-test run exited {result.exit_code} (infrastructure error); last lines:\n{tail}"
    return result


def runner_image(stack: str, overrides: dict[str, str]) -> str:
    return str(plan_of(stack, overrides).test_runner_image)


# --- results ----------------------------------------------------------------------------------------------


def comparison(bare: BareResult, floe: FloeResult) -> dict[str, Any]:
    rows = []
    for key, label in GROUPS.items():
        b = sum(s.seconds for s in bare.steps if s.group == key)
        f = sum(seconds for name, seconds in floe.phases if phase_key(name) == key)
        rows.append({"what": label, "bare": b, "floe": f, "ratio": f / b if b else None})
    # Phases without a bare twin (preflight, collect, any added later) and the time outside every phase
    # (start-up, stack selection, keeping a failed run's namespace) are work only floe does.
    only: dict[str, float] = {}
    for name, seconds in floe.phases:
        if phase_key(name) not in GROUPS:
            only[phase_key(name)] = only.get(phase_key(name), 0.0) + seconds
    only["outside phases"] = floe.seconds - sum(s for _, s in floe.phases)
    for key, seconds in only.items():
        rows.append({"what": f"{key} (floe only)", "bare": None, "floe": seconds, "ratio": None})
    return {
        "rows": rows,
        "ratio": floe.seconds / bare.seconds if bare.seconds else None,
        "overhead_seconds": floe.seconds - bare.seconds,
        "floe_only_seconds": sum(only.values()),
    }


def print_results(bare: BareResult, floe: FloeResult, compared: dict[str, Any] | None) -> None:
    """Both sequences' times; the comparison only when both ran to the end (else it would mislead)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 140)
    steps = Table("bare step", "seconds", "result", title="bare tool sequence (baseline)")
    for s in bare.steps:
        steps.add_row(s.name, f"{s.seconds:.1f}", ("ok" if s.ok else "FAILED") + (f": {s.detail}" if s.detail else ""))
    steps.add_row("total", f"{bare.seconds:.1f}", f"job {bare.job_state or 'not run'}")
    console.print(steps)
    phases = Table("floe-test phase", "seconds", title="floe-test run")
    for name, seconds in floe.phases:
        phases.add_row(name, f"{seconds:.1f}")
    phases.add_row("total", f"{floe.seconds:.1f}")
    console.print(phases)
    if compared is None:
        return

    def num(x: float | None, unit: str = "") -> str:
        return "-" if x is None else f"{x:.2f}x" if unit == "x" else f"{x:.1f}"

    table = Table("work", "bare s", "floe s", "floe/bare", title="orchestration overhead")
    for row in compared["rows"]:
        table.add_row(row["what"], num(row["bare"]), num(row["floe"]), num(row["ratio"], "x"))
    table.add_row("total", num(bare.seconds), num(floe.seconds), num(compared["ratio"], "x"))
    console.print(table)
    print(
        f"floe-test run / bare sequence = {num(compared['ratio'], 'x')} (floe {floe.seconds:.1f}s, "
        f"bare {bare.seconds:.1f}s); overhead = floe - bare = {compared['overhead_seconds']:+.1f}s, of which "
        f"{compared['floe_only_seconds']:.1f}s in work the bare sequence does not do (preflight, collect, start-up)"
    )
    print(
        f"tests: bare job {bare.job_state or 'not run'}; floe-test exit code {floe.exit_code} "
        "(0 passed, 1 tests failed, 2 infrastructure)"
    )


# --- main ---------------------------------------------------------------------------------------------------


def _sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def workdir(path: str | None) -> Iterator[Path]:
    if path:
        Path(path).mkdir(parents=True, exist_ok=True)
        yield Path(path)
    else:
        with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
            yield Path(tmp)


def write_inputs(work: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600: values files and the Secret manifest hold this run's generated passwords.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)


def dry_run(args: argparse.Namespace, overrides: dict[str, str]) -> int:
    missing, plan = check_prerequisites(args.stack, overrides)
    for reason in missing:
        print(f"a real run would skip: {reason}")
    if plan is None:
        return 0
    work = Path("$WORK")
    with tempfile.TemporaryDirectory(prefix="bench-overhead-render-") as tmp:
        rendered = render_stack(args.stack, Path(tmp), overrides)
        print(f"bare sequence ({BARE_CLUSTER}), stack {args.stack} rendered with {shlex.join(set_args(overrides))}:")
        for line in dry_run_lines(rendered, plan.node_image, work, generate_secrets(rendered)):
            print(f"  {line}")
    floe = [floe_cli(), "run", args.stack, "--out", str(work / "floe-results"), *set_args(overrides)]
    print(f"floe sequence:\n  $ {shlex.join(floe)}")
    print(f"order: {args.order}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--stack", default="integration")
    parser.add_argument("--variant", default="airgapped", help="stack setting variant ('' for the profile's own)")
    parser.add_argument("--node-image", default="local", help="stack setting nodeImage ('' for the pinned one)")
    parser.add_argument(
        "--order",
        choices=["bare-first", "floe-first"],
        default="bare-first",
        help="the second sequence may profit from caches the first one warmed",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", help="keep the work folder (inputs, logs, floe's results) here")
    parser.add_argument("--dry-run", action="store_true", help="print the commands; create nothing")
    parser.add_argument("--strict", action="store_true", help="a missing prerequisite is an error (exit 2)")
    args = parser.parse_args(argv)
    if args.workdir and Path(args.workdir).is_dir() and any(Path(args.workdir).iterdir()):
        # A previous run's render or inputs there would be applied along with this run's.
        parser.error(f"--workdir {args.workdir} must be a new or empty folder")
    overrides = overrides_of(args)
    previous = signal.signal(signal.SIGTERM, _sigterm)
    try:
        if args.dry_run:
            return dry_run(args, overrides)
        missing, plan = check_prerequisites(args.stack, overrides)
        if missing or plan is None:
            raise Skip("; ".join(missing))
        return measure(args, overrides, plan.node_image)
    except Skip as exc:
        print(f"skipped: {exc}")
        return EXIT_SKIPPED_STRICT if args.strict else 0
    except InfraError as exc:  # the render failed, or a command had no tool to run it
        print(f"FAIL: {exc}")
        return 1
    except KeyboardInterrupt:
        log("interrupted: the bare cluster is deleted; a floe-test run, if one started, destroyed its stack")
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def measure(args: argparse.Namespace, overrides: dict[str, str], node_image: str) -> int:
    from components.cluster_steps import existing_clusters
    from components.preload_steps import local_image_present

    with workdir(args.workdir) as work:
        rendered = render_stack(args.stack, work / "render", overrides)
        # The preflight checked the plan; this is the render the bare sequence uses (sources may have moved).
        absent = [ref for ref in rendered.plan["images"] if not local_image_present(ref)]
        if absent:
            raise Skip(f"not in the local Docker store: {', '.join(absent)}")
        steps = bare_steps(rendered, node_image, work / "bare")
        write_inputs(work / "bare", bare_inputs(rendered, generate_secrets(rendered)))
        runner = runner_image(args.stack, overrides)
        floe_argv = [floe_cli(), "run", args.stack, "--out", str(work / "floe-results"), *set_args(overrides)]
        bare, floe = BareResult(), FloeResult()
        warnings = []
        for which in ("bare", "floe") if args.order == "bare-first" else ("floe", "bare"):
            # The other sequence took minutes: someone may have started a cluster meanwhile.
            clusters = existing_clusters()
            if which == "bare":
                if BARE_CLUSTER in clusters:
                    bare.failure = f"kind cluster {BARE_CLUSTER} appeared during the benchmark: bare run not started"
                    continue
                log(f"bare sequence: {len(steps)} steps in cluster {BARE_CLUSTER} (work folder {work / 'bare'})")
                bare = run_bare(steps, work / "bare")
            else:
                if rendered.plan["cluster_name"] in clusters:
                    floe.failure = f"kind cluster {rendered.plan['cluster_name']} appeared: floe run not started"
                    continue
                if runner_image(args.stack, overrides) != runner:
                    warnings.append("the sources changed after the render: floe-test built a new test-runner image")
                log(f"floe sequence: {shlex.join(floe_argv)}")
                floe = run_floe(floe_argv, work / "floe-run.log")
        failures = [f for f in (bare.failure, floe.failure) if f]
        # A ratio against a sequence that did not finish would mislead: none then.
        compared = comparison(bare, floe) if not failures else {}
        print_results(bare, floe, compared or None)
        if args.json:
            record = {
                "stack": args.stack,
                "settings": overrides,
                "order": args.order,
                "node_image": node_image,
                "images": rendered.plan["images"],
                "bare": asdict(bare),
                "floe": asdict(floe),
                **compared,
                "warnings": warnings,
                "failures": failures,
            }
            args.json.write_text(json.dumps(record, indent=2) + "\n")
        for warning in warnings:
            print(f"warning: {warning}")
        for failure in failures:
            print(f"FAIL: {failure}")
        return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
