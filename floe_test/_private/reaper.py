"""No process of a run outlives it: orphans come back to ``floe-test`` and are ended at its end.

Found by a live drill: SIGHUP to a run's process group killed the Pulumi CLI, and its language host,
started in a process group of its own (so the signal missed it), was left running forever, orphaned.
On Linux ``floe-test run`` makes itself a *child subreaper* (``prctl(PR_SET_CHILD_SUBREAPER)``):
processes orphaned below it are re-parented to it instead of to init. When the run is done, what is
still below it gets a bounded chance to finish (a cluster deletion in flight), then Pulumi's own
processes (CLI, plugins: they hold nothing once the engine has finished) are ended, and every one
is reaped. Elsewhere this does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from floe_model.proc import child_pids, process_alive, signal_quietly
from testing.polling import Check, wait_for_condition

PR_SET_CHILD_SUBREAPER = 36
#: How long leftovers may take to finish on their own (a `kind delete cluster` in flight).
SETTLE_SECONDS = 120.0


def become_subreaper() -> bool:
    """Adopt this process's orphaned descendants (Linux); False where the kernel offers no such thing."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _name(pid: int) -> str:
    try:
        return Path(os.readlink(f"/proc/{pid}/exe")).name
    except OSError:
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return "?"


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in child_pids(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


def reap_zombies() -> None:
    """Collect the exit status of finished children (orphans adopted as subreaper included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def end_leftovers(
    *,
    settle: float = SETTLE_SECONDS,
    log: Callable[[str], None] = print,
    is_engine: Callable[[int], bool] | None = None,
) -> list[str]:
    """End what is still running below this process after a run; return what was ended.

    The engine is done, so its processes still there (CLI, plugins) are orphans: they are asked to
    end first. What they had started then sees its parent gone and cleans up after itself (a cluster
    creation deletes its cluster: components/_private/creation_guard.py), for at most ``settle``
    seconds; whatever is left after that is killed.
    """
    me = os.getpid()
    engine = is_engine or (lambda pid: _name(pid).startswith("pulumi"))
    reap_zombies()
    ended = [pid for pid in descendants(me) if engine(pid)]
    if ended:
        log(f"ending engine processes this run left behind: {', '.join(f'{p} ({_name(p)})' for p in ended)}")
        for pid in ended:
            signal_quietly(pid, signal.SIGTERM)

    def settled() -> Check[list[str]]:
        reap_zombies()
        alive = [p for p in descendants(me) if process_alive(p)]
        return Check(not alive, [f"{p} ({_name(p)})" for p in alive])

    try:
        wait_for_condition(
            settled,
            timeout=settle,
            interval=1,
            description="the processes this run started to finish (e.g. deleting a cluster whose creation was cut)",
        )
    except Exception as exc:
        stragglers = descendants(me)
        log(f"killing what is still running: {exc}")
        for pid in stragglers:
            signal_quietly(pid, signal.SIGKILL)
        ended += stragglers
    reap_zombies()
    return [f"{pid}" for pid in ended]
