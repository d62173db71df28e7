"""Stack settings: the ``floe-testinfra:*`` config of a Pulumi stack, validated in one place.

The same reader serves the real program (values from ``pulumi.Config``) and ``floe-test render``
(values from ``Pulumi.<stack>.yaml``), so the two can never disagree.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from floe_model.paths import REPO_ROOT, display
from floe_model.yamlfile import load_mapping
from testing.errors import ConfigError, ConfigProblem

PROJECT = "floe-testinfra"
KNOWN_STACKS = ("integration", "e2e")
_RUN_ID = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")

#: Every config key, its meaning, and its default (None: required or derived).
KEYS: dict[str, str] = {
    "profile": "deployment profile: integration, e2e, or a path to a values-*.yaml file",
    "clusterName": "kind cluster name (default floe-<stack>)",
    "clusterMode": "create (default; reuses a cluster with the same config hash), adopt, or kubeconfig",
    "kubeconfig": "secret: kubeconfig of an existing cluster (clusterMode kubeconfig)",
    "kindConfig": "kind config file overriding the profile's",
    "exposePorts": "map NodePorts to host ports as the kind config says (default true)",
    "extraMounts": "JSON list of {hostPath, containerPath} mounted into every node",
    "readyTimeoutSeconds": "bound on cluster creation and node readiness (default 300)",
    "servicesTimeoutSeconds": "bound on each service becoming ready (default: the profile's, 600)",
    "servicesEnabled": "deploy the platform services (default true; false deploys cluster, namespace and Job only)",
    "disabledServices": "comma-separated services of the profile not to deploy",
    "reuseCluster": "reuse a running cluster with the same config hash (default true); false: it is an error",
    "variant": "a variant of the profile, e.g. airgapped (images and charts built here, no registry needed)",
    "nodeImage": "node image: empty for the pinned one, local for the one `make node-image` built here, or a reference",
    "runId": "identifier of the test run (default local); the namespace is <namespacePrefix>-<runId>",
    "namespacePrefix": "prefix of the run namespace (default floe-test)",
    "testImage": "use this test-runner image as it is instead of building one",
    "chartCacheDir": "chart cache: <name>-<version>.tgz that helm pull fills (default ~/.cache/floe-testinfra/charts)",
    "offlineCharts": "never helm pull: charts from chartCacheDir or the offline chart repository only (default false)",
    "jobDeadlineSeconds": "activeDeadlineSeconds of the test Job (default: the profile's, 3600)",
    "pytestArgs": 'extra pytest arguments for the test Job, shell-quoted, e.g. "-k health" (default: none)',
    "ci": "a CI run (default false): no kept namespaces, a missing cluster fails, infra-only reruns (--reruns 2)",
}
SECRET_KEYS = {"kubeconfig"}
#: Per-run settings (run id, CI mode, reuse, adopt) as a JSON object. They travel in the environment
#: of the Pulumi program rather than through `pulumi config set`, which would rewrite the committed
#: Pulumi.<stack>.yaml on every run.
RUN_SETTINGS_ENV = "FLOE_RUN_SETTINGS"


def run_overrides(environ: Mapping[str, str]) -> dict[str, str]:
    """The per-run settings in ``FLOE_RUN_SETTINGS`` (empty when unset)."""
    raw = environ.get(RUN_SETTINGS_ENV, "").strip()
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError([ConfigProblem(RUN_SETTINGS_ENV, "-", f"not valid JSON: {exc}")]) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError([ConfigProblem(RUN_SETTINGS_ENV, "-", "must be a JSON object of setting -> string")])
    return {str(k): v for k, v in data.items()}


@dataclass(frozen=True)
class StackSettings:
    stack: str
    profile: str
    cluster_name: str
    cluster_mode: str = "create"
    kind_config: Path | None = None
    expose_ports: bool = True
    extra_mounts: tuple[dict[str, Any], ...] = ()
    ready_timeout_seconds: int = 300
    services_timeout_seconds: int | None = None
    services_enabled: bool = True
    disabled_services: frozenset[str] = frozenset()
    run_id: str = "local"
    namespace_prefix: str = "floe-test"
    test_image: str | None = None
    chart_cache_dir: Path | None = None
    offline_charts: bool = False
    reuse_cluster: bool = True
    variant: str | None = None
    node_image: str | None = None
    job_deadline_seconds: int | None = None
    pytest_args: tuple[str, ...] = ()
    ci: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    """Where a key was given when not in the stack file (``--set``), for messages."""

    def where(self, key: str) -> tuple[str, str]:
        """(source, field) naming ``key`` as the user gave it, for a ConfigProblem."""
        if key in self.origins:
            return self.origins[key], f"{key}=..."
        return f"Pulumi.{self.stack}.yaml", f"{PROJECT}:{key}"


def stack_file(stack: str) -> Path:
    return REPO_ROOT / f"Pulumi.{stack}.yaml"


def settings_with_overrides(stack: str, overrides: Mapping[str, str]) -> StackSettings:
    """The stack file's settings with per-run ``--set KEY=VALUE`` on top; a bad ``--set`` is named as such."""
    return parse_settings(stack, {**read_stack_file(stack), **overrides}, origins=dict.fromkeys(overrides, "--set"))


