"""Tests never sleep: waiting goes through wait_for_condition with an injectable clock, or events."""

from __future__ import annotations

import re
from pathlib import Path

TESTS_DIR = Path(__file__).resolve().parents[2]
# Spelled in pieces so this file does not match itself.
BANNED = [re.escape("time." + "sleep("), r"from\s+time\s+import\s+[^\n]*\b" + "sleep" + r"\b"]


def test_no_file_under_tests_calls_time_sleep() -> None:
    offenders = []
    for path in sorted(TESTS_DIR.rglob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for pattern in BANNED:
            for match in re.finditer(pattern, text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(TESTS_DIR.parent)}:{line}")
    assert not offenders, "time.sleep is banned under tests/ (use wait_for_condition): " + ", ".join(offenders)


def test_the_scan_covers_this_directory() -> None:
    assert Path(__file__).resolve().is_relative_to(TESTS_DIR)
