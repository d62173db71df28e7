"""The Pulumi program: stack settings in, components out. ``__main__.py`` only calls :func:`run`.

Built as functions so unit tests and ``floe-test render`` run the very same code under mocks.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pulumi

from components import (
    ImageBuild,
    ImagePreload,
    ImagePreloadArgs,
    KindCluster,
    KindClusterArgs,
    PlatformServices,
    PlatformServicesArgs,
    RunnerSandbox,
    RunnerSandboxArgs,
    TestJob,
    TestJobArgs,
    TestNamespace,
    TestNamespaceArgs,
    TestRunnerBuild,
)
from components.charts import ChartArchive, ChartCache, default_cache_dir
from components.cluster_marker import marker_labels
from floe_model.image_tag import runner_image_ref
from floe_model.kind_config import (
    KindConfig,
    config_hash,
    load_kind_config,
    render_kind_config,
    unpinned_node_images,
    with_hash_label,
)
from floe_model.local_images import LocalBuild, builds_for, with_content_tags
from floe_model.paths import REPO_ROOT
from floe_model.profiles import Profile, load_profile
from floe_model.secrets_store import generated_secret
from floe_model.settings import PROJECT, StackSettings, parse_settings
from floe_model.versions import Versions, load_versions
from testing.errors import ConfigError, ConfigProblem
from testing.plugin import infra_rerun_args

#: Default image for short-lived helper pods (results reader, network probes): always preloaded.
#: A profile (or its variant) may name another key as ``testJob.helperImage``.
HELPER_IMAGE_KEY = "busybox"


@dataclass(frozen=True)
class StackPlan:
    """Everything the stack will create, decided before any resource exists."""

    settings: StackSettings
    versions: Versions
    profile: Profile
    kind_config: KindConfig
    config_hash: str
    test_runner_image: str
    images: tuple[str, ...]
    node_image: str
    """The node image: versions.yaml's pinned one, or one built here (setting nodeImage)."""
    charts: Mapping[str, ChartArchive]
    """Enabled service -> its pinned upstream chart, found in the chart cache (components.charts)."""
    local_builds: tuple[LocalBuild, ...] = ()
    """Images of the stack that are built here when missing (floe_model.local_images), besides the runner."""

    @property
    def namespace(self) -> str:
        return f"{self.settings.namespace_prefix}-{self.settings.run_id}"

    @property
    def helper_image(self) -> str:
        return self.versions.images[self.profile.test_job.helper_image].ref


def resolve_node_image(settings: StackSettings, versions: Versions) -> tuple[str, tuple[str, ...]]:
    """The node image a stack uses, and the containerd patches that image needs on this host."""
    if settings.node_image == "local":
        # A node image built on this machine (`make node-image`), and the containerd settings this
        # host needs (only where detected: e.g. no CAP_SYS_RESOURCE in the bounding set).
        from floe_build.cluster_smoke import containerd_patches, node_image_tag

        return node_image_tag(versions.kubernetes), tuple(containerd_patches())
    return settings.node_image or versions.node_image, ()


def check_node_images(settings: StackSettings, config: KindConfig, node_image: str) -> None:
    """Every registry node image, the stack's and any per-node one in the kind config, carries a digest
    (only an image built on this machine, nodeImage=local, has none)."""
    problems = []
    local = node_image if settings.node_image == "local" else None
    # (The stack's own nodeImage setting is checked where settings are read, naming --set or the file.)
    for problem in unpinned_node_images(config, allowed=[local] if local else []):
        field, _, text = problem.partition(": ")
        problems.append(ConfigProblem(config.source, field, text))
    if problems:
        raise ConfigError(problems)


def _named_after_setting(problem: ConfigProblem, settings: StackSettings) -> ConfigProblem:
    """A profile problem caused by a setting (an unknown variant, an unknown disabled service) names
    the setting where the user gave it (``--set`` or the stack file), not the profile."""
    if problem.field == "variants" and problem.problem.startswith("unknown variant") and settings.variant:
        return ConfigProblem(*settings.where("variant"), problem.problem)
    if problem.field == "services" and problem.problem.startswith("cannot disable"):
        return ConfigProblem(*settings.where("disabledServices"), problem.problem)
    return problem


