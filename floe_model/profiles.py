"""Deployment profiles (``testing/k8s/values-<profile>.yaml``): which services a stack deploys, from
which pinned chart, with which values, and the endpoints the test Job is told about.

Values may name pinned images and secrets instead of spelling them out, so a version lives only in
``versions.yaml`` and a password only in the stack's secrets:

- ``{{image:KEY}}`` -> ``repository:tag[@digest]``; ``{{repository:KEY}}``; ``{{tag:KEY}}`` -> ``tag[@digest]``
- ``{{registry:KEY}}`` and ``{{path:KEY}}``: the repository taken apart, for charts that join
  ``registry/repository`` themselves (``quay.io`` + ``prometheus/prometheus``; ``docker.io`` +
  ``library/postgres``); an empty registry would make them render ``/repository``, an invalid reference
- ``{{secret:NAME}}`` -> the stack secret ``NAME`` (kept secret end to end)
- ``{{namespace}}`` -> the service's namespace
- in endpoints only: ``{{values:a.b}}`` -> the value at ``a.b`` of the service's values, so the
  service name and port the tests use are the ones the chart was given.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floe_model.paths import K8S_DIR, REPO_ROOT, display
from floe_model.versions import ChartPin, Versions
from floe_model.yamlfile import load_mapping
from testing.endpoints import Endpoint
from testing.errors import ConfigError, ConfigProblem

PLACEHOLDER = re.compile(r"\{\{\s*(image|repository|registry|path|tag|secret|values|namespace)(?::([^}\s]+))?\s*\}\}")
_IMAGE_KINDS = {"image", "repository", "registry", "path", "tag"}
#: Anything that looks like one of our placeholders (``{{word}}`` or ``{{word:arg}}``), well formed or
#: not; Helm templates in values (``{{ .Values.x }}``, ``{{ include "x" . }}``) never match.
LOOSE_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z][\w-]*)\s*(?::\s*([^}]*?))?\s*\}\}")
PLACEHOLDER_KINDS = ("image", "repository", "registry", "path", "tag", "secret", "values", "namespace")
#: A secret name is a stack config key (``floe-testinfra:NAME``): a word, never one of the settings.
SECRET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
_PROTOCOLS = {"http", "tcp"}
_PROFILE_FIELDS = {"profile", "description", "kindConfig", "platformNamespace", "testJob", "services", "variants"}
_VARIANT_FIELDS = {"description", "images", "services", "testJob"}
_SERVICE_FIELDS = {
    "enabled",
    "chart",
    "namespace",
    "timeoutSeconds",
    "values",
    "endpoints",
    "description",
    "dependsOn",
}
_ENDPOINT_FIELDS = {"name", "service", "port", "protocol", "path", "expectStatus", "podSelector"}
_JOB_FIELDS = {
    "baseImage",
    "helperImage",
    "image",
    "pytestArgs",
    "resources",
    "activeDeadlineSeconds",
    "resultsStorage",
    "secretEnv",
    "testTimeoutSeconds",
}
DEFAULT_SERVICE_TIMEOUT = 600


@dataclass(frozen=True)
class ChartSource:
    """A pinned upstream chart, or a chart of our own under ``charts/``."""

    pinned: ChartPin | None = None
    local: Path | None = None

    @property
    def version(self) -> str:
        if self.pinned:
            return self.pinned.version
        chart_yaml = load_mapping(self.local / "Chart.yaml") if self.local else {}
        return str(chart_yaml.get("version", "0.0.0"))


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    enabled: bool
    chart: ChartSource
    namespace: str
    timeout_seconds: int
    values: dict[str, Any]
    endpoints: tuple[Endpoint, ...]
    images: tuple[str, ...]
    secrets: tuple[str, ...]
    depends_on: tuple[str, ...] = ()
    """Services this one connects to (``dependsOn``): installed first, and its release waits for theirs."""


@dataclass(frozen=True)
class TestJobSpec:
    image: str = "test-runner"
    pytest_args: tuple[str, ...] = ()
    resources: dict[str, Any] = field(default_factory=dict)
    active_deadline_seconds: int = 3600
    results_storage: str = "1Gi"
    secret_env: dict[str, str] = field(default_factory=dict)
    test_timeout_seconds: int = 300
    base_image: str = "python-base"
    """Image key of the test-runner's base (build arg BASE_IMAGE of testing/Dockerfile)."""
    helper_image: str = "busybox"
    """Image key of short-lived helper pods (results reader, network probes); always preloaded."""


