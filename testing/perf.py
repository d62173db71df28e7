"""Performance monitoring of a pytest run (REQ-650): a pytest plugin (entry point ``floe_perf``).

Per test it records setup, call and teardown durations (and reruns) into the JUnit properties
``floe.perf.setup_s``/``call_s``/``teardown_s`` and ``floe.reruns``; during the session a background
thread samples node and pod CPU/memory from the metrics API (``metrics.k8s.io``). Everything goes
into ``perf.json`` (in ``$FLOE_RESULTS_DIR`` inside the test Job). Unavailable metrics are reported,
never fatal.

A baseline (a history file of past runs, JSON lines, or one ``perf.json``) is compared test by test:
a test regressed when its call duration exceeds the baseline by more than the relative threshold
AND by more than the absolute threshold. Thresholds come from a YAML file (default
``testing/perf-thresholds.yaml``), with per-test overrides by node-id glob in that file or by the
``perf_threshold(relative=, absolute=)`` marker; nothing is hard-coded here. Regressions are
reported; they change the exit status only with ``--floe-perf-strict``.

Options (each with an ini twin ``floe_perf_*``): ``--floe-perf/--no-floe-perf`` (default: on when
``FLOE_RESULTS_DIR`` is set, i.e. in the test Job), ``--floe-perf-out``, ``--floe-perf-interval``,
``--floe-perf-baseline``, ``--floe-perf-thresholds``, ``--floe-perf-strict``.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pytest

from testing.errors import ConfigError

__all__ = [
    "PERF_FILE",
    "Regression",
    "ResourceSampler",
    "Sample",
    "Thresholds",
    "baseline_from_history",
    "compare",
    "history_entry",
    "load_baseline",
    "load_thresholds",
    "metrics_api_source",
]

PERF_FILE = "perf.json"
DEFAULT_THRESHOLDS_FILE = Path(__file__).with_name("perf-thresholds.yaml")
PHASES = ("setup", "call", "teardown")
MAX_SERIES = 2000


# --- thresholds and baseline comparison ------------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    relative: float
    """Allowed slowdown as a fraction of the baseline (0.5: up to 1.5x)."""
    absolute: float
    """Allowed slowdown in seconds; both must be exceeded for a regression."""


@dataclass(frozen=True)
class Thresholds:
    default: Limit
    overrides: tuple[tuple[str, Limit], ...] = ()
    """(node-id glob, limit), first match wins."""
    window: int = 5
    """How many past runs form the baseline (median per test)."""
    min_runs: int = 1
    """Tests with fewer past runs than this are not compared."""

    def limit_for(self, test: str, marker: Mapping[str, Limit] | None = None) -> Limit:
        if marker and test in marker:
            return marker[test]
        for pattern, limit in self.overrides:
            if fnmatch.fnmatchcase(test, pattern):
                return limit
        return self.default


def _limit(raw: Any, where: str, fallback: Limit | None) -> Limit:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: must be a mapping with relative and absolute_seconds")
    try:
        rel = float(raw["relative"]) if "relative" in raw else (fallback.relative if fallback else None)
        ab = float(raw["absolute_seconds"]) if "absolute_seconds" in raw else (fallback.absolute if fallback else None)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: relative and absolute_seconds must be numbers (got {dict(raw)})") from None
    if rel is None or ab is None:
        raise ConfigError(f"{where}: both relative and absolute_seconds are required")
    if rel < 0 or ab < 0:
        raise ConfigError(f"{where}: thresholds must not be negative (got relative={rel}, absolute_seconds={ab})")
    return Limit(rel, ab)


def parse_thresholds(data: Mapping[str, Any], source: str = "thresholds") -> Thresholds:
    if "default" not in data:
        raise ConfigError(f"{source}: 'default' is required (relative, absolute_seconds)")
    default = _limit(data["default"], f"{source}: default", None)
    overrides_raw = data.get("overrides") or {}
    if not isinstance(overrides_raw, Mapping):
        raise ConfigError(f"{source}: overrides must map node-id globs to limits")
    overrides = tuple((str(k), _limit(v, f"{source}: overrides[{k}]", default)) for k, v in overrides_raw.items())
    window = int(data.get("window", 5))
    min_runs = int(data.get("min_runs", 1))
    if window < 1 or min_runs < 1:
        raise ConfigError(f"{source}: window and min_runs must be at least 1")
    return Thresholds(default, overrides, window, min_runs)


def load_thresholds(path: Path | None = None) -> Thresholds:
    import yaml

    from testing._private import strict_yaml

    path = path or DEFAULT_THRESHOLDS_FILE
    try:
        data = strict_yaml.load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"perf thresholds file {path}: cannot read ({exc}); pass --floe-perf-thresholds") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"perf thresholds file {path}: not valid YAML: {exc}") from None
    if not isinstance(data, Mapping):
        raise ConfigError(f"perf thresholds file {path}: must be a mapping")
    return parse_thresholds(data, str(path))


@dataclass(frozen=True)
class Regression:
    test: str
    baseline_s: float
    current_s: float
    relative: float
    absolute: float

    @property
    def delta_s(self) -> float:
        return self.current_s - self.baseline_s

    @property
    def ratio(self) -> float:
        return self.current_s / self.baseline_s if self.baseline_s else float("inf")

    def __str__(self) -> str:
        return (
            f"{self.test}: {self.current_s:.2f}s vs baseline {self.baseline_s:.2f}s "
            f"(+{self.delta_s:.2f}s, {self.ratio:.2f}x; allowed +{self.relative:.0%} and +{self.absolute:.2f}s)"
        )

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "delta_s": round(self.delta_s, 3), "ratio": round(self.ratio, 3)}


def history_entry(perf: Mapping[str, Any]) -> dict[str, Any]:
    """One history line from a ``perf.json``: call durations per test and resource peaks."""
    tests = perf.get("tests") or {}
    resources = perf.get("resources") or {}
    return {
        "run_id": perf.get("run_id"),
        "finished": perf.get("finished"),
        "total_s": perf.get("total_s"),
        "tests": {t: v.get("call") for t, v in tests.items() if v.get("call") is not None},
        "outcomes": {t: v.get("outcome") for t, v in tests.items()},
        "peaks": {
            "available": resources.get("available", False),
            "cpu_m": resources.get("peak_cpu_m"),
            "memory_mib": resources.get("peak_memory_mib"),
        },
    }


def load_baseline(path: Path) -> list[dict[str, Any]]:
    """Past runs from a history file (JSON lines) or a single ``perf.json``; [] when absent."""
    if not path.exists():
        return []
    text = path.read_text()
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):  # one perf.json (or one history entry)
        return [history_entry(whole) if "resources" in whole or "version" in whole else whole]
    runs = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                runs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigError(f"perf history {path}, line {number}: not JSON ({exc})") from None
    return runs


def baseline_from_history(runs: Sequence[Mapping[str, Any]], thresholds: Thresholds) -> dict[str, tuple[float, int]]:
    """Test -> (median of its last ``window`` passing call durations, how many)."""
    series: dict[str, list[float]] = {}
    for run in runs:
        outcomes = run.get("outcomes") or {}
        for test, seconds in (run.get("tests") or {}).items():
            if seconds is None or outcomes.get(test, "passed") != "passed":
                continue
            series.setdefault(test, []).append(float(seconds))
    series = {t: v[-thresholds.window :] for t, v in series.items()}
    return {t: (statistics.median(v), len(v)) for t, v in series.items() if len(v) >= thresholds.min_runs}


def compare(
    current: Mapping[str, float],
    baseline: Mapping[str, tuple[float, int]],
    thresholds: Thresholds,
    marker_limits: Mapping[str, Limit] | None = None,
) -> list[Regression]:
    """Tests slower than their baseline by more than both limits, slowest regression first."""
    found = []
    for test, seconds in current.items():
        if test not in baseline:
            continue
        base, _ = baseline[test]
        limit = thresholds.limit_for(test, marker_limits)
        if seconds > base * (1 + limit.relative) and seconds - base > limit.absolute:
            found.append(Regression(test, round(base, 4), round(seconds, 4), limit.relative, limit.absolute))
    return sorted(found, key=lambda r: r.delta_s, reverse=True)


# --- resource sampling -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """One reading of the metrics API: millicores and MiB per node and per pod (``ns/name``)."""

    nodes: Mapping[str, tuple[float, float]]
    pods: Mapping[str, tuple[float, float]] = field(default_factory=dict)


def _cpu_m(q: str | None) -> float:
    text = str(q or "0")
    scale = {"n": 1e-6, "u": 1e-3, "m": 1.0}.get(text[-1:])
    return float(text[:-1]) * scale if scale is not None else float(text) * 1000.0


def _mem_mib(q: str | None) -> float:
    text = str(q or "0")
    for unit, factor in (("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("K", 1e3), ("M", 1e6), ("G", 1e9)):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * factor / 2**20
    return float(text) / 2**20


def metrics_api_source(custom: Any, namespaces: Sequence[str] = ()) -> Callable[[], Sample]:
    """A sampler source reading ``metrics.k8s.io`` through a ``CustomObjectsApi``."""

    def read() -> Sample:
        nodes = {}
        for item in custom.list_cluster_custom_object("metrics.k8s.io", "v1beta1", "nodes", _request_timeout=10)[
            "items"
        ]:
            nodes[item["metadata"]["name"]] = (_cpu_m(item["usage"]["cpu"]), _mem_mib(item["usage"]["memory"]))
        pods = {}
        for ns in namespaces:
            listing = custom.list_namespaced_custom_object("metrics.k8s.io", "v1beta1", ns, "pods", _request_timeout=10)
            for item in listing["items"]:
                cpu = sum(_cpu_m(c["usage"]["cpu"]) for c in item.get("containers", []))
                mem = sum(_mem_mib(c["usage"]["memory"]) for c in item.get("containers", []))
                pods[f"{ns}/{item['metadata']['name']}"] = (cpu, mem)
        return Sample(nodes, pods)

    return read


class ResourceSampler:
    """Samples a source every ``interval`` seconds on a daemon thread; keeps peaks and a series."""

    def __init__(self, source: Callable[[], Sample], interval: float, *, clock: Callable[[], float] = time.monotonic):
        if interval <= 0:
            raise ValueError(f"sampling interval must be positive (got {interval})")
        self.source = source
        self.interval = interval
        self.clock = clock
        self.started = clock()
        self.samples = 0
        self.failures = 0
        self.last_error = ""
        self.node_peaks: dict[str, list[float]] = {}
        self.pod_peaks: dict[str, list[float]] = {}
        self.series: list[dict[str, float]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def sample_once(self) -> None:
        try:
            sample = self.source()
        except Exception as exc:
            with self._lock:
                self.failures += 1
                self.last_error = f"{type(exc).__name__}: {getattr(exc, 'reason', None) or exc}"[:300]
            return
        with self._lock:
            self.samples += 1
            for peaks, values in ((self.node_peaks, sample.nodes), (self.pod_peaks, sample.pods)):
                for name, (cpu, mem) in values.items():
                    peak = peaks.setdefault(name, [0.0, 0.0])
                    peak[0], peak[1] = max(peak[0], cpu), max(peak[1], mem)
            if len(self.series) < MAX_SERIES:
                self.series.append(
                    {
                        "t": round(self.clock() - self.started, 2),
                        "cpu_m": round(sum(v[0] for v in sample.nodes.values()), 1),
                        "memory_mib": round(sum(v[1] for v in sample.nodes.values()), 1),
                    }
                )

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="floe-perf-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 15)
        self.sample_once()  # one last reading at the end of the run

    def report(self) -> dict[str, Any]:
        with self._lock:
            available = self.samples > 0
            return {
                "available": available,
                "reason": "" if available else f"metrics API unavailable: {self.last_error or 'no sample taken'}",
                "samples": self.samples,
                "failed_samples": self.failures,
                "last_error": self.last_error,
                "interval_s": self.interval,
                "peak_cpu_m": round(max((s["cpu_m"] for s in self.series), default=0.0), 1) if available else None,
                "peak_memory_mib": round(max((s["memory_mib"] for s in self.series), default=0.0), 1)
                if available
                else None,
                "nodes": {
                    n: {"cpu_m": round(v[0], 1), "memory_mib": round(v[1], 1)} for n, v in self.node_peaks.items()
                },
                "pods": {n: {"cpu_m": round(v[0], 1), "memory_mib": round(v[1], 1)} for n, v in self.pod_peaks.items()},
                "series": list(self.series),
            }


# --- the pytest plugin --------------------------------------------------------------------------------

HELP_ENABLED = "record per-test durations and sample cluster CPU/memory (default: on when FLOE_RESULTS_DIR is set)"
HELP_OUT = f"where to write the perf JSON (default: $FLOE_RESULTS_DIR/{PERF_FILE}, else none)"
HELP_INTERVAL = "seconds between metrics API samples; 0 turns sampling off (default: 5)"
HELP_BASELINE = "history file (JSON lines) or perf.json to compare against (default: none, no comparison)"
HELP_THRESHOLDS = "YAML file with default and per-test thresholds (default: testing/perf-thresholds.yaml)"
HELP_STRICT = "fail the session (exit 1) when a test regressed against the baseline (default: off)"


@dataclass(frozen=True)
class _Opt:
    name: str
    help: str
    kind: str
    default: Any


_OPTS = (
    _Opt("perf", HELP_ENABLED, "bool", None),
    _Opt("perf_out", HELP_OUT, "str", None),
    _Opt("perf_interval", HELP_INTERVAL, "float", 5.0),
    _Opt("perf_baseline", HELP_BASELINE, "str", None),
    _Opt("perf_thresholds", HELP_THRESHOLDS, "str", None),
    _Opt("perf_strict", HELP_STRICT, "bool", False),
)


def _cli(opt: _Opt) -> str:
    return "--floe-" + opt.name.replace("_", "-")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("floe", "floe-testinfra: Kubernetes integration tests")
    for opt in _OPTS:
        dest = f"floe_{opt.name}"
        if opt.kind == "bool":
            group.addoption(_cli(opt), action="store_true", dest=dest, default=None, help=opt.help)
            group.addoption(
                _cli(opt).replace("--", "--no-", 1),
                action="store_false",
                dest=dest,
                default=None,
                help=f"opposite of {_cli(opt)}",
            )
        elif opt.kind == "float":
            group.addoption(_cli(opt), dest=dest, type=float, default=None, metavar="SECONDS", help=opt.help)
        else:
            group.addoption(_cli(opt), dest=dest, default=None, metavar="PATH", help=opt.help)
        parser.addini(f"floe_{opt.name}", opt.help, type="string", default="")


def _value(config: pytest.Config, opt: _Opt) -> Any:
    cli = config.getoption(f"floe_{opt.name}", default=None)
    if cli is not None:
        return cli
    ini = str(config.getini(f"floe_{opt.name}") or "").strip()
    if not ini:
        return opt.default
    if opt.kind == "bool":
        if ini.lower() in {"1", "true", "yes", "on"}:
            return True
        if ini.lower() in {"0", "false", "no", "off"}:
            return False
        raise ConfigError(f"ini floe_{opt.name}: must be true or false (got {ini!r})")
    if opt.kind == "float":
        try:
            return float(ini)
        except ValueError:
            raise ConfigError(f"ini floe_{opt.name}: must be a number of seconds (got {ini!r})") from None
    return ini


@dataclass
class _PerfState:
    out: Path | None
    interval: float
    baseline: Path | None
    thresholds_path: Path | None
    strict: bool
    started_wall: str
    started: float
    tests: dict[str, dict[str, Any]] = field(default_factory=dict)
    marker_limits: dict[str, Limit] = field(default_factory=dict)
    sampler: ResourceSampler | None = None
    sampling_note: str = ""
    regressions: list[Regression] = field(default_factory=list)
    baseline_note: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


PERF_KEY = pytest.StashKey[_PerfState]()
#: Tests may replace the sampler's source (a callable taking the config and returning a Sample source).
SOURCE_FACTORY_KEY = pytest.StashKey[Callable[[pytest.Config], Callable[[], Sample]]]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "perf_threshold(relative=None, absolute=None): this test's allowed slowdown against the perf baseline",
    )
    values = {opt.name: _value(config, opt) for opt in _OPTS}
    results_dir = os.environ.get("FLOE_RESULTS_DIR", "")
    enabled = values["perf"] if values["perf"] is not None else bool(results_dir)
    if not enabled or hasattr(config, "workerinput"):
        return
    out = values["perf_out"] or (str(Path(results_dir) / PERF_FILE) if results_dir else None)
    interval = float(values["perf_interval"])
    if interval < 0:
        raise ConfigError(f"--floe-perf-interval must be 0 (off) or positive (got {interval})")
    state = _PerfState(
        out=Path(out) if out else None,
        interval=interval,
        baseline=Path(values["perf_baseline"]) if values["perf_baseline"] else None,
        thresholds_path=Path(values["perf_thresholds"]) if values["perf_thresholds"] else None,
        strict=bool(values["perf_strict"]),
        started_wall=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        started=time.monotonic(),
    )
    config.stash[PERF_KEY] = state
    config.pluginmanager.register(PerfRecorder(config, state), "floe_perf_recorder")


def _default_source(config: pytest.Config) -> Callable[[], Sample]:
    from kubernetes import client

    from testing.cluster import cluster_status
    from testing.errors import PrerequisiteError

    context = None
    try:
        from testing.plugin import get_settings

        context = get_settings(config).context
    except (KeyError, ImportError):
        context = None
    status = cluster_status(context)
    if isinstance(status, PrerequisiteError):
        raise status
    namespaces = [ns for ns in (os.environ.get("FLOE_NAMESPACE"), os.environ.get("FLOE_PLATFORM_NAMESPACE")) if ns]
    return metrics_api_source(client.CustomObjectsApi(status.api_client), namespaces)


class PerfRecorder:
    """The session's recorder: registered only when perf monitoring is on, so it costs nothing otherwise."""

    def __init__(self, config: pytest.Config, state: _PerfState) -> None:
        self.config = config
        self.state = state

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        state = self.state
        if state.interval == 0:
            state.sampling_note = "resource sampling off (--floe-perf-interval 0)"
            return
        factory = self.config.stash.get(SOURCE_FACTORY_KEY, _default_source)
        try:
            source = factory(self.config)
        except Exception as exc:
            state.sampling_note = f"resource sampling unavailable: {str(exc).splitlines()[0]}"
            return
        state.sampler = ResourceSampler(source, state.interval)
        state.sampler.start()

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            marker = item.get_closest_marker("perf_threshold")
            if marker is None:
                continue
            try:
                rel = float(marker.kwargs["relative"]) if "relative" in marker.kwargs else None
                ab = float(marker.kwargs["absolute"]) if "absolute" in marker.kwargs else None
            except (TypeError, ValueError):
                raise ConfigError(f"{item.nodeid}: perf_threshold(relative=, absolute=) must be numbers") from None
            if rel is None and ab is None:
                raise ConfigError(f"{item.nodeid}: perf_threshold needs relative= and/or absolute=")
            if rel is None or ab is None:
                default = load_thresholds(self.state.thresholds_path).limit_for(item.nodeid)
                rel = default.relative if rel is None else rel
                ab = default.absolute if ab is None else ab
            self.state.marker_limits[item.nodeid] = Limit(rel, ab)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        state = self.state
        with state.lock:
            entry = state.tests.setdefault(report.nodeid, {"reruns": 0})
            if str(report.outcome) == "rerun":  # pytest-rerunfailures marks reruns this way
                entry["reruns"] += 1
                return
            entry[report.when] = round(report.duration, 4)
            if report.when == "call" or (report.when == "setup" and not report.passed):
                entry["outcome"] = report.outcome
            elif report.when == "teardown" and report.failed:
                entry["outcome"] = "error"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        report: pytest.TestReport = yield
        if report.when != "teardown":
            return report
        with self.state.lock:
            entry = dict(self.state.tests.get(item.nodeid, {}))
        entry["teardown"] = round(report.duration, 4)
        for phase in PHASES:
            if phase in entry:
                report.user_properties.append((f"floe.perf.{phase}_s", f"{entry[phase]:.4f}"))
        if entry.get("reruns"):
            report.user_properties.append(("floe.reruns", str(entry["reruns"])))
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        state = self.state
        resources: dict[str, Any]
        if state.sampler is not None:
            state.sampler.stop()
            resources = state.sampler.report()
        else:
            resources = {"available": False, "reason": state.sampling_note, "samples": 0, "series": []}
        current = {t: float(v["call"]) for t, v in state.tests.items() if "call" in v and v.get("outcome") == "passed"}
        if state.baseline is not None:
            try:
                thresholds = load_thresholds(state.thresholds_path)
                runs = load_baseline(state.baseline)
                baseline = baseline_from_history(runs, thresholds)
                state.regressions = compare(current, baseline, thresholds, state.marker_limits)
                state.baseline_note = (
                    f"compared {len(current)} test(s) with {len(runs)} past run(s) in {state.baseline}"
                )
            except ConfigError as exc:
                state.baseline_note = f"no comparison: {exc}"
        perf = {
            "version": 1,
            "run_id": os.environ.get("FLOE_RUN_ID", ""),
            "started": state.started_wall,
            "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "total_s": round(time.monotonic() - state.started, 3),
            "tests": state.tests,
            "thresholds": {t: asdict(limit) for t, limit in state.marker_limits.items()},
            "resources": resources,
            "regressions": [r.to_json() for r in state.regressions],
            "baseline": state.baseline_note,
        }
        if state.out is not None:
            state.out.parent.mkdir(parents=True, exist_ok=True)
            state.out.write_text(json.dumps(perf, indent=2) + "\n")
        if state.strict and state.regressions and session.exitstatus == 0:
            session.exitstatus = 1

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        state = self.state
        terminalreporter.section("floe performance")
        slowest = sorted(
            ((t, float(v.get("call", 0.0))) for t, v in state.tests.items()), key=lambda x: x[1], reverse=True
        )[:5]
        for test, seconds in slowest:
            terminalreporter.write_line(f"{seconds:8.2f}s call  {test}")
        if state.sampler is not None:
            res = state.sampler.report()
            if res["available"]:
                terminalreporter.write_line(
                    f"cluster peaks: {res['peak_cpu_m']:.0f}m CPU, {res['peak_memory_mib']:.0f} MiB over "
                    f"{res['samples']} sample(s)"
                )
            else:
                terminalreporter.write_line(res["reason"])
        elif state.sampling_note:
            terminalreporter.write_line(state.sampling_note)
        if state.baseline_note:
            terminalreporter.write_line(state.baseline_note)
        for regression in state.regressions:
            terminalreporter.write_line(f"REGRESSION {regression}")
        if state.regressions and not state.strict:
            terminalreporter.write_line(
                f"{len(state.regressions)} regression(s) reported; --floe-perf-strict fails the run"
            )
        if state.out is not None:
            terminalreporter.write_line(f"perf data: {state.out}")


def summary_rows(tests: Mapping[str, Mapping[str, Any]], limit: int = 10) -> Iterable[tuple[str, float, float, float]]:
    """(test, setup, call, teardown) of the slowest tests by total time."""
    rows = [
        (t, float(v.get("setup", 0.0)), float(v.get("call", 0.0)), float(v.get("teardown", 0.0)))
        for t, v in tests.items()
    ]
    return sorted(rows, key=lambda r: r[1] + r[2] + r[3], reverse=True)[:limit]
