"""The pinned tool binaries (kind, kubectl, helm, the Pulumi CLI and plugins): download or build, cache, link.

Every tool is installed into a cache outside the repository, keyed by tool and version::

    ${FLOE_TOOLS_CACHE:-~/.cache/floe-testinfra/tools}/<tool>/<version>/bin/<binary>
    ${FLOE_TOOLS_CACHE:-~/.cache/floe-testinfra/tools}/<tool>/<version>/provenance.json

then linked into the project's ``bin/`` (git-ignored; ``$FLOE_TOOLS_BIN`` overrides). Provider plugins
are also linked into a Pulumi plugin folder (``<cache>/pulumi-home/plugins/resource-<name>-v<version>/``)
so the engine finds them offline, and the CLI with its Python language host into
``<cache>/pulumi-root/bin`` (what ``pulumi.automation.PulumiCommand(root=...)`` expects).

Where a tool comes from (``--from``):

* ``download``: the pinned release artifact, verified against ``versions.yaml`` ``checksums:``. A file
  whose sha256 differs is rejected; an artifact without a pinned checksum is never installed.
* ``source``: a Go build of the same version through the Go module proxy, by the recipes in
  ``floe_build/tools/gobuild/<tool>/`` (version ldflags set, so each binary reports its real version).
* ``auto`` (default): download; when the download is unreachable (short connect timeout) or has no
  pinned checksum and ``go`` is on PATH, build from source.

A second ``install`` finds the cache entry and only refreshes the links: it takes seconds.

Command line (the Makefile's ``make tools``)::

    python -m floe_build.toolchain install [--tool NAME ...] [--from auto|download|source]
    python -m floe_build.toolchain status [--json]
    python -m floe_build.toolchain env          # shell exports: PATH, PULUMI_HOME, offline switches
"""

from __future__ import annotations

import argparse
import datetime as _dt
import fcntl
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from floe_build.errors import ChecksumMismatch, DownloadUnavailable, ToolchainError
from floe_build.recipes import GOBUILD_DIR
from floe_model.files import sha256_file
from floe_model.paths import PRIVATE_UV_DIR, REPO_ROOT
from floe_model.versions import load_versions
from testing.errors import WaitTimeout
from testing.polling import Check, wait_for_condition

__all__ = [
    "TOOLS",
    "ChecksumMismatch",
    "DownloadUnavailable",
    "InstallResult",
    "ToolSpec",
    "ToolStatus",
    "Toolchain",
    "ToolchainError",
    "cache_root",
    "install_all",
    "main",
    "pulumi_env",
]

Source = Literal["auto", "download", "source"]

#: Seconds to wait for a download to connect (and for each read): unreachable hosts fail fast.
CONNECT_TIMEOUT = float(os.environ.get("FLOE_TOOLS_CONNECT_TIMEOUT", "5"))
RECIPES_DIR = GOBUILD_DIR
PROVENANCE = "provenance.json"
#: How long an install waits for another one of the same tool (a cold provider build takes ~10 min).
LOCK_TIMEOUT = float(os.environ.get("FLOE_TOOLS_LOCK_TIMEOUT", "3600"))


# --------------------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class Download:
    """A release artifact: ``url`` is a template over {version} {bare} {os} {arch} {pulumi_arch}."""

    url: str
    #: Archive members to install (name inside the tarball -> installed name); empty = the file is the binary.
    members: Mapping[str, str] = field(default_factory=dict)
    #: Whose ``checksums:`` entry verifies the artifact (the language host ships in the CLI tarball).
    checksum_tool: str | None = None


