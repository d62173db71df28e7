"""``PluginTestBase``: contract tests every floe plugin's integration tests inherit."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from testing._private.lifecycle import yield_then_close
from testing.base_classes.integration_test_base import IntegrationTestBase

__all__ = ["PluginTestBase"]


class PluginTestBase(IntegrationTestBase):
    """Base of a floe plugin's integration tests.

    Subclasses set ``plugin_type`` (``compute``, ``catalog``, ...) and implement
    :meth:`create_plugin`; the ``plugin`` fixture builds it, and closes it afterwards if it has
    ``close()``. The inherited contract tests check the metadata every plugin must expose.
    """

    plugin_type: ClassVar[str] = ""
    #: Attributes every plugin exposes (non-empty).
    required_metadata: ClassVar[tuple[str, ...]] = ("name", "version")

    def create_plugin(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement create_plugin()")

    @pytest.fixture
    def plugin(self) -> Iterator[Any]:
        yield from yield_then_close(self.create_plugin())

    def test_plugin_exposes_required_metadata(self, plugin: Any) -> None:
        missing = [a for a in self.required_metadata if not getattr(plugin, a, None)]
        assert not missing, f"{type(plugin).__name__} lacks metadata: {', '.join(missing)}"

    def test_plugin_declares_its_type(self, plugin: Any) -> None:
        assert self.plugin_type, f"{type(self).__name__} must set plugin_type"
        declared = getattr(plugin, "plugin_type", self.plugin_type)
        assert declared == self.plugin_type, f"plugin says type {declared!r}, test expects {self.plugin_type!r}"
