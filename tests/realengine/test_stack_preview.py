"""``pulumi preview`` of the project's own stacks with the real engine, offline, without a cluster.

Runs the pinned CLI, Python language host and both provider plugins from the toolchain cache
(``python -m floe_build.toolchain install``) through the Automation API, against a throw-away file backend
under ``.state/`` (empty passphrase). The tracked ``Pulumi.<stack>.yaml`` files are never written: the
program runs from a copy whose stack file holds the repository's stack config plus the test's overrides.

* ``integration`` with ``servicesEnabled=false``: the cluster's Command resources preview without Docker,
  and the Kubernetes resources preview against a provider whose kubeconfig is still unknown. The
  real engine registers exactly the resources the mocked program run (floe_test.render) records.
* Both full stacks with ``offlineCharts=true``, an empty ``chartCacheDir`` and no offline chart repository
  (``FLOE_OFFLINE_CHARTS`` naming an empty folder): the preview fails up front, naming every pinned chart
  that is missing, instead of reaching for an unreachable chart repository.
* A full stack's plain preview does not fetch charts: the provider's kubeconfig is the cluster Command's
  output, unknown until ``up`` has created the cluster, so Helm releases preview as unknown (about 7 s
  here for either stack). The chart fetch happens in ``up``; the last test shows how it fails where the
  repository is unreachable: fast, naming the chart and its repository.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_build.toolchain import Toolchain, pulumi_env

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".venv"
PROJECT = "floe-testinfra"


def _missing(chain: Toolchain) -> list[str]:
    wanted = [
        chain.pulumi_root / "bin" / name for name in ("pulumi", "pulumi-language-python", "pulumi-language-python-exec")
    ]
    plugins = chain.pulumi_home / "plugins"
    for tool, plugin in (("pulumi-resource-command", "command"), ("pulumi-resource-kubernetes", "kubernetes")):
        wanted.append(plugins / f"resource-{plugin}-{chain.pinned(tool)}" / tool)
    return [f"{path.name} {path.parent.name.rsplit('-', 1)[-1]}" for path in wanted if not path.is_file()]


_CHAIN = Toolchain()
_MISSING = _missing(_CHAIN)
pytestmark = pytest.mark.skipif(
    bool(_MISSING),
    reason=f"toolchain cache {_CHAIN.cache} lacks {', '.join(_MISSING)}: run `python -m floe_build.toolchain install`",
)


def _offline_workspace(work: Path, backend: Path, extra_env: dict[str, str] | None = None) -> Any:
    """A workspace on the pinned CLI and plugins, with its own local backend (nothing downloaded)."""
    from pulumi import automation as auto

    backend.mkdir()
    env = pulumi_env(_CHAIN)
    env.update({"PULUMI_BACKEND_URL": f"file://{backend}", "PULUMI_CONFIG_PASSPHRASE": "", **(extra_env or {})})
    return auto.LocalWorkspace(
        work_dir=str(work),
        pulumi_command=auto.PulumiCommand(root=str(_CHAIN.pulumi_root)),
        env_vars=env,
        pulumi_home=str(_CHAIN.pulumi_home),
    )


class Preview:
    """One stack previewed in a copy of the project, with its own file backend."""

    def __init__(self, root: Path, stack: str, overrides: dict[str, str], env: dict[str, str] | None = None) -> None:
        from pulumi import automation as auto

        from floe_model.settings import read_stack_file

        self.stack_name = stack
        self.config = {**read_stack_file(stack), **overrides}
        work = root / "program"
        work.mkdir(parents=True)
        shutil.copy2(REPO / "__main__.py", work / "__main__.py")
        project = yaml.safe_load((REPO / "Pulumi.yaml").read_text())
        project["runtime"]["options"]["virtualenv"] = str(VENV)
        (work / "Pulumi.yaml").write_text(yaml.safe_dump(project, sort_keys=False))
        stack_file = {"config": {f"{PROJECT}:{key}": value for key, value in self.config.items()}}
        (work / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(stack_file, sort_keys=False))
        self.stack = auto.Stack.create(stack, _offline_workspace(work, root / "backend", env))
        self.events: list[Any] = []
        self.output: list[str] = []
        self.seconds = 0.0

    def run(self) -> Any:
        started = time.monotonic()
        try:
            return self.stack.preview(on_output=self.output.append, on_event=self.events.append, color="never")
        finally:
            self.seconds = time.monotonic() - started
            print(f"preview of {self.stack_name}: {self.seconds:.1f}s")

    def planned(self) -> Counter[tuple[str, str]]:
        """(type, op) of every resource step the engine planned."""
        steps = [e.resource_pre_event.metadata for e in self.events if e.resource_pre_event]
        return Counter((step.type, str(step.op.value if hasattr(step.op, "value") else step.op)) for step in steps)

    def names(self) -> Counter[tuple[str, str]]:
        steps = [e.resource_pre_event.metadata for e in self.events if e.resource_pre_event]
        return Counter((step.type, step.urn.rsplit("::", 1)[-1]) for step in steps)


@pytest.fixture
def scratch() -> Iterator[Path]:
    # Below the repository (git-ignored .state/) so the uv toolchain of the Python host finds uv.lock.
    parent = REPO / ".state" / "realengine"
    parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix="preview-", dir=parent))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _mocked_resources(stack: str, config: dict[str, str]) -> Counter[tuple[str, str]]:
    from floe_model.settings import parse_settings
    from floe_test.program import plan_stack
    from floe_test.render import run_under_mocks

    resources, _ = run_under_mocks(plan_stack(parse_settings(stack, config)), stack=stack)
    return Counter((r.type, r.name) for r in resources)


#: Every resource the integration stack without services creates, by type (24): the same set the mocked
#: run records, plus the stack and the default Command provider that only the engine registers.
EXPECTED_WITHOUT_SERVICES = {
    "pulumi:pulumi:Stack": 1,
    "pulumi:providers:command": 1,
    "pulumi:providers:kubernetes": 1,
    "floe:testinfra:KindCluster": 1,
    "floe:testinfra:ImagePreload": 1,
    "floe:testinfra:TestNamespace": 1,
    "floe:testinfra:TestJob": 1,
    "floe:testinfra:RunnerSandbox": 1,
    "command:local:Command": 3,  # cluster-lifecycle, images-load, the fence's proof
    "kubernetes:core/v1:Namespace": 1,
    "kubernetes:core/v1:ServiceAccount": 1,
    "kubernetes:core/v1:Secret": 1,
    "kubernetes:core/v1:PersistentVolumeClaim": 1,
    "kubernetes:batch/v1:Job": 1,
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole": 3,
    "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding": 2,
    "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding": 1,
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy": 1,
    "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding": 1,
}


@pytest.mark.timeout(600)
def test_integration_without_services_previews_offline_as_the_mocks_predict(scratch: Path) -> None:
    preview = Preview(scratch, "integration", {"servicesEnabled": "false"})
    result = preview.run()

    planned = preview.planned()
    assert {op for _type, op in planned} == {"create"}, planned
    by_type = Counter[str]()
    for (type_, _op), count in planned.items():
        by_type[type_] += count
    assert dict(by_type) == EXPECTED_WITHOUT_SERVICES
    # The summary leaves out the default provider the engine registers for itself.
    assert result.change_summary == {"create": sum(EXPECTED_WITHOUT_SERVICES.values()) - 1}
    # Outputs computed by the cluster's Command are unknown in a preview (no Docker, no cluster).
    assert "[unknown]" in "".join(preview.output)

    def ours(names: Counter[tuple[str, str]]) -> Counter[tuple[str, str]]:
        return Counter({key: n for key, n in names.items() if not key[0].startswith("pulumi:")})

    assert ours(preview.names()) == ours(_mocked_resources("integration", preview.config))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("stack", ["integration", "e2e"])
def test_offline_charts_fail_the_preview_up_front_naming_each_missing_chart(scratch: Path, stack: str) -> None:
    from pulumi import automation as auto

    from floe_model.profiles import load_profile
    from floe_model.versions import load_versions

    empty = scratch / "charts"
    empty.mkdir()
    no_repo = {"FLOE_OFFLINE_CHARTS": str(scratch / "no-offline-repo")}
    preview = Preview(scratch, stack, {"offlineCharts": "true", "chartCacheDir": str(empty)}, env=no_repo)
    with pytest.raises(auto.CommandError) as failure:
        preview.run()

    versions = load_versions()
    profile = load_profile(preview.config["profile"], versions)
    message = str(failure.value) + "".join(preview.output)
    pins = [s.chart.pinned for s in profile.enabled_services if s.chart.pinned]
    assert pins, "the stack deploys no pinned chart"
    for pin in pins:
        named = f"chart {pin.name} {pin.version} is not in {empty}"
        assert named in message, f"{named!r} not in the failure:\n{message[-3000:]}"
    assert preview.seconds < 120, f"the missing charts took {preview.seconds:.0f}s to report"


_CHART_PROBE = '''
import pulumi, pulumi_kubernetes as k8s

# A known kubeconfig (an address nothing listens on): unlike the stacks, whose kubeconfig stays unknown
# until the cluster exists, the provider checks the Release in the preview, which fetches the chart.
KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
users: [{name: u, user: {token: unused}}]
"""
provider = k8s.Provider("unreachable", kubeconfig=KUBECONFIG)
k8s.helm.v3.Release("probe", chart=NAME, version=VERSION,
                    repository_opts=k8s.helm.v3.RepositoryOptsArgs(repo=REPO),
                    opts=pulumi.ResourceOptions(provider=provider))
