"""Upstream source archives: what a Go build uses when the module proxy refuses a module pinned by commit.

The Go module proxy's answers change from day to day (on 2026-12-03 it refused, with 403, the three
Pulumi plugins this project builds by commit). A folder of upstream source archives keeps those builds
possible: ``$FLOE_UPSTREAM_SRC``, else ``../shared/upstream-src`` beside the repository. It holds one
``<tool>.tar.gz`` per tool (or the folder it unpacks to), unpacking to one folder named like the
archive, in one of two formats:

* a plain source tree laid out like the upstream repository, with ``SOURCE.json`` recording
  ``repository``, ``commit``, ``tag``, ``subtree`` and ``subtree_git_tree`` (the git tree hash of that
  subtree at the commit, tests included);
* a bare git repository holding the pinned commit (a shallow, partial mirror is enough).

Nothing is trusted on the archive's word alone. Before a build, :func:`materialize` checks the source
against the recipe's pin in ``floe_build/tools/gobuild/<tool>/source.json`` (``commits``, ``trees`` and, for plain
trees, ``content``: a digest of the files it must hold), then writes one repository-shaped folder the
build reads, whatever the archive's format. Every check and its result goes into the tool's provenance.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from floe_build.errors import ToolchainError
from floe_model.files import sha256_file
from floe_model.paths import REPO_ROOT

ENV_VAR = "FLOE_UPSTREAM_SRC"
#: Where the project's machines keep the archives (the work folder's shared/ beside the checkout).
DEFAULT_ROOT = REPO_ROOT.parent / "shared" / "upstream-src"
SOURCE_JSON = "SOURCE.json"
GIT_TIMEOUT = 600


class SourceMismatch(ToolchainError):
    """The archive is not the source the recipe pins (another commit, tree or content): never built."""


def source_root(environ: Mapping[str, str] | None = None) -> Path:
    """The archive folder: ``$FLOE_UPSTREAM_SRC``, else ``../shared/upstream-src`` beside the repository."""
    env = os.environ if environ is None else environ
    return Path(env[ENV_VAR]) if env.get(ENV_VAR) else DEFAULT_ROOT


def find_archive(tool: str, root: Path) -> Path | None:
    """``<root>/<tool>.tar.gz``, or ``<root>/<tool>/`` already unpacked; ``None`` when neither exists."""
    for candidate in (root / f"{tool}.tar.gz", root / tool):
        if candidate.is_file() or candidate.is_dir():
            return candidate
    return None


def is_git_dir(path: Path) -> bool:
    """A bare repository (``HEAD`` + ``objects/``) or a work tree with ``.git``."""
    return ((path / "HEAD").is_file() and (path / "objects").is_dir()) or (path / ".git").exists()


def git(git_dir: Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True) -> str:
    proc = subprocess.run(
        ["git", f"--git-dir={git_dir}", *args],
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
        env={**os.environ, **(env or {})},
    )
    if check and proc.returncode != 0:
        raise ToolchainError(f"git {' '.join(args[:3])} in {git_dir} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def export_git(git_dir: Path, commit: str, paths: Sequence[str], dest: Path) -> list[str]:
    """Write ``paths`` of ``commit`` from ``git_dir`` into ``dest``; returns the files whose blobs the
    repository lacks (a partial mirror), which are left out. Uses a temporary index: the repository is
    only read."""
    git_dir = git_dir / ".git" if (git_dir / ".git").is_dir() else git_dir
    resolved = git(git_dir, "rev-parse", "--verify", f"{commit}^{{commit}}").strip()
    listing = git(git_dir, "ls-tree", "-r", "--full-tree", resolved, "--", *paths)
    blobs: list[tuple[str, str]] = []
    for line in listing.splitlines():
        meta, _, name = line.partition("\t")
        _mode, kind, sha = meta.split()
        if kind == "blob":
            blobs.append((sha, name))
    if not blobs:
        raise ToolchainError(f"{git_dir} has no files under {', '.join(paths)} at {commit}")
    check = subprocess.run(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch-check"],
        input="".join(f"{sha}\n" for sha, _ in blobs),
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT,
        check=False,
    )
    missing = [
        name for (sha, name), line in zip(blobs, check.stdout.splitlines(), strict=False) if line.endswith(" missing")
    ]
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="floe-git-index-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(git_dir, "read-tree", resolved, env=env)
        absent = set(missing)
        present = [name for _, name in blobs if name not in absent]
        for start in range(0, len(present), 500):
            git(
                git_dir,
                f"--work-tree={dest}",
                "checkout-index",
                "--force",
                f"--prefix={dest}/",
                "--",
                *present[start : start + 500],
                env=env,
            )
    return missing


def content_digest(tree: Path) -> str:
    """sha256 over every file below ``tree``: its relative path, whether it is executable, its sha256.

    What a plain-tree archive holds is pinned by this digest (its ``subtree_git_tree`` describes the
    upstream subtree with its tests, which the archive leaves out, so it cannot be recomputed here)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in tree.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(tree).as_posix()
        body = os.readlink(path).encode() if path.is_symlink() else None
        kind = "l" if body is not None else ("x" if os.access(path, os.X_OK) else "-")
        file_hash = hashlib.sha256(body).hexdigest() if body is not None else sha256_file(path)
        digest.update(f"{kind} {file_hash} {rel}\n".encode())
    return digest.hexdigest()


