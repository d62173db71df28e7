"""``IntegrationTestBase``: a test class that checks its infrastructure before its tests run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest

from testing.health import (
    DEFAULT_HEALTH_TIMEOUT,
    HealthReport,
    ServiceRequirement,
    check_services,
    kube_for,
)
from testing.probes import DEFAULT_PROBE_TIMEOUT

__all__ = ["IntegrationTestBase"]


class IntegrationTestBase:
    """Base of integration test classes.

    Subclasses list ``required_services`` (names from the profile's endpoints, or
    :class:`~testing.health.ServiceRequirement`). Before each test, :meth:`check_infrastructure`
    verifies them (once per session per service under the plugin): pods Ready via the API, then an
    HTTP (status, optional body) or TCP probe; services concurrently; each probe bounded by
    ``probe_timeout`` (30 s), the whole check by ``infrastructure_timeout`` (5 min). A service that
    is not deployed skips the test with the reason; one that is deployed but broken fails it with the
    cause (pod, container, reason, events, last log lines, or the probe hop that failed).
    """

    required_services: ClassVar[Sequence[str | ServiceRequirement]] = ()
    #: Overall bound of the check in seconds; None: the plugin's ``--floe-health-timeout`` (300).
    infrastructure_timeout: ClassVar[float | None] = None
    #: Bound of one probe in seconds; None: the plugin's ``--floe-probe-timeout`` (30).
    probe_timeout: ClassVar[float | None] = None

    @pytest.fixture(autouse=True)
    def _floe_check_infrastructure(self, request: pytest.FixtureRequest) -> None:
        if self.required_services:
            self.check_infrastructure(request.config)

    @classmethod
    def check_infrastructure(cls, config: pytest.Config | None = None) -> HealthReport | None:
        """Verify ``required_services``: skip when one is absent, raise ``HealthCheckFailed`` when broken.

        With a pytest ``config`` (the plugin active) results are cached for the session and the
        plugin's settings apply; without one the check runs directly with the class's bounds and
        returns the :class:`~testing.health.HealthReport`.
        """
        if config is not None:
            from testing.plugin import SETTINGS_KEY, enforce_health, service_health

            if SETTINGS_KEY in config.stash:
                reqs = [r for r in cls.required_services if isinstance(r, ServiceRequirement)]
                if not reqs:
                    names = [str(r) for r in cls.required_services]
                    enforce_health(
                        service_health(
                            config, names, probe_timeout=cls.probe_timeout, health_timeout=cls.infrastructure_timeout
                        )
                    )
                    return None
        report = check_services(
            cls.required_services,
            kube=kube_for(cls.required_services),
            timeout=cls.infrastructure_timeout or DEFAULT_HEALTH_TIMEOUT,
            probe_timeout=cls.probe_timeout or DEFAULT_PROBE_TIMEOUT,
        )
        from testing.plugin import enforce_health

        enforce_health(report.services)
        return report
