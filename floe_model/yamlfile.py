"""Reading YAML input files with errors that name the file (and line) instead of a traceback.

A key given twice in one mapping is an error (PyYAML would silently keep the last one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from floe_model.paths import display
from testing._private import strict_yaml
from testing.errors import ConfigError, ConfigProblem


def load_mapping(path: Path) -> dict[str, Any]:
    """Load one YAML document that must be a mapping; any problem is a ConfigError naming the file."""
    name = display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(name, "-", "file not found")]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(name, "-", f"cannot be read: {exc.strerror}")]) from None
    try:
        data = strict_yaml.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "-"
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([ConfigProblem(name, where, f"not valid YAML: {problem}")]) from None
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise ConfigError([ConfigProblem(name, "-", f"must be a YAML mapping, found {kind}")])
    return data
