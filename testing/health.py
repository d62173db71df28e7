"""Health of the services a test needs: pods Ready via the API, then HTTP/TCP/SQL probes.

Services are checked concurrently (one thread each), so N services take about as long as the
slowest, not the sum. Every service ends in one of three states:

- ``healthy``: pods Ready and the probe answered as expected;
- ``absent``: the environment does not describe it (not deployed): dependent tests skip;
- ``broken``: described but not answering, not Ready, or its pods crash: dependent tests fail with
  the cause (pod, container, reason, events, last log lines, or which hop of the probe failed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from testing.endpoints import Endpoint, get_endpoint
from testing.errors import HealthCheckFailed, InfraError, ServiceUnavailable, WaitFailed, WaitTimeout
from testing.polling import Check, wait_for_condition
from testing.probes import DEFAULT_PROBE_TIMEOUT, ProbeResult, probe_endpoint, probe_postgres

if TYPE_CHECKING:
    from testing.k8s_client import KubeClient

__all__ = [
    "CORE_SERVICES",
    "DEFAULT_HEALTH_TIMEOUT",
    "HealthReport",
    "ServiceHealth",
    "ServiceRequirement",
    "check_services",
    "kube_for",
    "probe_many",
    "requirement_for",
]

#: Overall bound of a health check, in seconds.
DEFAULT_HEALTH_TIMEOUT = 300.0
#: The services the smoke gate checks by default (those the environment describes).
CORE_SERVICES: tuple[str, ...] = ("postgres", "minio", "polaris", "dagster")

ProbeKind = Literal["auto", "http", "tcp", "postgres"]
Status = Literal["healthy", "absent", "broken"]


@dataclass(frozen=True)
class ServiceRequirement:
    """A service a test needs, and how to tell it is healthy."""

    name: str
    """Endpoint name (``FLOE_SERVICES[].name``)."""
    probe: ProbeKind = "auto"
    """``auto``: the endpoint's protocol (http status, or tcp connect); ``postgres``: ``SELECT 1``."""
    body_contains: str | None = None
    """HTTP only: text the health response must contain."""
    check_pods: bool = True
    """Also require the endpoint's pods (``pod_selector``) to be Ready, via the API."""


#: How core services are probed unless a test says otherwise.
_KNOWN: dict[str, ServiceRequirement] = {
    "postgres": ServiceRequirement("postgres", probe="postgres"),
}


def requirement_for(item: str | ServiceRequirement) -> ServiceRequirement:
    """Normalise a name or requirement (names of core services get their probe kind)."""
    if isinstance(item, ServiceRequirement):
        return item
    return _KNOWN.get(item, ServiceRequirement(item))


@dataclass(frozen=True)
class ServiceHealth:
    """The health of one service."""

    name: str
    status: Status
    detail: str
    elapsed: float
    endpoint: Endpoint | None = None

    def __str__(self) -> str:
        return f"{self.name}: {self.status} ({self.elapsed:.1f}s): {self.detail}"


@dataclass(frozen=True)
class HealthReport:
    """The health of every required service."""

    services: tuple[ServiceHealth, ...]
    elapsed: float

    def by_status(self, status: Status) -> list[ServiceHealth]:
        return [s for s in self.services if s.status == status]

    @property
    def healthy(self) -> bool:
        return all(s.status == "healthy" for s in self.services)

    def summary(self) -> str:
        return "\n".join(f"  - {s}" for s in self.services)

    def raise_for_status(self) -> None:
        """Broken -> :class:`HealthCheckFailed`; otherwise absent -> :class:`ServiceUnavailable`."""
        broken = self.by_status("broken")
        if broken:
            names = ", ".join(s.name for s in broken)
            raise HealthCheckFailed(
                f"{len(broken)} required service(s) present but broken: {names} "
                f"(checked in {self.elapsed:.1f}s)\n" + "\n".join(f"  - {s}" for s in broken)
            )
        absent = self.by_status("absent")
        if absent:
            names = ", ".join(s.name for s in absent)
            raise ServiceUnavailable(f"required service(s) not deployed: {names}: {absent[0].detail}")


def _probe_once(req: ServiceRequirement, endpoint: Endpoint, timeout: float, environ: Mapping[str, str]) -> ProbeResult:
    kind = req.probe if req.probe != "auto" else endpoint.protocol
    if kind == "postgres":
        return probe_postgres(
            endpoint.host,
            endpoint.port,
            user=environ.get("FLOE_POSTGRES_USER", "postgres"),
            password=environ.get("FLOE_POSTGRES_PASSWORD"),
            dbname=environ.get("FLOE_POSTGRES_DB", "postgres"),
            timeout=timeout,
        )
    if kind == "http" and endpoint.protocol != "http":
        endpoint = Endpoint(endpoint.name, endpoint.host, endpoint.port, "http", endpoint.path, endpoint.expect_status)
    if kind == "tcp" and endpoint.protocol != "tcp":
        endpoint = Endpoint(endpoint.name, endpoint.host, endpoint.port, "tcp")
    return probe_endpoint(endpoint, timeout=timeout, body_contains=req.body_contains)


