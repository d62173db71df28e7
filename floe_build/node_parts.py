"""The container images a Kind node needs, built locally and tagged exactly as kubeadm and kind expect.

Which images, and at which tags, is read from the tools themselves, never written down here:

* ``kubeadm config images list --kubernetes-version <pin>`` of the kubeadm we built (control plane,
  kube-proxy, CoreDNS, pause, etcd);
* kind's own source in the Go module cache (``pkg/build/nodeimage/const_*.go``): kindnetd,
  local-path-provisioner and its helper, and the default CNI and storage manifests.

How each image is built is a recipe in ``images/<name>/`` (a Dockerfile, and for Go programs of our own
a go.mod/main.go). Binaries come from Go modules (``go install module@version`` or our recipe module),
the pause binary from upstream's ``pause.c`` in the ``k8s.io/kubernetes`` module (gcc, static). All
images are saved into one ``docker save`` archive, cached by a hash of every input.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from floe_build._run import AirgapError, cache_root, capture, log, run_logged
from floe_build.recipes import IMAGES_DIR
from floe_model.files import sha256_file

RECIPE_VERSION = 1


# ------------------------------------------------------------------------------------------- reading pins
def kubeadm_images(kubeadm: Path, version: str) -> dict[str, str]:
    """kubeadm's image list as {component: full reference}, e.g. {"etcd": "registry.k8s.io/etcd:3.6.4-0"}."""
    out = capture([str(kubeadm), "config", "images", "list", "--kubernetes-version", version])
    return {ref.rsplit(":", 1)[0].rsplit("/", 1)[-1]: ref for ref in out.split()}


def go_string_consts(source: str) -> dict[str, str]:
    """``const name = "value"`` declarations of a Go file."""
    return dict(re.findall(r'^const\s+(\w+)\s*=\s*"([^"]*)"', source, re.MULTILINE))


def go_manifest(source: str, name: str, consts: Mapping[str, str]) -> str:
    """A Go string constant made of backquoted literals and constants joined by ``+`` (kind's manifests)."""
    match = re.search(rf"^const\s+{name}\s*=", source, re.MULTILINE)
    if not match:
        raise AirgapError(f"kind source: no constant {name}")
    token = re.compile(r"\s*(?:`([^`]*)`|(\w+))(\s*\+)?", re.DOTALL)
    pos, pieces = match.end(), []
    while True:
        part = token.match(source, pos)
        if not part:
            raise AirgapError(f"kind source: cannot read constant {name} at offset {pos}")
        literal, ident, plus = part.groups()
        if ident is not None and ident not in consts:
            raise AirgapError(f"kind source: constant {name} uses {ident}, which is not a string constant")
        pieces.append(literal if literal is not None else consts[ident])
        pos = part.end()
        if not plus:
            return "".join(pieces)


