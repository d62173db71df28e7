"""The test Job: REQ-639/646 settings, restricted pod security, results volume, injected endpoints."""

from __future__ import annotations

import json

import pytest

from components.test_job import TestJobArgs, job_manifest
from floe_test.templates import TEMPLATE_PATH, render_test_job_template
from tests.unit.conftest import objects


@pytest.fixture(params=["integration", "e2e"])
def job(request, rendered):
    return objects(rendered[request.param], "Job")[0]


def test_job_fails_fast_and_is_bounded(job):
    spec = job["spec"]
    assert spec["backoffLimit"] == 0
    assert spec["ttlSecondsAfterFinished"] == 3600
    assert spec["activeDeadlineSeconds"] == 3600
    assert spec["template"]["spec"]["restartPolicy"] == "Never"


def test_job_never_makes_pulumi_up_wait_or_fail(job):
    assert job["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_pod_meets_the_restricted_profile(job):
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]  # noqa: S108 - the pod's scratch mount, not a host path
    assert "persistentVolumeClaim" in volumes[mounts["/results"]]
    assert container["resources"]["limits"] and container["resources"]["requests"]


def test_results_and_timeouts_are_passed_to_pytest(job):
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--junitxml=/results/junit.xml" in args
    assert "--cov-report=xml:/results/coverage.xml" in args
    assert "--timeout=300" in args


def test_endpoints_come_from_the_values_that_deployed_the_services(rendered):
    job = objects(rendered["integration"], "Job")[0]
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    pg = rendered["integration"]["releases"]["postgresql"]["values"]
    assert env["FLOE_POSTGRES_HOST"] == f"{pg['fullnameOverride']}.floe-platform.svc.cluster.local"
    assert env["FLOE_POSTGRES_PORT"] == str(pg["service"]["port"])
    dagster = rendered["integration"]["releases"]["dagster"]["values"]
    assert env["FLOE_DAGSTER_PORT"] == str(dagster["dagsterWebserver"]["service"]["port"])
    services = json.loads(env["FLOE_SERVICES"])
    assert {s["name"] for s in services} == {"postgres", "dagster", "dagster-code"}
    assert env["PYTHONUNBUFFERED"] == "1"


def test_passwords_reach_the_job_only_through_a_secret(rendered):
    job = objects(rendered["integration"], "Job")[0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert all("PASSWORD" not in e["name"] for e in container["env"])
    assert container["envFrom"] == [{"secretRef": {"name": "test-runner-credentials", "optional": False}}]


def test_committed_template_is_rendered_from_the_component():
    assert TEMPLATE_PATH.read_text() == render_test_job_template(), "run `make templates`"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"active_deadline_seconds": 0}, "active_deadline_seconds"),
        ({"image": "ghcr.io/x/runner:latest"}, "pinned by a tag"),
        ({"namespace": "Bad_NS"}, "namespace"),
        ({"test_timeout_seconds": 7200, "active_deadline_seconds": 3600}, "test_timeout_seconds"),
    ],
    ids=["zero-deadline", "latest-tag", "bad-namespace", "test-timeout-over-deadline"],
)
def test_bad_job_inputs_are_rejected_with_the_field_named(change, message):
    from components.test_job import _validate
    from testing.errors import ConfigError

    base = {"namespace": "floe-test-x", "run_id": "x", "image": "ghcr.io/x/runner:c-1"}
    with pytest.raises(ConfigError, match=message):
        _validate(TestJobArgs(**{**base, **change}))


def test_job_manifest_is_deterministic():
    args = TestJobArgs(namespace="floe-test-x", run_id="x", image="ghcr.io/x/runner:c-1")
    assert job_manifest(args) == job_manifest(args)


def test_ci_runs_retry_only_infrastructure_errors_and_require_the_cluster(tmp_path):
    import yaml

    from floe_test.render import render
    from testing.plugin import INFRA_RERUN_PATTERNS

    render("integration", tmp_path, overrides={"ci": "true"})
    job = yaml.safe_load((tmp_path / "manifests" / "floe-test-local-job-test-runner.yaml").read_text())
    container = job["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--reruns") + 1] == "2"
    only = [args[i + 1] for i, a in enumerate(args) if a == "--only-rerun"]
    assert only == list(INFRA_RERUN_PATTERNS)
    assert not any("AssertionError" in p for p in only)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["FLOE_CI"] == "1"
    assert env["FLOE_REQUIRE_CLUSTER"] == "1"


def test_extra_pytest_args_follow_the_profile_selection(tmp_path):
    # `floe-test run integration --set pytestArgs="-k 'health and not crash'"`: one test file in the cluster.
    import yaml

    from floe_test.render import render

    render("integration", tmp_path, overrides={"pytestArgs": "-k 'health and not crash' -x"})
    job = yaml.safe_load((tmp_path / "manifests" / "floe-test-local-job-test-runner.yaml").read_text())
    args = job["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:3] == ["-m", "integration", "tests/integration"]
    assert args[args.index("-k") + 1] == "health and not crash" and "-x" in args


def test_local_runs_do_not_rerun(rendered):
    args = objects(rendered["integration"], "Job")[0]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--reruns" not in args


def test_job_tells_the_tests_their_profile_and_node_count(rendered):
    for stack, nodes in (("integration", "1"), ("e2e", "3")):
        container = objects(rendered[stack], "Job")[0]["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert (env["FLOE_PROFILE"], env["FLOE_EXPECTED_NODES"]) == (stack, nodes)


@pytest.mark.parametrize("stack", ["integration", "e2e"])
def test_the_tests_read_back_exactly_the_endpoints_the_job_was_given(rendered, stack):
    from floe_model.profiles import load_profile
    from floe_model.versions import load_versions
    from testing.endpoints import load_endpoints

    container = objects(rendered[stack], "Job")[0]["spec"]["template"]["spec"]["containers"][0]
    environ = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    profile = load_profile(stack, load_versions())
    assert load_endpoints(environ) == {ep.name: ep for ep in profile.endpoints}
