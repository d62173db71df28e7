"""Waiting for the test Job and collecting everything a failed run needs, before any destroy.

Layout of ``--out DIR`` (stable; docs/guides/test-debugging.md describes it):

=============================  ===================================================================
``junit.xml``, ``coverage.xml``  from ``/results`` (with every other file the tests wrote there)
``perf.json``                    per-test durations and resource samples (the floe perf plugin)
``logs/<ns>/<pod>.log``          the test pod's log; every non-ready platform pod's log
``logs/<ns>/<pod>.previous.log``  the previous container's log, when it restarted
``logs/<ns>/<pod>.describe.txt`` status, conditions, container states and events of a non-ready pod
``events.txt``                   events of the run and platform namespaces, oldest first
``pods.txt``                     every pod of those namespaces with phase and readiness
``helm.json``                    status of each Helm release (from Helm's release records)
``nodes.json``                   node capacity, conditions and usage (metrics API; "unavailable" when absent)
``metrics.json``                 machine-readable run summary (totals, perf, nodes, what is missing)
``summary.md``                   for ``$GITHUB_STEP_SUMMARY``: totals, failures, flaky, perf, debug commands
=============================  ===================================================================

``/results`` is read from the PersistentVolumeClaim by a short-lived pod running the helper image
that is preloaded into every node (busybox): it mounts the claim read-only, prints
``tar -czf - . | base64`` between two markers, and the collector reads that through the pod log
API, then deletes the pod. No exec into a finished pod, no ``kubectl cp``; it works after the test
pod was deleted or hit its deadline. Every step is independent: what fails is recorded under
"missing" with its reason and the rest is still collected. Everything written passes through a
:class:`~floe_test.redact.Redactor` seeded with the values of the namespaces' Secrets, the
kubeconfig's credentials and secret-looking environment variables.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import json
import secrets
import tarfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from components.test_job import RESTRICTED_CONTAINER, RESULTS_DIR
from floe_test.redact import Redactor
from testing.errors import InfraError, WaitFailed, WaitTimeout
from testing.polling import Check, wait_for_condition

RUNNER_UID = 10001
READER_PREFIX = "results-reader"
BEGIN_MARKER = "FLOE-RESULTS-BEGIN"
END_MARKER = "FLOE-RESULTS-END"
#: Namespaces whose non-ready pods are described, besides the run's and the platform's.
SYSTEM_NAMESPACES = ("kube-system", "local-path-storage")
REQUEST_TIMEOUT = (5.0, 60.0)
READER_TIMEOUT = 180.0
#: A stopping test pod's grace period (Kubernetes' default, 30 s) plus time for the kubelet to report.
WRITER_GRACE_SECONDS = 45.0
LOG_TAIL = 5000
#: What the collector writes about a run rather than reads from its cluster.
REPORT_FILES = ("summary.md", "metrics.json")


@dataclass(frozen=True)
class Target:
    """What one run consists of; every name derives from the stack settings, never from outputs."""

    cluster: str
    namespace: str
    platform_namespace: str = "floe-platform"
    job: str = "test-runner"
    helper_image: str = ""
    context: str = ""

    @property
    def kube_context(self) -> str:
        return self.context or f"kind-{self.cluster}"

    @property
    def results_claim(self) -> str:
        return f"{self.job}-results"

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.namespace, self.platform_namespace, *SYSTEM_NAMESPACES)))


@dataclass
class ClusterApi:
    """The client boundary: the official client's API objects (faked in unit tests)."""

    core: Any
    batch: Any
    custom: Any
    kubeconfig: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_kind(cls, cluster: str) -> ClusterApi:
        from kubernetes import client, config

        from components.cluster_steps import kind_kubeconfig

        kubeconfig = yaml.safe_load(kind_kubeconfig(cluster))
        api = config.new_client_from_config_dict(kubeconfig)  # type: ignore[no-untyped-call]
        return cls(client.CoreV1Api(api), client.BatchV1Api(api), client.CustomObjectsApi(api), kubeconfig)


