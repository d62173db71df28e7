"""The pytest plugin, exercised by running pytest in a subprocess and matching its output."""

from __future__ import annotations

import json

import pytest

from testing.plugin import INFRA_RERUN_PATTERNS, NEVER_RERUN_PATTERNS, health_bound, infra_rerun_args

from .conftest import SilentServer

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")

INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
{extra}
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> pytest.MonkeyPatch:
    for var in ("CI", "FLOE_CI", "FLOE_SERVICES", "PYTEST_TIMEOUT", "KUBERNETES_SERVICE_HOST", "FLOE_RUN_ID",
                "FLOE_REQUIRE_CLUSTER", "FLOE_KUBE_CONTEXT", "PYTEST_ADDOPTS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/floe-kubeconfig")
    return monkeypatch


def ini(pytester: pytest.Pytester, extra: str = "") -> None:
    pytester.makeini(INI.format(extra=extra))


def test_markers_are_registered_for_strict_markers(pytester: pytest.Pytester, clean_env: object) -> None:
    ini(pytester)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.integration
        @pytest.mark.e2e
        @pytest.mark.destructive
        def test_marked():
            pass
    """)
    result = pytester.runpytest_subprocess("--strict-markers", "-p", "no:randomly")
    result.assert_outcomes(passed=1)


def test_report_header_shows_defaults_locally(pytester: pytest.Pytester, clean_env: object) -> None:
    ini(pytester)
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.stdout.fnmatch_lines([
        "floe: run id *; cluster context (current/in-cluster) [[]default[]]; namespace prefix floe-it [[]default[]]",
        "floe: keep-failed on [[]default (local)[]], TTL 86400s; probe timeout 30s [[]default[]]; "
        "health timeout 270s [[]default, ends before the test timeout[]]; test timeout 300s per test; smoke gate on",
    ])


def test_ci_turns_keep_failed_off_by_default(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FLOE_CI", "1")
    ini(pytester)
    pytester.makepyfile("def test_ok():\n    pass\n")
    pytester.runpytest_subprocess().stdout.fnmatch_lines(["*keep-failed off [[]default (CI)[]]*"])


@pytest.mark.parametrize(
    ("ini_line", "args", "expected"),
    [
        ("", [], "*probe timeout 30s [[]default[]]*"),
        ("floe_probe_timeout = 12", [], "*probe timeout 12s [[]ini[]]*"),
        ("floe_probe_timeout = 12", ["--floe-probe-timeout=7"], "*probe timeout 7s [[]cli[]]*"),
        ("floe_keep_failed = false", [], "*keep-failed off [[]ini[]]*"),
        ("floe_keep_failed = false", ["--keep-failed"], "*keep-failed on [[]cli[]]*"),
        ("floe_namespace_prefix = it-x", ["--floe-context=kind-floe"],
         "*cluster context kind-floe [[]cli[]]; namespace prefix it-x [[]ini[]]"),
    ],
    ids=["default", "ini", "cli-beats-ini", "ini-bool", "cli-bool-beats-ini", "context-and-prefix"],
)
def test_cli_beats_ini_beats_default(pytester: pytest.Pytester, clean_env: object, ini_line: str,
                                     args: list[str], expected: str) -> None:
    ini(pytester, ini_line)
    pytester.makepyfile("def test_ok():\n    pass\n")
    pytester.runpytest_subprocess(*args).stdout.fnmatch_lines([expected])


def test_marker_beats_cli(pytester: pytest.Pytester, clean_env: object) -> None:
    ini(pytester, "floe_health_timeout = 100")
    pytester.makepyfile("""
        import pytest
        from testing.plugin import resolve_setting

        @pytest.mark.integration(probe_timeout=3, keep_failed=False)
        def test_marked(request):
            assert resolve_setting(request.node, "probe_timeout") == 3.0
            assert resolve_setting(request.node, "keep_failed") is False
            assert resolve_setting(request.node, "health_timeout") == 100.0

        def test_unmarked(request):
            assert resolve_setting(request.node, "probe_timeout") == 9.0
    """)
    pytester.runpytest_subprocess("--floe-probe-timeout=9", "--keep-failed").assert_outcomes(passed=2)


def test_invalid_setting_is_a_usage_error_naming_it(pytester: pytest.Pytester, clean_env: object) -> None:
    ini(pytester, "floe_probe_timeout = soon")
    pytester.makepyfile("def test_ok():\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.stderr.fnmatch_lines(["*ini floe_probe_timeout: probe_timeout must be a number of seconds*"])
    assert result.ret != 0


@pytest.mark.parametrize(
    ("ini_line", "args", "expected"),
    [("", [], "*test timeout 300s per test*"), ("timeout = 50", [], "*test timeout 50s per test*"),
     ("timeout = 50", ["--timeout=20"], "*test timeout 20s per test*")],
    ids=["plugin-default", "user-ini", "user-cli"],
)
def test_pytest_timeout_defaults_to_300s_only_when_unset(pytester: pytest.Pytester, clean_env: object,
                                                         ini_line: str, args: list[str], expected: str) -> None:
    ini(pytester, ini_line)
    pytester.makepyfile("""
        def test_timeout(request):
            print("effective timeout", request.config.option.timeout)
    """)
    result = pytester.runpytest_subprocess(*args)
    result.stdout.fnmatch_lines([expected])
    result.assert_outcomes(passed=1)


RERUN_TESTS = """
    import pathlib
    import pytest
    from testing.errors import WaitTimeout

    def bump(name):
        p = pathlib.Path(name)
        n = int(p.read_text()) + 1 if p.exists() else 1
        p.write_text(str(n))
        return n

    def test_transient_infra_error_is_rerun():
        if bump("infra") == 1:
            raise WaitTimeout("pods app=x in namespace ns to be Ready", elapsed=1, timeout=1, last_state="Pending")

    def test_connection_refused_is_rerun():
        if bump("conn") == 1:
            raise ConnectionRefusedError(111, "Connection refused")

    def test_assertion_is_never_rerun():
        bump("assert")
        assert False, "WaitTimeout: mentioned in an assertion"

    def test_assertion_while_handling_infra_error_is_never_rerun():
        bump("chained")
        try:
            raise WaitTimeout("x", elapsed=1, timeout=1, last_state="y")
        except WaitTimeout:
            assert False, "the product misbehaved"
