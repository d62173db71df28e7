"""Fixture helpers shared by the base classes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def yield_then_close(instance: Any) -> Iterator[Any]:
    """Yield ``instance`` to the test, then call its ``close()`` if it has one (also when the test fails)."""
    try:
        yield instance
    finally:
        close = getattr(instance, "close", None)
        if callable(close):
            close()
