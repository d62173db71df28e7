"""The toolchain (floe_build.toolchain): pins, checksum verification, download -> source fallback, idempotence.

Offline and fast: the download and the Go build are replaced at their boundary (``fetch``/``go_build``);
everything else (cache layout, verification, links, provenance) is the real code.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest

from floe_build.recipes import GOBUILD_DIR
from floe_build.toolchain import (
    TOOLS,
    ChecksumMismatch,
    DownloadUnavailable,
    Toolchain,
    ToolchainError,
    ToolSpec,
    pulumi_env,
)
from floe_model.paths import REPO_ROOT
from floe_model.versions import load_versions

PLATFORM = ("linux", "amd64")
KIND_BYTES = b"#!/bin/sh\necho kind v0.30.0\n"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tarball(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class FakeWorld:
    """The outside world of a toolchain: what downloads return and what Go builds produce."""

    def __init__(self, artifacts: dict[str, bytes] | None = None) -> None:
        self.artifacts = artifacts or {}
        self.fetched: list[str] = []
        self.built: list[tuple[str, str]] = []

    def fetch(self, url: str, dest: Path) -> None:
        self.fetched.append(url)
        if url not in self.artifacts:
            raise DownloadUnavailable(f"cannot download {url}: [Errno -2] Name or service not known")
        dest.write_bytes(self.artifacts[url])

    def go_build(self, spec: ToolSpec, version: str, out: Path, go_src: Path | None) -> dict[str, Any]:
        self.built.append((spec.name, version))
        for name in spec.binaries:
            (out / name).write_text(f"#!/bin/sh\necho {name} {version}\n")
        return {"go_version": "go1.26.8", "build_seconds": 0.1}


def make_chain(tmp_path: Path, world: FakeWorld, *, go: str | None = "/usr/local/go/bin/go",
               checksums: dict[str, Any] | None = None) -> Toolchain:
    versions = {spec.version_key: load_versions().get(spec.version_key) for spec in TOOLS.values()}
    return Toolchain(cache=tmp_path / "cache", bin_dir=tmp_path / "bin", platform=PLATFORM, versions=versions,
                     checksums=checksums or {}, go=go, fetch=world.fetch, go_build=world.go_build)


KIND_URL = "https://github.com/kubernetes-sigs/kind/releases/download/v0.30.0/kind-linux-amd64"
KIND_SUMS = {"kind": {"v0.30.0": {"linux-amd64": _sha(KIND_BYTES)}}}


# ------------------------------------------------------------------------------------------ pins
def _lock_versions() -> dict[str, str]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    return {pkg["name"]: pkg["version"] for pkg in lock["package"]}


@pytest.mark.parametrize(("pin", "package"), [
    ("tools.pulumi", "pulumi"),
    ("tools.pulumi-kubernetes", "pulumi-kubernetes"),
    ("tools.pulumi-command", "pulumi-command"),
], ids=["cli-matches-sdk", "kubernetes-plugin-matches-sdk", "command-plugin-matches-sdk"])
def test_plugin_pins_equal_the_locked_python_sdks(pin: str, package: str) -> None:
    assert load_versions().get(pin) == "v" + _lock_versions()[package]


@pytest.mark.parametrize(("recipe", "module", "pin"), [
    ("kubectl", "k8s.io/kubectl", "tools.kubectl"),
    ("kubectl", "k8s.io/component-base", "tools.kubectl"),
    ("pulumi", "github.com/pulumi/pulumi/pkg/v3", "tools.pulumi"),
    ("pulumi", "github.com/pulumi/pulumi/sdk/v3", "tools.pulumi"),
], ids=["kubectl", "component-base", "pulumi-pkg", "pulumi-sdk"])
def test_recipe_go_mod_requires_the_pinned_version(recipe: str, module: str, pin: str) -> None:
    gomod = (GOBUILD_DIR / recipe / "go.mod").read_text()
    found = re.search(rf"^\s*{re.escape(module)} (v\S+)", gomod, re.MULTILINE)
    assert found, f"{module} missing from floe_build/tools/gobuild/{recipe}/go.mod"
    pinned = load_versions().get(pin)
    expected = "v0." + pinned.removeprefix("v1.") if module.startswith("k8s.io/") else pinned
    assert found.group(1) == expected


def test_every_checksum_in_versions_yaml_is_a_sha256_of_a_known_tool() -> None:
    checksums = load_versions().raw.get("checksums") or {}
    for tool, per_version in checksums.items():
        assert tool in TOOLS
        for per_platform in per_version.values():
            for value in per_platform.values():
                assert re.fullmatch(r"[0-9a-f]{64}", value)


# ------------------------------------------------------------------------------------------ checksums
def test_verified_download_is_installed_with_its_provenance(tmp_path: Path) -> None:
    world = FakeWorld({KIND_URL: KIND_BYTES})
    chain = make_chain(tmp_path, world, checksums=KIND_SUMS)
    result = chain.install("kind")
    assert result.action == "downloaded"
    record = json.loads((chain.tool_dir("kind", "v0.30.0") / "provenance.json").read_text())
    assert (record["origin"], record["sha256"], record["url"]) == ("download", _sha(KIND_BYTES), KIND_URL)
    assert (tmp_path / "bin" / "kind").read_bytes() == KIND_BYTES


def test_tampered_download_is_rejected_and_nothing_is_installed(tmp_path: Path) -> None:
    world = FakeWorld({KIND_URL: KIND_BYTES + b"# injected\n"})
    chain = make_chain(tmp_path, world, checksums=KIND_SUMS)
    with pytest.raises(ChecksumMismatch, match="sha256"):
        chain.install("kind")
    assert chain.provenance("kind", "v0.30.0") is None
    assert not (tmp_path / "bin" / "kind").exists()
    # The staging folder is gone too; only the install lock stays.
    assert [p.name for p in (chain.cache / "kind").iterdir()] == [".v0.30.0.lock"]


def test_tampered_download_never_falls_back_to_a_source_build(tmp_path: Path) -> None:
    world = FakeWorld({KIND_URL: b"evil"})
    chain = make_chain(tmp_path, world, checksums=KIND_SUMS)
    with pytest.raises(ChecksumMismatch):
        chain.install("kind", source="auto")
    assert world.built == []


def test_download_without_a_pinned_checksum_is_refused(tmp_path: Path) -> None:
    world = FakeWorld({KIND_URL: KIND_BYTES})
    chain = make_chain(tmp_path, world, checksums={})
    with pytest.raises(DownloadUnavailable, match=r"no checksums\.kind\.v0\.30\.0\.linux-amd64"):
        chain.install("kind", source="download")
    assert world.fetched == []


def test_archive_members_are_extracted_after_verification(tmp_path: Path) -> None:
    tarball = _tarball({"linux-amd64/helm": b"helm-binary", "linux-amd64/LICENSE": b"text"})
    url = "https://get.helm.sh/helm-v3.19.0-linux-amd64.tar.gz"
    chain = make_chain(tmp_path, FakeWorld({url: tarball}),
                       checksums={"helm": {"v3.19.0": {"linux-amd64": _sha(tarball)}}})
    chain.install("helm")
    assert (tmp_path / "bin" / "helm").read_bytes() == b"helm-binary"


# ------------------------------------------------------------------------------------------ fallback
FALLBACK_CASES = [
    # (download reachable, go on PATH, --from, expected action or error type)
    (True, True, "auto", "downloaded"),
    (False, True, "auto", "built"),
    (False, False, "auto", ToolchainError),
    (False, True, "download", DownloadUnavailable),
    (True, True, "source", "built"),
    (True, False, "source", ToolchainError),
]


@pytest.mark.parametrize(("reachable", "has_go", "source", "expected"), FALLBACK_CASES, ids=[
    "reachable-downloads", "unreachable-with-go-builds", "unreachable-without-go-fails",
    "download-only-fails-when-unreachable", "source-builds-even-when-reachable", "source-without-go-fails"])
def test_download_or_source_decision(tmp_path: Path, reachable: bool, has_go: bool, source: Any,
                                     expected: str | type[Exception]) -> None:
    world = FakeWorld({KIND_URL: KIND_BYTES} if reachable else {})
    chain = make_chain(tmp_path, world, go="/usr/local/go/bin/go" if has_go else None, checksums=KIND_SUMS)
    if isinstance(expected, str):
        assert chain.install("kind", source=source).action == expected
    else:
        with pytest.raises(expected):
            chain.install("kind", source=source)


def test_unreachable_download_without_go_names_both_ways_out(tmp_path: Path) -> None:
    chain = make_chain(tmp_path, FakeWorld(), go=None, checksums=KIND_SUMS)
    with pytest.raises(ToolchainError) as info:
        chain.install("kind")
    message = str(info.value)
    assert KIND_URL in message
    assert "`go` is not on PATH" in message


def test_source_build_records_its_go_version(tmp_path: Path) -> None:
    chain = make_chain(tmp_path, FakeWorld())
    chain.install("kubectl")
    record = chain.provenance("kubectl", "v1.34.0")
    assert record is not None
    assert (record["origin"], record["go_version"]) == ("source", "go1.26.8")


# ------------------------------------------------------------------------------------------ idempotence
def test_second_install_is_a_no_op(tmp_path: Path) -> None:
    world = FakeWorld()
    chain = make_chain(tmp_path, world)
    first = chain.install("helm")
    second = chain.install("helm")
    assert (first.action, second.action) == ("built", "cached")
    assert world.built == [("helm", "v3.19.0")]
    assert second.seconds < 2


def test_cache_entry_missing_its_binary_is_reinstalled(tmp_path: Path) -> None:
    world = FakeWorld()
    chain = make_chain(tmp_path, world)
    chain.install("helm")
    (chain.tool_dir("helm", "v3.19.0") / "bin" / "helm").unlink()
    assert chain.install("helm").action == "built"


def test_failed_reinstall_keeps_the_cached_tool(tmp_path: Path) -> None:
    chain = make_chain(tmp_path, FakeWorld({KIND_URL: KIND_BYTES}), checksums=KIND_SUMS)
    chain.install("kind")
    chain.fetch = FakeWorld().fetch  # now unreachable
    with pytest.raises(DownloadUnavailable):
        chain.install("kind", source="download", force=True)
    assert chain.provenance("kind", "v0.30.0") is not None


def test_cache_is_keyed_by_tool_and_version(tmp_path: Path) -> None:
    world = FakeWorld()
    chain = make_chain(tmp_path, world)
    pinned, other = chain.pinned("pulumi"), "v3.250.0"
    chain.install("pulumi")
    chain.install("pulumi", version=other, source="source")
    assert chain.installed_versions("pulumi") == sorted([other, pinned])
    assert world.built == [("pulumi", pinned), ("pulumi", other)]


# ------------------------------------------------------------------------------------------ layout
@pytest.mark.parametrize("tool", ["pulumi-resource-command", "pulumi-resource-kubernetes"])
def test_provider_plugins_land_in_pulumis_plugin_folder_layout(tmp_path: Path, tool: str) -> None:
    chain = make_chain(tmp_path, FakeWorld())
    version = chain.pinned(tool)
    chain.install(tool)
    kind, name = TOOLS[tool].plugin or ("", "")
    assert (chain.pulumi_home / "plugins" / f"{kind}-{name}-{version}" / tool).is_file()


def test_language_host_sits_next_to_the_cli_for_the_automation_api(tmp_path: Path) -> None:
    chain = make_chain(tmp_path, FakeWorld())
    chain.install("pulumi")
    chain.install("pulumi-language-python")
    names = sorted(p.name for p in (chain.pulumi_root / "bin").iterdir())
    assert names == ["pulumi", "pulumi-language-python", "pulumi-language-python-exec"]


def test_status_flags_an_off_pin_build_as_a_mismatch(tmp_path: Path) -> None:
    chain = make_chain(tmp_path, FakeWorld())
    chain.install("pulumi", version="v3.250.0", source="source")
    status = chain.status("pulumi", probe=False)
    assert (status.installed, status.pinned, status.matches_pin) == ("v3.250.0", chain.pinned("pulumi"), False)


def test_pulumi_env_is_offline_and_uses_the_cached_plugins(tmp_path: Path) -> None:
    chain = make_chain(tmp_path, FakeWorld())
    env = pulumi_env(chain, base={"PATH": "/usr/bin"})
    assert env["PULUMI_HOME"] == str(chain.pulumi_home)
    assert env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] == "true"
    assert env["PULUMI_SKIP_UPDATE_CHECK"] == "true"
    assert env["PULUMI_IGNORE_AMBIENT_PLUGINS"] == "true"
    assert env["PATH"].split(":")[:2] == [str(chain.pulumi_root / "bin"), str(chain.bin_dir)]
    assert env["PATH"].split(":")[-1] == "/usr/bin"


def test_pulumi_env_finds_the_private_uv_when_none_is_on_path(tmp_path: Path, monkeypatch) -> None:
    """Pulumi.yaml's uv toolchain looks for `uv` on PATH: the copy `make setup` installed must be there."""
    import floe_build.toolchain as toolchain

    private = tmp_path / "uv-bin"
    private.mkdir()
    (private / "uv").write_text("#!/bin/sh\n")
    (private / "uv").chmod(0o755)
    monkeypatch.setattr(toolchain, "PRIVATE_UV_DIR", private)
    chain = make_chain(tmp_path, FakeWorld())
    assert str(private) in pulumi_env(chain, base={"PATH": str(tmp_path / "empty")})["PATH"].split(":")
    on_path = tmp_path / "system-bin"
    on_path.mkdir()
    (on_path / "uv").write_text("#!/bin/sh\n")
    (on_path / "uv").chmod(0o755)
    assert str(private) not in pulumi_env(chain, base={"PATH": str(on_path)})["PATH"].split(":")



