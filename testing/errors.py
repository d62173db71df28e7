"""The exception hierarchy of floe-testinfra.

Every error names the object it is about, the state last seen and what to do next, so a message
read in a CI log is enough to act on. ``InfraError`` is the root: pytest integration treats it (and
only it) as an infrastructure problem that may be retried, never an assertion failure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "HealthCheckFailed",
    "InfraError",
    "PrerequisiteError",
    "ServiceUnavailable",
    "WaitFailed",
    "WaitTimeout",
]


class InfraError(Exception):
    """Something in the test infrastructure (not the code under test) is wrong."""

    exit_code = 2


class WaitTimeout(InfraError):
    """A bounded wait ran out of time before its condition held."""

    def __init__(self, description: str, *, elapsed: float, timeout: float, last_state: object, hint: str = "") -> None:
        self.description = description
        self.elapsed = elapsed
        self.timeout = timeout
        self.last_state = last_state
        self.hint = hint
        message = (
            f"timed out after {elapsed:.1f}s (bound {timeout:.0f}s) waiting for {description}; "
            f"last state seen: {last_state!s}"
        )
        if hint:
            message += f". Next: {hint}"
        super().__init__(message)


class WaitFailed(InfraError):
    """A wait ended early because a failure condition held (a Job Failed, a pod crash-looping)."""

    def __init__(self, description: str, *, elapsed: float, reason: str, hint: str = "") -> None:
        self.description = description
        self.elapsed = elapsed
        self.reason = reason
        self.hint = hint
        message = f"gave up after {elapsed:.1f}s waiting for {description}: {reason}"
        if hint:
            message += f". Next: {hint}"
        super().__init__(message)


class HealthCheckFailed(InfraError):
    """A service is present but broken (not ready, crash-looping, answering errors)."""


class ServiceUnavailable(InfraError):
    """A required service is simply not deployed in this environment: dependent tests skip."""


class PrerequisiteError(InfraError):
    """A tool, engine or resource the command needs is missing; the message says how to get it."""


@dataclass(frozen=True)
class ConfigProblem:
    """One problem with one field of one input file."""

    source: str
    field: str
    problem: str

    def __str__(self) -> str:
        return f"{self.source}: {self.field}: {self.problem}"


class ConfigError(InfraError):
    """Bad input: every problem found, each naming its file and field, in one error."""

    def __init__(self, problems: Iterable[ConfigProblem] | str) -> None:
        if isinstance(problems, str):
            problems = [ConfigProblem("input", "-", problems)]
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        super().__init__(f"invalid configuration ({len(self.problems)} {noun}):\n{lines}")
