"""RunnerSandbox: the test runner's identity, fenced to the namespaces its own run creates.

Least privilege by construction, not by a filter over broad rights:

- **Cluster-wide** (ClusterRoleBindings) the runner may only *read* objects that hold no secrets
  (pods, logs, events, services, workloads, nodes, metrics; never Secrets) and *provision*: create a
  namespace, and create a RoleBinding that binds the one sandbox ClusterRole (``bind`` is limited to
  it by ``resourceNames``, so RBAC refuses any other role the runner does not already hold).
- **Everything else** (pods, ``pods/exec``, Secrets, NetworkPolicies, Jobs, PVCs, and changing or
  deleting the namespace object itself) comes from the sandbox ClusterRole, bound by RoleBindings
  *inside* namespaces of the run: this component binds it in the run's namespace; the tests bind it
  in the namespaces they create (``testing.sandbox``). A RoleBinding in namespace N grants verbs on
  the namespace object N too (the API server gives a request for ``namespaces/N`` the namespace N).
- A ValidatingAdmissionPolicy (admission sees writes only; reads are RBAC's alone) fences those
  writes to the run: a namespace the runner creates must carry the run's label and the "restricted"
  pod-security level; it may change or delete a namespace only when the *old* object carries the run's
  label and the new one keeps it (and stays restricted); it may write only inside namespaces labelled
  with its run id; a RoleBinding it makes must bind the sandbox role to its own ServiceAccount only.
- A check (``python -m components.fence_check``) proves, as the runner, that the policy is enforced before
  anything depends on it: the Job is created only after it passed (``depends_on`` in the program).
"""

from __future__ import annotations

import json
import shlex
import sys
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_command as command
import pulumi_kubernetes as k8s

from components._private.labels import RUN_ID_LABEL, TYPE_PREFIX, common_labels
from components._private.validation import Problems

#: Pod security labels every namespace of the runner must carry (checked by the policy).
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
PSA_ENFORCE_VERSION = "pod-security.kubernetes.io/enforce-version"
#: The oldest Kubernetes that serves ``admissionregistration.k8s.io/v1`` ValidatingAdmissionPolicy.
MIN_POLICY_KUBERNETES = (1, 30)
#: Bound of the fence check (the API server loads a new policy within seconds).
FENCE_CHECK_TIMEOUT_SECONDS = 90


@dataclass(frozen=True, kw_only=True)
class RunnerSandboxArgs:
    """Inputs of :class:`RunnerSandbox`."""

    namespace: str
    """The run's namespace (made by TestNamespace): the ServiceAccount lives here."""
    run_id: str
    """Run identifier: the label value that marks namespaces of this run."""
    job_name: str = "test-runner"
    """Name of the Job; its ServiceAccount has the same name and the RBAC objects derive from it."""
    kubeconfig: pulumi.Input[str] | None = None
    """Admin kubeconfig (secret) for the fence check; ``None`` skips the check (unit tests only)."""
    context: str | None = None
    """Context of ``kubeconfig`` to use (kind clusters: ``kind-<name>``)."""


@dataclass(frozen=True)
class SandboxNames:
    """Every name the sandbox uses, derived from the run (the runner gets them from its environment)."""

    namespace: str
    run_id: str
    job_name: str

    @property
    def prefix(self) -> str:
        return f"floe-{self.run_id}-{self.job_name}"

    @property
    def service_account(self) -> str:
        return self.job_name

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    @property
    def read_role(self) -> str:
        return f"{self.prefix}-read"

    @property
    def provision_role(self) -> str:
        return f"{self.prefix}-provision"

    @property
    def sandbox_role(self) -> str:
        """The ClusterRole bound inside each namespace of the run (also the RoleBindings' name)."""
        return f"{self.prefix}-sandbox"

    @property
    def policy(self) -> str:
        return f"{self.prefix}-fence"


def names_of(args: RunnerSandboxArgs) -> SandboxNames:
    return SandboxNames(args.namespace, args.run_id, args.job_name)


READ_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        # Never secrets: reads do not pass admission, so RBAC alone keeps them out of reach.
        "resources": [
            "pods",
            "pods/log",
            "services",
            "endpoints",
            "events",
            "nodes",
            "namespaces",
            "persistentvolumeclaims",
            "configmaps",
        ],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]},
    # Which StorageClass is the default (the results volume and the tests' PVCs depend on it).
    {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get", "list"]},
    {
        "apiGroups": ["apps"],
        "resources": ["deployments", "statefulsets", "daemonsets", "replicasets"],
        "verbs": ["get", "list", "watch"],
    },
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
    {"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
]

SANDBOX_RULES: list[dict[str, Any]] = [
    # Bound in namespace N, these verbs apply to the namespace object N itself (label, delete).
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "patch", "update", "delete"]},
    {
        "apiGroups": [""],
        "resources": ["pods", "services", "configmaps", "secrets", "persistentvolumeclaims", "serviceaccounts"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"],
    },
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
    {
        "apiGroups": ["networking.k8s.io"],
        "resources": ["networkpolicies"],
        "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
    },
    {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "update", "patch", "delete"]},
]


