"""Dagster through its webserver's GraphQL API, as a user's tooling drives it: launch a job, wait for it.

The webserver of the deployed profile is the ``dagster`` endpoint (``FLOE_SERVICES``); runs are
launched there and started by the chart's run launcher (K8sRunLauncher: a Kubernetes Job per run).
A wait for a run ends as soon as the run ends: SUCCESS returns, FAILURE or CANCELED raise at once with
the run id, its status and its last event, which is what a failure message needs to be acted on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from testing.errors import InfraError
from testing.polling import Check, wait_for_condition

__all__ = ["DagsterClient", "DagsterError", "Materialization", "RunState"]

#: Run statuses after which a run never changes again.
FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})

_LOCATIONS = """
query { workspaceOrError { __typename
  ... on Workspace { locationEntries { name loadStatus
      locationOrLoadError { __typename ... on PythonError { message } } } }
  ... on PythonError { message } } }
"""
_LAUNCH = """
mutation Launch($params: ExecutionParams!) { launchRun(executionParams: $params) { __typename
  ... on LaunchRunSuccess { run { runId status } }
  ... on Error { message } } }
"""
_RUN = """
query Run($runId: ID!) { runOrError(runId: $runId) { __typename
  ... on Run { runId status }
  ... on Error { message } } }
"""
_EVENTS = """
query Events($runId: ID!) { logsForRun(runId: $runId, limit: 1000) { __typename
  ... on EventConnection { events { __typename
      ... on MessageEvent { message timestamp stepKey }
      ... on MaterializationEvent { assetKey { path } metadataEntries { label __typename
          ... on IntMetadataEntry { intValue }
          ... on TextMetadataEntry { text }
          ... on PathMetadataEntry { path } } } } }
  ... on Error { message } } }
"""


class DagsterError(InfraError):
    """The webserver answered with an error (GraphQL errors, or an error type instead of the result)."""


@dataclass(frozen=True)
class RunState:
    run_id: str
    status: str
    last_event: str = ""

    def __str__(self) -> str:
        return f"run {self.run_id} {self.status}" + (f" (last event: {self.last_event})" if self.last_event else "")


@dataclass(frozen=True)
class Materialization:
    asset_key: tuple[str, ...]
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass
class DagsterClient:
    """A small GraphQL client of one Dagster webserver (``http://host:port``)."""

    base_url: str
    timeout: float = 30.0
    transport: httpx.BaseTransport | None = None

    def query(self, document: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        with httpx.Client(base_url=self.base_url, timeout=self.timeout, transport=self.transport) as http:
            response = http.post("/graphql", json={"query": document, "variables": dict(variables or {})})
        if response.status_code != 200:
            raise DagsterError(f"POST {self.base_url}/graphql answered {response.status_code}: {response.text[:500]}")
        body: dict[str, Any] = response.json()
        if body.get("errors"):
            messages = "; ".join(str(e.get("message")) for e in body["errors"])
            raise DagsterError(f"GraphQL errors from {self.base_url}: {messages}")
        data: dict[str, Any] = body["data"]
        return data

    def location_status(self, location: str) -> str:
        """``LOADED``, ``LOADING``, ``error: ...`` or ``absent`` for a code location of the workspace."""
        workspace = self.query(_LOCATIONS)["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            return f"error: {workspace.get('message')}"
        for entry in workspace["locationEntries"]:
            if entry["name"] == location:
                loaded = entry.get("locationOrLoadError") or {}
                if loaded.get("__typename") == "PythonError":
                    return f"error: {loaded.get('message', '').strip()[:500]}"
                return str(entry["loadStatus"])
        names = ", ".join(e["name"] for e in workspace["locationEntries"]) or "none"
        return f"absent (locations: {names})"

    def wait_for_location(self, location: str, *, timeout: float) -> None:
        def loaded() -> Check[str]:
            status = self.location_status(location)
            return Check(status == "LOADED", status)

        wait_for_condition(
            loaded,
            timeout=timeout,
            interval=3,
            description=f"code location {location} to load in the Dagster webserver {self.base_url}",
            fail_if=lambda status: status if status and status.startswith("error:") else None,
            hint="check the user code deployment's pod and its log",
        )

    def launch(self, location: str, job: str, *, repository: str = "__repository__") -> str:
        """Launch ``job``; returns the run id."""
        selector = {"repositoryLocationName": location, "repositoryName": repository, "jobName": job}
        result = self.query(_LAUNCH, {"params": {"selector": selector, "runConfigData": {}}})["launchRun"]
        if result["__typename"] != "LaunchRunSuccess":
            raise DagsterError(f"launching {job} in {location} failed: {result['__typename']}: {result.get('message')}")
        return str(result["run"]["runId"])

    def status(self, run_id: str) -> str:
        run = self.query(_RUN, {"runId": run_id})["runOrError"]
        if run["__typename"] != "Run":
            raise DagsterError(f"run {run_id}: {run['__typename']}: {run.get('message')}")
        return str(run["status"])

    def events(self, run_id: str) -> list[dict[str, Any]]:
        logs = self.query(_EVENTS, {"runId": run_id})["logsForRun"]
        if logs["__typename"] != "EventConnection":
            raise DagsterError(f"events of run {run_id}: {logs['__typename']}: {logs.get('message')}")
        events: list[dict[str, Any]] = logs["events"]
        return events

    def last_event(self, run_id: str) -> str:
        try:
            events = self.events(run_id)
        except (DagsterError, httpx.HTTPError) as exc:
            return f"(events unreadable: {exc})"
        if not events:
            return "(no event yet)"
        last = events[-1]
        return f"{last['__typename']}: {str(last.get('message') or '').strip()[:500]}"

    def wait_for_run(self, run_id: str, *, timeout: float, interval: float = 5) -> RunState:
        """Wait (bounded) until the run succeeds; FAILURE or CANCELED end the wait at once."""

        def finished() -> Check[RunState]:
            # The last event every time: a timeout then names it too, not only a failure.
            status = self.status(run_id)
            return Check(status == "SUCCESS", RunState(run_id, status, self.last_event(run_id)))

        def failed(state: RunState | None) -> str | None:
            return str(state) if state is not None and state.status in FINISHED - {"SUCCESS"} else None

        state = wait_for_condition(
            finished,
            timeout=timeout,
            interval=interval,
            description=f"Dagster run {run_id} to succeed",
            fail_if=failed,
            hint=f"the run worker's Job in the platform namespace: kubectl logs job/dagster-run-{run_id}",
        )
        assert state is not None
        return state

    def materializations(self, run_id: str) -> list[Materialization]:
        found = []
        for event in self.events(run_id):
            if event["__typename"] != "MaterializationEvent":
                continue
            metadata: dict[str, Any] = {}
            for entry in event.get("metadataEntries") or []:
                for key in ("intValue", "text", "path"):
                    if key in entry:
                        metadata[entry["label"]] = entry[key]
            found.append(Materialization(tuple(event["assetKey"]["path"]), metadata))
        return found