@dataclass(frozen=True)
class GoRecipe:
    """How to build a tool from Go modules. String fields are templates (see ``_template_vars``)."""

    #: ``install``: ``go install module@version`` (no recipe dir);
    #: ``module``: our own module in floe_build/tools/gobuild/<tool>;
    #: ``upstream``: the upstream module copied out as the main module (its replace directives apply).
    mode: Literal["install", "module", "upstream"]
    package: str
    #: Modules our recipe requires at the pinned version (``go mod edit -require``), as (module, version).
    requires: tuple[tuple[str, str], ...] = ()
    #: A module pinned by commit (``source.json`` maps version -> commit), and its path in the upstream repo.
    by_commit: str | None = None
    repo_subdir: str = ""
    ldflags: tuple[str, ...] = ()
    tags: str = ""
    #: Files to copy next to the binary: (module, path inside the module, installed name).
    extra_files: tuple[tuple[str, str, str], ...] = ()
    #: For ``upstream``: sibling directories of the repo to lay out as (directory, module; the first is the
    #: module built, all at the same commit), and generate commands to run first.
    siblings: tuple[tuple[str, str], ...] = ()
    generate: tuple[tuple[str, ...], ...] = ()
    #: For ``upstream``: a named step of ours run before ``generate`` (floe_build.gobuild.PREPARE),
    #: e.g. the Kubernetes provider's schema generation from local OpenAPI specs.
    prepare: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ToolSpec:
    name: str
    #: Key in versions.yaml.
    version_key: str
    binaries: tuple[str, ...]
    download: Download
    recipe: GoRecipe
    version_args: tuple[str, ...]
    #: (kind, name) of a Pulumi plugin, linked into the plugin folder.
    plugin: tuple[str, str] | None = None
    #: Linked into <cache>/pulumi-root/bin next to the CLI.
    pulumi_root: bool = False


_K8S_VERSION_PKGS = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
_PULUMI_VERSION = "github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={version}"
_GH = "https://github.com"

TOOLS: dict[str, ToolSpec] = {
    t.name: t
    for t in (
        ToolSpec(
            "kind",
            "kind.version",
            ("kind",),
            Download(f"{_GH}/kubernetes-sigs/kind/releases/download/{{version}}/kind-{{os}}-{{arch}}"),
            GoRecipe("install", "sigs.k8s.io/kind@{version}"),
            ("version",),
        ),
        ToolSpec(
            "kubectl",
            "tools.kubectl",
            ("kubectl",),
            Download("https://dl.k8s.io/release/{version}/bin/{os}/{arch}/kubectl"),
            GoRecipe(
                "module",
                ".",
                requires=(("k8s.io/kubectl", "{k8s_module}"), ("k8s.io/component-base", "{k8s_module}")),
                ldflags=tuple(
                    f"-X {pkg}.{var}={value}"
                    for pkg in _K8S_VERSION_PKGS
                    for var, value in (
                        ("gitVersion", "{version}"),
                        ("gitMajor", "{major}"),
                        ("gitMinor", "{minor}"),
                        ("gitTreeState", "clean"),
                        ("buildDate", "{build_date}"),
                    )
                ),
            ),
            ("version", "--client"),
        ),
        ToolSpec(
            "helm",
            "tools.helm",
            ("helm",),
            Download("https://get.helm.sh/helm-{version}-{os}-{arch}.tar.gz", {"{os}-{arch}/helm": "helm"}),
            GoRecipe(
                "install",
                "helm.sh/helm/v3/cmd/helm@{version}",
                ldflags=(
                    "-X helm.sh/helm/v3/internal/version.version={version}",
                    "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
                ),
            ),
            ("version", "--short"),
        ),
        ToolSpec(
            "pulumi",
            "tools.pulumi",
            ("pulumi",),
            Download(
                "https://get.pulumi.com/releases/sdk/pulumi-{version}-{os}-{pulumi_arch}.tar.gz",
                {"pulumi/pulumi": "pulumi"},
            ),
            GoRecipe(
                "module",
                "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
                requires=(
                    ("github.com/pulumi/pulumi/pkg/v3", "{version}"),
                    ("github.com/pulumi/pulumi/sdk/v3", "{version}"),
                ),
                ldflags=(f"-X {_PULUMI_VERSION}",),
                tags="osusergo,grpcnotrace",
            ),
            ("version",),
            pulumi_root=True,
        ),
        ToolSpec(
            "pulumi-language-python",
            "tools.pulumi",
            ("pulumi-language-python", "pulumi-language-python-exec"),
            Download(
                "https://get.pulumi.com/releases/sdk/pulumi-{version}-{os}-{pulumi_arch}.tar.gz",
                {
                    "pulumi/pulumi-language-python": "pulumi-language-python",
                    "pulumi/pulumi-language-python-exec": "pulumi-language-python-exec",
                },
                checksum_tool="pulumi",
            ),
            GoRecipe(
                "module",
                "github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3",
                requires=(
                    ("github.com/pulumi/pulumi/pkg/v3", "{version}"),
                    ("github.com/pulumi/pulumi/sdk/v3", "{version}"),
                ),
                by_commit="github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3",
                repo_subdir="sdk/python/cmd/pulumi-language-python",
                ldflags=(f"-X {_PULUMI_VERSION}",),
                extra_files=(
                    (
                        "github.com/pulumi/pulumi/sdk/v3",
                        "python/cmd/pulumi-language-python-exec",
                        "pulumi-language-python-exec",
                    ),
                ),
            ),
            ("-version",),
            pulumi_root=True,
        ),
        ToolSpec(
            "pulumi-resource-command",
            "tools.pulumi-command",
            ("pulumi-resource-command",),
            Download(
                f"{_GH}/pulumi/pulumi-command/releases/download/{{version}}/"
                "pulumi-resource-command-{version}-{os}-{arch}.tar.gz",
                {"pulumi-resource-command": "pulumi-resource-command"},
            ),
            GoRecipe(
                "module",
                "github.com/pulumi/pulumi-command/provider/cmd/pulumi-resource-command",
                by_commit="github.com/pulumi/pulumi-command/provider",
                repo_subdir="provider",
                ldflags=("-X github.com/pulumi/pulumi-command/provider/pkg/version.Version={bare}",),
            ),
            ("-version",),
            plugin=("resource", "command"),
        ),
        ToolSpec(
            "actionlint",
            "tools.actionlint",
            ("actionlint",),
            Download(
                f"{_GH}/rhysd/actionlint/releases/download/{{version}}/actionlint_{{bare}}_{{os}}_{{arch}}.tar.gz",
                {"actionlint": "actionlint"},
            ),
            # Reports the module version from its build info, so no version ldflags are needed.
            GoRecipe("install", "github.com/rhysd/actionlint/cmd/actionlint@{version}"),
            ("-version",),
        ),
        ToolSpec(
            "pulumi-resource-kubernetes",
            "tools.pulumi-kubernetes",
            ("pulumi-resource-kubernetes",),
            Download(
                f"{_GH}/pulumi/pulumi-kubernetes/releases/download/{{version}}/"
                "pulumi-resource-kubernetes-{version}-{os}-{arch}.tar.gz",
                {"pulumi-resource-kubernetes": "pulumi-resource-kubernetes"},
            ),
            GoRecipe(
                "upstream",
                "./cmd/pulumi-resource-kubernetes",
                by_commit="github.com/pulumi/pulumi-kubernetes/provider/v4",
                repo_subdir="provider",
                siblings=(
                    ("provider", "github.com/pulumi/pulumi-kubernetes/provider/v4"),
                    ("sdk", "github.com/pulumi/pulumi-kubernetes/sdk/v4"),
                ),
                prepare="pulumi-kubernetes-schema",
                generate=(("go", "generate", "cmd/pulumi-resource-kubernetes/main.go"),),
                ldflags=("-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={bare}",),
                env={"CGO_ENABLED": "0", "VERSION": "{bare}"},
            ),
            ("-version",),
            plugin=("resource", "kubernetes"),
        ),
    )
}


