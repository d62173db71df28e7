"""Every collector path, with the Kubernetes API faked at the client boundary (kubernetes.client models)."""

from __future__ import annotations

import base64
import datetime
import json
from pathlib import Path

from kubernetes import client as k8s

from floe_test import collect as collect_module
from floe_test.collect import Collector, collect, debug_commands, job_conditions, reader_pod_manifest
from floe_test.redact import MASK
from testing.errors import InfraError
from tests.unit.collect_fakes import (
    JUNIT_FAILED,
    TARGET,
    FakeBatch,
    FakeClock,
    FakeCore,
    FakeCustom,
    api,
    event,
    helm_secret,
    pod,
    secret,
    tar_gz,
)

NS, PLATFORM = TARGET.namespace, TARGET.platform_namespace
TEST_POD = "test-runner-x7k2p"


def healthy_core(**overrides: object) -> FakeCore:
    core = FakeCore(
        pods={
            NS: [pod(TEST_POD, NS, phase="Failed", ready=False, labels={"job-name": "test-runner"})],
            PLATFORM: [pod("dagster-webserver-0", PLATFORM), pod("postgres-0", PLATFORM)],
        },
        logs={(NS, TEST_POD, False): "collected 3 items\n1 failed, 2 passed\n"},
        events={NS: [event(NS, TEST_POD, "Started", "Started container pytest", 1)]},
        claims={(NS, TARGET.results_claim)},
        nodes=[k8s.V1Node(metadata=k8s.V1ObjectMeta(name="floe-integration-control-plane"),
                          status=k8s.V1NodeStatus(capacity={"cpu": "4", "memory": "8Gi"}))],
        reader_archive=tar_gz({"./junit.xml": JUNIT_FAILED, "./coverage.xml": b"<coverage/>",
                               "./perf.json": json.dumps({"tests": {}, "resources": {}}).encode()}),
        reader_phases=["Succeeded"],
    )
    for key, value in overrides.items():
        setattr(core, key, value)
    return core


def run_collect(tmp_path: Path, core: FakeCore, batch: FakeBatch | None = None, **kwargs: object):
    out = tmp_path / "out"
    result = collect(TARGET.cluster, NS, out, job_state=kwargs.pop("job_state", None), target=TARGET,
                     api=api(core, batch, kwargs.pop("custom", None)), **kwargs)  # type: ignore[arg-type]
    return out, result


def test_failed_tests_are_collected_with_results_logs_and_a_summary(tmp_path):
    out, result = run_collect(tmp_path, healthy_core(), FakeBatch(("Failed", "BackoffLimitExceeded", "")))
    assert result.job_state == "Failed"
    for name in ("junit.xml", "coverage.xml", "perf.json", f"logs/{NS}/{TEST_POD}.log", "events.txt", "pods.txt",
                 "helm.json", "nodes.json", "metrics.json", "summary.md"):
        assert (out / name).is_file(), name
    summary = (out / "summary.md").read_text()
    assert "❌ 1 test(s) failed" in summary
    assert "tests/integration/test_dagster.py::test_run_launches" in summary
    assert "run state FAILURE != SUCCESS" in summary
    assert "tests/integration/test_db.py::test_flaky_connect`: 1 rerun(s)" in summary
    assert f"kubectl --context kind-{TARGET.cluster} -n {NS} logs job/test-runner" in summary
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["totals"]["failures"] == 1 and metrics["totals"]["flaky"] == 1


def test_results_come_from_a_short_lived_reader_pod_that_is_deleted(tmp_path):
    core = healthy_core()
    run_collect(tmp_path, core)
    assert len(core.created) == 1
    assert core.deleted == [core.created[0]["metadata"]["name"]]


def test_reader_pod_is_restricted_read_only_and_uses_the_preloaded_helper_image():
    spec = reader_pod_manifest(TARGET, "results-reader-abc")["spec"]
    container = spec["containers"][0]
    assert container["image"] == TARGET.helper_image
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["automountServiceAccountToken"] is False
    assert container["volumeMounts"][0]["readOnly"] is True
    assert spec["volumes"][0]["persistentVolumeClaim"] == {"claimName": "test-runner-results", "readOnly": True}
    assert "tar -C /results -czf - . | base64" in container["command"][-1]


