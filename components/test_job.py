"""TestJob: the pytest run as a ``batch/v1`` Job and its results volume.

Its identity (ServiceAccount, roles, the admission fence) is the RunnerSandbox component's; the
program creates the Job only after that fence is proven. ``job_manifest`` is a pure function: the
component deploys what it returns and ``templates/test-job.yaml`` is rendered from it
(``make templates``; a test keeps them identical).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components._private.labels import TYPE_PREFIX, common_labels
from components._private.validation import Problems
from components.runner_sandbox import SandboxNames
from testing.endpoints import Endpoint, endpoint_env

RESULTS_DIR = "/results"
#: The UID/GID the test-runner image runs as (testing/Dockerfile creates this user).
RUNNER_UID = 10001
SKIP_AWAIT = {"pulumi.com/skipAwait": "true"}
#: A container's securityContext under the "restricted" pod security profile (the Job, helper pods).
RESTRICTED_CONTAINER: dict[str, Any] = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@dataclass(frozen=True, kw_only=True)
class TestJobArgs:
    """Inputs of :class:`TestJob`."""

    __test__ = False

    namespace: str
    """The run's namespace (made by TestNamespace)."""
    run_id: str
    """Run identifier, exported to the tests and used in labels."""
    image: str
    """Test-runner image reference (preloaded into the nodes)."""
    pytest_args: Sequence[str] = ()
    """Arguments for pytest (selection, markers); results and timeout options are added."""
    endpoints: Sequence[Endpoint] = ()
    """Service endpoints injected as FLOE_<NAME>_HOST/PORT/URL and FLOE_SERVICES."""
    secret_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Environment variables served from a Secret (passwords), never written into the Job spec."""
    platform_namespace: str = "floe-platform"
    """Where the platform services run (the runner may read there)."""
    probe_image: str = ""
    """Image for probe pods the tests start (network policy checks); one already in the cluster."""
    job_name: str = "test-runner"
    """Name of the Job (and prefix of its ServiceAccount and RBAC objects)."""
    active_deadline_seconds: int = 3600
    """Server-side bound on the whole run; never infinite."""
    ttl_seconds_after_finished: int = 3600
    """How long the finished Job and its pod stay for debugging."""
    test_timeout_seconds: int = 300
    """pytest-timeout per test."""
    resources: Mapping[str, Any] = field(
        default_factory=lambda: {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        }
    )
    """Container requests and limits."""
    results_storage: str = "1Gi"
    """Size of the results volume that outlives the pod."""
    extra_env: Mapping[str, str] = field(default_factory=dict)
    """More plain environment variables for the tests."""


class TestJob(pulumi.ComponentResource):
    """The pytest Job; it never fails ``pulumi up`` when tests fail (the orchestrator waits on it)."""

    __test__ = False

    job_name: pulumi.Output[str]
    """Name of the Job."""
    results_claim: pulumi.Output[str]
    """PersistentVolumeClaim holding /results after the pod is gone."""
    service_account: pulumi.Output[str]
    """The runner's ServiceAccount (made by RunnerSandbox)."""

    def __init__(self, name: str, args: TestJobArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}:TestJob", name, None, opts)
        _validate(args)
        child = pulumi.ResourceOptions(parent=self)
        k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata={"name": credentials_name(args), "namespace": args.namespace, "labels": _labels(args)},
            string_data={k: pulumi.Output.secret(v) for k, v in args.secret_env.items()},
            opts=child,
        )
        _resource(f"{name}-results", results_claim_manifest(args), child)
        _resource(f"{name}-job", job_manifest(args), child)
        self.job_name = pulumi.Output.from_input(args.job_name)
        self.results_claim = pulumi.Output.from_input(results_claim_name(args))
        self.service_account = pulumi.Output.from_input(service_account_name(args))
        self.register_outputs(
            {"job_name": self.job_name, "results_claim": self.results_claim, "service_account": self.service_account}
        )


def service_account_name(args: TestJobArgs) -> str:
    return sandbox_names(args).service_account


def sandbox_names(args: TestJobArgs) -> SandboxNames:
    """The names of the runner's sandbox (RunnerSandbox derives the same ones from the same inputs)."""
    return SandboxNames(args.namespace, args.run_id, args.job_name)


def results_claim_name(args: TestJobArgs) -> str:
    return f"{args.job_name}-results"


def credentials_name(args: TestJobArgs) -> str:
    return f"{args.job_name}-credentials"


def _labels(args: TestJobArgs) -> dict[str, str]:
    return {**common_labels(run_id=args.run_id, component="test-runner"), "app.kubernetes.io/name": args.job_name}