"""


def test_reruns_are_limited_to_infrastructure_errors(pytester: pytest.Pytester, clean_env: object) -> None:
    ini(pytester)
    pytester.makepyfile(RERUN_TESTS)
    result = pytester.runpytest_subprocess("--reruns", "2", "-p", "no:randomly")
    assert result.parseoutcomes() == {"passed": 2, "failed": 2, "rerun": 2}
    assert (pytester.path / "assert").read_text() == "1"
    assert (pytester.path / "chained").read_text() == "1"


def test_documented_ci_rerun_args_behave_the_same(pytester: pytest.Pytester, clean_env: object) -> None:
    ini(pytester)
    pytester.makepyfile(RERUN_TESTS)
    result = pytester.runpytest_subprocess(*infra_rerun_args(2))
    assert result.parseoutcomes() == {"passed": 2, "failed": 2, "rerun": 2}


@pytest.mark.parametrize(
    ("text", "rerun"),
    [
        ("WaitTimeout: timed out after 300.0s", True),
        ("PodsFailed: gave up after 3.0s", True),
        ("ConnectionRefusedError: [Errno 111] Connection refused", True),
        ("ConnectError: [Errno 111] Connection refused", True),
        ("ApiException: (503)\nReason: Service Unavailable", True),
        ("AssertionError: WaitTimeout: not really", False),
        ("ApiException: (403)\nReason: Forbidden", False),
        ("ConfigError: invalid configuration", False),
        ("Failed: HealthCheckFailed", False),
    ],
    ids=["wait-timeout", "pods-failed", "refused", "httpx-connect", "api-503", "assertion", "api-403",
         "config-error", "pytest-fail"],
)
def test_rerun_patterns_match_only_transient_infrastructure(text: str, rerun: bool) -> None:
    import re

    matched = any(re.search(p, text) for p in INFRA_RERUN_PATTERNS)
    excluded = any(re.search(p, text) for p in NEVER_RERUN_PATTERNS)
    assert (matched and not excluded) is rerun


def test_plugin_loads_no_cluster_client_for_ordinary_tests(pytester: pytest.Pytester, clean_env: object) -> None:
    ini(pytester)
    pytester.makepyfile("""
        import sys

        def test_nothing_heavy_imported():
            assert "kubernetes" not in sys.modules
            assert "testing.k8s_client" not in sys.modules
    """)
    pytester.runpytest_subprocess().assert_outcomes(passed=1)


def test_namespace_fixture_skips_with_reason_without_cluster(pytester: pytest.Pytester, clean_env: object) -> None:
    ini(pytester)
    pytester.makepyfile("""
        def test_needs_namespace(isolated_namespace):
            pass
    """)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no Kubernetes cluster: kubeconfig/in-cluster config not found*"])


def test_require_cluster_env_turns_the_skip_into_a_failure(pytester: pytest.Pytester,
                                                            clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("FLOE_REQUIRE_CLUSTER", "1")
    ini(pytester)
    pytester.makepyfile("def test_needs_cluster(kube):\n    pass\n")
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*no Kubernetes cluster*FLOE_REQUIRE_CLUSTER is set*"])


def test_absent_service_skips_and_broken_service_fails_with_cause(
        pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, silent_server: SilentServer) -> None:
    clean_env.setenv("FLOE_SERVICES", json.dumps(
        [{"name": "cube", "host": "127.0.0.1", "port": silent_server.port, "protocol": "http"}]))
    ini(pytester)
    pytester.makepyfile("""
        import pytest

        @pytest.mark.requires_services("jaeger")
        def test_absent():
            pass

        @pytest.mark.requires_services("cube", probe_timeout=0.2, health_timeout=0.5)
        def test_broken():
            pass
    """)
    result = pytester.runpytest_subprocess("-rs", "-p", "no:randomly")
    result.assert_outcomes(skipped=1, errors=1)
    result.stdout.fnmatch_lines([
        "*HealthCheckFailed: required service(s) present but broken:*",
        "*cube: broken*http hop failed: connected but no HTTP answer within*",
        "*SKIPPED*required service(s) not deployed: jaeger*",
    ])


def test_smoke_gate_reports_broken_core_services_once(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch,
                                                      silent_server: SilentServer) -> None:
    clean_env.setenv("FLOE_SERVICES", json.dumps(
        [{"name": "dagster", "host": "127.0.0.1", "port": silent_server.port, "protocol": "http"}]))
    ini(pytester, "floe_probe_timeout = 0.2\nfloe_health_timeout = 0.5")
    pytester.makepyfile("""
        import pytest

        pytestmark = pytest.mark.integration

        @pytest.mark.parametrize("n", range(20))
        def test_many(n):
            pass
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    out = result.stdout.str()
    assert out.count("ERROR at setup of") == 1  # reported once, not 20 times
    result.stdout.fnmatch_lines([
        "*HealthCheckFailed: smoke gate: 1 core service(s) down: dagster*",
        "*dagster: broken*http hop failed*",
        "*Interrupted: smoke gate: 1 core service(s) down: dagster*",
    ])