@dataclass(frozen=True)
class KindSource:
    """What the node image needs from kind's source (the module pinned in versions.yaml)."""

    root: Path

    @property
    def nodeimage(self) -> Path:
        return self.root / "pkg" / "build" / "nodeimage"

    def consts(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for name in ("const_cni.go", "const_storage.go", "const.go"):
            found |= go_string_consts((self.nodeimage / name).read_text())
        return found

    def images(self) -> dict[str, str]:
        consts = self.consts()
        return {
            "kindnetd": consts["kindnetdImage"],
            "local-path-provisioner": consts["storageProvisionerImage"],
            "local-path-helper": consts["storageHelperImage"],
        }

    def manifests(self) -> dict[str, str]:
        consts = self.consts()
        return {
            "default-cni.yaml": go_manifest(
                (self.nodeimage / "const_cni.go").read_text(), "defaultCNIManifest", consts
            ),
            "default-storage.yaml": go_manifest(
                (self.nodeimage / "const_storage.go").read_text(), "defaultStorageManifest", consts
            ),
        }

    def local_path_provisioner_version(self) -> str:
        makefile = (self.root / "images" / "local-path-provisioner" / "Makefile").read_text()
        match = re.search(r"^VERSION\s*\??=\s*(\S+)", makefile, re.MULTILINE)
        if not match:
            raise AirgapError("kind source: floe_build/images/local-path-provisioner/Makefile sets no VERSION")
        return match.group(1)

    @property
    def base_files(self) -> Path:
        return self.root / "images" / "base" / "files"


def module_dir(go: str, module: str, version: str, work: Path) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    info = json.loads(capture([go, "mod", "download", "-json", f"{module}@{version}"], cwd=work, timeout=1800))
    if info.get("Error"):
        raise AirgapError(f"the Go module proxy does not serve {module}@{version}: {info['Error']}")
    return Path(info["Dir"])


# ------------------------------------------------------------------------------------------- binaries
@dataclass(frozen=True)
class GoBinary:
    """A static binary from Go modules: ``go install pkg@version`` or one of our recipe modules."""

    name: str
    package: str  # module path for `install`; "." for a recipe module
    version: str = ""
    recipe: str = ""  # images/<recipe> holding go.mod/main.go
    requires: tuple[tuple[str, str], ...] = ()
    ldflags: str = "-s -w"
    main: str = ""
    """Upstream mode: the module ``package`` at ``version`` is copied out and built as the main module (its
    own go.mod, go.sum and replace directives apply, which ``go install`` refuses); ``main`` is the package
    to build inside it, e.g. ``./cmd/prometheus``."""
    siblings: tuple[tuple[str, str], ...] = ()
    """Upstream mode: (directory, module) pairs its replace directives point at, filled with that module at
    the same version (the module zip leaves nested modules out)."""
    tags: tuple[str, ...] = ()

    def inputs(self) -> dict[str, object]:
        files = {}
        if self.recipe:
            for path in sorted((IMAGES_DIR / self.recipe).glob("*")):
                if path.suffix in (".go", ".mod", ".sum"):
                    files[path.name] = hashlib.sha256(path.read_bytes()).hexdigest()
        inputs: dict[str, object] = {
            "name": self.name,
            "package": self.package,
            "version": self.version,
            "recipe_files": files,
            "requires": self.requires,
            "ldflags": self.ldflags,
        }
        # Only when set: the keys of the node image's binaries (which use neither) stay as they were.
        if self.main:
            inputs["main"] = self.main
        if self.siblings:
            inputs["siblings"] = self.siblings
        if self.tags:
            inputs["tags"] = self.tags
        return inputs


@dataclass
class Builder:
    go: str = "go"
    cache: Path = field(default_factory=lambda: cache_root() / "node-image")
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def logfile(self) -> Path:
        return self.cache / "images.log"

    def binary_path(self, spec: GoBinary) -> Path:
        """Where ``go_binary`` puts ``spec``'s binary: a path named by a hash of its inputs and the Go version."""
        go_version = capture([self.go, "env", "GOVERSION"]).strip()
        key = _hash({**spec.inputs(), "go": go_version, "recipe": RECIPE_VERSION})
        return self.cache / "bin" / f"{spec.name}-{key}" / spec.name

    def go_binary(self, spec: GoBinary) -> Path:
        out = self.binary_path(spec)
        if out.is_file():
            log(f"{spec.name}: cached binary {out}")
            return out
        work = self.cache / "_build" / spec.name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "CGO_ENABLED": "0"}
        log(
            f"{spec.name}: building {spec.package if spec.package != '.' else 'images/' + spec.recipe}"
            f"{'@' + spec.version if spec.version else ''} (≤ 60m0s); log: {self.logfile}"
        )
        flags = ["-trimpath", "-ldflags", spec.ldflags]
        if spec.tags:
            flags += ["-tags", ",".join(spec.tags)]
        if spec.main:
            seconds = self._upstream_build(spec, work, out, flags, env)
        elif spec.recipe:
            for item in (IMAGES_DIR / spec.recipe).iterdir():
                if item.suffix in (".go", ".mod", ".sum"):
                    shutil.copy2(item, work / item.name)
            for module, version in spec.requires:
                run_logged(
                    [self.go, "mod", "edit", f"-require={module}@{version}"],
                    logfile=self.logfile,
                    what="go mod edit",
                    cwd=work,
                )
            env["GOFLAGS"] = "-mod=mod"
            seconds = run_logged(
                [self.go, "build", *flags, "-o", str(out), "."],
                logfile=self.logfile,
                what=f"go build {spec.name}",
                cwd=work,
                env=env,
                timeout=3600,
                nice=True,
            )
        else:
            env.pop("GOFLAGS", None)
            env["GOBIN"] = str(work / "bin")
            seconds = run_logged(
                [self.go, "install", *flags, f"{spec.package}@{spec.version}"],
                logfile=self.logfile,
                what=f"go install {spec.package}@{spec.version}",
                cwd=work,
                env=env,
                timeout=3600,
                nice=True,
            )
            built = work / "bin" / spec.package.rsplit("/", 1)[-1]
            shutil.move(str(built), out)
        self.timings[f"build {spec.name}"] = seconds
        log(f"{spec.name}: built in {seconds:.0f}s")
        return out

    def _upstream_build(self, spec: GoBinary, work: Path, out: Path, flags: list[str], env: dict[str, str]) -> float:
        """``go build spec.main`` inside a copy of the module ``spec.package@spec.version`` (see GoBinary.main)."""
        source = work / "src"
        shutil.copytree(module_dir(self.go, spec.package, spec.version, work / "_dl"), source, symlinks=True)
        for directory, module in spec.siblings:
            target = source / directory
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(module_dir(self.go, module, spec.version, work / "_dl"), target, symlinks=True)
        _make_writable(source)
        # The upstream go.mod and go.sum decide every dependency version, as in upstream's own build.
        env["GOFLAGS"] = "-mod=readonly -buildvcs=false"
        partial = out.with_name(out.name + ".partial")  # an interrupted build never looks cached
        seconds = run_logged(
            [self.go, "build", *flags, "-o", str(partial), spec.main],
            logfile=self.logfile,
            what=f"go build {spec.main} in {spec.package}@{spec.version}",
            cwd=source,
            env=env,
            timeout=3600,
            nice=True,
        )
        partial.rename(out)
        shutil.rmtree(work, ignore_errors=True)
        return seconds

    def pause(self, kubernetes_module: Path, version: str) -> Path:
        source = kubernetes_module / "build" / "pause" / "linux" / "pause.c"
        if not source.is_file():
            raise AirgapError(f"pause: {source} is missing from the k8s.io/kubernetes module")
        key = _hash(
            {
                "source": hashlib.sha256(source.read_bytes()).hexdigest(),
                "version": version,
                "cc": capture(["gcc", "--version"]).splitlines()[0],
            }
        )
        out = self.cache / "bin" / f"pause-{key}" / "pause"
        if out.is_file():
            return out
        out.parent.mkdir(parents=True, exist_ok=True)
        seconds = run_logged(
            ["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{version}-floe", "-o", str(out), str(source)],
            logfile=self.logfile,
            what="gcc pause.c",
            timeout=300,
        )
        run_logged(["strip", str(out)], logfile=self.logfile, what="strip pause", timeout=60)
        self.timings["build pause"] = seconds
        return out


