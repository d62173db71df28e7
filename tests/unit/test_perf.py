"""Perf monitoring: thresholds, baseline comparison, the sampler, the pytest plugin and the report."""

from __future__ import annotations

import json

import pytest

from floe_test.report import append_history, perf_report
from testing.errors import ConfigError
from testing.perf import (
    Limit,
    ResourceSampler,
    Sample,
    Thresholds,
    baseline_from_history,
    compare,
    load_baseline,
    load_thresholds,
    parse_thresholds,
)

LIMITS = Thresholds(Limit(0.5, 2.0), overrides=(("tests/e2e/*", Limit(1.0, 30.0)),), window=3)


@pytest.mark.parametrize(
    ("current", "regressed"),
    [(1.4, False), (3.0, False), (12.0, False), (13.0, True)],
    ids=["faster-than-1.5x", "1.5x-but-only-1s-slower", "exactly-plus-2s-plus-50pct", "both-limits-exceeded"],
)
def test_a_regression_needs_both_the_relative_and_the_absolute_limit(current, regressed):
    baseline = {"tests/a.py::t": (8.0, 3)} if current >= 12 else {"tests/a.py::t": (1.0, 3)}
    assert bool(compare({"tests/a.py::t": current}, baseline, LIMITS)) is regressed


def test_overrides_match_by_glob_and_markers_win():
    baseline = {"tests/e2e/test_x.py::t": (10.0, 3), "tests/a.py::t": (10.0, 3)}
    current = {"tests/e2e/test_x.py::t": 25.0, "tests/a.py::t": 25.0}
    assert [r.test for r in compare(current, baseline, LIMITS)] == ["tests/a.py::t"]
    markers = {"tests/a.py::t": Limit(5.0, 100.0)}
    assert compare(current, baseline, LIMITS, markers) == []


def test_baseline_is_the_median_of_the_last_window_passing_runs():
    runs = [{"tests": {"t": s}, "outcomes": {"t": "passed"}} for s in (100.0, 1.0, 2.0, 3.0)]
    runs.append({"tests": {"t": 50.0}, "outcomes": {"t": "failed"}})
    assert baseline_from_history(runs, LIMITS) == {"t": (2.0, 3)}


@pytest.mark.parametrize(
    ("data", "problem"),
    [({}, "'default' is required"), ({"default": {"relative": 0.5}}, "both relative and absolute_seconds"),
     ({"default": {"relative": -1, "absolute_seconds": 1}}, "must not be negative"),
     ({"default": {"relative": "x", "absolute_seconds": 1}}, "must be numbers"),
     ({"default": {"relative": 1, "absolute_seconds": 1}, "window": 0}, "at least 1")],
    ids=["no-default", "half-default", "negative", "not-a-number", "zero-window"],
)
def test_bad_thresholds_are_rejected_with_the_field(data, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_thresholds(data, "perf.yaml")


def test_the_shipped_thresholds_file_is_valid_and_holds_the_defaults():
    thresholds = load_thresholds()
    assert thresholds.default.relative > 0 and thresholds.default.absolute > 0


def test_override_inherits_what_it_does_not_set():
    t = parse_thresholds({"default": {"relative": 0.5, "absolute_seconds": 2}, "overrides": {"x*": {"relative": 3}}})
    assert t.limit_for("x1") == Limit(3.0, 2.0)


def test_load_baseline_reads_history_lines_and_a_single_perf_json(tmp_path):
    perf = {"version": 1, "run_id": "r1", "tests": {"t": {"call": 1.5, "outcome": "passed"}}, "resources": {}}
    single = tmp_path / "perf.json"
    single.write_text(json.dumps(perf, indent=2))
    assert load_baseline(single)[0]["tests"] == {"t": 1.5}
    history = tmp_path / "h.jsonl"
    append_history(perf, history)
    append_history(perf, history)
    assert len(load_baseline(history)) == 2
    assert load_baseline(tmp_path / "absent.jsonl") == []


def test_sampler_keeps_peaks_and_reports_unavailable_metrics_without_failing():
    readings = iter([Sample({"n1": (100.0, 500.0)}), RuntimeError("metrics.k8s.io 404"),
                     Sample({"n1": (300.0, 400.0)}, {"ns/p": (50.0, 64.0)})])

    def source() -> Sample:
        value = next(readings)
        if isinstance(value, Exception):
            raise value
        return value

    sampler = ResourceSampler(source, interval=1.0, clock=lambda: 0.0)
    for _ in range(3):
        sampler.sample_once()
    report = sampler.report()
    assert report["available"] and report["samples"] == 2 and report["failed_samples"] == 1
    assert report["nodes"]["n1"] == {"cpu_m": 300.0, "memory_mib": 500.0}
    assert report["pods"]["ns/p"] == {"cpu_m": 50.0, "memory_mib": 64.0}

    def broken() -> Sample:
        raise ConnectionError("no route to metrics-server")

    dead = ResourceSampler(broken, interval=1.0)
    dead.sample_once()
    assert dead.report()["available"] is False
    assert "no route to metrics-server" in dead.report()["reason"]


# --- the report ---------------------------------------------------------------------------------------


def test_perf_report_writes_markdown_and_a_png_trend_chart(tmp_path):
    history = tmp_path / "history.jsonl"
    for i, slow in enumerate([10.0, 11.0, 10.5, 10.8, 25.0]):
        perf = {
            "run_id": f"r{i + 1}", "total_s": 300 + i * 10,
            "tests": {
                "tests/integration/test_dagster.py::test_run_launches": {"call": slow, "outcome": "passed"},
                "tests/integration/test_db.py::test_query": {"call": 2.0 + i * 0.1, "outcome": "passed"},
                "tests/integration/test_health.py::test_all_ready": {"call": 4.0, "outcome": "passed"},
            },
            "resources": {"available": i != 2, "peak_cpu_m": 1500.0 + i * 100 if i != 2 else None,
                          "peak_memory_mib": 3000.0 + i * 200 if i != 2 else None},
        }
        append_history(perf, history)
    md, png = perf_report(history, tmp_path / "report")
    text = md.read_text()
    assert "test_run_launches: 25.00s vs baseline 10.65s" in text
    assert "| r3 | 320s | unavailable | unavailable |" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_perf_report_without_history_says_how_to_get_one(tmp_path):
    with pytest.raises(ConfigError, match="no runs recorded yet"):
        perf_report(tmp_path / "none.jsonl", tmp_path / "out")