def test_smoke_gate_ends_before_the_test_timeout_and_names_the_service(
        pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, silent_server: SilentServer) -> None:
    # The health timeout (60 s) is longer than the test timeout (3 s): the check must be cut short so
    # its own error, naming the service, is reported rather than pytest-timeout's bare "Timeout".
    clean_env.setenv("FLOE_SERVICES", json.dumps(
        [{"name": "dagster", "host": "127.0.0.1", "port": silent_server.port, "protocol": "http"}]))
    ini(pytester, "floe_probe_timeout = 0.2\nfloe_health_timeout = 60\ntimeout = 3")
    pytester.makepyfile("""
        import pytest

        @pytest.mark.integration
        def test_one():
            pass
    """)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*HealthCheckFailed: smoke gate*dagster*", "*dagster: broken (2.*s)*(bound 2s)*"])
    result.stdout.no_fnmatch_line("*Failed: Timeout*")


@pytest.mark.parametrize(("health", "test", "bound"), [(300, 300, 270), (60, 300, 60), (300, None, 300),
                                                       (300, 10, 9), (5, 4, 3), (5, 1, 0.5)])
def test_health_bound_leaves_time_before_the_test_timeout(health: float, test: float | None, bound: float) -> None:
    assert health_bound(health, test) == pytest.approx(bound)