def plan_stack(settings: StackSettings, versions: Versions | None = None) -> StackPlan:
    # Images built here get the tag of their current content, so values, plan and preload agree.
    versions = with_content_tags(versions or load_versions())
    disabled = settings.disabled_services
    try:
        profile = load_profile(settings.profile, versions, disabled=disabled, variant=settings.variant)
    except ConfigError as exc:
        raise ConfigError([_named_after_setting(p, settings) for p in exc.problems]) from None
    if not settings.services_enabled:
        profile = load_profile(
            settings.profile, versions, disabled=frozenset(s.name for s in profile.services), variant=settings.variant
        )
    deadline = settings.job_deadline_seconds or profile.test_job.active_deadline_seconds
    if profile.test_job.test_timeout_seconds > deadline:
        source, key = settings.where("jobDeadlineSeconds") if settings.job_deadline_seconds else ("profile", "-")
        raise ConfigError(
            [
                ConfigProblem(
                    source,
                    key,
                    f"{deadline} s is shorter than one test's timeout ({profile.test_job.test_timeout_seconds} s, "
                    "testTimeoutSeconds of the profile): the deadline would end the run inside the first slow test",
                )
            ]
        )
    base = load_kind_config(settings.kind_config or profile.kind_config)
    node_image, patches = resolve_node_image(settings, versions)
    rendered = render_kind_config(
        base,
        cluster_name=settings.cluster_name,
        expose_ports=settings.expose_ports,
        extra_mounts=settings.extra_mounts,
        containerd_patches=patches,
    )
    check_node_images(settings, rendered, node_image)
    digest = config_hash(rendered, kind_version=versions.kind, node_image=node_image)
    runner = settings.test_image or runner_image_ref(versions, profile.test_job.image)
    images = [runner, versions.images[profile.test_job.helper_image].ref]
    images += [versions.images[key].ref for key in profile.images if key != profile.test_job.image]
    return StackPlan(
        settings,
        versions,
        profile,
        with_hash_label(rendered, digest, marker_labels(settings.stack)),
        digest,
        runner,
        tuple(dict.fromkeys(images)),
        node_image,
        resolve_charts(profile, settings, versions),
        builds_for(versions, profile.images),
    )


def resolve_charts(profile: Profile, settings: StackSettings, versions: Versions) -> dict[str, ChartArchive]:
    """Every enabled service's pinned chart from the one chart cache; all missing charts in one error."""
    cache = ChartCache(
        cache_dir=settings.chart_cache_dir or default_cache_dir(), allow_pull=not settings.offline_charts
    )
    charts: dict[str, ChartArchive] = {}
    problems: list[ConfigProblem] = []
    for service in profile.enabled_services:
        pin = service.chart.pinned
        if pin is None:
            continue
        key = next(k for k, v in versions.charts.items() if v == pin)
        try:
            charts[service.name] = cache.get(key, pin)
        except ConfigError as exc:
            problems += exc.problems
    if problems:
        raise ConfigError(problems)
    return charts


