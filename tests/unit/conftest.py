"""Shared fixtures of the offline suite: both stacks rendered once under Pulumi's mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from floe_test.render import render


def load_rendered(out: Path) -> dict[str, Any]:
    manifests = [yaml.safe_load(p.read_text()) for p in sorted((out / "manifests").glob("*.yaml"))]
    releases = {p.stem: yaml.safe_load(p.read_text()) for p in sorted((out / "releases").glob("*.yaml"))}
    return {
        "dir": out,
        "plan": json.loads((out / "plan.json").read_text()),
        "kind_config": yaml.safe_load((out / "kind-config.yaml").read_text()),
        "manifests": manifests,
        "releases": releases,
    }


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each stack rendered by the real program under mocks (floe-test render)."""
    result = {}
    for stack in ("integration", "e2e"):
        out = tmp_path_factory.mktemp(f"render-{stack}")
        render(stack, out)
        result[stack] = load_rendered(out)
    return result


def objects(rendered_stack: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [m for m in rendered_stack["manifests"] if m["kind"] == kind]
