"""Releases install in an order derived from the services' declared dependencies, the same every run."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pytest

from components import PlatformServices, PlatformServicesArgs
from floe_model.paths import K8S_DIR
from floe_model.profiles import parse_profile
from floe_model.versions import load_versions
from floe_test.render import render
from testing.errors import ConfigError
from tests.unit.conftest import load_rendered

# Every dependency the profiles declare, checked against the plan of each stack and variant.
DECLARED = {
    "integration": [("postgresql", "dagster")],
    "e2e": [("postgresql", "dagster"), ("jaeger", "otel-collector")],
}


def _profile(services: dict[str, Any]) -> Any:
    data = {"profile": "t", "kindConfig": "kind-config.yaml", "services": services}
    return parse_profile(data, "test profile", K8S_DIR, load_versions())


def _service(*depends_on: str) -> dict[str, Any]:
    return {"chart": {"local": "charts/app"}, **({"dependsOn": list(depends_on)} if depends_on else {})}


def test_a_service_is_installed_after_what_it_depends_on_whatever_order_the_profile_lists():
    profile = _profile({"dagster": _service("postgresql"), "cube": _service(), "postgresql": _service()})
    assert [s.name for s in profile.services] == ["cube", "postgresql", "dagster"]


def test_services_without_dependencies_keep_the_profile_order():
    profile = _profile({"b": _service(), "a": _service(), "c": _service()})
    assert [s.name for s in profile.services] == ["b", "a", "c"]


@pytest.mark.parametrize(
    ("services", "message"),
    [
        ({"a": _service("b"), "b": _service("a")}, "dependencies form a cycle among: a -> b"),
        ({"a": _service("nosuch")}, "services.a.dependsOn: 'nosuch' is not a service of this profile"),
        ({"a": _service("a")}, "services.a.dependsOn: a service cannot depend on itself"),
        ({"a": {**_service(), "dependsOn": "b"}}, "services.a.dependsOn: must be a list of service names"),
    ],
    ids=["cycle", "unknown", "itself", "not-a-list"],
)
def test_bad_dependencies_are_named(services, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _profile(services)


@pytest.mark.parametrize("variant", [None, "airgapped"], ids=["as-written", "airgapped"])
@pytest.mark.parametrize("stack", ["integration", "e2e"])
def test_plan_lists_releases_in_dependency_order_identically_on_every_render(tmp_path, stack, variant):
    overrides = {"variant": variant} if variant else {}
    plans = []
    for attempt in range(3):
        out = tmp_path / str(attempt)
        render(stack, out, overrides=overrides)
        plans.append(load_rendered(out)["plan"])
    releases = plans[0]["releases"]
    assert all(p["releases"] == releases for p in plans), [p["releases"] for p in plans]
    for first, then in DECLARED[stack]:
        if first in releases and then in releases:
            assert releases.index(first) < releases.index(then), releases
    assert plans[0]["dependencies"].get("dagster") == ["postgresql"]


def test_each_release_waits_for_the_releases_it_depends_on(monkeypatch):
    """Pulumi's depends_on follows the declaration, so a real `up` installs in the plan's order."""
    created: dict[str, list[str]] = {}
    original = k8s.helm.v3.Release.__init__

    def recording(self: Any, resource_name: str, *args: Any, opts: Any = None, **kwargs: Any) -> None:
        created[kwargs["name"]] = [
            getattr(dep, "_name", "") for dep in (opts.depends_on or []) if isinstance(dep, k8s.helm.v3.Release)
        ]
        original(self, resource_name, *args, opts=opts, **kwargs)

    monkeypatch.setattr(k8s.helm.v3.Release, "__init__", recording)
    profile = _profile({"dagster": _service("postgresql"), "postgresql": _service(), "redis": _service()})

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
            return f"{args.name}-id", dict(args.inputs)

        def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], None]:
            return {}, None

    pulumi.runtime.set_mocks(Mocks(), project="floe-testinfra", stack="unit", preview=False)
    PlatformServices("p", PlatformServicesArgs(services=profile.services, versions=load_versions()))
    assert list(created) == ["postgresql", "dagster", "redis"]
    assert created == {"postgresql": [], "dagster": ["p-postgresql"], "redis": []}
