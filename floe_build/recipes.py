"""Where the builder's recipes are: ``floe_build/images/`` (Dockerfiles and files of every image built
offline) and ``floe_build/tools/gobuild/`` (Go build recipes of the pinned tools). Both ship with the
builder, never with the runner image."""

from __future__ import annotations

from pathlib import Path

BUILD_ROOT = Path(__file__).resolve().parent
IMAGES_DIR = BUILD_ROOT / "images"
GOBUILD_DIR = BUILD_ROOT / "tools" / "gobuild"
