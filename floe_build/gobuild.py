"""Source builds of the pinned tools from Go modules (the recipes in ``floe_build/tools/gobuild/<tool>/``).

Everything is fetched through the Go module proxy (``GOPROXY``), or taken from a local checkout of the
upstream repository (``--go-src``) for machines whose proxy does not serve a module. Builds run under
``nice -n 10`` with ``GOFLAGS=-mod=mod`` and ``-trimpath``, in ``<cache>/_build/<tool>-<version>/``; the
recipes in the repository are never modified.

``--go-src`` may also be a git repository (a bare mirror): the commit recorded for the version in
``source.json`` is exported from it into the build directory (never into the repository). A mirror with
blobs left out (a partial clone) yields a checkout without those files; the recipe's prepare step has to
regenerate them (pulumi-resource-kubernetes: its schema and one Go SDK file), or the build fails on them.
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
    from floe_build.toolchain import ToolSpec

from floe_build.errors import ToolchainError
from floe_build.recipes import GOBUILD_DIR
from floe_build.upstream_src import export_git, find_archive, is_git_dir, materialize, source_root
from floe_model.files import sha256_file

RECIPES = GOBUILD_DIR
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


def _source_json(tool: str) -> dict[str, Any]:
    data = json.loads((RECIPES / tool / "source.json").read_text())
    return data if isinstance(data, dict) else {}


def _commit_for(tool: str, version: str) -> tuple[str, str]:
    data = _source_json(tool)
    commit = (data.get("commits") or {}).get(version)
    if not commit:
        raise _error(
            f"floe_build/tools/gobuild/{tool}/source.json records no commit for {data['module']} at {version} "
            "(the module has no version tags, so it is built by commit). Add the commit of upstream tag "
            f"{version} there, or build from a local checkout: --tool {tool} --go-src <checkout>"
        )
    return data["module"], commit


def _substitute_refused(
    run: _Runner, go: str, module_dir: Path, scratch: Path, substitutes: Mapping[str, Mapping[str, str]]
) -> dict[str, Any]:
    """For each module the recipe names: keep upstream's version when the proxy serves it, else require the
    recipe's nearest served version (``go mod edit -require`` in the build copy). Returns what changed."""
    if not substitutes:
        return {}
    required = {
        r["Path"]: r["Version"]
        for r in json.loads(
            run([go, "mod", "edit", "-json"], module_dir, what="go mod edit -json", mod_flags=False, capture=True)
        ).get("Require")
        or []
    }
    changed: dict[str, Any] = {}
    edits: list[str] = []
    for module, entry in substitutes.items():
        upstream = required.get(module)
        if upstream is None:
            continue
        try:
            run(
                [go, "mod", "download", "-json", f"{module}@{upstream}"],
                scratch,
                what=f"go mod download {module}@{upstream}",
                mod_flags=False,
                capture=True,
            )
            continue  # served: the upstream version stays
        except ToolchainError:
            pass
        edits.append(f"-require={module}@{entry['version']}")
        changed[module] = {"upstream": upstream, "used": entry["version"], "why": entry.get("why", "")}
        run.log(f"  {module}@{upstream} is not served here; using {entry['version']} ({entry.get('why', '')})")
    if edits:
        run([go, "mod", "edit", *edits], module_dir, what="go mod edit (substitutes)", mod_flags=False)
    return changed


_LEGACY_SPECS = re.compile(r"range \[\]string\{([^}]*)\}\s*\{\s*legacySwaggerPath")


