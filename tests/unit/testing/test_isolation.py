"""Namespace names, labels, keep-on-failure and the sweeper (API faked at the client boundary)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from testing.errors import ConfigError
from testing.isolation import (
    EXPIRES_AT_LABEL,
    MANAGED_BY_LABEL,
    RUN_ID_LABEL,
    TEST_ID_LABEL,
    IsolatedNamespace,
    debug_commands,
    namespace_labels,
    new_namespace_name,
    sanitize_label_value,
    sweep_namespaces,
)
from testing.k8s_client import KubeClient

from .k8s_fakes import FakeCore, namespace

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def test_namespace_name_is_prefix_and_uuid8() -> None:
    assert re.fullmatch(r"floe-it-[0-9a-f]{8}", new_namespace_name("floe-it"))


def test_names_never_repeat() -> None:
    assert len({new_namespace_name("floe-it") for _ in range(2000)}) == 2000


@pytest.mark.parametrize("prefix", ["Floe", "floe_it", "-floe", "x" * 55, ""],
                         ids=["upper-case", "underscore", "leading-dash", "too-long", "empty"])
def test_invalid_prefix_is_a_config_error(prefix: str) -> None:
    with pytest.raises(ConfigError, match="namespace prefix"):
        new_namespace_name(prefix)


@pytest.mark.parametrize(
    "test_id",
    [
        "tests/integration/test_x.py::TestA::test_b[param-1]",
        "tests/integration/test_x.py::test_" + "very_long_name_" * 10 + "[a/b c]",
        "::[]",
        "tests/x.py::test_ünïcode",
    ],
    ids=["node-id", "very-long", "only-punctuation", "unicode"],
)
def test_sanitized_test_id_is_a_valid_label_value(test_id: str) -> None:
    value = sanitize_label_value(test_id)
    assert LABEL_VALUE.match(value) and 0 < len(value) <= 63


def test_long_ids_that_share_a_tail_stay_distinct() -> None:
    a = sanitize_label_value("a" * 100 + "::test_same")
    b = sanitize_label_value("b" * 100 + "::test_same")
    assert a != b


def test_labels_carry_run_test_manager_and_the_restricted_level() -> None:
    labels = namespace_labels("run-1", "tests/x.py::test_y")
    assert labels == {MANAGED_BY_LABEL: "floe-testinfra", RUN_ID_LABEL: "run-1",
                      TEST_ID_LABEL: "tests_x.py_test_y",
                      "pod-security.kubernetes.io/enforce": "restricted",
                      "pod-security.kubernetes.io/enforce-version": "latest"}


def make(core: FakeCore, *, keep: bool) -> IsolatedNamespace:
    kube = KubeClient(core=core, networking=object())
    return IsolatedNamespace(kube, prefix="floe-it", run_id="r1", test_id="t::x", keep_failed=keep,
                             delete_timeout=5, _now=lambda: 1_000_000.0)


def test_passing_namespace_is_deleted_and_waited_for() -> None:
    core = FakeCore(gone_after_reads=1)
    ns = make(core, keep=True)
    name = ns.create()
    assert ns.finish(failed=False) == []
    assert ("delete_namespace", name) in core.calls and name not in core.namespaces


def test_failed_namespace_is_deleted_when_keep_failed_is_off() -> None:
    core = FakeCore()
    ns = make(core, keep=False)
    name = ns.create()
    ns.finish(failed=True)
    assert ("delete_namespace", name) in core.calls


def test_failed_namespace_is_kept_with_ttl_and_debug_commands() -> None:
    core = FakeCore()
    ns = make(core, keep=True)
    name = ns.create()
    lines = ns.finish(failed=True)
    assert core.namespaces[name].metadata.labels[EXPIRES_AT_LABEL] == str(1_000_000 + 86400)
    assert not any(c[0] == "delete_namespace" for c in core.calls)
    assert f"  kubectl describe pods -n {name}" in lines
    assert f"  kubectl delete namespace {name}" in lines


def test_debug_commands_name_the_context() -> None:
    assert debug_commands("ns1", "kind-floe")[0].startswith("kubectl --context kind-floe get all")


def sweep_fixture() -> FakeCore:
    managed = {MANAGED_BY_LABEL: "floe-testinfra", TEST_ID_LABEL: "t", RUN_ID_LABEL: "old-run"}
    core = FakeCore()
    core.namespaces = {
        "floe-it-old": namespace("floe-it-old", age_hours=5, labels=managed, now=NOW),
        "floe-it-young": namespace("floe-it-young", age_hours=0.5, labels=managed, now=NOW),
        "floe-it-kept": namespace("floe-it-kept", age_hours=5, now=NOW, labels={
            **managed, EXPIRES_AT_LABEL: str(int(NOW.timestamp()) + 3600)}),
        "floe-it-expired": namespace("floe-it-expired", age_hours=30, now=NOW, labels={
            **managed, EXPIRES_AT_LABEL: str(int(NOW.timestamp()) - 1)}),
        "floe-it-going": namespace("floe-it-going", age_hours=9, labels=managed, now=NOW, phase="Terminating"),
        "floe-platform": namespace("floe-platform", age_hours=50, now=NOW,
                                   labels={MANAGED_BY_LABEL: "floe-testinfra", RUN_ID_LABEL: "old-run"}),
        "default": namespace("default", age_hours=500, labels={}, now=NOW),
    }
    return core


def test_sweep_deletes_old_and_expired_only() -> None:
    core = sweep_fixture()
    swept = sweep_namespaces(KubeClient(core=core, networking=object()), max_age=2 * 3600, now=NOW)
    assert sorted(s.name for s in swept) == ["floe-it-expired", "floe-it-old"]
    assert sorted(c[1] for c in core.calls if c[0] == "delete_namespace") == ["floe-it-expired", "floe-it-old"]


def test_sweep_dry_run_deletes_nothing() -> None:
    core = sweep_fixture()
    swept = sweep_namespaces(KubeClient(core=core, networking=object()), max_age=2 * 3600, now=NOW, dry_run=True)
    assert len(swept) == 2 and not any(c[0] == "delete_namespace" for c in core.calls)


def test_sweep_by_run_id_ignores_age_but_respects_expiry() -> None:
    core = sweep_fixture()
    swept = sweep_namespaces(KubeClient(core=core, networking=object()), run_id="old-run", now=NOW, dry_run=True)
    assert sorted(s.name for s in swept) == ["floe-it-expired", "floe-it-old", "floe-it-young"]


def test_sweep_never_considers_namespaces_without_a_test_id() -> None:
    core = sweep_fixture()
    sweep_namespaces(KubeClient(core=core, networking=object()), max_age=0, now=NOW, dry_run=True)
    selector = next(c[1] for c in core.calls if c[0] == "list_namespace")
    assert selector == f"{MANAGED_BY_LABEL}=floe-testinfra,{TEST_ID_LABEL}"
