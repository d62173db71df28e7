"""Probes of service endpoints (HTTP, TCP, PostgreSQL) and ``wait_for_service``.

A probe is one bounded attempt that never raises for a network problem: it returns a
:class:`ProbeResult` saying whether the service answered as expected and, when not, which hop failed
(``dns``, ``tcp``, ``http``, ``body``, ``sql``) and why. Waiting is always
:func:`testing.polling.wait_for_condition` polling a probe.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

import httpx

from testing.endpoints import Endpoint, load_endpoints
from testing.errors import ConfigError
from testing.polling import SYSTEM_CLOCK, Check, Clock, wait_for_condition

__all__ = [
    "DEFAULT_PROBE_TIMEOUT",
    "MAX_BODY_BYTES",
    "Hop",
    "ProbeResult",
    "probe_endpoint",
    "probe_http",
    "probe_postgres",
    "probe_tcp",
    "resolve_target",
    "wait_for_service",
]

#: Bound of one probe attempt, in seconds.
DEFAULT_PROBE_TIMEOUT = 30.0
#: At most this much of a response body is read for a body check.
MAX_BODY_BYTES = 64 * 1024

Hop = Literal["", "dns", "tcp", "http", "body", "sql"]


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe attempt."""

    target: str
    """What was probed: ``http://host:port/path``, ``tcp://host:port``, ``postgresql://host:port/db``."""
    ok: bool
    """The service answered as expected."""
    detail: str
    """What was seen: ``HTTP 200``, ``connection refused``, ``no answer within 2.0s``."""
    elapsed: float
    """Seconds the attempt took."""
    hop: Hop = ""
    """Which hop failed (empty when ``ok``)."""
    retryable: bool = True
    """False when asking again cannot help (e.g. the client library is missing): waits stop at once."""

    def __str__(self) -> str:
        if self.ok:
            return f"{self.target}: {self.detail} ({self.elapsed * 1000:.0f} ms)"
        return f"{self.target}: {self.hop} hop failed: {self.detail}"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _resolve(host: str, port: int) -> str | None:
    """None when ``host`` resolves; otherwise the resolver's error."""
    if _is_ip(host):
        return None
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host!r}: {exc}"
    return None


