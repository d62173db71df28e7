"""`python -m floe_build ready`: CI's question before an offline cluster run; it only looks."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from floe_build import ready, toolchain


@dataclass
class _Status:
    matches_pin: bool


class _Chain:
    def __init__(self, missing: set[str]) -> None:
        self.missing = missing

    def pinned(self, tool: str) -> str:
        return "v1"

    def status(self, tool: str, *, probe: bool = True) -> _Status:
        assert probe is False  # never runs the binaries: this is a quick look
        return _Status(tool not in self.missing)


def test_every_missing_piece_is_named_with_its_make_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain, "Toolchain", lambda: _Chain({"kind", "helm"}))
    monkeypatch.setattr(ready, "docker_running", lambda: None)
    monkeypatch.setattr(ready, "node_image_tag", lambda version: f"floe-testinfra/node:{version}-abc")
    present = {"floe-testinfra/postgres-airgapped:15-bookworm"}
    monkeypatch.setattr(ready, "image_exists", lambda ref: ref in present)
    problems = ready.missing()
    assert "kind v1 is not in the tool cache (make tools)" in problems
    assert "helm v1 is not in the tool cache (make tools)" in problems
    assert any(p.startswith("node image floe-testinfra/node:") and "make node-image" in p for p in problems)
    assert any("dagster-airgapped" in p and "make airgapped-images" in p for p in problems)
    assert not any("postgres-airgapped" in p for p in problems)


def test_without_docker_only_docker_and_tools_are_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(toolchain, "Toolchain", lambda: _Chain(set()))
    monkeypatch.setattr(ready, "docker_running", lambda: "the Docker engine is not running")
    assert ready.missing() == ["Docker: the Docker engine is not running"]


def test_ready_when_nothing_is_missing(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(ready, "missing", lambda: [])
    assert ready.main() == 0
    assert capsys.readouterr().out.startswith("ready:")
    monkeypatch.setattr(ready, "missing", lambda: ["a", "b"])
    assert ready.main() == 1
    assert capsys.readouterr().out == "not ready: a; b\n"


def test_a_chart_in_neither_the_cache_nor_the_offline_repository_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    from floe_model.versions import load_versions

    monkeypatch.setenv("FLOE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("FLOE_OFFLINE_CHARTS", str(tmp_path / "no-repo"))
    pin = load_versions().charts["dagster"]
    (problem,) = ready.missing_charts(load_versions())
    assert problem.startswith(f"chart dagster {pin.version} is not in {tmp_path / 'cache' / 'charts'}")
