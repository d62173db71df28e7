"""JUnit merge and summary with junitparser."""

from __future__ import annotations

import pytest
from junitparser import JUnitXml

from floe_test.junit import case_id, merge, merge_files

STANDARD = """<?xml version="1.0"?><testsuites><testsuite name="standard">
<testcase classname="tests.integration.test_a" name="test_ok" time="1.0"/>
<testcase classname="tests.integration.test_a" name="test_bad" time="2.0">
<failure message="assert 1 == 2">tb</failure></testcase>
<testcase classname="tests.integration.test_a.TestGroup" name="test_skip" time="0">
<skipped message="absent"/></testcase>
</testsuite></testsuites>"""
DESTRUCTIVE = """<?xml version="1.0"?><testsuite name="destructive">
<testcase classname="tests.e2e.test_kill" name="test_restart" time="30.5">
<properties><property name="floe.reruns" value="2"/><property name="floe.perf.call_s" value="30.1"/></properties>
</testcase>
<testcase classname="tests.e2e.test_kill" name="test_err" time="0.5"><error message="fixture broke"/></testcase>
</testsuite>"""


@pytest.fixture
def files(tmp_path):
    a, b = tmp_path / "junit-standard.xml", tmp_path / "junit-destructive.xml"
    a.write_text(STANDARD)
    b.write_text(DESTRUCTIVE)
    return [a, b]


def test_merge_keeps_every_suite_and_recounts_totals(files, tmp_path):
    summary = merge_files(files, tmp_path / "merged.xml")
    assert summary.totals() == {"tests": 5, "passed": 2, "failures": 1, "errors": 1, "skipped": 1, "flaky": 1,
                                "time_s": 34.0, "files": 2}
    reread = JUnitXml.fromfile(str(tmp_path / "merged.xml"))
    assert [s.name for s in reread] == ["standard", "destructive"]
    assert (reread.tests, reread.failures, reread.errors, reread.skipped) == (5, 1, 1, 1)


def test_summary_names_failures_with_their_messages_and_flaky_tests(files):
    summary = merge_files(files)
    assert [(f.id, f.kind, f.message) for f in summary.failed] == [
        ("tests/integration/test_a.py::test_bad", "failure", "assert 1 == 2"),
        ("tests/e2e/test_kill.py::test_err", "error", "fixture broke"),
    ]
    assert summary.flaky == {"tests/e2e/test_kill.py::test_restart": 2}
    assert summary.perf == {"tests/e2e/test_kill.py::test_restart": {"call_s": 30.1}}


def test_merge_matches_a_plain_junitparser_merge(files):
    plain = JUnitXml()
    for path in files:
        plain += JUnitXml.fromfile(str(path))
    plain.update_statistics()
    ours = merge(files)
    assert (ours.tests, ours.failures, ours.errors, ours.skipped) == (plain.tests, plain.failures, plain.errors,
                                                                      plain.skipped)


@pytest.mark.parametrize(
    ("classname", "name", "expected"),
    [("tests.unit.test_x", "test_y", "tests/unit/test_x.py::test_y"),
     ("tests.unit.test_x.TestZ", "test_y[a-1]", "tests/unit/test_x.py::TestZ::test_y[a-1]"),
     ("", "test_y", "test_y")],
    ids=["function", "method-with-params", "no-classname"],
)
def test_case_id_is_the_pytest_node_id(classname, name, expected):
    assert case_id(classname, name) == expected
