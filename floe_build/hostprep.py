"""Host preparation for Kind on machines like ours: only what is detected missing, idempotently.

Steps, each probed first and skipped with a one-line reason when not needed:

1. packages   ``docker.io`` when ``dockerd`` is absent, ``jq`` when absent (apt-get; Debian/Ubuntu).
2. dockerd    started in the background (logs: ``/var/log/floe-dockerd.log``) when ``docker info``
              cannot reach a daemon and no init system manages one.
3. runtime    ``docker run --privileged`` (what kind does) is probed with a tiny local image. Only when
              it fails with runc's "unable to apply caps" *and* the kernel's capability bounding set
              lacks capabilities, our wrapper (``floe_build/images/host/runc-dropcaps.in``) is installed as
              Docker's default runtime (``/etc/docker/daemon.json`` + SIGHUP), then the probe re-runs.
4. inotify    ``fs.inotify.max_user_instances``/``max_user_watches`` raised to kind's recommendation
              when lower (also written to ``/etc/sysctl.d/``).

The decisions are pure functions over probe results (unit-tested); :class:`Host` is the process
boundary (tests replace its ``run``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from floe_build._run import AirgapError, log
from floe_build.recipes import IMAGES_DIR

#: Linux capability numbers (include/uapi/linux/capability.h).
CAPABILITIES = (
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
)
#: kind's known-issues recommendation for multi-node clusters.
INOTIFY_MINIMUMS = {"fs.inotify.max_user_instances": 512, "fs.inotify.max_user_watches": 524288}
WRAPPER_NAME = "floe-runc-dropcaps"
WRAPPER_PATH = Path("/usr/local/bin") / WRAPPER_NAME
WRAPPER_TEMPLATE = IMAGES_DIR / "host" / "runc-dropcaps.in"
DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKERD_LOG = Path("/var/log/floe-dockerd.log")
SYSCTL_FILE = Path("/etc/sysctl.d/99-floe-testinfra.conf")
PROBE_IMAGE = "floe-testinfra/probe:true"
CAPS_ERROR = "unable to apply caps"

PrivilegedResult = Literal["ok", "caps", "other"]


# ------------------------------------------------------------------------------------------- decisions
def packages_to_install(present: Mapping[str, bool]) -> list[str]:
    """Debian packages for the missing commands: ``dockerd`` -> docker.io, ``jq`` -> jq."""
    wanted = {"dockerd": "docker.io", "jq": "jq"}
    return [package for command, package in wanted.items() if not present.get(command, False)]


def classify_privileged(returncode: int, output: str) -> PrivilegedResult:
    """The result of ``docker run --privileged``: works, the missing-capability failure, or another one."""
    if returncode == 0:
        return "ok"
    return "caps" if CAPS_ERROR in output else "other"


def missing_capabilities(cap_bounding_hex: str, last_cap: int) -> list[str]:
    """Capabilities the kernel knows (``0..last_cap``) that the bounding set (``CapBnd``) lacks."""
    bits = int(cap_bounding_hex, 16)
    return [CAPABILITIES[n] if n < len(CAPABILITIES) else f"CAP_{n}" for n in range(last_cap + 1) if not bits >> n & 1]


def daemon_json_with_runtime(current: Mapping[str, object], path: str) -> dict[str, object] | None:
    """``daemon.json`` with our wrapper as the default runtime, or None when it already is."""
    runtimes = dict(current.get("runtimes") or {})  # type: ignore[call-overload]
    if current.get("default-runtime") == WRAPPER_NAME and (runtimes.get(WRAPPER_NAME) or {}).get("path") == path:
        return None
    runtimes[WRAPPER_NAME] = {"path": path}
    return {**current, "runtimes": runtimes, "default-runtime": WRAPPER_NAME}


def inotify_raises(current: Mapping[str, int]) -> dict[str, int]:
    """The inotify sysctls below kind's recommendation, with the value to set."""
    return {key: minimum for key, minimum in INOTIFY_MINIMUMS.items() if current.get(key, 0) < minimum}


