"""Labels every object of ours carries, so a sweeper can find (only) what this project made."""

from __future__ import annotations

MANAGED_BY = "floe-testinfra"
RUN_ID_LABEL = "floe.dev/run-id"
STACK_LABEL = "floe.dev/stack"
TYPE_PREFIX = "floe:testinfra"


def common_labels(
    *, run_id: str | None = None, stack: str | None = None, component: str | None = None
) -> dict[str, str]:
    labels = {"app.kubernetes.io/managed-by": MANAGED_BY, "app.kubernetes.io/part-of": "floe-testinfra"}
    if component:
        labels["app.kubernetes.io/component"] = component
    if run_id:
        labels[RUN_ID_LABEL] = run_id
    if stack:
        labels[STACK_LABEL] = stack
    return labels
