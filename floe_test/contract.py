"""The chart contract of a rendered stack: what every release would really create, checked offline.

``floe-test render`` records each Helm release with its chart and fully merged values; this module
templates every release from that real chart (the archive from the chart cache, with the pinned helm and
``--kube-version`` = versions.yaml's Kubernetes) and checks what a cluster would be given:

- every object is strictly valid for the pinned Kubernetes (kubernetes-validate); a custom resource
  against the schema of the CRD its own release renders (unknown fields rejected, as kubernetes-validate's
  strict mode does for built-in kinds);
- every container image (containers, init containers, hook Jobs, images handed to operators and run
  launchers as arguments, environment or custom resources) is a valid reference by the OCI distribution
  grammar and in the stack's preload list (plan.json ``images``);
- every endpoint the tests use (``FLOE_SERVICES`` of the test Job) is a rendered Service with that name
  and port, selecting a pod template (or an operator-managed workload) that carries its selector's labels,
  and the endpoint's ``pod_selector`` (what the health checks wait on) selects only pods of that Service;
- no stack-managed Namespace for a namespace every cluster has.

Needs the dev dependencies (kubernetes-validate, jsonschema); the Pulumi program never imports it.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from floe_model.image_ref import InvalidReference, normalize
from testing.errors import PrerequisiteError

try:  # dev dependencies: the contract runs where the tests run, never in the Pulumi program or the runner
    import jsonschema
    import kubernetes_validate
    from kubernetes_validate.utils import all_versions, schema_contents
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    _MISSING_DEV = ""
except ImportError as exc:  # pragma: no cover - a runtime-only install
    _MISSING_DEV = str(exc)

#: Namespaces every cluster has (components.platform_services.CLUSTER_NAMESPACES says the same).
CLUSTER_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})
HELM_TIMEOUT = 120
_POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
_CLUSTER_SCOPED = {
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "PersistentVolume",
    "StorageClass",
    "PriorityClass",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "APIService",
    "IngressClass",
}


class _Loader(yaml.CSafeLoader):
    """YAML 1.1 reads a bare ``=`` as the obsolete "value" tag (CRDs have ``- =`` in enums): keep it a string."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))  # type: ignore[arg-type]


@dataclass(frozen=True)
class Finding:
    release: str
    obj: str
    problem: str

    def __str__(self) -> str:
        return f"release {self.release}: {self.obj}: {self.problem}"


@dataclass
class ContractReport:
    stack: str
    variant: str
    objects: dict[str, int] = field(default_factory=dict)
    """Release (or ``stack`` for objects the program applies itself) -> objects validated."""
    findings: list[Finding] = field(default_factory=list)
    images: set[str] = field(default_factory=set)
    endpoints: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def validated(self) -> int:
        return sum(self.objects.values())

    def summary(self) -> str:
        name = f"{self.stack}{f' ({self.variant})' if self.variant else ''}"
        counts = ", ".join(f"{r} {n}" for r, n in self.objects.items())
        head = f"{name}: {self.validated} objects validated ({counts}); {len(self.images)} images; "
        head += f"{len(self.endpoints)} endpoints"
        return head + "".join(f"\n  - {f}" for f in self.findings)


@dataclass(frozen=True)
class Rendered:
    """One release's objects, each with its namespace filled in as Helm would install it."""

    release: str
    namespace: str
    objects: list[dict[str, Any]]


def load_render(out: Path) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """plan.json, the release files and the directly applied manifests of a ``floe-test render`` folder."""
    plan = json.loads((out / "plan.json").read_text())
    releases = [yaml.safe_load(p.read_text()) for p in sorted((out / "releases").glob("*.yaml"))]
    manifests = [yaml.safe_load(p.read_text()) for p in sorted((out / "manifests").glob("*.yaml"))]
    return plan, releases, manifests


_TEMPLATED: dict[str, Rendered] = {}


def template_release(release: Mapping[str, Any], *, helm: Path, kube_version: str) -> Rendered:
    """``helm template`` of the release's real chart with its merged values (hooks and CRDs included).

    Schema validation is skipped only where the render says the schema's references cannot be read here.
    Memoised by chart, release and values: the tests check the same releases in several renders.
    """
    chart = release.get("archive") or release["chart"]
    key = json.dumps(
        [
            str(helm),
            kube_version,
            dict(release),
            Path(str(chart)).stat().st_mtime_ns if Path(str(chart)).exists() else 0,
        ],
        sort_keys=True,
        default=str,
    )
    if key not in _TEMPLATED:
        _TEMPLATED[key] = _template(release, chart, helm=helm, kube_version=kube_version)
    return _TEMPLATED[key]