# ------------------------------------------------------------------------------------------ source builds
def _git(cwd: Path, *args: str) -> str:
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.invalid", "HOME": str(cwd), "PATH": "/usr/bin:/bin"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout


def test_kubernetes_provider_pin_has_a_commit_and_openapi_specs_in_its_recipe() -> None:
    data = json.loads((GOBUILD_DIR / "pulumi-resource-kubernetes" / "source.json").read_text())
    pin = load_versions().get("tools.pulumi-kubernetes")
    assert re.fullmatch(r"[0-9a-f]{40}", data["commits"][pin])
    specs = data["openapi"][pin]
    assert all(re.fullmatch(r"v1\.\d+\.\d+", v) for v in [specs["current"], *specs["legacy"]])
    assert TOOLS["pulumi-resource-kubernetes"].recipe.prepare == "pulumi-kubernetes-schema"


def test_a_git_mirror_is_exported_at_the_commit_and_files_it_lacks_are_named(tmp_path: Path) -> None:
    from floe_build.gobuild import export_git, is_git_dir

    work = tmp_path / "work"
    (work / "provider" / "cmd").mkdir(parents=True)
    (work / "provider" / "go.mod").write_text("module example.com/provider\n")
    (work / "provider" / "cmd" / "schema.json").write_text('{"big": "generated"}\n')
    (work / "sdk").mkdir()
    (work / "sdk" / "go.mod").write_text("module example.com/sdk\n")
    (work / "docs.md").write_text("not exported\n")
    _git(tmp_path, "init", "-q", str(work))
    _git(work, "add", ".")
    _git(work, "commit", "-q", "-m", "one")
    commit = _git(work, "rev-parse", "HEAD").strip()
    _git(tmp_path, "clone", "-q", "--bare", str(work), str(tmp_path / "mirror.git"))
    mirror = tmp_path / "mirror.git"
    # A partial mirror: the generated file's blob is absent (repacked without it).
    blob = _git(mirror, "rev-parse", f"{commit}:provider/cmd/schema.json").strip()
    keep = [line.split()[0] for line in _git(mirror, "rev-list", "--objects", "--all").splitlines()]
    keep.remove(blob)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    subprocess.run(["git", f"--git-dir={mirror}", "pack-objects", "-q", str(fresh / "pack")],
                   input="\n".join(keep) + "\n", text=True, check=True, capture_output=True)
    shutil.rmtree(mirror / "objects" / "pack")
    for loose in (mirror / "objects").glob("[0-9a-f][0-9a-f]"):
        shutil.rmtree(loose)
    shutil.copytree(fresh, mirror / "objects" / "pack")
    assert _git(mirror, "cat-file", "-t", commit).strip() == "commit"
    assert is_git_dir(mirror)

    dest = tmp_path / "build"
    missing = export_git(mirror, commit, ["provider", "sdk"], dest)

    assert missing == ["provider/cmd/schema.json"]
    assert (dest / "provider" / "go.mod").read_text() == "module example.com/provider\n"
    assert (dest / "sdk" / "go.mod").is_file()
    assert not (dest / "provider" / "cmd" / "schema.json").exists()
    assert not (dest / "docs.md").exists()
    assert not (mirror / "index").exists(), "the mirror is only read (a temporary index is used)"


