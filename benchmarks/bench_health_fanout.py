"""Health fan-out: 20 local endpoints, 5 of which accept and never answer, 2 s probe timeout.

Prints the concurrent total as a ratio to ONE probe timeout measured in the same run (target ≤ 1.3x),
and the ratio of a serial run to the concurrent one.

    .venv/bin/python benchmarks/bench_health_fanout.py [--probe-timeout 2] [--serial/--no-serial]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _servers import http_server, silent_server

from testing.endpoints import Endpoint
from testing.health import probe_many
from testing.probes import probe_endpoint

TARGET_RATIO = 1.3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--probe-timeout", type=float, default=2.0)
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--silent", type=int, default=5)
    parser.add_argument("--serial", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    stops = []
    endpoints = []
    for i in range(args.endpoints):
        port, stop = silent_server() if i < args.silent else http_server()
        stops.append(stop)
        endpoints.append(Endpoint(f"svc{i}", "127.0.0.1", port, "http"))
    try:
        start = time.monotonic()
        one = probe_endpoint(endpoints[0], timeout=args.probe_timeout)
        baseline = time.monotonic() - start
        assert not one.ok
        start = time.monotonic()
        results = probe_many(endpoints, probe_timeout=args.probe_timeout)
        fanout = time.monotonic() - start
        healthy = sum(r.ok for r in results)
        print(f"baseline: one probe of a silent endpoint = {baseline:.3f}s (probe timeout {args.probe_timeout}s)")
        print(
            f"fan-out:  {args.endpoints} endpoints ({args.silent} silent, {healthy} healthy) = {fanout:.3f}s "
            f"-> {fanout / baseline:.2f}x one timeout (target <= {TARGET_RATIO}x)"
        )
        ok = fanout / baseline <= TARGET_RATIO and healthy == args.endpoints - args.silent
        if args.serial:
            start = time.monotonic()
            probe_many(endpoints, probe_timeout=args.probe_timeout, concurrent=False)
            serial = time.monotonic() - start
            print(
                f"serial:   {serial:.3f}s -> {serial / baseline:.2f}x one timeout; "
                f"concurrent is {serial / fanout:.1f}x faster"
            )
    finally:
        for stop in stops:
            stop()
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
