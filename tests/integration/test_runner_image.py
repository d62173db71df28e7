"""REQ-638 live: the test-runner image builds, runs pytest, holds the required packages, runs as non-root.

Builds ``testing/Dockerfile`` with the local Docker engine. Skips with a reason naming Docker when no
engine answers or when the pinned base image is not in the local image store (no pull is attempted:
pull or load it first, e.g. ``docker pull <base>``, or use the air-gapped image set).
"""

from __future__ import annotations

import json
import subprocess

import pytest

from floe_test._private.proc import docker_running
from floe_test.image_tag import content_tag
from floe_test.paths import REPO_ROOT
from floe_test.versions import load_versions

REQUIRED = ("pytest", "pytest-asyncio", "pytest-timeout", "pytest-rerunfailures", "pytest-cov", "kubernetes",
            "floe-testinfra")
BUILD_TIMEOUT = 1800


def docker(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def image() -> str:
    reason = docker_running()
    if reason:
        pytest.skip(f"Docker: {reason.splitlines()[0]}")
    base = load_versions().images["python-base"].ref
    if docker("image", "inspect", base).returncode != 0:
        pytest.skip(f"Docker: base image {base} is not in the local image store (docker pull it, or load it)")
    ref = f"floe-testinfra/test-runner-it:{content_tag()}"
    build = docker("build", "-f", str(REPO_ROOT / "testing" / "Dockerfile"), "--build-arg", f"BASE_IMAGE={base}",
                   "-t", ref, str(REPO_ROOT), timeout=BUILD_TIMEOUT)
    assert build.returncode == 0, f"docker build of {ref} failed:\n{build.stderr[-3000:]}"
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
