"""The GitHub Actions workflows: valid (actionlint), pinned, bounded, and fed from versions.yaml."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_model.paths import BIN_DIR, REPO_ROOT

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
PINNED_USE = re.compile(r"^\s*(?:-\s*)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+\.\d+\.\d+\s*$")


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def steps(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def test_there_is_a_workflow():
    assert WORKFLOWS


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_actionlint_accepts_the_workflow(path):
    from floe_build.toolchain import Toolchain

    cached = Toolchain().status("actionlint", probe=False).path
    actionlint = str(cached) if cached else shutil.which("actionlint", path=f"{BIN_DIR}:{os.environ.get('PATH', '')}")
    if actionlint is None:
        pytest.skip("actionlint not installed: run `python -m floe_build.toolchain install --tool actionlint`")
    result = subprocess.run([actionlint, str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_action_is_pinned_by_commit_with_its_version(path):
    uses = [line for line in path.read_text().splitlines() if re.match(r"^\s*(-\s*)?uses:", line)]
    assert uses
    unpinned = [line.strip() for line in uses if not PINNED_USE.match(line)]
    assert unpinned == []


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_jobs_are_bounded_cancellable_and_least_privileged(path):
    workflow = load(path)
    assert workflow["permissions"] == {"contents": "read"}
    assert workflow["concurrency"]["cancel-in-progress"] is True
    for name, job in workflow["jobs"].items():
        assert "timeout-minutes" in job, f"job {name} has no timeout"
        assert set(job.get("permissions", {})) <= {"contents", "checks"}
        if "strategy" in job:
            assert job["strategy"]["fail-fast"] is False


def test_unit_then_integration_and_e2e_in_parallel():
    workflow = load(REPO_ROOT / ".github" / "workflows" / "tests.yml")
    assert set(workflow["on"]) == {"push", "pull_request"}
    cluster = workflow["jobs"]["cluster"]
    assert cluster["needs"] == "unit"
    assert [m["stack"] for m in cluster["strategy"]["matrix"]["include"]] == ["integration", "e2e"]
    assert any("make test" in step.get("run", "") for step in workflow["jobs"]["unit"]["steps"])


def test_results_are_uploaded_always_for_90_days():
    workflow = load(REPO_ROOT / ".github" / "workflows" / "tests.yml")
    for job in workflow["jobs"].values():
        uploads = [s for s in job["steps"] if "upload-artifact" in s.get("uses", "")]
        reports = [s for s in job["steps"] if "action-junit-report" in s.get("uses", "")]
        assert uploads and reports
        for step in uploads + reports:
            assert step["if"] == "always()"
        assert all(s["with"]["retention-days"] == 90 for s in uploads)


def test_kind_action_takes_versions_and_config_from_the_project():
    workflow = load(REPO_ROOT / ".github" / "workflows" / "tests.yml")
    job = workflow["jobs"]["cluster"]
    pins = next(s for s in job["steps"] if s.get("id") == "pins")
    for key in ("kind.version", "kind.node_image", "tools.kubectl"):
        assert f"floe-test versions {key}" in pins["run"]
    assert "floe-test render" in pins["run"]
    kind = next(s for s in job["steps"] if "helm/kind-action" in s.get("uses", ""))
    assert kind["with"]["version"] == "${{ steps.pins.outputs.kind }}"
    assert kind["with"]["node_image"] == "${{ steps.pins.outputs.node_image }}"
    assert kind["with"]["config"] == "render/${{ matrix.stack }}/kind-config.yaml"
    run = next(s for s in job["steps"] if "floe-test run" in s.get("run", ""))
    assert "--adopt" in run["run"] and "--ci" in run["run"]


def test_kind_action_defaults_agree_with_our_pins():
    """helm/kind-action v1.13.0 defaults to kind v0.30.0 / kubectl v1.34.0: the same as versions.yaml,
    so a step that forgot an input would still not drift."""
    from floe_model.versions import load_versions

    versions = load_versions()
    text = (REPO_ROOT / ".github" / "workflows" / "tests.yml").read_text()
    assert "helm/kind-action@92086f6be054225fa813e0a4b13787fc9088faab # v1.13.0" in text
    assert (versions.kind, versions.tools["kubectl"]) == ("v0.30.0", "v1.34.0")


def test_uv_version_matches_the_makefile():
    makefile = (REPO_ROOT / "Makefile").read_text()
    pinned = re.search(r"^UV_VERSION := (\S+)", makefile, re.M)
    assert pinned
    for path in WORKFLOWS:
        for step in steps(load(path)):
            if "setup-uv" in step.get("uses", ""):
                assert step["with"]["version"] == pinned.group(1)