# --------------------------------------------------------------------------------------------- helpers
def cache_root() -> Path:
    """``$FLOE_TOOLS_CACHE`` or ``~/.cache/floe-testinfra/tools``."""
    return Path(os.environ.get("FLOE_TOOLS_CACHE") or Path.home() / ".cache" / "floe-testinfra" / "tools")


def host_platform() -> tuple[str, str]:
    """(os, arch) in Go's spelling: ('linux', 'amd64')."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return sys.platform.replace("linux2", "linux"), arch


def _template_vars(version: str, plat: tuple[str, str]) -> dict[str, str]:
    bare = version.removeprefix("v")
    parts = [*bare.split("."), "0", "0"]
    return {
        "version": version,
        "bare": bare,
        "major": parts[0],
        "minor": parts[1],
        # Kubernetes v1.M.P is published as Go modules k8s.io/*@v0.M.P.
        "k8s_module": f"v0.{parts[1]}.{parts[2]}",
        "os": plat[0],
        "arch": plat[1],
        "pulumi_arch": {"amd64": "x64"}.get(plat[1], plat[1]),
        # Reproducible builds: SOURCE_DATE_EPOCH when set, else the epoch (Kubernetes' own "unknown").
        "build_date": _dt.datetime.fromtimestamp(int(os.environ.get("SOURCE_DATE_EPOCH", "0")), _dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
    }


def _fill(template: str, values: Mapping[str, str]) -> str:
    return template.format(**values)


def _log(message: str) -> None:
    print(f"[tools] {message}", file=sys.stderr, flush=True)


def _link_or_copy(src: Path, dest: Path) -> None:
    """A hard link (so a binary that looks next to itself finds its siblings), else a copy."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.is_symlink() or dest.exists():
        if dest.exists() and not dest.is_symlink() and os.path.samefile(src, dest):
            return
        dest.unlink()
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


