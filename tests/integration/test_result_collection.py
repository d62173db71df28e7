"""REQ-644 live: /results read back from a PersistentVolumeClaim by the collector's short-lived reader pod.

A writer pod fills a fresh claim with junit.xml/coverage.xml and exits; the collector then reads the
claim through a reader pod running the preloaded helper image (log API, no exec, no kubectl cp), and
deletes it. Skips with a reason when there is no cluster.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s

from floe_test.collect import READER_PREFIX, ClusterApi, Collector, Target
from testing.connectivity import probe_image
from testing.k8s_client import KubeClient

pytestmark = pytest.mark.integration

JUNIT = (
    '<testsuites><testsuite name="pytest" tests="2"><testcase classname="tests.live" name="test_ok"/>'
    '<testcase classname="tests.live" name="test_bad"><failure message="boom"/></testcase></testsuite></testsuites>'
)
SECRET = "live-planted-password-1234"


def _writer(namespace: str, image: str) -> dict[str, Any]:
    script = (
        f"printf '%s' '{JUNIT}' > /results/junit.xml && echo '<coverage/>' > /results/coverage.xml && "
        f"echo 'password={SECRET}' > /results/debug.txt"
    )
    restricted = {
        "runAsNonRoot": True, "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "writer", "namespace": namespace},
        "spec": {
            "restartPolicy": "Never",
            "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001, "runAsNonRoot": True,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{"name": "w", "image": image, "imagePullPolicy": "IfNotPresent",
                            "command": ["sh", "-c", script], "securityContext": restricted,
                            "volumeMounts": [{"name": "results", "mountPath": "/results"}]}],
            "volumes": [{"name": "results", "persistentVolumeClaim": {"claimName": "test-runner-results"}}],
        },
    }


def test_results_survive_the_writer_pod_and_are_read_back_without_exec(kube: KubeClient, isolated_namespace, tmp_path):
    image = probe_image()  # the stack's preloaded helper image (FLOE_PROBE_IMAGE in the Job)
    core = kube.core
    core.create_namespaced_persistent_volume_claim(isolated_namespace, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "test-runner-results"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "64Mi"}}},
    }, _request_timeout=30)
    kube.create_pod(isolated_namespace, _writer(isolated_namespace, image))
    writer = kube.wait_pod_finished("writer", isolated_namespace, timeout=180)
    assert writer.status.phase == "Succeeded"
    kube.delete_pod("writer", isolated_namespace)  # the results must not depend on the pod

    target = Target(cluster="live", namespace=isolated_namespace, platform_namespace=isolated_namespace,
                    helper_image=image, context=kube.context or "")
    api = ClusterApi(core, k8s.BatchV1Api(kube.api_client), k8s.CustomObjectsApi(kube.api_client))
    collector = Collector(target, tmp_path, api=api)
    collector.step("results volume", collector.read_results)
    collector.step("junit", collector.junit)
    result = collector.result
    assert not [m for m in result.missing if m.startswith("results volume")], result.missing
    assert (tmp_path / "coverage.xml").read_text().strip() == "<coverage/>"
    assert result.junit.tests == 2 and result.junit.failures == 1
    assert SECRET not in (tmp_path / "debug.txt").read_text()
    left = [p.metadata.name for p in kube.list_pods(isolated_namespace) if p.metadata.name.startswith(READER_PREFIX)
            and not (p.metadata.deletion_timestamp)]
    assert left == [], f"reader pod(s) not deleted: {left}"