def test_deadline_hit_and_test_pod_gone_still_collects_the_results(tmp_path):
    core = healthy_core()
    core.pods[NS] = []
    out, result = run_collect(tmp_path, core, FakeBatch(("Failed", "DeadlineExceeded", "Job was active longer")))
    assert (out / "junit.xml").is_file()
    assert any("no pod in namespace" in m for m in result.missing)
    assert "the Job hit its deadline (DeadlineExceeded" in (out / "summary.md").read_text()


def test_up_failed_before_the_job_records_what_is_missing_and_collects_the_rest(tmp_path):
    core = healthy_core(claims=set())
    core.pods[NS] = []
    core.pods[PLATFORM] = [pod("postgres-0", PLATFORM, ready=False, waiting="ImagePullBackOff")]
    out, result = run_collect(tmp_path, core, FakeBatch(absent=True), reason="CommandError: helm release timed out")
    assert result.job_state is None
    assert any("job/test-runner" in m and "not found" in m for m in result.missing)
    assert any("no claim test-runner-results" in m for m in result.missing)
    summary = (out / "summary.md").read_text()
    assert "infrastructure problem" in summary and "helm release timed out" in summary
    describe = (out / f"logs/{PLATFORM}/postgres-0.describe.txt").read_text()
    assert "ImagePullBackOff" in describe


def test_non_ready_pods_get_logs_previous_logs_and_a_description_with_events(tmp_path):
    core = healthy_core()
    core.pods[PLATFORM].append(pod("dagster-daemon-1", PLATFORM, ready=False, waiting="CrashLoopBackOff", restarts=4))
    core.logs[(PLATFORM, "dagster-daemon-1", False)] = "starting daemon\n"
    core.logs[(PLATFORM, "dagster-daemon-1", True)] = "OOM: killed\n"
    core.events[PLATFORM] = [event(PLATFORM, "dagster-daemon-1", "BackOff", "Back-off restarting container", 3)]
    out, result = run_collect(tmp_path, core)
    describe = (out / f"logs/{PLATFORM}/dagster-daemon-1.describe.txt").read_text()
    assert "CrashLoopBackOff" in describe and "restarts=4" in describe and "Back-off restarting" in describe
    assert (out / f"logs/{PLATFORM}/dagster-daemon-1.previous.log").read_text() == "OOM: killed\n"
    assert result.not_ready == [f"{PLATFORM}/dagster-daemon-1 (Running)"]
    assert not (out / f"logs/{PLATFORM}/postgres-0.describe.txt").exists()


def test_unavailable_metrics_are_recorded_not_fatal(tmp_path):
    out, _result = run_collect(tmp_path, healthy_core(), custom=FakeCustom(available=False))
    nodes = json.loads((out / "nodes.json").read_text())
    assert nodes["usage"]["available"] is False
    assert "metrics-server" in nodes["usage"]["reason"]
    assert (out / "summary.md").is_file()


def test_node_usage_is_converted_to_millicores_and_mebibytes(tmp_path):
    out, _ = run_collect(tmp_path, healthy_core())
    usage = json.loads((out / "nodes.json").read_text())["nodes"]["floe-integration-control-plane"]["usage"]
    assert usage == {"cpu_m": 850.1, "memory_mib": 2048.0}


def test_helm_status_comes_from_the_latest_release_record_without_values(tmp_path):
    core = healthy_core()
    core.secrets[PLATFORM] = [
        helm_secret("dagster", PLATFORM, 1, "superseded", {"password": "old-helm-pass"}),
        helm_secret("dagster", PLATFORM, 2, "failed", {"password": "new-helm-pass"}),
    ]
    out, result = run_collect(tmp_path, core)
    assert [(r["name"], r["revision"], r["status"]) for r in result.helm] == [("dagster", 2, "failed")]
    text = (out / "helm.json").read_text()
    assert "helm-pass" not in text and "| dagster | floe-platform | dagster-1.2.3 | 2 | failed |" in (
        out / "summary.md").read_text()


def test_cluster_unreachable_writes_a_summary_naming_the_reason(tmp_path, monkeypatch):
    def unreachable(cls, cluster):
        raise InfraError(f"reading the kubeconfig of kind cluster {cluster}: no such cluster")

    monkeypatch.setattr(collect_module.ClusterApi, "for_kind", classmethod(unreachable))
    out = tmp_path / "out"
    result = collect(TARGET.cluster, NS, out, job_state=None, target=TARGET)
    assert any("cluster: unreachable" in m for m in result.missing)
    assert "no such cluster" in (out / "summary.md").read_text()