def test_an_interrupted_smoke_gate_stops_the_run_instead_of_checking_again(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, silent_server: SilentServer
) -> None:
    # Seen in a real cluster: pytest-timeout interrupted the gate, the next test ran it again, and so on.
    clean_env.setenv("FLOE_SERVICES", json.dumps(
        [{"name": "dagster", "host": "127.0.0.1", "port": silent_server.port, "protocol": "http"}]))
    pytester.makeconftest("""
        import testing.health

        calls = []

        def interrupted(*args, **kwargs):
            calls.append(1)
            raise RuntimeError("interrupted mid-check")

        testing.health.check_services = interrupted

        def pytest_sessionfinish(session):
            print(f"health checks run: {len(calls)}")
    """)
    pytester.makepyfile("""
        import pytest

        pytestmark = pytest.mark.integration

        @pytest.mark.parametrize("n", range(5))
        def test_many(n):
            pass
    """)
    result = pytester.runpytest_subprocess("-s")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*health checks run: 1*"])
    result.stdout.fnmatch_lines(["*Interrupted: smoke gate: the health check of dagster did not finish: RuntimeError*"])


def test_sigterm_ends_the_run_gracefully_with_the_results_so_far(pytester: pytest.Pytester,
                                                                 clean_env: object) -> None:
    # Kubernetes stops the Job's pod with SIGTERM at its deadline: the tests done must still be in the
    # JUnit XML (pytest writes it only when the session ends normally or on KeyboardInterrupt).
    pytester.makepyfile("""
        import os
        import signal

        def test_done():
            pass

        def test_stopped_here():
            os.kill(os.getpid(), signal.SIGTERM)

        def test_never_run():
            pass
    """)
    result = pytester.runpytest_subprocess("--junitxml=junit.xml", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*SIGTERM: the test pod is being stopped (Job deadline or deletion)*"])
    junit = (pytester.path / "junit.xml").read_text()
    assert 'name="test_done"' in junit
    assert "test_never_run" not in junit


def test_log_file_holds_the_terminal_output_even_when_the_run_is_stopped(pytester: pytest.Pytester,
                                                                        clean_env: object) -> None:
    # The Job writes it to the results volume: the pod's own log is gone once Kubernetes deletes it.
    pytester.makepyfile("""
        import os
        import signal

        def test_done():
            print("inside test_done")

        def test_stopped_here():
            os.kill(os.getpid(), signal.SIGTERM)
    """)
    log = pytester.path / "results" / "pytest.log"
    result = pytester.runpytest_subprocess("-v", f"--floe-log-file={log}", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    text = log.read_text()
    assert "floe: run id" in text  # the header, written before the first test
    assert "test_done PASSED" in text
    assert "SIGTERM: the test pod is being stopped" in text
    assert "1 passed" in text.strip().splitlines()[-1]  # the final summary line too
