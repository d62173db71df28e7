"""Source builds from upstream archives when the Go module proxy refuses a module pinned by commit.

Real archives and real git repositories, made small in ``tmp_path``; only the proxy's answer is stubbed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest

from floe_build import gobuild
from floe_build.toolchain import TOOLS, Toolchain, ToolchainError, ToolSpec
from floe_build.upstream_src import (
    ENV_VAR,
    SourceMismatch,
    content_digest,
    find_archive,
    materialize,
    source_root,
)
from floe_model.versions import load_versions

COMMIT = "0ac56e876614aedf12771d73ef7e80959b8a6fd4"
TREE = "19cdd87769692299894ef69ad022a1bfd9c552a1"
SUBTREE = "sdk/python/cmd/pulumi-language-python"
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def plain_archive(root: Path, *, commit: str = COMMIT, main: str = "package main\n") -> Path:
    """``pulumi-language-python.tar.gz`` in the shared archives' plain-tree format."""
    top = root / "src" / "pulumi-language-python"
    (top / SUBTREE).mkdir(parents=True)
    (top / SUBTREE / "go.mod").write_text("module github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3\n")
    (top / SUBTREE / "main.go").write_text(main)
    meta = {"repository": "https://github.com/pulumi/pulumi", "commit": commit, "tag": "v3.259.0"}
    (top / "SOURCE.json").write_text(json.dumps({**meta, "subtree": SUBTREE, "subtree_git_tree": TREE}))
    archive = root / "archives" / "pulumi-language-python.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    return archive


def pins(content: str) -> dict[str, Any]:
    return {
        "module": "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3",
        "commits": {"v3.259.0": COMMIT},
        "trees": {"v3.259.0": TREE},
        "content": {"v3.259.0": content},
    }


def good_digest(tmp_path: Path) -> str:
    reference = tmp_path / "reference"
    plain_archive(reference)
    return content_digest(reference / "src" / "pulumi-language-python" / SUBTREE)


def test_a_plain_tree_archive_that_matches_the_pin_becomes_the_build_source(tmp_path):
    archive = plain_archive(tmp_path)
    dest = tmp_path / "build" / "src"
    dest.parent.mkdir()
    record = materialize(
        "pulumi-language-python", "v3.259.0", archive, dest, pins=pins(good_digest(tmp_path)), subdirs=[SUBTREE],
        log=lambda _: None,
    )
    assert (dest / SUBTREE / "main.go").read_text() == "package main\n"
    assert not (dest / "SOURCE.json").exists()
    assert record["format"] == "tree" and record["commit"] == COMMIT
    assert record["verified"] == ["commit", "tree", "content"]
    assert record["trees"] == {SUBTREE: TREE} and len(record["archive_sha256"]) == 64


def test_an_archive_of_another_commit_is_refused_naming_both(tmp_path):
    archive = plain_archive(tmp_path, commit="1111111111111111111111111111111111111111")
    dest = tmp_path / "build" / "src"
    dest.parent.mkdir()
    with pytest.raises(SourceMismatch) as refused:
        materialize("pulumi-language-python", "v3.259.0", archive, dest, pins=pins("x"), subdirs=[SUBTREE],
                    log=lambda _: None)
    assert "holds commit 1111111111111111111111111111111111111111" in str(refused.value)
    assert f"pins {COMMIT}" in str(refused.value)
    assert not dest.exists()


def test_an_archive_whose_files_differ_from_the_pinned_content_is_refused(tmp_path):
    expected = good_digest(tmp_path)
    archive = plain_archive(tmp_path, main="package main // altered\n")
    dest = tmp_path / "build" / "src"
    dest.parent.mkdir()
    with pytest.raises(SourceMismatch, match=f"content digest [0-9a-f]{{64}}, but .* pins {expected}"):
        materialize("pulumi-language-python", "v3.259.0", archive, dest, pins=pins(expected), subdirs=[SUBTREE],
                    log=lambda _: None)


def git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t",
           "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True).stdout.strip()


def bare_archive(root: Path) -> tuple[Path, str, str]:
    """A bare repository (the kubernetes provider's archive format) with provider/ and sdk/."""
    work = root / "work"
    (work / "provider").mkdir(parents=True)
    (work / "sdk").mkdir()
    (work / "provider" / "go.mod").write_text("module example.com/provider\n")
    (work / "sdk" / "go.mod").write_text("module example.com/sdk\n")
    git(work, "init", "-q")
    git(work, "add", ".")
    git(work, "commit", "-qm", "v1")
    commit, tree = git(work, "rev-parse", "HEAD"), git(work, "rev-parse", "HEAD:provider")
    bare = root / "pulumi-resource-kubernetes"
    git(root, "clone", "-q", "--bare", str(work), str(bare))
    archive = root / "archives" / "pulumi-resource-kubernetes.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(bare, arcname=bare.name)
    return archive, commit, tree


@needs_git
def test_a_bare_repository_archive_is_checked_out_at_the_pinned_commit(tmp_path):
    archive, commit, tree = bare_archive(tmp_path)
    dest = tmp_path / "build" / "src"
    dest.parent.mkdir()
    record = materialize(
        "pulumi-resource-kubernetes", "v4.32.0", archive, dest,
        pins={"commits": {"v4.32.0": commit}, "trees": {"v4.32.0": tree}}, subdirs=["provider", "sdk"],
        log=lambda _: None,
    )
    assert (dest / "provider" / "go.mod").is_file() and (dest / "sdk" / "go.mod").is_file()
    assert record["format"] == "git" and record["trees"]["provider"] == tree
    assert record["verified"] == ["commit", "tree"]


