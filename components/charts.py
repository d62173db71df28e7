"""The chart cache: every pinned upstream chart as a local archive, the same in every mode.

The Pulumi program never fetches a chart itself: it deploys an archive this module found, so a machine
with a chart repository and one without deploy the very same chart, and a missing chart is named before
anything is created. For ``charts.<key>`` of versions.yaml the archive ``<name>-<version>.tgz`` comes from:

1. the cache folder (setting ``chartCacheDir``, default ``~/.cache/floe-testinfra/charts``), filled by
2. ``helm pull`` from the chart's repository, where it is reachable (never with ``offlineCharts=true``);
3. otherwise the offline chart repository: ``$FLOE_OFFLINE_CHARTS``, else ``../shared/charts`` beside the
   checkout: a folder with the ``index.yaml`` of ``helm repo index``, whose entry for the version names
   the archive and its sha256, checked before use (the folder is only read, never written).

Neither: :class:`ChartUnavailable`, naming the chart, every source tried with why it failed, and what
to do.

Schema validation: Helm validates values against a chart's ``values.schema.json`` and loads every
remote ``$ref`` in it over HTTP. Dagster's chart refers to a Kubernetes JSON schema on
raw.githubusercontent.com; where that cannot be read, every install of the chart fails. Only then,
and saying so, the release deploys a copy of the archive without those schema files (what
``helm --skip-schema-validation`` does: pulumi-kubernetes' Release has no such option); templates and
values are untouched, so the objects are the chart's own. The contract tests still check the values
against the chart's schema offline (``floe_test.contract``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from floe_model.files import sha256_file
from floe_model.paths import BIN_DIR, REPO_ROOT
from floe_model.versions import ChartPin
from testing.errors import ConfigError, ConfigProblem

#: Environment variable naming another offline chart repository folder.
OFFLINE_REPO_ENV = "FLOE_OFFLINE_CHARTS"
#: Where the project's machines keep it: the work folder's shared/ beside the checkout.
DEFAULT_OFFLINE_REPO = REPO_ROOT.parent / "shared" / "charts"
#: Bound on one ``helm pull`` (a reachable repository answers in seconds; an unreachable one fails fast
#: where DNS fails, and within this bound where a proxy or firewall drops the connection).
PULL_TIMEOUT = 120.0
#: Bound on reading one remote ``$ref`` of a chart's values schema.
REF_TIMEOUT = 5.0
SCHEMA_FILE = "values.schema.json"

Source = Literal["cache", "pulled", "offline repository"]


def default_cache_dir() -> Path:
    """``$FLOE_CACHE/charts`` or ``~/.cache/floe-testinfra/charts``: outside the repository."""
    return Path(os.environ.get("FLOE_CACHE") or Path.home() / ".cache" / "floe-testinfra") / "charts"


def offline_repo(environ: Mapping[str, str] | None = None) -> Path:
    """The offline chart repository folder: ``$FLOE_OFFLINE_CHARTS``, else ``../shared/charts``."""
    env = os.environ if environ is None else environ
    return Path(env[OFFLINE_REPO_ENV]) if env.get(OFFLINE_REPO_ENV) else DEFAULT_OFFLINE_REPO


@dataclass(frozen=True)
class ChartArchive:
    """A pinned chart as a local archive, and what a release deploys of it."""

    pin: ChartPin
    archive: Path
    """The chart's own archive (as pulled, or as the offline repository holds it)."""
    source: Source
    unreadable_refs: tuple[str, ...] = ()
    """Remote ``$ref``s of its values schemas that could not be read here (schema validation skipped)."""
    deploy: Path | None = None
    """What the release deploys: ``archive``, or its copy without the schema files when refs are unreadable."""

    @property
    def schema_validation(self) -> str:
        """``on``, or why it is skipped (for logs, the render and the contract tests)."""
        if not self.unreadable_refs:
            return "on"
        return (
            f"skipped: {SCHEMA_FILE} refers to {', '.join(self.unreadable_refs)}, "
            "which cannot be read here (the release deploys the chart without its schema files)"
        )

    @property
    def deployed(self) -> Path:
        return self.deploy or self.archive


