"""A copy of pytest's terminal output in a file (``--floe-log-file``).

In the test Job the file lives on the results volume: when Kubernetes deletes the pod (the Job's
deadline) its log goes with it, but this copy is collected with the JUnit XML. pytest has no option
for it; this uses the same hook point as pytest's own ``--pastebin``: the terminal writer's
``write``, so every line pytest prints (headers, progress, tracebacks, summary) is copied as is.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import pytest

__all__ = ["start", "stop"]

_FILE_KEY = pytest.StashKey[IO[str]]()


def start(config: pytest.Config, path: str) -> None:
    """Copy the terminal output to ``path`` from now on (its folder is created)."""
    reporter = config.pluginmanager.getplugin("terminalreporter")
    if reporter is None:  # -p no:terminal: nothing is printed, nothing to copy
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Line-buffered: what was printed is on disk even if the process is killed right after.
    log = target.open("w", encoding="utf-8", buffering=1)
    config.stash[_FILE_KEY] = log
    original = reporter._tw.write

    def tee(text: str, **markup: Any) -> None:
        original(text, **markup)
        log.write(text)

    reporter._tw.write = tee


def stop(config: pytest.Config) -> None:
    log = config.stash.get(_FILE_KEY, None)
    if log is not None:
        log.close()
