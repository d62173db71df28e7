"""Service images the project builds itself (besides the test runner): recipe, base and content tag.

An image key of versions.yaml whose tag is ``content`` and which is listed in :data:`RECIPES` is built by
the preload when the local Docker store lacks it (never pulled), from its Dockerfile with the build arg
``BASE_IMAGE`` = the base image's reference. Its tag is derived from the recipe's files and the base,
so the same content keeps its tag and a change makes a new one (``c-<12 hex>``, like the test runner).
:func:`with_content_tags` puts those tags into the pins, so placeholders, the plan's image list and the
preload all name the same reference.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

from floe_model.image_tag import CONTENT_TAG_PREFIX
from floe_model.paths import REPO_ROOT
from floe_model.versions import Versions

IMAGES_DIR = REPO_ROOT / "images"


@dataclass(frozen=True)
class Recipe:
    """How one image key is built."""

    directory: Path
    """The build context; every file in it is an input of the content tag."""
    base: str
    """versions.yaml key of the image passed as ``BASE_IMAGE``."""

    @property
    def dockerfile(self) -> Path:
        return self.directory / "Dockerfile"


#: The Dagster code location (images/dagster-code): on python:3.11-slim online, on the Python base built
#: here (make airgapped-images) offline.
RECIPES: dict[str, Recipe] = {
    "dagster-code": Recipe(IMAGES_DIR / "dagster-code", base="python-base"),
    "dagster-code-airgapped": Recipe(IMAGES_DIR / "dagster-code", base="python-base-airgapped"),
}


@dataclass(frozen=True)
class LocalBuild:
    """One image to build when missing: what the preload gets."""

    ref: str
    dockerfile: Path
    context: Path
    build_args: tuple[tuple[str, str], ...]


def content_tag(recipe: Recipe, base_ref: str) -> str:
    digest = hashlib.sha256(f"BASE_IMAGE={base_ref}\n".encode())
    for path in sorted(p for p in recipe.directory.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        digest.update(str(path.relative_to(recipe.directory)).encode())
        digest.update(path.read_bytes())
    return CONTENT_TAG_PREFIX + digest.hexdigest()[:12]


def with_content_tags(versions: Versions) -> Versions:
    """``versions`` with every built key's ``content`` tag replaced by the tag of its current content."""
    images = dict(versions.images)
    for key, recipe in RECIPES.items():
        pin = images.get(key)
        if pin is None or pin.tag != "content":
            continue
        images[key] = dataclasses.replace(pin, tag=content_tag(recipe, versions.images[recipe.base].ref))
    return dataclasses.replace(versions, images=images)


def builds_for(versions: Versions, keys: tuple[str, ...]) -> tuple[LocalBuild, ...]:
    """The local builds among ``keys`` (the stack's images), for ``versions`` from :func:`with_content_tags`."""
    return tuple(
        LocalBuild(
            ref=versions.images[key].ref,
            dockerfile=RECIPES[key].dockerfile,
            context=RECIPES[key].directory,
            build_args=(("BASE_IMAGE", versions.images[RECIPES[key].base].ref),),
        )
        for key in keys
        if key in RECIPES
    )
