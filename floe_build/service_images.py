"""Service images of the air-gapped integration profile, built from Debian packages and PyPI.

``python -m floe_build.service_images`` (``make airgapped-images``) builds, in order:

* ``python-base-airgapped``: Debian bookworm's python3.11 with a venv rooted at ``/usr/local`` (the
  stand-in for ``python:3.11-slim``, the BASE_IMAGE of testing/Dockerfile);
* ``postgres-airgapped``: Debian's PostgreSQL with an entry point to the upstream image's contract;
* ``dagster-airgapped``: Dagster at the release of versions.yaml ``images.dagster`` from PyPI;
* ``busybox-airgapped``: Debian's static busybox (the stack's helper image for probes and the results reader).

With ``--e2e`` (``make airgapped-images E2E=1``) it then builds the E2E services' images
(:mod:`floe_build.e2e_images`): Go programs built on the host through the module proxy, Debian's
Redis, and the stand-ins where no build route exists. Files made outside ``docker build`` (binaries, a jar)
are :mod:`floe_build.artifacts`; their keys are part of the image's content hash, so a cached image
needs none of them.

The recipes are ``floe_build/images/airgapped/<name>/``. The rootfs is the other air-gapped builds' debootstrap
helper (:class:`floe_build.rootfs.Rootfs`) with a minimal package list; each image installs its
own packages with apt (the Debian mirror) or pip (PyPI). Every image is tagged with a hash of its
inputs (recipe files, build args, base image, the host's extra CA certificates) and, when that tag
exists, is not rebuilt; it is then also tagged with the fixed tag versions.yaml pins, which is the one
the profile deploys and the preload finds in the local Docker store (so nothing is ever pulled).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from floe_build._run import AirgapError, cache_root, log, run_logged
from floe_build.artifacts import Artifact
from floe_build.recipes import IMAGES_DIR
from floe_build.rootfs import Rootfs
from floe_model.paths import REPO_ROOT
from floe_model.versions import Versions, load_versions

RECIPES_DIR = IMAGES_DIR / "airgapped"
RECIPE_VERSION = 1
#: debootstrap --variant=minbase plus what every image needs; the rest comes per image from apt.
ROOTFS_PACKAGES = ("ca-certificates", "netbase")
#: CA certificates the host added to its trust store (a TLS-inspecting proxy in front of PyPI here).
HOST_EXTRA_CA_DIR = Path("/usr/local/share/ca-certificates")

#: Build order: a recipe's ``base`` is built before it.
IMAGE_KEYS = ("python-base-airgapped", "postgres-airgapped", "dagster-airgapped", "busybox-airgapped")


def dagster_library_version(dagster_version: str) -> str:
    """Dagster's integration libraries are versioned 0.(minor+16).patch alongside dagster 1.minor.patch."""
    major, minor, patch = (int(p) for p in dagster_version.split(".")[:3])
    if major != 1:
        raise AirgapError(f"dagster {dagster_version}: library versioning is known for 1.x only")
    return f"0.{minor + 16}.{patch}"


@dataclass(frozen=True)
class Recipe:
    key: str
    """versions.yaml image key."""
    recipe: str
    """Directory under floe_build/images/airgapped/."""
    base: str | None = None
    """Key of the image this one is built FROM (build arg BASE); ``None``: the rootfs (build arg ROOTFS)."""
    build_args: Mapping[str, str] = field(default_factory=dict)
    extra_ca: bool = False
    files: Mapping[str, Artifact] = field(default_factory=dict)
    """Build-context path -> a file made outside docker build (see floe_build.artifacts)."""


def recipes(versions: Versions) -> list[Recipe]:
    dagster = versions.images["dagster"].tag
    return [
        Recipe("python-base-airgapped", "python-base", extra_ca=True),
        Recipe("postgres-airgapped", "postgres", build_args={"PG_MAJOR": "15"}),
        Recipe(
            "dagster-airgapped",
            "dagster",
            base="python-base-airgapped",
            build_args={"DAGSTER_VERSION": dagster, "DAGSTER_LIB_VERSION": dagster_library_version(dagster)},
        ),
        Recipe("busybox-airgapped", "busybox"),
    ]


