"""A time bound around one Pulumi engine operation (up, refresh, destroy) run by the Automation API.

The Automation API has no timeout of its own. Past the bound the Pulumi CLI (a child of this
process) is asked to stop the way a terminal Ctrl-C does (SIGINT: finish the operations in flight,
write the state, release the lock); if it is still there after a grace period, it and its plugins
are killed. The engine call then returns or raises as usual and the caller sees :attr:`expired`.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from floe_model.proc import child_pids, signal_quietly

#: After the SIGINT, how long the CLI gets to finish its operations in flight before SIGKILL.
GRACE_SECONDS = 60.0


def is_pulumi_cli(pid: int) -> bool:
    """Whether ``pid`` runs the Pulumi CLI (by its executable's name; False when unknown)."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        try:
            exe = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
        except OSError:
            return False
    return Path(exe).name == "pulumi"


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    queue = [pid]
    while queue:
        for child in child_pids(queue.pop()):
            found.append(child)
            queue.append(child)
    return found


class EngineBound:
    """``with EngineBound("destroy", 900): stack.destroy(...)``: stop Pulumi past 900 s."""

    def __init__(
        self,
        what: str,
        seconds: float,
        *,
        grace: float = GRACE_SECONDS,
        log: Callable[[str], None] = print,
        find_cli: Callable[[], list[int]] | None = None,
        send: Callable[[int, int], None] = signal_quietly,
    ) -> None:
        self.what = what
        self.seconds = seconds
        self.grace = grace
        self.log = log
        self.find_cli = find_cli or (lambda: [p for p in child_pids(os.getpid()) if is_pulumi_cli(p)])
        self.send = send
        self.expired = False
        self.started = 0.0
        self._timers: list[threading.Timer] = []

    def _timer(self, delay: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(delay, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _stop(self) -> None:
        self.expired = True
        clis = self.find_cli()
        self.log(
            f"{self.what} did not finish within its bound of {self.seconds:.0f}s: asking Pulumi to stop "
            f"(SIGINT to pid {', '.join(map(str, clis)) or '-'}; killed after {self.grace:.0f}s more)"
        )
        for pid in clis:
            self.send(pid, signal.SIGINT)
        self._timer(self.grace, self._kill)

    def _kill(self) -> None:
        clis = self.find_cli()
        if not clis:
            return
        self.log(f"{self.what}: Pulumi still running {self.grace:.0f}s after SIGINT: killing it and its plugins")
        for pid in clis:
            for victim in [*descendants(pid), pid]:
                self.send(victim, signal.SIGKILL)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def __enter__(self) -> EngineBound:
        self.started = time.monotonic()
        self._timer(self.seconds, self._stop)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for timer in self._timers:
            timer.cancel()