def test_refused_modules_are_substituted_only_when_the_proxy_refuses_them(tmp_path: Path) -> None:
    from floe_build.gobuild import _substitute_refused

    calls: list[list[str]] = []

    class FakeRun:
        logged: list[str] = []

        def log(self, message: str) -> None:
            self.logged.append(message)

        def __call__(self, args: list[str], cwd: Path, *, what: str, mod_flags: bool = True,
                     capture: bool = False) -> str:
            calls.append(list(args))
            if args[1:3] == ["mod", "edit"] and "-json" in args:
                return json.dumps({"Require": [{"Path": "example.com/served", "Version": "v1.0.0"},
                                               {"Path": "example.com/refused", "Version": "v2.0.0"}]})
            if args[1:3] == ["mod", "download"] and args[-1] == "example.com/refused@v2.0.0":
                raise ToolchainError("go mod download failed: 403 Forbidden")
            return "{}"

    changed = _substitute_refused(FakeRun(), "go", tmp_path, tmp_path, {  # type: ignore[arg-type]
        "example.com/served": {"version": "v1.1.0", "why": "x"},
        "example.com/refused": {"version": "v2.1.0", "why": "refused here"},
        "example.com/unused": {"version": "v3.0.0"},
    })

    assert changed == {"example.com/refused": {"upstream": "v2.0.0", "used": "v2.1.0", "why": "refused here"}}
    assert ["go", "mod", "edit", "-require=example.com/refused@v2.1.0"] in calls
    assert not any("-require=example.com/served@v1.1.0" in c for c in calls)
