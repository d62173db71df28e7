"""The test-runner image tag, derived from what goes into the image (lockfile, sources, Dockerfile).

Same content, same tag: a rebuild is skipped and the preload sees the image already on the nodes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from floe_model.paths import REPO_ROOT
from floe_model.versions import Versions

#: Tags derived from content start with this (``c-<12 hex>``); older ones may be pruned.
CONTENT_TAG_PREFIX = "c-"
#: What the image is built from; a change to any of these makes a new tag.
IMAGE_INPUTS = (
    "uv.lock",
    "pyproject.toml",
    "README.md",
    "versions.yaml",
    "testing",
    "floe_test",
    "components",
    "floe_model",
    "floe_build",
    "tests",
)


def content_tag(root: Path = REPO_ROOT) -> str:
    digest = hashlib.sha256()
    for name in IMAGE_INPUTS:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return CONTENT_TAG_PREFIX + digest.hexdigest()[:12]


def runner_image_ref(versions: Versions, key: str = "test-runner", root: Path = REPO_ROOT) -> str:
    """Reference of the test-runner image ``key`` (a ``content`` tag is derived from the sources)."""
    pin = versions.images[key]
    tag = content_tag(root) if pin.tag == "content" else pin.tag
    return f"{pin.repository}:{tag}"
