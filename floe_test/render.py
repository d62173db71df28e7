"""``floe-test render STACK --out DIR``: what a stack would create, without a cluster.

Runs the real program under Pulumi's mocks (``pulumi.runtime.set_mocks``), records every resource
the components register, and writes the kind config, the Kubernetes objects applied directly, each
Helm release with its fully merged values, and a plan summary. Secrets are rendered as
``<secret:NAME>`` markers: render output never contains a secret value.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from floe_model.settings import settings_with_overrides
from floe_test.program import StackPlan, build_stack, plan_stack
from testing.errors import ConfigError, ConfigProblem

PROJECT = "floe-testinfra"
_HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
#: The plan summary every render writes; its presence marks a folder as an earlier render.
PLAN_FILE = "plan.json"
_COMMAND = "command:local:Command"


@dataclass
class Recorded:
    type: str
    name: str
    inputs: dict[str, Any]
    parent: str = ""


@dataclass
class RenderMocks(pulumi.runtime.Mocks):
    """Records resources; answers like the real providers where the program reads outputs."""

    plan: StackPlan
    resources: list[Recorded] = field(default_factory=list)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs)))
        state = dict(args.inputs)
        if args.typ == _COMMAND and "components.cluster_steps ensure" in str(args.inputs.get("create", "")):
            state["stdout"] = json.dumps(
                {
                    "kubeconfig": "<secret:kubeconfig>",
                    "adopted": False,
                    "nodes": self.plan.kind_config.node_names,
                    "config_hash": self.plan.config_hash,
                }
            )
        elif args.typ == _COMMAND and "components.fence_check" in str(args.inputs.get("create", "")):
            state["stdout"] = json.dumps({"fenced": True})
        elif args.typ == _COMMAND:
            state["stdout"] = json.dumps([{"image": i, "action": "loaded"} for i in self.plan.images])
        elif args.typ == _HELM_RELEASE:
            state["status"] = {
                "status": "deployed",
                "name": args.inputs.get("name"),
                "namespace": args.inputs.get("namespace"),
            }
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        return {}, None


def redacted_secret(name: str) -> pulumi.Output[str]:
    return pulumi.Output.secret(f"<secret:{name}>")


def run_under_mocks(plan: StackPlan, *, stack: str) -> tuple[list[Recorded], dict[str, Any]]:
    """Run the program under mocks and return the recorded resources and the stack outputs."""
    mocks = RenderMocks(plan)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
    outputs: dict[str, Any] = {}

    def program() -> None:
        exported = build_stack(plan, redacted_secret)
        for key, value in exported.items():
            outputs[key] = _sync_await(pulumi.Output.from_input(value).future())

    # run_pulumi_func waits for every outstanding registration, as `@pulumi.runtime.test` does.
    _sync_await(run_pulumi_func(program))
    return mocks.resources, outputs


_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def plain(value: Any) -> Any:
    """Mock inputs as people read them: secrets unwrapped (their values are already redacted
    markers here, anything else is replaced), whole-number floats back to ints."""
    if isinstance(value, dict):
        if _SECRET_SIG in value:
            inner = value.get("value")
            if isinstance(inner, str) and not inner.startswith("<secret:"):
                return "<secret>"
            return plain(inner)
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def manifest_of(resource: Recorded) -> dict[str, Any] | None:
    """The Kubernetes object a ``kubernetes:<group>/<version>:<Kind>`` resource applies."""
    if not resource.type.startswith("kubernetes:") or resource.type == _HELM_RELEASE:
        return None
    inputs = plain(resource.inputs)
    _, group_version, kind = resource.type.split(":")
    group, _, version = group_version.rpartition("/")
    api_version = version if group in {"core", ""} else f"{group}/{version}"
    body = {k: v for k, v in inputs.items() if k not in {"apiVersion", "kind"}}
    return {"apiVersion": api_version, "kind": kind, **body}


def release_of(resource: Recorded, plan: StackPlan) -> dict[str, Any]:
    """A Helm release as deployed: the chart it installs and its fully merged values.

    For a pinned upstream chart also where it came from: ``archive`` is the chart's own archive (what the
    contract tests template), ``chart`` what the release installs (the same, or its copy without schema
    files where the schema's remote references cannot be read: ``schemaValidation`` says which).
    """
    inputs = plain(resource.inputs)
    name = inputs.get("name")
    pinned = plan.charts.get(str(name))
    return {
        "name": name,
        "namespace": inputs.get("namespace"),
        "chart": inputs.get("chart"),
        "repo": pinned.pin.repo if pinned else None,
        "version": pinned.pin.version if pinned else None,
        **(
            {
                "chartName": pinned.pin.name,
                "archive": str(pinned.archive),
                "source": pinned.source,
                "schemaValidation": pinned.schema_validation,
            }
            if pinned
            else {}
        ),
        "values": inputs.get("values") or {},
    }


def check_render_target(out: Path) -> None:
    """``out`` is written afresh: it must not be a file, and an existing folder must be empty or an
    earlier render (which is replaced whole, so no file of an older render survives)."""
    from floe_test.preflight import check_out_dir

    check_out_dir(out)
    if out.is_dir() and any(out.iterdir()) and not (out / PLAN_FILE).is_file():
        raise ConfigError(
            [
                ConfigProblem(
                    "--out",
                    str(out),
                    f"is a folder with other files than an earlier render (no {PLAN_FILE}); name a new or empty "
                    "folder (a render replaces its folder whole)",
                )
            ]
        )


def render(stack: str, out: Path, *, overrides: dict[str, str] | None = None) -> dict[str, Any]:
    """Render ``stack`` into a fresh ``out``; return the plan summary (also written as plan.json).

    Everything is checked and rendered before ``out`` is touched; the files are written into a
    temporary sibling folder that then replaces ``out``: bad input leaves nothing behind, and no
    file of an earlier render survives.
    """
    check_render_target(out)
    plan = plan_stack(settings_with_overrides(stack, overrides or {}))
    resources, _ = run_under_mocks(plan, stack=stack)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        summary = write_render(plan, resources, staging, stack)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def write_render(plan: StackPlan, resources: list[Recorded], out: Path, stack: str) -> dict[str, Any]:
    manifests = [m for r in resources if (m := manifest_of(r)) is not None]
    # In the plan's install order: mocks record registrations in whatever order they complete.
    order = [s.name for s in plan.profile.enabled_services]
    releases = sorted(
        (release_of(r, plan) for r in resources if r.type == _HELM_RELEASE), key=lambda r: order.index(str(r["name"]))
    )
    (out / "manifests").mkdir(parents=True, exist_ok=True)
    (out / "releases").mkdir(parents=True, exist_ok=True)
    (out / "kind-config.yaml").write_text(yaml.safe_dump(plan.kind_config.data, sort_keys=False))
    for manifest in manifests:
        meta = manifest.get("metadata") or {}
        ns = f"{meta['namespace']}-" if meta.get("namespace") else ""
        path = out / "manifests" / f"{ns}{manifest['kind'].lower()}-{meta.get('name', 'unnamed')}.yaml"
        path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    for release in releases:
        (out / "releases" / f"{release['name']}.yaml").write_text(yaml.safe_dump(release, sort_keys=False))
    summary = {
        "stack": stack,
        "cluster_name": plan.settings.cluster_name,
        "kubernetes_version": plan.versions.kubernetes,
        "nodes": {"control-plane": plan.kind_config.control_planes, "worker": plan.kind_config.workers},
        "releases": [r["name"] for r in releases],
        "dependencies": {s.name: list(s.depends_on) for s in plan.profile.enabled_services if s.depends_on},
        "images": list(plan.images),
        "config_hash": plan.config_hash,
        "namespace": plan.namespace,
    }
    (out / PLAN_FILE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
