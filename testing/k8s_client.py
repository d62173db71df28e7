"""A small kubectl-like wrapper over the official Kubernetes Python client.

``KubeClient.load()`` uses the in-cluster service account inside a pod and the kubeconfig elsewhere.
Waits go through :func:`testing.polling.wait_for_condition` and end at once when a pod is broken
(CrashLoopBackOff, ImagePullBackOff, ErrImagePull, CreateContainerConfigError, OOMKilled, Evicted),
with the pod, container, reason, recent events and the last 50 log lines in the error.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as _k8s_config
from kubernetes.client.exceptions import ApiException

from testing._private.pod_status import (
    POD_FAILURE_REASONS,
    TERMINATED_FAILURE_REASONS,
    WAITING_FAILURE_REASONS,
    PodFailure,
    pod_failures,
    pod_is_ready,
    pod_summary,
)
from testing.errors import PrerequisiteError, WaitFailed
from testing.polling import SYSTEM_CLOCK, Check, Clock, wait_for_condition

k8s_config: Any = _k8s_config  # the config loaders are untyped

__all__ = [
    "FAILURE_REASONS",
    "LOG_TAIL_LINES",
    "KubeClient",
    "PodFailure",
    "PodsFailed",
    "PodsState",
    "pod_failures",
    "pod_is_ready",
]

#: Every reason that ends a wait at once.
FAILURE_REASONS = WAITING_FAILURE_REASONS | TERMINATED_FAILURE_REASONS | POD_FAILURE_REASONS
#: Log lines put into a failure message.
LOG_TAIL_LINES = 50
#: Events put into a failure message.
EVENT_LIMIT = 10
#: What the API answers (as the log text) for a container whose log the kubelet no longer has.
UNRETRIEVABLE_LOG = "unable to retrieve container logs"
#: Bound of one API request, in seconds (connect, read).
REQUEST_TIMEOUT = (5.0, 30.0)
#: Bound of one exec into a pod, in seconds (the websocket client takes one number).
EXEC_TIMEOUT = 60


class PodsFailed(WaitFailed):
    """Pods a wait depends on are broken; ``failures`` carry logs and events."""

    def __init__(self, description: str, *, elapsed: float, failures: list[PodFailure], hint: str = "") -> None:
        self.failures = failures
        reason = "\n" + "\n".join(f.report() for f in failures)
        super().__init__(description, elapsed=elapsed, reason=reason, hint=hint)


@dataclass(frozen=True)
class PodsState:
    """What a readiness poll saw."""

    namespace: str
    selector: str
    pods: tuple[Any, ...]
    failures: tuple[PodFailure, ...]

    @property
    def ready(self) -> bool:
        return bool(self.pods) and all(pod_is_ready(p) for p in self.pods)

    def __str__(self) -> str:
        if not self.pods:
            return f"no pods match {self.selector!r} in namespace {self.namespace}"
        return "; ".join(pod_summary(p) for p in self.pods)


class KubeClient:
    """The handful of API operations the test library needs, with kubectl's vocabulary."""

    def __init__(
        self,
        api_client: Any = None,
        *,
        core: Any = None,
        networking: Any = None,
        rbac: Any = None,
        authorization: Any = None,
        source: str = "",
        context: str | None = None,
    ) -> None:
        self.api_client = api_client
        self.core: Any = core if core is not None else k8s.CoreV1Api(api_client)
        self.networking: Any = networking if networking is not None else k8s.NetworkingV1Api(api_client)
        self.rbac: Any = rbac if rbac is not None else k8s.RbacAuthorizationV1Api(api_client)
        self.authorization: Any = authorization if authorization is not None else k8s.AuthorizationV1Api(api_client)
        self.source = source
        self.context = context

    @classmethod
    def load(cls, context: str | None = None) -> KubeClient:
        """Connect using in-cluster config inside a pod, the kubeconfig (``context``) elsewhere.

        Raises :class:`PrerequisiteError` starting with ``no Kubernetes cluster:`` when neither exists
        or the API server does not answer.
        """
        api_client: Any
        if os.environ.get("KUBERNETES_SERVICE_HOST") and not context:
            configuration = k8s.Configuration()
            try:
                k8s_config.load_incluster_config(client_configuration=configuration)
            except k8s_config.ConfigException as exc:
                raise PrerequisiteError(f"no Kubernetes cluster: in-cluster config unusable ({exc})") from exc
            api_client = k8s.ApiClient(configuration)
            source = "in-cluster service account"
        else:
            kubeconfig = os.environ.get("KUBECONFIG", "~/.kube/config")
            try:
                api_client = k8s_config.new_client_from_config(context=context)
            except (k8s_config.ConfigException, OSError, TypeError) as exc:
                raise PrerequisiteError(
                    f"no Kubernetes cluster: kubeconfig/in-cluster config not found ({kubeconfig}: {exc})"
                ) from exc
            source = f"kubeconfig {kubeconfig}" + (f" context {context}" if context else "")
        kube = cls(api_client, source=source, context=context)
        host = getattr(api_client.configuration, "host", "?")
        try:
            k8s.VersionApi(api_client).get_code(_request_timeout=(3.0, 5.0))
        except Exception as exc:
            raise PrerequisiteError(
                f"no Kubernetes cluster: API server {host} ({source}) unreachable: {type(exc).__name__}"
            ) from exc
        return kube

    # --- pods -----------------------------------------------------------------------------------

    def list_pods(self, namespace: str, selector: str = "") -> list[Any]:
        result = self.core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT)
        return list(result.items or [])

    def pods_state(self, namespace: str, selector: str = "") -> PodsState:
        pods = self.list_pods(namespace, selector)
        failures = [f for p in pods for f in pod_failures(p)]
        return PodsState(namespace, selector, tuple(pods), tuple(failures))

    def logs(
        self,
        pod: str,
        namespace: str,
        container: str | None = None,
        *,
        tail: int = LOG_TAIL_LINES,
        previous: bool = False,
    ) -> str:
        """The last ``tail`` log lines ('' when the container has none or never started)."""
        kwargs: dict[str, Any] = {"tail_lines": tail, "_request_timeout": REQUEST_TIMEOUT}
        if container:
            kwargs["container"] = container
        if previous:
            kwargs["previous"] = True
        try:
            text = self.core.read_namespaced_pod_log(pod, namespace, **kwargs)
        except ApiException:
            return ""
        return str(text or "")

    def events(self, namespace: str, name: str, *, limit: int = EVENT_LIMIT) -> list[str]:
        """Recent events about object ``name``, oldest first, as ``Type Reason (xN): message``."""
        try:
            result = self.core.list_namespaced_event(
                namespace, field_selector=f"involvedObject.name={name}", _request_timeout=REQUEST_TIMEOUT
            )
        except ApiException as exc:
            return [f"(events unavailable: {exc.status} {exc.reason})"]
        items = list(result.items or [])

        def when(event: Any) -> str:
            stamp = event.last_timestamp or event.event_time or event.first_timestamp
            return stamp.isoformat() if stamp is not None else ""

        items.sort(key=when)
        lines = []
        for event in items[-limit:]:
            count = f" (x{event.count})" if (event.count or 1) > 1 else ""
            message = (event.message or "").strip()
            lines.append(f"{event.type or 'Normal'} {event.reason or '?'}{count}: {message}")
        return lines

    def explain(self, failure: PodFailure) -> PodFailure:
        """The failure with the container's last log lines and the pod's recent events added."""
        logs = ""
        if failure.container != "-":
            if failure.restarts:
                logs = self.logs(failure.pod, failure.namespace, failure.container, previous=True)
            if not logs or logs.startswith(UNRETRIEVABLE_LOG):
                # The previous container may already be gone (the kubelet keeps one dead container and
                # answers with a placeholder): the one that crashed last has the same output.
                logs = self.logs(failure.pod, failure.namespace, failure.container) or logs
        events = tuple(self.events(failure.namespace, failure.pod))
        return replace(failure, logs=logs, events=events)

    def wait_pods_ready(
        self,
        namespace: str,
        selector: str,
        *,
        timeout: float = 300.0,
        interval: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> PodsState:
        """Wait until every pod matching ``selector`` is Ready; fail at once on a broken pod."""
        description = f"pods {selector!r} in namespace {namespace} to be Ready"
        start = clock.monotonic()

        def check() -> Check[PodsState]:
            state = self.pods_state(namespace, selector)
            return Check(state.ready, state)

        def broken(state: PodsState | None) -> str | None:
            return "pods are broken" if state is not None and state.failures else None

        try:
            result = wait_for_condition(
                check,
                timeout=timeout,
                interval=interval,
                description=description,
                fail_if=broken,
                clock=clock,
                hint=f"kubectl describe pods -n {namespace} -l {selector}",
            )
        except WaitFailed:
            state = self.pods_state(namespace, selector)
            failures = [self.explain(f) for f in state.failures]
            raise PodsFailed(
                description,
                elapsed=clock.monotonic() - start,
                failures=failures,
                hint=f"kubectl describe pods -n {namespace} -l {selector}",
            ) from None
        assert result is not None
        return result

    def wait_pod_finished(
        self, name: str, namespace: str, *, timeout: float = 120.0, interval: float = 1.0, clock: Clock = SYSTEM_CLOCK
    ) -> Any:
        """Wait until pod ``name`` is Succeeded or Failed (returns it); fail at once if it cannot start."""
        description = f"pod/{name} in namespace {namespace} to finish"
        start = clock.monotonic()

        def check() -> Check[Any]:
            pod = self.core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT)
            phase = pod.status.phase if pod.status is not None else None
            return Check(phase in ("Succeeded", "Failed"), pod)

        def broken(pod: Any) -> str | None:
            if pod is None:
                return None
            return "pod cannot run" if pod_failures(pod) else None

        try:
            return wait_for_condition(
                check,
                timeout=timeout,
                interval=interval,
                description=description,
                fail_if=broken,
                clock=clock,
                hint=f"kubectl describe pod {name} -n {namespace}",
            )
        except WaitFailed:
            pod = self.core.read_namespaced_pod(name, namespace, _request_timeout=REQUEST_TIMEOUT)
            failures = [self.explain(f) for f in pod_failures(pod)]
            raise PodsFailed(
                description,
                elapsed=clock.monotonic() - start,
                failures=failures,
                hint=f"kubectl describe pod {name} -n {namespace}",
            ) from None

    def exec(self, name: str, namespace: str, command: list[str], container: str | None = None) -> str:
        """Run ``command`` in a running pod's container; its output (stdout and stderr).

        A refused upgrade (RBAC, admission) raises :class:`ApiException` with the HTTP status
        (the websocket client itself reports it as status 0 with the status in the text).
        """
        from kubernetes.stream import stream

        kwargs: dict[str, Any] = {"command": command, "stderr": True, "stdout": True, "stdin": False, "tty": False}
        if container:
            kwargs["container"] = container
        try:
            return str(
                stream(
                    self.core.connect_get_namespaced_pod_exec,
                    name,
                    namespace,
                    _request_timeout=EXEC_TIMEOUT,
                    **kwargs,
                )
            )
        except ApiException as exc:
            text = f"{exc.reason or ''} {exc.body or ''}"
            found = re.search(r"Handshake status (\d{3})", text)
            if exc.status in (0, None) and found:
                raise ApiException(status=int(found.group(1)), reason=text.strip()) from None
            raise

    def create_pod(self, namespace: str, body: Any) -> Any:
        return self.core.create_namespaced_pod(namespace, body, _request_timeout=REQUEST_TIMEOUT)

    def delete_pod(self, name: str, namespace: str) -> None:
        try:
            self.core.delete_namespaced_pod(name, namespace, grace_period_seconds=0, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise

    # --- namespaces -------------------------------------------------------------------------------

    def create_namespace(self, name: str, labels: dict[str, str], annotations: dict[str, str] | None = None) -> Any:
        body = k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name, labels=labels, annotations=annotations))
        return self.core.create_namespace(body, _request_timeout=REQUEST_TIMEOUT)

    def read_namespace(self, name: str) -> Any | None:
        try:
            return self.core.read_namespace(name, _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def list_namespaces(self, label_selector: str) -> list[Any]:
        result = self.core.list_namespace(label_selector=label_selector, _request_timeout=REQUEST_TIMEOUT)
        return list(result.items or [])

    def label_namespace(self, name: str, labels: dict[str, str]) -> None:
        self.core.patch_namespace(name, {"metadata": {"labels": labels}}, _request_timeout=REQUEST_TIMEOUT)

    def delete_namespace(self, name: str) -> bool:
        """Request deletion; False when it was already gone."""
        try:
            self.core.delete_namespace(name, propagation_policy="Background", _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def wait_namespace_gone(
        self, name: str, *, timeout: float = 120.0, interval: float = 1.0, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        def check() -> Check[str]:
            ns = self.read_namespace(name)
            if ns is None:
                return Check(True, "gone")
            phase = ns.status.phase if ns.status is not None else "?"
            return Check(False, f"namespace {name} still {phase}")

        wait_for_condition(
            check,
            timeout=timeout,
            interval=interval,
            clock=clock,
            description=f"namespace {name} to be deleted",
            hint=f"kubectl get all,pvc -n {name}; look for finalizers: kubectl get namespace {name} -o yaml",
        )

    # --- access -----------------------------------------------------------------------------------

    def create_role_binding(self, namespace: str, body: Any) -> Any:
        return self.rbac.create_namespaced_role_binding(namespace, body, _request_timeout=REQUEST_TIMEOUT)

    def can_i(self, verb: str, resource: str, namespace: str = "", *, group: str = "", subresource: str = "") -> bool:
        """Whether this client's own identity may do ``verb`` on ``resource`` (a SelfSubjectAccessReview)."""
        review = k8s.V1SelfSubjectAccessReview(
            spec=k8s.V1SelfSubjectAccessReviewSpec(
                resource_attributes=k8s.V1ResourceAttributes(
                    namespace=namespace or None,
                    verb=verb,
                    group=group,
                    resource=resource,
                    subresource=subresource or None,
                )
            )
        )
        result = self.authorization.create_self_subject_access_review(review, _request_timeout=REQUEST_TIMEOUT)
        return bool(result.status.allowed)

    # --- network policies -------------------------------------------------------------------------

    def create_network_policy(self, namespace: str, body: Any) -> Any:
        return self.networking.create_namespaced_network_policy(namespace, body, _request_timeout=REQUEST_TIMEOUT)


def iter_failures(pods: Iterable[Any]) -> list[PodFailure]:
    """Every failure of every pod (without logs/events)."""
    return [f for p in pods for f in pod_failures(p)]