def _unpack(archive: Path, into: Path) -> Path:
    """The archive's one top folder, unpacked below ``into`` (a folder archive is used in place)."""
    if archive.is_dir():
        return archive
    try:
        with tarfile.open(archive) as tar:
            # The "data" filter refuses absolute paths, links out of the tree and device files.
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ToolchainError(f"cannot unpack {archive}: {exc}") from exc
    tops = [p for p in into.iterdir()]
    if len(tops) != 1 or not tops[0].is_dir():
        raise ToolchainError(f"{archive} must unpack to one folder; it holds {sorted(p.name for p in tops)}")
    return tops[0]


def _expect(what: str, archive: Path, found: object, pinned: object, tool: str) -> None:
    if found != pinned:
        raise SourceMismatch(
            f"{tool}: {archive} holds {what} {found}, but floe_build/tools/gobuild/{tool}/source.json pins {pinned}; "
            "it is not built. Use an archive of the pinned source, or move the pin (and say why)."
        )


def materialize(
    tool: str,
    version: str,
    archive: Path,
    dest: Path,
    *,
    pins: Mapping[str, Any],
    subdirs: Sequence[str],
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Check ``archive`` against the recipe's pins for ``version`` and write the repository-shaped
    source of ``subdirs`` into ``dest``; returns the provenance record of what was verified.

    ``pins`` is the recipe's ``source.json`` (``commits``, ``trees``, ``content`` per version)."""
    commit = (pins.get("commits") or {}).get(version)
    tree_pin = (pins.get("trees") or {}).get(version)
    if not commit or not tree_pin:
        raise ToolchainError(
            f"floe_build/tools/gobuild/{tool}/source.json pins no commit and tree for {version}: the source archive "
            f"{archive} cannot be checked, so it is not used"
        )
    record: dict[str, Any] = {"archive": str(archive), "commit": commit}
    if archive.is_file():
        record["archive_sha256"] = sha256_file(archive)
    with tempfile.TemporaryDirectory(prefix=f"floe-src-{tool}-", dir=dest.parent) as tmp:
        top = _unpack(archive, Path(tmp))
        if is_git_dir(top):
            record["format"] = "git"
            head = git(top, "rev-parse", "--verify", "HEAD^{commit}").strip()
            _expect("commit", archive, head, commit, tool)
            for subdir in subdirs:
                found = git(top, "rev-parse", "--verify", f"{commit}:{subdir}").strip()
                if subdir == subdirs[0]:
                    _expect(f"a {subdir}/ tree", archive, found, tree_pin, tool)
                record.setdefault("trees", {})[subdir] = found
            missing = export_git(top, commit, subdirs, dest)
            if missing:
                record["missing_in_archive"] = len(missing)
                (dest.parent / f"{dest.name}.missing.txt").write_text("\n".join(missing) + "\n")
                shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                log(
                    f"  {archive.name} holds no content for {len(missing)} file(s) at {commit[:12]} "
                    f"({shown}; list: {dest.parent / f'{dest.name}.missing.txt'}): the recipe regenerates what it needs"
                )
        else:
            record["format"] = "tree"
            meta_path = top / SOURCE_JSON
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError) as exc:
                raise ToolchainError(f"{archive}: a plain source tree needs a readable {SOURCE_JSON} ({exc})") from exc
            _expect("commit", archive, meta.get("commit"), commit, tool)
            subtree = str(meta.get("subtree", ""))
            _expect("subtree", archive, subtree, subdirs[0], tool)
            _expect(f"a {subtree}/ git tree", archive, meta.get("subtree_git_tree"), tree_pin, tool)
            digest = content_digest(top / subtree)
            content_pin = (pins.get("content") or {}).get(version)
            if content_pin is None:
                raise ToolchainError(
                    f"floe_build/tools/gobuild/{tool}/source.json pins no content digest for {version}; "
                    f"{archive} holds "
                    f"{digest}: record it there (content.{version}) once you trust the archive"
                )
            _expect("content digest", archive, digest, content_pin, tool)
            record |= {"tag": meta.get("tag"), "repository": meta.get("repository"), "content_digest": digest}
            record["trees"] = {subtree: meta.get("subtree_git_tree")}
            shutil.rmtree(dest, ignore_errors=True)
            shutil.copytree(top, dest, symlinks=True, ignore=shutil.ignore_patterns(SOURCE_JSON))
    record["verified"] = ["commit", "tree"] + (["content"] if record["format"] == "tree" else [])
    return record