def read_stack_file(stack: str) -> dict[str, str]:
    """The ``floe-testinfra:*`` values of ``Pulumi.<stack>.yaml`` (unknown stack: a clear error)."""
    path = stack_file(stack)
    if not path.is_file():
        known = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in REPO_ROOT.glob("Pulumi.*.yaml"))
        raise ConfigError(
            [
                ConfigProblem(
                    "stack", stack, f"unknown stack (known: {', '.join(known)}); {display(path)} does not exist"
                )
            ]
        )
    data = load_mapping(path)
    config = data.get("config") or {}
    if not isinstance(config, Mapping):
        raise ConfigError([ConfigProblem(display(path), "config", "must be a mapping")])
    out: dict[str, str] = {}
    for key, value in config.items():
        ns, _, name = str(key).partition(":")
        if ns == PROJECT:
            out[name] = value if isinstance(value, str) else json.dumps(value)
    return out


def parse_settings(
    stack: str, values: Mapping[str, str], source: str | None = None, *, origins: Mapping[str, str] | None = None
) -> StackSettings:
    """Validate raw config strings; every problem is reported at once.

    ``origins`` names where a key came from when not the stack file (``--set``), so an error points
    at what the user typed.
    """
    source = source or f"Pulumi.{stack}.yaml"
    problems: list[ConfigProblem] = []

    def bad(key: str, problem: str) -> None:
        where = (origins or {}).get(key)
        if where:
            problems.append(ConfigProblem(where, f"{key}={values.get(key, '')}", problem))
        else:
            problems.append(ConfigProblem(source, f"{PROJECT}:{key}", problem))

    for key in values:
        if key not in KEYS:
            bad(key, f"unknown setting (known: {', '.join(sorted(KEYS))})")

    def integer(key: str, default: int | None, maximum: int) -> int | None:
        raw = values.get(key)
        if raw is None:
            return default
        try:
            number = int(raw)
        except ValueError:
            bad(key, f"must be a whole number of seconds, got {raw!r}")
            return default
        if not 0 < number <= maximum:
            bad(key, f"must be between 1 and {maximum} seconds (bounded), got {number}")
            return default
        return number

    def boolean(key: str, default: bool) -> bool:
        raw = values.get(key)
        if raw is None:
            return default
        if raw.lower() in {"true", "false"}:
            return raw.lower() == "true"
        bad(key, f"must be true or false, got {raw!r}")
        return default

    mode = values.get("clusterMode", "create")
    if mode not in {"create", "adopt", "kubeconfig"}:
        bad("clusterMode", f"must be create, adopt or kubeconfig, got {mode!r}")
    name = values.get("clusterName", f"floe-{stack}")
    if not re.match(r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", name):
        bad("clusterName", f"{name!r} must be a lower-case DNS label of at most 40 characters")
    run_id = values.get("runId", "local")
    if not _RUN_ID.match(run_id):
        bad("runId", f"{run_id!r} must be lower-case letters, digits and '-', at most 32 characters")
    mounts: tuple[dict[str, Any], ...] = ()
    if "extraMounts" in values:
        try:
            parsed = json.loads(values["extraMounts"])
            if not isinstance(parsed, list) or not all(isinstance(m, dict) for m in parsed):
                raise ValueError("not a list of mappings")
            mounts = tuple(parsed)
        except ValueError as exc:
            bad("extraMounts", f"must be a JSON list of {{hostPath, containerPath}}: {exc}")
    try:
        extra_pytest_args = tuple(shlex.split(values.get("pytestArgs", "")))
    except ValueError as exc:
        bad("pytestArgs", f"must be shell-quoted arguments: {exc}")
        extra_pytest_args = ()
    node_image = values.get("nodeImage") or ""
    if node_image and node_image != "local" and "@sha256:" not in node_image:
        bad(
            "nodeImage",
            f"{node_image!r} must be pinned by digest (IMAGE:TAG@sha256:...), or be 'local' for the image "
            "`make node-image` built on this machine",
        )
    kind_config = values.get("kindConfig")
    chart_cache = values.get("chartCacheDir")
    settings = StackSettings(
        stack=stack,
        profile=values.get("profile", stack),
        cluster_name=name,
        cluster_mode=mode,
        kind_config=(REPO_ROOT / kind_config) if kind_config else None,
        expose_ports=boolean("exposePorts", True),
        extra_mounts=mounts,
        ready_timeout_seconds=integer("readyTimeoutSeconds", 300, 3600) or 300,
        services_timeout_seconds=integer("servicesTimeoutSeconds", None, 3600),
        services_enabled=boolean("servicesEnabled", True),
        disabled_services=frozenset(s.strip() for s in values.get("disabledServices", "").split(",") if s.strip()),
        run_id=run_id,
        namespace_prefix=values.get("namespacePrefix", "floe-test"),
        test_image=values.get("testImage") or None,
        chart_cache_dir=(REPO_ROOT / chart_cache) if chart_cache else None,
        offline_charts=boolean("offlineCharts", False),
        reuse_cluster=boolean("reuseCluster", True),
        variant=values.get("variant") or None,
        node_image=values.get("nodeImage") or None,
        job_deadline_seconds=integer("jobDeadlineSeconds", None, 6 * 3600),
        pytest_args=extra_pytest_args,
        ci=boolean("ci", False),
        origins={k: v for k, v in (origins or {}).items() if k in values},
    )
    if problems:
        raise ConfigError(problems)
    return settings