def build_stack(
    plan: StackPlan, secret: Callable[[str], pulumi.Input[str]], kubeconfig: pulumi.Input[str] | None = None
) -> dict[str, object]:
    s = plan.settings
    cluster = KindCluster(
        "cluster",
        KindClusterArgs(
            cluster_name=s.cluster_name,
            config=plan.kind_config,
            config_hash=plan.config_hash,
            node_image=plan.node_image,
            node_image_local=s.node_image == "local",
            mode=s.cluster_mode,  # type: ignore[arg-type]
            kubeconfig=kubeconfig,
            ready_timeout_seconds=s.ready_timeout_seconds,
            reuse=s.reuse_cluster,
        ),
    )
    build = (
        None
        if s.test_image
        else TestRunnerBuild(
            dockerfile=REPO_ROOT / "testing" / "Dockerfile",
            context=REPO_ROOT,
            build_args=(("BASE_IMAGE", plan.versions.images[plan.profile.test_job.base_image].ref),),
        )
    )
    preload = ImagePreload(
        "images",
        ImagePreloadArgs(
            cluster_name=cluster.cluster_name,
            images=plan.images,
            test_runner_image=plan.test_runner_image,
            test_runner_build=build,
            builds=[ImageBuild(**dataclasses.asdict(b)) for b in plan.local_builds],
        ),
        opts=pulumi.ResourceOptions(depends_on=[cluster]),
    )
    k8s_opts = pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}, depends_on=[preload])
    secrets: Mapping[str, pulumi.Input[str]] = {name: secret(name) for name in plan.profile.secrets}
    services = None
    if plan.profile.enabled_services:
        services = PlatformServices(
            "platform",
            PlatformServicesArgs(
                services=plan.profile.services,
                versions=plan.versions,
                secrets=secrets,
                charts={name: chart.deployed for name, chart in plan.charts.items()},
                timeout_override_seconds=s.services_timeout_seconds,
                stack=s.stack,
            ),
            opts=k8s_opts,
        )
    namespace = TestNamespace(
        "run",
        TestNamespaceArgs(run_id=s.run_id, prefix=s.namespace_prefix, stack=s.stack),
        opts=pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}),
    )
    job_spec = plan.profile.test_job
    pytest_args, extra_env = (
        [*job_spec.pytest_args, *s.pytest_args],
        {
            "FLOE_PROFILE": plan.profile.name,
            "FLOE_EXPECTED_NODES": str(plan.kind_config.control_planes + plan.kind_config.workers),
            # Which variant of the profile is deployed (empty: the profile as written); tests of a
            # reduced variant check what it deploys, not the full profile.
            "FLOE_VARIANT": s.variant or "",
        },
    )
    if s.ci:
        # CI: failed namespaces are not kept, a missing cluster fails instead of skipping, and only
        # infrastructure errors are retried (twice); assertion failures never are.
        pytest_args += infra_rerun_args(2)
        extra_env |= {"FLOE_CI": "1", "FLOE_REQUIRE_CLUSTER": "1"}
    # The runner's identity and its fence first; the Job only once the fence is proven (the check
    # runs as the runner, with the admin kubeconfig).
    sandbox = RunnerSandbox(
        "runner",
        RunnerSandboxArgs(
            namespace=plan.namespace,
            run_id=s.run_id,
            kubeconfig=cluster.kubeconfig,
            context=None if s.cluster_mode == "kubeconfig" else f"kind-{s.cluster_name}",
        ),
        opts=pulumi.ResourceOptions(providers={"kubernetes": cluster.provider}, depends_on=[namespace]),
    )
    job = TestJob(
        "tests",
        TestJobArgs(
            namespace=plan.namespace,
            run_id=s.run_id,
            image=plan.test_runner_image,
            pytest_args=pytest_args,
            endpoints=plan.profile.endpoints,
            secret_env={env: secrets[name] for env, name in job_spec.secret_env.items() if name in secrets},
            platform_namespace=plan.profile.platform_namespace,
            probe_image=plan.helper_image,
            active_deadline_seconds=s.job_deadline_seconds or job_spec.active_deadline_seconds,
            test_timeout_seconds=job_spec.test_timeout_seconds,
            resources=job_spec.resources,
            results_storage=job_spec.results_storage,
            extra_env=extra_env,
        ),
        opts=pulumi.ResourceOptions(
            providers={"kubernetes": cluster.provider},
            depends_on=[namespace, sandbox, preload, *([services] if services else [])],
        ),
    )
    return {
        "clusterName": cluster.cluster_name,
        "kubeconfig": cluster.kubeconfig,
        "nodeNames": cluster.node_names,
        "configHash": cluster.config_hash,
        "namespace": namespace.namespace,
        "platformNamespace": plan.profile.platform_namespace,
        "jobName": job.job_name,
        "resultsClaim": job.results_claim,
        "releases": services.releases if services else {},
        "images": list(plan.images),
    }


def run() -> None:
    """Entry point of ``__main__.py``: read the stack's config, build, export."""
    config = pulumi.Config(PROJECT)
    stack = pulumi.get_stack()
    from floe_model.settings import KEYS, SECRET_KEYS, run_overrides

    raw = {key: value for key in KEYS if key not in SECRET_KEYS and (value := config.get(key)) is not None}
    raw |= run_overrides(os.environ)
    settings = parse_settings(stack, raw, source=f"stack {stack} config")
    plan = plan_stack(settings)
    kubeconfig = config.get_secret("kubeconfig")

    def secret(name: str) -> pulumi.Input[str]:
        configured: pulumi.Output[str] | None = config.get_secret(name)
        return configured if configured is not None else pulumi.Output.secret(generated_secret(stack, name))

    for key, exported in build_stack(plan, secret, kubeconfig).items():
        pulumi.export(key, exported)
