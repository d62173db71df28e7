"""Reports of a collected run (``summary.md``, ``metrics.json``) and of past runs (``floe-test perf report``).

``summary.md`` is written for ``$GITHUB_STEP_SUMMARY``: outcome, totals, failures with messages,
flaky tests, perf regressions and resource peaks, non-ready pods, Helm releases, what could not be
collected, and the exact commands to debug the run. The perf report is Markdown plus a PNG trend
chart (matplotlib, Agg backend): durations over runs, the slowest tests, cluster resource peaks.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testing.perf import (
    Regression,
    baseline_from_history,
    compare,
    history_entry,
    load_baseline,
    load_thresholds,
    summary_rows,
)

if TYPE_CHECKING:
    from floe_test.collect import Collection, Collector

MAX_FAILURES_SHOWN = 20
REPORT_MD = "perf-report.md"
REPORT_PNG = "perf-trend.png"


# --- one run ---------------------------------------------------------------------------------------


def outcome_line(result: Collection) -> str:
    junit = result.junit
    if result.job_state == "Complete" and (junit is None or junit.ok):
        return "✅ tests passed"
    if result.job_state == "Failed":
        failed = f"{junit.failures + junit.errors} test(s) failed" if junit is not None else "tests failed"
        if "DeadlineExceeded" in result.job_detail:
            return f"❌ {failed}; the Job hit its deadline ({result.job_detail})"
        return f"❌ {failed}"
    return "⚠️ infrastructure problem: the tests did not finish"


def compare_with_history(result: Collection, history: Path, thresholds_path: Path | None) -> None:
    thresholds = load_thresholds(thresholds_path)
    tests = result.perf.get("tests") or {}
    current = {t: float(v["call"]) for t, v in tests.items() if "call" in v and v.get("outcome") == "passed"}
    marker_limits = {}
    from testing.perf import Limit

    for test, raw in (result.perf.get("thresholds") or {}).items():
        marker_limits[test] = Limit(float(raw["relative"]), float(raw["absolute"]))
    runs = load_baseline(history)
    baseline = baseline_from_history(runs, thresholds)
    result.perf_baseline = f"{len(runs)} past run(s) in {history}" if runs else f"no past runs in {history} yet"
    result.regressions = [r.to_json() for r in compare(current, baseline, thresholds, marker_limits)]


def append_history(perf: Mapping[str, Any], history: Path) -> None:
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open("a") as fh:
        fh.write(json.dumps(history_entry(perf), separators=(",", ":")) + "\n")


def metrics(result: Collection) -> dict[str, Any]:
    junit = result.junit
    perf = result.perf or {}
    resources = perf.get("resources") or {}
    return {
        "version": 1,
        "cluster": result.target.cluster,
        "namespace": result.target.namespace,
        "job_state": result.job_state,
        "job_detail": result.job_detail,
        "reason": result.reason,
        "totals": junit.totals() if junit is not None else None,
        "failures": [{"test": f.id, "kind": f.kind, "message": f.message} for f in junit.failed] if junit else [],
        "flaky": junit.flaky if junit is not None else {},
        "perf": {
            "tests": perf.get("tests", {}),
            "total_s": perf.get("total_s"),
            "resources": {k: v for k, v in resources.items() if k != "series"},
            "regressions": result.regressions,
        },
        "nodes": result.nodes,
        "helm": result.helm,
        "not_ready_pods": result.not_ready,
        "collection": {"collected": sorted(result.collected), "missing": result.missing, "steps_s": result.steps},
    }


def summary_markdown(result: Collection, commands: Sequence[str]) -> str:
    t = result.target
    junit = result.junit
    lines = [f"# floe tests in `{t.namespace}` (kind cluster `{t.cluster}`): {outcome_line(result)}", ""]
    if junit is not None:
        tot = junit.totals()
        lines += [
            "| tests | passed | failed | errors | skipped | flaky | time |",
            "|---:|---:|---:|---:|---:|---:|---:|",
            f"| {tot['tests']} | {tot['passed']} | {tot['failures']} | {tot['errors']} | {tot['skipped']} "
            f"| {tot['flaky']} | {tot['time_s']:.1f}s |",
            "",
        ]
    lines.append(
        f"- Job `{t.job}`: **{result.job_state or 'not finished'}**"
        + (f" ({result.job_detail})" if result.job_detail else "")
    )
    if result.reason:
        lines.append(f"- Infrastructure problem: {result.reason}")
    if junit is not None and junit.failed:
        lines += ["", f"## Failures ({len(junit.failed)})", ""]
        for failure in junit.failed[:MAX_FAILURES_SHOWN]:
            message = failure.message.replace("\n", " ").replace("|", "\\|")[:300]
            lines.append(f"- `{failure.id}` ({failure.kind}): {message}")
            if failure.detail:
                lines += [
                    "  <details><summary>traceback</summary>",
                    "",
                    "  ```",
                    *(f"  {d}" for d in failure.detail.splitlines()),
                    "  ```",
                    "  </details>",
                ]
        if len(junit.failed) > MAX_FAILURES_SHOWN:
            lines.append(f"- … and {len(junit.failed) - MAX_FAILURES_SHOWN} more (see junit.xml)")
    if junit is not None and junit.flaky:
        lines += ["", f"## Flaky: passed after reruns ({len(junit.flaky)})", ""]
        lines += [f"- `{test}`: {n} rerun(s)" for test, n in sorted(junit.flaky.items())]
    lines += _perf_section(result)
    if result.not_ready:
        lines += ["", "## Pods not ready", ""]
        lines += [f"- `{p}`: see `logs/{p.split(' ')[0]}.describe.txt`" for p in result.not_ready]
    if result.helm:
        lines += [
            "",
            "## Helm releases",
            "",
            "| release | namespace | chart | revision | status |",
            "|---|---|---|---:|---|",
        ]
        lines += [
            f"| {r['name']} | {r['namespace']} | {r['chart']} | {r['revision']} | {r['status']} |" for r in result.helm
        ]
    if result.missing:
        lines += ["", "## Not collected", ""]
        lines += [f"- {m}" for m in result.missing]
    lines += ["", "## Debug this run", "", "```bash", *commands, "```", ""]
    return "\n".join(lines)


def _perf_section(result: Collection) -> list[str]:
    perf = result.perf
    if not perf:
        return []
    lines = ["", "## Performance", ""]
    if result.regressions:
        lines += ["| regressed test | baseline | now | change |", "|---|---:|---:|---:|"]
        lines += [
            f"| `{r['test']}` | {r['baseline_s']:.2f}s | {r['current_s']:.2f}s | +{r['delta_s']:.2f}s "
            f"({r['ratio']:.2f}x) |"
            for r in result.regressions
        ]
        lines.append("")
    elif result.perf_baseline:
        lines.append(f"- No regression against the baseline ({result.perf_baseline}).")
    else:
        lines.append("- Not compared with a baseline.")
    rows = list(summary_rows(perf.get("tests") or {}, limit=5))
    if rows:
        lines += ["", "| slowest tests | setup | call | teardown |", "|---|---:|---:|---:|"]
        lines += [f"| `{t}` | {s:.2f}s | {c:.2f}s | {d:.2f}s |" for t, s, c, d in rows]
    res = perf.get("resources") or {}
    lines.append("")
    if res.get("available"):
        lines.append(
            f"- Cluster peaks: {res.get('peak_cpu_m', 0):.0f}m CPU, {res.get('peak_memory_mib', 0):.0f} MiB "
            f"({res.get('samples', 0)} samples every {res.get('interval_s', '?')}s)"
        )
    else:
        lines.append(f"- Resource usage: unavailable ({res.get('reason') or 'not sampled'})")
    return lines


def write_reports(collector: Collector) -> None:
    from floe_test.collect import debug_commands

    result = collector.result
    collector.write("metrics.json", json.dumps(metrics(result), indent=2, default=str) + "\n")
    collector.write("summary.md", summary_markdown(result, debug_commands(result.target)))


# --- past runs -----------------------------------------------------------------------------------------


def perf_report(history: Path, out: Path, *, thresholds_path: Path | None = None, top: int = 8) -> tuple[Path, Path]:
    """Markdown summary and a PNG trend chart of the runs in ``history``."""
    runs = load_baseline(history)
    if not runs:
        from testing.errors import ConfigError

        raise ConfigError(f"perf history {history}: no runs recorded yet; `floe-test run` appends one per run")
    out.mkdir(parents=True, exist_ok=True)
    thresholds = load_thresholds(thresholds_path)
    latest = runs[-1]
    baseline = baseline_from_history(runs[:-1], thresholds)
    regressions = compare(
        {t: float(s) for t, s in (latest.get("tests") or {}).items() if s is not None}, baseline, thresholds
    )
    slowest = sorted(
        ((t, float(s)) for t, s in (latest.get("tests") or {}).items() if s is not None),
        key=lambda x: x[1],
        reverse=True,
    )[:top]
    png = out / REPORT_PNG
    _chart(runs, [t for t, _ in slowest], png)
    md = out / REPORT_MD
    md.write_text(_report_markdown(runs, slowest, regressions, png.name))
    return md, png


def _label(run: Mapping[str, Any], index: int) -> str:
    return str(run.get("run_id") or f"#{index + 1}")


def _report_markdown(
    runs: Sequence[Mapping[str, Any]],
    slowest: Sequence[tuple[str, float]],
    regressions: Sequence[Regression],
    chart: str,
) -> str:
    latest = runs[-1]
    lines = [
        f"# Performance over {len(runs)} run(s); latest `{_label(latest, len(runs) - 1)}`",
        "",
        f"![durations over runs]({chart})",
        "",
    ]
    if regressions:
        lines += ["## Regressions in the latest run", ""] + [f"- {r}" for r in regressions] + [""]
    else:
        lines += ["No regression in the latest run against the earlier ones.", ""]
    lines += ["## Slowest tests (latest run)", "", "| test | call |", "|---|---:|"]
    lines += [f"| `{t}` | {s:.2f}s |" for t, s in slowest]
    lines += ["", "## Resource peaks", "", "| run | total | CPU peak | memory peak |", "|---|---:|---:|---:|"]
    for i, run in enumerate(runs):
        peaks = run.get("peaks") or {}
        cpu = f"{peaks['cpu_m']:.0f}m" if peaks.get("cpu_m") is not None else "unavailable"
        mem = f"{peaks['memory_mib']:.0f} MiB" if peaks.get("memory_mib") is not None else "unavailable"
        total = f"{float(run['total_s']):.0f}s" if run.get("total_s") is not None else "?"
        lines.append(f"| {_label(run, i)} | {total} | {cpu} | {mem} |")
    return "\n".join(lines) + "\n"


def _chart(runs: Sequence[Mapping[str, Any]], tests: Sequence[str], png: Path) -> None:
    try:  # optional: only this chart needs it, and the test-runner image must stay small
        import matplotlib
    except ImportError:
        from testing.errors import PrerequisiteError

        raise PrerequisiteError(
            "the perf trend chart needs matplotlib, which is not installed: run `uv sync --extra report`"
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [_label(r, i) for i, r in enumerate(runs)]
    x = list(range(len(runs)))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), height_ratios=[3, 2], constrained_layout=True)
    for test in tests:
        ys = [(r.get("tests") or {}).get(test) for r in runs]
        points = [(i, float(y)) for i, y in zip(x, ys, strict=True) if y is not None]
        if points:
            short = test.rsplit("/", 1)[-1]
            short = short if len(short) <= 60 else "…" + short[-59:]
            top.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=short)
    top.set_title("Call duration of the slowest tests (latest run) over runs")
    top.set_ylabel("seconds")
    top.set_xticks(x, labels, rotation=30, ha="right")
    top.grid(alpha=0.3)
    if tests:
        top.legend(fontsize=8, loc="upper left", framealpha=0.9)
    top.set_ylim(bottom=0)
    totals = [float(r["total_s"]) if r.get("total_s") is not None else 0.0 for r in runs]
    bottom.bar(x, totals, color="#8da0cb", label="run total (s)")
    bottom.set_ylabel("run total (s)")
    bottom.set_xticks(x, labels, rotation=30, ha="right")
    bottom.set_title("Run duration and cluster memory peak")
    mem = [(i, (r.get("peaks") or {}).get("memory_mib")) for i, r in enumerate(runs)]
    known = [(i, float(m)) for i, m in mem if m is not None]
    if known:
        twin = bottom.twinx()
        twin.plot([k[0] for k in known], [k[1] for k in known], color="#d95f02", marker="s", label="memory peak")
        twin.set_ylabel("memory peak (MiB)", color="#d95f02")
        twin.set_ylim(bottom=0)
    missing = [labels[i] for i, m in mem if m is None]
    if missing:
        bottom.set_xlabel(f"no resource samples in: {', '.join(missing)}", fontsize=8)
    fig.savefig(png, dpi=110)
    plt.close(fig)
