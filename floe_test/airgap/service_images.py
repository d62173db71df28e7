"""Service images of the air-gapped integration profile, built from Debian packages and PyPI.

``python -m floe_test.airgap.service_images`` (``make airgapped-images``) builds, in order:

* ``python-base-airgapped``: Debian bookworm's python3.11 with a venv rooted at ``/usr/local`` (the
  stand-in for ``python:3.11-slim``, the BASE_IMAGE of testing/Dockerfile);
* ``postgres-airgapped``: Debian's PostgreSQL with an entry point to the upstream image's contract;
* ``dagster-airgapped``: Dagster at the release of versions.yaml ``images.dagster`` from PyPI;
* ``busybox-airgapped``: Debian's static busybox (the stack's helper image for probes and the results reader).

The recipes are ``images/airgapped/<name>/``. The rootfs is the other air-gapped builds' debootstrap
helper (:class:`floe_test.airgap.rootfs.Rootfs`) with a minimal package list; each image installs its
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

from floe_test.airgap._run import AirgapError, cache_root, log, run_logged
from floe_test.airgap.rootfs import Rootfs
from floe_test.paths import REPO_ROOT
from floe_test.versions import Versions, load_versions

RECIPES_DIR = REPO_ROOT / "images" / "airgapped"
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
    """Directory under images/airgapped/."""
    base: str | None = None
    """Key of the image this one is built FROM (build arg BASE); ``None``: the rootfs (build arg ROOTFS)."""
    build_args: Mapping[str, str] = field(default_factory=dict)
    extra_ca: bool = False


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

    def build(self, only: Sequence[str] | None = None) -> dict[str, str]:
        """Build (or find) each image; returns {key: the fixed ref from versions.yaml}."""
        wanted = set(only or IMAGE_KEYS)
        plan = recipes(self.versions)
        needed = set(wanted)
        for recipe in reversed(plan):
            if recipe.key in needed and recipe.base:
                needed.add(recipe.base)
        rootfs = self.rootfs.ensure()
        content_refs: dict[str, str] = {}
        result: dict[str, str] = {}
        for recipe in plan:
            if recipe.key not in needed:
                continue
            content_refs[recipe.key] = self._one(recipe, rootfs, content_refs)
            if recipe.key in wanted:
                result[recipe.key] = self.versions.images[recipe.key].ref
        return result

    def _one(self, recipe: Recipe, rootfs: str, built: Mapping[str, str]) -> str:
        pin = self.versions.images[recipe.key]
        recipe_dir = RECIPES_DIR / recipe.recipe
        args = dict(recipe.build_args)
        if recipe.base:
            args["BASE"] = built[recipe.base]
        else:
            args["ROOTFS"] = rootfs
        extra = extra_ca_files() if recipe.extra_ca else {}
        tag = content_hash(recipe_dir, {"args": args, "key": recipe.key}, extra)
        content_ref = f"{pin.repository}:{tag}"
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


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m floe_test.airgap.service_images", description=__doc__)
    parser.add_argument("--only", choices=IMAGE_KEYS, action="append", help="build this image (and its base) only")
    args = parser.parse_args(argv)
    try:
        refs = ServiceImages().build(args.only)
    except AirgapError as exc:
        log(f"FAILED: {exc}")
        return 1
    for key, ref in refs.items():
        print(f"{key}\t{ref}")
    return 0


if __name__ == "__main__":
    from floe_test._private.entry import module_main

    sys.exit(module_main(main, "python -m floe_test.airgap.service_images"))
