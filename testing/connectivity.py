"""Connectivity checks (REQ-643): DNS, TCP, HTTP, NetworkPolicy allow/deny and connection reuse.

Each check names the hop it tests; a failure raises :class:`ConnectivityError` saying which hop failed
(``dns``, ``tcp``, ``http``) for which target, and why. The DNS/TCP/HTTP checks run in the process
that calls them (inside the test Job they run from a pod); the NetworkPolicy check starts probe pods
with an image already in the cluster (``FLOE_PROBE_IMAGE``).
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import httpx

from testing.endpoints import Endpoint
from testing.errors import HealthCheckFailed, WaitTimeout
from testing.polling import Check, wait_for_condition
from testing.probes import DEFAULT_PROBE_TIMEOUT, probe_http, probe_tcp
from testing.sandbox import restricted_container, restricted_pod

if TYPE_CHECKING:
    from testing.k8s_client import KubeClient

__all__ = [
    "DEFAULT_PROBE_IMAGE",
    "PROBE_IMAGE_ENV",
    "ConnectivityError",
    "HopResult",
    "NetworkPolicyReport",
    "PodProbe",
    "ReuseReport",
    "check_dns",
    "check_endpoint_path",
    "check_http",
    "check_network_policy",
    "check_tcp",
    "measure_connection_reuse",
    "probe_image",
    "probe_script",
    "run_probe_pod",
]

PROBE_IMAGE_ENV = "FLOE_PROBE_IMAGE"
#: The stack's small helper image (versions.yaml ``busybox``), preloaded into every cluster.
DEFAULT_PROBE_IMAGE = "busybox:1.37.0"

HopName = Literal["dns", "tcp", "http"]


def probe_image(environ: Mapping[str, str] | None = None) -> str:
    """The image probe pods use: ``FLOE_PROBE_IMAGE`` or the stack's busybox."""
    env = os.environ if environ is None else environ
    return env.get(PROBE_IMAGE_ENV) or DEFAULT_PROBE_IMAGE


class ConnectivityError(HealthCheckFailed):
    """A connectivity check failed at a named hop."""

    def __init__(self, hop: str, target: str, detail: str) -> None:
        self.hop = hop
        self.target = target
        self.detail = detail
        super().__init__(f"{hop.upper()} hop failed for {target}: {detail}")


@dataclass(frozen=True)
class HopResult:
    """The outcome of one hop."""

    hop: HopName
    target: str
    ok: bool
    detail: str
    elapsed: float

    def raise_for_failure(self) -> HopResult:
        if not self.ok:
            raise ConnectivityError(self.hop, self.target, self.detail)
        return self


def check_dns(name: str) -> HopResult:
    """Resolve ``name``; the detail lists the addresses."""
    start = time.monotonic()
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return HopResult("dns", name, False, f"cannot resolve: {exc}", time.monotonic() - start)
    addresses = sorted({str(info[4][0]) for info in infos})
    return HopResult("dns", name, True, "resolves to " + ", ".join(addresses), time.monotonic() - start)


def check_tcp(host: str, port: int, *, timeout: float = DEFAULT_PROBE_TIMEOUT) -> HopResult:
    result = probe_tcp(host, port, timeout=timeout)
    hop: HopName = "dns" if result.hop == "dns" else "tcp"
    return HopResult(hop, f"{host}:{port}", result.ok, result.detail, result.elapsed)


def check_http(
    url: str, *, timeout: float = DEFAULT_PROBE_TIMEOUT, expect_status: int = 200, client: httpx.Client | None = None
) -> HopResult:
    result = probe_http(url, timeout=timeout, expect_status=expect_status, client=client)
    hop: HopName = "http" if result.hop in ("", "http", "body") else ("dns" if result.hop == "dns" else "tcp")
    return HopResult(hop, url, result.ok, result.detail, result.elapsed)


def check_endpoint_path(endpoint: Endpoint, *, timeout: float = DEFAULT_PROBE_TIMEOUT) -> list[HopResult]:
    """DNS, then TCP, then (http endpoints) HTTP; raises :class:`ConnectivityError` at the first failure.

    Returns the hops that passed.
    """
    hops = [
        check_dns(endpoint.host).raise_for_failure(),
        check_tcp(endpoint.host, endpoint.port, timeout=timeout).raise_for_failure(),
    ]
    if endpoint.protocol == "http":
        hops.append(
            check_http(endpoint.probe_url, timeout=timeout, expect_status=endpoint.expect_status).raise_for_failure()
        )
    return hops


# --- connection reuse ------------------------------------------------------------------------------


@dataclass
class ReuseReport:
    """How many TCP connections a pooled client opened for how many requests."""

    requests: int = 0
    connections: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def reused(self) -> bool:
        return self.connections < self.requests


