"""A Kind cluster from the air-gapped node image: the project's kind config, create, check, delete, timed.

``python -m floe_build cluster-smoke [--nodes 1|3] [--keep]`` renders the integration (1 node) or
E2E (3 nodes) kind config through :func:`floe_model.kind_config.render_kind_config`, adds the containerd
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

from floe_build._run import AirgapError, cache_root, capture, log
from floe_model.kind_config import load_kind_config, render_kind_config
from floe_model.paths import BIN_DIR, K8S_DIR
from floe_model.versions import load_versions

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


NETPOL_NAMESPACE = "floe-airgap-netpol"


def _netpol_manifests(helper_image: str, server_image: str, nodes: list[str]) -> str:
    """A server (CoreDNS's health endpoint on :8080) and two clients; the server on the first worker,
    the allowed client on another node, the denied one beside the server (both datapaths)."""
    server_node, other_node = nodes[1 % len(nodes)], nodes[2 % len(nodes)]

    def client(name: str, role: str, node: str) -> str:
        return f"""---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NETPOL_NAMESPACE}, labels: {{role: {role}}}}}
spec:
  nodeName: {node}
  terminationGracePeriodSeconds: 0
  containers:
  - {{name: c, image: {helper_image}, imagePullPolicy: IfNotPresent, command: [sleep, infinity]}}
"""

    return f"""apiVersion: v1
kind: Namespace
metadata: {{name: {NETPOL_NAMESPACE}}}
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: corefile, namespace: {NETPOL_NAMESPACE}}}
data:
  Corefile: |
    .:1053 {{
      health :8080
      whoami
    }}
---
apiVersion: v1
kind: Pod
metadata: {{name: server, namespace: {NETPOL_NAMESPACE}, labels: {{app: server}}}}
spec:
  nodeName: {server_node}
  containers:
  - name: s
    image: {server_image}
    imagePullPolicy: IfNotPresent
    args: [-conf, /etc/coredns/Corefile]
    ports: [{{name: health, containerPort: 8080}}]
    volumeMounts: [{{name: conf, mountPath: /etc/coredns}}]
  volumes: [{{name: conf, configMap: {{name: corefile}}}}]
{client("allowed", "allowed", other_node)}{client("denied", "other", server_node)}"""


NETPOL_POLICY = f"""apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {{name: server-from-allowed, namespace: {NETPOL_NAMESPACE}}}
spec:
  podSelector: {{matchLabels: {{app: server}}}}
  ingress:
  - from: [{{podSelector: {{matchLabels: {{role: allowed}}}}}}]
    ports: [{{port: health}}]
"""


def check_network_policy(kc: list[str], nodes: list[str], images: dict[str, str]) -> dict[str, str]:
    """Allow/deny through a NetworkPolicy; returns what each client saw before and after it."""
    apply = subprocess.run(
        [*kc, "apply", "-f", "-"],
        input=_netpol_manifests(images["helper"], images["coredns"], nodes),
        text=True,
        capture_output=True,
        check=False,
    )
    if apply.returncode != 0:
        raise AirgapError(f"netpol check: kubectl apply failed: {apply.stderr.strip()}")
    capture(
        [*kc, "-n", NETPOL_NAMESPACE, "wait", "--for=condition=Ready", "pod", "--all", "--timeout=120s"], timeout=140
    )
    ip = capture([*kc, "-n", NETPOL_NAMESPACE, "get", "pod", "server", "-o", "jsonpath={.status.podIP}"]).strip()

    def probe(client: str) -> str:
        proc = subprocess.run(
            [*kc, "-n", NETPOL_NAMESPACE, "exec", client, "--", "curl", "-s", "-m", "3", f"http://{ip}:8080/health"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
        return proc.stdout.strip() if proc.returncode == 0 else f"failed (curl exit {proc.returncode})"

    seen = {f"{c} before policy": probe(c) for c in ("allowed", "denied")}
    subprocess.run([*kc, "apply", "-f", "-"], input=NETPOL_POLICY, text=True, capture_output=True, check=True)
    deadline = time.monotonic() + 30
    while True:  # the CNI daemon syncs every few seconds
        after = {f"{c} after policy": probe(c) for c in ("allowed", "denied")}
        if after["denied after policy"] != "OK" or time.monotonic() > deadline:
            break
        time.sleep(2)
    seen |= after
    expected = {"allowed before policy": "OK", "denied before policy": "OK", "allowed after policy": "OK"}
    wrong = {k: v for k, v in seen.items() if k in expected and v != expected[k]}
    if wrong or seen["denied after policy"] == "OK":
        raise AirgapError(f"netpol check: unexpected results {seen}")
    subprocess.run([*kc, "delete", "namespace", NETPOL_NAMESPACE, "--wait=false"], capture_output=True, check=False)
    return seen


def smoke(nodes: int = 1, keep: bool = False, wait: str = "5m", netpol: bool = False) -> float:
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
            if netpol:
                names = capture([*kc, "get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]).split()
                record = json.loads(
                    (cache_root() / "node-image" / f"node-{versions.get('kubernetes.version')}.json").read_text()
                )
                images = {
                    "helper": next(i for i in record["images"] if "local-path-helper" in i),
                    "coredns": next(i for i in record["images"] if "coredns" in i),
                }
                log("NetworkPolicy check: server, allowed and denied clients (≤ 3m0s)")
                for key, value in check_network_policy(kc, sorted(names), images).items():
                    log(f"  {key}: {value}")
        except AirgapError:
            keep = True
            raise
        finally:
            if not keep:
                subprocess.run([kind, "delete", "cluster", "--name", name], capture_output=True, check=False)
    return seconds
