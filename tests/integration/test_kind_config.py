"""REQ-637: the kind config's features work: default local StorageClass whose PVCs bind, node labels."""

from __future__ import annotations

import pytest

from testing.cluster import require_cluster
from testing.k8s_client import KubeClient
from testing.polling import Check, wait_for_condition
from tests.integration._env import expected

pytestmark = pytest.mark.integration


def test_a_default_storage_class_exists():
    kube = require_cluster()
    from kubernetes import client

    classes = client.StorageV1Api(kube.api_client).list_storage_class(_request_timeout=30).items
    defaults = [
        c.metadata.name
        for c in classes
        if (c.metadata.annotations or {}).get("storageclass.kubernetes.io/is-default-class") == "true"
    ]
    assert defaults, "no default StorageClass: kind's local-path provisioner is missing"


def test_a_pvc_binds_on_local_storage(kube: KubeClient, isolated_namespace: str) -> None:
    image = expected("FLOE_PROBE_IMAGE")
    ns = isolated_namespace  # restricted, labelled with the run, the runner's sandbox bound in it
    kube.core.create_namespaced_persistent_volume_claim(
        ns,
        {
            "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
        },
    )
    kube.core.create_namespaced_pod(
        ns,
        {
            "metadata": {"name": "writer"},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": 10001,
                    "fsGroup": 10001,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "w",
                        "image": image,
                        "command": ["sh", "-c", "echo ok > /data/f"],
                        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
                        "volumeMounts": [{"name": "d", "mountPath": "/data"}],
                    }
                ],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "data"}}],
            },
        },
    )

    def bound() -> Check[str]:
        phase = kube.core.read_namespaced_persistent_volume_claim("data", ns, _request_timeout=30).status.phase
        return Check(phase == "Bound", f"pvc/data {phase}")

    wait_for_condition(bound, timeout=120, interval=2, description=f"pvc/data in {ns} to bind")