def test_reader_that_cannot_pull_its_image_fails_fast_and_is_deleted(tmp_path):
    core = healthy_core(reader_phases=["Pending"], reader_waiting="ErrImageNeverPull")
    clock = FakeClock()
    result = Collector(TARGET, tmp_path, api=api(core), clock=clock).run()
    assert clock.now < 5
    assert any(m.startswith("results volume") and "ErrImageNeverPull" in m for m in result.missing)
    assert core.deleted and core.deleted[0].startswith("results-reader")


def test_reader_wait_is_bounded_and_names_the_pod_and_the_next_step(tmp_path):
    core = healthy_core(reader_phases=["Pending"])
    clock = FakeClock()
    result = Collector(TARGET, tmp_path, api=api(core), clock=clock, reader_timeout=30).run()
    message = next(m for m in result.missing if m.startswith("results volume"))
    assert "timed out after 30" in message and "results-reader" in message and "describe pod" in message
    assert core.deleted


def test_a_cut_off_archive_is_reported_as_truncated(tmp_path):
    _out, result = run_collect(tmp_path, healthy_core(reader_end=False))
    assert any("cut off" in m and "containerLogMaxSize" in m for m in result.missing)


def test_links_and_paths_outside_results_are_refused(tmp_path):
    archive = tar_gz({"./junit.xml": JUNIT_FAILED, "../escape.txt": b"x"}, symlink="/etc/passwd")
    out, result = run_collect(tmp_path, healthy_core(reader_archive=archive))
    assert not (tmp_path / "escape.txt").exists() and not (out / "link").exists()
    assert any("link (not a regular file)" in m for m in result.missing)
    assert any("escape.txt (path outside /results)" in m for m in result.missing)


def test_several_junit_files_are_merged_into_junit_xml(tmp_path):
    archive = tar_gz({"./junit-standard.xml": JUNIT_FAILED, "./junit-destructive.xml": JUNIT_FAILED})
    out, result = run_collect(tmp_path, healthy_core(reader_archive=archive))
    assert result.junit.tests == 6 and result.junit.files == 2
    assert (out / "junit.xml").is_file() and (out / "part-junit-standard.xml").is_file()


def test_debug_commands_cover_logs_exec_events_and_top():
    text = "\n".join(debug_commands(TARGET))
    for needle in ("logs job/test-runner", " exec ", "get events", "top nodes", "top pods"):
        assert needle in text


# --- redaction ---------------------------------------------------------------------------------------

PLANTED = {
    "secret data": "pg-superuser-Pa55word",
    "secret string": "minio-root-S3cr3t",
    "pod env": "literal-env-token-9f8e7d",
    "process env": "local-floe-db-password-1",
    "kubeconfig key": "LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=",
    "kubeconfig token": "kubeconfig-bearer-token-abcdef",
    "helm values": "helm-values-password-42",
    "unknown jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJydW5uZXIifQ.c2lnbmF0dXJlLXNpZ25hdHVyZQ",
    "unknown assignment": "never-listed-anywhere-77",
}


