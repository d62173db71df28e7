"""Pulumi components of floe-testinfra: one per module, each with one typed Args class.

Beside them are the steps they run as commands (``cluster_steps``, ``preload_steps``, ``fence_check``):
those start as separate processes, so the components (and Pulumi) are imported lazily, on first use,
and a step does not pay for them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from components.image_preload import (
        ImageBuild as ImageBuild,
    )
    from components.image_preload import (
        ImagePreload as ImagePreload,
    )
    from components.image_preload import (
        ImagePreloadArgs as ImagePreloadArgs,
    )
    from components.image_preload import (
        TestRunnerBuild as TestRunnerBuild,
    )
    from components.kind_cluster import KindCluster as KindCluster
    from components.kind_cluster import KindClusterArgs as KindClusterArgs
    from components.platform_services import (
        PlatformServices as PlatformServices,
    )
    from components.platform_services import (
        PlatformServicesArgs as PlatformServicesArgs,
    )
    from components.runner_sandbox import RunnerSandbox as RunnerSandbox
    from components.runner_sandbox import RunnerSandboxArgs as RunnerSandboxArgs
    from components.test_job import TestJob as TestJob
    from components.test_job import TestJobArgs as TestJobArgs
    from components.test_namespace import TestNamespace as TestNamespace
    from components.test_namespace import TestNamespaceArgs as TestNamespaceArgs

_WHERE = {
    "ImageBuild": "image_preload",
    "ImagePreload": "image_preload",
    "ImagePreloadArgs": "image_preload",
    "TestRunnerBuild": "image_preload",
    "KindCluster": "kind_cluster",
    "KindClusterArgs": "kind_cluster",
    "PlatformServices": "platform_services",
    "PlatformServicesArgs": "platform_services",
    "RunnerSandbox": "runner_sandbox",
    "RunnerSandboxArgs": "runner_sandbox",
    "TestJob": "test_job",
    "TestJobArgs": "test_job",
    "TestNamespace": "test_namespace",
    "TestNamespaceArgs": "test_namespace",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'components' has no attribute {name!r}")
    return getattr(importlib.import_module(f"components.{_WHERE[name]}"), name)
