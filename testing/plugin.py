"""The floe-testinfra pytest plugin (entry point ``floe_testing``).

Loaded by every pytest run in the project's environment, so it is cheap on purpose: it registers
markers and options, resolves settings and stores them in ``config.stash``; it imports neither the
Kubernetes client nor httpx and touches no cluster until a test asks for a fixture (or carries a
marker) that needs one.

Markers: ``integration``, ``e2e``, ``requires_services(*names, probe_timeout=, health_timeout=)``,
``destructive``. Settings (``--floe-*`` options, each with an ini twin sharing its help text) resolve
with the precedence marker keyword > command line > ini file > default.

Reruns: only infrastructure errors may be retried. :data:`INFRA_RERUN_PATTERNS` is the documented
``--only-rerun`` list (CI: ``--reruns 2`` plus these); when ``--reruns`` is given without
``--only-rerun``, the plugin applies them itself, and :data:`NEVER_RERUN_PATTERNS` as
``--rerun-except``, so an assertion failure is never masked by a rerun.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Generator, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pytest

from testing.errors import ConfigError, HealthCheckFailed

if TYPE_CHECKING:
    from testing.health import ServiceHealth

__all__ = [
    "CI_ENV_VARS",
    "DEFAULT_TEST_TIMEOUT",
    "INFRA_RERUN_PATTERNS",
    "NEVER_RERUN_PATTERNS",
    "SETTINGS_KEY",
    "Settings",
    "enforce_health",
    "get_settings",
    "health_bound",
    "in_ci",
    "infra_rerun_args",
    "item_failed",
    "node_failed",
    "record_kept",
    "resolve_setting",
    "service_health",
]

#: pytest-timeout's per-test bound when the user set none (CLI, ini or PYTEST_TIMEOUT).
DEFAULT_TEST_TIMEOUT = 300.0
#: Any of these set (non-empty, not "0"/"false") means "running in CI": keep-failed defaults off.
CI_ENV_VARS = ("FLOE_CI", "CI")

#: ``--only-rerun`` patterns: infrastructure errors and connection errors, matched by
#: pytest-rerunfailures against ``"<ExceptionType>: <message>"`` of each exception in the chain.
#: Anchored at the type name, so an ``AssertionError`` whose message mentions one never matches.
INFRA_RERUN_PATTERNS: tuple[str, ...] = (
    # testing.errors.InfraError subclasses that describe a transient state of the environment.
    r"^(InfraError|WaitTimeout|WaitFailed|PodsFailed|HealthCheckFailed|ConnectivityError): ",
    # Connection errors (Python, httpx/httpcore, urllib3 as used by the Kubernetes client, psycopg).
    r"^(ConnectionError|ConnectionRefusedError|ConnectionResetError|ConnectionAbortedError"
    r"|BrokenPipeError|TimeoutError|socket\.timeout): ",
    r"^(ConnectError|ConnectTimeout|ReadTimeout|WriteTimeout|PoolTimeout|ReadError|WriteError"
    r"|RemoteProtocolError): ",
    r"^(MaxRetryError|NewConnectionError|ProtocolError): ",
    r"^OperationalError: .*(connection|timeout|server closed)",
    # Kubernetes API server answered "try again" (throttled or unavailable).
    r"^ApiException: \((429|500|502|503|504)\)",
)
#: ``--rerun-except`` patterns: never rerun these, whatever else matched (checked without context).
NEVER_RERUN_PATTERNS: tuple[str, ...] = (r"^AssertionError", r"^Failed: ")


def infra_rerun_args(reruns: int = 2) -> list[str]:
    """The pytest arguments CI adds: ``--reruns N`` limited to infrastructure errors."""
    args = ["--reruns", str(reruns)]
    for pattern in INFRA_RERUN_PATTERNS:
        args += ["--only-rerun", pattern]
    for pattern in NEVER_RERUN_PATTERNS:
        args += ["--rerun-except", pattern]
    return args


# --- options --------------------------------------------------------------------------------------

HELP_CONTEXT = "kubeconfig context of the test cluster (default: current context; in a pod: in-cluster config)"
HELP_PREFIX = "prefix of per-test namespaces, named <prefix>-<uuid8> (default: floe-it)"
HELP_KEEP_FAILED = (
    "keep namespaces of failed tests with a TTL label and print kubectl commands to inspect "
    "them (default: on locally, off when FLOE_CI or CI is set)"
)
HELP_KEEP_TTL = "seconds a kept failed namespace lives before the sweeper may delete it (default: 86400)"
HELP_PROBE_TIMEOUT = "bound of one service probe, in seconds (default: 30)"
HELP_HEALTH_TIMEOUT = "overall bound of a service health check, in seconds (default: 300)"
HELP_LOG_FILE = "also write pytest's terminal output to this file (the test Job: on the results volume)"
HELP_SMOKE_GATE = (
    "before the first integration/e2e test, check the core services once and stop the run "
    "with one message if any is broken (default: true)"
)


@dataclass(frozen=True)
class _Opt:
    name: str
    cli: str
    help: str
    kind: str  # "str" | "float" | "bool"
    default: Any


_OPTIONS: tuple[_Opt, ...] = (
    _Opt("context", "--floe-context", HELP_CONTEXT, "str", None),
    _Opt("namespace_prefix", "--floe-namespace-prefix", HELP_PREFIX, "str", "floe-it"),
    _Opt("keep_failed", "--keep-failed", HELP_KEEP_FAILED, "bool", None),  # None: depends on CI
    _Opt("keep_ttl", "--floe-keep-ttl", HELP_KEEP_TTL, "float", 86400.0),
    _Opt("probe_timeout", "--floe-probe-timeout", HELP_PROBE_TIMEOUT, "float", 30.0),
    _Opt("health_timeout", "--floe-health-timeout", HELP_HEALTH_TIMEOUT, "float", 300.0),
    _Opt("smoke_gate", "--floe-smoke-gate", HELP_SMOKE_GATE, "bool", True),
    _Opt("log_file", "--floe-log-file", HELP_LOG_FILE, "str", None),
)
_OPTS_BY_NAME = {o.name: o for o in _OPTIONS}
#: Settings a marker keyword may override for one test.
MARKER_SETTINGS = ("keep_failed", "probe_timeout", "health_timeout")
_OUR_MARKERS = ("requires_services", "integration", "e2e", "destructive")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _ini_name(opt: _Opt) -> str:
    return f"floe_{opt.name}"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("floe", "floe-testinfra: Kubernetes integration tests")
    for opt in _OPTIONS:
        dest = f"floe_{opt.name}"
        if opt.kind == "bool":
            group.addoption(opt.cli, action="store_true", dest=dest, default=None, help=opt.help)
            negative = opt.cli.replace("--", "--no-", 1)
            group.addoption(negative, action="store_false", dest=dest, default=None, help=f"opposite of {opt.cli}")
        elif opt.kind == "float":
            group.addoption(
                opt.cli, action="store", dest=dest, type=float, default=None, metavar="SECONDS", help=opt.help
            )
        else:
            group.addoption(opt.cli, action="store", dest=dest, default=None, help=opt.help)
        parser.addini(_ini_name(opt), opt.help, type="string", default="")


def _parse(opt: _Opt, raw: object, source: str) -> Any:
    if opt.kind == "bool":
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{source}: {opt.name} must be true or false (got {raw!r})")
    if opt.kind == "float":
        try:
            value = float(str(raw))
        except ValueError:
            raise ConfigError(f"{source}: {opt.name} must be a number of seconds (got {raw!r})") from None
        if value <= 0:
            raise ConfigError(f"{source}: {opt.name} must be positive (got {raw!r})")
        return value
    return str(raw)


def in_ci(environ: dict[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return any(env.get(v, "").strip().lower() not in _FALSE for v in CI_ENV_VARS)


@dataclass(frozen=True)
class Settings:
    """The effective session settings (before per-test marker overrides)."""

    context: str | None
    namespace_prefix: str
    keep_failed: bool
    keep_ttl: float
    probe_timeout: float
    health_timeout: float
    smoke_gate: bool
    log_file: str | None
    ci: bool
    run_id: str
    test_timeout: float | None
    sources: dict[str, str] = field(default_factory=dict)


def _resolve_session(config: pytest.Config) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for opt in _OPTIONS:
        cli = config.getoption(f"floe_{opt.name}", default=None)
        ini = str(config.getini(_ini_name(opt)) or "").strip()
        if cli is not None:
            values[opt.name], sources[opt.name] = _parse(opt, cli, opt.cli), "cli"
        elif ini:
            values[opt.name], sources[opt.name] = _parse(opt, ini, f"ini {_ini_name(opt)}"), "ini"
        else:
            values[opt.name], sources[opt.name] = opt.default, "default"
    if values["keep_failed"] is None:
        values["keep_failed"] = not in_ci()
        sources["keep_failed"] = "default (CI)" if in_ci() else "default (local)"
    return values, sources


def resolve_setting(item: pytest.Item, name: str) -> Any:
    """One setting for one test: marker keyword > CLI > ini > default."""
    if name in MARKER_SETTINGS:
        for marker_name in _OUR_MARKERS:
            marker = item.get_closest_marker(marker_name)
            if marker is not None and name in marker.kwargs:
                return _parse(_OPTS_BY_NAME[name], marker.kwargs[name], f"marker {marker_name}")
    return getattr(get_settings(item.config), name)


# --- state -----------------------------------------------------------------------------------------


@dataclass
class _State:
    settings: Settings
    lock: threading.Lock = field(default_factory=threading.Lock)
    health: dict[tuple[str, float, float], ServiceHealth] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)
    smoke_checked: bool = False
    smoke_failure: str = ""
    failed_nodes: set[str] = field(default_factory=set)


SETTINGS_KEY = pytest.StashKey[_State]()
_REPORTS_KEY = pytest.StashKey[dict[str, pytest.TestReport]]()


def _state(config: pytest.Config) -> _State:
    return config.stash[SETTINGS_KEY]


def get_settings(config: pytest.Config) -> Settings:
    """The session settings the plugin resolved."""
    return _state(config).settings


def _apply_timeout_default(config: pytest.Config) -> float | None:
    if not config.pluginmanager.hasplugin("timeout"):
        return None
    cli = config.getoption("timeout", default=None)
    if cli is not None:
        return float(cli)
    env = os.environ.get("PYTEST_TIMEOUT", "").strip()
    if env:
        return float(env)
    ini = str(config.getini("timeout") or "").strip()
    if ini:
        return float(ini)
    config.option.timeout = DEFAULT_TEST_TIMEOUT
    return DEFAULT_TEST_TIMEOUT


def _apply_rerun_policy(config: pytest.Config) -> None:
    if not config.pluginmanager.hasplugin("rerunfailures"):
        return
    reruns = config.getoption("reruns", default=None)
    if reruns is None:
        try:
            reruns = int(str(config.getini("reruns")))
        except (ValueError, TypeError):
            reruns = None
    if not reruns:
        return
    if not (config.getoption("only_rerun", default=None) or config.getini("only_rerun")):
        config.option.only_rerun = list(INFRA_RERUN_PATTERNS)
    if not (config.getoption("rerun_except", default=None) or config.getini("rerun_except")):
        config.option.rerun_except = list(NEVER_RERUN_PATTERNS)


_SIGTERM_KEY = pytest.StashKey[Any]()


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    # pytest ends a run gracefully only on KeyboardInterrupt: JUnit XML and coverage are written for
    # the tests done so far. Kubernetes stops a Job's pod (deadline, deletion) with SIGTERM, which
    # would otherwise kill pytest (or, as PID 1 in the container, be ignored until SIGKILL) and lose them.
    raise KeyboardInterrupt("SIGTERM: the test pod is being stopped (Job deadline or deletion)")


def _install_sigterm_handler(config: pytest.Config) -> None:
    """Turn SIGTERM into a graceful interrupt, unless someone else already handles it."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        config.stash[_SIGTERM_KEY] = signal.signal(signal.SIGTERM, _stop_on_sigterm)


