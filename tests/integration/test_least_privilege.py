"""Live: the test Job's own ServiceAccount tries every way out of its sandbox, and each is denied.

Runs only inside the test Job (the identity under test is the Job's; a developer's kubeconfig is
usually cluster-admin and proves nothing). Each attempt is a real request through authentication,
authorization (RBAC) and admission (the run's ValidatingAdmissionPolicy); writes to objects that are
not the run's are sent as server-side dry runs, so a broken fence fails the test without harming
the platform. Every attempt, its HTTP status and which layer refused it is appended to
``$FLOE_RESULTS_DIR/least-privilege.txt`` (collected with the results).

What the tests need must still work: reading platform pods, events and logs; and, in a namespace the
run created, Secrets, pods, exec into them, NetworkPolicies and the namespace's own labels.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from testing.isolation import RUN_ID_LABEL
from testing.k8s_client import KubeClient
from testing.sandbox import PSA_LABELS, Sandbox, restricted_container, restricted_pod
from tests.integration._env import expected, require_test_job

pytestmark = pytest.mark.integration

DRY_RUN = "All"
PRIVILEGED = {"pod-security.kubernetes.io/enforce": "privileged"}


@pytest.fixture(scope="module")
def runner(kube: KubeClient) -> Sandbox:
    """The sandbox of this Job (skips outside the Job: the identity under test is the Job's)."""
    require_test_job()
    sandbox = Sandbox.from_env()
    if sandbox is None:
        pytest.skip("FLOE_SANDBOX_CLUSTERROLE/FLOE_SERVICE_ACCOUNT not set: not the fenced test runner")
    return sandbox


def layer(exc: ApiException) -> str:
    text = f"{exc.reason or ''} {exc.body or ''}"
    if "ValidatingAdmissionPolicy" in text:
        return "admission policy"
    if "attempting to grant RBAC permissions" in text or "escalat" in text:
        return "RBAC escalation check"
    if "forbidden" in text.lower():
        return "RBAC"
    return "?"


def record(line: str) -> None:
    results = os.environ.get("FLOE_RESULTS_DIR")
    print(line)
    if results and Path(results).is_dir():
        with (Path(results) / "least-privilege.txt").open("a", encoding="utf-8") as out:
            out.write(line + "\n")


def assert_denied(attempt: str, call: Callable[[], Any], *, by: str | None = None) -> ApiException:
    try:
        call()
    except ApiException as exc:
        denial = exc
    else:
        record(f"ALLOWED {attempt}: the fence has a hole")
        pytest.fail(f"{attempt} was allowed: the test runner escaped its sandbox")
    refused_by = layer(denial)
    message = str(denial.body or denial.reason or "").replace("\n", " ")[:300]
    record(f"DENIED  {attempt}: HTTP {denial.status}, {refused_by}: {message}")
    assert denial.status == 403, f"{attempt}: expected 403 Forbidden, got {denial.status}: {message}"
    if by is not None:
        assert refused_by == by, f"{attempt}: refused by {refused_by}, expected {by}: {message}"
    return denial


def any_platform_pod(kube: KubeClient, platform: str) -> Any:
    pods = [p for p in kube.list_pods(platform) if p.status is not None and p.status.phase == "Running"]
    if not pods:
        pytest.skip(f"no running pod in namespace {platform} to try an exec against")
    return pods[0]


# --- what must be denied -------------------------------------------------------------------------


def test_secrets_of_the_platform_and_kube_system_cannot_be_listed(kube: KubeClient, runner: Sandbox) -> None:
    platform = expected("FLOE_PLATFORM_NAMESPACE")
    assert_denied(f"list secrets in namespace {platform}", lambda: kube.core.list_namespaced_secret(platform))
    assert_denied("list secrets in namespace kube-system", lambda: kube.core.list_namespaced_secret("kube-system"))
    assert_denied("list secrets in every namespace", lambda: kube.core.list_secret_for_all_namespaces())


def test_kube_system_cannot_be_labelled_with_the_run_id(kube: KubeClient, runner: Sandbox, run_id: str) -> None:
    body = {"metadata": {"labels": {RUN_ID_LABEL: run_id}}}
    assert_denied(
        f"label namespace kube-system {RUN_ID_LABEL}={run_id}",
        lambda: kube.core.patch_namespace("kube-system", body, dry_run=DRY_RUN),
    )


def test_its_own_namespace_cannot_be_made_privileged(kube: KubeClient, runner: Sandbox) -> None:
    own = runner.namespace
    assert_denied(
        f"relabel its own namespace {own} pod-security enforce=privileged",
        lambda: kube.core.patch_namespace(own, {"metadata": {"labels": PRIVILEGED}}, dry_run=DRY_RUN),
        by="admission policy",
    )
    assert_denied(
        f"remove the run label from its own namespace {own}",
        lambda: kube.core.patch_namespace(own, {"metadata": {"labels": {RUN_ID_LABEL: None}}}, dry_run=DRY_RUN),
        by="admission policy",
    )


def test_a_privileged_or_foreign_namespace_cannot_be_created(kube: KubeClient, runner: Sandbox, run_id: str) -> None:
    privileged = {RUN_ID_LABEL: run_id, **PRIVILEGED}
    name = f"floe-lp-{uuid.uuid4().hex[:8]}"
    try:
        assert_denied(
            "create a privileged namespace of the run",
            lambda: kube.core.create_namespace({"metadata": {"name": name, "labels": privileged}}),
            by="admission policy",
        )
        assert_denied(
            "create a restricted namespace without the run label",
            lambda: kube.core.create_namespace({"metadata": {"name": name, "labels": dict(PSA_LABELS)}}),
            by="admission policy",
        )
    finally:
        if kube.read_namespace(name) is not None:  # only if a hole let it exist
            kube.delete_namespace(name)


def test_nothing_can_be_written_in_the_platform_namespace(kube: KubeClient, runner: Sandbox) -> None:
    platform = expected("FLOE_PLATFORM_NAMESPACE")
    pod = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=f"lp-{uuid.uuid4().hex[:6]}"),
        spec=k8s.V1PodSpec(
            security_context=restricted_pod(),
            containers=[k8s.V1Container(name="c", image="busybox", security_context=restricted_container())],
        ),
    )
    assert_denied(
        f"create a pod in namespace {platform}",
        lambda: kube.core.create_namespaced_pod(platform, pod, dry_run=DRY_RUN),
        by="RBAC",
    )
    assert_denied(
        f"delete namespace {platform}", lambda: kube.core.delete_namespace(platform, dry_run=DRY_RUN), by="RBAC"
    )


