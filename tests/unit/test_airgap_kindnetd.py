"""Our kindnetd stand-in's NetworkPolicy rule rendering (floe_build/images/kindnetd/netpol_test.go), run by `go test`.

Standard library only, so it builds offline in seconds; skipped with a reason where Go is not installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from floe_build.recipes import IMAGES_DIR

GO = shutil.which("go")


@pytest.mark.skipif(GO is None, reason="Go is not installed (needed only for the node-image recipes)")
def test_kindnetd_network_policy_rules_pass_go_test(tmp_path: Path) -> None:
    work = tmp_path / "kindnetd"
    shutil.copytree(IMAGES_DIR / "kindnetd", work)
    env = {**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off", "CGO_ENABLED": "0"}
    proc = subprocess.run([GO or "go", "test", "./..."], cwd=work, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