def debug_commands(target: Target) -> list[str]:
    """The exact commands to look at a run by hand."""
    k = f"kubectl --context {target.kube_context}"
    ns, job = target.namespace, target.job
    return [
        f"{k} -n {ns} get job/{job} pods,pvc -o wide",
        f"{k} -n {ns} logs job/{job} --tail=200",
        f"{k} -n {ns} describe job/{job}",
        f"{k} -n {ns} get events --sort-by=.lastTimestamp",
        f"{k} -n {target.platform_namespace} get pods -o wide",
        f"{k} -n {target.platform_namespace} get events --sort-by=.lastTimestamp",
        f"{k} -n {target.platform_namespace} exec -it deploy/<service> -- sh",
        f"{k} -n {ns} debug job/{job} -it --image={target.helper_image or 'busybox'} -- sh",
        f"{k} top nodes",
        f"{k} top pods -A --sort-by=memory",
    ]


# --- the Job -----------------------------------------------------------------------------------------


def job_conditions(batch: Any, namespace: str, job: str) -> tuple[str | None, str]:
    """(Complete | Failed | None, reason and message of that condition, or the pods while running)."""
    status = batch.read_namespaced_job_status(job, namespace, _request_timeout=REQUEST_TIMEOUT).status
    for cond in (status.conditions if status is not None else None) or []:
        if cond.type in {"Complete", "Failed"} and cond.status == "True":
            detail = ": ".join(x for x in (cond.reason, cond.message) if x)
            return str(cond.type), detail
    if status is None:
        return None, "no status yet"
    return None, f"running: {status.active or 0} active pod(s), {status.ready or 0} ready"


def wait_for_job(
    cluster: str, namespace: str, job: str, *, timeout: float = 3900, api: ClusterApi | None = None
) -> str:
    """Wait for Complete or Failed, bounded by the Job's own deadline plus a margin."""
    batch = (api or ClusterApi.for_kind(cluster)).batch

    def check() -> Check[str]:
        state, detail = job_conditions(batch, namespace, job)
        return Check(state is not None, state or detail)  # the progress line shows the pods while running

    state = wait_for_condition(
        check,
        timeout=timeout,
        interval=5,
        description=f"job/{job} in namespace {namespace} to finish",
        hint=f"kubectl --context kind-{cluster} -n {namespace} logs job/{job}",
    )
    return str(state)


# --- the results volume ----------------------------------------------------------------------------


def reader_pod_manifest(target: Target, name: str) -> dict[str, Any]:
    """The short-lived pod that prints ``/results`` as base64 tar.gz on its log (restricted profile)."""
    script = f"set -o pipefail; echo {BEGIN_MARKER}; tar -C {RESULTS_DIR} -czf - . | base64; echo {END_MARKER}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": target.namespace,
            "labels": {"app.kubernetes.io/name": READER_PREFIX, "app.kubernetes.io/managed-by": "floe-testinfra"},
        },
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "activeDeadlineSeconds": int(READER_TIMEOUT),
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": RUNNER_UID,
                "runAsGroup": RUNNER_UID,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "reader",
                    "image": target.helper_image,
                    # Preloaded into every node: never pulled.
                    "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", script],
                    "resources": {
                        "requests": {"cpu": "50m", "memory": "32Mi"},
                        "limits": {"cpu": "500m", "memory": "128Mi"},
                    },
                    "securityContext": dict(RESTRICTED_CONTAINER),
                    "volumeMounts": [{"name": "results", "mountPath": RESULTS_DIR, "readOnly": True}],
                }
            ],
            "volumes": [
                {
                    "name": "results",
                    "persistentVolumeClaim": {"claimName": target.results_claim, "readOnly": True},
                }
            ],
        },
    }