def _make_writable(root: Path) -> None:
    """The module cache is read-only; a copy we build in must be writable (go build writes nothing there,
    but removing the copy afterwards needs it)."""
    for dirpath, _dirs, files in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in files:
            path = Path(dirpath) / name
            path.chmod(path.stat().st_mode | 0o200)


def _hash(data: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------------- images
STATIC_FILES = {
    "etc/passwd": "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
    "etc/group": "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
    "etc/nsswitch.conf": "hosts: files dns\n",
}


@dataclass(frozen=True)
class ImageSpec:
    """One image: recipe folder, files for its build context, build args, and the tags to give it."""

    recipe: str
    tags: tuple[str, ...]
    files: Mapping[str, Path]
    build_args: Mapping[str, str] = field(default_factory=dict)
    static: bool = False


def build_image(spec: ImageSpec, builder: Builder) -> str:
    """``docker build`` of one recipe (cached by its inputs); returns the first tag."""
    dockerfile = IMAGES_DIR / spec.recipe / "Dockerfile"
    key = _hash(
        {
            "dockerfile": dockerfile.read_text(),
            "files": {k: sha256_file(v) for k, v in spec.files.items()},
            "args": dict(spec.build_args),
            "static": STATIC_FILES if spec.static else None,
            "tags": spec.tags,
        }
    )
    local = f"floe-testinfra/{spec.recipe}:{key}"
    if subprocess.run(["docker", "image", "inspect", local], capture_output=True, check=False).returncode != 0:
        context = builder.cache / "_context" / spec.recipe
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        shutil.copy2(dockerfile, context / "Dockerfile")
        for name, path in spec.files.items():
            shutil.copy2(path, context / name)
        if spec.static:
            for rel, text in STATIC_FILES.items():
                (context / "static" / rel).parent.mkdir(parents=True, exist_ok=True)
                (context / "static" / rel).write_text(text)
            (context / "static" / "tmp").mkdir(mode=0o1777)
            (context / "static" / "tmp").chmod(0o1777)
        args = [a for k, v in spec.build_args.items() for a in ("--build-arg", f"{k}={v}")]
        seconds = run_logged(
            ["docker", "build", "-q", *args, "-t", local, str(context)],
            logfile=builder.logfile,
            what=f"docker build images/{spec.recipe} ({spec.tags[0]})",
            timeout=1200,
        )
        builder.timings[f"image {spec.tags[0]}"] = seconds
        shutil.rmtree(context, ignore_errors=True)
    for tag in spec.tags:
        run_logged(["docker", "tag", local, tag], logfile=builder.logfile, what=f"docker tag {tag}", timeout=60)
    return spec.tags[0]


def save_images(tags: Sequence[str], builder: Builder) -> Path:
    """One ``docker save`` archive of all the images, cached by their image IDs and tags."""
    ids = {tag: capture(["docker", "image", "inspect", "-f", "{{.Id}}", tag]).strip() for tag in tags}
    archive = builder.cache / "images" / f"{_hash(ids)}.tar"
    if archive.is_file():
        log(f"images: cached archive {archive}")
        return archive
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_suffix(".partial")
    started = time.monotonic()
    run_logged(["docker", "save", "-o", str(partial), *tags], logfile=builder.logfile, what="docker save", timeout=1200)
    partial.rename(archive)
    (archive.with_suffix(".json")).write_text(json.dumps(ids, indent=2) + "\n")
    builder.timings["docker save"] = time.monotonic() - started
    return archive
