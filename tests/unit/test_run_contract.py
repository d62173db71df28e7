"""The run's contract: exit codes, preflight that stops before anything is created."""

from __future__ import annotations

import pytest

from floe_test import doctor
from floe_test.cli import main
from floe_test.run import EXIT_FAILED, EXIT_INFRA, EXIT_PASSED, exit_code_for


@pytest.mark.parametrize(
    ("state", "code"),
    [("Complete", EXIT_PASSED), ("Failed", EXIT_FAILED), (None, EXIT_INFRA), ("Suspended", EXIT_INFRA)],
    ids=["tests-passed", "tests-failed-or-deadline", "never-finished", "unexpected"],
)
def test_exit_code_is_the_tests_result(state, code):
    assert exit_code_for(state) == code


def test_failed_required_check_fails_the_preflight():
    checks = [
        lambda: [doctor.Check("docker", False, "not running", "start it")],
        lambda: [doctor.Check("cpus", False, "1 CPU", "more", required=False)],
    ]
    assert doctor.report(doctor.diagnose("integration", checks=checks)) is False


def test_warnings_alone_do_not_fail_the_preflight():
    checks = [lambda: [doctor.Check("cpus", False, "1 CPU", "more", required=False), doctor.Check("disk", True, "ok")]]
    assert doctor.report(doctor.diagnose("integration", checks=checks)) is True


@pytest.mark.parametrize(("value", "ok"), [("128", False), ("8192", True)], ids=["default-128", "raised"])
def test_e2e_needs_raised_inotify_limits(tmp_path, value, ok):
    proc = tmp_path / "max_user_instances"
    proc.write_text(value)
    check = doctor.check_inotify("e2e", proc)
    assert check.ok is ok
    assert "sysctl fs.inotify.max_user_instances" in check.fix


def test_run_of_an_unknown_stack_exits_2_before_any_preflight(capsys):
    assert main(["run", "staging"]) == 2
    assert "unknown stack" in capsys.readouterr().err


def test_run_stops_at_preflight_when_a_prerequisite_is_missing(monkeypatch, capsys, tmp_path):
    import floe_test.run as run_module

    monkeypatch.setattr(
        doctor, "diagnose", lambda stack, **_: [doctor.Check("docker", False, "not running", "start it")]
    )
    monkeypatch.setattr(
        run_module, "select_stack", lambda *a: pytest.fail("a stack was selected after a failed preflight")
    )
    assert main(["run", "integration", "--out", str(tmp_path / "r")]) == 2
    assert "nothing was created" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_settings_that_contradict_the_profile_fail_before_anything_is_created(monkeypatch, capsys, tmp_path):
    # Found in a drill: a Job deadline shorter than one test's timeout failed only after 225 s of
    # cluster and services; the plan is now made at preflight.
    import floe_test.run as run_module

    monkeypatch.setattr(doctor, "diagnose", lambda *a, **k: pytest.fail("preflight checks ran on a bad plan"))
    monkeypatch.setattr(run_module, "select_stack", lambda *a: pytest.fail("a stack was selected for a bad plan"))
    assert main(["run", "integration", "--out", str(tmp_path / "r"), "--set", "jobDeadlineSeconds=100"]) == 2
    err = capsys.readouterr().err
    assert "jobDeadlineSeconds" in err and "100 s is shorter than one test's timeout (300 s" in err
    assert not (tmp_path / "r").exists()


def test_missing_pulumi_plugins_fail_the_preflight(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOE_TOOLS_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("FLOE_TOOLS_BIN", str(tmp_path / "bin"))
    checks = {c.name: c for c in doctor.check_tools({})}
    for plugin in doctor.REQUIRED_PLUGINS:
        assert checks[plugin].ok is False
        assert checks[plugin].required is True
        assert "make tools" in checks[plugin].fix


def test_a_missing_uv_fails_the_preflight_and_says_how_to_get_it(monkeypatch, tmp_path):
    """Pulumi's uv toolchain needs `uv` on PATH; a fresh machine had it only in .tools/ (found in a drill)."""
    import floe_build.toolchain as toolchain

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(toolchain, "PRIVATE_UV_DIR", tmp_path / "no-private-uv")
    monkeypatch.setenv("FLOE_TOOLS_BIN", str(tmp_path / "bin"))
    check = doctor.check_uv()
    assert (check.ok, check.required) == (False, True)
    assert "make setup" in check.fix
    checks = {c.name: c for c in doctor.check_tools({})}
    assert checks["uv"].ok is False


def test_an_engine_failure_is_reported_by_its_resource_errors_not_its_traceback():
    from floe_test.run import engine_failure

    output = "\n".join([
        "Diagnostics:",
        "  kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy (x):",
        '    error: resource "x" was not successfully created: spec.variables[0].expression: Invalid value',
        "  pulumi:pulumi:Stack (floe-testinfra-integration):",
        "    error: update failed",
        "    Traceback (most recent call last):",
        "    KeyboardInterrupt",
    ])
    reason = engine_failure(RuntimeError(output))
    assert reason.startswith('RuntimeError: error: resource "x" was not successfully created: spec.variables[0]')
    assert "KeyboardInterrupt" not in reason


def test_a_program_exception_is_reported_by_its_message():
    from floe_test.run import engine_failure

    output = "\n".join([
        "Diagnostics:",
        "  pulumi:pulumi:Stack (floe-testinfra-integration):",
        "    error: Program failed with an unhandled exception:",
        "    Traceback (most recent call last):",
        '      File "/work/main/__main__.py", line 5, in <module>',
        "        run()",
        "    testing.errors.ConfigError: invalid configuration (1 problem):",
        "      - TestJob: test_timeout_seconds: must be at most 100, got 300",
        "Resources:",
    ])
    reason = engine_failure(RuntimeError(output))
    assert reason == ("RuntimeError: error: testing.errors.ConfigError: invalid configuration (1 problem): "
                      "- TestJob: test_timeout_seconds: must be at most 100, got 300")


@pytest.mark.parametrize("local", [True, False], ids=["built-here", "pinned"])
def test_a_missing_node_image_fails_the_preflight_only_when_it_cannot_be_pulled(monkeypatch, local):
    import subprocess

    def fake_run(argv, **_):
        if argv[:2] == ["docker", "info"]:
            return subprocess.CompletedProcess(argv, 0, "8 34359738368\n", "")
        return subprocess.CompletedProcess(argv, 1, "", "No such image")  # docker image inspect

    monkeypatch.setattr(doctor, "docker_running", lambda: None)
    monkeypatch.setattr(doctor, "run", fake_run)
    (check,) = [c for c in doctor.check_docker("integration", "floe-testinfra/node:x", local_node_image=local)
                if c.name == "node image"]
    assert check.ok is False and check.required is local
    assert "floe-testinfra/node:x" in check.detail
    assert ("make node-image" in check.fix) and (("cannot be pulled" in check.detail) is local)


def test_a_host_port_the_kind_config_maps_that_something_holds_fails_the_preflight():
    """Found live: a second cluster of the stack on one host died in `kind create` on port 30080."""
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        config = {
            "name": "floe-integration",
            "nodes": [
                {"extraPortMappings": [{"hostPort": port, "containerPort": 30080, "listenAddress": "127.0.0.1"}]}
            ],
        }
        check = doctor.check_host_ports(config, cluster_running=False)
        assert (check.ok, check.required) == (False, True)
        assert f"127.0.0.1:{port} already in use" in check.detail and "exposePorts=false" in check.fix
        assert doctor.check_host_ports(config, cluster_running=True).ok, "a reused cluster holds its own ports"
    assert doctor.check_host_ports(config, cluster_running=False).ok
