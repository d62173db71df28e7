"""``floe-test doctor``: every prerequisite of a cluster run, checked before anything is created.

Each check says what it found and, when it fails, the one thing to do about it. A failed required
check makes ``floe-test run`` (and ``make test-k8s``) stop with exit code 2 and create nothing.
"""

from __future__ import annotations

import shutil
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from floe_model.paths import REPO_ROOT
from floe_model.proc import docker_running, run
from testing.errors import InfraError

#: What a run needs from the Docker engine, per stack (the E2E platform is much larger).
MIN_MEMORY_GIB = {"integration": 4, "e2e": 8}
MIN_CPUS = {"integration": 2, "e2e": 4}
MIN_FREE_DISK_GIB = 10
MIN_INOTIFY_INSTANCES = {"integration": 128, "e2e": 512}
REQUIRED_TOOLS = ("kind", "kubectl", "helm", "pulumi")
#: Pulumi finds these only in the toolchain's plugin folder (automatic downloads are disabled).
REQUIRED_PLUGINS = ("pulumi-language-python", "pulumi-resource-command", "pulumi-resource-kubernetes")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True


def check_docker(stack: str, node_image: str | None = None, *, local_node_image: bool = False) -> list[Check]:
    reason = docker_running()
    if reason:
        return [Check("docker", False, reason, "start the Docker engine, then run again")]
    out = run(["docker", "info", "--format", "{{.NCPU}} {{.MemTotal}}"], timeout=20, what="reading Docker's resources")
    cpus, mem = (int(x) for x in out.stdout.split())
    gib = mem / 2**30
    from floe_model.versions import load_versions

    node_image = node_image or load_versions().node_image
    present = run(["docker", "image", "inspect", node_image], timeout=30, what="inspecting the node image", check=False)
    return [
        Check("docker", True, "engine running"),
        Check(
            "node image",
            present.returncode == 0,
            f"{node_image} in the local Docker store"
            if present.returncode == 0
            else f"{node_image} is missing, and a locally built image cannot be pulled"
            if local_node_image
            else f"{node_image} will be pulled by kind",
            "build it here (`make node-image`)" if local_node_image else "without registry access `make node-image`",
            required=local_node_image,
        ),
        Check(
            "docker cpus",
            cpus >= MIN_CPUS[stack],
            f"{cpus} CPUs (the {stack} stack wants ≥ {MIN_CPUS[stack]})",
            "give Docker more CPUs (Docker Desktop: Settings → Resources)",
            required=False,
        ),
        Check(
            "docker memory",
            gib >= MIN_MEMORY_GIB[stack],
            f"{gib:.1f} GiB (the {stack} stack needs ≥ {MIN_MEMORY_GIB[stack]} GiB)",
            "give Docker more memory (Docker Desktop: Settings → Resources)",
        ),
    ]


def check_tools(versions: dict[str, str]) -> list[Check]:
    from floe_build.toolchain import Toolchain

    chain = Toolchain()
    checks = []
    for tool in REQUIRED_TOOLS:
        status = chain.status(tool)
        found = shutil.which(tool, path=f"{chain.bin_dir}:{chain.pulumi_root / 'bin'}") or shutil.which(tool)
        if status.installed and status.matches_pin:
            checks.append(Check(tool, True, f"{status.installed} ({status.origin}) matches the pin"))
        elif found:
            checks.append(
                Check(
                    tool,
                    True,
                    f"found at {found}, not the pinned {versions.get(tool, '?')} from `make tools`",
                    required=False,
                )
            )
        else:
            checks.append(
                Check(
                    tool,
                    False,
                    "not installed",
                    "run `make tools` (pinned, checksummed; builds from Go modules where downloads are unreachable)",
                )
            )
    checks.append(check_uv())
    for plugin in REQUIRED_PLUGINS:
        status = chain.status(plugin, probe=False)
        if status.installed and status.matches_pin:
            checks.append(Check(plugin, True, f"{status.installed} ({status.origin})"))
        else:
            found = f"{status.installed} installed, pinned {status.pinned}" if status.installed else "not installed"
            checks.append(
                Check(plugin, False, found, "run `make tools` (Pulumi loads plugins only from the toolchain)")
            )
    return checks


def check_uv() -> Check:
    """The uv the Pulumi program's runtime will find: Pulumi.yaml's uv toolchain looks for it on the
    PATH of every Pulumi call the project makes (:func:`floe_build.toolchain.pulumi_env`)."""
    from floe_build.toolchain import pulumi_env

    found = shutil.which("uv", path=pulumi_env()["PATH"])
    if found:
        return Check("uv", True, f"{found} (Pulumi's Python runtime runs the program with it)")
    return Check(
        "uv",
        False,
        "not on PATH and not installed by `make setup`: Pulumi's uv toolchain cannot start the program",
        "run `make setup` (installs uv into .tools/uv when none is on PATH)",
    )


