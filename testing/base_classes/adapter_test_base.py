"""``AdapterTestBase``: contract tests for adapters that talk to a platform service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from testing._private.lifecycle import yield_then_close
from testing.base_classes.integration_test_base import IntegrationTestBase

__all__ = ["AdapterTestBase"]


class AdapterTestBase(IntegrationTestBase):
    """Base of adapter tests (a client of PostgreSQL, Polaris, MinIO, ...).

    Subclasses list the service in ``required_services`` and implement :meth:`create_adapter`; the
    ``adapter`` fixture builds it after the infrastructure check and closes it afterwards. The
    inherited contract test requires :meth:`adapter_is_healthy` to hold against the live service.
    """

    def create_adapter(self) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement create_adapter()")

    def adapter_is_healthy(self, adapter: Any) -> bool:
        """Override with a real round trip (a query, a bucket listing); default: ``adapter.health_check()``."""
        check = getattr(adapter, "health_check", None)
        if not callable(check):
            raise NotImplementedError(f"{type(self).__name__} must implement adapter_is_healthy()")
        return bool(check())

    @pytest.fixture
    def adapter(self, _floe_check_infrastructure: None) -> Iterator[Any]:
        yield from yield_then_close(self.create_adapter())

    def test_adapter_reaches_its_service(self, adapter: Any) -> None:
        assert self.adapter_is_healthy(adapter), f"{type(adapter).__name__} could not reach its service"