def _prepare_pulumi_kubernetes(
    run: _Runner,
    go: str,
    build_dir: Path,
    module_dir: Path,
    version: str,
    values: Mapping[str, str],
    data: Mapping[str, Any],
) -> dict[str, Any]:
    """What upstream's ``make schema`` + ``make k8sprovider`` do before ``go generate``, offline:

    1. the Kubernetes OpenAPI specs the generator reads (the current one from the Makefile's KUBE_VERSION
       and the legacy ones listed in cmd/pulumi-gen-kubernetes/main.go, which it would download from
       GitHub) are taken from the ``k8s.io/kubernetes`` module zips (api/openapi-spec/swagger.json),
       verified by the Go checksum database, and placed where the generator looks first;
    2. build pulumi-gen-kubernetes, run ``schema`` (-> cmd/pulumi-resource-kubernetes/schema.json) and
       ``kinds``;
    3. Go SDK files missing from the checkout are regenerated (``go``); files the checkout has are kept,
       and the number that differ from the generator's output is recorded (0 = the schema is faithful).
    """
    specs = (data.get("openapi") or {}).get(version)
    if not specs:
        raise _error(
            "floe_build/tools/gobuild/pulumi-resource-kubernetes/source.json has no "
            f"openapi.{version} (the KUBE_VERSION "
            "of upstream's Makefile and the legacy spec versions of cmd/pulumi-gen-kubernetes/main.go)"
        )
    current, legacy = specs["current"], list(specs["legacy"])
    main_go = (module_dir / "cmd" / "pulumi-gen-kubernetes" / "main.go").read_text()
    match = _LEGACY_SPECS.search(main_go)
    if match:
        wanted = [f"v1.{minor}.0" for minor in re.findall(r'"(\d+)"', match.group(1))]
        if sorted(wanted) != sorted(legacy):
            raise _error(
                f"pulumi-gen-kubernetes at {version} merges legacy specs {wanted}, but source.json lists {legacy}: "
                "update openapi in floe_build/tools/gobuild/pulumi-resource-kubernetes/source.json"
            )
    spec_dir = module_dir / "pkg" / "gen" / "openapi-specs"
    spec_dir.mkdir(parents=True, exist_ok=True)
    scratch = build_dir / "_scratch"
    scratch.mkdir(exist_ok=True)
    record: dict[str, Any] = {"openapi_specs": {}}
    started = time.monotonic()
    for kube in [current, *legacy]:
        info = json.loads(
            run(
                [go, "mod", "download", "-json", f"k8s.io/kubernetes@{kube}"],
                scratch,
                what=f"go mod download k8s.io/kubernetes@{kube}",
                mod_flags=False,
                capture=True,
            )
        )
        source = Path(info["Dir"]) / "api" / "openapi-spec" / "swagger.json"
        if not source.is_file():
            raise _error(f"k8s.io/kubernetes@{kube} has no api/openapi-spec/swagger.json")
        target = spec_dir / f"swagger-{kube}.json"
        shutil.copyfile(source, target)
        record["openapi_specs"][kube] = {"module_sum": info.get("Sum"), "sha256": sha256_file(target)}
    record["openapi_seconds"] = round(time.monotonic() - started, 1)

    gen = build_dir / "_gen" / "pulumi-gen-kubernetes"
    ldflags = f"-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={values['bare']}"
    started = time.monotonic()
    run(
        [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(gen), "./cmd/pulumi-gen-kubernetes"],
        module_dir,
        what="go build pulumi-gen-kubernetes",
    )
    record["generator_build_seconds"] = round(time.monotonic() - started, 1)

    provider_cmd = module_dir / "cmd" / "pulumi-resource-kubernetes"
    terraform = module_dir / "cmd" / "pulumi-gen-kubernetes" / "terraform.json"
    mapping = provider_cmd / "terraform-mapping.json"
    committed_mapping = mapping.read_bytes() if mapping.is_file() else None
    stubbed = not terraform.is_file()
    if stubbed:
        # Only the terraform mapping is derived from it; the committed mapping is put back below.
        terraform.write_text("{}\n")
    started = time.monotonic()
    run(
        [str(gen), "schema", str(spec_dir / f"swagger-{current}.json"), str(build_dir)],
        module_dir,
        what="pulumi-gen-kubernetes schema",
    )
    if stubbed:
        terraform.unlink()
        if committed_mapping is not None:
            mapping.write_bytes(committed_mapping)
        record["terraform_mapping"] = "kept from the checkout (terraform.json absent)"
    schema = provider_cmd / "schema.json"
    run([str(gen), "kinds", str(schema), str(build_dir)], module_dir, what="pulumi-gen-kubernetes kinds")

    sdk = build_dir / "sdk" / "go" / "kubernetes"
    if sdk.is_dir():
        kept = sdk.with_name("kubernetes.checkout")
        sdk.rename(kept)
        run([str(gen), "go", str(schema), str(build_dir)], module_dir, what="pulumi-gen-kubernetes go")
        differing = 0
        for path in kept.rglob("*"):
            if path.is_file():
                rel = path.relative_to(kept)
                generated = sdk / rel
                if not generated.is_file() or generated.read_bytes() != path.read_bytes():
                    differing += 1
                generated.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, generated)
        regenerated = sorted(
            str(p.relative_to(build_dir))
            for p in sdk.rglob("*")
            if p.is_file() and not (kept / p.relative_to(sdk)).is_file()
        )
        shutil.rmtree(kept)
        record["sdk_go"] = {"regenerated_missing": regenerated, "checkout_files_differing_from_generator": differing}
    record["generate_seconds"] = round(time.monotonic() - started, 1)
    record["schema_sha256"] = sha256_file(schema)
    shutil.rmtree(scratch, ignore_errors=True)
    return record


PREPARE: dict[str, Callable[..., dict[str, Any]]] = {"pulumi-kubernetes-schema": _prepare_pulumi_kubernetes}


