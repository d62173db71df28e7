"""An offline model of how the API server decides a request of the test runner: RBAC, then admission.

Written for the tests (no library models Kubernetes' authorizer offline). It follows the API server
where it matters here:

- RBAC: ClusterRoleBindings grant their ClusterRole everywhere; a RoleBinding in namespace N grants
  its role for requests in N, and a request on the namespace object N counts as in N (the API server's
  request info gives ``/api/v1/namespaces/N`` the namespace N). Creating a RoleBinding needs ``create``
  on rolebindings and, for its role, ``bind`` (optionally by name) or every permission of the role.
- Admission: the run's ValidatingAdmissionPolicy, its CEL evaluated by cel-python (the same language
  the API server uses), with ``object``/``oldObject``/``namespaceObject`` as the API server passes
  them. Reads never reach admission.

The live test (tests/integration/test_least_privilege.py) is the proof; this model lets a change to
the roles or the policy fail in seconds, with the request that got through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import celpy

MUTATING = {"create": "CREATE", "update": "UPDATE", "patch": "UPDATE", "delete": "DELETE"}


@dataclass(frozen=True)
class Request:
    user: str
    verb: str
    resource: str
    namespace: str = ""
    name: str = ""
    group: str = ""
    subresource: str = ""
    obj: Mapping[str, Any] | None = None
    old: Mapping[str, Any] | None = None

    @property
    def operation(self) -> str | None:
        if self.subresource == "exec":
            return "CONNECT"
        return MUTATING.get(self.verb)

    @property
    def rbac_namespace(self) -> str:
        # /api/v1/namespaces/N is "in" namespace N for the authorizer.
        return self.name if self.resource == "namespaces" and not self.group else self.namespace


@dataclass
class Cluster:
    """The objects the decision depends on: roles, bindings, policies and namespaces."""

    manifests: list[dict[str, Any]]
    namespaces: dict[str, dict[str, Any]] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.manifests if m["kind"] == kind]

    def role(self, name: str) -> dict[str, Any] | None:
        return next((r for r in self.of_kind("ClusterRole") if r["metadata"]["name"] == name), None)

    def rules_for(self, user: str, namespace: str) -> list[dict[str, Any]]:
        rules: list[dict[str, Any]] = []
        for binding in self.of_kind("ClusterRoleBinding") + self.of_kind("RoleBinding"):
            scoped = binding["kind"] == "RoleBinding"
            if scoped and binding["metadata"]["namespace"] != namespace:
                continue
            if not any(_subject_user(s) == user for s in binding.get("subjects") or []):
                continue
            role = self.role(binding["roleRef"]["name"])
            rules += role["rules"] if role else []
        return rules

    def rbac_allows(self, request: Request) -> bool:
        resource = request.resource + (f"/{request.subresource}" if request.subresource else "")
        return any(
            _rule_allows(rule, request.verb, request.group, resource, request.name)
            for rule in self.rules_for(request.user, request.rbac_namespace)
        )

    def escalation_allows(self, request: Request) -> bool:
        """A RoleBinding may be created only for a role its creator may ``bind`` (or fully holds)."""
        if request.resource != "rolebindings" or request.verb != "create" or request.obj is None:
            return True
        ref = request.obj["roleRef"]["name"]
        rules = self.rules_for(request.user, request.namespace)
        if any(_rule_allows(rule, "bind", "rbac.authorization.k8s.io", "clusterroles", ref) for rule in rules):
            return True
        role = self.role(ref)
        if role is None:  # e.g. cluster-admin: not in the model, so certainly not held
            return False
        return all(_covered(wanted, rules) for wanted in role["rules"])

    def admission_allows(self, request: Request) -> tuple[bool, str]:
        operation = request.operation
        if operation is None:
            return True, ""
        for policy in self.of_kind("ValidatingAdmissionPolicy"):
            ok, message = evaluate_policy(policy, request, self.namespaces.get(request.namespace))
            if not ok:
                return False, message
        return True, ""

    def decide(self, request: Request) -> tuple[bool, str]:
        """(allowed, the layer that refused it)."""
        if not self.rbac_allows(request):
            return False, "RBAC"
        if not self.escalation_allows(request):
            return False, "RBAC escalation check"
        ok, message = self.admission_allows(request)
        return (True, "") if ok else (False, f"admission policy: {message}")


def _subject_user(subject: Mapping[str, Any]) -> str:
    if subject["kind"] == "ServiceAccount":
        return f"system:serviceaccount:{subject['namespace']}:{subject['name']}"
    return str(subject["name"])


def _rule_allows(rule: Mapping[str, Any], verb: str, group: str, resource: str, name: str) -> bool:
    return (
        (group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", []))
        and (resource in rule.get("resources", []) or "*" in rule.get("resources", []))
        and (verb in rule.get("verbs", []) or "*" in rule.get("verbs", []))
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
    )


def _covered(wanted: Mapping[str, Any], rules: Iterable[Mapping[str, Any]]) -> bool:
    held = list(rules)
    return all(
        any(_rule_allows(rule, verb, group, resource, "") for rule in held)
        for group in wanted.get("apiGroups", [])
        for resource in wanted.get("resources", [])
        for verb in wanted.get("verbs", [])
    )


_ENV = celpy.Environment()


def _cel(expression: str, activation: Mapping[str, Any]) -> Any:
    program = _ENV.program(_ENV.compile(expression))
    return program.evaluate(dict(activation))


def evaluate_policy(
    policy: Mapping[str, Any], request: Request, namespace_object: Mapping[str, Any] | None
) -> tuple[bool, str]:
    """Whether a ValidatingAdmissionPolicy lets ``request`` through; (False, its message) when not."""
    spec = policy["spec"]
    cluster_scoped_kinds = {"namespaces", "clusterroles", "clusterrolebindings", "nodes"}
    activation: dict[str, Any] = {
        "request": celpy.json_to_cel(
            {
                "operation": request.operation,
                "userInfo": {"username": request.user},
                "resource": {"group": request.group, "version": "v1", "resource": request.resource},
                "subResource": request.subresource,
                "namespace": request.namespace,
                "name": request.name,
            }
        ),
        "object": celpy.json_to_cel(dict(request.obj) if request.obj is not None else None),
        "oldObject": celpy.json_to_cel(dict(request.old) if request.old is not None else None),
        "namespaceObject": celpy.json_to_cel(
            None if request.resource in cluster_scoped_kinds or namespace_object is None else dict(namespace_object)
        ),
    }
    for condition in spec.get("matchConditions", []):
        if not bool(_cel(condition["expression"], activation)):
            return True, ""
    variables = {v["name"]: _cel(v["expression"], activation) for v in spec.get("variables", [])}
    activation["variables"] = celpy.celtypes.MapType({celpy.celtypes.StringType(k): v for k, v in variables.items()})
    for validation in spec["validations"]:
        result = _cel(validation["expression"], activation)
        if isinstance(result, celpy.CELEvalError) or not bool(result):
            return False, str(validation["message"])
    return True, ""
