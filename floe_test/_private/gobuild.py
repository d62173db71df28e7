"""Source builds of the pinned tools from Go modules (the recipes in ``tools/gobuild/<tool>/``).

Everything is fetched through the Go module proxy (``GOPROXY``), or taken from a local checkout of the
upstream repository (``--go-src``) for machines whose proxy does not serve a module. Builds run under
``nice -n 10`` with ``GOFLAGS=-mod=mod`` and ``-trimpath``, in ``<cache>/_build/<tool>-<version>/``; the
recipes in the repository are never modified.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from floe_test.toolchain import ToolSpec

from floe_test._private.toolchain_errors import ToolchainError
from floe_test.paths import REPO_ROOT

RECIPES = REPO_ROOT / "tools" / "gobuild"
#: Upper bound of one go command (a cold Pulumi CLI build on 2 cores takes ~15 min).
STEP_TIMEOUT = float(os.environ.get("FLOE_TOOLS_BUILD_TIMEOUT", "3600"))


def _error(message: str) -> Exception:
    return ToolchainError(message)


def _du_kb(path: str) -> int:
    try:
        out = subprocess.run(["du", "-sk", path], capture_output=True, text=True, timeout=300, check=False)
        return int(out.stdout.split()[0])
    except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
        return 0


def _make_writable(root: Path) -> None:
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, os.stat(dirpath).st_mode | stat.S_IWUSR)
        for name in files:
            path = os.path.join(dirpath, name)
            os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)


def _pseudo_placeholder(module: str) -> str:
    """A version to require a module that a replace directive points at a directory."""
    major = re.search(r"/v(\d+)$", module)
    return f"v{major.group(1) if major else 0}.0.0-00010101000000-000000000000"


class _Runner:
    def __init__(self, go: str, env: Mapping[str, str], logfile: Path, log: Callable[[str], None]) -> None:
        self.go, self.env, self.logfile, self.log = go, dict(env), logfile, log

    def __call__(
        self,
        args: Sequence[str],
        cwd: Path,
        *,
        what: str,
        mod_flags: bool = True,
        capture: bool = False,
        extra_env: Mapping[str, str] | None = None,
    ) -> str:
        env = {**self.env, **(extra_env or {})}
        if not mod_flags:  # `go get` / `go mod edit` refuse -mod=mod
            env.pop("GOFLAGS", None)
        argv = ["nice", "-n", "10", *args] if args[0] == self.go else list(args)
        with self.logfile.open("a") as log:
            log.write(f"\n$ (cd {cwd} && {' '.join(argv)})\n")
            log.flush()
            try:
                proc = subprocess.run(
                    argv,
                    cwd=cwd,
                    env=env,
                    text=True,
                    timeout=STEP_TIMEOUT,
                    check=False,
                    stdout=subprocess.PIPE if capture else log,
                    stderr=log,
                )
            except subprocess.TimeoutExpired as exc:
                raise _error(f"{what}: still running after {STEP_TIMEOUT:.0f}s; see {self.logfile}") from exc
        if proc.returncode != 0:
            tail = self.logfile.read_text().splitlines()[-12:]
            hint = ""
            if any("403 Forbidden" in line or "404 Not Found" in line for line in tail):
                hint = (
                    "\n  The Go module proxy (GOPROXY) does not serve a module this build needs: "
                    "point GOPROXY "
                    "at one that does, or build from a local checkout of the upstream repository "
                    "(--go-src)."
                )
            raise _error(
                f"{what} failed (exit {proc.returncode}); last lines of {self.logfile}:\n    "
                + "\n    ".join(tail)
                + hint
            )
        return proc.stdout or ""


def _commit_for(tool: str, version: str) -> tuple[str, str]:
    data = json.loads((RECIPES / tool / "source.json").read_text())
    commit = (data.get("commits") or {}).get(version)
    if not commit:
        raise _error(
            f"tools/gobuild/{tool}/source.json records no commit for {data['module']} at {version} "
            "(the module has no version tags, so it is built by commit). Add the commit of upstream tag "
            f"{version} there, or build from a local checkout: --tool {tool} --go-src <checkout>"
        )
    return data["module"], commit


def build(
    spec: ToolSpec,
    version: str,
    out: Path,
    *,
    go: str,
    go_src: Path | None,
    values: Mapping[str, str],
    work: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Build ``spec`` at ``version`` into ``out``; returns provenance (go version, timings, modules)."""
    recipe = spec.recipe

    def fill(template: str) -> str:
        return template.format(**values)

    work.mkdir(parents=True, exist_ok=True)
    build_dir = work / f"{spec.name}-{version}"
    shutil.rmtree(build_dir, ignore_errors=True)
    build_dir.mkdir()
    logfile = work / f"{spec.name}-{version}.log"
    logfile.write_text("")
    env = {**os.environ, "GOFLAGS": "-mod=mod", **{k: fill(v) for k, v in recipe.env.items()}}
    run = _Runner(go, env, logfile, log)
    go_version = run([go, "env", "GOVERSION"], build_dir, what="go env", capture=True).strip()
    modcache = run([go, "env", "GOMODCACHE"], build_dir, what="go env", capture=True).strip()
    before = _du_kb(modcache)
    started = time.monotonic()
    record: dict[str, Any] = {"go_version": go_version, "recipe": f"tools/gobuild/{spec.name}"}
    flags = ["-trimpath"]
    if recipe.tags:
        flags += ["-tags", recipe.tags]
    if recipe.ldflags:
        flags += ["-ldflags", " ".join(fill(f) for f in recipe.ldflags)]
    log(f"{spec.name} {version}: building from Go modules ({go_version}); log: {logfile}")

    if recipe.mode == "install":
        target = fill(recipe.package)
        if go_src is not None:
            raise _error(f"{spec.name}: --go-src is not supported for `go install` recipes; drop it")
        # `go install module@version` builds with the module's own go.mod (GOFLAGS=-mod=mod is refused there).
        run(
            [go, "install", *flags, target],
            build_dir,
            what=f"go install {target}",
            mod_flags=False,
            extra_env={"GOBIN": str(out)},
        )
        record["module"] = target
    elif recipe.mode == "module":
        for item in (RECIPES / spec.name).iterdir():
            if item.suffix in (".mod", ".sum", ".go"):
                shutil.copy2(item, build_dir / item.name)
        edits = [f"-require={module}@{fill(v)}" for module, v in recipe.requires]
        if recipe.by_commit:
            if go_src is not None:
                local = (go_src / recipe.repo_subdir).resolve()
                if not (local / "go.mod").is_file():
                    raise _error(f"{spec.name}: --go-src {go_src} has no {recipe.repo_subdir}/go.mod")
                edits += [
                    f"-replace={recipe.by_commit}={local}",
                    f"-require={recipe.by_commit}@{_pseudo_placeholder(recipe.by_commit)}",
                ]
                record["go_src"] = str(go_src)
                # The checkout's go.sum carries upstream's recorded hashes of its dependencies: Go verifies
                # against them instead of asking the checksum database (which a mirror may not serve).
                upstream_sum = local / "go.sum"
                if upstream_sum.is_file():
                    with (build_dir / "go.sum").open("a") as sums:
                        sums.write(upstream_sum.read_text())
            else:
                record["commit"] = _commit_for(spec.name, version)[1]
        if edits:
            run([go, "mod", "edit", *edits], build_dir, what="go mod edit", mod_flags=False)
        if recipe.by_commit and go_src is None:
            run(
                [go, "get", f"{recipe.by_commit}@{record['commit']}"],
                build_dir,
                what=f"go get {recipe.by_commit}@{record['commit']}",
                mod_flags=False,
            )
        run(
            [go, "build", *flags, "-o", str(out / spec.binaries[0]), fill(recipe.package)],
            build_dir,
            what=f"go build {fill(recipe.package)}",
        )
        for module, rel, name in recipe.extra_files:
            moddir = run(
                [go, "list", "-m", "-f", "{{.Dir}}", module], build_dir, what=f"go list {module}", capture=True
            ).strip()
            try:
                shutil.copy2(Path(moddir) / rel, out / name)
            except OSError as exc:
                raise _error(f"{spec.name}: {module} has no {rel} to install next to the binary: {exc}") from exc
        record["requires"] = {m: fill(v) for m, v in recipe.requires}
    else:  # upstream: lay the repo's module directories out as siblings and build the first one in place
        if go_src is not None:
            for directory, _module in recipe.siblings:
                shutil.copytree(go_src / directory, build_dir / directory, symlinks=True)
            record["go_src"] = str(go_src)
        else:
            _module, commit = _commit_for(spec.name, version)
            record["commit"] = commit
            for directory, module in recipe.siblings:
                info = json.loads(
                    run(
                        [go, "mod", "download", "-json", f"{module}@{commit}"],
                        build_dir,
                        what=f"go mod download {module}@{commit}",
                        mod_flags=False,
                        capture=True,
                    )
                )
                shutil.copytree(info["Dir"], build_dir / directory, symlinks=True)
        _make_writable(build_dir)
        module_dir = build_dir / recipe.siblings[0][0]
        for command in recipe.generate:
            argv = [go if part == "go" else part for part in command]
            run(argv, module_dir, what=" ".join(command))
        run(
            [go, "build", *flags, "-o", str(out / spec.binaries[0]), fill(recipe.package)],
            module_dir,
            what=f"go build {fill(recipe.package)}",
        )
    record["build_seconds"] = round(time.monotonic() - started, 1)
    record["modcache_kb_added"] = max(0, _du_kb(modcache) - before)
    log(
        f"{spec.name} {version}: built in {record['build_seconds']:.0f}s, module cache +"
        f"{record['modcache_kb_added'] / 1024:.0f} MiB"
    )
    shutil.rmtree(build_dir, ignore_errors=True)
    return record
