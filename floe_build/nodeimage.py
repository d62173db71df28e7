"""``make node-image``: the Kind node image, assembled the way ``kind build node-image`` does it.

Steps, each cached by content hash under ``<cache>/node-image/`` (a warm rebuild only re-checks them):

1. ``binaries``  Kubernetes binaries from Go modules (:mod:`floe_build.kubernetes`)
2. ``rootfs``    a Debian rootfs by debootstrap, as a Docker image (:mod:`floe_build.rootfs`)
3. ``base``      the node base image: rootfs + kind's base files + ours (``floe_build/images/node/Dockerfile``)
4. ``images``    every image kubeadm and kind need, built locally, tagged as they expect, saved into
                 one archive (:mod:`floe_build.node_parts`)
5. ``node``      a build container from the base: binaries into ``/usr/bin``, ``/kind/version``,
                 kind's manifests into ``/kind/manifests``, ``ctr -n k8s.io images import`` of the
                 archive (images pinned), then ``docker commit`` as ``floe-testinfra/node:<version>-<hash>``

The result is recorded in ``<cache>/node-image/node-<version>.json`` (tag, inputs, timings) and works with
``kind create cluster --image <tag>``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from floe_build._run import AirgapError, cache_root, capture, log, run_logged
from floe_build.kubernetes import COMMANDS, KubernetesBuild, KubeVersion
from floe_build.node_parts import (
    Builder,
    GoBinary,
    ImageSpec,
    KindSource,
    _hash,
    build_image,
    kubeadm_images,
    module_dir,
    save_images,
)
from floe_build.recipes import IMAGES_DIR
from floe_build.rootfs import Rootfs
from floe_model.files import sha256_file
from floe_model.versions import load_versions

NODE_REPO = "floe-testinfra/node"
NODE_RECIPE = IMAGES_DIR / "node"
RECIPE_VERSION = 1
IPTABLES_WRAPPER = IMAGES_DIR / "kube-proxy" / "iptables-wrapper"


@dataclass
class NodeImage:
    kubernetes: KubeVersion
    kind_version: str
    go: str = "go"
    cache: Path = field(default_factory=lambda: cache_root() / "node-image")
    timings: dict[str, float] = field(default_factory=dict)

    def _timed(self, name: str, started: float) -> None:
        self.timings[name] = round(time.monotonic() - started, 1)
        log(f"step {name}: {self.timings[name]:.0f}s")

    def build(self, only: Sequence[str] | None = None) -> str | None:
        steps = set(only or ("binaries", "rootfs", "base", "images", "node"))
        work = self.cache / "_build"
        started = time.monotonic()
        bins = KubernetesBuild(self.kubernetes, go=self.go, cache=self.cache.parent).ensure()
        self._timed("binaries", started)
        if steps <= {"binaries"}:
            return None

        started = time.monotonic()
        rootfs = Rootfs(cache=self.cache.parent).ensure()
        self._timed("rootfs", started)
        if steps <= {"binaries", "rootfs"}:
            return None

        started = time.monotonic()
        kind = KindSource(module_dir(self.go, "sigs.k8s.io/kind", self.kind_version, work))
        sandbox = kubeadm_images(bins / "kubeadm", self.kubernetes.version)["pause"]
        base = self._base(rootfs, kind, sandbox)
        self._timed("base", started)
        if steps <= {"binaries", "rootfs", "base"}:
            return None

        started = time.monotonic()
        k8s_module = module_dir(self.go, "k8s.io/kubernetes", self.kubernetes.version, work)
        archive, tags = self._images(bins, rootfs, kind, k8s_module)
        self._timed("images", started)
        if steps <= {"binaries", "rootfs", "base", "images"}:
            return None

        started = time.monotonic()
        tag = self._node(base, bins, archive, tags, kind)
        self._timed("node", started)
        return tag

    # -- step 3
    def _images(self, bins: Path, rootfs: str, kind: KindSource, k8s_module: Path) -> tuple[Path, list[str]]:
        builder = Builder(go=self.go, cache=self.cache)
        wanted = kubeadm_images(bins / "kubeadm", self.kubernetes.version)
        kind_images = kind.images()
        etcd_version = "v" + wanted["etcd"].rsplit(":", 1)[1].split("-", 1)[0]
        coredns_version = wanted["coredns"].rsplit(":", 1)[1]
        binaries = {
            "etcd": builder.go_binary(
                GoBinary("etcd", ".", recipe="etcd", requires=(("go.etcd.io/etcd/server/v3", etcd_version),))
            ),
            "coredns": builder.go_binary(GoBinary("coredns", "github.com/coredns/coredns", coredns_version)),
            "local-path-provisioner": builder.go_binary(
                GoBinary(
                    "local-path-provisioner",
                    "github.com/rancher/local-path-provisioner",
                    kind.local_path_provisioner_version(),
                    ldflags=f"-s -w -X main.VERSION={kind.local_path_provisioner_version()}",
                )
            ),
            "kindnetd": builder.go_binary(GoBinary("kindnetd", ".", recipe="kindnetd")),
            "pause": builder.pause(k8s_module, wanted["pause"].rsplit(":", 1)[1]),
        }
        specs = [
            *(
                ImageSpec("control-plane", (wanted[c],), {c: bins / c}, {"BINARY": c}, static=True)
                for c in ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
            ),
            ImageSpec(
                "kube-proxy",
                (wanted["kube-proxy"],),
                {"kube-proxy": bins / "kube-proxy", "iptables-wrapper": IPTABLES_WRAPPER},
                {"ROOTFS": rootfs},
            ),
            ImageSpec("etcd", (wanted["etcd"],), {"etcd": binaries["etcd"]}, static=True),
            ImageSpec("coredns", (wanted["coredns"],), {"coredns": binaries["coredns"]}, static=True),
            ImageSpec("pause", (wanted["pause"],), {"pause": binaries["pause"]}),
            ImageSpec(
                "kindnetd",
                (kind_images["kindnetd"],),
                {"kindnetd": binaries["kindnetd"], "iptables-wrapper": IPTABLES_WRAPPER},
                {"ROOTFS": rootfs},
            ),
            ImageSpec(
                "local-path-provisioner",
                (kind_images["local-path-provisioner"],),
                {"local-path-provisioner": binaries["local-path-provisioner"]},
                static=True,
            ),
            ImageSpec("local-path-helper", (kind_images["local-path-helper"],), {}, {"ROOTFS": rootfs}),
        ]
        tags = [build_image(spec, builder) for spec in specs]
        archive = save_images(tags, builder)
        self.timings.update({k: round(v, 1) for k, v in builder.timings.items()})
        return archive, tags

    # -- step 4
    def _base(self, rootfs: str, kind: KindSource, sandbox_image: str) -> str:
        key = _hash(base_inputs(rootfs, kind.base_files, sandbox_image))
        tag = f"floe-testinfra/node-base:{key}"
        if _image_exists(tag):
            log(f"base: cached image {tag}")
            return tag
        context = self.cache / "_context" / "node-base"
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        shutil.copy2(NODE_RECIPE / "Dockerfile", context / "Dockerfile")
        shutil.copytree(kind.base_files, context / "kind-files")
        shutil.copytree(NODE_RECIPE / "files", context / "files")
        for path in (context / "kind-files").rglob("*"):  # the module cache is read-only
            path.chmod(path.stat().st_mode | 0o200)
        log(f"base: docker build floe_build/images/node ({tag}); log: {self.cache / 'node.log'}")
        run_logged(
            [
                "docker",
                "build",
                "--build-arg",
                f"ROOTFS={rootfs}",
                "--build-arg",
                f"SANDBOX_IMAGE={sandbox_image}",
                "-t",
                tag,
                str(context),
            ],
            logfile=self.cache / "node.log",
            what="docker build floe_build/images/node",
            timeout=1200,
        )
        shutil.rmtree(context, ignore_errors=True)
        return tag

    # -- step 5
    def _node(self, base: str, bins: Path, archive: Path, tags: list[str], kind: KindSource) -> str:
        base_id = capture(["docker", "image", "inspect", "-f", "{{.Id}}", base]).strip()
        manifests = kind.manifests()
        key = _hash(
            {
                "base": base_id,
                "bins": {c: sha256_file(bins / c) for c in COMMANDS},
                "archive": archive.name,
                "manifests": manifests,
                "version": self.kubernetes.version,
                "recipe": RECIPE_VERSION,
            }
        )
        tag = f"{NODE_REPO}:{self.kubernetes.version}-{key}"
        record = self.cache / f"node-{self.kubernetes.version}.json"
        if _image_exists(tag):
            log(f"node: cached image {tag}")
            self._record(record, tag, base, archive, tags)
            return tag
        logfile = self.cache / "node.log"
        name = f"floe-node-build-{key}"
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        log(f"node: assembling {tag} in build container {name}; log: {logfile}")
        run_logged(
            ["docker", "run", "-d", "--name", name, "--privileged", "--entrypoint", "sleep", base, "infinity"],
            logfile=logfile,
            what="start the build container",
            timeout=120,
        )
        try:

            def in_node(*argv: str, what: str, timeout: float = 300, stdin: Path | None = None) -> None:
                if stdin is None:
                    run_logged(["docker", "exec", name, *argv], logfile=logfile, what=what, timeout=timeout)
                    return
                with stdin.open("rb") as handle, logfile.open("a") as out:
                    out.write(f"\n$ docker exec -i {name} {' '.join(argv)} < {stdin}\n")
                    out.flush()
                    proc = subprocess.run(
                        ["docker", "exec", "-i", name, *argv],
                        stdin=handle,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        timeout=timeout,
                        check=False,
                    )
                if proc.returncode != 0:
                    raise AirgapError(f"{what} failed (exit {proc.returncode}); see {logfile}")

            for command in COMMANDS:
                run_logged(
                    ["docker", "cp", str(bins / command), f"{name}:/usr/bin/{command}"],
                    logfile=logfile,
                    what=f"copy {command} into the node",
                    timeout=300,
                )
            in_node("chown", "root:root", *(f"/usr/bin/{c}" for c in COMMANDS), what="chown binaries")
            in_node("chmod", "0755", *(f"/usr/bin/{c}" for c in COMMANDS), what="chmod binaries")
            in_node("sh", "-c", f"echo -n {self.kubernetes.version} > /kind/version", what="write /kind/version")
            staging = self.cache / "_context" / "manifests"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            for file_name, text in manifests.items():
                (staging / file_name).write_text(text)
            run_logged(
                ["docker", "cp", f"{staging}/.", f"{name}:/kind/manifests/"],
                logfile=logfile,
                what="copy kind's manifests",
                timeout=60,
            )
            # `docker exec -d` of `exec containerd`: the exec session's shim reaps it when it stops (a child of
            # the container's `sleep` would linger as a zombie).
            run_logged(
                ["docker", "exec", "-d", name, "sh", "-c", "exec containerd > /var/log/containerd-build.log 2>&1"],
                logfile=logfile,
                what="start containerd",
                timeout=60,
            )
            in_node(
                "bash",
                "-c",
                "for i in $(seq 1 30); do [ -S /run/containerd/containerd.sock ] && ctr version "
                ">/dev/null 2>&1 && exit 0; sleep 1; done; exit 1",
                what="wait ≤ 30s for containerd",
            )
            started = time.monotonic()
            in_node(
                "ctr",
                "-n",
                "k8s.io",
                "images",
                "import",
                "--all-platforms",
                "--no-unpack",
                "-",
                what=f"ctr images import {archive.name}",
                timeout=1800,
                stdin=archive,
            )
            self.timings["ctr import"] = round(time.monotonic() - started, 1)
            imported = capture(["docker", "exec", name, "ctr", "-n", "k8s.io", "images", "list", "-q"]).split()
            missing = [t for t in tags if _normalize(t) not in imported]
            if missing:
                raise AirgapError(f"node: images missing after import: {missing}; imported: {imported}")
            for ref in imported:  # what `ctr images import --label=io.cri-containerd.pinned=pinned` does
                in_node(
                    "ctr", "-n", "k8s.io", "images", "label", ref, "io.cri-containerd.pinned=pinned", what=f"pin {ref}"
                )
            in_node(
                "bash",
                "-c",
                "pkill -x containerd; for i in $(seq 1 30); do pgrep -x containerd >/dev/null || exit 0; "
                "sleep 1; done; exit 1",
                what="stop containerd",
            )
            in_node("rm", "-f", "/var/log/containerd-build.log", what="clean up")
            run_logged(
                ["docker", "commit", "--change", 'ENTRYPOINT [ "/usr/local/bin/entrypoint", "/sbin/init" ]', name, tag],
                logfile=logfile,
                what="docker commit",
                timeout=1200,
            )
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        self._record(record, tag, base, archive, tags)
        return tag

    def _record(self, record: Path, tag: str, base: str, archive: Path, tags: list[str]) -> None:
        size = capture(["docker", "image", "inspect", "-f", "{{.Size}}", tag]).strip()
        record.write_text(
            json.dumps(
                {
                    "image": tag,
                    "kubernetes": self.kubernetes.version,
                    "kind": self.kind_version,
                    "base": base,
                    "images_archive": str(archive),
                    "images": tags,
                    "size_bytes": int(size),
                    "timings_seconds": self.timings,
                },
                indent=2,
            )
            + "\n"
        )


def base_inputs(
    rootfs: str, kind_base_files: Path, sandbox_image: str, recipe: Path = NODE_RECIPE
) -> dict[str, object]:
    """Everything the node base image is built from; its hash is the image's tag. Every file of the
    recipe counts (with its mode: a script that loses its executable bit is a different input)."""

    def listing(root: Path) -> dict[str, str]:
        return {
            str(p.relative_to(root)): sha256_file(p) + ("+x" if p.stat().st_mode & 0o111 else "")
            for p in sorted(root.rglob("*"))
            if p.is_file()
        }

    return {
        "rootfs": rootfs,
        "dockerfile": (recipe / "Dockerfile").read_text(),
        "files": listing(recipe / "files"),
        "kind": listing(kind_base_files),
        "sandbox": sandbox_image,
        "recipe": RECIPE_VERSION,
    }


def _image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True, check=False).returncode == 0


def _normalize(ref: str) -> str:
    """Docker's short names as containerd spells them: kindest/x:t -> docker.io/kindest/x:t."""
    first = ref.split("/", 1)[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{ref}"
    return ref


def main(only: Sequence[str] | None = None) -> int:
    versions = load_versions()
    image = NodeImage(KubeVersion(versions.get("kubernetes.version")), versions.get("kind.version"))
    started = time.monotonic()
    try:
        tag = image.build(only)
    except AirgapError as exc:
        log(f"FAILED: {exc}")
        return 1
    log(
        f"node image {'steps done' if tag is None else tag} in {time.monotonic() - started:.0f}s; timings: "
        + json.dumps(image.timings)
    )
    if tag:
        print(tag)
    return 0