def job_manifest(args: TestJobArgs) -> dict[str, Any]:
    labels = _labels(args)
    pytest_args = [
        *args.pytest_args,
        # One line per test: pytest's dot line is flushed only when it ends, so `kubectl logs` of a
        # slow run would otherwise show nothing for minutes.
        "-v",
        f"--junitxml={RESULTS_DIR}/junit.xml",
        # The terminal output on the results volume: kept when Kubernetes deletes the pod (deadline).
        f"--floe-log-file={RESULTS_DIR}/pytest.log",
        f"--cov-report=xml:{RESULTS_DIR}/coverage.xml",
        f"--timeout={args.test_timeout_seconds}",
    ]
    env = [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "FLOE_RUN_ID", "value": args.run_id},
        {"name": "FLOE_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "FLOE_PLATFORM_NAMESPACE", "value": args.platform_namespace},
        {"name": "FLOE_RESULTS_DIR", "value": RESULTS_DIR},
        # Namespaces the tests create get the sandbox role through a RoleBinding (testing.sandbox).
        {"name": "FLOE_SANDBOX_CLUSTERROLE", "value": sandbox_names(args).sandbox_role},
        {"name": "FLOE_SERVICE_ACCOUNT", "value": service_account_name(args)},
        # The root filesystem is read-only: coverage keeps its data file in the /tmp emptyDir.
        {"name": "COVERAGE_FILE", "value": "/tmp/.coverage"},  # noqa: S108 - the pod's emptyDir
        *([{"name": "FLOE_PROBE_IMAGE", "value": args.probe_image}] if args.probe_image else []),
        *endpoint_env(args.endpoints),
        *({"name": k, "value": v} for k, v in sorted(args.extra_env.items())),
    ]
    container = {
        "name": "pytest",
        "image": args.image,
        "imagePullPolicy": "IfNotPresent",
        "args": pytest_args,
        "env": env,
        "envFrom": [{"secretRef": {"name": credentials_name(args), "optional": False}}],
        "resources": dict(args.resources),
        "securityContext": dict(RESTRICTED_CONTAINER),
        "volumeMounts": [
            {"name": "results", "mountPath": RESULTS_DIR},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - an emptyDir, the only writable scratch space
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": args.job_name,
            "namespace": args.namespace,
            "labels": labels,
            # The Job's outcome is the tests' result: Pulumi must not wait on it or fail `up` with it.
            "annotations": dict(SKIP_AWAIT),
        },
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": args.ttl_seconds_after_finished,
            "activeDeadlineSeconds": args.active_deadline_seconds,
            "template": {
                "metadata": {"labels": {**labels, "job-name": args.job_name}},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": service_account_name(args),
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUNNER_UID,
                        "runAsGroup": RUNNER_UID,
                        "fsGroup": RUNNER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "results", "persistentVolumeClaim": {"claimName": results_claim_name(args)}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                    ],
                },
            },
        },
    }


def results_claim_manifest(args: TestJobArgs) -> dict[str, Any]:
    """The results volume: it outlives the pod, so results survive pod deletion and deadlines."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": results_claim_name(args),
            "namespace": args.namespace,
            "labels": _labels(args),
            # local-path binds on first consumer (the Job's pod): nothing to wait for at `up`.
            "annotations": dict(SKIP_AWAIT),
        },
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": args.results_storage}}},
    }


_RESOURCE_TYPES: dict[str, Any] = {
    "PersistentVolumeClaim": k8s.core.v1.PersistentVolumeClaim,
    "Job": k8s.batch.v1.Job,
}


def _resource(name: str, manifest: Mapping[str, Any], opts: pulumi.ResourceOptions) -> Any:
    """Create the typed resource for a manifest dict (top-level fields become constructor args)."""
    fields = {_snake(k): v for k, v in manifest.items() if k not in {"apiVersion", "kind"}}
    return _RESOURCE_TYPES[manifest["kind"]](name, **fields, opts=opts)


def _snake(key: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in key)


def _validate(args: TestJobArgs) -> None:
    problems = Problems("TestJob")
    problems.dns_label("namespace", args.namespace)
    problems.dns_label("job_name", args.job_name, max_len=40)
    problems.dns_label("run_id", args.run_id, max_len=32)
    problems.positive("active_deadline_seconds", args.active_deadline_seconds, maximum=6 * 3600)
    problems.positive("ttl_seconds_after_finished", args.ttl_seconds_after_finished)
    problems.positive("test_timeout_seconds", args.test_timeout_seconds, maximum=args.active_deadline_seconds)
    if not args.image or args.image.endswith(":latest") or ":" not in args.image.rsplit("/", 1)[-1]:
        problems.add("image", f"{args.image!r} must be pinned by a tag other than latest")
    for key in args.secret_env:
        if key in {e["name"] for e in endpoint_env(args.endpoints)}:
            problems.add("secret_env", f"{key} clashes with an endpoint variable")
    problems.raise_if_any()
