"""Docker helpers of the image tests: the skip reason, one `docker` call, and containers cleaned up after use."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass


def docker_reason() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    if subprocess.run(["docker", "info"], capture_output=True, check=False, timeout=60).returncode != 0:
        return "the Docker daemon is not reachable (make host-prep)"
    return None


def docker(*argv: str, timeout: float = 300) -> str:
    proc = subprocess.run(["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False)
    assert proc.returncode == 0, f"docker {' '.join(argv)}: {proc.stderr[-2000:]}"
    return proc.stdout.strip()


def config(ref: str, field: str) -> str:
    """One field of the image's config, as JSON (``Entrypoint`` -> ``["/bin/x"]``)."""
    return docker("image", "inspect", "-f", "{{json .Config." + field + "}}", ref)


@dataclass
class Container:
    name: str

    @property
    def ip(self) -> str:
        return docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", self.name)

    def logs(self) -> str:
        proc = subprocess.run(["docker", "logs", self.name], capture_output=True, text=True, timeout=60, check=False)
        return (proc.stdout + proc.stderr)[-4000:]

    def exec(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", "exec", self.name, *argv], capture_output=True, text=True, timeout=timeout, check=False
        )


@contextmanager
def network() -> Iterator[str]:
    """A user-defined network, so containers reach each other by name (as Services do in a cluster)."""
    name = f"floe-img-{uuid.uuid4().hex[:8]}"
    docker("network", "create", name)
    try:
        yield name
    finally:
        subprocess.run(["docker", "network", "rm", name], capture_output=True, check=False, timeout=60)


@contextmanager
def running(ref: str, *args: str, options: Sequence[str] = (), name: str = "") -> Iterator[Container]:
    """``docker run -d [options] ref [args]``; the container is removed afterwards, whatever happened."""
    container = Container(name or f"floe-img-{uuid.uuid4().hex[:8]}")
    docker("run", "-d", "--name", container.name, *options, ref, *args)
    try:
        yield container
    finally:
        subprocess.run(["docker", "rm", "-f", container.name], capture_output=True, check=False, timeout=60)