def all_recipes(versions: Versions, *, e2e: bool) -> list[Recipe]:
    """The integration images, then (``e2e``) the E2E services' images."""
    if not e2e:
        return recipes(versions)
    from floe_build.e2e_images import e2e_recipes  # imports Recipe from here

    return [*recipes(versions), *e2e_recipes(versions)]


def extra_ca_files(directory: Path = HOST_EXTRA_CA_DIR) -> dict[str, bytes]:
    if not directory.is_dir():
        return {}
    return {p.name: p.read_bytes() for p in sorted(directory.glob("*.crt")) if p.is_file()}


def content_hash(recipe_dir: Path, inputs: Mapping[str, object], extra: Mapping[str, bytes]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"recipe": RECIPE_VERSION, **inputs}, sort_keys=True).encode())
    for path in sorted(p for p in recipe_dir.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(recipe_dir)).encode())
        digest.update(path.read_bytes())
        digest.update(b"x" if path.stat().st_mode & 0o111 else b"-")
    for name, data in sorted(extra.items()):
        digest.update(f"extra-ca/{name}".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


def image_exists(ref: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", ref], capture_output=True, check=False).returncode == 0


@dataclass
class ServiceImages:
    versions: Versions = field(default_factory=load_versions)
    cache: Path = field(default_factory=lambda: cache_root() / "service-images")
    rootfs: Rootfs = field(default_factory=lambda: Rootfs(packages=ROOTFS_PACKAGES))

    def build(self, only: Sequence[str] | None = None, *, e2e: bool = False) -> dict[str, str]:
        """Build (or find) each image; returns {key: the fixed ref from versions.yaml}.

        The integration images always come first (everyone's runs need them); ``e2e`` adds the E2E
        services' images after them. ``only`` picks images of either set (and their bases).
        """
        plan = self._plan(only, e2e=e2e)
        wanted = set(only or (r.key for r in plan))
        rootfs = self.rootfs.ensure()
        content_refs: dict[str, str] = {}
        result: dict[str, str] = {}
        for recipe in plan:
            content_refs[recipe.key] = self._one(recipe, rootfs, content_refs)
            if recipe.key in wanted:
                result[recipe.key] = self.versions.images[recipe.key].ref
        return result

    def missing(self, only: Sequence[str] | None = None, *, e2e: bool = False) -> list[str]:
        """Keys whose image (at its current content hash) is not in Docker; builds and fetches nothing."""
        found: list[str] = []
        content_refs: dict[str, str] = {}
        for recipe in self._plan(only, e2e=e2e):
            content_refs[recipe.key], _args, _tag = self._content_ref(recipe, self.rootfs.image, content_refs)
            if not image_exists(content_refs[recipe.key]) and recipe.key in set(only or (recipe.key,)):
                found.append(recipe.key)
        return found

    def _plan(self, only: Sequence[str] | None, *, e2e: bool) -> list[Recipe]:
        """The recipes to build, in order: those asked for and their bases."""
        plan = all_recipes(self.versions, e2e=e2e or bool(set(only or ()) - set(IMAGE_KEYS)))
        needed = set(only or (r.key for r in plan))
        for recipe in reversed(plan):
            if recipe.key in needed and recipe.base:
                needed.add(recipe.base)
        return [r for r in plan if r.key in needed]

    def _content_ref(self, recipe: Recipe, rootfs: str, built: Mapping[str, str]) -> tuple[str, dict[str, str], str]:
        """The image's content-addressed ref, its build args and its content tag."""
        args = dict(recipe.build_args)
        if recipe.base:
            args["BASE"] = built[recipe.base]
        else:
            args["ROOTFS"] = rootfs
        extra = extra_ca_files() if recipe.extra_ca else {}
        inputs: dict[str, object] = {"args": args, "key": recipe.key}
        if recipe.files:  # only when present: the integration images keep their tags
            inputs["files"] = {dest: artifact.key for dest, artifact in sorted(recipe.files.items())}
        tag = content_hash(RECIPES_DIR / recipe.recipe, inputs, extra)
        return f"{self.versions.images[recipe.key].repository}:{tag}", args, tag

    def _one(self, recipe: Recipe, rootfs: str, built: Mapping[str, str]) -> str:
        pin = self.versions.images[recipe.key]
        recipe_dir = RECIPES_DIR / recipe.recipe
        content_ref, args, tag = self._content_ref(recipe, rootfs, built)
        extra = extra_ca_files() if recipe.extra_ca else {}
        fixed_ref = pin.ref
        logfile = self.cache / f"{recipe.key}.log"
        if image_exists(content_ref):
            log(f"{recipe.key}: cached {content_ref}")
        else:
            log(f"{recipe.key}: building {content_ref} from {recipe_dir.relative_to(REPO_ROOT)}; log: {logfile}")
            with tempfile.TemporaryDirectory(prefix=f"floe-{recipe.recipe}-") as tmp:
                context = Path(tmp) / "context"
                shutil.copytree(recipe_dir, context)
                if recipe.extra_ca:
                    (context / "extra-ca").mkdir(exist_ok=True)
                    for name, data in extra.items():
                        (context / "extra-ca" / name).write_bytes(data)
                for dest, artifact in sorted(recipe.files.items()):
                    target = context / dest
                    target.parent.mkdir(parents=True, exist_ok=True)
                    _link_or_copy(artifact.produce(), target)
                seconds = run_logged(
                    [
                        "docker",
                        "build",
                        "--label",
                        f"org.floe-testinfra.content={tag}",
                        *(f"--build-arg={k}={v}" for k, v in sorted(args.items())),
                        "-t",
                        content_ref,
                        str(context),
                    ],
                    logfile=logfile,
                    what=f"docker build {content_ref}",
                    timeout=2700,
                    nice=True,
                    env={"DOCKER_BUILDKIT": "0", **_env()},
                )
            log(f"{recipe.key}: built in {seconds:.0f}s")
        if fixed_ref != content_ref:
            run_logged(["docker", "tag", content_ref, fixed_ref], logfile=logfile, what=f"docker tag {fixed_ref}")
            log(f"{recipe.key}: {fixed_ref} -> {content_ref}")
        return content_ref


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard link when the cache and the build context share a file system (binaries are large), else copy."""
    try:
        target.hardlink_to(source)
    except OSError:
        shutil.copy2(source, target)


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m floe_build.service_images", description=__doc__)
    from floe_build.e2e_images import E2E_IMAGE_KEYS

    parser.add_argument(
        "--only", choices=(*IMAGE_KEYS, *E2E_IMAGE_KEYS), action="append", help="build this image (and its base) only"
    )
    parser.add_argument(
        "--e2e", action="store_true", help="also build the E2E services' images (Go builds: tens of minutes cold)"
    )
    args = parser.parse_args(argv)
    try:
        refs = ServiceImages().build(args.only, e2e=args.e2e)
    except AirgapError as exc:
        log(f"FAILED: {exc}")
        return 1
    for key, ref in refs.items():
        size = subprocess.run(
            ["docker", "image", "inspect", "-f", "{{.Size}}", ref], capture_output=True, text=True, check=False
        ).stdout.strip()
        print(f"{key}\t{ref}\t{int(size) // 2**20 if size.isdigit() else '?'} MiB")
    return 0


if __name__ == "__main__":
    from floe_test._private.entry import module_main

    sys.exit(module_main(main, "python -m floe_build.service_images"))
