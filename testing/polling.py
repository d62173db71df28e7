"""The project's one waiting primitive.

Every wait in floe-testinfra (nodes Ready, a Helm release, a pod, a service endpoint, a Job) goes
through :func:`wait_for_condition`: a monotonic deadline, a success check and an optional failure
check that ends the wait at once (a Job ``Failed``, a pod in ``CrashLoopBackOff``), and an error
that names what it waited for, how long, and the last state it saw.

Written here rather than taken from ``tenacity``/``backoff``: those retry on exceptions, while a
wait here must carry the *state* it saw between polls into its error and stop early on a failure
condition, which neither models.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from testing.errors import WaitFailed, WaitTimeout

__all__ = ["Check", "Clock", "Progress", "wait_for_condition"]

T = TypeVar("T")

#: Waits longer than this show progress (a live line on a terminal, plain lines otherwise).
PROGRESS_AFTER_SECONDS = 5.0
#: When not on a terminal, one plain progress line per this many seconds.
PLAIN_PROGRESS_EVERY_SECONDS = 30.0


@dataclass(frozen=True)
class Check(Generic[T]):
    """What a check returns: whether the condition holds, and the state seen (for messages)."""

    ok: bool
    state: T


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class _SystemClock:
    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK: Clock = _SystemClock()


class Progress:
    """Reports a long wait: what, how long so far, and the bound.

    On a terminal it keeps one live line (rich); elsewhere (CI logs) it prints a plain line every
    ``PLAIN_PROGRESS_EVERY_SECONDS`` so nothing waits silently.
    """

    def __init__(self, description: str, timeout: float, *, stream: object | None = None) -> None:
        self.description = description
        self.timeout = timeout
        self._stream = stream if stream is not None else sys.stderr
        self._is_tty = bool(getattr(self._stream, "isatty", lambda: False)())
        self._started = False
        self._last_plain = 0.0
        self._status: object | None = None

    def update(self, elapsed: float, state: object) -> None:
        if elapsed < PROGRESS_AFTER_SECONDS:
            return
        line = f"Waiting ≤ {_fmt(self.timeout)} for {self.description}: {_fmt(elapsed)} so far; {state}"
        if self._is_tty:
            self._update_live(line)
        elif not self._started or elapsed - self._last_plain >= PLAIN_PROGRESS_EVERY_SECONDS:
            print(line, file=self._stream, flush=True)  # type: ignore[arg-type]
            self._last_plain = elapsed
        self._started = True

    def _update_live(self, line: str) -> None:
        from rich.console import Console

        if self._status is None:
            console = Console(file=self._stream)  # type: ignore[arg-type]
            self._status = console.status(line)
            self._status.start()
        else:
            self._status.update(line)  # type: ignore[attr-defined]

    def close(self, elapsed: float, outcome: str) -> None:
        if self._status is not None:
            self._status.stop()  # type: ignore[attr-defined]
        if self._started:
            print(f"{outcome} after {_fmt(elapsed)}: {self.description}", file=self._stream, flush=True)  # type: ignore[arg-type]


def _fmt(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs}s" if minutes else f"{seconds:.1f}s"


def wait_for_condition(
    check: Callable[[], Check[T] | bool],
    *,
    timeout: float,
    interval: float = 1.0,
    description: str,
    fail_if: Callable[[T | None], str | None] | None = None,
    hint: str = "",
    clock: Clock = SYSTEM_CLOCK,
    progress: Progress | None = None,
) -> T | None:
    """Poll ``check`` until it holds; return the state it last returned.

    ``check`` returns a :class:`Check` (or a bare bool). An exception from ``check`` counts as "not
    yet" and its text becomes the last state seen; ``fail_if`` receives each state and returns a
    reason to stop at once (raises :class:`WaitFailed`) or ``None``. The wait is bounded by
    ``timeout`` seconds on a monotonic clock; running out raises :class:`WaitTimeout` naming
    ``description``, the elapsed time, the last state and ``hint`` (what to do next).
    """
    if timeout <= 0:
        raise ValueError(f"timeout must be positive (got {timeout}); infinite waits are not allowed")
    if interval <= 0:
        raise ValueError(f"interval must be positive (got {interval})")
    reporter = progress if progress is not None else Progress(description, timeout)
    start = clock.monotonic()
    deadline = start + timeout
    last_state: object = "not checked yet"
    while True:
        state: T | None = None
        try:
            result = check()
            if isinstance(result, Check):
                ok, state = result.ok, result.state
                last_state = state
            else:
                ok = bool(result)
                last_state = "condition true" if ok else "condition false"
        except Exception as exc:  # a failing probe is a state, not the end of the wait
            ok = False
            last_state = f"{type(exc).__name__}: {exc}"
        now = clock.monotonic()
        elapsed = now - start
        if ok:
            reporter.close(elapsed, "Done")
            return state
        if fail_if is not None:
            reason = fail_if(state)
            if reason:
                reporter.close(elapsed, "Failed")
                raise WaitFailed(description, elapsed=elapsed, reason=reason, hint=hint)
        if now >= deadline:
            reporter.close(elapsed, "Timed out")
            raise WaitTimeout(description, elapsed=elapsed, timeout=timeout, last_state=last_state, hint=hint)
        reporter.update(elapsed, last_state)
        clock.sleep(min(interval, max(deadline - now, 0.0)))