def provision_rules(names: SandboxNames) -> list[dict[str, Any]]:
    return [
        # Which namespace may be created is admission's to decide (the run label, restricted).
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["create"]},
        # Admission allows it only in namespaces of the run, only for the sandbox role and this runner.
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings"], "verbs": ["create"]},
        {
            "apiGroups": ["rbac.authorization.k8s.io"],
            "resources": ["clusterroles"],
            "verbs": ["bind"],
            "resourceNames": [names.sandbox_role],
        },
    ]


def _labelled(obj: str, run_id: str) -> str:
    # Every branch is a bool: CEL will not unify a map literal with a typed ObjectMeta.
    return (
        f"(has({obj}.metadata.labels) && '{RUN_ID_LABEL}' in {obj}.metadata.labels && "
        f"{obj}.metadata.labels['{RUN_ID_LABEL}'] == '{run_id}')"
    )


def _restricted(obj: str) -> str:
    labels = f"{obj}.metadata.labels"
    return (
        f"(has({labels}) && '{PSA_ENFORCE}' in {labels} && {labels}['{PSA_ENFORCE}'] == 'restricted' && "
        f"(!('{PSA_ENFORCE_VERSION}' in {labels}) || {labels}['{PSA_ENFORCE_VERSION}'] == 'latest'))"
    )


def policy_validations(names: SandboxNames) -> list[dict[str, str]]:
    """The policy's rules, each with the message the runner gets when it breaks it."""
    run = names.run_id
    label = f"{RUN_ID_LABEL}={run}"
    own_namespace = (
        "!variables.isNamespace || (request.operation == 'CREATE' ? "
        f"{_labelled('object', run)} : ({_labelled('oldObject', run)} && "
        f"(request.operation == 'DELETE' || {_labelled('object', run)})))"
    )
    binding = (
        "!variables.isRoleBinding || request.operation == 'DELETE' || ("
        f"object.roleRef.kind == 'ClusterRole' && object.roleRef.name == '{names.sandbox_role}' && "
        "has(object.subjects) && size(object.subjects) == 1 && object.subjects.all(s, "
        f"s.kind == 'ServiceAccount' && s.name == '{names.service_account}' && "
        f"has(s.namespace) && s.namespace == '{names.namespace}'))"
    )
    return [
        {
            "expression": own_namespace,
            "message": f"the test runner may create, change or delete only namespaces labelled {label}, "
            "and may not remove that label",
            "reason": "Forbidden",
        },
        {
            "expression": f"!variables.isNamespace || request.operation == 'DELETE' || {_restricted('object')}",
            "message": f"a namespace of the test runner must keep {PSA_ENFORCE}=restricted "
            f"({PSA_ENFORCE_VERSION} latest or unset)",
            "reason": "Forbidden",
        },
        {
            # Cluster-scoped requests have no namespace (and a null namespaceObject): refused.
            "expression": f"variables.isNamespace || (request.namespace != '' && {_labelled('namespaceObject', run)})",
            "message": f"the test runner may write only inside namespaces labelled {label}",
            "reason": "Forbidden",
        },
        {
            "expression": binding,
            "message": f"the test runner may bind only ClusterRole {names.sandbox_role} to its own "
            f"ServiceAccount {names.namespace}/{names.service_account}",
            "reason": "Forbidden",
        },
    ]


def sandbox_manifests(args: RunnerSandboxArgs) -> list[dict[str, Any]]:
    """Every object of the sandbox, in the order they must exist (roles before their bindings)."""
    names = names_of(args)
    labels = {**common_labels(run_id=args.run_id, component="test-runner"), "app.kubernetes.io/name": args.job_name}
    subject = {"kind": "ServiceAccount", "name": names.service_account, "namespace": names.namespace}
    rbac = "rbac.authorization.k8s.io"

    def cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRole",
            "metadata": {"name": name, "labels": labels},
            "rules": rules,
        }

    def cluster_binding(role: str) -> dict[str, Any]:
        return {
            "apiVersion": f"{rbac}/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": role, "labels": labels},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": role},
            "subjects": [subject],
        }

    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": names.service_account, "namespace": names.namespace, "labels": labels},
            "automountServiceAccountToken": True,
        },
        cluster_role(names.read_role, READ_RULES),
        cluster_role(names.provision_role, provision_rules(names)),
        cluster_role(names.sandbox_role, SANDBOX_RULES),
        cluster_binding(names.read_role),
        cluster_binding(names.provision_role),
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": {"name": names.sandbox_role, "namespace": names.namespace, "labels": labels},
            "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": names.sandbox_role},
            "subjects": [subject],
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": names.policy, "labels": labels},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["*"],
                            "apiVersions": ["*"],
                            # "*/*": every resource and subresource (pods/exec, namespaces/finalize, ...).
                            "resources": ["*/*"],
                            "operations": ["CREATE", "UPDATE", "DELETE", "CONNECT"],
                        }
                    ]
                },
                "matchConditions": [
                    {"name": "only-the-test-runner", "expression": f"request.userInfo.username == '{names.user}'"}
                ],
                "variables": [
                    {
                        "name": "isNamespace",
                        "expression": "request.resource.group == '' && request.resource.resource == 'namespaces'",
                    },
                    {
                        "name": "isRoleBinding",
                        "expression": (
                            f"request.resource.group == '{rbac}' && request.resource.resource == 'rolebindings'"
                        ),
                    },
                ],
                "validations": policy_validations(names),
            },
        },
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": names.policy, "labels": labels},
            "spec": {"policyName": names.policy, "validationActions": ["Deny"]},
        },
    ]


