"""``python -m components.fence_check``: prove, as the test runner, that its fence holds before its Job exists.

Run by the RunnerSandbox component after the roles, bindings and admission policy are created and
before the Job is (the program orders it). With the admin kubeconfig (JSON on stdin:
``{"kubeconfig": ..., "context": ...}``, never on a command line) it impersonates the runner's
ServiceAccount and sends dry-run requests (nothing is ever created):

1. creating a namespace *without* the run's label must be denied by the policy. A new policy takes
   effect a moment after it is created, so this is polled, bounded;
2. creating a namespace *with* the run's label and the restricted level must be allowed (the fence is
   not so tight that the tests cannot work);
3. the runner must not be able to list Secrets in kube-system (a SubjectAccessReview: RBAC alone
   guards reads).

Prints ``{"fenced": true, ...}`` on stdout; any failure exits 2 with one message ("refusing to run
unprotected: ...") and the stack's ``up`` fails before the Job is created.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any

import yaml

from components._private.labels import RUN_ID_LABEL
from components.runner_sandbox import PSA_ENFORCE, PSA_ENFORCE_VERSION, SandboxNames
from testing.errors import InfraError
from testing.polling import Check, wait_for_condition

REQUEST_TIMEOUT = (5.0, 20.0)


class Unprotected(InfraError):
    """The runner's fence is missing or not enforced: the run must not start."""


@dataclass(frozen=True)
class Attempt:
    """The outcome of one dry-run request as the runner."""

    allowed: bool
    status: int
    message: str

    def __str__(self) -> str:
        return "allowed" if self.allowed else f"denied ({self.status}): {self.message[:300]}"


def api_client(kubeconfig: str, context: str | None, *, impersonate: SandboxNames | None = None) -> Any:
    from kubernetes import config

    client = config.new_client_from_config_dict(  # type: ignore[no-untyped-call]
        yaml.safe_load(kubeconfig), context=context or None
    )
    if impersonate is not None:
        # The user alone: for a ServiceAccount user the API server adds its groups itself
        # (system:serviceaccounts, system:serviceaccounts:<namespace>, system:authenticated).
        client.set_default_header("Impersonate-User", impersonate.user)
    return client


def dry_run_namespace(core: Any, labels: dict[str, str]) -> Attempt:
    from kubernetes.client import V1Namespace, V1ObjectMeta
    from kubernetes.client.exceptions import ApiException

    body = V1Namespace(metadata=V1ObjectMeta(name=f"floe-fence-{uuid.uuid4().hex[:8]}", labels=labels))
    try:
        core.create_namespace(body, dry_run="All", _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        try:
            message = str(json.loads(exc.body or "{}").get("message") or exc.reason)
        except ValueError:
            message = str(exc.reason)
        return Attempt(False, int(exc.status or 0), message)
    return Attempt(True, 201, "")


def verify(kubeconfig: str, context: str | None, names: SandboxNames, *, timeout: float) -> dict[str, Any]:
    from kubernetes import client as k8s

    started = time.monotonic()
    runner = k8s.CoreV1Api(api_client(kubeconfig, context, impersonate=names))
    restricted = {PSA_ENFORCE: "restricted", PSA_ENFORCE_VERSION: "latest"}

    def outside_denied() -> Check[Attempt]:
        attempt = dry_run_namespace(runner, dict(restricted))
        return Check(not attempt.allowed and names.policy in attempt.message, attempt)

    def inside_allowed() -> Check[Attempt]:
        attempt = dry_run_namespace(runner, {**restricted, RUN_ID_LABEL: names.run_id})
        return Check(attempt.allowed, attempt)

    hint = f"kubectl get validatingadmissionpolicy {names.policy} -o yaml; kubectl auth can-i --list --as {names.user}"
    try:
        denied = wait_for_condition(
            outside_denied,
            timeout=timeout,
            interval=1,
            description=f"policy {names.policy} to deny {names.user} a namespace outside run {names.run_id}",
            hint=hint,
        )
        remaining = max(5.0, timeout - (time.monotonic() - started))
        wait_for_condition(
            inside_allowed,
            timeout=remaining,
            interval=1,
            description=f"{names.user} to be allowed a namespace labelled {RUN_ID_LABEL}={names.run_id}",
            hint=hint,
        )
    except InfraError as exc:
        raise Unprotected(f"refusing to run unprotected: {exc}") from None
    admin = api_client(kubeconfig, context)
    review = k8s.AuthorizationV1Api(admin).create_subject_access_review(
        k8s.V1SubjectAccessReview(
            spec=k8s.V1SubjectAccessReviewSpec(
                user=names.user,
                groups=["system:serviceaccounts", f"system:serviceaccounts:{names.namespace}", "system:authenticated"],
                resource_attributes=k8s.V1ResourceAttributes(namespace="kube-system", verb="list", resource="secrets"),
            )
        ),
        _request_timeout=REQUEST_TIMEOUT,
    )
    status = review.status
    if status is None or status.allowed:
        reason = (status.reason if status is not None else None) or "no reason given"
        raise Unprotected(
            f"refusing to run unprotected: {names.user} may list Secrets in kube-system "
            f"({reason}); something else grants it: "
            f"kubectl auth can-i --list --as {names.user} -n kube-system"
        )
    return {
        "fenced": True,
        "policy": names.policy,
        "denied_outside": str(denied),
        "seconds": round(time.monotonic() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    from floe_test._private.entry import run_entry

    parser = argparse.ArgumentParser(prog="python -m components.fence_check", description=__doc__.split("\n")[0])
    parser.add_argument("--namespace", required=True, help="the run's namespace (the ServiceAccount's)")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--job-name", default="test-runner")
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")

    def body(args: argparse.Namespace) -> int:
        payload = json.loads(sys.stdin.read() or "{}")
        if not payload.get("kubeconfig"):
            raise Unprotected("refusing to run unprotected: no kubeconfig on stdin to check the fence with")
        names = SandboxNames(args.namespace, args.run_id, args.job_name)
        print(json.dumps(verify(payload["kubeconfig"], payload.get("context"), names, timeout=args.timeout)))
        return 0

    return run_entry(parser, body, argv, prog="fence")


if __name__ == "__main__":
    raise SystemExit(main())
