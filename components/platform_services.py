"""PlatformServices: one Helm release per enabled service of a deployment profile."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components._private.labels import TYPE_PREFIX, common_labels
from components._private.validation import Problems
from floe_model.profiles import ServiceSpec, expand_values
from floe_model.versions import Versions

#: Namespaces every cluster has: a stack deploys into them but never creates, labels or deletes them.
CLUSTER_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True, kw_only=True)
class PlatformServicesArgs:
    """Inputs of :class:`PlatformServices`."""

    services: Sequence[ServiceSpec]
    """The profile's services; disabled ones create nothing."""
    versions: Versions
    """Pinned charts and images (placeholders in values resolve against these)."""
    secrets: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Stack secrets that values refer to as ``{{secret:NAME}}``."""
    charts: Mapping[str, Path] = field(default_factory=dict)
    """Service name -> the local archive of its pinned chart (components.charts found it before anything is
    created, so no release ever fetches a chart). Charts of our own come from the service's spec."""
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
        # Namespaces every cluster has (metrics-server goes to kube-system) are never the stack's: creating
        # one fails on an existing object, its labels would govern the cluster's own pods, and destroy would
        # delete it.
        for ns in dict.fromkeys(s.namespace for s in enabled if s.namespace not in CLUSTER_NAMESPACES):
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
            owned = [namespaces[service.namespace]] if service.namespace in namespaces else []
            release = self._release(name, service, args, [*owned, *after])
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
        chart = service.chart.local if service.chart.local is not None else args.charts[service.name]
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
            chart=str(chart),
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
    for service in enabled:
        pin = service.chart.pinned
        if service.chart.local is not None or pin is None:
            continue
        archive = args.charts.get(service.name)
        if archive is None or not Path(archive).is_file():
            problems.add(
                f"charts.{service.name}",
                f"no local archive of chart {pin.name} {pin.version} (got {archive}); "
                "find it with components.charts.ChartCache, which pulls it or takes it from the offline repository",
            )
    problems.raise_if_any()
