"""Process boundary of the air-gapped builds: one place that runs commands, logs them and times them.

Every command's output goes to a log file (never lost, never mixed into the terminal); failures
raise :class:`AirgapError` with the last lines of that log and what to do next.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class AirgapError(RuntimeError):
    """A host-preparation or node-image step failed; the message names the step and the log."""


def cache_root() -> Path:
    """``$FLOE_CACHE`` or ``~/.cache/floe-testinfra``: build outputs live here, never in the repo."""
    return Path(os.environ.get("FLOE_CACHE") or Path.home() / ".cache" / "floe-testinfra")


def log(message: str) -> None:
    print(f"[airgap] {message}", file=sys.stderr, flush=True)


def run_logged(
    argv: Sequence[str],
    *,
    logfile: Path,
    what: str,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 3600,
    nice: bool = False,
    input_text: str | None = None,
) -> float:
    """Run ``argv`` with stdout/stderr appended to ``logfile``; returns seconds taken."""
    logfile.parent.mkdir(parents=True, exist_ok=True)
    full = ["nice", "-n", "10", *argv] if nice else list(argv)
    started = time.monotonic()
    with logfile.open("a") as out:
        out.write(f"\n$ {'(cd ' + str(cwd) + ' && ' if cwd else ''}{' '.join(full)}{')' if cwd else ''}\n")
        out.flush()
        try:
            proc = subprocess.run(
                full,
                cwd=cwd,
                env=None if env is None else dict(env),
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
                text=True,
                input=input_text,
                stdin=None if input_text is not None else subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            raise AirgapError(f"{what}: still running after {timeout:.0f}s (bound); see {logfile}") from exc
        except FileNotFoundError as exc:
            raise AirgapError(f"{what}: {exc.filename} is not installed") from exc
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        tail = logfile.read_text(errors="replace").splitlines()[-15:]
        raise AirgapError(
            f"{what} failed (exit {proc.returncode}) after {seconds:.0f}s; last lines of "
            f"{logfile}:\n    " + "\n    ".join(tail)
        )
    return seconds


def capture(
    argv: Sequence[str], *, cwd: Path | None = None, timeout: float = 120, env: Mapping[str, str] | None = None
) -> str:
    """Run ``argv`` and return its stdout; a failure raises :class:`AirgapError` with its stderr."""
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else dict(env),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AirgapError(f"`{' '.join(argv)}` could not run: {exc}") from exc
    if proc.returncode != 0:
        raise AirgapError(f"`{' '.join(argv)}` failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc.stdout
