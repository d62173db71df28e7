"""testing.dagster against a GraphQL endpoint that answers like Dagster's webserver (httpx's mock transport)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from testing.dagster import DagsterClient, DagsterError
from testing.errors import WaitFailed, WaitTimeout


def _client(answer: Callable[[str, dict[str, Any]], dict[str, Any]]) -> DagsterClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/graphql"
        body = json.loads(request.content)
        return httpx.Response(200, json={"data": answer(body["query"], body["variables"])})

    return DagsterClient("http://dagster.test:80", transport=httpx.MockTransport(handler))


def _run(statuses: list[str], events: list[dict[str, Any]]) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    def answer(query: str, variables: dict[str, Any]) -> dict[str, Any]:
        if "launchRun" in query:
            assert variables["params"]["selector"] == {
                "repositoryLocationName": "floe-demo",
                "repositoryName": "__repository__",
                "jobName": "floe_demo_job",
            }
            return {"launchRun": {"__typename": "LaunchRunSuccess", "run": {"runId": "r-1", "status": "QUEUED"}}}
        if "runOrError" in query:
            status = statuses.pop(0) if len(statuses) > 1 else statuses[0]
            return {"runOrError": {"__typename": "Run", "runId": "r-1", "status": status}}
        if "logsForRun" in query:
            return {"logsForRun": {"__typename": "EventConnection", "events": events}}
        raise AssertionError(query)

    return answer


MATERIALIZED = {
    "__typename": "MaterializationEvent",
    "assetKey": {"path": ["floe_demo", "order_totals"]},
    "metadataEntries": [
        {"label": "rows", "__typename": "IntMetadataEntry", "intValue": 10},
        {"label": "table", "__typename": "TextMetadataEntry", "text": "demo.order_totals"},
    ],
}


def test_a_run_is_launched_waited_for_and_its_metadata_read() -> None:
    client = _client(_run(["QUEUED", "STARTED", "SUCCESS"], [MATERIALIZED]))
    run_id = client.launch("floe-demo", "floe_demo_job")
    assert client.wait_for_run(run_id, timeout=10, interval=0.01).status == "SUCCESS"
    (materialization,) = client.materializations(run_id)
    assert materialization.asset_key == ("floe_demo", "order_totals")
    assert materialization.metadata == {"rows": 10, "table": "demo.order_totals"}


def test_a_failed_run_ends_the_wait_at_once_naming_run_status_and_last_event() -> None:
    last = {"__typename": "RunFailureEvent", "message": "Execution of run failed: boom", "timestamp": "1"}
    client = _client(_run(["STARTED", "FAILURE"], [last]))
    with pytest.raises(WaitFailed) as info:
        client.wait_for_run("r-1", timeout=30, interval=0.01)
    message = str(info.value)
    assert "run r-1 FAILURE" in message and "RunFailureEvent: Execution of run failed: boom" in message
    assert info.value.elapsed < 5


def test_a_run_that_never_ends_times_out_naming_its_status_and_last_event() -> None:
    started = {"__typename": "RunStartEvent", "message": "Started execution of run", "timestamp": "1"}
    client = _client(_run(["STARTED"], [started]))
    with pytest.raises(WaitTimeout, match="run r-1 STARTED \\(last event: RunStartEvent: Started execution"):
        client.wait_for_run("r-1", timeout=0.2, interval=0.05)


def test_a_launch_error_is_reported_with_its_type() -> None:
    client = _client(lambda q, v: {"launchRun": {"__typename": "PipelineNotFoundError", "message": "no such job"}})
    with pytest.raises(DagsterError, match="PipelineNotFoundError: no such job"):
        client.launch("floe-demo", "floe_demo_job")


def test_a_location_that_failed_to_load_ends_the_wait_with_its_error() -> None:
    entry = {
        "name": "floe-demo",
        "loadStatus": "LOADED",
        "locationOrLoadError": {"__typename": "PythonError", "message": "ModuleNotFoundError: floe_demo"},
    }
    client = _client(lambda q, v: {"workspaceOrError": {"__typename": "Workspace", "locationEntries": [entry]}})
    with pytest.raises(WaitFailed, match="ModuleNotFoundError: floe_demo"):
        client.wait_for_location("floe-demo", timeout=10)
