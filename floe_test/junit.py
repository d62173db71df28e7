"""Merging and summarising JUnit XML with junitparser.

:func:`merge` reads every file with junitparser and moves the parsed ``<testsuite>`` elements into one
:class:`junitparser.JUnitXml` (no deep copies: the per-file trees are thrown away), then counts
totals in one pass over the test cases. junitparser's own ``+=`` deep-copies every suite and
recounts the whole document after each file, which is quadratic in the number of files; the
result here is the same document with the same totals.

:func:`summarise` gives what a CI step summary needs: totals, failures and errors with their
messages, flaky tests (rerun and then passed; pytest-rerunfailures plus the ``floe.reruns``
property the floe perf plugin records) and per-test perf properties (``floe.perf.*``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from junitparser import JUnitXml, TestSuite

__all__ = ["CaseFailure", "JUnitSummary", "case_id", "merge", "merge_files", "summarise"]

PERF_PREFIX = "floe.perf."
RERUNS_PROPERTY = "floe.reruns"
_RERUN_TAGS = {"rerunFailure", "rerunError", "flakyFailure", "flakyError"}
MESSAGE_LIMIT = 500


@dataclass(frozen=True)
class CaseFailure:
    """A failed or errored test case."""

    id: str
    kind: str  # "failure" | "error"
    message: str
    detail: str


@dataclass
class JUnitSummary:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    time: float = 0.0
    failed: list[CaseFailure] = field(default_factory=list)
    flaky: dict[str, int] = field(default_factory=dict)
    """Test id -> number of reruns, for tests that needed reruns."""
    durations: dict[str, float] = field(default_factory=dict)
    """Test id -> duration (the case's ``time``)."""
    perf: dict[str, dict[str, float]] = field(default_factory=dict)
    """Test id -> ``floe.perf.*`` properties (setup_s, call_s, teardown_s)."""
    files: int = 0

    @property
    def passed(self) -> int:
        return self.tests - self.failures - self.errors - self.skipped

    @property
    def ok(self) -> bool:
        return self.failures == 0 and self.errors == 0

    def totals(self) -> dict[str, Any]:
        return {
            "tests": self.tests,
            "passed": self.passed,
            "failures": self.failures,
            "errors": self.errors,
            "skipped": self.skipped,
            "flaky": len(self.flaky),
            "time_s": round(self.time, 3),
            "files": self.files,
        }


def case_id(classname: str | None, name: str | None) -> str:
    """pytest's node id from a JUnit case (``tests.unit.test_x`` + ``test_y`` -> ``tests/unit/test_x.py::test_y``)."""
    classname = classname or ""
    name = name or "?"
    parts = classname.split(".")
    # pytest writes "pkg.module.Class" for methods: keep the class as a node id part.
    if len(parts) > 1 and parts[-1][:1].isupper():
        module, klass = parts[:-1], [parts[-1]]
    else:
        module, klass = parts, []
    path = "/".join(module) + ".py" if module and module[0] else ""
    return "::".join([p for p in (path, *klass, name) if p])


def _suites(xml: JUnitXml) -> Iterable[Any]:
    suites: Iterable[Any] = xml._elem.iter("testsuite")
    return suites


def merge(paths: Sequence[str | os.PathLike[str]]) -> JUnitXml:
    """One JUnitXml holding every suite of every file, with correct totals."""
    merged = JUnitXml()
    root = merged._elem
    for path in paths:
        xml = JUnitXml.fromfile(str(path))
        for suite in list(xml._elem.findall("testsuite")):
            root.append(suite)
    _set_totals(merged)
    return merged


def _set_totals(xml: JUnitXml) -> None:
    tests = failures = errors = skipped = 0
    total_time = 0.0
    for suite in xml._elem.findall("testsuite"):
        s_tests = s_fail = s_err = s_skip = 0
        s_time = 0.0
        for case in suite.iter("testcase"):
            s_tests += 1
            t = case.get("time")
            if t:
                s_time += float(t)
            for child in case:
                tag = child.tag
                if tag == "failure":
                    s_fail += 1
                elif tag == "error":
                    s_err += 1
                elif tag == "skipped":
                    s_skip += 1
        suite.set("tests", str(s_tests))
        suite.set("failures", str(s_fail))
        suite.set("errors", str(s_err))
        suite.set("skipped", str(s_skip))
        suite.set("time", str(round(s_time, 3)))
        tests, failures, errors, skipped = tests + s_tests, failures + s_fail, errors + s_err, skipped + s_skip
        total_time += s_time
    root = xml._elem
    root.set("tests", str(tests))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("skipped", str(skipped))
    root.set("time", str(round(total_time, 3)))


def summarise(xml: JUnitXml, *, files: int = 1) -> JUnitSummary:
    """Totals, failures with messages, flaky tests and perf properties of a (merged) document."""
    summary = JUnitSummary(files=files)
    for suite in _suites(xml):
        for case in suite.findall("testcase"):
            summary.tests += 1
            cid = None
            t = case.get("time")
            duration = float(t) if t else 0.0
            summary.time += duration
            reruns = 0
            for child in case:
                tag = child.tag
                if tag == "failure" or tag == "error":
                    cid = cid or case_id(case.get("classname"), case.get("name"))
                    if tag == "failure":
                        summary.failures += 1
                    else:
                        summary.errors += 1
                    message = (child.get("message") or "").strip()
                    detail = (child.text or "").strip()
                    summary.failed.append(
                        CaseFailure(cid, tag, message[:MESSAGE_LIMIT], "\n".join(detail.splitlines()[-20:]))
                    )
                elif tag == "skipped":
                    summary.skipped += 1
                elif tag in _RERUN_TAGS:
                    reruns += 1
                elif tag == "properties":
                    for prop in child:
                        name = prop.get("name") or ""
                        if name == RERUNS_PROPERTY:
                            reruns = max(reruns, int(float(prop.get("value") or 0)))
                        elif name.startswith(PERF_PREFIX):
                            cid = cid or case_id(case.get("classname"), case.get("name"))
                            try:
                                value = float(prop.get("value") or "nan")
                            except ValueError:
                                continue
                            summary.perf.setdefault(cid, {})[name[len(PERF_PREFIX) :]] = value
            if reruns:
                cid = cid or case_id(case.get("classname"), case.get("name"))
                summary.flaky[cid] = reruns
            if duration:
                summary.durations[cid or case_id(case.get("classname"), case.get("name"))] = duration
    return summary


def merge_files(paths: Sequence[str | os.PathLike[str]], out: Path | None = None) -> JUnitSummary:
    """Merge ``paths`` (writing ``out`` when given) and summarise the result."""
    merged = merge(paths)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        merged.write(str(out))
    return summarise(merged, files=len(paths))


def suite_of(xml: JUnitXml) -> list[TestSuite]:
    """The suites of a document as junitparser objects (for callers that want the object API)."""
    return list(xml)