_RESOURCE_TYPES: dict[str, Any] = {
    "ServiceAccount": k8s.core.v1.ServiceAccount,
    "ClusterRole": k8s.rbac.v1.ClusterRole,
    "ClusterRoleBinding": k8s.rbac.v1.ClusterRoleBinding,
    "RoleBinding": k8s.rbac.v1.RoleBinding,
    "ValidatingAdmissionPolicy": k8s.admissionregistration.v1.ValidatingAdmissionPolicy,
    "ValidatingAdmissionPolicyBinding": k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding,
}


def resource_of(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> Any:
    """The typed Pulumi resource for a manifest dict (top-level fields become constructor args)."""
    fields = {_snake(k): v for k, v in manifest.items() if k not in {"apiVersion", "kind"}}
    return _RESOURCE_TYPES[manifest["kind"]](name, **fields, opts=opts)


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


class RunnerSandbox(pulumi.ComponentResource):
    """The runner's ServiceAccount, its roles and bindings, the fence policy and the proof it holds."""

    service_account: pulumi.Output[str]
    """The runner's ServiceAccount (in the run's namespace)."""
    sandbox_role: pulumi.Output[str]
    """The ClusterRole the runner binds in the namespaces it creates."""
    fenced: pulumi.Output[bool]
    """True once the fence check saw the policy deny a write outside the run (False when not checked)."""

    def __init__(self, name: str, args: RunnerSandboxArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:RunnerSandbox", name, None, opts)
        _validate(args)
        names = names_of(args)
        child = pulumi.ResourceOptions(parent=self)
        created: list[pulumi.Resource] = []
        for obj in sandbox_manifests(args):
            # Bindings after their roles, the policy binding after its policy: nothing is ever
            # bound to a role (or a policy) that does not exist yet.
            after = list(created) if obj["kind"].endswith("Binding") else []
            opts_for = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=after))
            created.append(resource_of(f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}", obj, opts_for))
        fenced: pulumi.Output[bool] = pulumi.Output.from_input(False)
        if args.kubeconfig is not None:
            plain: pulumi.Output[str] = pulumi.Output.from_input(args.kubeconfig).apply(
                lambda kc: json.dumps({"kubeconfig": kc or "", "context": args.context or ""})
            )
            payload: pulumi.Output[str] = pulumi.Output.secret(plain)
            check = command.local.Command(
                f"{name}-fence-check",
                create=fence_check_command(names),
                stdin=payload,
                logging=command.local.Logging.STDERR,
                triggers=[names.policy, names.user],
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=created,
                    custom_timeouts=pulumi.CustomTimeouts(create=f"{FENCE_CHECK_TIMEOUT_SECONDS + 60}s"),
                ),
            )
            fenced = check.stdout.apply(_fenced)
        self.service_account = pulumi.Output.from_input(names.service_account)
        self.sandbox_role = pulumi.Output.from_input(names.sandbox_role)
        self.fenced = fenced
        self.register_outputs(
            {"service_account": self.service_account, "sandbox_role": self.sandbox_role, "fenced": self.fenced}
        )


def _fenced(stdout: str) -> bool:
    """Whether the fence check's report (its last line, JSON) says the fence holds."""
    lines = [line for line in (stdout or "").splitlines() if line.strip()]
    try:
        report = json.loads(lines[-1]) if lines else {}
    except ValueError:
        return False
    return isinstance(report, dict) and report.get("fenced") is True


def fence_check_command(names: SandboxNames) -> str:
    return (
        f"{shlex.quote(sys.executable)} -m components.fence_check --namespace {shlex.quote(names.namespace)} "
        f"--run-id {shlex.quote(names.run_id)} --job-name {shlex.quote(names.job_name)} "
        f"--timeout {FENCE_CHECK_TIMEOUT_SECONDS}"
    )


def _validate(args: RunnerSandboxArgs) -> None:
    problems = Problems("RunnerSandbox")
    problems.dns_label("namespace", args.namespace)
    problems.dns_label("job_name", args.job_name, max_len=40)
    problems.dns_label("run_id", args.run_id, max_len=32)
    problems.raise_if_any()
