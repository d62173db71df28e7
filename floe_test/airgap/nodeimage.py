"""The Kind node image, assembled the way ``kind build node-image`` does, from parts built here.

Steps (each cached by content hash under ``<cache>/node-image/``): Kubernetes binaries from Go modules.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from floe_test.airgap._run import AirgapError, log
from floe_test.airgap.kubernetes import KubernetesBuild, KubeVersion
from floe_test.versions import load_versions


def main(only: Sequence[str] | None = None) -> int:
    version = KubeVersion(load_versions().get("kubernetes.version"))
    started = time.monotonic()
    try:
        if not only or "binaries" in only:
            KubernetesBuild(version).ensure()
    except AirgapError as exc:
        log(f"FAILED: {exc}")
        return 1
    log(f"node-image steps done in {time.monotonic() - started:.0f}s")
    return 0