def test_no_exec_into_a_platform_pod(kube: KubeClient, runner: Sandbox) -> None:
    platform = expected("FLOE_PLATFORM_NAMESPACE")
    target = any_platform_pod(kube, platform)
    assert_denied(
        f"exec into pod {platform}/{target.metadata.name}",
        lambda: kube.exec(target.metadata.name, platform, ["true"]),
    )


def test_cluster_admin_cannot_be_bound(kube: KubeClient, runner: Sandbox) -> None:
    subject = [k8s.RbacV1Subject(kind="ServiceAccount", name=runner.service_account, namespace=runner.namespace)]
    admin = k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="cluster-admin")
    name = f"floe-lp-{uuid.uuid4().hex[:6]}"
    cluster_binding = k8s.V1ClusterRoleBinding(metadata=k8s.V1ObjectMeta(name=name), role_ref=admin, subjects=subject)
    assert_denied(
        "bind cluster-admin cluster-wide (ClusterRoleBinding)",
        lambda: kube.rbac.create_cluster_role_binding(cluster_binding, dry_run=DRY_RUN),
        by="RBAC",
    )
    binding = k8s.V1RoleBinding(metadata=k8s.V1ObjectMeta(name=name), role_ref=admin, subjects=subject)
    assert_denied(
        f"bind cluster-admin in its own namespace {runner.namespace} (RoleBinding)",
        lambda: kube.rbac.create_namespaced_role_binding(runner.namespace, binding, dry_run=DRY_RUN),
    )