@dataclass(frozen=True)
class Profile:
    name: str
    source: str
    kind_config: Path
    platform_namespace: str
    test_job: TestJobSpec
    services: tuple[ServiceSpec, ...]
    """In install order: every service after the services it depends on, else as the profile lists them."""

    @property
    def enabled_services(self) -> tuple[ServiceSpec, ...]:
        return tuple(s for s in self.services if s.enabled)

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return tuple(e for s in self.enabled_services for e in s.endpoints)

    @property
    def images(self) -> tuple[str, ...]:
        """Keys of every image the enabled services and the test Job use, in first-use order."""
        keys = [self.test_job.image] + [k for s in self.enabled_services for k in s.images]
        return tuple(dict.fromkeys(keys))

    @property
    def secrets(self) -> tuple[str, ...]:
        keys = [k for s in self.enabled_services for k in s.secrets] + list(self.test_job.secret_env.values())
        return tuple(dict.fromkeys(keys))


def profile_path(name_or_path: str) -> Path:
    """``integration`` -> testing/k8s/values-integration.yaml; a path is taken as it is."""
    if name_or_path.endswith((".yaml", ".yml")):
        path = Path(name_or_path)
        return path if path.is_absolute() else REPO_ROOT / path
    return K8S_DIR / f"values-{name_or_path}.yaml"


def load_profile(
    name_or_path: str, versions: Versions, *, disabled: frozenset[str] = frozenset(), variant: str | None = None
) -> Profile:
    path = profile_path(name_or_path)
    data = apply_variant(load_mapping(path), variant, display(path))
    return parse_profile(data, display(path), path.parent, versions, disabled=disabled)


def apply_variant(data: Mapping[str, Any], variant: str | None, source: str) -> dict[str, Any]:
    """The profile with one of its ``variants`` applied (e.g. ``airgapped``), so a variant is chosen
    by a stack setting, never by editing files.

    A variant may remap image keys (``images: {postgres: postgres-airgapped}``: every image
    placeholder and ``testJob.image`` naming the first key uses the second), replace fields of
    services (``services.<name>.<field>``; each listed field is replaced whole) and of ``testJob``.
    """
    result = {k: copy.deepcopy(v) for k, v in data.items() if k != "variants"}
    if variant is None:
        return result
    variants = data.get("variants") or {}
    if variant not in variants:
        known = ", ".join(sorted(variants)) or "none"
        raise ConfigError(
            [ConfigProblem(source, "variants", f"unknown variant {variant!r} (this profile has: {known})")]
        )
    spec = variants[variant]
    problems = [
        ConfigProblem(
            source, f"variants.{variant}.{key}", f"unknown field (a variant has: {', '.join(sorted(_VARIANT_FIELDS))})"
        )
        for key in spec
        if key not in _VARIANT_FIELDS
    ]
    for name, fields in (spec.get("services") or {}).items():
        if name not in (result.get("services") or {}):
            problems.append(
                ConfigProblem(source, f"variants.{variant}.services.{name}", "no such service in the profile")
            )
            continue
        result["services"][name].update(copy.deepcopy(fields))
    result.setdefault("testJob", {}).update(copy.deepcopy(spec.get("testJob") or {}))
    if problems:
        raise ConfigError(problems)
    remap = {str(k): str(v) for k, v in (spec.get("images") or {}).items()}
    if remap:
        result = _remap_images(result, remap)
        job = result["testJob"]
        job["image"] = remap.get(job.get("image", "test-runner"), job.get("image", "test-runner"))
    return result


def _remap_images(node: Any, remap: Mapping[str, str]) -> Any:
    if isinstance(node, Mapping):
        return {k: _remap_images(v, remap) for k, v in node.items()}
    if isinstance(node, list):
        return [_remap_images(v, remap) for v in node]
    if isinstance(node, str):

        def one(m: re.Match[str]) -> str:
            kind, arg = m.group(1), m.group(2) or ""
            if kind in _IMAGE_KINDS and arg in remap:
                return "{{" + f"{kind}:{remap[arg]}" + "}}"
            return m.group(0)

        return PLACEHOLDER.sub(one, node)
    return node