class ChartUnavailable(ConfigError):
    """No source could provide a pinned chart; the message lists each source tried and why it failed."""


@dataclass
class ChartCache:
    """Finds (and, where a repository is reachable, pulls) each pinned chart; one instance per plan."""

    cache_dir: Path = field(default_factory=default_cache_dir)
    offline_dir: Path = field(default_factory=offline_repo)
    allow_pull: bool = True
    """False (``offlineCharts=true``): never reach for a chart repository."""
    helm: Path | None = None
    """The helm binary for ``helm pull`` (default: the pinned one, see :func:`pinned_helm`)."""

    def get(self, key: str, pin: ChartPin) -> ChartArchive:
        return _resolve(self.cache_dir, self.offline_dir, self.allow_pull, self.helm, key, pin)


@cache
def _resolve(
    cache_dir: Path, offline_dir: Path, allow_pull: bool, helm: Path | None, key: str, pin: ChartPin
) -> ChartArchive:
    """Memoised per process: the contract tests render the stacks many times."""
    filename = f"{pin.name}-{pin.version}.tgz"
    tried: list[str] = []
    found: tuple[Path, Source] | None = None
    cached = cache_dir / filename
    if cached.is_file():
        found = (cached, "cache")
    if found is None and allow_pull:
        pulled, why = _pull(pin, cache_dir, helm)
        if pulled is not None:
            found = (pulled, "pulled")
        else:
            tried.append(f"helm pull {pin.name} --repo {pin.repo} --version {pin.version}: {why}")
    elif found is None:
        tried.append("helm pull: not tried (offlineCharts=true)")
    if found is None:
        offline, why = _from_offline_repo(pin, offline_dir)
        if offline is not None:
            found = (offline, "offline repository")
        else:
            tried.append(f"offline chart repository {offline_dir}: {why}")
    if found is None:
        raise ChartUnavailable(
            [
                ConfigProblem(
                    "chart cache",
                    f"charts.{key}",
                    f"chart {pin.name} {pin.version} is not in {cache_dir} and no source could provide it ("
                    + "; ".join(tried)
                    + "). Next: run where the repository is reachable, or put the archive into "
                    f"{cache_dir} (`helm pull {pin.name} --repo {pin.repo} --version {pin.version} -d {cache_dir}`), "
                    f"or point ${OFFLINE_REPO_ENV} at an offline chart repository that holds it",
                )
            ]
        )
    archive, source = found
    try:
        refs = remote_schema_refs(archive)
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise ChartUnavailable(
            [
                ConfigProblem(
                    "chart cache", f"charts.{key}", f"{archive} is not a readable chart archive ({exc}): delete it"
                )
            ]
        ) from None
    unreadable = tuple(ref for ref in refs if not _readable(ref))
    deploy = _without_schemas(archive, cache_dir) if unreadable else None
    result = ChartArchive(pin, archive, source, unreadable, deploy)
    if unreadable:
        print(
            f"[charts] {pin.name} {pin.version}: schema validation {result.schema_validation}",
            file=sys.stderr,
            flush=True,
        )
    return result


def pinned_helm() -> Path | None:
    """The pinned helm: ``bin/helm`` after ``make tools``, else the tool cache's copy; None when absent."""
    if (BIN_DIR / "helm").is_file():
        return BIN_DIR / "helm"
    from floe_build.toolchain import Toolchain

    chain = Toolchain()
    candidate = chain.tool_dir("helm", chain.pinned("helm")) / "bin" / "helm"
    return candidate if candidate.is_file() else None


