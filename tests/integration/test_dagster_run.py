"""REQ-640 live: Dagster as users run it. A run of the code location's job is launched through the
webserver's GraphQL API, started by the chart's K8sRunLauncher as a Kubernetes Job on the code location's
image, computes with DuckDB, writes local Iceberg metadata, and reports what it wrote.

The webserver is the profile's ``dagster`` endpoint (``FLOE_SERVICES``); the test skips, saying so, where
the profile deploys no Dagster.
"""

from __future__ import annotations

import os

import pytest

from testing.dagster import DagsterClient
from testing.endpoints import get_endpoint
from testing.errors import ServiceUnavailable

pytestmark = pytest.mark.integration

#: The code location (images/dagster-code) as the profile deploys it: the user deployment's name.
LOCATION = "floe-demo"
JOB = "floe_demo_job"
#: What floe_demo computes: 1000 orders 0..999 over 10 customers.
EXPECTED_ROWS, EXPECTED_TOTAL = 10, sum(range(1000))


@pytest.fixture(scope="module")
def dagster() -> DagsterClient:
    try:
        endpoint = get_endpoint("dagster")
    except ServiceUnavailable as exc:
        pytest.skip(str(exc))
    return DagsterClient(endpoint.base_url)


@pytest.mark.timeout(900)
def test_a_launched_run_of_the_code_location_succeeds_and_writes_its_iceberg_table(dagster: DagsterClient) -> None:
    dagster.wait_for_location(LOCATION, timeout=300)
    run_id = dagster.launch(LOCATION, JOB)
    print(f"launched {JOB} in {LOCATION}: run {run_id}")
    state = dagster.wait_for_run(run_id, timeout=600)
    assert state.status == "SUCCESS"

    (materialization,) = dagster.materializations(run_id)
    assert materialization.asset_key == ("floe_demo", "order_totals")
    written = materialization.metadata
    assert written["table"] == "demo.order_totals", written
    assert written["rows"] == EXPECTED_ROWS, written
    assert written["total_amount"] == EXPECTED_TOTAL, written
    assert str(written["snapshot_id"]).isdigit(), written
    # This run's own warehouse: the table's current metadata file, read back through the catalog.
    location = str(written["metadata_location"])
    assert f"/{run_id}/demo/order_totals/metadata/" in location and location.endswith(".metadata.json"), written
    _assert_ran_as_a_kubernetes_job(run_id)


def _assert_ran_as_a_kubernetes_job(run_id: str) -> None:
    """The chart's K8sRunLauncher ran it: the Job dagster-run-<run id> in the platform namespace completes.

    Dagster reports SUCCESS while the run worker's process is still exiting: the Job's completion is
    waited for (bounded), and a Failed Job ends the wait at once.
    """
    from kubernetes import client

    from testing.cluster import require_cluster
    from testing.polling import Check, wait_for_condition

    namespace = os.environ.get("FLOE_PLATFORM_NAMESPACE", "floe-platform")
    batch = client.BatchV1Api(require_cluster().api_client)
    name = f"dagster-run-{run_id}"

    def complete() -> Check[str]:
        status = batch.read_namespaced_job(name, namespace, _request_timeout=30).status
        conditions = {c.type: c.status for c in status.conditions or []}
        state = f"succeeded={status.succeeded or 0} failed={status.failed or 0} conditions={conditions}"
        return Check(conditions.get("Complete") == "True", state)

    wait_for_condition(
        complete,
        timeout=120,
        interval=2,
        description=f"job/{name} in namespace {namespace} to complete",
        fail_if=lambda state: state if state and "'Failed': 'True'" in state else None,
        hint=f"kubectl -n {namespace} logs job/{name}",
    )
