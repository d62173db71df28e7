"""Service endpoints of the deployed profile, as the test Job describes them.

The test Job (built from the same profile as the services) sets, for every endpoint:
``FLOE_<NAME>_HOST``, ``FLOE_<NAME>_PORT``, ``FLOE_<NAME>_URL`` (http only) and ``FLOE_SERVICES``, a
JSON list of ``{"name", "service", "namespace", "host", "port", "protocol", "path",
"expect_status", "pod_selector"}``. This module is the ONE place that reads them: no test or
fixture spells a host or a port.

``FLOE_SERVICES`` is the primary source; per-service variables override its host/port/url (so a
developer can point one service at a port-forward: ``FLOE_POSTGRES_HOST=127.0.0.1``), and a service
known only through ``FLOE_<NAME>_HOST``/``_PORT`` is still found.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal
from urllib.parse import urlsplit

from testing.errors import ConfigError, ConfigProblem, ServiceUnavailable

__all__ = [
    "SERVICES_ENV",
    "Endpoint",
    "endpoint_env",
    "env_prefix",
    "get_endpoint",
    "load_endpoints",
]

#: The JSON list of all endpoints, set by the test Job.
SERVICES_ENV = "FLOE_SERVICES"

Protocol = Literal["http", "tcp"]
_PROTOCOLS: tuple[Protocol, ...] = ("http", "tcp")


@dataclass(frozen=True)
class Endpoint:
    """One reachable endpoint of a platform service."""

    name: str
    """Logical name (``postgres``, ``polaris``); the ``<NAME>`` of ``FLOE_<NAME>_*``."""
    host: str
    """DNS name or address to connect to."""
    port: int
    """TCP port."""
    protocol: Protocol = "tcp"
    """``http``: probed with an HTTP request; ``tcp``: probed with a TCP connect."""
    path: str = "/"
    """HTTP path of the health/readiness endpoint."""
    expect_status: int = 200
    """HTTP status a healthy service answers on ``path``."""
    service: str = ""
    """Kubernetes Service name (empty when unknown)."""
    namespace: str = ""
    """Namespace of the Service and its pods (empty when unknown)."""
    pod_selector: str = ""
    """Label selector of the pods behind the Service (``app=postgres``); empty: no pod check."""
    url: str = ""
    """Base URL for http endpoints (``http://host:port/path``); empty for tcp."""

    @property
    def base_url(self) -> str:
        """``scheme://host:port`` without the path (for API clients)."""
        if self.url:
            parts = urlsplit(self.url)
            return f"{parts.scheme}://{parts.netloc}"
        return f"http://{self.host}:{self.port}"

    @property
    def probe_url(self) -> str:
        """The URL an HTTP probe requests."""
        return self.url or f"http://{self.host}:{self.port}{self.path}"

    def __str__(self) -> str:
        where = f"service/{self.service} in namespace {self.namespace}" if self.service else self.name
        return f"{self.name} ({where}, {self.protocol}://{self.host}:{self.port})"


def env_prefix(name: str) -> str:
    """``dagster-webserver`` -> ``FLOE_DAGSTER_WEBSERVER``."""
    return "FLOE_" + name.upper().replace("-", "_").replace(".", "_")


def endpoint_env(endpoints: Sequence[Endpoint]) -> list[dict[str, str]]:
    """The environment the test Job gets (the inverse of :func:`load_endpoints`): FLOE_<NAME>_HOST,
    _PORT, _URL (http only) per endpoint, and FLOE_SERVICES describing all of them."""
    env: list[dict[str, str]] = []
    for ep in endpoints:
        prefix = env_prefix(ep.name)
        env.append({"name": f"{prefix}_HOST", "value": ep.host})
        env.append({"name": f"{prefix}_PORT", "value": str(ep.port)})
        if ep.protocol == "http":
            env.append({"name": f"{prefix}_URL", "value": ep.probe_url})
    services = [
        {
            "name": ep.name,
            "service": ep.service,
            "namespace": ep.namespace,
            "host": ep.host,
            "port": ep.port,
            "protocol": ep.protocol,
            "path": ep.path,
            "expect_status": ep.expect_status,
            "pod_selector": ep.pod_selector,
        }
        for ep in endpoints
    ]
    env.append({"name": SERVICES_ENV, "value": json.dumps(services, separators=(",", ":"))})
    return env


def load_endpoints(environ: Mapping[str, str] | None = None) -> dict[str, Endpoint]:
    """All endpoints the environment describes, by name. Raises :class:`ConfigError` on bad input."""
    env = os.environ if environ is None else environ
    problems: list[ConfigProblem] = []
    found: dict[str, Endpoint] = {}
    raw = env.get(SERVICES_ENV, "").strip()
    if raw:
        found = _parse_services_json(raw, problems)
    # Per-service variables: override, or define services FLOE_SERVICES does not list.
    names = set(found) | _names_from_env(env)
    for name in sorted(names):
        endpoint = _apply_overrides(name, found.get(name), env, problems)
        if endpoint is not None:
            found[name] = endpoint
    if problems:
        raise ConfigError(problems)
    return found


def get_endpoint(name: str, environ: Mapping[str, str] | None = None) -> Endpoint:
    """The endpoint called ``name``; :class:`ServiceUnavailable` when the environment has none."""
    endpoints = load_endpoints(environ)
    if name in endpoints:
        return endpoints[name]
    env = os.environ if environ is None else environ
    if SERVICES_ENV not in env:
        why = f"{SERVICES_ENV} is not set (not running in the test Job?)"
    else:
        known = ", ".join(sorted(endpoints)) or "none"
        why = f"not in this profile's services (known: {known})"
    raise ServiceUnavailable(
        f"service {name!r} is not deployed: {why}. Next: deploy a profile with {name!r}, or set "
        f"{env_prefix(name)}_HOST and {env_prefix(name)}_PORT to reach it (e.g. via kubectl port-forward)"
    )


def _parse_services_json(raw: str, problems: list[ConfigProblem]) -> dict[str, Endpoint]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        problems.append(ConfigProblem(SERVICES_ENV, "-", f"not valid JSON ({exc})"))
        return {}
    if not isinstance(data, list):
        problems.append(ConfigProblem(SERVICES_ENV, "-", "must be a JSON list of service objects"))
        return {}
    out: dict[str, Endpoint] = {}
    for index, item in enumerate(data):
        at = f"[{index}]"
        if not isinstance(item, dict):
            problems.append(ConfigProblem(SERVICES_ENV, at, "must be an object"))
            continue
        name = item.get("name")
        if not isinstance(name, str) or not name:
            problems.append(ConfigProblem(SERVICES_ENV, f"{at}.name", "required: a non-empty string"))
            continue
        service = str(item.get("service") or "")
        namespace = str(item.get("namespace") or "")
        host = item.get("host") or (f"{service}.{namespace}.svc.cluster.local" if service and namespace else "")
        if not isinstance(host, str) or not host:
            problems.append(ConfigProblem(SERVICES_ENV, f"{at}.host", "required (or service and namespace)"))
            continue
        port = _port(item.get("port"), SERVICES_ENV, f"{at}.port", problems)
        protocol = item.get("protocol", "tcp")
        if protocol not in _PROTOCOLS:
            problems.append(
                ConfigProblem(
                    SERVICES_ENV, f"{at}.protocol", f"must be one of {', '.join(_PROTOCOLS)} (got {protocol!r})"
                )
            )
            continue
        expect = item.get("expect_status", 200)
        if not isinstance(expect, int) or not 100 <= expect <= 599:
            problems.append(
                ConfigProblem(SERVICES_ENV, f"{at}.expect_status", f"must be an HTTP status 100-599 (got {expect!r})")
            )
            continue
        if port is None:
            continue
        path = str(item.get("path") or "/")
        if not path.startswith("/"):
            path = "/" + path
        out[name] = Endpoint(
            name=name,
            host=host,
            port=port,
            protocol=protocol,
            path=path,
            expect_status=expect,
            service=service,
            namespace=namespace,
            pod_selector=str(item.get("pod_selector") or ""),
            url=f"http://{host}:{port}{path}" if protocol == "http" else "",
        )
    return out


def _names_from_env(env: Mapping[str, str]) -> set[str]:
    names = set()
    for key in env:
        if key.startswith("FLOE_") and key.endswith("_HOST") and f"{key[:-5]}_PORT" in env:
            names.add(key[5:-5].lower().replace("_", "-"))
    return names


def _apply_overrides(
    name: str, base: Endpoint | None, env: Mapping[str, str], problems: list[ConfigProblem]
) -> Endpoint | None:
    prefix = env_prefix(name)
    host = env.get(f"{prefix}_HOST")
    port_raw = env.get(f"{prefix}_PORT")
    url = env.get(f"{prefix}_URL")
    if base is None:
        if not host or not port_raw:
            return None
        port = _port(port_raw, f"{prefix}_PORT", "-", problems)
        if port is None:
            return None
        if url:
            parts = urlsplit(url)
            return Endpoint(name=name, host=host, port=port, protocol="http", path=parts.path or "/", url=url)
        return Endpoint(name=name, host=host, port=port)
    changes: dict[str, object] = {}
    if host:
        changes["host"] = host
    if port_raw:
        port = _port(port_raw, f"{prefix}_PORT", "-", problems)
        if port is not None:
            changes["port"] = port
    if not changes and not url:
        return base
    updated = replace(base, **changes)  # type: ignore[arg-type]
    if base.protocol == "http":
        new_url = url or f"http://{updated.host}:{updated.port}{updated.path}"
        updated = replace(updated, url=new_url)
    return updated


def _port(value: object, source: str, field: str, problems: list[ConfigProblem]) -> int | None:
    try:
        port = int(str(value))
    except ValueError:
        problems.append(ConfigProblem(source, field, f"must be a port number 1-65535 (got {value!r})"))
        return None
    if not 1 <= port <= 65535:
        problems.append(ConfigProblem(source, field, f"must be a port number 1-65535 (got {port})"))
        return None
    return port