def fetch_url(url: str, dest: Path, timeout: float = CONNECT_TIMEOUT) -> None:
    """Download ``url`` to ``dest``; any failure to get it is :class:`DownloadUnavailable`."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, dest.open("wb") as out:
            shutil.copyfileobj(response, out, 1 << 20)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        dest.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DownloadUnavailable(f"cannot download {url}: {reason}") from exc


# --------------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class InstallResult:
    tool: str
    version: str
    action: Literal["cached", "downloaded", "built"]
    path: Path
    seconds: float


@dataclass(frozen=True)
class ToolStatus:
    tool: str
    pinned: str
    installed: str | None
    origin: str | None
    reported: str | None
    path: Path | None

    @property
    def matches_pin(self) -> bool:
        return self.installed == self.pinned and (self.reported is None or self.reported == self.pinned)

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "pinned": self.pinned,
            "installed": self.installed,
            "origin": self.origin,
            "reported": self.reported,
            "path": str(self.path) if self.path else None,
            "matches_pin": self.matches_pin,
        }


# --------------------------------------------------------------------------------------------- toolchain
@dataclass
class Toolchain:
    """Installs tools into ``cache`` and links them into ``bin_dir``.

    ``fetch`` and ``go_build`` are the two boundaries with the outside world (tests replace them).
    """

    cache: Path = field(default_factory=cache_root)
    bin_dir: Path = field(default_factory=lambda: Path(os.environ.get("FLOE_TOOLS_BIN") or REPO_ROOT / "bin"))
    platform: tuple[str, str] = field(default_factory=host_platform)
    versions: Mapping[str, str] | None = None
    checksums: Mapping[str, Any] | None = None
    go: str | None = field(default_factory=lambda: shutil.which("go"))
    fetch: Callable[[str, Path], None] = fetch_url
    go_build: Callable[[ToolSpec, str, Path, Path | None], dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        if self.versions is None or self.checksums is None:
            pins = load_versions()
            if self.versions is None:
                self.versions = {spec.version_key: pins.get(spec.version_key) for spec in TOOLS.values()}
            if self.checksums is None:
                self.checksums = pins.raw.get("checksums") or {}
        if self.go_build is None:
            self.go_build = self._go_build

    # -- layout
    @property
    def plat_key(self) -> str:
        return f"{self.platform[0]}-{self.platform[1]}"

    def pinned(self, tool: str) -> str:
        assert self.versions is not None
        return self.versions[TOOLS[tool].version_key]

    def tool_dir(self, tool: str, version: str) -> Path:
        return self.cache / tool / version

    @property
    def pulumi_home(self) -> Path:
        return self.cache / "pulumi-home"

    @property
    def pulumi_root(self) -> Path:
        """For ``PulumiCommand(root=...)``: ``bin/pulumi`` with the language host next to it."""
        return self.cache / "pulumi-root"

    def provenance(self, tool: str, version: str) -> dict[str, Any] | None:
        path = self.tool_dir(tool, version) / PROVENANCE
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        bindir = self.tool_dir(tool, version) / "bin"
        if not all((bindir / name).is_file() for name in TOOLS[tool].binaries):
            return None
        return data if isinstance(data, dict) else None

    def installed_versions(self, tool: str) -> list[str]:
        root = self.cache / tool
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if self.provenance(tool, p.name) is not None)

    # -- install
    def install(
        self,
        tool: str,
        *,
        source: Source = "auto",
        version: str | None = None,
        go_src: Path | None = None,
        force: bool = False,
    ) -> InstallResult:
        """Ensure ``tool`` at ``version`` (default: the pin) is in the cache, then link it."""
        spec = TOOLS[tool]
        version = version or self.pinned(tool)
        started = time.monotonic()
        target = self.tool_dir(tool, version)
        action: Literal["cached", "downloaded", "built"]
        # One install of a tool version at a time: a second one waits, then finds it cached (two
        # builds would share, and delete, one build folder).
        with self._install_lock(tool, version):
            if not force and self.provenance(tool, version) is not None:
                action = "cached"
            else:
                action = self._obtain(spec, version, source, go_src)
            self.link(tool, version)
        return InstallResult(tool, version, action, target, time.monotonic() - started)

    @contextmanager
    def _install_lock(self, tool: str, version: str) -> Iterator[None]:
        path = self.cache / tool / f".{version}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a+") as handle:

            def acquired() -> Check[str]:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.seek(0)
                    return Check(False, f"held by pid {handle.read().strip() or '?'}")
                return Check(True, "acquired")

            if not acquired().ok:
                _log(f"{tool} {version}: another install is running ({path}); waiting for it to finish")
                try:
                    wait_for_condition(
                        acquired,
                        timeout=LOCK_TIMEOUT,
                        interval=2,
                        description=f"the install lock of {tool} {version}",
                        hint=f"if no install of {tool} is running, delete {path}",
                    )
                except WaitTimeout as exc:
                    raise ToolchainError(str(exc)) from None
            handle.seek(0)
            handle.truncate()
            handle.write(f"{os.getpid()}\n")
            handle.flush()
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _obtain(
        self, spec: ToolSpec, version: str, source: Source, go_src: Path | None
    ) -> Literal["downloaded", "built"]:
        if source in ("auto", "download") and go_src is None:
            try:
                self._install_download(spec, version)
                return "downloaded"
            except DownloadUnavailable as exc:
                if source == "download":
                    raise
                if not self.go:
                    raise ToolchainError(
                        f"{spec.name} {version}: the release download is not usable ({exc}) and `go` is not "
                        "on PATH for a source build. Either make the download reachable (and its checksum "
                        "pinned in versions.yaml) or install Go >= 1.24 and re-run."
                    ) from exc
                _log(f"{spec.name} {version}: {exc}; building from Go modules instead")
        if not self.go:
            raise ToolchainError(f"{spec.name} {version}: a source build needs `go` on PATH; install Go >= 1.24")
        self._install_source(spec, version, go_src)
        return "built"

    def _staging(self, spec: ToolSpec, version: str) -> Path:
        (self.cache / spec.name).mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=self.cache / spec.name))
        (staging / "bin").mkdir()
        return staging

    def _commit(self, spec: ToolSpec, version: str, staging: Path, record: dict[str, Any]) -> None:
        bindir = staging / "bin"
        for name in spec.binaries:
            binary = bindir / name
            if not binary.is_file():
                raise ToolchainError(f"{spec.name} {version}: the install produced no {name}")
            binary.chmod(0o755)
        record = {
            "tool": spec.name,
            "version": version,
            "pinned": self.pinned(spec.name),
            "platform": self.plat_key,
            "installed_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            **record,
            "binaries": {name: sha256_file(bindir / name) for name in spec.binaries},
        }
        (staging / PROVENANCE).write_text(json.dumps(record, indent=2) + "\n")
        target = self.tool_dir(spec.name, version)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)

    def expected_checksum(self, spec: ToolSpec, version: str) -> str | None:
        assert self.checksums is not None
        entry = (self.checksums.get(spec.download.checksum_tool or spec.name) or {}).get(version) or {}
        value = entry.get(self.plat_key) if isinstance(entry, dict) else None
        return str(value).lower() if value else None

    def _install_download(self, spec: ToolSpec, version: str) -> None:
        values = _template_vars(version, self.platform)
        url = _fill(spec.download.url, values)
        expected = self.expected_checksum(spec, version)
        if expected is None:
            raise DownloadUnavailable(
                f"versions.yaml has no checksums.{spec.download.checksum_tool or spec.name}.{version}."
                f"{self.plat_key}, so an unverified download of {url} is refused"
            )
        staging = self._staging(spec, version)
        try:
            artifact = staging / "artifact"
            _log(f"{spec.name} {version}: downloading {url} (connect timeout {CONNECT_TIMEOUT:g}s)")
            self.fetch(url, artifact)
            actual = sha256_file(artifact)
            if actual != expected:
                raise ChecksumMismatch(
                    f"{spec.name} {version}: {url} has sha256 {actual}, but versions.yaml pins {expected}; "
                    "the file was discarded. Check the pin and the download source."
                )
            if spec.download.members:
                self._extract(
                    artifact, {_fill(k, values): v for k, v in spec.download.members.items()}, staging / "bin"
                )
            else:
                shutil.copy2(artifact, staging / "bin" / spec.binaries[0])
            artifact.unlink()
            self._commit(spec, version, staging, {"origin": "download", "url": url, "sha256": actual})
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _extract(archive: Path, members: Mapping[str, str], dest: Path) -> None:
        with tarfile.open(archive) as tar:
            names = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
            for member, installed in members.items():
                info = names.get(member)
                if info is None:
                    raise ToolchainError(f"{archive.name} has no {member} (members: {', '.join(sorted(names))})")
                handle = tar.extractfile(info)
                assert handle is not None
                with handle, (dest / installed).open("wb") as out:
                    shutil.copyfileobj(handle, out)

    def _install_source(self, spec: ToolSpec, version: str, go_src: Path | None) -> None:
        staging = self._staging(spec, version)
        try:
            assert self.go_build is not None
            record = self.go_build(spec, version, staging / "bin", go_src)
            self._commit(spec, version, staging, {"origin": "source", **record})
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    # -- links
    def link(self, tool: str, version: str) -> None:
        spec = TOOLS[tool]
        bindir = self.tool_dir(tool, version) / "bin"
        for name in spec.binaries:
            _link_or_copy(bindir / name, self.bin_dir / name)
            if spec.pulumi_root:
                _link_or_copy(bindir / name, self.pulumi_root / "bin" / name)
        if spec.plugin:
            kind, plugin = spec.plugin
            folder = self.pulumi_home / "plugins" / f"{kind}-{plugin}-{version}"
            _link_or_copy(bindir / spec.binaries[0], folder / spec.binaries[0])
            folder.with_name(folder.name + ".partial").unlink(missing_ok=True)

    # -- status
    def status(self, tool: str, *, probe: bool = True) -> ToolStatus:
        pinned = self.pinned(tool)
        versions = self.installed_versions(tool)
        installed = pinned if pinned in versions else (versions[-1] if versions else None)
        if installed is None:
            return ToolStatus(tool, pinned, None, None, None, None)
        record = self.provenance(tool, installed) or {}
        binary = self.tool_dir(tool, installed) / "bin" / TOOLS[tool].binaries[0]
        reported = self.reported_version(tool, binary) if probe else None
        origin = record.get("origin")
        if origin == "source":
            origin = f"source build ({record.get('go_version', 'go ?')}, {record.get('installed_at', '?')})"
        return ToolStatus(tool, pinned, installed, origin, reported, binary)

    @staticmethod
    def reported_version(tool: str, binary: Path) -> str | None:
        """What the binary itself says its version is (providers: their gRPC ``GetPluginInfo``)."""
        if TOOLS[tool].plugin:
            return _plugin_info_version(binary)
        try:
            out = subprocess.run(
                [str(binary), *TOOLS[tool].version_args], capture_output=True, text=True, timeout=20, check=False
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        if out.returncode != 0:
            return None
        match = re.search(r"v?(\d+\.\d+\.\d+)", (out.stdout + out.stderr).replace(str(binary), ""))
        return f"v{match.group(1)}" if match else None

    # -- Go builds
    def _go_build(self, spec: ToolSpec, version: str, out: Path, go_src: Path | None) -> dict[str, Any]:
        from floe_build.gobuild import build

        assert self.go is not None
        return build(
            spec,
            version,
            out,
            go=self.go,
            go_src=go_src,
            values=_template_vars(version, self.platform),
            work=self.cache / "_build",
            log=_log,
        )


def _plugin_info_version(binary: Path, timeout: float = 20) -> str | None:
    """Start a provider plugin, ask its ``GetPluginInfo`` over gRPC (as the engine does), stop it."""
    try:
        import grpc
        from google.protobuf import empty_pb2
        from pulumi.runtime.proto import provider_pb2_grpc
    except ImportError:
        return None
    try:
        proc = subprocess.Popen([str(binary)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            return None
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = provider_pb2_grpc.ResourceProviderStub(channel).GetPluginInfo(empty_pb2.Empty(), timeout=timeout)
        return f"v{info.version.removeprefix('v')}" if info.version else None
    except Exception:  # any failure to talk to it means "unknown", never a crash of status
        return None
    finally:
        proc.kill()
        proc.wait()


def pulumi_env(toolchain: Toolchain | None = None, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the real engine offline: our binaries first, the cached plugin folder, no
    plugin downloads, no update checks."""
    chain = toolchain or Toolchain()
    env = dict(os.environ if base is None else base)
    # The pinned kind/kubectl/helm too, so the commands we print for debugging use the same versions;
    # and a uv: Pulumi.yaml's uv toolchain looks for it on PATH (`make setup` installs a private one
    # when the machine has none; found here, `pulumi up` would fail with "Could not find `uv`").
    path = [str(chain.pulumi_root / "bin"), str(chain.bin_dir), env.get("PATH", "")]
    if shutil.which("uv", path=env.get("PATH", "")) is None and (PRIVATE_UV_DIR / "uv").is_file():
        path.insert(2, str(PRIVATE_UV_DIR))
    env["PATH"] = os.pathsep.join(path)
    env["PULUMI_HOME"] = str(chain.pulumi_home)
    # Providers come from the pinned plugin folder only, never from whatever is on PATH.
    env["PULUMI_IGNORE_AMBIENT_PLUGINS"] = "true"
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    env["PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION"] = "true"
    return env