def measure_connection_reuse(
    url: str, *, requests: int = 20, timeout: float = DEFAULT_PROBE_TIMEOUT, client: httpx.Client | None = None
) -> ReuseReport:
    """Send ``requests`` GETs through one pooled client; count the TCP connections it opened.

    Counted client-side from httpx's ``connection.connect_tcp.complete`` trace events (servers under
    test can confirm it by counting accepted connections).
    """
    report = ReuseReport()

    def trace(event: str, info: Mapping[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            report.connections += 1

    own = client is None
    http = client if client is not None else httpx.Client(timeout=timeout)
    try:
        for _ in range(requests):
            try:
                response = http.get(url, extensions={"trace": trace})
                response.read()
                report.requests += 1
                if response.status_code >= 400:
                    report.failures.append(f"HTTP {response.status_code}")
            except httpx.HTTPError as exc:
                report.failures.append(f"{type(exc).__name__}: {exc}")
    finally:
        if own:
            http.close()
    return report


# --- probe pods and NetworkPolicy ------------------------------------------------------------------


@dataclass(frozen=True)
class PodProbe:
    """The outcome of a probe pod fetching a URL."""

    pod: str
    url: str
    ok: bool
    hop: str
    detail: str


def _classify_wget(output: str) -> tuple[str, str]:
    text = output.lower()
    if "bad address" in text or "unknown host" in text:
        return "dns", "name did not resolve"
    if "timed out" in text:
        return "tcp", "connection timed out (blocked or nothing answering)"
    if "refused" in text:
        return "tcp", "connection refused"
    if "server returned error" in text or "http/1" in text:
        return "http", "server answered with an error status"
    return "tcp", "no answer"


def probe_script(url: str, timeout: int, retry_for: int = 0) -> str:
    """The shell a probe pod runs: fetch ``url``, print PROBE_OK, or PROBE_FAIL and the last error.

    ``retry_for`` > 0 keeps trying (once a second) for that many seconds inside the same pod: a new
    pod's address reaches the CNI's policy rules asynchronously, so "allowed" must mean "gets through
    within the bound", not "on the first packet". The bound is busybox's ``timeout`` applet, not
    ``wget -T``: Debian's static busybox 1.35 (our air-gapped helper image) segfaults on ``wget -T``.
    """
    fetch = f"timeout {timeout} wget -q -O /dev/null '{url}' 2>/tmp/err"
    if retry_for <= 0:
        return f"if {fetch}; then echo PROBE_OK; else echo PROBE_FAIL; cat /tmp/err; exit 1; fi"
    return (
        f"end=$(( $(date +%s) + {retry_for} )); n=0; "
        f"while :; do n=$((n+1)); if {fetch}; then echo PROBE_OK after $n attempt'(s)'; exit 0; fi; "
        '[ "$(date +%s)" -ge "$end" ] && break; sleep 1; done; '
        "echo PROBE_FAIL after $n attempt'(s)'; cat /tmp/err; exit 1"
    )


def run_probe_pod(
    kube: KubeClient,
    namespace: str,
    url: str,
    *,
    labels: Mapping[str, str],
    image: str | None = None,
    timeout: float = 120.0,
    connect_timeout: int = 5,
    retry_for: int = 0,
) -> PodProbe:
    """Start a pod (with ``labels``) that fetches ``url`` (retrying for ``retry_for`` seconds); report
    whether it got through."""
    from kubernetes import client as k8s

    name = f"probe-{uuid.uuid4().hex[:8]}"
    script = probe_script(url, connect_timeout, retry_for)
    body = k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name=name, labels=dict(labels)),
        spec=k8s.V1PodSpec(
            restart_policy="Never",
            termination_grace_period_seconds=0,
            # Namespaces of a run enforce the restricted pod security level.
            security_context=restricted_pod(),
            containers=[
                k8s.V1Container(
                    name="probe",
                    image=image or probe_image(),
                    image_pull_policy="IfNotPresent",
                    command=["sh", "-c", script],
                    resources=k8s.V1ResourceRequirements(limits={"cpu": "100m", "memory": "32Mi"}),
                    security_context=restricted_container(),
                )
            ],
        ),
    )
    kube.create_pod(namespace, body)
    try:
        pod = kube.wait_pod_finished(name, namespace, timeout=timeout)
        output = kube.logs(name, namespace, "probe")
    finally:
        kube.delete_pod(name, namespace)
    if pod.status.phase == "Succeeded" and "PROBE_OK" in output:
        return PodProbe(name, url, True, "", "fetched" + output.split("PROBE_OK", 1)[1].split("\n")[0])
    hop, detail = _classify_wget(output)
    return PodProbe(name, url, False, hop, f"{detail}: {output.strip()[-300:]}")


@dataclass
class NetworkPolicyReport:
    """Evidence that a NetworkPolicy allows what it should and blocks what it should."""

    namespace: str
    url: str
    baseline: PodProbe | None = None
    allowed: PodProbe | None = None
    denied: PodProbe | None = None

    @property
    def ok(self) -> bool:
        return bool(
            self.baseline
            and self.baseline.ok
            and self.allowed
            and self.allowed.ok
            and self.denied
            and not self.denied.ok
        )


