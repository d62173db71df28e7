"""The test runner's sandbox, seen from the tests: what a namespace they create needs to be usable.

Inside the test Job the runner holds, cluster-wide, only read access (no Secrets) and the right to
create namespaces of its run and to bind one sandbox ClusterRole in them (``components/runner_sandbox.py``).
So a namespace a test creates must:

- carry the run's label and the "restricted" pod security level (:data:`PSA_LABELS`), or admission
  refuses it;
- get a RoleBinding of the sandbox role to the runner (:func:`enter`), which is what lets the
  runner make pods, Services, NetworkPolicies, Secrets there, exec into its pods and finally delete
  the namespace. RBAC learns of a new binding a moment later, so :func:`enter` waits (bounded) until
  a SelfSubjectAccessReview says so.

Pods there must meet the restricted profile: :func:`restricted_pod` and :func:`restricted_container`
give the security contexts. Outside the Job (a developer's kubeconfig) nothing needs granting and
:func:`enter` does nothing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from testing.polling import SYSTEM_CLOCK, Check, Clock, wait_for_condition

if TYPE_CHECKING:
    from testing.k8s_client import KubeClient

__all__ = [
    "GRANT_TIMEOUT",
    "PSA_LABELS",
    "RUNNER_UID",
    "Sandbox",
    "enter",
    "restricted_container",
    "restricted_pod",
]

SANDBOX_ROLE_ENV = "FLOE_SANDBOX_CLUSTERROLE"
SERVICE_ACCOUNT_ENV = "FLOE_SERVICE_ACCOUNT"
NAMESPACE_ENV = "FLOE_NAMESPACE"
#: The pod security level every namespace of a run enforces (the admission policy insists).
PSA_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
#: Bound of the wait for RBAC to honour a new RoleBinding (seconds; usually under one).
GRANT_TIMEOUT = 60.0
#: A non-root user for test pods (the runner image's own).
RUNNER_UID = 10001


@dataclass(frozen=True)
class Sandbox:
    """Who the runner is and which role it binds in its namespaces (from the Job's environment)."""

    cluster_role: str
    service_account: str
    namespace: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Sandbox | None:
        """The Job's sandbox, or ``None`` outside the test Job (nothing to grant)."""
        env = os.environ if environ is None else environ
        role, account, namespace = (env.get(k, "") for k in (SANDBOX_ROLE_ENV, SERVICE_ACCOUNT_ENV, NAMESPACE_ENV))
        if not (role and account and namespace):
            return None
        return cls(role, account, namespace)

    def role_binding(self, namespace: str) -> Any:
        from kubernetes import client as k8s

        return k8s.V1RoleBinding(
            metadata=k8s.V1ObjectMeta(name=self.cluster_role, namespace=namespace),
            role_ref=k8s.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=self.cluster_role),
            subjects=[k8s.RbacV1Subject(kind="ServiceAccount", name=self.service_account, namespace=self.namespace)],
        )


def enter(
    kube: KubeClient,
    namespace: str,
    sandbox: Sandbox | None = None,
    *,
    timeout: float = GRANT_TIMEOUT,
    clock: Clock = SYSTEM_CLOCK,
) -> bool:
    """Give the runner its sandbox rights in ``namespace`` (one it just created); wait until they hold.

    Returns False (and does nothing) outside the test Job.
    """
    sandbox = sandbox or Sandbox.from_env()
    if sandbox is None:
        return False
    kube.create_role_binding(namespace, sandbox.role_binding(namespace))

    def granted() -> Check[str]:
        allowed = kube.can_i("create", "pods", namespace)
        return Check(allowed, "create pods: " + ("allowed" if allowed else "not yet allowed"))

    wait_for_condition(
        granted,
        timeout=timeout,
        interval=0.5,
        clock=clock,
        description=f"RoleBinding {sandbox.cluster_role} in namespace {namespace} to take effect",
        hint=f"kubectl -n {namespace} get rolebinding {sandbox.cluster_role} -o yaml; "
        f"kubectl auth can-i create pods -n {namespace} --as system:serviceaccount:{sandbox.namespace}:"
        f"{sandbox.service_account}",
    )
    return True


def restricted_pod(uid: int = RUNNER_UID) -> Any:
    """A pod security context that meets the restricted profile."""
    from kubernetes import client as k8s

    return k8s.V1PodSecurityContext(
        run_as_non_root=True,
        run_as_user=uid,
        run_as_group=uid,
        fs_group=uid,
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )


def restricted_container() -> Any:
    """A container security context that meets the restricted profile."""
    from kubernetes import client as k8s

    return k8s.V1SecurityContext(
        allow_privilege_escalation=False,
        run_as_non_root=True,
        capabilities=k8s.V1Capabilities(drop=["ALL"]),
        seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
    )
