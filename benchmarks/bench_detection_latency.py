"""Detection latency: time from a state change to the wait returning (target: median ≤ one poll interval).

Two cases, each measured over N trials with the real clock:
- success: a local HTTP service starts answering -> ``wait_for_service`` returns;
- failure: a pod turns CrashLoopBackOff -> ``KubeClient.wait_pods_ready`` raises (API faked at the client
  boundary with kubernetes.client models, so no cluster is needed).

    .venv/bin/python benchmarks/bench_detection_latency.py [--interval 0.2] [--trials 15]
"""

from __future__ import annotations

import argparse
import random
import socket
import statistics
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import _Ok
from kubernetes import client as k8s

from testing.k8s_client import KubeClient, PodsFailed
from testing.probes import wait_for_service


def _pod(crashing: bool) -> k8s.V1Pod:
    state = (
        k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="CrashLoopBackOff"))
        if crashing
        else k8s.V1ContainerState(waiting=k8s.V1ContainerStateWaiting(reason="ContainerCreating"))
    )
    return k8s.V1Pod(
        metadata=k8s.V1ObjectMeta(name="p", namespace="ns"),
        status=k8s.V1PodStatus(
            phase="Pending",
            container_statuses=[
                k8s.V1ContainerStatus(name="main", image="i", image_id="", ready=False, restart_count=1, state=state)
            ],
        ),
    )


class _Core:
    def __init__(self) -> None:
        self.crashing = threading.Event()

    def list_namespaced_pod(self, *_: Any, **__: Any) -> k8s.V1PodList:
        return k8s.V1PodList(items=[_pod(self.crashing.is_set())])

    def read_namespaced_pod_log(self, *_: Any, **__: Any) -> str:
        return "boom\n"

    def list_namespaced_event(self, *_: Any, **__: Any) -> k8s.CoreV1EventList:
        return k8s.CoreV1EventList(items=[])


def _after(delay: float, action: Any, stamp: list[float]) -> None:
    def run() -> None:
        stamp.append(time.monotonic())
        action()

    timer = threading.Timer(delay, run)
    timer.daemon = True
    timer.start()


def success_latency(interval: float) -> float:
    stamp: list[float] = []
    box: dict[str, Any] = {}
    # Reserve a free port: the URL is known before the service answers on it.
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()

    def open_service() -> None:
        server = ThreadingHTTPServer(("127.0.0.1", port), _Ok)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        box["server"] = server

    _after(random.uniform(0.3, 0.3 + interval), open_service, stamp)
    wait_for_service(f"http://127.0.0.1:{port}/", timeout=10, probe_timeout=1, interval=interval)
    done = time.monotonic()
    box["server"].shutdown()
    box["server"].server_close()
    return done - stamp[0]


def failure_latency(interval: float) -> float:
    core = _Core()
    kube = KubeClient(core=core, networking=object())
    stamp: list[float] = []
    _after(random.uniform(0.3, 0.3 + interval), core.crashing.set, stamp)
    try:
        kube.wait_pods_ready("ns", "app=x", timeout=10, interval=interval)
    except PodsFailed:
        return time.monotonic() - stamp[0]
    raise AssertionError("wait did not fail")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=0.2)
    parser.add_argument("--trials", type=int, default=15)
    args = parser.parse_args()
    ok = True
    for name, fn in (("service answers", success_latency), ("pod crash-loops", failure_latency)):
        samples = [fn(args.interval) for _ in range(args.trials)]
        median = statistics.median(samples)
        ratio = median / args.interval
        ok &= ratio <= 1.0
        p90 = sorted(samples)[int(0.9 * len(samples))]
        print(
            f"{name:16s}: median {median * 1000:6.1f} ms, p90 {p90 * 1000:6.1f} ms "
            f"over {args.trials} trials -> {ratio:.2f}x the poll interval "
            f"({args.interval * 1000:.0f} ms; target <= 1.0x)"
        )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
