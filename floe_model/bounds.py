"""How long one ``floe-test run`` may take, phase by phase, derived from the same settings it runs with.

``floe-test run`` enforces each bound (``up``, the wait for the Job, collect, refresh, destroy: see
floe_test/run.py) and CI gives each cluster job at least their sum plus its own setup, so a hung run
is stopped, collected and destroyed by floe-test before CI kills the job (a test checks the workflow
against :func:`ci_timeout_minutes`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from components.runner_sandbox import FENCE_CHECK_TIMEOUT_SECONDS

#: The Job's own deadline ends it; the wait allows this much more for Kubernetes to say so (the
#: pod's grace period, the Job controller) before calling the run an infrastructure problem.
JOB_WAIT_MARGIN_SECONDS = 300
#: Image preload (ImagePreloadArgs.timeout_seconds): save, load, import into every node.
PRELOAD_SECONDS = 1800
#: Namespace, sandbox objects, the Job and its volume, and the engine's own start and finish.
ENGINE_OVERHEAD_SECONDS = 180
#: Collecting results, logs, events and the summary (each request is bounded; this bounds them all).
COLLECT_SECONDS = 600
#: ``pulumi refresh`` before the destroy.
REFRESH_SECONDS = 300
#: ``pulumi destroy``: Helm uninstalls (kube-prometheus-stack takes minutes) and the cluster deletion.
DESTROY_SECONDS = 900
#: What a CI cluster job does besides the run: checkout, uv, `make setup`, render, the kind cluster
#: (helm/kind-action waits ≤ 5 min), `make tools` (Go builds when downloads are refused), uploads.
CI_SETUP_MINUTES = 30


@dataclass(frozen=True)
class RunBounds:
    """Seconds each phase of a run may take at most."""

    up: int
    job: int
    collect: int = COLLECT_SECONDS
    refresh: int = REFRESH_SECONDS
    destroy: int = DESTROY_SECONDS

    @property
    def total(self) -> int:
        return self.up + self.job + self.collect + self.refresh + self.destroy


def up_seconds(settings: Any, plan: Any) -> int:
    """``pulumi up``: the cluster, the preload, the services (released in parallel), the fence check."""
    ready = int(settings.ready_timeout_seconds)
    # KindCluster's lifecycle command: create (≤ ready) + node wait (≤ ready) + kind's own margin;
    # an adopted cluster only waits for its nodes.
    cluster = ready * 2 + 300 if settings.cluster_mode == "create" else ready + 60
    enabled = [s for s in plan.profile.services if s.enabled] if settings.services_enabled else []
    override = settings.services_timeout_seconds
    services = max(((override or s.timeout_seconds) + 60 for s in enabled), default=0)
    return cluster + PRELOAD_SECONDS + services + FENCE_CHECK_TIMEOUT_SECONDS + 60 + ENGINE_OVERHEAD_SECONDS


def job_seconds(settings: Any, plan: Any) -> int:
    deadline = settings.job_deadline_seconds or plan.profile.test_job.active_deadline_seconds
    return int(deadline) + JOB_WAIT_MARGIN_SECONDS


def run_bounds(settings: Any, plan: Any) -> RunBounds:
    return RunBounds(up=up_seconds(settings, plan), job=job_seconds(settings, plan))


def ci_timeout_minutes(bounds: RunBounds) -> int:
    """The ``timeout-minutes`` a CI job running this run needs: the run's bound plus CI's own setup."""
    return math.ceil(bounds.total / 60) + CI_SETUP_MINUTES
