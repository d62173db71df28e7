"""REQ-638 live: the test-runner image builds, runs pytest, holds the required packages, runs as non-root,
and rebuilds with no network after a source change.

Builds ``testing/Dockerfile`` with the local Docker engine on the pinned base image, or on the
air-gapped stand-in (``make airgapped-images``) where the pinned one cannot be pulled. Skips with a
reason naming what is missing: Docker, a base image in the local store (no pull is attempted), or
PyPI for the dependency layer when it is not cached yet.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from floe_model.image_tag import IMAGE_INPUTS, runner_image_ref
from floe_model.paths import REPO_ROOT
from floe_model.proc import docker_running
from floe_model.versions import load_versions

REQUIRED = ("pytest", "pytest-asyncio", "pytest-timeout", "pytest-rerunfailures", "pytest-cov", "kubernetes",
            "psycopg", "floe-testinfra")
BUILD_TIMEOUT = 1800
#: What uv and pip print when the package index cannot be reached.
NO_INDEX = ("Failed to fetch", "dns error", "Network is unreachable", "Temporary failure in name resolution",
            "Could not find a version")


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def base() -> str:
    reason = docker_running()
    if reason:
        pytest.skip(f"Docker: {reason.splitlines()[0]}")
    images = load_versions().images
    candidates = [images[k].ref for k in ("python-base", "python-base-airgapped") if k in images]
    for ref in candidates:
        if docker("image", "inspect", ref).returncode == 0:
            return ref
    pytest.skip(f"Docker: none of the base images {', '.join(candidates)} is in the local store "
                "(docker pull the first, or make airgapped-images)")


def build(base: str, context: Path, tag: str, *, network: str = "default") -> subprocess.CompletedProcess[str]:
    return docker("build", f"--network={network}", "-f", str(context / "testing" / "Dockerfile"),
                  "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(context), timeout=BUILD_TIMEOUT)


@pytest.fixture(scope="module")
def image(base: str) -> str:
    # Exactly the image a stack run would build and preload (same tag), so this adds no image of its own.
    versions = load_versions()
    key = "test-runner-airgapped" if base == versions.images["python-base-airgapped"].ref else "test-runner"
    ref = runner_image_ref(versions, key)
    proc = build(base, REPO_ROOT, ref)
    if proc.returncode != 0 and any(marker in proc.stdout + proc.stderr for marker in NO_INDEX):
        pytest.skip("PyPI: the image's dependency layer is not cached and the package index is unreachable")
    assert proc.returncode == 0, f"docker build of {ref} failed:\n{proc.stderr[-3000:]}"
    return ref


def run_in(image: str, *cmd: str, entrypoint: str = "") -> subprocess.CompletedProcess[str]:
    args = ["run", "--rm", "--network=none", "--read-only", "--tmpfs", "/tmp"]  # noqa: S108 - the container's own tmpfs
    if entrypoint:
        args += ["--entrypoint", entrypoint]
    return docker(*args, image, *cmd)


def test_pytest_runs_in_the_image(image):
    proc = run_in(image, "--version")
    assert proc.returncode == 0, proc.stderr
    assert "pytest" in (proc.stdout + proc.stderr)


def test_import_smoke_of_the_testing_library(image):
    code = "import testing, testing.perf, testing.plugin, kubernetes, pytest_asyncio, pytest_timeout; print('ok')"
    proc = run_in(image, "-c", code, entrypoint="/app/.venv/bin/python")
    assert proc.stdout.strip() == "ok", proc.stderr


def test_required_packages_and_uv_are_present(image):
    code = ("import importlib.metadata as m, json; "
            f"print(json.dumps({{n: m.version(n) for n in {list(REQUIRED)!r}}}))")
    proc = run_in(image, "-c", code, entrypoint="/app/.venv/bin/python")
    assert proc.returncode == 0, proc.stderr
    assert set(json.loads(proc.stdout)) == set(REQUIRED)
    assert run_in(image, "--version", entrypoint="uv").returncode == 0


def test_runs_as_the_non_root_runner_without_build_tools(image):
    assert run_in(image, "-u", entrypoint="id").stdout.strip() == "10001"
    assert run_in(image, "-c", "command -v gcc || command -v cc || echo none", entrypoint="sh").stdout.strip() == "none"


def test_image_size_is_reported(image, record_property):
    size = int(docker("image", "inspect", "-f", "{{.Size}}", image).stdout.strip())
    record_property("image_size_mib", round(size / 2**20, 1))
    print(f"test-runner image {image}: {size / 2**20:.1f} MiB")
    assert size > 0


def test_a_source_change_rebuilds_with_no_network(image: str, base: str, tmp_path: Path) -> None:
    # CI runs air-gapped: a commit that changes only sources must not need PyPI to rebuild the image.
    context = tmp_path / "context"
    for name in (*IMAGE_INPUTS, "testing"):
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, context / name, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy2(source, context / name)
    marker = "offline-rebuild-check"
    with (context / "testing" / "__init__.py").open("a") as f:
        f.write(f"\nREBUILD_MARKER = {marker!r}\n")
    tag = "floe-testinfra/test-runner-it:offline-rebuild"
    try:
        proc = build(base, context, tag, network="none")
        assert proc.returncode == 0, f"offline rebuild failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
        check = run_in(tag, "-c", "import testing; print(testing.REBUILD_MARKER)", entrypoint="/app/.venv/bin/python")
        assert check.stdout.strip() == marker, check.stderr
    finally:
        docker("image", "rm", "-f", tag)
