"""A Debian root filesystem made with ``debootstrap`` from the host's Debian mirror, as a Docker image.

It is the base of the node image (systemd, containerd, runc, CNI plugins, iptables: the packages of
kind's own base image, from Debian instead of upstream builds) and of the few component images that
need userland tools (kube-proxy: iptables/conntrack; the CNI daemon: iproute2; the local-path helper:
a shell). Sharing one rootfs layer means containerd inside the node stores it once.

Cached by a hash of suite, mirror, package list and this recipe's version; the image is tagged
``floe-testinfra/rootfs:<hash>``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from floe_build._run import AirgapError, cache_root, capture, log, run_logged

SUITE = "bookworm"
#: kind v0.30's base image package list (images/base/Dockerfile) from Debian, plus what it builds itself:
#: containerd, runc, the CNI plugins (containernetworking-plugins) and crictl's stand-in (ctr ships with
#: containerd). nfs-common/open-iscsi/fuse-overlayfs (rootless and storage extras) are left out.
PACKAGES = (
    "systemd",
    "conntrack",
    "iptables",
    "nftables",
    "iproute2",
    "ethtool",
    "util-linux",
    "mount",
    "kmod",
    "libseccomp2",
    "pigz",
    "bash",
    "ca-certificates",
    "curl",
    "jq",
    "procps",
    "containerd",
    "runc",
    "containernetworking-plugins",
)
RECIPE_VERSION = 1
IMAGE_REPO = "floe-testinfra/rootfs"


def host_mirror(sources: str) -> str:
    """The host's Debian mirror (deb822 ``URIs:`` or one-line ``deb`` form), else deb.debian.org."""
    for match in re.finditer(r"^(?:URIs:\s*(\S+)|deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+)", sources, re.MULTILINE):
        uri = match.group(1) or match.group(2)
        if uri and "security" not in uri:
            return uri.rstrip("/")
    return "http://deb.debian.org/debian"


def read_host_sources() -> str:
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        try:
            texts.append(path.read_text())
        except OSError:
            continue
    return "\n".join(texts)


@dataclass
class Rootfs:
    mirror: str = ""
    suite: str = SUITE
    packages: tuple[str, ...] = PACKAGES
    cache: Path | None = None

    def __post_init__(self) -> None:
        self.mirror = self.mirror or host_mirror(read_host_sources())
        self.cache = (self.cache or cache_root()) / "node-image" / "rootfs"

    @property
    def key(self) -> str:
        text = json.dumps(
            {"suite": self.suite, "mirror": self.mirror, "packages": sorted(self.packages), "recipe": RECIPE_VERSION},
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def image(self) -> str:
        return f"{IMAGE_REPO}:{self.key}"

    def ensure(self) -> str:
        """Build (or find) the rootfs image; returns its tag."""
        assert self.cache is not None
        if subprocess.run(["docker", "image", "inspect", self.image], capture_output=True, check=False).returncode == 0:
            log(f"rootfs: cached image {self.image}")
            return self.image
        if shutil.which("debootstrap") is None:
            log("rootfs: installing debootstrap (apt-get)")
            run_logged(
                ["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"],
                logfile=self.cache / "apt.log",
                what="apt-get install debootstrap",
                timeout=900,
            )
        self.cache.mkdir(parents=True, exist_ok=True)
        target = self.cache / self.key
        tarball = self.cache / f"{self.key}.tar"
        logfile = self.cache / f"{self.key}.log"
        if not tarball.is_file():
            shutil.rmtree(target, ignore_errors=True)
            log(
                f"rootfs: debootstrap {self.suite} from {self.mirror} with {len(self.packages)} packages "
                f"(≤ 30m0s); log: {logfile}"
            )
            seconds = run_logged(
                [
                    "debootstrap",
                    "--variant=minbase",
                    "--include=" + ",".join(self.packages),
                    self.suite,
                    str(target),
                    self.mirror,
                ],
                logfile=logfile,
                what="debootstrap",
                timeout=1800,
            )
            log(f"rootfs: debootstrap took {seconds:.0f}s")
            self._trim(target)
            partial = tarball.with_suffix(".partial")
            run_logged(
                ["tar", "--numeric-owner", "--xattrs", "-C", str(target), "-cf", str(partial), "."],
                logfile=logfile,
                what="tar rootfs",
                timeout=900,
            )
            partial.rename(tarball)
            shutil.rmtree(target, ignore_errors=True)
        run_logged(
            ["docker", "import", str(tarball), self.image], logfile=logfile, what="docker import rootfs", timeout=900
        )
        size = capture(["docker", "image", "inspect", "-f", "{{.Size}}", self.image]).strip()
        log(f"rootfs: imported {self.image} ({size} bytes)")
        return self.image

    @staticmethod
    def _trim(root: Path) -> None:
        """What Debian's own slim images drop: apt lists and caches, docs, man pages, logs."""
        for rel in (
            "var/cache/apt/archives",
            "var/lib/apt/lists",
            "usr/share/doc",
            "usr/share/man",
            "usr/share/info",
            "var/log",
        ):
            path = root / rel
            if path.is_dir():
                for child in path.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
        if not (root / "bin" / "bash").exists() and not (root / "usr" / "bin" / "bash").exists():
            raise AirgapError("rootfs: debootstrap finished but there is no bash: see its log")
