"""REQ-636: the Kind cluster is up, reachable, on the pinned Kubernetes, all nodes Ready, containerd."""

from __future__ import annotations

import pytest

from floe_model.versions import load_versions
from testing.cluster import require_cluster
from tests.integration._env import expected

pytestmark = pytest.mark.integration


def test_api_server_answers_with_the_pinned_kubernetes_version():
    kube = require_cluster()
    from kubernetes import client

    version = client.VersionApi(kube.api_client).get_code()
    assert version.git_version.split("+")[0] == load_versions().kubernetes


def test_every_node_is_ready_and_runs_containerd():
    kube = require_cluster()
    nodes = kube.core.list_node(_request_timeout=30).items
    assert nodes
    for node in nodes:
        ready = {c.type: c.status for c in node.status.conditions}["Ready"]
        assert ready == "True", f"node {node.metadata.name} is not Ready"
        assert node.status.node_info.container_runtime_version.startswith("containerd://")


def test_node_count_matches_the_stack():
    kube = require_cluster()
    want = int(expected("FLOE_EXPECTED_NODES"))
    assert len(kube.core.list_node(_request_timeout=30).items) == want
