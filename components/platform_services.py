"""PlatformServices: one Helm release per enabled service of a deployment profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components._private.labels import TYPE_PREFIX, common_labels
from components._private.validation import Problems
from floe_test.profiles import ServiceSpec, expand_values
from floe_test.versions import Versions


@dataclass(frozen=True, kw_only=True)
class PlatformServicesArgs:
    """Inputs of :class:`PlatformServices`."""

    services: Sequence[ServiceSpec]
    """The profile's services; disabled ones create nothing."""
    versions: Versions
    """Pinned charts and images (placeholders in values resolve against these)."""
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Stack secrets that values refer to as ``{{secret:NAME}}``."""
    chart_cache_dir: Path | None = None
    """A folder of pre-fetched chart archives (``<name>-<version>.tgz``) used instead of the chart repo."""
    require_cached_charts: bool = False
    """Offline: every pinned chart must be in ``chart_cache_dir``; a missing one is an error up front
    (naming it and the ``helm pull`` that provides it) instead of a fetch that hangs or fails late."""
    timeout_override_seconds: int | None = None
    """Readiness bound for every release instead of each service's own (default 600 s)."""
    stack: str = ""
    """Stack name, recorded in namespace labels."""


class PlatformServices(pulumi.ComponentResource):
    """Deploys the services and waits (bounded) until each release's resources are ready."""

    releases: pulumi.Output[dict[str, str]]
    """Service name -> Helm release status (``deployed`` once ready)."""
    namespaces: pulumi.Output[list[str]]
    """Namespaces the services run in."""

    def __init__(self, name: str, args: PlatformServicesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:PlatformServices", name, None, opts)
        enabled = [s for s in args.services if s.enabled]
        _validate(args, enabled)
        namespaces: dict[str, k8s.core.v1.Namespace] = {}
        for ns in dict.fromkeys(s.namespace for s in enabled):
            namespaces[ns] = k8s.core.v1.Namespace(
                f"{name}-ns-{ns}",
                metadata={
                    "name": ns,
                    "labels": {
                        **common_labels(stack=args.stack or None, component="platform"),
                        "pod-security.kubernetes.io/enforce": "baseline",
                        "pod-security.kubernetes.io/warn": "restricted",
                    },
                },
                opts=pulumi.ResourceOptions(parent=self),
            )
        statuses: dict[str, pulumi.Output[str]] = {}
        releases: dict[str, k8s.helm.v3.Release] = {}
        # The profile lists services in install order; each release also waits for the releases of
        # the services it depends on, so a real `up` installs them in the order the plan shows.
        for service in enabled:
            after = [releases[dep] for dep in service.depends_on if dep in releases]
            release = self._release(name, service, args, [namespaces[service.namespace], *after])
            releases[service.name] = release
            statuses[service.name] = release.status.apply(lambda s: str(s["status"]) if s else "unknown")
        self.releases = pulumi.Output.all(**statuses) if statuses else pulumi.Output.from_input({})
        self.namespaces = pulumi.Output.from_input(list(namespaces))
        self.register_outputs({"releases": self.releases, "namespaces": self.namespaces})

    def _release(
        self, name: str, service: ServiceSpec, args: PlatformServicesArgs, after: Sequence[pulumi.Resource]
    ) -> k8s.helm.v3.Release:
        values = expand_values(
            service.values,
            versions=args.versions,
            namespace=service.namespace,
            secret=lambda key: pulumi.Output.secret(args.secrets[key]),
        )
        timeout = args.timeout_override_seconds or service.timeout_seconds
        chart: dict[str, Any]
        if service.chart.local is not None:
            chart = {"chart": str(service.chart.local)}
        else:
            pin = service.chart.pinned
            assert pin is not None  # profiles guarantee one of local/pinned
            cached = args.chart_cache_dir / f"{pin.name}-{pin.version}.tgz" if args.chart_cache_dir else None
            if cached is not None and cached.is_file():
                chart = {"chart": str(cached)}
            else:
                chart = {"chart": pin.name, "version": pin.version, "repository_opts": {"repo": pin.repo}}
        return k8s.helm.v3.Release(
            f"{name}-{service.name}",
            name=service.name,
            namespace=service.namespace,
            values=values,
            timeout=timeout,
            atomic=False,  # keep failed resources for debugging; the collector captures them first
            cleanup_on_fail=False,
            skip_await=False,
            wait_for_jobs=True,
            max_history=3,
            **chart,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=list(after),
                custom_timeouts=pulumi.CustomTimeouts(create=f"{timeout + 60}s", update=f"{timeout + 60}s"),
            ),
        )


def _validate(args: PlatformServicesArgs, enabled: Sequence[ServiceSpec]) -> None:
    problems = Problems("PlatformServices")
    missing = sorted({key for s in enabled for key in s.secrets} - set(args.secrets))
    if missing:
        problems.add(
            "secrets",
            f"values refer to secrets that are not set: {', '.join(missing)} "
            "(set them with `pulumi config set --secret floe-testinfra:NAME`)",
        )
    if args.timeout_override_seconds is not None:
        problems.positive("timeout_override_seconds", args.timeout_override_seconds, maximum=3600)
    if args.chart_cache_dir is not None and not args.chart_cache_dir.is_dir():
        problems.add("chart_cache_dir", f"{args.chart_cache_dir} is not a folder")
    elif args.require_cached_charts:
        if args.chart_cache_dir is None:
            problems.add("chart_cache_dir", "offline charts need a chart cache folder (setting chartCacheDir)")
        else:
            for service in enabled:
                pin = service.chart.pinned
                if pin and not (args.chart_cache_dir / f"{pin.name}-{pin.version}.tgz").is_file():
                    problems.add(
                        f"charts.{service.name}",
                        f"chart {pin.name} {pin.version} is not in {args.chart_cache_dir}; provide it with "
                        f"`helm pull {pin.name} --repo {pin.repo} --version {pin.version} -d {args.chart_cache_dir}` "
                        "on a machine that reaches the repository, or disable the service",
                    )
    problems.raise_if_any()
