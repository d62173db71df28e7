"""``floe-test collect`` and ``floe-test perf``: their arguments and commands (kept out of cli.py)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from floe_model.paths import STATE_DIR

EXIT_OK, EXIT_REGRESSED, EXIT_INFRA = 0, 1, 2


def add_collect_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stack", help="stack name: integration or e2e")
    parser.add_argument("--out", required=True, help="output folder (layout: see floe_test/collect.py)")
    parser.add_argument("--run-id", help="the run to collect (default: runId of Pulumi.<stack>.yaml)")
    parser.add_argument("--namespace", help="the run's namespace (default: <namespacePrefix>-<run id>)")
    parser.add_argument(
        "--perf-history", help="compare perf.json with this history (default: .state/perf/<stack>.jsonl)"
    )


def add_perf_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=["report", "compare", "record"],
        help="report: Markdown + PNG trend chart; compare: a results folder against the history; "
        "record: append a results folder's perf.json to the history",
    )
    parser.add_argument("--stack", default="integration", help="whose history (default: integration)")
    parser.add_argument("--out", default="test-results/perf", help="report: output folder")
    parser.add_argument("--results", help="compare/record: a collected results folder (with perf.json)")
    parser.add_argument("--perf-strict", action="store_true", help="compare: exit 1 when a test regressed")


def _history(args: argparse.Namespace, stack: str) -> Path:
    return Path(args.perf_history) if args.perf_history else STATE_DIR / "perf" / f"{stack}.jsonl"


def collect_command(args: argparse.Namespace) -> int:
    from floe_model.settings import parse_settings, read_stack_file
    from floe_test.collect import collect
    from floe_test.preflight import check_out_dir, check_run_id
    from floe_test.run import run_target

    settings = parse_settings(args.stack, read_stack_file(args.stack))
    if args.run_id is not None:
        check_run_id(args.run_id)
    check_out_dir(Path(args.out))
    target = run_target(settings, args.run_id or settings.run_id)
    if args.namespace:
        from dataclasses import replace

        target = replace(target, namespace=args.namespace)
    out = Path(args.out)
    result = collect(
        target.cluster, target.namespace, out, job_state=None, target=target, perf_history=_history(args, args.stack)
    )
    print(f"collected {len(result.collected)} file(s) into {out}; job {result.job_state or 'not finished'}")
    for missing in result.missing:
        print(f"  missing: {missing}", file=sys.stderr)
    print(f"summary: {out / 'summary.md'}")
    if not result.cluster_reachable:
        print(f"error: cluster {target.cluster} unreachable: nothing was collected from it", file=sys.stderr)
        return EXIT_INFRA
    if not result.from_cluster:
        print(
            f"error: nothing was collected from namespace {target.namespace} of cluster {target.cluster} "
            "(wrong --run-id or --namespace?)",
            file=sys.stderr,
        )
        return EXIT_INFRA
    return EXIT_OK


def perf_command(args: argparse.Namespace) -> int:
    from floe_test.report import append_history, perf_report
    from testing.perf import baseline_from_history, compare, load_baseline, load_thresholds

    history = _history(args, args.stack)
    thresholds_path = Path(args.perf_thresholds) if args.perf_thresholds else None
    if args.action == "report":
        md, png = perf_report(history, Path(args.out), thresholds_path=thresholds_path)
        print(f"wrote {md} and {png}")
        return EXIT_OK
    if not args.results:
        print(f"error: perf {args.action} needs --results DIR (a folder with perf.json)", file=sys.stderr)
        return EXIT_INFRA
    perf_file = Path(args.results) / "perf.json"
    if not perf_file.is_file():
        print(
            f"error: {perf_file} does not exist: was the run collected with the floe perf plugin on?", file=sys.stderr
        )
        return EXIT_INFRA
    perf = json.loads(perf_file.read_text())
    if args.action == "record":
        append_history(perf, history)
        print(f"appended run {perf.get('run_id') or '?'} to {history}")
        return EXIT_OK
    thresholds = load_thresholds(thresholds_path)
    runs = load_baseline(history)
    current = {
        t: float(v["call"])
        for t, v in (perf.get("tests") or {}).items()
        if "call" in v and v.get("outcome") == "passed"
    }
    regressions = compare(current, baseline_from_history(runs, thresholds), thresholds)
    print(f"compared {len(current)} test(s) with {len(runs)} past run(s) in {history}")
    for regression in regressions:
        print(f"REGRESSION {regression}")
    if regressions and args.perf_strict:
        return EXIT_REGRESSED
    return EXIT_OK