def proxy_refusal(go: str, module: str, commit: str, cwd: Path, env: Mapping[str, str]) -> str | None:
    """``None`` when the Go module proxy serves ``module@commit``, else its answer (e.g. a 403)."""
    try:
        proc = subprocess.run(
            [go, "mod", "download", "-json", f"{module}@{commit}"],
            cwd=cwd,
            env={k: v for k, v in env.items() if k != "GOFLAGS"},
            capture_output=True,
            text=True,
            timeout=STEP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"no answer within {STEP_TIMEOUT:.0f}s"
    if proc.returncode == 0:
        return None
    try:
        reason = str(json.loads(proc.stdout).get("Error") or "")
    except ValueError:
        reason = ""
    return (reason or proc.stderr.strip() or f"exit {proc.returncode}").splitlines()[-1].strip()[-300:]


def _archive_if_refused(
    spec: ToolSpec,
    version: str,
    run: _Runner,
    go: str,
    work: Path,
    record: dict[str, Any],
    log: Callable[[str], None],
) -> Path | None:
    """The upstream source to build from when the proxy refuses the module pinned by commit: the
    verified source archive (``floe_build.upstream_src``); ``None`` when the proxy serves it."""
    recipe = spec.recipe
    assert recipe.by_commit is not None
    module, commit = _commit_for(spec.name, version)
    scratch = work / f"{spec.name}-{version}.probe"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        refusal = proxy_refusal(go, module, commit, scratch, run.env)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if refusal is None:
        return None
    root = source_root()
    archive = find_archive(spec.name, root)
    if archive is None:
        raise _error(
            f"{spec.name} {version}: the Go module proxy refuses {module}@{commit} ({refusal}), and {root} has no "
            f"upstream source archive {spec.name}.tar.gz. Put one there (see {RECIPES / 'README.md'}), point "
            "FLOE_UPSTREAM_SRC at a folder that has it, or set GOPROXY to a proxy that serves the module"
        )
    log(f"  the Go module proxy refuses {module}@{commit[:12]} ({refusal}); building from {archive}")
    subdirs = [d for d, _m in recipe.siblings] or [recipe.repo_subdir]
    tree = work / f"{spec.name}-{version}.src"
    shutil.rmtree(tree, ignore_errors=True)
    record["source"] = materialize(
        spec.name, version, archive, tree, pins=_source_json(spec.name), subdirs=subdirs, log=log
    )
    checked = ", ".join(record["source"]["verified"])
    log(f"  verified {checked} of {archive.name} against the pin (commit {commit[:12]})")
    return tree


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
    record: dict[str, Any] = {"go_version": go_version, "recipe": f"floe_build/tools/gobuild/{spec.name}"}
    flags = ["-trimpath"]
    if recipe.tags:
        flags += ["-tags", recipe.tags]
    if recipe.ldflags:
        flags += ["-ldflags", " ".join(fill(f) for f in recipe.ldflags)]
    log(f"{spec.name} {version}: building from Go modules ({go_version}); log: {logfile}")
    if recipe.by_commit and go_src is None:
        go_src = _archive_if_refused(spec, version, run, go, work, record, log)

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
        if go_src is not None and is_git_dir(go_src):
            _module, commit = _commit_for(spec.name, version)
            missing = export_git(go_src, commit, [d for d, _m in recipe.siblings], build_dir)
            record.update({"go_src": str(go_src), "commit": commit})
            if missing:
                record["missing_in_checkout"] = len(missing)
                with logfile.open("a") as listing:
                    listing.write(f"\n# files {go_src} holds no content for at {commit}:\n" + "\n".join(missing) + "\n")
                log(f"  {go_src} lacks {len(missing)} file(s) at {commit[:12]} (listed in {logfile})")
        elif go_src is not None:
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
        data = _source_json(spec.name) if (RECIPES / spec.name / "source.json").is_file() else {}
        scratch = build_dir / "_scratch"
        scratch.mkdir(exist_ok=True)
        substituted = _substitute_refused(
            run, go, module_dir, scratch, (data.get("substitutes") or {}).get(version) or {}
        )
        if substituted:
            record["substituted"] = substituted
        if recipe.prepare:
            record.update(PREPARE[recipe.prepare](run, go, build_dir, module_dir, version, values, data))
        for command in recipe.generate:
            argv = [go if part == "go" else part for part in command]
            run(argv, module_dir, what=" ".join(command))
        run(
            [go, "build", *flags, "-o", str(out / spec.binaries[0]), fill(recipe.package)],
            module_dir,
            what=f"go build {fill(recipe.package)}",
        )
        if substituted:  # what the binary links of them (MVS may also move a module the recipe did not name)
            binary = str(out / spec.binaries[0])
            info = run([go, "version", "-m", binary], module_dir, what="go version -m", capture=True)
            named = set((data.get("substitutes") or {}).get(version, {}))
            fields = [line.split("\t") for line in info.splitlines()]
            linked = {f[2]: f[3] for f in fields if len(f) >= 4 and f[1] == "dep"}
            record["linked"] = {m: v for m, v in linked.items() if m in named}
    record["build_seconds"] = round(time.monotonic() - started, 1)
    record["modcache_kb_added"] = max(0, _du_kb(modcache) - before)
    log(
        f"{spec.name} {version}: built in {record['build_seconds']:.0f}s, module cache +"
        f"{record['modcache_kb_added'] / 1024:.0f} MiB"
    )
    shutil.rmtree(build_dir, ignore_errors=True)
    shutil.rmtree(work / f"{spec.name}-{version}.src", ignore_errors=True)
    return record
