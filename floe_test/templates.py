"""``templates/test-job.yaml``: the test Job as a plain manifest, rendered from the TestJob component's
own ``job_manifest`` for the integration profile, so the file and the deployed Job cannot drift."""

from __future__ import annotations

import yaml

from components.test_job import TestJobArgs, job_manifest
from floe_model.paths import REPO_ROOT
from floe_model.profiles import load_profile
from floe_model.versions import load_versions

TEMPLATE_PATH = REPO_ROOT / "templates" / "test-job.yaml"
HEADER = """\
# The test Job (REQ-639) for the integration profile, run id "local".
# GENERATED from components/test_job.py by `make templates`; do not edit (a test fails on drift).
# Image: the test-runner image built from testing/Dockerfile (tag derived from its content).
"""


def render_test_job_template() -> str:
    versions = load_versions()
    profile = load_profile("integration", versions)
    job = profile.test_job
    args = TestJobArgs(
        namespace="floe-test-local",
        run_id="local",
        image=f"{versions.images['test-runner'].repository}:local",
        pytest_args=job.pytest_args,
        endpoints=profile.endpoints,
        platform_namespace=profile.platform_namespace,
        probe_image=versions.images["busybox"].ref,
        active_deadline_seconds=job.active_deadline_seconds,
        test_timeout_seconds=job.test_timeout_seconds,
        resources=job.resources,
        results_storage=job.results_storage,
    )
    return HEADER + yaml.safe_dump(job_manifest(args), sort_keys=False)