# --------------------------------------------------------------------------------------------- CLI
def _select(names: Sequence[str] | None) -> list[str]:
    unknown = [n for n in names or () if n not in TOOLS]
    if unknown:
        raise SystemExit(f"unknown tool(s) {', '.join(unknown)}; choose from {', '.join(TOOLS)}")
    return list(names or TOOLS)


def install_all(
    toolchain: Toolchain,
    tools: Iterable[str],
    source: Source = "auto",
    version: str | None = None,
    go_src: Path | None = None,
    force: bool = False,
) -> tuple[list[InstallResult], list[str]]:
    """Install each tool, carrying on after a failure; returns the results and one error line per failure."""
    results: list[InstallResult] = []
    errors: list[str] = []
    for tool in tools:
        try:
            result = toolchain.install(tool, source=source, version=version, go_src=go_src, force=force)
        except ToolchainError as exc:
            errors.append(f"{tool}: {exc}")
            _log(f"FAILED {tool}: {exc}")
            continue
        results.append(result)
        _log(f"{tool} {result.version}: {result.action} in {result.seconds:.1f}s -> {result.path}")
    return results, errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m floe_build.toolchain", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    inst = sub.add_parser("install", help="install the pinned tools (a no-op when cached)")
    inst.add_argument("--tool", action="append", choices=list(TOOLS), help="only this tool (repeatable)")
    inst.add_argument("--from", dest="source", choices=("auto", "download", "source"), default="auto")
    inst.add_argument("--version", help="an off-pin version (source builds; reported as a mismatch)")
    inst.add_argument(
        "--go-src", type=Path, help="a local checkout of the upstream repository to build from (not the module proxy)"
    )
    inst.add_argument("--force", action="store_true", help="reinstall even when cached")
    stat = sub.add_parser("status", help="each tool: pinned, installed, origin, reported version")
    stat.add_argument("--json", action="store_true")
    sub.add_parser("env", help="shell exports for the offline Pulumi engine")
    args = parser.parse_args(argv)
    chain = Toolchain()

    if args.command == "install":
        tools = _select(args.tool)
        if (args.version or args.go_src) and len(tools) != 1:
            parser.error("--version and --go-src need exactly one --tool")
        _, errors = install_all(chain, tools, args.source, args.version, args.go_src, args.force)
        if errors:
            print("\n".join(["tool installation failed:", *errors]), file=sys.stderr)
            return 1
        return 0
    if args.command == "status":
        rows = [chain.status(tool) for tool in TOOLS]
        if args.json:
            print(json.dumps([row.as_dict() for row in rows], indent=2))
        else:
            print(f"cache: {chain.cache}")
            for row in rows:
                flag = "ok" if row.matches_pin else ("MISSING" if row.installed is None else "MISMATCH")
                print(
                    f"{row.tool:28} pin {row.pinned:9} installed {row.installed or '-':9} "
                    f"reports {row.reported or '-':9} {flag:8} {row.origin or ''}"
                )
        return 0 if all(row.matches_pin for row in rows) else 1
    env = pulumi_env(chain)
    for key in (
        "PATH",
        "PULUMI_HOME",
        "PULUMI_SKIP_UPDATE_CHECK",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION",
        "PULUMI_IGNORE_AMBIENT_PLUGINS",
    ):
        print(f"export {key}={env[key]!s}")
    return 0


if __name__ == "__main__":
    # Run the importable module, not this __main__ copy, so every caller shares one set of classes.
    from floe_build import toolchain as _toolchain
    from floe_test._private.entry import module_main

    raise SystemExit(module_main(_toolchain.main, "python -m floe_build.toolchain"))