SERVER_LABELS = {"app.kubernetes.io/name": "np-server"}
#: How long a new allowed client may wait for the CNI to add its address to the policy's rules.
ALLOWED_WITHIN_SECONDS = 30
ALLOWED_LABELS = {"floe.dev/np-role": "allowed"}
DENIED_LABELS = {"floe.dev/np-role": "denied"}


def check_network_policy(
    kube: KubeClient,
    namespace: str,
    *,
    image: str | None = None,
    timeout: float = 180.0,
    on_step: Callable[[str], None] | None = None,
) -> NetworkPolicyReport:
    """Prove a NetworkPolicy in ``namespace`` lets allowed traffic through and blocks the rest.

    Steps (each bounded): start an HTTP server pod and Service; show a client reaches it with no
    policy (so a later block is the policy's doing); apply an ingress policy allowing only pods
    labelled ``floe.dev/np-role=allowed``; an allowed client must get through; a denied client must
    be blocked (polled, as policy enforcement is asynchronous). Raises :class:`ConnectivityError`
    naming the hop, or :class:`testing.errors.WaitTimeout`.
    """
    from kubernetes import client as k8s

    say = on_step or (lambda _msg: None)
    img = image or probe_image()
    selector = ",".join(f"{k}={v}" for k, v in SERVER_LABELS.items())
    say(f"starting server pod ({img}) in namespace {namespace}")
    kube.create_pod(
        namespace,
        k8s.V1Pod(
            metadata=k8s.V1ObjectMeta(name="np-server", labels=dict(SERVER_LABELS)),
            spec=k8s.V1PodSpec(
                termination_grace_period_seconds=0,
                security_context=restricted_pod(),
                containers=[
                    k8s.V1Container(
                        name="httpd",
                        image=img,
                        image_pull_policy="IfNotPresent",
                        command=["sh", "-c", "echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp"],
                        ports=[k8s.V1ContainerPort(container_port=8080)],
                        readiness_probe=k8s.V1Probe(tcp_socket=k8s.V1TCPSocketAction(port=8080), period_seconds=1),
                        security_context=restricted_container(),
                    )
                ],
            ),
        ),
    )
    kube.core.create_namespaced_service(
        namespace,
        k8s.V1Service(
            metadata=k8s.V1ObjectMeta(name="np-server"),
            spec=k8s.V1ServiceSpec(
                selector=dict(SERVER_LABELS), ports=[k8s.V1ServicePort(port=8080, target_port=8080)]
            ),
        ),
    )
    kube.wait_pods_ready(namespace, selector, timeout=timeout)
    url = f"http://np-server.{namespace}.svc.cluster.local:8080/"
    report = NetworkPolicyReport(namespace, url)

    say("baseline: a client reaches the server with no policy")
    report.baseline = run_probe_pod(kube, namespace, url, labels=DENIED_LABELS, image=img, timeout=timeout)
    if not report.baseline.ok:
        raise ConnectivityError(
            report.baseline.hop, url, f"server unreachable even without a NetworkPolicy: {report.baseline.detail}"
        )

    say("applying an ingress policy that allows only floe.dev/np-role=allowed")
    kube.create_network_policy(
        namespace,
        k8s.V1NetworkPolicy(
            metadata=k8s.V1ObjectMeta(name="np-server-allow-only-allowed"),
            spec=k8s.V1NetworkPolicySpec(
                pod_selector=k8s.V1LabelSelector(match_labels=dict(SERVER_LABELS)),
                policy_types=["Ingress"],
                ingress=[
                    k8s.V1NetworkPolicyIngressRule(
                        _from=[
                            k8s.V1NetworkPolicyPeer(pod_selector=k8s.V1LabelSelector(match_labels=dict(ALLOWED_LABELS)))
                        ],
                        ports=[k8s.V1NetworkPolicyPort(port=8080, protocol="TCP")],
                    )
                ],
            ),
        ),
    )

    say("denied client must be blocked")

    def denied_blocked() -> Check[PodProbe]:
        probe = run_probe_pod(kube, namespace, url, labels=DENIED_LABELS, image=img, timeout=timeout, connect_timeout=3)
        return Check(not probe.ok, probe)

    try:
        report.denied = wait_for_condition(
            denied_blocked,
            timeout=timeout,
            interval=2.0,
            description=f"NetworkPolicy in {namespace} to block pods labelled floe.dev/np-role=denied",
            hint="the cluster's CNI may not enforce NetworkPolicy (kind ≥ v0.24 kindnet does; older kindnet does not)",
        )
    except WaitTimeout as exc:
        raise ConnectivityError("tcp", url, f"denied traffic was NOT blocked: {exc}") from exc

    say(f"allowed client must get through (within {ALLOWED_WITHIN_SECONDS}s of starting)")
    report.allowed = run_probe_pod(
        kube, namespace, url, labels=ALLOWED_LABELS, image=img, timeout=timeout, retry_for=ALLOWED_WITHIN_SECONDS
    )
    if not report.allowed.ok:
        raise ConnectivityError(
            report.allowed.hop, url, f"allowed traffic was blocked by the policy: {report.allowed.detail}"
        )
    return report