'''


@pytest.mark.timeout(600)
def test_a_chart_whose_repository_is_unreachable_fails_fast_naming_it(scratch: Path) -> None:
    """Where the pinned chart repository cannot be reached (these machines), the Release fails in the
    preview within a minute and names the chart and its repository; where it can, the preview passes."""
    from pulumi import automation as auto

    from floe_model.versions import load_versions

    pin = load_versions().charts["dagster"]
    work = scratch / "probe"
    work.mkdir()
    program = f"NAME, VERSION, REPO = {pin.name!r}, {pin.version!r}, {pin.repo!r}\n" + _CHART_PROBE
    (work / "__main__.py").write_text(program)
    runtime = {"name": "python", "options": {"toolchain": "uv", "virtualenv": str(VENV)}}
    project = {"name": "floe-chart-probe", "runtime": runtime}
    (work / "Pulumi.yaml").write_text(yaml.safe_dump(project))
    stack = auto.Stack.create("probe", _offline_workspace(work, scratch / "backend"))
    output: list[str] = []
    started = time.monotonic()
    try:
        stack.preview(on_output=output.append, color="never")
    except auto.CommandError as failure:
        seconds = time.monotonic() - started
        print(f"chart fetch failed after {seconds:.1f}s")
        message = str(failure) + "".join(output)
        assert f"property chart value {{{pin.name}}} has a problem" in message, message[-3000:]
        assert pin.repo in message
        assert seconds < 60, f"an unreachable chart repository took {seconds:.0f}s to fail"