def decode_results(log: str) -> bytes:
    """The tar.gz bytes between the markers; an error naming what is wrong otherwise."""
    lines = log.splitlines()
    try:
        begin = lines.index(BEGIN_MARKER)
    except ValueError:
        raise InfraError(f"the results reader printed no {BEGIN_MARKER} line; its log ends: {lines[-5:]}") from None
    try:
        end = lines.index(END_MARKER, begin + 1)
    except ValueError:
        raise InfraError(
            f"the results reader's log has no {END_MARKER} line: the archive was cut off (the kubelet "
            "rotates container logs at 10Mi); fewer or smaller files in /results, or raise containerLogMaxSize"
        ) from None
    try:
        return base64.b64decode("".join(lines[begin + 1 : end]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InfraError(f"the results archive is not valid base64 ({exc})") from None


def extract_results(archive: bytes, out: Path, redactor: Redactor) -> tuple[list[str], list[str]]:
    """Unpack regular files into ``out`` (no links, nothing outside it), redacted; (written, refused)."""
    written: list[str] = []
    refused: list[str] = []
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            rel = PurePosixPath(member.name)
            parts = [p for p in rel.parts if p not in (".", "")]
            if not member.isfile():
                if not member.isdir():
                    refused.append(f"{member.name} (not a regular file)")
                continue
            if not parts or ".." in parts or rel.is_absolute():
                refused.append(f"{member.name} (path outside /results)")
                continue
            source = tar.extractfile(member)
            if source is None:
                continue
            clean = redactor.bytes(source.read())
            if clean is None:
                refused.append(f"{'/'.join(parts)} (binary file containing a secret value)")
                continue
            dest = out.joinpath(*parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(clean)
            written.append("/".join(parts))
    return written, refused


# --- pods, events, Helm, nodes -----------------------------------------------------------------------


def pod_ready(pod: Any) -> bool:
    status = pod.status
    if status is None:
        return False
    if status.phase == "Succeeded":
        return True
    if status.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])


def _container_state(state: Any) -> str:
    if state is None:
        return "unknown"
    if state.waiting is not None:
        return f"Waiting ({state.waiting.reason or '?'}: {state.waiting.message or ''})".rstrip(": )") + ")"
    if state.terminated is not None:
        t = state.terminated
        return f"Terminated ({t.reason or '?'}, exit code {t.exit_code}{': ' + t.message if t.message else ''})"
    if state.running is not None:
        return f"Running since {state.running.started_at}"
    return "unknown"


def describe_pod(pod: Any, events: Sequence[str]) -> str:
    """``kubectl describe``-like text: status, conditions, container states, events."""
    meta, status, spec = pod.metadata, pod.status, pod.spec
    lines = [
        f"Name:       {meta.name}",
        f"Namespace:  {meta.namespace}",
        f"Node:       {getattr(spec, 'node_name', None) or '<none>'}",
        f"Labels:     {', '.join(f'{k}={v}' for k, v in sorted((meta.labels or {}).items())) or '<none>'}",
        f"Phase:      {status.phase if status else '?'}",
    ]
    if status is not None and (status.reason or status.message):
        lines.append(f"Reason:     {status.reason or ''} {status.message or ''}".rstrip())
    lines.append("Conditions:")
    for cond in (status.conditions if status else None) or []:
        extra = f" ({cond.reason}: {cond.message})" if cond.reason or cond.message else ""
        lines.append(f"  {cond.type}={cond.status}{extra}")
    for title, statuses in (
        ("Init containers", status.init_container_statuses if status else None),
        ("Containers", status.container_statuses if status else None),
    ):
        if not statuses:
            continue
        lines.append(f"{title}:")
        for cs in statuses:
            lines.append(f"  {cs.name}: image {cs.image}, ready={cs.ready}, restarts={cs.restart_count}")
            lines.append(f"    State:      {_container_state(cs.state)}")
            if cs.last_state is not None and (cs.last_state.terminated or cs.last_state.waiting):
                lines.append(f"    Last state: {_container_state(cs.last_state)}")
    lines.append("Events:")
    lines.extend(f"  {e}" for e in events) if events else lines.append("  <none>")
    return "\n".join(lines) + "\n"


def _stamp(event: Any) -> str:
    stamp = event.last_timestamp or event.event_time or event.first_timestamp
    return stamp.isoformat() if stamp is not None else ""


def format_event(event: Any) -> str:
    obj = event.involved_object
    count = f" (x{event.count})" if (event.count or 1) > 1 else ""
    where = f"{obj.namespace or event.metadata.namespace or '-'}/{(obj.kind or '?').lower()}/{obj.name}"
    return (
        f"{_stamp(event) or '-'} {event.type or 'Normal'} {where} {event.reason or '?'}{count}: "
        + (event.message or "").strip()
    )


def helm_releases(secrets_list: Iterable[Any]) -> list[dict[str, Any]]:
    """Latest revision of each Helm release from its release Secrets (status only: never values)."""
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for secret in secrets_list:
        labels = secret.metadata.labels or {}
        if labels.get("owner") != "helm" or not secret.data or "release" not in secret.data:
            continue
        try:
            raw = base64.b64decode(base64.b64decode(secret.data["release"]))
            release = json.loads(gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw)
        except (ValueError, OSError) as exc:
            release = {
                "name": labels.get("name", "?"),
                "version": int(labels.get("version", 0) or 0),
                "info": {"status": f"unreadable release record: {exc}"},
            }
        info = release.get("info") or {}
        chart = (release.get("chart") or {}).get("metadata") or {}
        entry = {
            "name": release.get("name") or labels.get("name"),
            "namespace": release.get("namespace") or secret.metadata.namespace,
            "revision": release.get("version"),
            "status": info.get("status"),
            "description": info.get("description"),
            "last_deployed": info.get("last_deployed"),
            "chart": f"{chart.get('name', '?')}-{chart.get('version', '?')}",
            "app_version": chart.get("appVersion"),
        }
        key = (str(entry["namespace"]), str(entry["name"]))
        if key not in latest or int(entry["revision"] or 0) >= int(latest[key]["revision"] or 0):
            latest[key] = entry
    return sorted(latest.values(), key=lambda r: (str(r["namespace"]), str(r["name"])))


_CPU_UNITS = {"n": 1e-6, "u": 1e-3, "m": 1.0, "": 1000.0}
_MEM_UNITS = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 1e3, "M": 1e6, "G": 1e9, "": 1.0}