def _describe_os_error(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return f"no connection within {timeout:.1f}s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (nothing listening on that port)"
    return f"{type(exc).__name__}: {exc}"


def probe_tcp(host: str, port: int, *, timeout: float = DEFAULT_PROBE_TIMEOUT) -> ProbeResult:
    """Connect to ``host:port`` within ``timeout`` seconds, then close."""
    target = f"tcp://{host}:{port}"
    start = time.monotonic()
    dns_error = _resolve(host, port)
    if dns_error:
        return ProbeResult(target, False, dns_error, time.monotonic() - start, "dns")
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        return ProbeResult(target, False, _describe_os_error(exc, timeout), time.monotonic() - start, "tcp")
    return ProbeResult(target, True, "TCP connect succeeded", time.monotonic() - start)


def probe_http(
    url: str,
    *,
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    expect_status: int = 200,
    body_contains: str | None = None,
    body_check: Callable[[str], bool] | None = None,
    client: httpx.Client | None = None,
) -> ProbeResult:
    """GET ``url``; healthy when the status is ``expect_status`` and the body check (if any) holds.

    Each network step (connect, each read) is bounded by ``timeout``; a server that accepts and never
    answers fails the ``http`` hop after ``timeout`` seconds. ``client`` reuses a pooled connection.
    """
    start = time.monotonic()
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    dns_error = _resolve(host, port)
    if dns_error:
        return ProbeResult(url, False, dns_error, time.monotonic() - start, "dns")
    own_client = client is None
    http = client if client is not None else httpx.Client(follow_redirects=False)
    try:
        with http.stream("GET", url, timeout=httpx.Timeout(timeout)) as response:
            status = response.status_code
            want_body = body_contains is not None or body_check is not None
            body = _read_body(response, start + timeout) if want_body else ""
    except httpx.ConnectTimeout:
        return ProbeResult(url, False, f"no connection within {timeout:.1f}s", time.monotonic() - start, "tcp")
    except httpx.ConnectError as exc:
        cause = exc.__cause__ or exc.__context__
        detail = _describe_os_error(cause, timeout) if isinstance(cause, OSError) else f"connect failed: {exc}"
        if "refused" in str(exc).lower():
            detail = "connection refused (nothing listening on that port)"
        return ProbeResult(url, False, detail, time.monotonic() - start, "tcp")
    except httpx.TimeoutException:
        return ProbeResult(
            url, False, f"connected but no HTTP answer within {timeout:.1f}s", time.monotonic() - start, "http"
        )
    except httpx.HTTPError as exc:
        return ProbeResult(url, False, f"{type(exc).__name__}: {exc}", time.monotonic() - start, "http")
    finally:
        if own_client:
            http.close()
    elapsed = time.monotonic() - start
    if status != expect_status:
        return ProbeResult(url, False, f"HTTP {status} (expected {expect_status})", elapsed, "http")
    if body_contains is not None and body_contains not in body:
        return ProbeResult(
            url, False, f"HTTP {status} but body lacks {body_contains!r}: {body[:200]!r}", elapsed, "body"
        )
    if body_check is not None and not body_check(body):
        return ProbeResult(url, False, f"HTTP {status} but body check failed: {body[:200]!r}", elapsed, "body")
    return ProbeResult(url, True, f"HTTP {status}", elapsed)


def _read_body(response: httpx.Response, deadline: float) -> str:
    data = bytearray()
    for chunk in response.iter_bytes():
        data.extend(chunk)
        if len(data) >= MAX_BODY_BYTES or time.monotonic() > deadline:
            break
    return data[:MAX_BODY_BYTES].decode(response.encoding or "utf-8", errors="replace")


def probe_postgres(
    host: str,
    port: int,
    *,
    user: str = "postgres",
    password: str | None = None,
    dbname: str = "postgres",
    timeout: float = DEFAULT_PROBE_TIMEOUT,
) -> ProbeResult:
    """Connect with psycopg and run ``SELECT 1``: healthy only when PostgreSQL answers a query."""
    target = f"postgresql://{user}@{host}:{port}/{dbname}"
    start = time.monotonic()
    try:
        import psycopg
    except ImportError:
        return ProbeResult(
            target, False, "psycopg is not installed (pip install 'psycopg[binary]')", 0.0, "sql", retryable=False
        )
    tcp = probe_tcp(host, port, timeout=timeout)
    if not tcp.ok:
        return ProbeResult(target, False, tcp.detail, time.monotonic() - start, tcp.hop)
    try:
        with psycopg.connect(
            host=host,
            port=port,
            user=user,
            password=password,
            dbname=dbname,
            connect_timeout=max(1, int(timeout + 0.999)),
        ) as conn:
            row = conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return ProbeResult(target, False, f"{type(exc).__name__}: {first_line}", time.monotonic() - start, "sql")
    if row != (1,):
        return ProbeResult(target, False, f"SELECT 1 returned {row!r}", time.monotonic() - start, "sql")
    return ProbeResult(target, True, "SELECT 1 answered", time.monotonic() - start)


def probe_endpoint(
    endpoint: Endpoint, *, timeout: float = DEFAULT_PROBE_TIMEOUT, body_contains: str | None = None
) -> ProbeResult:
    """Probe an endpoint the way its protocol says (HTTP status/body, or TCP connect)."""
    if endpoint.protocol == "http":
        return probe_http(
            endpoint.probe_url, timeout=timeout, expect_status=endpoint.expect_status, body_contains=body_contains
        )
    return probe_tcp(endpoint.host, endpoint.port, timeout=timeout)


def resolve_target(
    name_or_url: str,
    *,
    namespace: str | None = None,
    port: int | None = None,
    protocol: Literal["http", "tcp"] | None = None,
    path: str | None = None,
    expect_status: int | None = None,
) -> Endpoint:
    """Turn what a caller names into an :class:`Endpoint`.

    - ``http://...`` / ``https://...``: that URL;
    - a name the test Job describes (``FLOE_SERVICES`` / ``FLOE_<NAME>_*``): its endpoint, with any
      argument given here overriding it;
    - ``host:port``: that address;
    - any other name: the Service ``<name>.<namespace>.svc.cluster.local`` (namespace from the argument
      or ``FLOE_PLATFORM_NAMESPACE``), ``port`` required.
    """
    if name_or_url.startswith(("http://", "https://")):
        parts = urlsplit(name_or_url)
        host = parts.hostname or ""
        url_port = parts.port or (443 if parts.scheme == "https" else 80)
        return Endpoint(
            name=host,
            host=host,
            port=port or url_port,
            protocol=protocol or "http",
            path=parts.path or "/",
            expect_status=expect_status or 200,
            url=name_or_url if protocol != "tcp" else "",
        )
    known = load_endpoints()
    if name_or_url in known:
        base = known[name_or_url]
        proto = protocol or base.protocol
        host = base.host
        eff_port = port or base.port
        eff_path = path or base.path
        return Endpoint(
            name=base.name,
            host=host,
            port=eff_port,
            protocol=proto,
            path=eff_path,
            expect_status=expect_status or base.expect_status,
            service=base.service,
            namespace=base.namespace,
            pod_selector=base.pod_selector,
            url=(
                base.url
                if (proto == "http" and base.url and port is None and path is None)
                else (f"http://{host}:{eff_port}{eff_path}" if proto == "http" else "")
            ),
        )
    host, _, port_text = name_or_url.rpartition(":")
    if host and port_text.isdigit():
        proto = protocol or "http"
        eff_path = path or "/"
        return Endpoint(
            name=name_or_url,
            host=host,
            port=int(port_text),
            protocol=proto,
            path=eff_path,
            expect_status=expect_status or 200,
            url=f"http://{host}:{port_text}{eff_path}" if proto == "http" else "",
        )
    ns = namespace or os.environ.get("FLOE_PLATFORM_NAMESPACE", "")
    if port is None or not ns:
        missing = " and ".join(x for x, v in (("port", port), ("namespace", ns)) if not v)
        raise ConfigError(
            f"cannot locate service {name_or_url!r}: it is not in FLOE_SERVICES and no {missing} was given; "
            "pass a URL, host:port, or name with namespace= and port="
        )
    host = f"{name_or_url}.{ns}.svc.cluster.local"
    proto = protocol or "http"
    eff_path = path or "/"
    return Endpoint(
        name=name_or_url,
        host=host,
        port=port,
        protocol=proto,
        path=eff_path,
        expect_status=expect_status or 200,
        service=name_or_url,
        namespace=ns,
        url=f"http://{host}:{port}{eff_path}" if proto == "http" else "",
    )


def wait_for_service(
    name_or_url: str,
    *,
    namespace: str | None = None,
    port: int | None = None,
    protocol: Literal["http", "tcp"] | None = None,
    path: str | None = None,
    timeout: float = 300.0,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
    interval: float = 1.0,
    expect_status: int | None = None,
    body_contains: str | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> ProbeResult:
    """Wait (≤ ``timeout`` s) until a service answers; return the successful probe.

    Each attempt is bounded by ``probe_timeout`` (and by the time left). Raises
    :class:`testing.errors.WaitTimeout` naming the target, the elapsed time and the last probe result
    (which hop failed and why).
    """
    endpoint = resolve_target(
        name_or_url, namespace=namespace, port=port, protocol=protocol, path=path, expect_status=expect_status
    )
    start = clock.monotonic()

    def attempt() -> Check[ProbeResult]:
        left = max(timeout - (clock.monotonic() - start), 0.05)
        result = probe_endpoint(endpoint, timeout=min(probe_timeout, left), body_contains=body_contains)
        return Check(result.ok, result)

    what = endpoint.probe_url if endpoint.protocol == "http" else f"tcp://{endpoint.host}:{endpoint.port}"
    result = wait_for_condition(
        attempt,
        timeout=timeout,
        interval=interval,
        clock=clock,
        description=f"service {endpoint.name} to answer ({what})",
        hint="check the Service and its pods "
        f"(kubectl get svc,endpoints,pods -n {endpoint.namespace or '<namespace>'})",
    )
    assert result is not None  # a successful Check always carries its ProbeResult
    return result
