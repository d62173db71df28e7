"""Every command the docs show is real: make targets exist, floe-test subcommands and options exist."""

from __future__ import annotations

import re
import shlex

import pytest

from floe_model.paths import REPO_ROOT
from floe_test.cli import build_parser

DOCS = [REPO_ROOT / "README.md", REPO_ROOT / "TESTING.md", *sorted((REPO_ROOT / "docs").rglob("*.md"))]
MAKE = re.compile(r"(?<![\w-])make ([a-z][a-z0-9-]*)")
FLOE = re.compile(r"floe-test ([^`\n|)\"]*)")


def make_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-zA-Z0-9_-]+):", text, re.M))


def subcommand_options() -> dict[str, set[str]]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")  # argparse keeps subparsers here
    return {name: {opt for action in p._actions for opt in action.option_strings}
            for name, p in sub.choices.items()}  # type: ignore[union-attr]


def commands(pattern: re.Pattern[str]) -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for match in pattern.finditer(doc.read_text()):
            found.append((doc.relative_to(REPO_ROOT).as_posix(), match.group(1).strip()))
    return found


def test_the_docs_exist():
    for name in ("README.md", "TESTING.md", "docs/guides/local-testing.md", "docs/guides/test-debugging.md"):
        assert (REPO_ROOT / name).is_file(), name


@pytest.mark.parametrize(("doc", "target"), commands(MAKE), ids=lambda v: v)
def test_make_targets_in_the_docs_exist(doc, target):
    assert target in make_targets(), f"{doc} shows `make {target}`, which the Makefile does not have"


@pytest.mark.parametrize(("doc", "command"), commands(FLOE), ids=lambda v: v)
def test_floe_test_commands_in_the_docs_exist(doc, command):
    words = shlex.split(command.replace("\\", " "), comments=False, posix=True) if command else []
    assert words, f"{doc}: bare `floe-test`"
    options = subcommand_options()
    assert words[0] in options, f"{doc}: `floe-test {words[0]}` is not a subcommand ({', '.join(options)})"
    for word in words[1:]:
        option = word.split("=", 1)[0]
        if option.startswith("--"):
            assert option in options[words[0]], f"{doc}: `floe-test {words[0]}` has no option {option}"


def test_every_make_target_is_documented_for_people():
    guide = "\n".join(doc.read_text() for doc in DOCS)
    public = {t for t in make_targets() if t not in {"help"} and not t.startswith(".")}
    undocumented = sorted(t for t in public if f"make {t}" not in guide and not t.startswith("$"))
    assert undocumented == []