def _pull(pin: ChartPin, cache_dir: Path, helm: Path | None) -> tuple[Path | None, str]:
    helm = helm or pinned_helm()
    if helm is None:
        return None, "the pinned helm is not installed (make tools)"
    with tempfile.TemporaryDirectory(prefix="floe-helm-pull-") as tmp:
        argv = [str(helm), "pull", pin.name, "--repo", pin.repo, "--version", pin.version, "-d", tmp]
        # A throw-away helm home: a pull must not read or write the user's repositories and caches.
        env = {**os.environ, **{v: str(Path(tmp) / v.lower()) for v in ("HELM_CACHE_HOME", "HELM_CONFIG_HOME")}}
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=PULL_TIMEOUT, check=False, env=env)
        except subprocess.TimeoutExpired:
            return None, f"no answer within {PULL_TIMEOUT:.0f}s"
        pulled = Path(tmp) / f"{pin.name}-{pin.version}.tgz"
        if proc.returncode != 0 or not pulled.is_file():
            lines = (proc.stderr or proc.stdout).strip().splitlines()
            return None, (lines[-1] if lines else f"exit code {proc.returncode}")
        cache_dir.mkdir(parents=True, exist_ok=True)
        target = cache_dir / pulled.name
        # Rename within the cache folder, so a concurrent reader never sees half an archive.
        partial = cache_dir / f".{pulled.name}.partial-{os.getpid()}"
        partial.write_bytes(pulled.read_bytes())
        partial.replace(target)
        return target, ""


def _from_offline_repo(pin: ChartPin, repo: Path) -> tuple[Path | None, str]:
    index_file = repo / "index.yaml"
    if not index_file.is_file():
        return None, "no index.yaml there" if repo.is_dir() else "no such folder"
    index = yaml.safe_load(index_file.read_text()) or {}
    entries = (index.get("entries") or {}).get(pin.name) or []
    entry = next((e for e in entries if str(e.get("version")) == pin.version), None)
    if entry is None:
        held = ", ".join(sorted(str(e.get("version")) for e in entries)) or "none"
        return None, f"index.yaml has no {pin.name} {pin.version} (versions there: {held})"
    urls = entry.get("urls") or []
    if not urls or "://" in str(urls[0]):
        return None, f"index.yaml's entry for {pin.name} {pin.version} names no archive in the folder ({urls})"
    archive = (repo / str(urls[0])).resolve()
    if not archive.is_file():
        return None, f"index.yaml names {urls[0]}, which is not there"
    digest = str(entry.get("digest") or "")
    actual = sha256_file(archive)
    if digest != actual:
        return None, f"{archive.name} has sha256 {actual}, index.yaml says {digest or 'nothing'}: not used"
    return archive, ""


def _schema_files(archive: Path) -> Iterator[tuple[str, bytes]]:
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.rsplit("/", 1)[-1] == SCHEMA_FILE:
                handle = tar.extractfile(member)
                if handle is not None:
                    yield member.name, handle.read()


def remote_schema_refs(archive: Path) -> tuple[str, ...]:
    """The distinct documents (URL without fragment) that the archive's values schemas load over HTTP."""
    found: dict[str, None] = {}
    for _name, data in _schema_files(archive):
        for ref in _refs(json.loads(data)):
            if ref.startswith(("http://", "https://")):
                found[ref.split("#", 1)[0]] = None
    return tuple(found)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@cache
def _readable(url: str) -> bool:
    """Whether Helm could load ``url`` here (proxies from the environment, as Helm's loader uses them)."""
    request = urllib.request.Request(url, method="GET", headers={"User-Agent": "floe-testinfra"})
    try:
        with urllib.request.urlopen(request, timeout=REF_TIMEOUT) as response:
            return bool(response.status == 200)
    except (OSError, ValueError):
        return False


def _without_schemas(archive: Path, cache_dir: Path) -> Path:
    """A copy of ``archive`` without its values.schema.json files, named by the source's digest."""
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()[:12]
    target = cache_dir / "without-schema" / f"{archive.stem}-{digest}.tgz"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    with tarfile.open(archive, "r:gz") as src, tarfile.open(fileobj=buffer, mode="w:gz") as dst:
        for member in src.getmembers():
            if member.name.rsplit("/", 1)[-1] == SCHEMA_FILE:
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    partial.write_bytes(buffer.getvalue())
    partial.replace(target)
    return target
