"""Pod failure detection and fail-fast waits, with the official client's model objects."""

from __future__ import annotations

import pytest

from testing.errors import WaitTimeout
from testing.k8s_client import FAILURE_REASONS, KubeClient, PodsFailed, pod_failures, pod_is_ready

from .k8s_fakes import FakeCore, event, pod


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("kwargs", "reason", "container"),
    [
        ({"waiting": "CrashLoopBackOff", "restarts": 4, "last_terminated": "Error", "ready": False},
         "CrashLoopBackOff", "main"),
        ({"waiting": "ImagePullBackOff", "ready": False, "phase": "Pending"}, "ImagePullBackOff", "main"),
        ({"waiting": "ErrImagePull", "ready": False, "phase": "Pending"}, "ErrImagePull", "main"),
        ({"waiting": "CreateContainerConfigError", "ready": False, "phase": "Pending"},
         "CreateContainerConfigError", "main"),
        ({"terminated": "OOMKilled", "ready": False}, "OOMKilled", "main"),
        ({"last_terminated": "OOMKilled", "ready": False, "restarts": 1}, "OOMKilled", "main"),
        ({"pod_reason": "Evicted", "phase": "Failed", "ready": False}, "Evicted", "-"),
        ({"init_waiting": "ImagePullBackOff", "ready": False, "phase": "Pending"}, "ImagePullBackOff", "init"),
    ],
    ids=["crashloop", "imagepullbackoff", "errimagepull", "createcontainerconfigerror", "oomkilled-now",
         "oomkilled-last", "evicted", "init-container-pull"],
)
def test_each_unrecoverable_state_is_detected_with_container_and_reason(kwargs: dict[str, object], reason: str,
                                                                         container: str) -> None:
    failures = pod_failures(pod("web-0", **kwargs))  # type: ignore[arg-type]
    assert [(f.pod, f.container, f.reason) for f in failures] == [("web-0", container, reason)]
    assert reason in FAILURE_REASONS


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"waiting": "ContainerCreating", "ready": False, "phase": "Pending"},
     {"last_terminated": "OOMKilled", "ready": True, "restarts": 1}],
    ids=["running-ready", "still-creating", "recovered-after-oom"],
)
def test_healthy_or_starting_pods_are_not_failures(kwargs: dict[str, object]) -> None:
    assert pod_failures(pod("web-0", **kwargs)) == []  # type: ignore[arg-type]


def test_ready_needs_running_phase_and_ready_condition() -> None:
    assert pod_is_ready(pod("a"))
    assert not pod_is_ready(pod("a", ready=False))
    assert not pod_is_ready(pod("a", phase="Pending"))


def test_wait_ends_at_once_on_crashloop_with_logs_and_events() -> None:
    core = FakeCore(
        pod_sequence=[[pod("dagster-0", waiting="CrashLoopBackOff", restarts=3, last_terminated="Error",
                           ready=False)]],
        logs={("dagster-0", "main", True): "\n".join(f"line {i}" for i in range(80))},
        events=[event("BackOff", "Back-off restarting failed container", minute=2, count=5),
                event("Pulled", "Container image pulled", minute=1, kind="Normal")],
    )
    clock = FakeClock()
    kube = KubeClient(core=core, networking=object())
    with pytest.raises(PodsFailed) as info:
        kube.wait_pods_ready("floe-platform", "app=svc", timeout=300, interval=2, clock=clock)
    message = str(info.value)
    assert clock.now == 0.0  # no polling: the first look ended the wait
    assert "container main of pod/dagster-0 in namespace floe-platform: CrashLoopBackOff (restarts: 3)" in message
    assert "last termination: Error (exit code 1)" in message
    assert "| line 79" in message and "| line 30" in message and "| line 29" not in message
    assert message.index("Pulled") < message.index("Warning BackOff (x5)")


def test_a_crashed_container_whose_previous_log_is_gone_shows_the_last_ones_output() -> None:
    # Found live: the kubelet had already removed the previous container and answered with a placeholder.
    core = FakeCore(
        pod_sequence=[[pod("crasher", waiting="CrashLoopBackOff", restarts=1, last_terminated="Error", ready=False)]],
        logs={("crasher", "main", True): "unable to retrieve container logs for containerd://6a70f42d",
              ("crasher", "main", False): "floe-crash-marker"},
    )
    with pytest.raises(PodsFailed) as info:
        KubeClient(core=core, networking=object()).wait_pods_ready("ns", "app=svc", timeout=10, clock=FakeClock())
    assert "| floe-crash-marker" in str(info.value)
    assert "unable to retrieve" not in str(info.value)


def test_image_pull_failure_reports_that_no_logs_exist() -> None:
    core = FakeCore(pod_sequence=[[pod("p", waiting="ImagePullBackOff", ready=False, phase="Pending")]])
    with pytest.raises(PodsFailed, match=r"ImagePullBackOff.*\n.*no log lines"):
        KubeClient(core=core, networking=object()).wait_pods_ready("ns", "app=svc", timeout=10,
                                                                   clock=FakeClock())


def test_wait_returns_when_pods_become_ready() -> None:
    core = FakeCore(pod_sequence=[[], [pod("p", ready=False)], [pod("p")]])
    clock = FakeClock()
    state = KubeClient(core=core, networking=object()).wait_pods_ready("ns", "app=svc", timeout=30, interval=2,
                                                                       clock=clock)
    assert state.ready and clock.sleeps == [2, 2]


def test_wait_times_out_with_last_state_when_no_pod_matches() -> None:
    core = FakeCore(pod_sequence=[[]])
    with pytest.raises(WaitTimeout, match="no pods match 'app=svc' in namespace ns"):
        KubeClient(core=core, networking=object()).wait_pods_ready("ns", "app=svc", timeout=5, interval=1,
                                                                   clock=FakeClock())
