"""Where the project's files are: the repository root and the folders the program reads."""

from __future__ import annotations

import os
from pathlib import Path

#: The repository root (overridable for an installed copy: FLOE_TESTINFRA_ROOT).
REPO_ROOT = Path(os.environ.get("FLOE_TESTINFRA_ROOT", Path(__file__).resolve().parents[1]))
VERSIONS_FILE = REPO_ROOT / "versions.yaml"
K8S_DIR = REPO_ROOT / "testing" / "k8s"
CHARTS_DIR = REPO_ROOT / "charts"
#: The local Pulumi file backend and other run state: ignored by git, never needs an account.
STATE_DIR = REPO_ROOT / ".state"


def display(path: Path) -> str:
    """A path as people should read it in messages: relative to the repository when inside it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


BIN_DIR = REPO_ROOT / "bin"
#: The uv `make setup` installs when none is on PATH (Pulumi's uv toolchain looks for `uv` on PATH).
PRIVATE_UV_DIR = REPO_ROOT / ".tools" / "uv" / "bin"


def tool_search_path() -> str:
    """PATH with the project's own ``bin/`` (filled by ``make tools``) first."""
    return os.pathsep.join([str(BIN_DIR), os.environ.get("PATH", "")])
