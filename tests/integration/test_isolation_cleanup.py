"""Live: per-test namespaces, deletion on teardown, keep-on-failure labels and the sweeper (REQ-645)."""

from __future__ import annotations

import datetime as dt

import pytest

from testing.isolation import (
    EXPIRES_AT_LABEL,
    MANAGED_BY_LABEL,
    RUN_ID_LABEL,
    TEST_ID_LABEL,
    IsolatedNamespace,
    sweep_namespaces,
)
from testing.k8s_client import KubeClient

pytestmark = pytest.mark.integration


def test_isolated_namespace_is_labelled(kube: KubeClient, isolated_namespace: str, run_id: str) -> None:
    ns = kube.read_namespace(isolated_namespace)
    assert ns is not None
    labels = ns.metadata.labels
    assert labels[MANAGED_BY_LABEL] == "floe-testinfra"
    assert labels[RUN_ID_LABEL] == run_id
    assert labels[TEST_ID_LABEL].endswith("test_isolated_namespace_is_labelled")


def test_two_namespaces_never_share_a_name(kube: KubeClient, isolated_namespace: str, class_namespace: str) -> None:
    assert isolated_namespace != class_namespace


def test_passing_namespace_and_its_contents_are_deleted(kube: KubeClient, run_id: str) -> None:
    from kubernetes import client as k8s

    ns = IsolatedNamespace(kube, prefix="floe-it", run_id=run_id, test_id="live::deleted", delete_timeout=180)
    name = ns.create()
    kube.core.create_namespaced_secret(name, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="s"),
                                                          string_data={"k": "v"}))
    ns.finish(failed=False)
    assert kube.read_namespace(name) is None


def test_failed_namespace_is_kept_with_expiry_then_swept(kube: KubeClient, run_id: str) -> None:
    ns = IsolatedNamespace(kube, prefix="floe-it", run_id=run_id, test_id="live::kept", keep_failed=True,
                           keep_ttl=1)
    name = ns.create()
    try:
        lines = ns.finish(failed=True)
        kept = kube.read_namespace(name)
        assert kept is not None and EXPIRES_AT_LABEL in kept.metadata.labels
        assert any(f"kubectl describe pods -n {name}" in line for line in lines)
        expiry = float(kept.metadata.labels[EXPIRES_AT_LABEL])
        before = sweep_namespaces(kube, run_id=run_id, dry_run=True,
                                  now=dt.datetime.fromtimestamp(expiry - 60, dt.UTC))
        assert name not in [s.name for s in before]  # protected until its TTL runs out
        after = sweep_namespaces(kube, run_id=run_id, dry_run=True,
                                 now=dt.datetime.fromtimestamp(expiry + 1, dt.UTC))
        assert name in [s.name for s in after]
    finally:
        kube.delete_namespace(name)
        kube.wait_namespace_gone(name, timeout=180)