def cpu_millicores(quantity: str | None) -> float:
    q = str(quantity or "0")
    unit = q[-1] if q and q[-1] in "num" else ""
    return float(q[: len(q) - len(unit)] or 0) * _CPU_UNITS[unit]


def memory_mib(quantity: str | None) -> float:
    q = str(quantity or "0")
    for unit in ("Ki", "Mi", "Gi", "Ti", "K", "M", "G"):
        if q.endswith(unit):
            return float(q[: -len(unit)]) * _MEM_UNITS[unit] / 2**20
    return float(q) / 2**20


# --- the collector -------------------------------------------------------------------------------------


@dataclass
class Collection:
    target: Target
    out: Path
    job_state: str | None
    reason: str
    job_detail: str = ""
    collected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)
    helm: list[dict[str, Any]] = field(default_factory=list)
    nodes: dict[str, Any] = field(default_factory=dict)
    not_ready: list[str] = field(default_factory=list)
    junit: Any = None
    perf: dict[str, Any] = field(default_factory=dict)
    regressions: list[dict[str, Any]] = field(default_factory=list)
    perf_baseline: str = ""
    """What the perf data was compared with (empty: no comparison)."""
    cluster_reachable: bool = True
    """False when nothing could be read from the cluster (no kubeconfig, API server down)."""

    @property
    def from_cluster(self) -> list[str]:
        """Files read from the cluster (not the reports written about them)."""
        return [f for f in self.collected if f not in REPORT_FILES]