def busy_host_ports(kind_config: Mapping[str, Any]) -> list[str]:
    """The host ports the kind config maps (``extraPortMappings``) that something already holds."""
    busy = []
    for node in kind_config.get("nodes") or []:
        for mapping in node.get("extraPortMappings") or []:
            if str(mapping.get("protocol", "TCP")).upper() != "TCP":
                continue
            address = (mapping.get("listenAddress") or "0.0.0.0", int(mapping["hostPort"]))
            with socket.socket() as probe:
                try:
                    probe.bind(address)
                except OSError:
                    busy.append(f"{address[0]}:{address[1]}")
    return busy


def check_host_ports(kind_config: Mapping[str, Any], *, cluster_running: bool) -> Check:
    """A host port of the kind config held by something else makes `kind create` fail late (found when two
    clusters of one stack ran on one host). A running cluster of this stack holds them itself: reused."""
    name = str(kind_config.get("name", "?"))
    if cluster_running:
        return Check("host ports", True, f"cluster {name} exists and holds its own ports", required=False)
    busy = busy_host_ports(kind_config)
    if not busy:
        return Check("host ports", True, "every port the kind config maps is free")
    return Check(
        "host ports",
        False,
        f"{', '.join(busy)} already in use (`docker ps` shows which container holds it)",
        "stop what holds it, or run without host port mappings: `--set exposePorts=false`",
    )


def check_inotify(stack: str, proc: Path = Path("/proc/sys/fs/inotify/max_user_instances")) -> Check:
    if not proc.exists():
        return Check("inotify", True, "not a Linux host: nothing to check", required=False)
    value = int(proc.read_text().strip())
    need = MIN_INOTIFY_INSTANCES[stack]
    return Check(
        "inotify",
        value >= need,
        f"max_user_instances {value} (≥ {need} for {stack})",
        f"sudo sysctl fs.inotify.max_user_instances={max(need, 512)}",
    )


def check_disk(path: Path = REPO_ROOT) -> Check:
    free = shutil.disk_usage(path).free / 2**30
    return Check(
        "disk",
        free >= MIN_FREE_DISK_GIB,
        f"{free:.0f} GiB free (≥ {MIN_FREE_DISK_GIB} GiB for images)",
        "free disk space (`docker system prune` removes unused images)",
    )


def diagnose(
    stack: str,
    *,
    node_image: str | None = None,
    local_node_image: bool = False,
    kind_config: Mapping[str, Any] | None = None,
    checks: list[Callable[[], list[Check]]] | None = None,
) -> list[Check]:
    """Every prerequisite of a run of ``stack`` (``node_image``: the one the run will use; a
    ``local_node_image`` was built here and cannot be pulled when missing)."""
    from floe_model.versions import load_versions

    tools = load_versions().tools
    pinned = {
        "kind": load_versions().kind,
        "kubectl": tools["kubectl"],
        "helm": tools["helm"],
        "pulumi": tools["pulumi"],
    }
    runners = checks or [
        lambda: check_docker(stack, node_image, local_node_image=local_node_image),
        lambda: check_tools(pinned),
        lambda: [check_inotify(stack)],
        lambda: [check_disk()],
    ]
    if kind_config is not None and not checks:
        runners.append(lambda: [check_host_ports(kind_config, cluster_running=_kind_cluster_exists(kind_config))])
    results: list[Check] = []
    for runner in runners:
        try:
            results += runner()
        except InfraError as exc:
            results.append(Check("check", False, str(exc)))
    return results


def _kind_cluster_exists(kind_config: Mapping[str, Any]) -> bool:
    listed = run(["kind", "get", "clusters"], timeout=60, what="listing kind clusters", check=False)
    return str(kind_config.get("name")) in listed.stdout.split()


def report(results: list[Check]) -> bool:
    """Print the checks; True when every required one passed."""
    from rich.console import Console
    from rich.table import Table

    table = Table("check", "result", "detail", "fix", title="floe-test doctor")
    for c in results:
        mark = "[green]ok[/]" if c.ok else ("[red]FAIL[/]" if c.required else "[yellow]warn[/]")
        table.add_row(c.name, mark, c.detail, "" if c.ok else c.fix)
    Console(stderr=True, width=None if sys.stderr.isatty() else 160).print(table)
    return all(c.ok for c in results if c.required)
