"""The floe perf pytest plugin, run in subprocesses: JUnit properties, perf.json, regressions, strictness."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from floe_test.junit import merge_files

PLUGIN_TESTS = """
import pytest

def test_quick():
    pass

@pytest.mark.perf_threshold(relative=0.1, absolute=0.0)
def test_marked():
    pass

def test_broken():
    assert False, "broken on purpose"
"""


def test_plugin_writes_junit_properties_and_perf_json_and_notes_missing_metrics(pytester):
    pytester.makepyfile(test_sample=PLUGIN_TESTS)
    result = pytester.runpytest_subprocess(
        "--floe-perf", "--floe-perf-out=perf.json", "--floe-perf-interval=0.5", "--junitxml=junit.xml",
        "-p", "no:cacheprovider", "-p", "no:randomly",
    )
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["*floe performance*"])
    perf = json.loads((pytester.path / "perf.json").read_text())
    assert set(perf["tests"]) == {"test_sample.py::test_quick", "test_sample.py::test_marked",
                                  "test_sample.py::test_broken"}
    assert perf["tests"]["test_sample.py::test_broken"]["outcome"] == "failed"
    assert perf["thresholds"]["test_sample.py::test_marked"] == {"relative": 0.1, "absolute": 0.0}
    assert perf["resources"]["available"] is False and perf["resources"]["reason"]
    props = {p.get("name") for p in ET.parse(pytester.path / "junit.xml").iter("property")}
    assert {"floe.perf.setup_s", "floe.perf.call_s", "floe.perf.teardown_s"} <= props
    summary = merge_files([pytester.path / "junit.xml"])
    assert "call_s" in summary.perf["test_sample.py::test_quick"]


def test_plugin_flags_regressions_and_fails_only_with_strict(pytester):
    pytester.makepyfile(test_sample="def test_quick():\n    pass\n")
    history = pytester.path / "history.jsonl"
    history.write_text(json.dumps({"tests": {"test_sample.py::test_quick": 0.0}, "outcomes": {}}) + "\n")
    thresholds = pytester.path / "t.yaml"
    thresholds.write_text("default: {relative: 0.0, absolute_seconds: 0.0}\n")
    args = ["--floe-perf", "--floe-perf-interval=0", f"--floe-perf-baseline={history}",
            f"--floe-perf-thresholds={thresholds}", "-p", "no:cacheprovider"]
    lenient = pytester.runpytest_subprocess(*args)
    assert lenient.ret == 0
    lenient.stdout.fnmatch_lines(["REGRESSION test_sample.py::test_quick*", "*--floe-perf-strict fails the run"])
    strict = pytester.runpytest_subprocess(*args, "--floe-perf-strict")
    assert strict.ret == 1


def test_plugin_is_off_by_default_outside_the_job(pytester, monkeypatch):
    monkeypatch.delenv("FLOE_RESULTS_DIR", raising=False)
    pytester.makepyfile(test_sample="def test_quick():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert "floe performance" not in result.stdout.str()


