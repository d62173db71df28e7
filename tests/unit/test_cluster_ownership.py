"""Clusters are deleted only by the checkout that created them (a marker on their nodes), and a
creation cut short leaves no cluster."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest

import floe_test.run as run_module
from components._private.creation_guard import CreationInterrupted, deleted_unless_created
from components.cluster_marker import (
    MANAGED_BY_LABEL,
    OWNER_LABEL,
    STACK_LABEL,
    Verdict,
    judge,
    marker_labels,
    node_labels_of,
    owner_id,
)
from floe_model.kind_config import CONFIG_HASH_LABEL, config_hash, kubelet_accepts_label
from floe_model.settings import parse_settings
from floe_test.program import plan_stack

MINE = {MANAGED_BY_LABEL: "floe-testinfra", OWNER_LABEL: owner_id(), STACK_LABEL: "integration"}


@pytest.mark.parametrize(
    ("api", "container", "ours", "reason"),
    [
        (MINE, None, True, "created by this checkout"),
        (None, MINE, True, "created by this checkout"),  # API down: the kubeadm config in the node tells
        ({**MINE, OWNER_LABEL: "0123456789abcdef"}, None, False, "from another checkout or machine"),
        ({"ingress-ready": "true"}, None, False, "not created by floe-testinfra"),
        ({MANAGED_BY_LABEL: "floe-testinfra"}, None, False, "not created by floe-testinfra"),  # the old layout
        (None, None, False, "its marker cannot be read"),
    ],
    ids=["ours", "ours-api-down", "other-checkout", "foreign", "no-owner", "unreadable"],
)
def test_only_a_cluster_marked_by_this_checkout_is_ours(api, container, ours, reason):
    verdict = judge("floe-x", from_api=lambda _: api, from_container=lambda _: container)
    assert verdict.ours is ours
    assert reason in verdict.reason


def test_the_marker_is_read_from_the_kubeadm_config_kind_wrote():
    text = 'nodeRegistration:\n  kubeletExtraArgs:\n    node-labels: "a=1,floe.dev/owner=abc,floe.dev/stack=e2e"\n'
    assert node_labels_of(text) == {"a": "1", OWNER_LABEL: "abc", STACK_LABEL: "e2e"}


def test_the_owner_is_this_checkout_on_this_machine(tmp_path):
    assert owner_id(tmp_path, "vm1") == owner_id(tmp_path, "vm1")
    assert owner_id(tmp_path, "vm1") != owner_id(tmp_path / "other", "vm1")
    assert owner_id(tmp_path, "vm1") != owner_id(tmp_path, "vm2")
    assert len(owner_id()) <= 63


@pytest.mark.parametrize("stack", ["integration", "e2e"])
def test_every_node_of_a_created_cluster_carries_the_marker_and_the_hash_ignores_it(stack):
    plan = plan_stack(parse_settings(stack, {}))
    for node in plan.kind_config.data["nodes"]:
        assert marker_labels(stack).items() <= node["labels"].items()
        assert node["labels"][CONFIG_HASH_LABEL] == plan.config_hash
        # kind passes them as kubelet --node-labels: one the kubelet refuses means no node at all.
        assert all(kubelet_accepts_label(key) for key in node["labels"]), node["labels"]
    # The same config from another checkout has the same hash (cluster reuse does not depend on paths).
    for node in plan.kind_config.data["nodes"]:
        node["labels"][OWNER_LABEL] = "someone-else"
    again = config_hash(plan.kind_config, kind_version=plan.versions.kind, node_image=plan.node_image)
    assert again == plan.config_hash


def test_cleanup_deletes_only_its_own_clusters_and_says_what_it_skipped(monkeypatch, capsys):
    verdicts = {
        "floe-integration": Verdict("floe-integration", False, "created by floe-testinfra from another checkout"),
        "floe-mine": Verdict("floe-mine", True, "created by this checkout", "integration"),
        "kind": Verdict("kind", False, "not created by floe-testinfra (its nodes lack floe.dev/owner)"),
    }
    deleted: list[str] = []
    monkeypatch.setattr(run_module, "pulumi_environment", dict)
    monkeypatch.setattr(run_module, "existing_stack", lambda name, env: None)
    monkeypatch.setattr("components.cluster_steps.existing_clusters", lambda: list(verdicts))
    monkeypatch.setattr("components.cluster_marker.judge", lambda name: verdicts[name])
    monkeypatch.setattr(run_module, "delete_kind_cluster", lambda name: deleted.append(name) or True)
    assert run_module.cleanup() == 0
    assert deleted == ["floe-mine"]
    err = capsys.readouterr().err
    assert "skipped kind cluster floe-integration: created by floe-testinfra from another checkout" in err
    assert "skipped kind cluster kind: not created by floe-testinfra" in err
    assert "stack integration: no state in this checkout, nothing to destroy" in err


def test_cleanup_of_one_stack_leaves_this_checkouts_other_clusters(monkeypatch, capsys):
    deleted: list[str] = []
    monkeypatch.setattr(run_module, "pulumi_environment", dict)
    monkeypatch.setattr(run_module, "existing_stack", lambda name, env: None)
    monkeypatch.setattr("components.cluster_steps.existing_clusters", lambda: ["floe-e2e-mine"])
    monkeypatch.setattr(
        "components.cluster_marker.judge", lambda name: Verdict(name, True, "created by this checkout", "e2e")
    )
    monkeypatch.setattr(run_module, "delete_kind_cluster", lambda name: deleted.append(name) or True)
    assert run_module.cleanup(("integration",)) == 0
    assert deleted == []
    assert "this checkout's, but of stack e2e, not asked for" in capsys.readouterr().err


# --- a creation cut short -----------------------------------------------------------------------------


def test_an_interrupted_creation_deletes_the_cluster_and_restores_the_handlers():
    deleted: list[str] = []
    before = signal.getsignal(signal.SIGTERM)
    with (
        pytest.raises(CreationInterrupted, match="SIGTERM while creating kind cluster floe-x; the partial"),
        deleted_unless_created("floe-x", existed=False, delete=deleted.append, log=lambda _: None),
    ):
        os.kill(os.getpid(), signal.SIGTERM)
    assert deleted == ["floe-x"]
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT], ids=["sighup", "sigint"])
def test_sighup_and_ctrl_c_count_as_interrupts_too(signum):
    deleted: list[str] = []
    with pytest.raises(CreationInterrupted), deleted_unless_created(
        "floe-x", existed=False, delete=deleted.append, log=lambda _: None
    ):
        os.kill(os.getpid(), signum)
    assert deleted == ["floe-x"]


def test_a_failed_creation_deletes_the_cluster_pulumi_will_never_know():
    deleted: list[str] = []
    with pytest.raises(BrokenPipeError), deleted_unless_created(
        "floe-x", existed=False, delete=deleted.append, log=lambda _: None
    ):
        raise BrokenPipeError("the engine is gone: the result cannot be handed over")
    assert deleted == ["floe-x"]


def test_a_cluster_that_existed_before_is_never_deleted_by_the_guard():
    deleted: list[str] = []
    with pytest.raises(CreationInterrupted), deleted_unless_created(
        "floe-x", existed=True, delete=deleted.append, log=lambda _: None
    ):
        os.kill(os.getpid(), signal.SIGTERM)
    assert deleted == []


def test_a_completed_creation_deletes_nothing():
    deleted: list[Any] = []
    with deleted_unless_created("floe-x", existed=False, delete=deleted.append, log=lambda _: None):
        pass
    assert deleted == []


def test_a_creation_whose_parent_dies_deletes_its_cluster(tmp_path):
    # Live drill: SIGHUP to the run's process group killed the Pulumi CLI; the command provider and
    # the creation below it run in a process group of their own and never saw the signal.
    import subprocess
    import sys

    from testing.polling import wait_for_condition

    marker = tmp_path / "deleted"
    creation = (
        "import sys, threading\n"
        "from components._private.creation_guard import deleted_unless_created\n"
        "with deleted_unless_created('floe-x', existed=False, delete=lambda n: open(sys.argv[1], 'w').write(n),"
        " log=lambda m: None):\n"
        "    threading.Event().wait(60)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c",
         "import subprocess, sys, threading; subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]]);"
         " threading.Event().wait(1.5)", creation, str(marker)],
    )
    parent.wait(timeout=30)  # the parent is gone; its child, the creation, lives on, orphaned
    wait_for_condition(marker.exists, timeout=15, interval=0.2, description="the orphaned creation to clean up")
    assert marker.read_text() == "floe-x"
