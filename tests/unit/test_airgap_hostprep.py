"""Host preparation (floe_build.hostprep): what is detected decides what is done.

The decisions are tested as tables; the whole preparation runs against a fake host whose commands are
answered at the process boundary (``Host.run``) and whose files live under ``tmp_path``.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from floe_build import AirgapError
from floe_build.hostprep import (
    DAEMON_JSON,
    WRAPPER_NAME,
    WRAPPER_PATH,
    WRAPPER_TEMPLATE,
    Host,
    HostPrep,
    classify_privileged,
    daemon_json_with_runtime,
    inotify_raises,
    missing_capabilities,
    packages_to_install,
    render_wrapper,
)

CAPS_FAILURE = (
    "docker: Error response from daemon: failed to create shim task: OCI runtime create failed: "
    "runc create failed: unable to start container process: unable to apply caps: operation not "
    "permitted: unknown."
)
FULL_BOUNDING = "000001ffffffffff"
NO_SYS_RESOURCE = "000001fffeffffff"


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"dockerd": True, "jq": True}, []),
        ({"dockerd": False, "jq": True}, ["docker.io"]),
        ({"dockerd": True, "jq": False}, ["jq"]),
        ({}, ["docker.io", "jq"]),
    ],
    ids=["nothing-missing", "no-dockerd", "no-jq", "both-missing"],
)
def test_packages_are_installed_only_for_missing_commands(present: dict[str, bool], expected: list[str]) -> None:
    assert packages_to_install(present) == expected


@pytest.mark.parametrize(
    ("rc", "output", "expected"),
    [
        (0, "", "ok"),
        (125, CAPS_FAILURE, "caps"),
        (125, "docker: Error response from daemon: No such image: x", "other"),
    ],
    ids=["works", "missing-capability", "unrelated-failure"],
)
def test_privileged_run_failures_are_classified(rc: int, output: str, expected: str) -> None:
    assert classify_privileged(rc, output) == expected


@pytest.mark.parametrize(
    ("capbnd", "last_cap", "expected"),
    [
        (FULL_BOUNDING, 40, []),
        (NO_SYS_RESOURCE, 40, ["CAP_SYS_RESOURCE"]),
        ("000000fffeffffff", 40, ["CAP_SYS_RESOURCE", "CAP_CHECKPOINT_RESTORE"]),
        ("0000003fffffffff", 37, []),
    ],
    ids=["full-set", "this-vm", "two-missing", "older-kernel-knows-fewer"],
)
def test_missing_capabilities_are_read_from_the_bounding_set(capbnd: str, last_cap: int, expected: list[str]) -> None:
    assert missing_capabilities(capbnd, last_cap) == expected


def test_daemon_json_keeps_existing_settings_and_sets_the_wrapper_as_default() -> None:
    updated = daemon_json_with_runtime(
        {"log-driver": "json-file", "runtimes": {"other": {"path": "/x"}}}, "/usr/local/bin/w"
    )
    assert updated == {
        "log-driver": "json-file",
        "default-runtime": WRAPPER_NAME,
        "runtimes": {"other": {"path": "/x"}, WRAPPER_NAME: {"path": "/usr/local/bin/w"}},
    }


def test_daemon_json_already_configured_is_left_alone() -> None:
    current = {"runtimes": {WRAPPER_NAME: {"path": "/w"}}, "default-runtime": WRAPPER_NAME}
    assert daemon_json_with_runtime(current, "/w") is None


@pytest.mark.parametrize(
    ("current", "expected"),
    [
        (
            {"fs.inotify.max_user_instances": 128, "fs.inotify.max_user_watches": 192536},
            {"fs.inotify.max_user_instances": 512, "fs.inotify.max_user_watches": 524288},
        ),
        ({"fs.inotify.max_user_instances": 8192, "fs.inotify.max_user_watches": 1048576}, {}),
    ],
    ids=["low", "already-high"],
)
def test_inotify_limits_are_raised_only_when_low(current: dict[str, int], expected: dict[str, int]) -> None:
    assert inotify_raises(current) == expected


def test_the_wrapper_drops_the_detected_capabilities_and_runs_the_real_runc() -> None:
    text = render_wrapper(WRAPPER_TEMPLATE.read_text(), ["CAP_SYS_RESOURCE", "CAP_BPF"], "/usr/sbin/runc")
    assert "DROP='CAP_SYS_RESOURCE CAP_BPF'" in text
    assert "REAL_RUNC='/usr/sbin/runc'" in text
    assert "@" not in text.replace("$@", "")


class FakeHost:
    """A host answered at the process boundary; records every command that changes something."""

    def __init__(
        self,
        root: Path,
        *,
        installed: set[str],
        daemon: bool,
        privileged: str,
        capbnd: str = NO_SYS_RESOURCE,
        inotify: tuple[int, int] = (128, 192536),
    ) -> None:
        self.installed, self.daemon, self.privileged = set(installed), daemon, privileged
        self.probe_image = False
        self.commands: list[list[str]] = []
        self.root = root
        files = {
            "proc/self/status": f"Name:\tpython\nCapBnd:\t{capbnd}\n",
            "proc/sys/kernel/cap_last_cap": "40\n",
            "proc/sys/fs/inotify/max_user_instances": f"{inotify[0]}\n",
            "proc/sys/fs/inotify/max_user_watches": f"{inotify[1]}\n",
            "var/run/docker.pid": "4242\n",
        }
        for rel, text in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)

    def which(self, name: str) -> str | None:
        always = {"docker", "apt-get", "runc", "go", "sysctl", "pgrep", "kill"}
        if name in always or name in self.installed:
            return f"/usr/bin/{name}"
        return None

    def default_runtime(self) -> str:
        config = self.root / DAEMON_JSON.relative_to("/")
        return json.loads(config.read_text()).get("default-runtime", "runc") if config.exists() else "runc"

    def run(self, argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        argv = list(argv)

        def done(rc: int = 0, out: str = "", err: str = "") -> subprocess.CompletedProcess[str]:
            return subprocess.CompletedProcess(argv, rc, out, err)

        if argv[:2] == ["docker", "info"]:
            if not self.daemon:
                return done(1, err="Cannot connect to the Docker daemon")
            return done(out=self.default_runtime() if "DefaultRuntime" in argv[-1] else "20.10.24")
        if argv[:3] == ["docker", "image", "inspect"]:
            return done(0 if self.probe_image else 1)
        if argv[:2] == ["docker", "run"]:
            if self.privileged == "caps" and self.default_runtime() != WRAPPER_NAME:
                return done(125, err=CAPS_FAILURE)
            return done(125, err="docker: unexpected failure") if self.privileged == "other" else done()
        if argv[0] == "pgrep":
            return done(1)
        self.commands.append(argv)
        if "apt-get" in argv and "install" in argv:
            self.installed |= {"dockerd" if p == "docker.io" else p for p in argv[argv.index("install") + 1 :]}
        elif argv[:2] == ["docker", "import"]:
            self.probe_image = True
        return done()

    def start(self) -> int:
        self.commands.append(["dockerd"])
        self.daemon = True
        return 4242


def prep(fake: FakeHost) -> HostPrep:
    host = Host(run=fake.run, which=fake.which, root=fake.root, sleep=lambda _s: None, start_daemon=fake.start)
    return HostPrep(host=host, daemon_timeout=5)


@pytest.fixture(autouse=True)
def static_true(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache" / "host-prep"
    cache.mkdir(parents=True)
    (cache / "true").write_bytes(b"\x7fELF")
    monkeypatch.setenv("FLOE_CACHE", str(tmp_path / "cache"))


def test_a_bare_host_gets_packages_daemon_wrapper_and_inotify(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path, installed=set(), daemon=False, privileged="caps")
    report = prep(fake).all()
    assert len(report.done) == 4 and not report.skipped
    assert ["dockerd"] in fake.commands
    assert ["kill", "-HUP", "4242"] in fake.commands
    wrapper = (tmp_path / WRAPPER_PATH.relative_to("/")).read_text()
    assert "DROP='CAP_SYS_RESOURCE'" in wrapper
    assert fake.default_runtime() == WRAPPER_NAME


def test_a_prepared_host_changes_nothing(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path, installed={"dockerd", "jq"}, daemon=True, privileged="ok", inotify=(512, 524288))
    report = prep(fake).all()
    assert not report.done and len(report.skipped) == 4
    assert [c for c in fake.commands if c[:2] != ["docker", "import"]] == []


def test_the_wrapper_is_not_installed_where_privileged_containers_work(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path, installed={"dockerd", "jq"}, daemon=True, privileged="ok", capbnd=FULL_BOUNDING)
    prep(fake).runtime()
    assert not (tmp_path / WRAPPER_PATH.relative_to("/")).exists()
    assert not (tmp_path / DAEMON_JSON.relative_to("/")).exists()


def test_an_unrelated_privileged_failure_is_reported_not_papered_over(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path, installed={"dockerd", "jq"}, daemon=True, privileged="other")
    with pytest.raises(AirgapError, match="not for a missing capability"):
        prep(fake).runtime()
    assert not (tmp_path / DAEMON_JSON.relative_to("/")).exists()


def test_a_caps_failure_with_a_full_bounding_set_is_reported(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path, installed={"dockerd", "jq"}, daemon=True, privileged="caps", capbnd=FULL_BOUNDING)
    with pytest.raises(AirgapError, match="lacks nothing"):
        prep(fake).runtime()


def test_existing_daemon_settings_survive_the_wrapper_install(tmp_path: Path) -> None:
    config = tmp_path / DAEMON_JSON.relative_to("/")
    config.parent.mkdir(parents=True)
    config.write_text(json.dumps({"log-level": "warn"}))
    fake = FakeHost(tmp_path, installed={"dockerd", "jq"}, daemon=True, privileged="caps")
    prep(fake).runtime()
    assert json.loads(config.read_text())["log-level"] == "warn"


def test_a_daemon_that_never_answers_fails_with_its_log(tmp_path: Path) -> None:
    fake = FakeHost(tmp_path, installed={"dockerd", "jq"}, daemon=False, privileged="ok")
    prepper = prep(fake)
    prepper.host.start_daemon = lambda: 1
    prepper.daemon_timeout = 0
    with pytest.raises(AirgapError, match="did not answer"):
        prepper.daemon()
