"""Base classes for the platform's integration tests."""

from __future__ import annotations

from testing.base_classes.adapter_test_base import AdapterTestBase
from testing.base_classes.integration_test_base import IntegrationTestBase
from testing.base_classes.plugin_test_base import PluginTestBase

__all__ = ["AdapterTestBase", "IntegrationTestBase", "PluginTestBase"]
