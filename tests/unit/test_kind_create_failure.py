"""A failed `kind create cluster` says why (kubeadm's errors, the kubelet's journal) and leaves no node."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from components import cluster_steps as kindctl
from testing.errors import InfraError

KIND_OUTPUT = """\
Creating cluster "floe-x" ...
 ✓ Ensuring node image (floe-testinfra/node:v1.34.0) 🖼
 ✗ Starting control-plane 🕹️
ERROR: failed to create cluster: failed to init node with kubeadm: command "docker exec --privileged \
floe-x-control-plane kubeadm init --config=/kind/kubeadm.conf" failed with error: exit status 1
Command Output: I1203 09:00:00.000000  200 initconfiguration.go:261] loading configuration from "/kind/kubeadm.conf"
[init] Using Kubernetes version: v1.34.0
[kubelet-check] The kubelet is not healthy after 4m0.000s
error execution phase wait-control-plane: could not initialize a Kubernetes cluster
goroutine 1 [running]:
k8s.io/kubernetes/cmd/kubeadm/app/cmd/phases/workflow.(*Runner).Run.func1(0xc0004e2000)
"""
JOURNAL = "\n".join(
    [f"Dec 03 09:00:{i:02d} floe-x-control-plane kubelet[99]: line {i}" for i in range(30)]
    + [
        'Dec 03 09:00:59 floe-x-control-plane kubelet[99]: E1203 "Failed to run kubelet" '
        'err="cgroup [kubelet] has some missing paths"'
    ]
)


class FakeKind:
    """Answers `kind` as the real one would after a failed creation with --retain: the nodes still exist."""

    def __init__(self, *, create_rc: int = 1, export_ok: bool = True) -> None:
        self.calls: list[list[str]] = []
        self.clusters = {"floe-x"}
        self.create_rc = create_rc
        self.export_ok = export_ok

    def __call__(self, argv, *, timeout, what, input_text=None, check=True):
        self.calls.append(list(argv))
        if argv[:3] == ["kind", "create", "cluster"]:
            return subprocess.CompletedProcess(argv, self.create_rc, "", KIND_OUTPUT)
        if argv[:3] == ["kind", "export", "logs"]:
            if not self.export_ok:
                raise InfraError("exporting logs of floe-x: exited 1")
            node = Path(argv[3]) / "floe-x-control-plane"
            node.mkdir(parents=True)
            (node / "kubelet.log").write_text(JOURNAL)
            return subprocess.CompletedProcess(argv, 0, "", "")
        if argv[:3] == ["kind", "get", "clusters"]:
            return subprocess.CompletedProcess(argv, 0, "\n".join(sorted(self.clusters)), "")
        if argv[:3] == ["kind", "delete", "cluster"]:
            self.clusters.discard(argv[-1])
            return subprocess.CompletedProcess(argv, 0, "", "")
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def fake_kind(monkeypatch, tmp_path):
    fake = FakeKind()
    monkeypatch.setattr(kindctl, "run", fake)
    monkeypatch.setenv(kindctl.DIAGNOSTICS_ENV, str(tmp_path / "diagnostics"))
    return fake


def test_a_failed_creation_names_kubeadms_errors_and_the_kubelets_last_journal_lines(fake_kind, tmp_path):
    with pytest.raises(InfraError) as failure:
        kindctl.create_cluster("floe-x", tmp_path / "kind.yaml", "img:1", timeout=60)
    message = str(failure.value)
    assert "creating kind cluster floe-x failed (kind exit 1)" in message
    assert "error execution phase wait-control-plane: could not initialize a Kubernetes cluster" in message
    assert "goroutine 1 [running]" not in message, "the stack trace is not the cause"
    assert 'cgroup [kubelet] has some missing paths' in message
    assert "line 19" not in message and "line 29" in message, "only the journal's last lines"
    exported = next((tmp_path / "diagnostics").glob("floe-x-*"))
    assert str(exported) in message
    assert (exported / "floe-x-control-plane" / "kubelet.log").is_file()


def test_a_failed_creation_leaves_no_cluster_behind(fake_kind, tmp_path):
    with pytest.raises(InfraError):
        kindctl.create_cluster("floe-x", tmp_path / "kind.yaml", "img:1", timeout=60)
    create = next(c for c in fake_kind.calls if c[:3] == ["kind", "create", "cluster"])
    assert "--retain" in create, "without --retain kind removes the nodes (and their logs) first"
    assert fake_kind.clusters == set()
    order = [c[1] for c in fake_kind.calls]
    assert order.index("export") < order.index("delete"), "logs are exported before the nodes go"


def test_when_the_logs_cannot_be_exported_the_message_still_gives_kubeadms_errors(fake_kind, tmp_path):
    fake_kind.export_ok = False
    with pytest.raises(InfraError, match=r"(?s)error execution phase.*node logs could not be exported"):
        kindctl.create_cluster("floe-x", tmp_path / "kind.yaml", "img:1", timeout=60)
    assert fake_kind.clusters == set()


PORT_CLASH = """\
Creating cluster "floe-x" ...
 ✗ Preparing nodes 📦
ERROR: failed to create cluster: command "docker run --name floe-x-control-plane --hostname floe-x-control-plane \
--label io.x-k8s.kind.role=control-plane --privileged --security-opt seccomp=unconfined --tmpfs /tmp --tmpfs /run \
--volume /var --volume /lib/modules:/lib/modules:ro --detach --tty floe-testinfra/node:v1.34.0" \
failed with error: exit status 125

Command Output: 0edd4ceeaac8457db797d9fd181eeb251f82cb6882788c1e1acece44af72f0a7
docker: Error response from daemon: driver failed programming external connectivity on endpoint floe-x-control-plane \
(108cbda6): Bind for 127.0.0.1:30080 failed: port is already allocated
"""


def test_dockers_own_error_is_shown_whole_and_kinds_long_command_line_shortened(fake_kind, tmp_path):
    """Found live: the cause (a host port held by another cluster) came after a 1,500-character command."""
    detail = kindctl.creation_failure_detail("floe-x", PORT_CLASH, logs_root=tmp_path)
    assert "Bind for 127.0.0.1:30080 failed: port is already allocated" in detail
    assert '--volume /var --volume' not in detail and 'command "docker run --name floe-x-control-plane' in detail


def test_a_successful_creation_exports_nothing(fake_kind, tmp_path):
    fake_kind.create_rc = 0
    kindctl.create_cluster("floe-x", tmp_path / "kind.yaml", "img:1", timeout=60)
    assert [c[:3] for c in fake_kind.calls] == [["kind", "create", "cluster"]]
    assert fake_kind.clusters == {"floe-x"}