def _check_one(
    req: ServiceRequirement,
    *,
    kube: KubeClient | None,
    deadline: float,
    probe_timeout: float,
    interval: float,
    environ: Mapping[str, str],
) -> ServiceHealth:
    start = time.monotonic()
    try:
        endpoint = get_endpoint(req.name, environ)
    except ServiceUnavailable as exc:
        return ServiceHealth(req.name, "absent", str(exc), time.monotonic() - start)
    except InfraError as exc:
        return ServiceHealth(req.name, "broken", f"bad endpoint description: {exc}", time.monotonic() - start)
    try:
        if kube is not None and req.check_pods and endpoint.pod_selector and endpoint.namespace:
            kube.wait_pods_ready(
                endpoint.namespace,
                endpoint.pod_selector,
                timeout=max(deadline - time.monotonic(), 0.1),
                interval=interval,
            )

        def attempt() -> Check[ProbeResult]:
            left = max(deadline - time.monotonic(), 0.05)
            result = _probe_once(req, endpoint, min(probe_timeout, left), environ)
            return Check(result.ok, result)

        def hopeless(result: ProbeResult | None) -> str | None:
            return str(result) if result is not None and not result.retryable else None

        result = wait_for_condition(
            attempt,
            timeout=max(deadline - time.monotonic(), 0.05),
            interval=interval,
            fail_if=hopeless,
            description=f"service {endpoint} to answer",
            hint=(
                f"kubectl get pods -n {endpoint.namespace} -l {endpoint.pod_selector}"
                if endpoint.pod_selector
                else "check the service's pods and logs"
            ),
        )
    except (WaitFailed, WaitTimeout) as exc:
        return ServiceHealth(req.name, "broken", str(exc), time.monotonic() - start, endpoint)
    except Exception as exc:  # an API error is a broken check, named, not a crash of the whole report
        return ServiceHealth(req.name, "broken", f"{type(exc).__name__}: {exc}", time.monotonic() - start, endpoint)
    detail = str(result) if result is not None else "ok"
    return ServiceHealth(req.name, "healthy", detail, time.monotonic() - start, endpoint)


def check_services(
    required: Iterable[str | ServiceRequirement],
    *,
    kube: KubeClient | None = None,
    timeout: float = DEFAULT_HEALTH_TIMEOUT,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
    interval: float = 2.0,
    environ: Mapping[str, str] | None = None,
) -> HealthReport:
    """Check every required service concurrently within ``timeout`` seconds overall.

    With ``kube``, pods behind each endpoint must be Ready first (a broken pod ends that service's
    check at once with its logs and events). Never raises for an unhealthy service: see
    :meth:`HealthReport.raise_for_status`.
    """
    reqs = [requirement_for(r) for r in required]
    env: Mapping[str, str] = os.environ if environ is None else environ
    start = time.monotonic()
    if not reqs:
        return HealthReport((), 0.0)
    deadline = start + timeout
    pool = ThreadPoolExecutor(max_workers=min(len(reqs), 32), thread_name_prefix="floe-health")
    try:
        futures = [
            pool.submit(
                _check_one, r, kube=kube, deadline=deadline, probe_timeout=probe_timeout, interval=interval, environ=env
            )
            for r in reqs
        ]
        results = tuple(f.result() for f in futures)
    except BaseException:
        # Interrupted (a test timeout, Ctrl-C): return at once; the checks end by their own deadline.
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return HealthReport(results, time.monotonic() - start)


def kube_for(
    required: Iterable[str | ServiceRequirement],
    *,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> KubeClient | None:
    """A client when some required endpoint has pods to check and a cluster answers; else None.

    Without a cluster (a developer's port-forward) the pod check is left out and only probes run.
    """
    from testing.endpoints import load_endpoints
    from testing.errors import ConfigError, PrerequisiteError

    try:
        endpoints = load_endpoints(environ)
    except ConfigError:
        return None
    reqs = [requirement_for(r) for r in required]
    if not any(r.check_pods and r.name in endpoints and endpoints[r.name].pod_selector for r in reqs):
        return None
    from testing.cluster import cluster_status

    status = cluster_status(context)
    return None if isinstance(status, PrerequisiteError) else status


def probe_many(
    endpoints: Sequence[Endpoint], *, probe_timeout: float = DEFAULT_PROBE_TIMEOUT, concurrent: bool = True
) -> list[ProbeResult]:
    """One probe of each endpoint, all at once (``concurrent=False``: one after another)."""
    if not concurrent:
        return [probe_endpoint(e, timeout=probe_timeout) for e in endpoints]
    if not endpoints:
        return []
    with ThreadPoolExecutor(max_workers=min(len(endpoints), 64), thread_name_prefix="floe-probe") as pool:
        return list(pool.map(lambda e: probe_endpoint(e, timeout=probe_timeout), endpoints))
