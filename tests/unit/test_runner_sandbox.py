"""The test runner's identity: least privilege by construction, checked against crafted requests.

Each request below goes through an offline model of RBAC and of the run's admission policy
(tests/unit/access_model.py, CEL evaluated by cel-python). The escalation paths of issue 13 must be
refused (and by the layer named), what the in-cluster tests need must be allowed.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.runner_sandbox import (
    READ_RULES,
    RunnerSandboxArgs,
    SandboxNames,
    names_of,
    sandbox_manifests,
)
from tests.unit.access_model import Cluster, Request
from tests.unit.conftest import objects

ARGS = RunnerSandboxArgs(namespace="floe-test-r1", run_id="r1")
NAMES = names_of(ARGS)
RUNNER = NAMES.user
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
RUN = {"floe.dev/run-id": "r1"}


def ns(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": dict(labels)}}


NAMESPACES = {
    "floe-platform": ns("floe-platform"),
    "kube-system": ns("kube-system"),
    "floe-test-r1": ns("floe-test-r1", **RUN, **RESTRICTED),
    # Made by a test of this run (IsolatedNamespace), with the sandbox bound in it (testing.sandbox).
    "floe-it-1234": ns("floe-it-1234", **RUN, **RESTRICTED),
    # Another run's namespace on the same cluster.
    "floe-it-other": ns("floe-it-other", **{"floe.dev/run-id": "r2"}, **RESTRICTED),
}


def sandbox_binding(namespace: str, *, role: str = NAMES.sandbox_role, account: str = "test-runner",
                    account_ns: str = "floe-test-r1") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": NAMES.sandbox_role, "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": account, "namespace": account_ns}],
    }


def cluster(*extra: dict[str, Any]) -> Cluster:
    return Cluster([*sandbox_manifests(ARGS), sandbox_binding("floe-it-1234"), *extra], copy.deepcopy(NAMESPACES))


def label(key: str, value: str | None, name: str) -> Request:
    old = NAMESPACES[name]
    new = copy.deepcopy(old)
    if value is None:
        new["metadata"]["labels"].pop(key, None)
    else:
        new["metadata"]["labels"][key] = value
    return Request(RUNNER, "patch", "namespaces", name=name, obj=new, old=old)


def new_namespace(name: str, labels: dict[str, str]) -> Request:
    return Request(RUNNER, "create", "namespaces", name=name, obj=ns(name, **labels))


def binding(namespace: str, **kwargs: str) -> Request:
    body = sandbox_binding(namespace, **kwargs)
    return Request(RUNNER, "create", "rolebindings", namespace=namespace, group="rbac.authorization.k8s.io", obj=body)


POD = {"metadata": {"name": "p"}, "spec": {}}

DENIED = [
    ("list-secrets-platform", Request(RUNNER, "list", "secrets", namespace="floe-platform"), "RBAC"),
    ("list-secrets-kube-system", Request(RUNNER, "list", "secrets", namespace="kube-system"), "RBAC"),
    ("list-secrets-everywhere", Request(RUNNER, "list", "secrets"), "RBAC"),
    ("get-secret-of-another-run", Request(RUNNER, "get", "secrets", namespace="floe-it-other", name="s"), "RBAC"),
    ("label-kube-system-with-run-id", label("floe.dev/run-id", "r1", "kube-system"), "RBAC"),
    ("label-platform-with-run-id", label("floe.dev/run-id", "r1", "floe-platform"), "RBAC"),
    ("relabel-own-namespace-privileged", label("pod-security.kubernetes.io/enforce", "privileged", "floe-test-r1"),
     "admission"),
    ("own-namespace-enforce-version-pinned-old", label("pod-security.kubernetes.io/enforce-version", "v1.0",
                                                       "floe-it-1234"), "admission"),
    ("remove-run-label-from-own-namespace", label("floe.dev/run-id", None, "floe-it-1234"), "admission"),
    ("move-own-namespace-to-another-run", label("floe.dev/run-id", "r2", "floe-it-1234"), "admission"),
    ("create-privileged-namespace", new_namespace("x", {**RUN, "pod-security.kubernetes.io/enforce": "privileged"}),
     "admission"),
    ("create-namespace-without-psa", new_namespace("x", RUN), "admission"),
    ("create-namespace-without-run-label", new_namespace("x", RESTRICTED), "admission"),
    ("create-namespace-of-another-run", new_namespace("x", {"floe.dev/run-id": "r2", **RESTRICTED}), "admission"),
    ("create-pod-in-platform", Request(RUNNER, "create", "pods", namespace="floe-platform", obj=POD), "RBAC"),
    ("create-pod-in-kube-system", Request(RUNNER, "create", "pods", namespace="kube-system", obj=POD), "RBAC"),
    ("create-pod-in-another-run", Request(RUNNER, "create", "pods", namespace="floe-it-other", obj=POD), "RBAC"),
    ("exec-into-platform-pod", Request(RUNNER, "create", "pods", namespace="floe-platform", name="dagster-0",
                                       subresource="exec", obj={}), "RBAC"),
    ("delete-platform-namespace", Request(RUNNER, "delete", "namespaces", name="floe-platform",
                                          old=NAMESPACES["floe-platform"]), "RBAC"),
    ("delete-another-runs-namespace", Request(RUNNER, "delete", "namespaces", name="floe-it-other",
                                              old=NAMESPACES["floe-it-other"]), "RBAC"),
    ("bind-cluster-admin-cluster-wide", Request(RUNNER, "create", "clusterrolebindings",
                                                group="rbac.authorization.k8s.io", obj={}), "RBAC"),
    ("bind-cluster-admin-in-own-namespace", binding("floe-it-1234", role="cluster-admin"), "RBAC escalation"),
    ("bind-read-role-in-own-namespace", binding("floe-it-1234", role=NAMES.read_role), "admission"),
    ("bind-sandbox-in-platform", binding("floe-platform"), "admission"),
    ("bind-sandbox-in-kube-system", binding("kube-system"), "admission"),
    ("bind-sandbox-to-another-account", binding("floe-it-1234", account="default", account_ns="floe-it-1234"),
     "admission"),
    ("edit-its-own-roles", Request(RUNNER, "update", "clusterroles", group="rbac.authorization.k8s.io",
                                   name=NAMES.sandbox_role, obj={}), "RBAC"),
    ("delete-the-fence", Request(RUNNER, "delete", "validatingadmissionpolicies",
                                 group="admissionregistration.k8s.io", name=NAMES.policy), "RBAC"),
    ("mint-a-token", Request(RUNNER, "create", "serviceaccounts", namespace="floe-it-1234", name="default",
                             subresource="token", obj={}), "RBAC"),
]


@pytest.mark.parametrize(("request_", "layer"), [c[1:] for c in DENIED], ids=[c[0] for c in DENIED])
def test_each_escalation_path_is_refused_by_the_named_layer(request_: Request, layer: str) -> None:
    allowed, refused_by = cluster().decide(request_)
    assert not allowed, f"{request_} was allowed"
    assert refused_by.startswith(layer), refused_by


def test_labelling_a_foreign_namespace_is_refused_by_admission_too_where_rbac_would_let_it() -> None:
    # Defence in depth, and the hole the first policy had: it checked only the NEW object. Even with
    # the sandbox bound in kube-system by mistake, the OLD object lacks the run's label.
    allowed, refused_by = cluster(sandbox_binding("kube-system")).decide(label("floe.dev/run-id", "r1", "kube-system"))
    assert not allowed and refused_by.startswith("admission"), refused_by
    allowed, refused_by = cluster(sandbox_binding("kube-system")).decide(
        Request(RUNNER, "create", "pods", namespace="kube-system", obj=POD)
    )
    assert not allowed and refused_by.startswith("admission"), refused_by


@pytest.mark.parametrize(
    "request_",
    [
        label("floe.dev/run-id", "r1", "floe-it-other"),
        Request(RUNNER, "delete", "namespaces", name="floe-it-other", old=NAMESPACES["floe-it-other"]),
    ],
    ids=["take-over-another-runs-namespace", "delete-another-runs-namespace"],
)
def test_the_old_object_decides_whose_namespace_it_is(request_: Request) -> None:
    # Another run's namespace is restricted too, so only the OLD object's run label tells it apart.
    allowed, refused_by = cluster(sandbox_binding("floe-it-other")).decide(request_)
    assert not allowed and refused_by.startswith("admission"), refused_by


ALLOWED = [
    ("read-platform-pods", Request(RUNNER, "list", "pods", namespace="floe-platform")),
    ("read-platform-logs", Request(RUNNER, "get", "pods", namespace="floe-platform", name="p", subresource="log")),
    ("read-platform-events", Request(RUNNER, "list", "events", namespace="floe-platform")),
    ("read-nodes", Request(RUNNER, "list", "nodes")),
    ("read-namespaces", Request(RUNNER, "get", "namespaces", name="kube-system")),
    ("create-namespace-of-the-run", new_namespace("floe-it-5678", {**RUN, **RESTRICTED})),
    ("bind-sandbox-in-a-namespace-of-the-run", binding("floe-it-1234")),
    ("create-pod-in-namespace-of-the-run", Request(RUNNER, "create", "pods", namespace="floe-it-1234", obj=POD)),
    ("create-secret-in-namespace-of-the-run", Request(RUNNER, "create", "secrets", namespace="floe-it-1234",
                                                      obj={"metadata": {"name": "s"}})),
    ("create-networkpolicy-in-namespace-of-the-run", Request(RUNNER, "create", "networkpolicies",
                                                             namespace="floe-it-1234", group="networking.k8s.io",
                                                             obj={"metadata": {"name": "np"}})),
    ("exec-into-own-pod", Request(RUNNER, "create", "pods", namespace="floe-it-1234", name="p", subresource="exec",
                                  obj={})),
    ("label-own-namespace-kept", label("floe.dev/expires-at", "1999999999", "floe-it-1234")),
    ("delete-own-namespace", Request(RUNNER, "delete", "namespaces", name="floe-it-1234",
                                     old=NAMESPACES["floe-it-1234"])),
    ("pvc-in-the-runs-namespace", Request(RUNNER, "create", "persistentvolumeclaims", namespace="floe-test-r1",
                                          obj={"metadata": {"name": "d"}})),
]


@pytest.mark.parametrize("request_", [c[1] for c in ALLOWED], ids=[c[0] for c in ALLOWED])
def test_what_the_tests_need_is_allowed(request_: Request) -> None:
    allowed, refused_by = cluster().decide(request_)
    assert allowed, f"{request_} refused by {refused_by}"


def test_other_identities_are_not_fenced_by_the_runners_policy() -> None:
    admin = Request("kubernetes-admin", "create", "namespaces", name="x", obj=ns("x"))
    assert cluster().admission_allows(admin) == (True, "")


def test_no_cluster_wide_grant_reaches_secrets_or_exec() -> None:
    roles = {m["metadata"]["name"]: m for m in sandbox_manifests(ARGS) if m["kind"] == "ClusterRole"}
    cluster_bound = {m["roleRef"]["name"] for m in sandbox_manifests(ARGS) if m["kind"] == "ClusterRoleBinding"}
    assert cluster_bound == {NAMES.read_role, NAMES.provision_role}
    for name in cluster_bound:
        for rule in roles[name]["rules"]:
            assert "secrets" not in rule["resources"] and "pods/exec" not in rule["resources"], rule
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], rule
    assert {v for rule in READ_RULES for v in rule["verbs"]} <= {"get", "list", "watch"}


def test_bind_is_limited_to_the_sandbox_role_by_name() -> None:
    provision = next(m for m in sandbox_manifests(ARGS) if m["metadata"]["name"] == NAMES.provision_role)
    binds = [r for r in provision["rules"] if "bind" in r["verbs"]]
    assert binds == [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["bind"],
                      "resourceNames": [NAMES.sandbox_role]}]


def test_the_sandbox_is_bound_only_inside_the_runs_namespace() -> None:
    (binding_,) = [m for m in sandbox_manifests(ARGS) if m["kind"] == "RoleBinding"]
    assert binding_["metadata"]["namespace"] == "floe-test-r1"
    assert binding_["roleRef"]["name"] == NAMES.sandbox_role


def test_rendered_stacks_carry_the_fence_and_the_job_knows_its_sandbox(rendered: dict[str, Any]) -> None:
    for stack in ("integration", "e2e"):
        policy = objects(rendered[stack], "ValidatingAdmissionPolicy")[0]
        assert policy["spec"]["failurePolicy"] == "Fail"
        assert "system:serviceaccount:floe-test-local:test-runner" in policy["spec"]["matchConditions"][0]["expression"]
        (binding_,) = objects(rendered[stack], "ValidatingAdmissionPolicyBinding")
        assert binding_["spec"] == {"policyName": policy["metadata"]["name"], "validationActions": ["Deny"]}
        job = objects(rendered[stack], "Job")[0]
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        names = SandboxNames("floe-test-local", "local", "test-runner")
        assert env["FLOE_SANDBOX_CLUSTERROLE"] == names.sandbox_role
        assert env["FLOE_SERVICE_ACCOUNT"] == job["spec"]["template"]["spec"]["serviceAccountName"]


def test_the_fence_is_proven_before_the_job_in_the_program() -> None:
    import inspect

    from floe_test import program

    source = inspect.getsource(program.build_stack)
    assert source.index("RunnerSandbox(") < source.index("TestJob(")
    assert "depends_on=[namespace, sandbox" in source