@needs_git
def test_a_bare_repository_at_another_commit_is_refused(tmp_path):
    archive, _commit, tree = bare_archive(tmp_path)
    dest = tmp_path / "build" / "src"
    dest.parent.mkdir()
    with pytest.raises(SourceMismatch, match=r"holds commit [0-9a-f]{40}, but .* pins 2222"):
        materialize("pulumi-resource-kubernetes", "v4.32.0", archive, dest,
                    pins={"commits": {"v4.32.0": "2" * 40}, "trees": {"v4.32.0": tree}}, subdirs=["provider", "sdk"],
                    log=lambda _: None)


def test_the_archive_folder_is_the_shared_one_unless_the_environment_names_another(tmp_path):
    assert source_root({}).parts[-2:] == ("shared", "upstream-src")
    assert source_root({ENV_VAR: str(tmp_path)}) == tmp_path
    assert find_archive("pulumi-language-python", tmp_path) is None
    (tmp_path / "pulumi-language-python").mkdir()
    assert find_archive("pulumi-language-python", tmp_path) == tmp_path / "pulumi-language-python"


@pytest.mark.parametrize("tool", ["pulumi-language-python", "pulumi-resource-command", "pulumi-resource-kubernetes"])
def test_every_recipe_built_by_commit_pins_what_an_archive_is_checked_against(tool):
    data = json.loads((gobuild.RECIPES / tool / "source.json").read_text())
    version = load_versions().get(TOOLS[tool].version_key)
    assert len(data["commits"][version]) == 40 and len(data["trees"][version]) == 40
    if TOOLS[tool].recipe.mode == "module":  # plain-tree archives: their content is pinned too
        assert len(data["content"][version]) == 64


def test_when_the_proxy_refuses_the_module_the_build_uses_the_verified_archive(tmp_path, monkeypatch):
    archive = plain_archive(tmp_path)
    monkeypatch.setenv(ENV_VAR, str(archive.parent))
    monkeypatch.setattr(gobuild, "proxy_refusal", lambda *a: "server response: This module version is not available.")
    recipe_pins = pins(good_digest(tmp_path))
    monkeypatch.setattr(gobuild, "_source_json", lambda tool: recipe_pins)
    logged: list[str] = []
    record: dict[str, Any] = {}
    run = gobuild._Runner("go", {}, tmp_path / "log", logged.append)
    tree = gobuild._archive_if_refused(TOOLS["pulumi-language-python"], "v3.259.0", run, "go", tmp_path / "work",
                                       record, logged.append)
    assert tree is not None and (tree / SUBTREE / "main.go").is_file()
    assert record["source"]["archive"] == str(archive)
    assert any("refuses" in line and str(archive) in line for line in logged)


def test_when_the_proxy_refuses_and_no_archive_exists_the_error_says_where_to_put_one(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "empty"))
    monkeypatch.setattr(gobuild, "proxy_refusal", lambda *a: "403 Forbidden")
    run = gobuild._Runner("go", {}, tmp_path / "log", lambda _: None)
    with pytest.raises(ToolchainError) as failure:
        gobuild._archive_if_refused(TOOLS["pulumi-resource-command"], "v1.2.1", run, "go", tmp_path / "work", {},
                                    lambda _: None)
    message = str(failure.value)
    assert "refuses github.com/pulumi/pulumi-command/provider@7f3eb6f3" in message and "403 Forbidden" in message
    assert str(tmp_path / "empty") in message and ENV_VAR in message


def test_when_the_proxy_serves_the_module_no_archive_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(gobuild, "proxy_refusal", lambda *a: None)
    run = gobuild._Runner("go", {}, tmp_path / "log", lambda _: None)
    assert gobuild._archive_if_refused(TOOLS["pulumi-resource-command"], "v1.2.1", run, "go", tmp_path / "w", {},
                                       lambda _: None) is None


def test_a_second_install_of_the_same_tool_waits_for_the_first_and_finds_it_cached(tmp_path):
    """Two installs at once must not share (and delete) one build folder: the second waits on a lock."""
    started, release = threading.Event(), threading.Event()
    builds: list[str] = []

    def slow_build(spec: ToolSpec, version: str, out: Path, go_src: Path | None) -> dict[str, Any]:
        builds.append(version)
        started.set()
        assert release.wait(timeout=30), "the test never released the first build"
        for name in spec.binaries:
            (out / name).write_text("#!/bin/sh\n")
        return {"go_version": "go1.26.8"}

    versions = {spec.version_key: load_versions().get(spec.version_key) for spec in TOOLS.values()}
    chain = Toolchain(cache=tmp_path / "cache", bin_dir=tmp_path / "bin", platform=("linux", "amd64"),
                      versions=versions, checksums={}, go="/usr/bin/go", go_build=slow_build)
    results: dict[str, Any] = {}

    def install(label: str) -> None:
        results[label] = chain.install("pulumi-resource-command", source="source")

    first = threading.Thread(target=install, args=("first",))
    first.start()
    assert started.wait(timeout=30)
    second = threading.Thread(target=install, args=("second",))
    second.start()
    second.join(timeout=0.5)
    assert second.is_alive(), "the second install must wait while the first one builds"
    release.set()
    first.join(timeout=30)
    second.join(timeout=30)
    assert builds == ["v1.2.1"]
    assert results["first"].action == "built" and results["second"].action == "cached"