def pytest_unconfigure(config: pytest.Config) -> None:
    previous = config.stash.get(_SIGTERM_KEY, None)
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
    from testing import terminal_log

    terminal_log.stop(config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    # Before the terminal reporter prints the session header, so the copy has all of it.
    if SETTINGS_KEY in session.config.stash and (path := get_settings(session.config).log_file):
        from testing import terminal_log

        terminal_log.start(session.config, path)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    _install_sigterm_handler(config)
    config.addinivalue_line("markers", "integration: needs a live Kubernetes cluster with the platform deployed")
    config.addinivalue_line("markers", "e2e: end-to-end test of the whole platform (runs in the test Job)")
    config.addinivalue_line(
        "markers",
        "requires_services(*names, probe_timeout=None, health_timeout=None): services that must be healthy; "
        "absent -> skip, present but broken -> fail with the cause",
    )
    config.addinivalue_line("markers", "destructive: breaks or restarts shared services; runs last, own suite")
    values, sources = _resolve_session(config)
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and "floe_run_id" in workerinput:
        run_id = str(workerinput["floe_run_id"])
    else:
        from testing.isolation import new_run_id

        run_id = os.environ.get("FLOE_RUN_ID") or new_run_id()
    timeout = _apply_timeout_default(config)
    _apply_rerun_policy(config)
    config.stash[SETTINGS_KEY] = _State(
        Settings(**values, ci=in_ci(), run_id=run_id, test_timeout=timeout, sources=sources)
    )
    from testing.fixtures import namespaces, services

    for module in (services, namespaces):
        if not config.pluginmanager.is_registered(module):
            config.pluginmanager.register(module, f"floe_testing.{module.__name__.rsplit('.', 1)[-1]}")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist: every worker shares the controller's run id."""
    node.workerinput["floe_run_id"] = _state(node.config).settings.run_id


def pytest_report_header(config: pytest.Config) -> list[str]:
    s = get_settings(config)
    src = s.sources
    timeout = f"{s.test_timeout:.0f}s per test" if s.test_timeout else "off"
    health = health_bound(s.health_timeout, s.test_timeout)
    cut = ", ends before the test timeout" if health < s.health_timeout else ""
    return [
        f"floe: run id {s.run_id}; cluster context {s.context or '(current/in-cluster)'} [{src['context']}]; "
        f"namespace prefix {s.namespace_prefix} [{src['namespace_prefix']}]",
        f"floe: keep-failed {'on' if s.keep_failed else 'off'} [{src['keep_failed']}], TTL {s.keep_ttl:.0f}s; "
        f"probe timeout {s.probe_timeout:g}s [{src['probe_timeout']}]; "
        f"health timeout {health:g}s [{src['health_timeout']}{cut}]; "
        f"test timeout {timeout}; "
        f"smoke gate {'on' if s.smoke_gate else 'off'}",
    ]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report: pytest.TestReport = yield
    item.stash.setdefault(_REPORTS_KEY, {})[report.when] = report
    if report.failed and SETTINGS_KEY in item.config.stash:
        state = _state(item.config)
        with state.lock:
            state.failed_nodes.add(item.nodeid)
            if item.parent is not None:
                state.failed_nodes.add(item.parent.nodeid)
    return report


def item_failed(item: pytest.Item) -> bool:
    """True when setup or call of ``item`` failed (for teardown decisions)."""
    reports = item.stash.get(_REPORTS_KEY, {})
    return any(r.failed for r in reports.values())


def node_failed(config: pytest.Config, nodeid: str) -> bool:
    """True when any test under ``nodeid`` (a class or module) has failed so far."""
    return nodeid in _state(config).failed_nodes


# --- service health ---------------------------------------------------------------------------------


def health_bound(health_timeout: float, test_timeout: float | None) -> float:
    """The health timeout, cut to end before the per-test timeout does.

    Health checks run in a test's setup, which pytest-timeout also bounds: a check allowed as long as
    the test would be killed mid-wait and report a bare "Timeout" instead of the service at fault.
    """
    if not test_timeout:
        return health_timeout
    # Time left for the setup before the check (imports, client) and for reporting the failure.
    margin = min(30.0, max(1.0, test_timeout * 0.1))
    return min(health_timeout, max(test_timeout - margin, test_timeout / 2))


def service_health(
    config: pytest.Config,
    names: Iterable[str],
    *,
    probe_timeout: float | None = None,
    health_timeout: float | None = None,
) -> list[ServiceHealth]:
    """Health of ``names``, checked concurrently, each at most once per session (cached)."""
    from testing.health import check_services, kube_for

    state = _state(config)
    s = state.settings
    probe = probe_timeout or s.probe_timeout
    overall = health_bound(health_timeout or s.health_timeout, s.test_timeout)
    wanted = list(dict.fromkeys(names))
    with state.lock:
        missing = [n for n in wanted if (n, probe, overall) not in state.health]
    if missing:
        kube = kube_for(missing, context=s.context)
        report = check_services(missing, kube=kube, timeout=overall, probe_timeout=probe)
        with state.lock:
            for health in report.services:
                state.health[(health.name, probe, overall)] = health
    with state.lock:
        return [state.health[(n, probe, overall)] for n in wanted]


def enforce_health(healths: Iterable[ServiceHealth]) -> None:
    """Broken -> raise :class:`HealthCheckFailed` (a failure with the cause); absent -> skip."""
    __tracebackhide__ = True
    results = list(healths)
    broken = [h for h in results if h.status == "broken"]
    if broken:
        raise HealthCheckFailed("required service(s) present but broken:\n" + "\n".join(f"  - {h}" for h in broken))
    absent = [h for h in results if h.status == "absent"]
    if absent:
        pytest.skip(
            f"required service(s) not deployed: {', '.join(h.name for h in absent)} "
            f"({absent[0].detail.split('. Next:')[0]})"
        )


def _smoke_gate(item: pytest.Item) -> None:
    __tracebackhide__ = True
    state = _state(item.config)
    if not state.settings.smoke_gate:
        return
    with state.lock:
        checked, failure = state.smoke_checked, state.smoke_failure
    if checked:
        if failure:  # pragma: no cover - the session stops after the first report
            pytest.skip("smoke gate: core services are down (reported once above)")
        return
    from testing.endpoints import load_endpoints
    from testing.health import CORE_SERVICES

    try:
        present = [n for n in CORE_SERVICES if n in load_endpoints()]
    except ConfigError as exc:
        with state.lock:
            state.smoke_checked, state.smoke_failure = True, str(exc)
        item.session.shouldstop = f"smoke gate: {exc}"
        raise
    try:
        healths = service_health(item.config, present)
    except BaseException as exc:  # interrupted (pytest-timeout, Ctrl-C): never check again per test
        message = f"smoke gate: the health check of {', '.join(present)} did not finish: {type(exc).__name__}"
        with state.lock:
            state.smoke_checked, state.smoke_failure = True, message
        item.session.shouldstop = message
        raise
    broken = [h for h in healths if h.status == "broken"]
    message = ""
    if broken:
        message = (
            f"smoke gate: {len(broken)} core service(s) down: {', '.join(h.name for h in broken)}; "
            "stopping the run instead of failing every test"
        )
    with state.lock:
        state.smoke_checked, state.smoke_failure = True, message
    if broken:
        item.session.shouldstop = message
        raise HealthCheckFailed(message + "\n" + "\n".join(f"  - {h}" for h in broken))


def pytest_runtest_setup(item: pytest.Item) -> None:
    __tracebackhide__ = True
    if SETTINGS_KEY not in item.config.stash:
        return
    needs_platform = any(item.get_closest_marker(m) is not None for m in ("integration", "e2e", "requires_services"))
    marker = item.get_closest_marker("requires_services")
    if needs_platform and os.environ.get("FLOE_SERVICES"):
        _smoke_gate(item)
    if marker is not None:
        names = [str(a) for a in marker.args]
        healths = service_health(
            item.config,
            names,
            probe_timeout=resolve_setting(item, "probe_timeout"),
            health_timeout=resolve_setting(item, "health_timeout"),
        )
        enforce_health(healths)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if SETTINGS_KEY not in config.stash:
        return
    state = _state(config)
    if state.smoke_failure:
        terminalreporter.section("floe smoke gate")
        terminalreporter.write_line(state.smoke_failure)
    if state.kept:
        terminalreporter.section("floe: kept namespaces of failed tests")
        for line in state.kept:
            terminalreporter.write_line(line)


def record_kept(config: pytest.Config, lines: list[str]) -> None:
    """Remember lines about a kept namespace for the terminal summary."""
    state = _state(config)
    with state.lock:
        state.kept.extend(lines)
