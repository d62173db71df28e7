"""A Kind cluster from the air-gapped node image: the project's kind config, create, check, delete, timed.

``python -m floe_test.airgap cluster-smoke [--nodes 1|3] [--keep]`` renders the integration (1 node) or
E2E (3 nodes) kind config through :func:`floe_test.kind_config.render_kind_config`, adds the containerd
patch only where this host needs it (:func:`containerd_patches`), runs ``kind create cluster --image
<the node image> --wait``, checks that every node is Ready and every kube-system/local-path pod runs,
and deletes the cluster (unless ``--keep``). It prints the create time.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from floe_test.airgap._run import AirgapError, cache_root, capture, log
from floe_test.kind_config import load_kind_config, render_kind_config
from floe_test.paths import BIN_DIR, K8S_DIR
from floe_test.versions import load_versions

#: kind's rootless setting: clamp negative oom_score_adj instead of failing the container.
RESTRICT_OOM_PATCH = '[plugins."io.containerd.grpc.v1.cri"]\n  restrict_oom_score_adj = true\n'
CAP_SYS_RESOURCE = 24


def lacks_cap_sys_resource(status_text: str) -> bool:
    """Whether ``/proc/self/status`` shows a bounding set without CAP_SYS_RESOURCE (nodes inherit it)."""
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            return not int(line.split()[1], 16) >> CAP_SYS_RESOURCE & 1
    return False


def containerd_patches(status_text: str | None = None) -> list[str]:
    """The containerd patches this host needs for any kind node image (ours also detects it at start)."""
    text = status_text if status_text is not None else Path("/proc/self/status").read_text()
    return [RESTRICT_OOM_PATCH] if lacks_cap_sys_resource(text) else []


def node_image_tag(kubernetes: str) -> str:
    record = cache_root() / "node-image" / f"node-{kubernetes}.json"
    try:
        return str(json.loads(record.read_text())["image"])
    except (OSError, ValueError, KeyError) as exc:
        raise AirgapError(f"no node image recorded in {record}: run `make node-image` first") from exc


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN_DIR)) or shutil.which(name)
    if not found:
        raise AirgapError(f"{name} is not installed: run `make tools`")
    return found


def smoke(nodes: int = 1, keep: bool = False, wait: str = "5m") -> float:
    versions = load_versions()
    image = node_image_tag(versions.get("kubernetes.version"))
    source = K8S_DIR / ("kind-config.yaml" if nodes == 1 else "kind-config-e2e.yaml")
    name = f"floe-airgap-{nodes}n"
    config = render_kind_config(
        load_kind_config(source), cluster_name=name, expose_ports=False, containerd_patches=containerd_patches()
    )
    kind, kubectl = _tool("kind"), _tool("kubectl")
    subprocess.run([kind, "delete", "cluster", "--name", name], capture_output=True, check=False)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "kind.yaml"
        path.write_text(yaml.safe_dump(config.data, sort_keys=False))
        kubeconfig = Path(tmp) / "kubeconfig"
        log(
            f"kind create cluster --name {name} --image {image} ({len(config.data['nodes'])} node(s), "
            f"containerd patches: {len(config.data.get('containerdConfigPatches', []))}; waiting ≤ {wait})"
        )
        started = time.monotonic()
        proc = subprocess.run(
            [
                kind,
                "create",
                "cluster",
                "--name",
                name,
                "--image",
                image,
                "--config",
                str(path),
                "--kubeconfig",
                str(kubeconfig),
                "--wait",
                wait,
                "--retain",
            ],
            check=False,
            text=True,
            stderr=subprocess.STDOUT,
            stdout=subprocess.PIPE,
            timeout=1200,
        )
        seconds = time.monotonic() - started
        print(proc.stdout, flush=True)
        try:
            if proc.returncode != 0:
                raise AirgapError(
                    f"kind create cluster failed after {seconds:.0f}s (exit {proc.returncode}); node "
                    f"logs: `kind export logs --name {name}` (cluster kept for inspection)"
                )
            log(f"cluster {name} created in {seconds:.0f}s")
            kc = [kubectl, "--kubeconfig", str(kubeconfig)]
            # kind --wait covers the control plane only: workers are Ready once the CNI config is written.
            log("waiting ≤ 3m0s for every node to be Ready")
            capture([*kc, "wait", "--for=condition=Ready", "node", "--all", "--timeout=180s"], timeout=200)
            all_ready = time.monotonic() - started
            log(f"all {len(config.data['nodes'])} node(s) Ready {all_ready:.0f}s after create started")
            print(capture([*kc, "get", "nodes", "-o", "wide"]), flush=True)
            deadline = time.monotonic() + 180
            log("waiting ≤ 3m0s for every pod in kube-system and local-path-storage to be Ready")
            while True:
                pods = json.loads(capture([*kc, "get", "pods", "-A", "-o", "json"]))["items"]
                not_ready = [
                    f"{p['metadata']['namespace']}/{p['metadata']['name']}"
                    for p in pods
                    if not any(
                        c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])
                    )
                ]
                if not not_ready:
                    break
                if time.monotonic() > deadline:
                    print(capture([*kc, "get", "pods", "-A", "-o", "wide"]), flush=True)
                    raise AirgapError(f"pods not Ready after 3m: {', '.join(not_ready)}")
                time.sleep(3)
            print(capture([*kc, "get", "pods", "-A", "-o", "wide"]), flush=True)
        except AirgapError:
            keep = True
            raise
        finally:
            if not keep:
                subprocess.run([kind, "delete", "cluster", "--name", name], capture_output=True, check=False)
    return seconds