def test_no_planted_secret_appears_in_any_collected_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOE_POSTGRES_PASSWORD", PLANTED["process env"])
    core = healthy_core()
    string_secret = k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="minio", namespace=PLATFORM),
                                 string_data={"rootPassword": PLANTED["secret string"]})
    core.secrets = {
        NS: [secret("test-runner-credentials", NS, {"FLOE_POSTGRES_PASSWORD": PLANTED["secret data"]})],
        PLATFORM: [
            string_secret,
            helm_secret("dagster", PLATFORM, 1, "deployed", {"password": PLANTED["helm values"]}),
        ],
    }
    env = [k8s.V1EnvVar(name="MINIO_ACCESS_TOKEN", value=PLANTED["pod env"])]
    core.pods[NS] = [pod(TEST_POD, NS, phase="Failed", ready=False, labels={"job-name": "test-runner"}, env=env)]
    core.pods[PLATFORM].append(pod("minio-0", PLATFORM, ready=False, waiting="CrashLoopBackOff", env=env))
    leaky = (
        f"connecting with {PLANTED['secret data']} and {PLANTED['secret string']}\n"
        f"env token {PLANTED['pod env']}; local {PLANTED['process env']}\n"
        f"Authorization: Bearer {PLANTED['unknown jwt']}\n"
        f"postgresql://floe:{PLANTED['unknown assignment']}@postgres:5432/floe\n"
        f"password={PLANTED['unknown assignment']} token: {PLANTED['kubeconfig token']}\n"
        f"b64 {base64.b64encode(PLANTED['secret data'].encode()).decode()}\n"
    )
    core.logs[(NS, TEST_POD, False)] = leaky
    core.logs[(PLATFORM, "minio-0", False)] = leaky
    core.events[PLATFORM] = [event(PLATFORM, "minio-0", "Failed", leaky.replace("\n", " "), 2)]
    junit = JUNIT_FAILED.replace(b"Traceback", leaky.encode())
    core.reader_archive = tar_gz({"./junit.xml": junit, "./coverage.xml": b"<coverage/>",
                                  "./debug/env.txt": leaky.encode()})
    kubeconfig = {"users": [{"name": "kind", "user": {"client-key-data": PLANTED["kubeconfig key"],
                                                       "token": PLANTED["kubeconfig token"]}}]}
    out = tmp_path / "out"
    collect(TARGET.cluster, NS, out, job_state=None, target=TARGET,
            api=api(core, FakeBatch(("Failed", "", "")), kubeconfig=kubeconfig))
    files = [p for p in out.rglob("*") if p.is_file()]
    assert len(files) >= 12
    for path in files:
        text = path.read_text(errors="replace")
        for what, value in PLANTED.items():
            assert value not in text, f"{what} leaked into {path.relative_to(out)}"
            assert base64.b64encode(value.encode()).decode() not in text, f"{what} (base64) in {path.name}"
    assert MASK in (out / f"logs/{NS}/{TEST_POD}.log").read_text()
    assert "<testsuites>" in (out / "junit.xml").read_text()  # redaction keeps the XML well-formed


def test_a_running_job_reports_its_pods_and_a_finished_one_its_condition() -> None:
    # What the run's wait prints every 30 s while the tests run (it printed "None" before).
    assert job_conditions(FakeBatch(condition=None, active=1), NS, "test-runner") == (
        None, "running: 1 active pod(s), 0 ready")
    assert job_conditions(FakeBatch(condition=("Failed", "DeadlineExceeded", "Job was active longer than "
                                               "specified deadline")), NS, "test-runner") == (
        "Failed", "DeadlineExceeded: Job was active longer than specified deadline")


class _StoppingPodCore(FakeCore):
    """The Job's pod was deleted at its deadline: listed as terminating once, then gone."""

    def list_namespaced_pod(self, namespace: str, label_selector: str = "", **kw: object) -> k8s.V1PodList:
        result = super().list_namespaced_pod(namespace, label_selector, **kw)
        if label_selector.startswith("batch.kubernetes.io/job-name="):
            self.listed_while_stopping = getattr(self, "listed_while_stopping", 0) + 1
            stopping = [p for p in result.items if p.metadata.deletion_timestamp is not None]
            if self.listed_while_stopping > 1:  # the pod has exited
                self.pods[namespace] = [p for p in self.pods[namespace] if p not in stopping]
                result = super().list_namespaced_pod(namespace, label_selector, **kw)
            assert not self.created, "the results were read while the test pod was still writing"
        return result


def test_results_are_read_after_a_stopping_test_pod_has_exited(tmp_path):
    # Job deadline: Kubernetes deletes the pod, pytest writes the JUnit XML of the tests done while it
    # stops; the reader must come after that, or the partial results are lost.
    core = healthy_core()
    core.__class__ = _StoppingPodCore
    stopping = pod(TEST_POD, NS, labels={"batch.kubernetes.io/job-name": "test-runner"})
    stopping.metadata.deletion_timestamp = datetime.datetime(2026, 11, 24, tzinfo=datetime.UTC)
    core.pods[NS] = [stopping]
    out, result = run_collect(tmp_path, core, FakeBatch(("Failed", "DeadlineExceeded", "")))
    assert core.listed_while_stopping >= 2
    assert core.created and (out / "junit.xml").is_file()
    assert not [m for m in result.missing if "incomplete" in m]


def test_a_credential_looking_key_whose_value_is_structure_keeps_the_json_valid():
    # Found live: perf.json of a test named "..._secrets_of_the_platform_..." became invalid JSON.
    import json

    from floe_test.redact import Redactor

    text = json.dumps({"tests/t.py::test_secrets_cannot_be_listed": {"call": 1.0}, "password": "hunter22"})
    cleaned = Redactor().text(text)
    assert json.loads(cleaned.replace("***REDACTED***", "x"))["tests/t.py::test_secrets_cannot_be_listed"] == {
        "call": 1.0
    }
    assert "hunter22" not in cleaned
