"""REQ-639: inside the test Job: API access, non-root, read-only root, results volume, env."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration._env import require_test_job

pytestmark = pytest.mark.integration


def test_runs_as_non_root():
    require_test_job()
    assert os.getuid() != 0


def test_root_filesystem_is_read_only_and_results_writable():
    require_test_job()
    with pytest.raises(OSError, match="Read-only file system"):
        Path("/app/should-not-exist").write_text("x")
    probe = Path(os.environ["FLOE_RESULTS_DIR"]) / ".write-check"
    probe.write_text("ok")
    probe.unlink()


def test_pod_reaches_the_kubernetes_api_with_its_service_account():
    require_test_job()
    from kubernetes import client, config

    config.load_incluster_config()
    pods = client.CoreV1Api().list_namespaced_pod(os.environ["FLOE_NAMESPACE"], _request_timeout=30).items
    assert any(p.metadata.labels.get("job-name") == "test-runner" for p in pods)


def test_unbuffered_output_and_run_identity_are_set():
    require_test_job()
    assert os.environ["PYTHONUNBUFFERED"] == "1"
    assert os.environ["FLOE_RUN_ID"]