def test_no_role_binding_in_the_platform_namespace(kube: KubeClient, runner: Sandbox) -> None:
    platform = expected("FLOE_PLATFORM_NAMESPACE")
    assert_denied(
        f"bind its sandbox role in namespace {platform}",
        lambda: kube.rbac.create_namespaced_role_binding(platform, runner.role_binding(platform), dry_run=DRY_RUN),
        by="admission policy",
    )


def test_its_sandbox_cannot_be_bound_to_another_identity(
    kube: KubeClient, runner: Sandbox, isolated_namespace: str
) -> None:
    other = runner.role_binding(isolated_namespace)
    other.metadata.name = f"floe-lp-{uuid.uuid4().hex[:6]}"
    other.subjects = [k8s.RbacV1Subject(kind="ServiceAccount", name="default", namespace=isolated_namespace)]
    assert_denied(
        f"bind its sandbox role to {isolated_namespace}/default",
        lambda: kube.rbac.create_namespaced_role_binding(isolated_namespace, other, dry_run=DRY_RUN),
        by="admission policy",
    )


# --- what the tests need still works -------------------------------------------------------------


def test_platform_pods_events_and_logs_can_be_read(kube: KubeClient, runner: Sandbox) -> None:
    platform = expected("FLOE_PLATFORM_NAMESPACE")
    pods = kube.list_pods(platform)
    assert pods, f"no pods listed in namespace {platform}"
    kube.core.list_namespaced_event(platform, limit=5)
    target = any_platform_pod(kube, platform)
    container = target.spec.containers[0].name
    kube.core.read_namespaced_pod_log(target.metadata.name, platform, container=container, tail_lines=1)
    record(f"ALLOWED read pods ({len(pods)}), events and the log of {platform}/{target.metadata.name} (as needed)")


def test_everything_the_tests_need_works_in_a_namespace_of_the_run(
    kube: KubeClient, runner: Sandbox, isolated_namespace: str, run_id: str
) -> None:
    ns = isolated_namespace
    kube.core.create_namespaced_secret(ns, k8s.V1Secret(metadata=k8s.V1ObjectMeta(name="s"), string_data={"k": "v"}))
    kube.create_network_policy(
        ns,
        k8s.V1NetworkPolicy(
            metadata=k8s.V1ObjectMeta(name="deny-all"),
            spec=k8s.V1NetworkPolicySpec(pod_selector=k8s.V1LabelSelector(), policy_types=["Ingress"]),
        ),
    )
    kube.create_pod(
        ns,
        k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name="sleeper", labels={"app": "sleeper"}),
            spec=k8s.V1PodSpec(
                termination_grace_period_seconds=0,
                security_context=restricted_pod(),
                containers=[
                    k8s.V1Container(
                        name="main",
                        image=expected("FLOE_PROBE_IMAGE"),
                        image_pull_policy="IfNotPresent",
                        command=["sh", "-c", "sleep 600"],
                        security_context=restricted_container(),
                    )
                ],
            ),
        ),
    )
    kube.wait_pods_ready(ns, "app=sleeper", timeout=120)
    assert kube.exec("sleeper", ns, ["sh", "-c", "echo in-sandbox"]).strip() == "in-sandbox"
    kube.label_namespace(ns, {"floe.dev/least-privilege": "checked"})
    labels = kube.read_namespace(ns).metadata.labels
    assert labels[RUN_ID_LABEL] == run_id and labels["floe.dev/least-privilege"] == "checked"
    record(f"ALLOWED in {ns} (a namespace of the run): secret, NetworkPolicy, pod, exec, namespace label")
