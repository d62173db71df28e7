"""Pulumi components of floe-testinfra: one per module, each with one typed Args class."""

from components.image_preload import ImageBuild, ImagePreload, ImagePreloadArgs, TestRunnerBuild
from components.kind_cluster import KindCluster, KindClusterArgs
from components.platform_services import PlatformServices, PlatformServicesArgs
from components.runner_sandbox import RunnerSandbox, RunnerSandboxArgs
from components.test_job import TestJob, TestJobArgs
from components.test_namespace import TestNamespace, TestNamespaceArgs

__all__ = [
    "ImageBuild",
    "ImagePreload",
    "ImagePreloadArgs",
    "KindCluster",
    "KindClusterArgs",
    "PlatformServices",
    "PlatformServicesArgs",
    "RunnerSandbox",
    "RunnerSandboxArgs",
    "TestJob",
    "TestJobArgs",
    "TestNamespace",
    "TestNamespaceArgs",
    "TestRunnerBuild",
]
