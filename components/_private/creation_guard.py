"""A kind cluster this process set out to create is gone again if the creation does not complete.

``kind create cluster`` deletes what it made when *it* fails, but not when it is killed: SIGTERM to
the process group of a run (CI cancelling, ``timeout``, a closed terminal) left a running 3-node
cluster that no Pulumi state knew of. Around the creation (``kind create`` and the wait for Ready
nodes) SIGINT, SIGTERM and SIGHUP are turned into an exception; on that, or on any failure (the
result cannot be handed to Pulumi, so nothing else would ever delete it), the cluster is deleted
before the process exits. The deletion runs in its own session, so a second signal to the group
cannot cut it short; it is bounded. The death of the parent (the engine's plugin) counts as an
interrupt: nothing could ever receive the result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

from testing.errors import InfraError

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
#: Bound of the deletion of a half-created cluster.
DELETE_TIMEOUT_SECONDS = 180


class CreationInterrupted(InfraError):
    """A signal arrived while the cluster was being created."""


def _log(message: str) -> None:
    print(f"[kind-cluster] {message}", file=sys.stderr, flush=True)


def delete_detached(name: str, *, timeout: float = DELETE_TIMEOUT_SECONDS, log: Callable[[str], None] = _log) -> bool:
    """``kind delete cluster --name NAME`` in a new session (immune to signals sent to our group)."""
    from floe_model.proc import find_tool

    log(f"deleting the cluster this run was creating: kind delete cluster --name {name} (≤ {timeout:.0f}s)")
    try:
        proc = subprocess.run(
            [find_tool("kind"), "delete", "cluster", "--name", name],
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired, InfraError) as exc:
        log(f"could not delete kind cluster {name} ({exc}); delete it by hand: kind delete cluster --name {name}")
        return False
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        log(f"kind delete cluster --name {name} exited {proc.returncode}: {' | '.join(tail)}")
        return False
    log(f"kind cluster {name} deleted")
    return True


class _ParentWatch(threading.Thread):
    """Interrupts this process (SIGTERM to itself) when its parent dies: the engine that asked for the
    cluster is gone (e.g. a signal to the run's process group killed the Pulumi CLI, whose plugins
    run in process groups of their own and never saw it), so the result can never be used.

    Polls the parent id rather than PR_SET_PDEATHSIG, which fires when the parent's forking *thread*
    exits: with a Go parent (the command provider) that can happen while the parent lives on.
    """

    def __init__(self, interval: float = 1.0) -> None:
        super().__init__(name="parent-watch", daemon=True)
        self.parent = os.getppid()
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            if os.getppid() != self.parent:
                _log(f"the process that started this creation (pid {self.parent}) is gone")
                os.kill(os.getpid(), signal.SIGTERM)
                return

    def stop(self) -> None:
        self.stopped.set()


@contextmanager
def deleted_unless_created(
    name: str,
    *,
    existed: bool,
    delete: Callable[[str], Any] = delete_detached,
    log: Callable[[str], None] = _log,
) -> Iterator[None]:
    """Run a cluster creation; if it does not complete, delete the cluster (unless it ``existed`` before)."""
    previous: dict[int, Any] = {}

    def interrupted(signum: int, frame: FrameType | None) -> None:
        for sig in SIGNALS:  # a second signal must not interrupt the clean-up
            signal.signal(sig, signal.SIG_IGN)
        raise CreationInterrupted(f"{signal.Signals(signum).name} while creating kind cluster {name}")

    for each in SIGNALS:
        previous[each] = signal.signal(each, interrupted)
    watch = _ParentWatch()
    watch.start()
    try:
        yield
    except BaseException as exc:
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        if not existed:
            log(f"creating kind cluster {name} did not complete ({exc}): nothing may be left behind")
            delete(name)
        if isinstance(exc, CreationInterrupted):
            raise CreationInterrupted(f"{exc}; the partial cluster was deleted" if not existed else str(exc)) from None
        raise
    finally:
        watch.stop()
        for number, handler in previous.items():
            signal.signal(number, handler)