def render_wrapper(template: str, drop: Sequence[str], real_runc: str) -> str:
    return template.replace("@DROP@", " ".join(drop)).replace("@RUNC@", real_runc)


# ------------------------------------------------------------------------------------------- the host
Runner = Callable[[Sequence[str], float], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        return subprocess.CompletedProcess(list(argv), 127, "", f"{argv[0]}: not found")
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(list(argv), 124, "", f"{argv[0]}: timed out after {timeout:.0f}s")


@dataclass
class Host:
    """Everything host preparation reads or changes, through ``run`` (argv, timeout) and plain files."""

    run: Runner = _run
    which: Callable[[str], str | None] = shutil.which
    root: Path = Path("/")
    sleep: Callable[[float], None] = time.sleep
    start_daemon: Callable[[], int] | None = None

    def path(self, absolute: Path) -> Path:
        return self.root / absolute.relative_to("/")

    def read(self, absolute: Path) -> str | None:
        try:
            return self.path(absolute).read_text()
        except OSError:
            return None

    def write(self, absolute: Path, text: str, mode: int = 0o644) -> None:
        target = self.path(absolute)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.floe")
        tmp.write_text(text)
        tmp.chmod(mode)
        tmp.replace(target)


@dataclass
class Report:
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def did(self, message: str) -> None:
        self.done.append(message)
        log(f"done:    {message}")

    def skip(self, message: str) -> None:
        self.skipped.append(message)
        log(f"ok:      {message}")


@dataclass
class HostPrep:
    host: Host = field(default_factory=Host)
    daemon_timeout: float = 60.0
    report: Report = field(default_factory=Report)

    # -- step 1
    def packages(self) -> None:
        present = {cmd: self.host.which(cmd) is not None for cmd in ("dockerd", "jq")}
        missing = packages_to_install(present)
        if not missing:
            self.report.skip("dockerd and jq are installed")
            return
        if self.host.which("apt-get") is None:
            raise AirgapError(
                f"needs {', '.join(missing)} but this host has no apt-get: install them with "
                "the system's package manager, then re-run `make host-prep`"
            )
        log(f"installing {' '.join(missing)} with apt-get (≤ 15m0s)")
        env_argv = [
            "env",
            "DEBIAN_FRONTEND=noninteractive",
            "apt-get",
            "install",
            "-y",
            "--no-install-recommends",
            *missing,
        ]
        result = self.host.run(env_argv, 900)
        if result.returncode != 0:
            update = self.host.run(["apt-get", "update"], 600)  # stale lists are the usual cause
            result = self.host.run(env_argv, 900) if update.returncode == 0 else result
        if result.returncode != 0:
            raise AirgapError(
                f"apt-get install {' '.join(missing)} failed (exit {result.returncode}): "
                f"{(result.stderr or result.stdout).strip()[-1500:]}"
            )
        self.report.did(f"installed {' '.join(missing)}")

    # -- step 2
    def daemon_reachable(self) -> bool:
        return self.host.run(["docker", "info", "--format", "{{.ServerVersion}}"], 30).returncode == 0

    def daemon(self) -> None:
        if self.daemon_reachable():
            self.report.skip("the Docker daemon is running")
            return
        if self.host.which("docker") is None:
            raise AirgapError("the docker CLI is not on PATH although dockerd is installed; install docker.io")
        if self.host.run(["pgrep", "-x", "dockerd"], 10).returncode == 0:
            raise AirgapError(
                "dockerd is running but `docker info` cannot reach it: check DOCKER_HOST and "
                f"its log ({DOCKERD_LOG} if this project started it)"
            )
        # An init system that manages docker is the right owner of the daemon; start it there.
        if self.host.which("systemctl") and self.host.run(["systemctl", "is-system-running"], 10).stdout.strip() in (
            "running",
            "degraded",
            "starting",
        ):
            log("starting dockerd with systemctl")
            self.host.run(["systemctl", "start", "docker"], 120)
        else:
            log(f"no init system: starting dockerd in the background, log {DOCKERD_LOG}")
            (self.host.start_daemon or _start_dockerd)()
        deadline = time.monotonic() + self.daemon_timeout
        log(f"waiting ≤ {self.daemon_timeout:.0f}s for the Docker daemon to answer")
        while not self.daemon_reachable():
            if time.monotonic() > deadline:
                raise AirgapError(f"dockerd did not answer within {self.daemon_timeout:.0f}s; see {DOCKERD_LOG}")
            self.host.sleep(1)
        self.report.did("started the Docker daemon")

    # -- step 3
    def probe_privileged(self) -> tuple[PrivilegedResult, str]:
        if self.host.run(["docker", "image", "inspect", PROBE_IMAGE], 30).returncode != 0:
            self._build_probe_image()
        result = self.host.run(["docker", "run", "--rm", "--privileged", PROBE_IMAGE, "/true"], 120)
        output = (result.stderr + result.stdout).strip()
        return classify_privileged(result.returncode, output), output

    def _build_probe_image(self) -> None:
        """A local one-binary image (nothing can be pulled): a static ``true`` built by Go, else the host's."""
        true = self._static_true()
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / "probe.tar"
            with tarfile.open(archive, "w") as tar:
                tar.add(true, arcname="true")
            result = self.host.run(["docker", "import", "--change", 'CMD ["/true"]', str(archive), PROBE_IMAGE], 120)
        if result.returncode != 0:
            raise AirgapError(f"could not create the probe image {PROBE_IMAGE}: {result.stderr.strip()}")

    def _static_true(self) -> Path:
        cache = Path(os.environ.get("FLOE_CACHE") or Path.home() / ".cache" / "floe-testinfra") / "host-prep"
        binary = cache / "true"
        if binary.is_file():
            return binary
        cache.mkdir(parents=True, exist_ok=True)
        src = cache / "true.go"
        src.write_text("package main\n\nfunc main() {}\n")
        go = self.host.which("go")
        if go is None:
            raise AirgapError(
                "the privileged-run probe needs a static binary: install Go (go build) or "
                f"put a static `true` at {binary}"
            )
        result = self.host.run(
            ["env", "CGO_ENABLED=0", "GOFLAGS=", "GO111MODULE=off", go, "build", "-o", str(binary), str(src)], 300
        )
        if result.returncode != 0:
            raise AirgapError(f"building the probe binary failed: {result.stderr.strip()}")
        return binary

    def runtime(self) -> None:
        verdict, output = self.probe_privileged()
        if verdict == "ok":
            default = self.host.run(["docker", "info", "--format", "{{.DefaultRuntime}}"], 30).stdout.strip()
            self.report.skip(
                "`docker run --privileged` works"
                + (
                    f" (with {WRAPPER_NAME} as default runtime, installed earlier)"
                    if default == WRAPPER_NAME
                    else " (no runtime wrapper needed)"
                )
            )
            return
        if verdict == "other":
            raise AirgapError(
                f"`docker run --privileged` fails, and not for a missing capability:\n    {output}\n"
                "  Fix Docker on this host first (see its log)."
            )
        status = self.host.read(Path("/proc/self/status")) or ""
        capbnd = next((line.split()[1] for line in status.splitlines() if line.startswith("CapBnd:")), None)
        last_cap = int((self.host.read(Path("/proc/sys/kernel/cap_last_cap")) or "40").strip())
        drop = missing_capabilities(capbnd, last_cap) if capbnd else []
        if not drop:
            raise AirgapError(
                f"`docker run --privileged` fails with '{CAPS_ERROR}' but the capability bounding "
                f"set lacks nothing; the wrapper would not help:\n    {output}"
            )
        real_runc = self.host.which("runc")
        if real_runc is None:
            raise AirgapError("runc is not on PATH; install the runc package (docker.io depends on it)")
        if self.host.which("jq") is None:
            raise AirgapError("the runtime wrapper needs jq: apt-get install jq")
        log(
            f"`docker run --privileged` fails ({CAPS_ERROR}); the bounding set lacks {', '.join(drop)}: "
            f"installing {WRAPPER_PATH} as Docker's default runtime"
        )
        self.host.write(WRAPPER_PATH, render_wrapper(WRAPPER_TEMPLATE.read_text(), drop, real_runc), 0o755)
        current = json.loads(self.host.read(DAEMON_JSON) or "{}")
        updated = daemon_json_with_runtime(current, str(WRAPPER_PATH))
        if updated is not None:
            self.host.write(DAEMON_JSON, json.dumps(updated, indent=2) + "\n")
        self._reload_daemon()
        verdict, output = self.probe_privileged()
        if verdict != "ok":
            raise AirgapError(
                f"`docker run --privileged` still fails with {WRAPPER_NAME} as the default runtime:"
                f"\n    {output}\n  See {DOCKERD_LOG} and {DAEMON_JSON}."
            )
        self.report.did(f"registered {WRAPPER_NAME} (drops {', '.join(drop)}) as Docker's default runtime")

    def _reload_daemon(self) -> None:
        pid_text = self.host.read(Path("/var/run/docker.pid"))
        if not pid_text:
            raise AirgapError(
                "cannot find dockerd's pid (/var/run/docker.pid) to reload daemon.json; restart "
                "dockerd yourself, then re-run"
            )
        self.host.run(["kill", "-HUP", pid_text.strip()], 10)
        deadline = time.monotonic() + 30
        while self.host.run(["docker", "info", "--format", "{{.DefaultRuntime}}"], 30).stdout.strip() != WRAPPER_NAME:
            if time.monotonic() > deadline:
                raise AirgapError(
                    f"dockerd did not take {WRAPPER_NAME} as default runtime after SIGHUP; "
                    f"check {DAEMON_JSON} and {DOCKERD_LOG}"
                )
            self.host.sleep(1)

    # -- step 4
    def inotify(self) -> None:
        current = {}
        for key in INOTIFY_MINIMUMS:
            text = self.host.read(Path("/proc/sys") / key.replace(".", "/"))
            current[key] = int(text.strip()) if text and text.strip().isdigit() else 0
        raises = inotify_raises(current)
        if not raises:
            self.report.skip("inotify limits are high enough for multi-node clusters")
            return
        for key, value in raises.items():
            result = self.host.run(["sysctl", "-w", f"{key}={value}"], 10)
            if result.returncode != 0:
                raise AirgapError(f"sysctl -w {key}={value} failed: {result.stderr.strip()} (needs root)")
        self.host.write(
            SYSCTL_FILE,
            "# floe-testinfra: kind multi-node clusters (make host-prep)\n"
            + "".join(f"{k} = {v}\n" for k, v in INOTIFY_MINIMUMS.items()),
        )
        self.report.did("raised " + ", ".join(f"{k} {current[k]} -> {v}" for k, v in raises.items()))

    def all(self) -> Report:
        for step in (self.packages, self.daemon, self.runtime, self.inotify):
            step()
        return self.report


def _start_dockerd() -> int:
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    with DOCKERD_LOG.open("a") as out:
        out.write(
            f"\n--- started by floe-testinfra host-prep at {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
        )
        out.flush()
        proc = subprocess.Popen(
            ["dockerd"], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    return proc.pid


def main() -> int:
    if os.geteuid() != 0:
        log("host preparation changes system settings: run it as root (sudo make host-prep)")
        return 2
    started = time.monotonic()
    try:
        report = HostPrep().all()
    except AirgapError as exc:
        log(f"FAILED: {exc}")
        return 1
    log(
        f"host ready in {time.monotonic() - started:.0f}s: {len(report.done)} change(s), "
        f"{len(report.skipped)} already fine"
    )
    return 0
