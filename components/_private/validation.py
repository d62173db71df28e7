"""Collect every bad input of a component and raise once, each named with what to do (kind's style)."""

from __future__ import annotations

import re

from testing.errors import ConfigError, ConfigProblem

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class Problems:
    def __init__(self, component: str) -> None:
        self.component = component
        self._problems: list[ConfigProblem] = []

    def add(self, field: str, problem: str) -> None:
        self._problems.append(ConfigProblem(self.component, field, problem))

    def dns_label(self, field: str, value: object, *, max_len: int = 63) -> None:
        if not isinstance(value, str) or not DNS_LABEL.match(value) or len(value) > max_len:
            self.add(field, f"{value!r} must be a lower-case DNS label of at most {max_len} characters")

    def positive(self, field: str, value: object, *, maximum: int | None = None) -> None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value > 0
        if ok and maximum is not None and value > maximum:  # type: ignore[operator]
            ok = False
        if not ok:
            bound = f" and at most {maximum}" if maximum else ""
            self.add(field, f"must be a positive whole number of seconds{bound} (never infinite), got {value!r}")

    def raise_if_any(self) -> None:
        if self._problems:
            raise ConfigError(self._problems)