class Collector:
    """Collects one run into ``out``; each step independent, each failure recorded with its reason."""

    def __init__(
        self,
        target: Target,
        out: Path,
        *,
        api: ClusterApi | None,
        job_state: str | None = None,
        reason: str = "",
        redactor: Redactor | None = None,
        reader_timeout: float = READER_TIMEOUT,
        poll_interval: float = 1.0,
        clock: Any = None,
    ) -> None:
        self.api = api
        self.redactor = redactor or Redactor()
        self.reader_timeout = reader_timeout
        self.poll_interval = poll_interval
        self.clock = clock
        self.result = Collection(target, out, job_state, reason)

    # writing: everything passes the redactor
    def write(self, rel: str, text: str) -> None:
        path = self.result.out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.redactor.text(text))
        if rel not in self.result.collected:
            self.result.collected.append(rel)

    def missing(self, what: str) -> None:
        self.result.missing.append(self.redactor.text(what))

    def step(self, name: str, func: Callable[[], None]) -> None:
        started = time.monotonic()
        try:
            func()
        except Exception as exc:  # one step's failure never stops the others
            self.missing(f"{name}: {type(exc).__name__}: {str(exc)[:1500]}")
        finally:
            self.result.steps[name] = round(time.monotonic() - started, 3)

    def run(self) -> Collection:
        out = self.result.out
        out.mkdir(parents=True, exist_ok=True)
        self.redactor.add_environ()
        if self.api is None:
            self.result.cluster_reachable = False
            self.missing("cluster: unreachable, nothing could be read from it")
        else:
            self.redactor.add_kubeconfig(self.api.kubeconfig)
            self.step("secrets (for redaction)", self.seed_redactor)
            self.step("job status", self.read_job)
            self.step("test pod logs", self.test_pod_logs)
            self.step("results volume", self.read_results)
            self.step("pods", self.pods)
            self.step("events", self.events)
            self.step("helm releases", self.helm)
            self.step("nodes", self.nodes)
        self.step("junit", self.junit)
        self.step("perf", self.perf)
        return self.result

    # --- steps ---

    def seed_redactor(self) -> None:
        assert self.api is not None
        for ns in self.result.target.namespaces:
            try:
                for secret in self.api.core.list_namespaced_secret(ns, _request_timeout=REQUEST_TIMEOUT).items or []:
                    self.redactor.add_secret_data(secret.data)
                    self.redactor.add_secret_data(secret.string_data, encoded=False)
            except Exception as exc:
                if getattr(exc, "status", None) != 404:
                    raise

    def read_job(self) -> None:
        assert self.api is not None
        t = self.result.target
        try:
            state, detail = job_conditions(self.api.batch, t.namespace, t.job)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                self.missing(
                    f"job/{t.job} in namespace {t.namespace}: not found (up failed before it, or it was deleted)"
                )
                return
            raise
        self.result.job_detail = detail
        if self.result.job_state is None:
            self.result.job_state = state

    def test_pod_logs(self) -> None:
        assert self.api is not None
        t = self.result.target
        pods = (
            self.api.core.list_namespaced_pod(
                t.namespace, label_selector=f"job-name={t.job}", _request_timeout=REQUEST_TIMEOUT
            ).items
            or []
        )
        self.redactor.add_pod_env(pods)
        if not pods:
            self.missing(
                f"logs of job/{t.job}: no pod in namespace {t.namespace} (never started, deleted or past its TTL); "
                "results are still read from the volume"
            )
        for pod in pods:
            self.pod_logs(pod)

    def pod_logs(self, pod: Any) -> None:
        assert self.api is not None
        ns, name = pod.metadata.namespace or self.result.target.namespace, pod.metadata.name
        containers = [c.name for c in (pod.spec.containers if pod.spec else None) or []] or [None]
        restarted = {
            cs.name for cs in (pod.status.container_statuses if pod.status else None) or [] if cs.restart_count
        }
        for container in containers:
            suffix = f".{container}" if len(containers) > 1 else ""
            for previous in (False, True) if container in restarted else (False,):
                kwargs: dict[str, Any] = {"tail_lines": LOG_TAIL, "_request_timeout": REQUEST_TIMEOUT}
                if container:
                    kwargs["container"] = container
                if previous:
                    kwargs["previous"] = True
                rel = f"logs/{ns}/{name}{suffix}{'.previous' if previous else ''}.log"
                try:
                    self.write(rel, str(self.api.core.read_namespaced_pod_log(name, ns, **kwargs) or ""))
                except Exception as exc:
                    self.missing(f"{rel}: {getattr(exc, 'reason', None) or exc}")

    def read_results(self) -> None:
        assert self.api is not None
        t = self.result.target
        core = self.api.core
        try:
            core.read_namespaced_persistent_volume_claim(t.results_claim, t.namespace, _request_timeout=REQUEST_TIMEOUT)
        except Exception as exc:
            if getattr(exc, "status", None) == 404:
                self.missing(
                    f"/results: no claim {t.results_claim} in namespace {t.namespace} (up failed before the Job "
                    "was created)"
                )
                return
            raise
        if not t.helper_image:
            self.missing("/results: no helper image configured to read the volume with")
            return
        self._wait_for_terminating_writers()
        name = f"{READER_PREFIX}-{secrets.token_hex(3)}"
        core.create_namespaced_pod(t.namespace, reader_pod_manifest(t, name), _request_timeout=REQUEST_TIMEOUT)
        try:
            log = self._reader_log(name)
            written, refused = extract_results(decode_results(log), self.result.out, self.redactor)
            self.result.collected.extend(w for w in written if w not in self.result.collected)
            for item in refused:
                self.missing(f"/results/{item}: not copied")
            if not written:
                self.missing("/results: empty (the tests wrote nothing: did pytest start?)")
        finally:
            try:
                core.delete_namespaced_pod(name, t.namespace, grace_period_seconds=0, _request_timeout=REQUEST_TIMEOUT)
            except Exception as exc:
                if getattr(exc, "status", None) != 404:
                    self.missing(
                        f"pod/{name} in namespace {t.namespace}: not deleted ({exc}); "
                        f"kubectl --context {t.kube_context} -n {t.namespace} delete pod {name}"
                    )

    def _wait_for_terminating_writers(self) -> None:
        """Let test pods that are being stopped finish writing /results before reading it.

        At the Job's deadline Kubernetes deletes its pod; pytest gets SIGTERM and still writes the
        JUnit XML and coverage of the tests done (within the grace period). Reading earlier would
        miss them. Pods still running (an interrupted run) are not waited for: what is there is read.
        """
        assert self.api is not None
        t = self.result.target
        selector = f"batch.kubernetes.io/job-name={t.job}"

        def terminating() -> Check[list[str]]:
            pods = self.api.core.list_namespaced_pod(  # type: ignore[union-attr]
                t.namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT
            ).items
            names = [p.metadata.name for p in pods if p.metadata.deletion_timestamp is not None]
            return Check(not names, names)

        try:
            wait_for_condition(
                terminating,
                timeout=WRITER_GRACE_SECONDS,
                interval=1,
                description=f"the stopping pods of job/{t.job} in namespace {t.namespace} to exit",
                hint="reading /results anyway; the newest files may be missing",
            )
        except WaitTimeout as exc:
            self.missing(f"/results may be incomplete: {exc}")

    def _reader_log(self, name: str) -> str:
        from testing._private.pod_status import WAITING_FAILURE_REASONS, pod_failures, pod_summary

        assert self.api is not None
        t = self.result.target
        core = self.api.core
        cannot_start = WAITING_FAILURE_REASONS | {"ErrImageNeverPull"}

        class Seen:
            def __init__(self, pod: Any) -> None:
                self.pod = pod

            def __str__(self) -> str:
                return str(pod_summary(self.pod))

        def check() -> Check[Seen]:
            pod = core.read_namespaced_pod(name, t.namespace, _request_timeout=REQUEST_TIMEOUT)
            phase = pod.status.phase if pod.status is not None else None
            return Check(phase in ("Succeeded", "Failed"), Seen(pod))

        def broken(seen: Seen | None) -> str | None:
            if seen is None or seen.pod.status is None:
                return None
            reasons = [f.headline() for f in pod_failures(seen.pod)]
            for cs in seen.pod.status.container_statuses or []:
                waiting = cs.state.waiting if cs.state is not None else None
                if waiting is not None and waiting.reason in cannot_start and not reasons:
                    reasons.append(f"container {cs.name}: {waiting.reason}: {waiting.message or ''}".rstrip(": "))
            return "; ".join(reasons) or None

        extra = {"clock": self.clock} if self.clock is not None else {}
        seen = wait_for_condition(
            check,
            timeout=self.reader_timeout,
            interval=self.poll_interval,
            description=f"pod/{name} (results reader, image {t.helper_image}) in namespace {t.namespace} to finish",
            fail_if=broken,
            hint=f"kubectl --context {t.kube_context} -n {t.namespace} describe pod {name}; is {t.helper_image} "
            "preloaded on the nodes?",
            **extra,
        )
        pod = seen.pod if seen is not None else None
        log = str(core.read_namespaced_pod_log(name, t.namespace, container="reader", _request_timeout=REQUEST_TIMEOUT))
        if pod is not None and pod.status.phase == "Failed":
            raise WaitFailed(
                f"pod/{name} in namespace {t.namespace}",
                elapsed=0.0,
                reason=f"the results reader failed; last log lines: {log.splitlines()[-5:]}",
                hint="check that the claim is bound and readable by uid 10001",
            )
        return log

    def pods(self) -> None:
        assert self.api is not None
        t = self.result.target
        table: list[str] = []
        for ns in t.namespaces:
            pods = self.api.core.list_namespaced_pod(ns, _request_timeout=REQUEST_TIMEOUT).items or []
            self.redactor.add_pod_env(pods)
            for pod in pods:
                name = pod.metadata.name
                if name.startswith(READER_PREFIX):
                    continue
                ready = pod_ready(pod)
                phase = pod.status.phase if pod.status else "?"
                restarts = sum(cs.restart_count or 0 for cs in (pod.status.container_statuses or []) if pod.status)
                table.append(f"{ns}/{name}\t{phase}\tready={ready}\trestarts={restarts}")
                is_test_pod = ns == t.namespace and (pod.metadata.labels or {}).get("job-name") == t.job
                if ready or is_test_pod:
                    continue
                self.result.not_ready.append(f"{ns}/{name} ({phase})")
                events = self._events_of(ns, name)
                self.write(f"logs/{ns}/{name}.describe.txt", describe_pod(pod, events))
                self.pod_logs(pod)
        self.write("pods.txt", "\n".join(table) + "\n")

    def _events_of(self, namespace: str, name: str) -> list[str]:
        assert self.api is not None
        try:
            items = (
                self.api.core.list_namespaced_event(
                    namespace, field_selector=f"involvedObject.name={name}", _request_timeout=REQUEST_TIMEOUT
                ).items
                or []
            )
        except Exception as exc:
            return [f"(events unavailable: {exc})"]
        return [format_event(e) for e in sorted(items, key=_stamp)]

    def events(self) -> None:
        assert self.api is not None
        items: list[Any] = []
        for ns in self.result.target.namespaces:
            items += self.api.core.list_namespaced_event(ns, _request_timeout=REQUEST_TIMEOUT).items or []
        self.write("events.txt", "\n".join(format_event(e) for e in sorted(items, key=_stamp)) + "\n")

    def helm(self) -> None:
        assert self.api is not None
        found: list[Any] = []
        for ns in self.result.target.namespaces:
            found += (
                self.api.core.list_namespaced_secret(
                    ns, label_selector="owner=helm", _request_timeout=REQUEST_TIMEOUT
                ).items
                or []
            )
        self.result.helm = helm_releases(found)
        self.write("helm.json", json.dumps(self.result.helm, indent=2, default=str) + "\n")

    def nodes(self) -> None:
        assert self.api is not None
        nodes: dict[str, Any] = {}
        for node in self.api.core.list_node(_request_timeout=REQUEST_TIMEOUT).items or []:
            st = node.status
            nodes[node.metadata.name] = {
                "capacity": dict(st.capacity or {}) if st else {},
                "allocatable": dict(st.allocatable or {}) if st else {},
                "conditions": {c.type: c.status for c in (st.conditions or [])} if st else {},
            }
        usage: dict[str, Any] = {"available": False, "reason": ""}
        try:
            metrics = self.api.custom.list_cluster_custom_object(
                "metrics.k8s.io", "v1beta1", "nodes", _request_timeout=REQUEST_TIMEOUT
            )
            for item in metrics.get("items", []):
                name = item["metadata"]["name"]
                nodes.setdefault(name, {})["usage"] = {
                    "cpu_m": round(cpu_millicores(item["usage"].get("cpu")), 1),
                    "memory_mib": round(memory_mib(item["usage"].get("memory")), 1),
                }
            usage["available"] = True
        except Exception as exc:
            usage["reason"] = (
                f"metrics API unavailable ({getattr(exc, 'status', None) or type(exc).__name__}: "
                f"{getattr(exc, 'reason', None) or exc}); is metrics-server running in kube-system?"
            )
        self.result.nodes = {"usage": usage, "nodes": nodes}
        self.write("nodes.json", json.dumps(self.result.nodes, indent=2, default=str) + "\n")

    def junit(self) -> None:
        from floe_test.junit import merge_files

        out = self.result.out
        files = sorted(p for p in out.glob("junit*.xml") if p.is_file())
        if not files:
            self.missing("junit.xml: not in /results (the tests did not finish writing it)")
            return
        # Several JUnit files (one per suite) are merged into junit.xml; the parts are kept.
        target = out / "junit.xml"
        if len(files) > 1 or files[0].name != "junit.xml":
            parts = [p.rename(p.with_name(f"part-{p.name}")) for p in files]
            self.result.junit = merge_files(parts, target)
        else:
            self.result.junit = merge_files(files)
        if not (out / "coverage.xml").exists():
            self.missing("coverage.xml: not in /results")

    def perf(self) -> None:
        path = self.result.out / "perf.json"
        if path.exists():
            self.result.perf = json.loads(path.read_text())


def collect(
    cluster: str,
    namespace: str,
    out: Path,
    *,
    job_state: str | None,
    reason: str = "",
    target: Target | None = None,
    api: ClusterApi | None = None,
    perf_history: Path | None = None,
    perf_thresholds: Path | None = None,
) -> Collection:
    """Collect a run into ``out`` and write ``metrics.json`` and ``summary.md``; never raises for a step."""
    from floe_test import report

    target = target or Target(cluster=cluster, namespace=namespace)
    if api is None:
        try:
            api = ClusterApi.for_kind(target.cluster)
        except Exception as exc:
            reason = reason or f"cluster {target.cluster} unreachable: {exc}"
            api = None
    collector = Collector(target, out, api=api, job_state=job_state, reason=reason)
    result = collector.run()
    if result.perf and perf_history is not None:
        collector.step("perf baseline", lambda: report.compare_with_history(result, perf_history, perf_thresholds))
    report.write_reports(collector)
    return result