def parse_profile(
    data: Mapping[str, Any],
    source: str,
    base_dir: Path,
    versions: Versions,
    *,
    disabled: frozenset[str] = frozenset(),
) -> Profile:
    problems: list[ConfigProblem] = []

    def bad(where: str, problem: str) -> None:
        problems.append(ConfigProblem(source, where, problem))

    for key in data:
        if key not in _PROFILE_FIELDS:
            bad(key, f"unknown field (a profile has: {', '.join(sorted(_PROFILE_FIELDS))})")
    name = data.get("profile")
    if not isinstance(name, str) or not _NAME.match(name):
        bad("profile", "required: a lower-case name such as 'integration'")
        name = "invalid"
    kind_config = data.get("kindConfig")
    if not isinstance(kind_config, str):
        bad("kindConfig", "required: the kind config file, relative to the profile")
        kind_config = ""
    platform_ns = data.get("platformNamespace", "floe-platform")
    if not isinstance(platform_ns, str) or not _NAME.match(platform_ns):
        bad("platformNamespace", f"{platform_ns!r} is not a valid namespace name")
    test_job = _parse_job(data.get("testJob") or {}, versions, bad)
    services_data = data.get("services")
    if not isinstance(services_data, Mapping):
        bad("services", "required: a mapping of service name to its release settings")
        services_data = {}
    unknown_disabled = disabled - set(services_data)
    if unknown_disabled:
        bad("services", f"cannot disable unknown service(s): {', '.join(sorted(unknown_disabled))}")
    services = [
        _parse_service(str(sname), sdata, versions, platform_ns, bad, disabled)
        for sname, sdata in services_data.items()
    ]
    parsed = [s for s in services if s is not None]
    ordered = install_order(parsed, lambda where, problem: bad(where, problem))
    used = {secret for svc in services if svc for secret in svc.secrets}
    for env, secret in test_job.secret_env.items():
        problem = secret_name_problem(secret)
        if problem:
            bad(f"testJob.secretEnv.{env}", problem)
        elif secret not in used:
            known = ", ".join(sorted(used)) or "none"
            bad(
                f"testJob.secretEnv.{env}",
                f"unknown secret {secret!r}: no service of the profile uses {{{{secret:{secret}}}}} "
                f"(its secrets: {known})",
            )
    endpoint_names = [e.name for s in services if s and s.enabled for e in s.endpoints]
    for dup in sorted({n for n in endpoint_names if endpoint_names.count(n) > 1}):
        bad("services.*.endpoints", f"endpoint name {dup!r} is used twice (names become env variables)")
    if problems:
        raise ConfigError(problems)
    return Profile(
        name,
        source,
        (base_dir / kind_config).resolve(),
        platform_ns,
        test_job,
        ordered,
    )


def install_order(
    services: list[ServiceSpec], bad: Callable[[str, str], None] | None = None
) -> tuple[ServiceSpec, ...]:
    """Services sorted so each comes after those it ``dependsOn``; ties keep the profile's order.

    The order is a function of the profile alone (never of Pulumi's registration order), so plans,
    ``plan.json`` and the releases' ``depends_on`` agree from run to run. Unknown names and cycles are
    reported through ``bad``; a dependency on a disabled service is dropped (nothing to wait for)."""
    by_name = {s.name: s for s in services}
    for s in services:
        for dep in s.depends_on:
            if dep not in by_name and bad:
                bad(f"services.{s.name}.dependsOn", f"{dep!r} is not a service of this profile")
            elif dep == s.name and bad:
                bad(f"services.{s.name}.dependsOn", "a service cannot depend on itself")
    ordered: list[ServiceSpec] = []
    placed: set[str] = set()
    remaining = list(services)
    while remaining:
        ready = next(
            (s for s in remaining if all(d in placed or d not in by_name or d == s.name for d in s.depends_on)), None
        )
        if ready is None:
            if bad:
                cycle = " -> ".join(s.name for s in remaining)
                bad("services.*.dependsOn", f"dependencies form a cycle among: {cycle}")
            ordered += remaining
            break
        ordered.append(ready)
        placed.add(ready.name)
        remaining.remove(ready)
    return tuple(ordered)


