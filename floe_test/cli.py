"""``floe-test``: the command line of floe-testinfra.

Exit codes (every command, floe_test/_private/entry.py): 0 success (tests passed), 1 tests failed or
a performance regression where one fails the command, 2 anything else, with one message and no
traceback (``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from floe_test._private.entry import debug_wanted, guarded

EXIT_OK, EXIT_TESTS_FAILED, EXIT_INFRA = 0, 1, 2


def cmd_render(args: argparse.Namespace) -> int:
    from floe_test.render import render

    overrides = dict(item.split("=", 1) for item in args.set)
    summary = render(args.stack, Path(args.out), overrides=overrides)
    print(
        f"Rendered stack {args.stack} into {args.out}: {len(summary['releases'])} release(s), "
        f"{len(summary['images'])} image(s), config hash {summary['config_hash']}"
    )
    return EXIT_OK


def cmd_versions(args: argparse.Namespace) -> int:
    from floe_model.versions import load_versions

    versions = load_versions()
    if args.key:
        print(versions.get(args.key))
    else:
        print(json.dumps(versions.raw, indent=2))
    return EXIT_OK


def cmd_templates(args: argparse.Namespace) -> int:
    from floe_test.templates import TEMPLATE_PATH, render_test_job_template

    text = render_test_job_template()
    if args.check:
        if TEMPLATE_PATH.read_text() != text:
            print(f"{TEMPLATE_PATH} is out of date: run `make templates`", file=sys.stderr)
            return EXIT_INFRA
        print(f"{TEMPLATE_PATH} is up to date")
        return EXIT_OK
    TEMPLATE_PATH.write_text(text)
    print(f"wrote {TEMPLATE_PATH}")
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from floe_test.doctor import diagnose, report

    return EXIT_OK if report(diagnose(args.stack)) else EXIT_INFRA


def cmd_run(args: argparse.Namespace) -> int:
    from floe_test.run import RunOptions, run

    return run(
        RunOptions(
            stack=args.stack,
            out=Path(args.out),
            keep_cluster=args.keep_cluster,
            keep_on_failure=args.keep_on_failure,
            reuse=args.reuse,
            adopt=args.adopt,
            run_id=args.run_id,
            ci=args.ci,
            overrides=dict(item.split("=", 1) for item in args.set),
            perf_history=Path(args.perf_history) if args.perf_history else None,
            perf_thresholds=Path(args.perf_thresholds) if args.perf_thresholds else None,
            perf_strict=args.perf_strict,
        )
    )


def cmd_collect(args: argparse.Namespace) -> int:
    from floe_test.collect_cli import collect_command

    return collect_command(args)


def cmd_perf(args: argparse.Namespace) -> int:
    from floe_test.collect_cli import perf_command

    return perf_command(args)


def cmd_cleanup(args: argparse.Namespace) -> int:
    from floe_test.run import cleanup

    return cleanup(tuple(args.stack or ()))


def cmd_sweep(args: argparse.Namespace) -> int:
    from testing.isolation import sweep_namespaces

    swept = sweep_namespaces(max_age=args.max_age_hours * 3600, dry_run=args.dry_run, context=args.context)
    verb = "would delete" if args.dry_run else "deleted"
    for ns in swept:
        print(f"{verb} {ns}")
    print(f"{len(swept)} namespace(s) {verb}")
    return EXIT_OK


def cmd_tools(args: argparse.Namespace) -> int:
    from floe_build.toolchain import main as toolchain_main

    code = toolchain_main(args.toolchain_args or ["status"])
    return EXIT_INFRA if code == EXIT_TESTS_FAILED else code  # no tests here: a failure is "anything else"


def _set_item(value: str) -> str:
    key = value.split("=", 1)[0]
    if "=" not in value or not key.strip():
        raise argparse.ArgumentTypeError(f"{value!r} must be KEY=VALUE (a floe-testinfra setting)")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="floe-test", description="Kubernetes test infrastructure of floe.")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: list[tuple[str, str, Callable[[argparse.Namespace], int]]] = [
        ("render", "write what a stack would create, without a cluster (Pulumi mocks)", cmd_render),
        ("versions", "print the pinned versions (or one of them)", cmd_versions),
        ("templates", "regenerate templates/test-job.yaml from the TestJob component", cmd_templates),
        ("doctor", "check Docker, tools, inotify limits and disk before a cluster run", cmd_doctor),
        ("run", "bring a stack up, run the test Job, collect results, destroy", cmd_run),
        ("collect", "collect results, logs, events and a summary of a run from its cluster", cmd_collect),
        ("perf", "performance history: report (Markdown + PNG trend chart) or compare a run", cmd_perf),
        (
            "cleanup",
            "destroy this checkout's stacks and the kind clusters it created (marker on their nodes)",
            cmd_cleanup,
        ),
        ("sweep", "delete leftover test namespaces of crashed runs (by label and age)", cmd_sweep),
        ("tools", "install or show the pinned toolchain (kind, kubectl, helm, pulumi, plugins)", cmd_tools),
    ]
    parsers = {}
    for name, help_text, func in commands:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        # Also after the command (`floe-test run integration --debug`); unset, the top level's counts.
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        parsers[name] = p
    parsers["render"].add_argument("stack", help="stack name: integration or e2e")
    parsers["render"].add_argument("--out", required=True, help="output folder")
    parsers["render"].add_argument(
        "--set",
        action="append",
        default=[],
        type=_set_item,
        metavar="KEY=VALUE",
        help="override a floe-testinfra setting of the stack (repeatable)",
    )
    parsers["versions"].add_argument("key", nargs="?", help="dotted key, e.g. kind.version")
    parsers["doctor"].add_argument("stack", nargs="?", default="integration", choices=["integration", "e2e"])
    run = parsers["run"]
    run.add_argument("stack", help="stack name: integration or e2e")
    run.add_argument("--out", default="test-results", help="where results, logs and the summary go")
    run.add_argument("--keep-cluster", action="store_true", help="do not destroy anything at the end")
    run.add_argument("--keep-on-failure", action="store_true", help="keep everything when the tests fail")
    run.add_argument(
        "--reuse",
        action="store_true",
        help="reuse a running cluster with the same config hash instead of failing on it",
    )
    run.add_argument("--adopt", action="store_true", help="the cluster already exists (CI: helm/kind-action)")
    run.add_argument("--run-id", help="run identifier (default: random)")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        type=_set_item,
        metavar="KEY=VALUE",
        help="a floe-testinfra setting for this run only, e.g. variant=airgapped (repeatable)",
    )
    run.add_argument(
        "--ci",
        action="store_true",
        default=os.environ.get("CI") == "true",
        help="CI run: infra-only reruns, no kept namespaces (default: on when CI=true)",
    )
    for p in (run, parsers["perf"]):
        p.add_argument("--perf-history", help="history of past runs, JSON lines (default: .state/perf/<stack>.jsonl)")
        p.add_argument("--perf-thresholds", help="thresholds YAML (default: testing/perf-thresholds.yaml)")
    run.add_argument("--perf-strict", action="store_true", help="exit 1 when a test regressed against the baseline")
    from floe_test.collect_cli import add_collect_arguments, add_perf_arguments

    add_collect_arguments(parsers["collect"])
    add_perf_arguments(parsers["perf"])
    sweep = parsers["sweep"]
    sweep.add_argument("--max-age-hours", type=float, default=2.0, help="only namespaces older than this")
    sweep.add_argument("--dry-run", action="store_true", help="list, do not delete")
    sweep.add_argument("--context", help="kubectl context (default: current)")
    parsers["cleanup"].add_argument(
        "--stack", action="append", choices=["integration", "e2e"], help="only this stack and its clusters (repeatable)"
    )
    parsers["tools"].add_argument("toolchain_args", nargs=argparse.REMAINDER, help="install | status [--tool X]")
    parsers["templates"].add_argument("--check", action="store_true", help="fail when the file is out of date")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse and run one command under the exit-code contract (one message, never a traceback)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors: argparse printed the message
        return EXIT_OK if exc.code in (0, None) else EXIT_INFRA
    code: int = guarded(lambda: args.func(args), prog="floe-test", debug=debug_wanted(args))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
