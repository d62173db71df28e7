"""One exit-code contract for every command line of floe-testinfra.

``floe-test`` and every ``python -m floe_test.*`` entry point exit with:

- 0: done (tests passed);
- 1: tests failed, or a performance regression was found where one fails the command;
- 2: anything else: bad input, a missing prerequisite, an unreachable cluster, an interrupt, a bug.

Anything but 0 comes with one message on stderr naming the culprit, never a traceback; ``--debug``
(or ``FLOE_DEBUG=1``) adds the traceback for the people who fix the bug.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Callable, Sequence

from testing.errors import InfraError

EXIT_OK, EXIT_TESTS_FAILED, EXIT_OTHER = 0, 1, 2
DEBUG_ENV = "FLOE_DEBUG"


def debug_wanted(args: argparse.Namespace | None = None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "") not in {"", "0", "false"}


def failure_message(exc: BaseException) -> str:
    """The one line (or block) a user reads: an InfraError's own message, else what and where."""
    if isinstance(exc, KeyboardInterrupt):
        return f"interrupted ({exc})" if str(exc) else "interrupted"
    if isinstance(exc, InfraError):
        return str(exc)
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    return f"unexpected {type(exc).__name__}: {exc} (run again with --debug for the traceback)"


def guarded(func: Callable[[], int], *, prog: str, debug: bool = False) -> int:
    """Run ``func`` under the contract: its own exit code (0/1/2), or 2 with one message."""
    try:
        code = func()
    except SystemExit as exc:  # argparse and friends: keep their usage message, map the code
        code = exc.code if isinstance(exc.code, int) else (EXIT_OK if exc.code is None else EXIT_OTHER)
        return code if code in (EXIT_OK, EXIT_TESTS_FAILED) else EXIT_OTHER
    except BaseException as exc:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {failure_message(exc)}", file=sys.stderr, flush=True)
        return EXIT_OTHER
    if code not in (EXIT_OK, EXIT_TESTS_FAILED, EXIT_OTHER):
        return EXIT_OTHER
    return code


def run_entry(
    parser: argparse.ArgumentParser,
    body: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
    *,
    prog: str,
) -> int:
    """Parse ``argv`` with ``parser`` (usage errors exit 2) and run ``body`` under the contract."""
    if not any(a.dest == "debug" for a in parser._actions):  # argparse keeps its actions here
        parser.add_argument("--debug", action="store_true", help="show the traceback of an unexpected error")
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:
        return EXIT_OK if exc.code in (0, None) else EXIT_OTHER
    return guarded(lambda: body(args), prog=prog, debug=debug_wanted(args))


def module_main(main: Callable[[list[str]], int], prog: str, *, runs_tests: bool = False) -> int:
    """``python -m floe_test.X``: run ``main(argv)`` under the contract; ``--debug`` anywhere shows tracebacks.

    Commands that run no tests never exit 1: their failures are "anything else" (2).
    """
    argv = sys.argv[1:]
    debug = "--debug" in argv or debug_wanted()
    code = guarded(lambda: main([a for a in argv if a != "--debug"]), prog=prog, debug=debug)
    return EXIT_OTHER if code == EXIT_TESTS_FAILED and not runs_tests else code
