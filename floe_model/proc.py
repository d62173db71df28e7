"""Running external tools (kind, docker, kubectl) with errors that say which tool and how to get it."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from contextlib import suppress
from pathlib import Path

from floe_model.paths import tool_search_path
from testing.errors import InfraError, PrerequisiteError

INSTALL_HINTS = {
    "kind": "run `make tools` (installs the pinned kind into bin/)",
    "kubectl": "run `make tools` (installs the pinned kubectl into bin/)",
    "helm": "run `make tools` (installs the pinned helm into bin/)",
    "pulumi": "run `make tools` (installs the pinned Pulumi CLI into bin/)",
    "docker": "install Docker (Debian: `apt-get install docker.io`) and start it",
}


def find_tool(name: str) -> str:
    path = shutil.which(name, path=tool_search_path())
    if path is None:
        raise PrerequisiteError(f"{name} not found on PATH or in bin/: {INSTALL_HINTS.get(name, 'install it')}")
    return path


def run(
    argv: Sequence[str], *, timeout: float, what: str, input_text: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run a tool with a bound; a failure names ``what`` was attempted and shows the tool's stderr."""
    tool = find_tool(argv[0])
    try:
        proc = subprocess.run(
            [tool, *argv[1:]], input=input_text, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise InfraError(f"{what}: `{' '.join(argv)}` did not finish within {timeout:.0f}s") from None
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise InfraError(f"{what}: `{' '.join(argv)}` exited {proc.returncode}:\n  " + "\n  ".join(detail))
    return proc


def docker_running() -> str | None:
    """``None`` when the Docker engine answers, else the reason it does not."""
    try:
        proc = run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], timeout=20, what="checking Docker", check=False
        )
    except PrerequisiteError as exc:
        return str(exc)
    except InfraError as exc:
        return str(exc)
    if proc.returncode != 0:
        return (
            "the Docker engine is not running (`docker info` failed: "
            f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no answer'}); "
            "start it (`sudo systemctl start docker`, or `dockerd &` where there is no systemd)"
        )
    return None


def child_pids(parent: int) -> list[int]:
    """Direct children of ``parent`` (Linux: /proc; elsewhere `pgrep -P`; none when neither works)."""
    proc = Path("/proc")
    if proc.is_dir():
        children = []
        for stat in proc.glob("[0-9]*/stat"):
            try:
                # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if fields and int(fields[1]) == parent:
                children.append(int(stat.parent.name))
        return sorted(children)
    try:
        out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return sorted(int(x) for x in out.stdout.split())


def signal_quietly(pid: int, signum: int) -> None:
    with suppress(OSError):  # already gone
        os.kill(pid, signum)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid exists (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, someone else's
        return True
    return True