def _template(release: Mapping[str, Any], chart: str, *, helm: Path, kube_version: str) -> Rendered:
    if not Path(chart).exists():
        raise FileNotFoundError(f"release {release['name']}: chart {chart} does not exist")
    with tempfile.TemporaryDirectory(prefix="floe-contract-") as tmp:
        values = Path(tmp) / "values.yaml"
        values.write_text(yaml.safe_dump(release.get("values") or {}))
        argv = [str(helm), "template", str(release["name"]), str(chart), "--namespace", str(release["namespace"])]
        argv += ["--kube-version", kube_version.removeprefix("v"), "--include-crds", "-f", str(values)]
        if str(release.get("schemaValidation", "on")) != "on":
            argv.append("--skip-schema-validation")
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=HELM_TIMEOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"release {release['name']}: helm template failed: {proc.stderr.strip()[-3000:]}")
    objects = [d for d in yaml.load_all(proc.stdout, Loader=_Loader) if isinstance(d, dict)]
    for obj in objects:
        meta = obj.setdefault("metadata", {})
        if obj.get("kind") not in _CLUSTER_SCOPED and not meta.get("namespace"):
            meta["namespace"] = release["namespace"]
    return Rendered(str(release["name"]), str(release["namespace"]), objects)


def describe(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    where = f" in namespace {meta['namespace']}" if meta.get("namespace") else ""
    return f"{obj.get('kind')}/{meta.get('name')}{where}"


# --------------------------------------------------------------------------------------------- validity
class SchemaValidator:
    """Strict validation: built-in kinds by kubernetes-validate, custom resources by their CRD's schema."""

    def __init__(self, kube_version: str, crds: list[dict[str, Any]]) -> None:
        if _MISSING_DEV:
            raise PrerequisiteError(f"the chart contract needs the dev dependencies ({_MISSING_DEV}): make setup")
        self.version = kube_version.removeprefix("v")
        self.crds: dict[tuple[str, str, str], dict[str, Any]] = {}
        for crd in crds:
            spec = crd.get("spec") or {}
            for version in spec.get("versions") or []:
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema:
                    key = (spec.get("group", ""), spec["names"]["kind"], version["name"])
                    self.crds[key] = schema

    def problems(self, obj: Mapping[str, Any]) -> list[str]:
        group, _, version = str(obj.get("apiVersion", "")).rpartition("/")
        crd_schema = self.crds.get((group, str(obj.get("kind")), version))
        if crd_schema is not None:
            return _crd_problems(obj, crd_schema, self.version)
        try:
            _builtin_validator(self.version, str(obj.get("kind")), str(obj.get("apiVersion"))).validate(obj)
        except kubernetes_validate.SchemaNotFoundError:
            return [
                f"no schema for {obj.get('kind')} {obj.get('apiVersion')}: neither built into Kubernetes "
                f"{self.version} nor defined by a CRD the stack renders"
            ]
        except jsonschema.ValidationError as exc:
            return [_validation_message(exc)]
        return []


@cache
def _builtin_validator(version: str, kind: str, api_version: str) -> Any:
    """kubernetes-validate's strict schema for a kind, compiled once: its ``validate()`` re-reads 1.5 MB of
    definitions on every call (36 ms; the E2E stack has hundreds of objects)."""
    schema_version = [v for v in all_versions() if _minor(v) <= _minor(version)][-1]
    folder = f"kubernetes-json-schema/v{schema_version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        raise kubernetes_validate.SchemaNotFoundError(kind=kind, version=version, api_version=api_version) from None
    definitions = schema_contents(f"{folder}/_definitions.json", version)
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _minor(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def _validation_message(exc: Exception) -> str:
    path = ".".join(str(p) for p in getattr(exc, "absolute_path", []) or [])
    return f"invalid for Kubernetes: {path or '(root)'}: {getattr(exc, 'message', exc)}"


def _crd_problems(obj: Mapping[str, Any], schema: Mapping[str, Any], version: str) -> list[str]:
    strict = _strict_openapi(schema)
    strict.setdefault("properties", {})
    for key in ("apiVersion", "kind", "metadata"):
        strict["properties"].setdefault(key, {})
    errors = [_validation_message(e) for e in jsonschema.Draft7Validator(strict).iter_errors(obj)]
    meta_validator = _builtin_validator(version, "ConfigMap", "v1")  # ObjectMeta as every kind has it
    probe = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": obj.get("metadata") or {}}
    errors += [_validation_message(e) for e in meta_validator.iter_errors(probe)]
    return errors


def _strict_openapi(node: Any) -> Any:
    """A CRD's structural schema with unknown fields rejected (the API server prunes them silently, so a
    misspelt field would be lost without a word), except where it preserves unknown fields."""
    if isinstance(node, list):
        return [_strict_openapi(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict_openapi(v) for k, v in node.items() if not k.startswith("x-kubernetes-")}
    if out.get("nullable"):
        out.pop("nullable")
        if "type" in out:
            out["type"] = [out["type"], "null"]
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


# --------------------------------------------------------------------------------------- values schemas
#: The remote document Dagster's values schema refers to (a Kubernetes JSON schema of v1.19.0).
_K8S_SCHEMA_URL = "https://raw.githubusercontent.com/yannh/kubernetes-json-schema/"


def values_schema_problems(release: Mapping[str, Any], *, kube_version: str) -> list[str]:
    """Where the render says the chart's schema references cannot be read here (so Helm skips schema
    validation), validate the values Helm computes against the chart's own schemas offline anyway: the
    Kubernetes JSON schema they refer to is resolved to kubernetes-validate's copy for the pinned version
    (a newer one than the v1.19.0 named: the values must fit the cluster they deploy to)."""
    if str(release.get("schemaValidation", "on")) == "on" or not release.get("archive"):
        return []
    files = _chart_files(Path(str(release["archive"])))
    top = next(name.split("/", 1)[0] for name in files)
    computed = _coalesce(release.get("values") or {}, yaml.safe_load(files.get(f"{top}/values.yaml", "")) or {})
    targets: list[tuple[str, Any, str]] = [("of the chart", computed, f"{top}/values.schema.json")]
    # Enabled subcharts (Chart.yaml conditions) validate their own part, as Helm does.
    for dependency in (yaml.safe_load(files.get(f"{top}/Chart.yaml", "")) or {}).get("dependencies") or []:
        name, condition = dependency["name"], dependency.get("condition")
        if condition and not _lookup(computed, str(condition).split(",")[0]):
            continue
        defaults = yaml.safe_load(files.get(f"{top}/charts/{name}/values.yaml", "")) or {}
        part = _coalesce(computed.get(name) or {}, defaults)
        part["global"] = _coalesce(computed.get("global") or {}, part.get("global") or {})
        targets.append((f"charts/{name}", part, f"{top}/charts/{name}/values.schema.json"))
    problems = []
    for label, values, schema_file in targets:
        if schema_file not in files:
            continue
        schema = json.loads(files[schema_file])
        # Helm validates with JSON Schema 2020-12 where a schema names no $schema (Dagster's do not).
        validator_class = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        validator = validator_class(schema, registry=_k8s_registry(kube_version))
        for error in validator.iter_errors(values):
            path = ".".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"values {label}: {path}: {error.message}")
    return problems


def _chart_files(archive: Path) -> dict[str, str]:
    """values.yaml, values.schema.json and Chart.yaml of a chart archive and its subcharts, by path."""
    import tarfile

    wanted = {"values.yaml", "values.schema.json", "Chart.yaml"}
    files = {}
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.rsplit("/", 1)[-1] in wanted:
                handle = tar.extractfile(member)
                if handle is not None:
                    files[member.name] = handle.read().decode()
    return files


def _coalesce(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of user values over a chart's defaults: maps merge, a null removes the key."""
    out = dict(defaults)
    for key, value in values.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _coalesce(value, out[key])
        else:
            out[key] = value
    return out


def _lookup(values: Mapping[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.strip().split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


@cache
def _k8s_registry(kube_version: str) -> Any:
    version = kube_version.removeprefix("v")
    schema_version = [v for v in all_versions() if _minor(v) <= _minor(version)][-1]
    defs = schema_contents(f"kubernetes-json-schema/v{schema_version}-local/_definitions.json", version)["$defs"]
    # kubernetes-validate's copy keeps the definitions under $defs (its own refs), the document referred to
    # under definitions: one document answering both.
    document = {"$defs": defs, "definitions": defs}

    def retrieve(uri: str) -> Any:
        if not uri.startswith(_K8S_SCHEMA_URL):
            raise LookupError(f"{uri}: only the Kubernetes JSON schema is known offline")
        return Resource.from_contents(document, default_specification=DRAFT202012)

    return Registry(retrieve=retrieve)  # type: ignore[call-arg]


# ---------------------------------------------------------------------------------------------- images
def pod_specs(obj: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    kind, spec = obj.get("kind"), obj.get("spec") or {}
    if kind == "Pod":
        yield spec
    elif kind in _POD_TEMPLATE_KINDS:
        yield (spec.get("template") or {}).get("spec") or {}
    elif kind == "CronJob":
        yield ((spec.get("jobTemplate") or {}).get("spec") or {}).get("template", {}).get("spec") or {}


def image_refs(obj: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, reference) of every image the object makes a cluster run, directly or through a controller."""
    for spec in pod_specs(obj):
        for group in ("initContainers", "containers", "ephemeralContainers"):
            for container in spec.get(group) or []:
                name = container.get("name")
                yield f"{group}[{name}].image", str(container.get("image", ""))
                for arg in [*(container.get("args") or []), *(container.get("command") or [])]:
                    flag, eq, value = str(arg).partition("=")
                    if eq and flag.startswith("--") and ("image" in flag or flag.endswith("config-reloader")):
                        yield f"{group}[{name}] argument {flag}", value
                for env in container.get("env") or []:
                    if str(env.get("name", "")).endswith("_IMAGE") and env.get("value"):
                        yield f"{group}[{name}] env {env['name']}", str(env["value"])
    if obj.get("kind") == "ConfigMap":
        for key, value in (obj.get("data") or {}).items():
            if key.endswith("_IMAGE") and value:
                yield f"data.{key}", str(value)
    if str(obj.get("apiVersion", "")).startswith("monitoring.coreos.com/") and obj.get("kind") in _OPERATOR_WORKLOADS:
        image = (obj.get("spec") or {}).get("image")
        yield "spec.image", str(image or "")


#: Operator arguments naming an image for a feature, and the kinds whose use of the feature needs it: the
#: image must be preloaded only when a rendered object uses the feature (prometheus-operator starts a
#: Thanos sidecar only for a Prometheus with ``spec.thanos``, or for a ThanosRuler).
FEATURE_IMAGE_FLAGS = {"--thanos-default-base-image": "Thanos"}


def uses_thanos(objects: list[Mapping[str, Any]]) -> bool:
    return any(
        o.get("kind") == "ThanosRuler" or (o.get("kind") == "Prometheus" and (o.get("spec") or {}).get("thanos"))
        for o in objects
    )


def check_image(ref: str, preloaded: set[str]) -> str | None:
    """Why ``ref`` would fail in the stack's cluster, or None."""
    if not ref:
        return "no image reference (the controller would pick one that is not preloaded)"
    try:
        full = normalize(ref)
    except InvalidReference as exc:
        return f"{exc} (kubelet: InvalidImageName)"
    if full not in preloaded:
        return f"{ref} is not in the stack's preload list (plan.json images): no node would have it"
    return None


# ------------------------------------------------------------------------------------------- endpoints
#: Workloads that prometheus-operator creates for a custom resource, and the pod labels it gives them
#: (prometheus-operator's statefulset code: name, instance, managed-by, operator.prometheus.io/*).
_OPERATOR_WORKLOADS = {"Prometheus": "prometheus", "Alertmanager": "alertmanager"}


def operator_pod_labels(obj: Mapping[str, Any]) -> dict[str, str] | None:
    app = _OPERATOR_WORKLOADS.get(str(obj.get("kind")))
    if app is None or not str(obj.get("apiVersion", "")).startswith("monitoring.coreos.com/"):
        return None
    name = obj["metadata"]["name"]
    labels = {
        "app.kubernetes.io/name": app,
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "prometheus-operator",
        f"{app}": name,
        "operator.prometheus.io/name": name,
    }
    if app == "prometheus":
        labels["operator.prometheus.io/shard"] = "0"
    return {**labels, **(((obj.get("spec") or {}).get("podMetadata") or {}).get("labels") or {})}


@dataclass(frozen=True)
class PodTemplate:
    release: str
    owner: str
    namespace: str
    labels: Mapping[str, str]


def pod_templates(rendered: list[Rendered]) -> list[PodTemplate]:
    found = []
    for release in rendered:
        for obj in release.objects:
            ns = (obj.get("metadata") or {}).get("namespace", release.namespace)
            if obj.get("kind") in _POD_TEMPLATE_KINDS:
                labels = ((obj.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {}
                found.append(PodTemplate(release.release, describe(obj), ns, labels))
            elif (labels := operator_pod_labels(obj)) is not None:
                found.append(
                    PodTemplate(release.release, f"pods prometheus-operator runs for {describe(obj)}", ns, labels)
                )
    return found


def parse_selector(selector: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in selector.split(",") if part)


def endpoint_problems(endpoint: Mapping[str, Any], rendered: list[Rendered]) -> tuple[str, str, list[str]]:
    """(release, object, problems) of one FLOE_SERVICES entry against what the releases render."""
    name, ns, port = endpoint.get("service"), endpoint.get("namespace"), int(endpoint.get("port", 0))
    where = f"endpoint {endpoint.get('name')} (service/{name} in namespace {ns}, port {port})"
    services = [
        (r.release, o)
        for r in rendered
        for o in r.objects
        if o.get("kind") == "Service" and o["metadata"].get("name") == name and o["metadata"].get("namespace") == ns
    ]
    if not services:
        return "-", where, ["no release renders this Service"]
    release, service = services[0]
    obj = f"{where} = {describe(service)}"
    problems = []
    ports = [p.get("port") for p in (service.get("spec") or {}).get("ports") or []]
    if port not in ports:
        problems.append(f"the Service has no port {port} (its ports: {ports})")
    selector = (service.get("spec") or {}).get("selector") or {}
    templates = [t for t in pod_templates(rendered) if t.namespace == ns]
    behind = [t for t in templates if selector and selector.items() <= t.labels.items()]
    if not behind:
        problems.append(f"no pod template or operator-managed workload carries the Service's selector {selector}")
    wanted = parse_selector(str(endpoint.get("pod_selector") or ""))
    if wanted:
        picked = [t for t in templates if wanted.items() <= t.labels.items()]
        if not picked:
            problems.append(
                f"its pod_selector {endpoint.get('pod_selector')!r} matches no pod the charts render "
                f"(labels behind the Service: {[dict(t.labels) for t in behind]})"
            )
        stray = [t.owner for t in picked if t not in behind]
        if stray:
            problems.append(f"its pod_selector {endpoint.get('pod_selector')!r} also selects pods of {stray}")
    return release, obj, problems


def job_endpoints(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for manifest in manifests:
        if manifest.get("kind") == "Job":
            for container in manifest["spec"]["template"]["spec"]["containers"]:
                for env in container.get("env") or []:
                    if env.get("name") == "FLOE_SERVICES":
                        return list(json.loads(env["value"]))
    return []


# --------------------------------------------------------------------------------------------- the check
def check_render(out: Path, *, helm: Path, kube_version: str, variant: str = "") -> ContractReport:
    """The whole contract of one ``floe-test render`` folder."""
    plan, releases, manifests = load_render(out)
    report = ContractReport(str(plan["stack"]), variant)
    rendered = [template_release(r, helm=helm, kube_version=kube_version) for r in releases]
    rendered.append(Rendered("stack", "", manifests))  # what the program applies itself (Job, RBAC, ...)
    crds = [o for r in rendered for o in r.objects if o.get("kind") == "CustomResourceDefinition"]
    validator = SchemaValidator(kube_version, crds)
    preloaded = {normalize(ref) for ref in plan["images"]}
    thanos = uses_thanos([o for r in rendered for o in r.objects])

    def bad(release: str, obj: str, problem: str) -> None:
        report.findings.append(Finding(release, obj, problem))

    for spec in releases:
        for problem in values_schema_problems(spec, kube_version=kube_version):
            bad(str(spec["name"]), "values", problem)
    for release in rendered:
        report.objects[release.release] = len(release.objects)
        if not release.objects and release.release != "stack":
            bad(release.release, "-", "the chart renders no object with these values")
        for obj in release.objects:
            for problem in validator.problems(obj):
                bad(release.release, describe(obj), problem)
            for where, ref in image_refs(obj):
                if not thanos and any(f"argument {flag}" in where for flag in FEATURE_IMAGE_FLAGS):
                    continue  # a default the operator uses only for Thanos, which nothing here asks for
                report.images.add(ref)
                if (why := check_image(ref, preloaded)) is not None:
                    bad(release.release, f"{describe(obj)} {where}", why)
            if obj.get("kind") == "Namespace" and obj["metadata"].get("name") in CLUSTER_NAMESPACES:
                bad(
                    release.release,
                    describe(obj),
                    "a namespace every cluster has must not be a stack resource (create fails on the existing "
                    "object, its labels would govern the cluster's own pods, destroy would delete it)",
                )
    for endpoint in job_endpoints(manifests):
        report.endpoints.append(str(endpoint.get("name")))
        owner, what, problems = endpoint_problems(endpoint, rendered)
        for problem in problems:
            bad(owner, what, problem)
    return report
