"""The shared gate of live-cluster tests: the API client, or a skip naming what is missing.

``require_cluster()`` skips (``pytest.skip``) with one line starting ``no Kubernetes cluster:`` when
neither a kubeconfig nor in-cluster config exists or the API server does not answer. Set
``FLOE_REQUIRE_CLUSTER=1`` (CI jobs that created a cluster should) to turn that skip into a failure,
so a missing cluster can never pass as "all skipped".
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import pytest

from testing.errors import PrerequisiteError

if TYPE_CHECKING:
    from testing.k8s_client import KubeClient

__all__ = ["CONTEXT_ENV", "REQUIRE_CLUSTER_ENV", "cluster_status", "require_cluster"]

#: Kubeconfig context to use when none is passed (the plugin's ``--floe-context`` wins).
CONTEXT_ENV = "FLOE_KUBE_CONTEXT"
#: When set to 1/true, a missing cluster fails instead of skipping.
REQUIRE_CLUSTER_ENV = "FLOE_REQUIRE_CLUSTER"

_lock = threading.Lock()
_cache: dict[str, KubeClient | PrerequisiteError] = {}


def cluster_status(context: str | None = None) -> KubeClient | PrerequisiteError:
    """The client, or the error saying why there is none (cached per context for the process)."""
    ctx = context or os.environ.get(CONTEXT_ENV) or None
    key = ctx or ""
    with _lock:
        if key not in _cache:
            try:
                from testing.k8s_client import KubeClient
            except ImportError as exc:  # pragma: no cover - kubernetes is a dependency
                _cache[key] = PrerequisiteError(f"no Kubernetes cluster: kubernetes client not installed ({exc})")
            else:
                try:
                    _cache[key] = KubeClient.load(ctx)
                except PrerequisiteError as exc:
                    _cache[key] = exc
        return _cache[key]


def require_cluster(context: str | None = None) -> KubeClient:
    """The API client for ``context``; skips the calling test when there is no cluster."""
    status = cluster_status(context)
    if isinstance(status, PrerequisiteError):
        if os.environ.get(REQUIRE_CLUSTER_ENV, "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{status} ({REQUIRE_CLUSTER_ENV} is set, so this is a failure)", pytrace=False)
        pytest.skip(str(status).splitlines()[0])
    return status


def _reset_cache() -> None:
    """For tests: forget cached clients."""
    with _lock:
        _cache.clear()