def _parse_job(data: Any, versions: Versions, bad: Callable[[str, str], None]) -> TestJobSpec:
    if not isinstance(data, Mapping):
        bad("testJob", "must be a mapping")
        return TestJobSpec()
    for key in data:
        if key not in _JOB_FIELDS:
            bad(f"testJob.{key}", f"unknown field (accepts: {', '.join(sorted(_JOB_FIELDS))})")
    image = data.get("image", "test-runner")
    if image not in versions.images:
        bad("testJob.image", f"{image!r} is not an image key in versions.yaml")
    base_image = data.get("baseImage", "python-base")
    if base_image not in versions.images:
        bad("testJob.baseImage", f"{base_image!r} is not an image key in versions.yaml")
    helper_image = data.get("helperImage", "busybox")
    if helper_image not in versions.images:
        bad("testJob.helperImage", f"{helper_image!r} is not an image key in versions.yaml")
    deadline = data.get("activeDeadlineSeconds", 3600)
    if not isinstance(deadline, int) or isinstance(deadline, bool) or deadline <= 0:
        bad(
            "testJob.activeDeadlineSeconds",
            f"must be a positive number of seconds (never infinite), found {deadline!r}",
        )
        deadline = 3600
    test_timeout = data.get("testTimeoutSeconds", 300)
    if not isinstance(test_timeout, int) or isinstance(test_timeout, bool) or test_timeout <= 0:
        bad("testJob.testTimeoutSeconds", f"must be a positive number of seconds, found {test_timeout!r}")
        test_timeout = 300
    args = data.get("pytestArgs", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        bad("testJob.pytestArgs", "must be a list of strings")
        args = []
    secret_env = data.get("secretEnv", {})
    if not isinstance(secret_env, Mapping) or not all(
        isinstance(k, str) and _ENV_NAME.match(k) and isinstance(v, str) for k, v in secret_env.items()
    ):
        bad("testJob.secretEnv", "must map ENV_NAME to a stack secret name")
        secret_env = {}
    resources = data.get("resources", {})
    if not isinstance(resources, Mapping):
        bad("testJob.resources", "must be a mapping with requests and limits")
        resources = {}
    return TestJobSpec(
        str(image),
        tuple(args),
        dict(resources),
        deadline,
        str(data.get("resultsStorage", "1Gi")),
        dict(secret_env),
        test_timeout,
        str(base_image),
        str(helper_image),
    )


def _parse_service(
    name: str,
    data: Any,
    versions: Versions,
    platform_ns: str,
    bad: Callable[[str, str], None],
    disabled: frozenset[str],
) -> ServiceSpec | None:
    where = f"services.{name}"
    if not _NAME.match(name):
        bad(where, "service names must be lower-case DNS labels (they become release names)")
    if not isinstance(data, Mapping):
        bad(where, "must be a mapping")
        return None
    for key in data:
        if key not in _SERVICE_FIELDS:
            bad(f"{where}.{key}", f"unknown field (a service has: {', '.join(sorted(_SERVICE_FIELDS))})")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        bad(f"{where}.enabled", f"must be true or false, found {enabled!r}")
        enabled = True
    chart = _parse_chart(data.get("chart"), versions, f"{where}.chart", bad)
    namespace = data.get("namespace", platform_ns)
    if not isinstance(namespace, str) or not _NAME.match(namespace):
        bad(f"{where}.namespace", f"{namespace!r} is not a valid namespace name")
    timeout = data.get("timeoutSeconds", DEFAULT_SERVICE_TIMEOUT)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or not 0 < timeout <= 3600:
        bad(f"{where}.timeoutSeconds", f"must be 1-3600 seconds (bounded), found {timeout!r}")
        timeout = DEFAULT_SERVICE_TIMEOUT
    values = data.get("values", {})
    if not isinstance(values, Mapping):
        bad(f"{where}.values", "must be a mapping of Helm values")
        values = {}
    images: list[str] = []
    secrets: list[str] = []
    for text, path in _malformed_placeholders(values, f"{where}.values"):
        bad(path, text)
    for kind, arg, path in _placeholders(values, f"{where}.values"):
        if kind in _IMAGE_KINDS:
            if arg not in versions.images:
                bad(path, f"{{{{{kind}:{arg}}}}} names no image in versions.yaml")
            else:
                images.append(arg)
        elif kind == "secret":
            problem = secret_name_problem(arg)
            if problem:
                bad(path, problem)
            else:
                secrets.append(arg)
        elif kind == "values":
            bad(path, "{{values:...}} may only be used in endpoints")
    endpoints = _parse_endpoints(data.get("endpoints", []), dict(values), str(namespace), name, where, bad)
    depends_on = data.get("dependsOn", [])
    if not isinstance(depends_on, list) or not all(isinstance(d, str) for d in depends_on):
        bad(f"{where}.dependsOn", f"must be a list of service names, found {depends_on!r}")
        depends_on = []
    return ServiceSpec(
        name,
        enabled and name not in disabled,
        chart or ChartSource(),
        str(namespace),
        timeout,
        dict(values),
        endpoints,
        tuple(dict.fromkeys(images)),
        tuple(dict.fromkeys(secrets)),
        tuple(dict.fromkeys(depends_on)),
    )


def _parse_chart(data: Any, versions: Versions, where: str, bad: Callable[[str, str], None]) -> ChartSource | None:
    if isinstance(data, Mapping) and set(data) == {"pinned"}:
        key = data["pinned"]
        if key not in versions.charts:
            bad(where, f"pinned chart {key!r} is not in versions.yaml charts ({', '.join(versions.charts)})")
            return None
        return ChartSource(pinned=versions.charts[key])
    if isinstance(data, Mapping) and set(data) == {"local"}:
        path = (REPO_ROOT / str(data["local"])).resolve()
        if not (path / "Chart.yaml").is_file():
            bad(where, f"local chart {data['local']!r} has no Chart.yaml")
            return None
        return ChartSource(local=path)
    bad(where, "must be {pinned: KEY} (a chart in versions.yaml) or {local: charts/NAME}")
    return None


def _parse_endpoints(
    data: Any,
    values: dict[str, Any],
    namespace: str,
    service: str,
    where: str,
    bad: Callable[[str, str], None],
) -> tuple[Endpoint, ...]:
    if not isinstance(data, list):
        bad(f"{where}.endpoints", "must be a list")
        return ()
    endpoints = []
    for i, ep in enumerate(data):
        at = f"{where}.endpoints[{i}]"
        if not isinstance(ep, Mapping):
            bad(at, "must be a mapping")
            continue
        for key in ep:
            if key not in _ENDPOINT_FIELDS:
                bad(f"{at}.{key}", f"unknown field (accepts: {', '.join(sorted(_ENDPOINT_FIELDS))})")
        try:
            resolved = {k: resolve_values_refs(v, values) for k, v in ep.items()}
        except KeyError as exc:
            bad(at, f"refers to a value the service does not set: {exc.args[0]}")
            continue
        name = resolved.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            bad(f"{at}.name", "required: a lower-case name (it becomes FLOE_<NAME>_HOST/PORT)")
            continue
        try:
            port = int(resolved.get("port"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            bad(f"{at}.port", f"must be a port number, found {resolved.get('port')!r}")
            continue
        protocol = resolved.get("protocol", "tcp")
        if protocol not in _PROTOCOLS:
            bad(f"{at}.protocol", f"must be http or tcp, found {protocol!r}")
            continue
        service_name = str(resolved.get("service", service))
        host = f"{service_name}.{namespace}.svc.cluster.local"
        path = str(resolved.get("path", "/"))
        endpoints.append(
            Endpoint(
                name=name,
                host=host,
                port=port,
                protocol=protocol,
                path=path,
                expect_status=int(resolved.get("expectStatus", 200)),
                service=service_name,
                namespace=namespace,
                pod_selector=str(resolved.get("podSelector", f"app.kubernetes.io/instance={service}")),
                url=f"http://{host}:{port}{path}" if protocol == "http" else "",
            )
        )
    return tuple(endpoints)


def secret_name_problem(name: str) -> str | None:
    """Why ``{{secret:NAME}}`` cannot name a stack secret, or ``None`` when it can."""
    from floe_model.settings import KEYS

    if not name:
        return "{{secret:NAME}} needs a name (empty placeholder)"
    if not SECRET_NAME.match(name):
        return f"unknown secret {name!r}: a secret name is letters and digits, starting with a letter"
    if name in KEYS:
        return f"unknown secret {name!r}: it is a stack setting (floe-testinfra:{name}), not a secret; rename it"
    return None


def _malformed_placeholders(node: Any, path: str) -> list[tuple[str, str]]:
    """(problem, path) for each ``{{word...}}`` that is not one of our placeholders, well formed."""
    found: list[tuple[str, str]] = []
    if isinstance(node, Mapping):
        for k, v in node.items():
            found += _malformed_placeholders(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _malformed_placeholders(v, f"{path}[{i}]")
    elif isinstance(node, str):
        for m in LOOSE_PLACEHOLDER.finditer(node):
            kind, arg = m.group(1), m.group(2)
            if kind not in PLACEHOLDER_KINDS:
                found.append((f"unknown placeholder {m.group(0)} (known: {', '.join(PLACEHOLDER_KINDS)})", path))
            elif kind != "namespace" and not PLACEHOLDER.fullmatch(m.group(0)):
                found.append((f"{m.group(0)} needs a name: {{{{{kind}:NAME}}}} (empty placeholder)", path))
            elif kind == "namespace" and arg is not None:
                found.append((f"{m.group(0)}: {{{{namespace}}}} takes no argument", path))
            elif kind == "secret" and PLACEHOLDER.fullmatch(node.strip()) is None:
                found.append(
                    (f"{m.group(0)} must be the whole value, not part of a string (secrets stay secret)", path)
                )
    return found


def _placeholders(node: Any, path: str) -> list[tuple[str, str, str]]:
    found: list[tuple[str, str, str]] = []
    if isinstance(node, Mapping):
        for k, v in node.items():
            found += _placeholders(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _placeholders(v, f"{path}[{i}]")
    elif isinstance(node, str):
        found += [(m.group(1), m.group(2) or "", path) for m in PLACEHOLDER.finditer(node)]
    return found


def resolve_values_refs(node: Any, values: Mapping[str, Any]) -> Any:
    """Replace ``{{values:a.b}}`` in an endpoint field with the service's value at ``a.b``."""
    if not isinstance(node, str):
        return node
    whole = PLACEHOLDER.fullmatch(node.strip())
    if whole and whole.group(1) == "values":
        return _lookup(values, whole.group(2) or "")
    return PLACEHOLDER.sub(
        lambda m: str(_lookup(values, m.group(2) or "")) if m.group(1) == "values" else m.group(0), node
    )


def _lookup(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise KeyError(f"values.{dotted}")
        node = node[part]
    return node


def expand_values(node: Any, *, versions: Versions, namespace: str, secret: Callable[[str], Any]) -> Any:
    """Replace image/secret/namespace placeholders in Helm values.

    A string that is exactly ``{{secret:NAME}}`` becomes whatever ``secret(NAME)`` returns (a Pulumi
    secret Output in the program, a redacted marker in rendered output), so secrets are never
    formatted into plain strings.
    """
    if isinstance(node, Mapping):
        return {k: expand_values(v, versions=versions, namespace=namespace, secret=secret) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_values(v, versions=versions, namespace=namespace, secret=secret) for v in node]
    if not isinstance(node, str):
        return node
    whole = PLACEHOLDER.fullmatch(node.strip())
    if whole and whole.group(1) == "secret":
        return secret(whole.group(2) or "")

    def one(m: re.Match[str]) -> str:
        kind, arg = m.group(1), m.group(2) or ""
        if kind == "namespace":
            return namespace
        if kind == "secret":
            raise ConfigError(f"{{{{secret:{arg}}}}} must be a whole value, not part of a string")
        pin = versions.images[arg]
        return {
            "image": pin.ref,
            "repository": pin.repository,
            "registry": pin.registry,
            "path": pin.path,
            "tag": pin.tag_with_digest,
        }[kind]

    return PLACEHOLDER.sub(one, node)
