"""What the live tests know about the deployed environment: the Job's FLOE_* variables."""

from __future__ import annotations

import os

import pytest


def in_test_job() -> bool:
    return "FLOE_RUN_ID" in os.environ and os.path.isdir(os.environ.get("FLOE_RESULTS_DIR", "/results"))


def require_test_job() -> None:
    if not in_test_job():
        pytest.skip("not inside the test Job: FLOE_RUN_ID and the /results volume are set only there")


def expected(name: str) -> str:
    value = os.environ.get(name)
    if value is None:
        pytest.skip(f"{name} is not set: the stack's test Job sets it")
    return value
