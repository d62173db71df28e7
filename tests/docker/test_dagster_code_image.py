"""Live (Docker): the Dagster code location image (images/dagster-code) runs its job as a run pod would.

Builds exactly the image a stack would preload (same content tag, so nothing extra is kept), on the pinned
Python base or on the air-gapped stand-in, whichever the local Docker store has; then executes the job in
it with no network: DuckDB computes, pyiceberg writes and reads the local Iceberg table, Dagster reports
SUCCESS. Skips with a reason naming what is missing: Docker, a base image, or PyPI for a first build.
"""

from __future__ import annotations

import subprocess

import pytest

from floe_model.local_images import RECIPES, with_content_tags
from floe_model.proc import docker_running
from floe_model.versions import load_versions

BUILD_TIMEOUT = 1800
NO_INDEX = ("Failed to establish a new connection", "Temporary failure in name resolution", "No matching distribution")


def docker(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def image() -> str:
    reason = docker_running()
    if reason:
        pytest.skip(f"Docker: {reason.splitlines()[0]}")
    versions = with_content_tags(load_versions())
    for key in ("dagster-code", "dagster-code-airgapped"):
        recipe = RECIPES[key]
        base = versions.images[recipe.base].ref
        if docker("image", "inspect", base).returncode != 0:
            continue
        ref = versions.images[key].ref
        if docker("image", "inspect", ref).returncode == 0:
            return ref
        proc = docker(
            "build", "--build-arg", f"BASE_IMAGE={base}", "-t", ref, str(recipe.directory), timeout=BUILD_TIMEOUT
        )
        if proc.returncode != 0 and any(marker in proc.stdout + proc.stderr for marker in NO_INDEX):
            pytest.skip("PyPI: the code location's dependencies are not cached and the package index is unreachable")
        assert proc.returncode == 0, f"docker build of {ref} failed:\n{proc.stderr[-3000:]}"
        return ref
    pytest.skip("Docker: neither python-base nor python-base-airgapped is in the local store (make airgapped-images)")


@pytest.mark.timeout(600)
def test_the_job_runs_in_the_image_and_writes_its_iceberg_table(image: str) -> None:
    script = (
        "export DAGSTER_HOME=$(mktemp -d) && "
        "dagster job execute -m floe_demo.definitions -j floe_demo_job 2>&1 && "
        "find /tmp/floe-warehouse -name '*.metadata.json' | head -1"
    )
    proc = docker("run", "--rm", "--network=none", image, "sh", "-c", script, timeout=540)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "RUN_SUCCESS" in output, output[-4000:]
    assert "/demo/order_totals/metadata/00001-" in output.strip().splitlines()[-1], output[-4000:]


def test_the_image_holds_the_charts_dagster_release(image: str) -> None:
    release = load_versions().charts["dagster"].version
    proc = docker("run", "--rm", "--network=none", image, "dagster", "--version")
    assert proc.returncode == 0, proc.stderr
    assert f"version {release}" in proc.stdout
