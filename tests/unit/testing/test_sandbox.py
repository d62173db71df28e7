"""testing.sandbox: a namespace the runner creates gets its sandbox role, and the wait for RBAC is bounded."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest

from testing.errors import WaitTimeout
from testing.k8s_client import KubeClient
from testing.sandbox import Sandbox, enter

ENV = {"FLOE_SANDBOX_CLUSTERROLE": "floe-r1-test-runner-sandbox", "FLOE_SERVICE_ACCOUNT": "test-runner",
       "FLOE_NAMESPACE": "floe-test-r1"}


@dataclass
class FakeRbac:
    bindings: list[tuple[str, Any]] = field(default_factory=list)

    def create_namespaced_role_binding(self, namespace: str, body: Any, **_: Any) -> Any:
        self.bindings.append((namespace, body))
        return body


@dataclass
class FakeAuthorization:
    """RBAC learns of the binding after ``allowed_after`` reviews."""

    allowed_after: int
    reviews: list[Any] = field(default_factory=list)

    def create_self_subject_access_review(self, body: Any, **_: Any) -> Any:
        self.reviews.append(body)
        return SimpleNamespace(status=SimpleNamespace(allowed=len(self.reviews) > self.allowed_after))


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def kube(rbac: FakeRbac, authorization: FakeAuthorization) -> KubeClient:
    return KubeClient(core=object(), networking=object(), rbac=rbac, authorization=authorization)


def test_outside_the_job_nothing_is_granted(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ENV:
        monkeypatch.delenv(key, raising=False)
    rbac = FakeRbac()
    assert Sandbox.from_env({}) is None
    assert enter(kube(rbac, FakeAuthorization(0)), "floe-it-1") is False
    assert rbac.bindings == []


def test_the_sandbox_role_is_bound_to_the_runner_only_and_the_grant_is_awaited() -> None:
    sandbox = Sandbox.from_env(ENV)
    assert sandbox is not None
    rbac, auth = FakeRbac(), FakeAuthorization(allowed_after=3)
    assert enter(kube(rbac, auth), "floe-it-1", sandbox, clock=FakeClock()) is True
    ((namespace, body),) = rbac.bindings
    assert namespace == "floe-it-1"
    assert (body.role_ref.kind, body.role_ref.name) == ("ClusterRole", "floe-r1-test-runner-sandbox")
    assert [(s.kind, s.namespace, s.name) for s in body.subjects] == [("ServiceAccount", "floe-test-r1", "test-runner")]
    assert len(auth.reviews) == 4  # polled until RBAC allowed it
    assert auth.reviews[0].spec.resource_attributes.namespace == "floe-it-1"


def test_a_grant_that_never_takes_effect_fails_naming_the_binding() -> None:
    sandbox = Sandbox.from_env(ENV)
    with pytest.raises(WaitTimeout, match="RoleBinding floe-r1-test-runner-sandbox in namespace floe-it-1"):
        enter(kube(FakeRbac(), FakeAuthorization(allowed_after=10**6)), "floe-it-1", sandbox, timeout=5,
              clock=FakeClock())
