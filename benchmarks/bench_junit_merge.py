"""JUnit merge + summary: 100,000 test cases across 50 files (failures, skips, reruns, perf properties).

Times floe_test.junit.merge_files (merge, write, totals, failures with messages, flaky tests, perf
properties) against a plain junitparser merge (``merged += JUnitXml.fromfile(f)`` per file, then
``update_statistics`` and a walk over every case's results) measured in the same run, and prints
the ratio. Target: ours ≤ 2 s.

    .venv/bin/python benchmarks/bench_junit_merge.py [--cases 100000] [--files 50] [--no-baseline]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from junitparser import Error, Failure, JUnitXml

from floe_test.junit import merge_files

TARGET_SECONDS = 2.0


def write_files(folder: Path, cases: int, files: int) -> list[Path]:
    per_file = cases // files
    paths = []
    for f in range(files):
        lines = ['<?xml version="1.0" encoding="utf-8"?>', "<testsuites>"]
        lines.append(f'<testsuite name="pytest" tests="{per_file}" hostname="runner-{f}">')
        for i in range(per_file):
            head = f'<testcase classname="tests.e2e.test_mod{f}" name="test_case_{i}" time="0.{i % 997:03d}">'
            props = (
                '<properties><property name="floe.perf.setup_s" value="0.010"/>'
                f'<property name="floe.perf.call_s" value="0.{i % 991:03d}"/></properties>'
            )
            if i % 1000 == 1:
                body = f'<failure message="assert {i} == 0">Traceback ...\nAssertionError: assert {i} == 0</failure>'
            elif i % 500 == 2:
                body = '<skipped type="pytest.skip" message="service not deployed"/>'
            elif i % 700 == 3:
                body = '<properties><property name="floe.reruns" value="1"/></properties>'
            else:
                body = props if i % 10 == 0 else ""
            lines.append(head + body + "</testcase>")
        lines.append("</testsuite></testsuites>")
        path = folder / f"junit-{f:02d}.xml"
        path.write_text("\n".join(lines))
        paths.append(path)
    return paths


def plain_junitparser(paths: list[Path], out: Path) -> tuple[int, int]:
    merged = JUnitXml()
    for path in paths:
        merged += JUnitXml.fromfile(str(path))
    merged.update_statistics()
    failed = sum(1 for suite in merged for case in suite for r in case.result if isinstance(r, Failure | Error))
    merged.write(str(out))
    return int(merged.tests or 0), failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--baseline", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-junit-") as tmp:
        folder = Path(tmp)
        paths = write_files(folder, args.cases, args.files)
        start = time.perf_counter()
        summary = merge_files(paths, folder / "merged.xml")
        ours = time.perf_counter() - start
        print(
            f"floe merge+summary: {summary.tests} cases in {len(paths)} files = {ours:.3f}s "
            f"({summary.failures} failures, {summary.skipped} skipped, {len(summary.flaky)} flaky, "
            f"{len(summary.perf)} with perf properties; target <= {TARGET_SECONDS:.1f}s)"
        )
        ok = ours <= TARGET_SECONDS and summary.tests == args.cases // args.files * args.files
        if args.baseline:
            start = time.perf_counter()
            tests, failed = plain_junitparser(paths, folder / "plain.xml")
            plain = time.perf_counter() - start
            same = tests == summary.tests and failed == summary.failures + summary.errors
            print(
                f"plain junitparser merge (+= per file, update_statistics, result walk): {plain:.3f}s "
                f"-> ours is {plain / ours:.1f}x faster (ratio ours/plain = {ours / plain:.3f}); "
                f"same totals: {same}"
            )
            ok = ok and same
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
