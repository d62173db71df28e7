"""The integration profile's code location (REQ-640): compute with DuckDB, catalog as local Iceberg metadata.

Served by the Dagster chart's user code deployment (``dagster api grpc --module-name floe_demo.definitions``);
the chart's run launcher starts each run of :data:`floe_demo_job` as a Kubernetes Job on this image. The
asset aggregates 1000 generated orders with DuckDB, writes the result as an Iceberg table into a local
warehouse (a SQLite catalog, no Polaris), reads it back through the catalog, and reports what it wrote as
materialization metadata, which the integration test reads through the webserver's GraphQL API.
"""

# No `from __future__ import annotations`: Dagster reads the context parameter's annotation at definition time.
import os
from pathlib import Path

import dagster as dg
import duckdb
from pyiceberg.catalog.sql import SqlCatalog

#: Where the warehouse goes (the run pod's scratch space unless set): one folder per run.
WAREHOUSE_ENV = "FLOE_ICEBERG_WAREHOUSE"
ORDERS = 1000
CUSTOMERS = 10
TABLE = "demo.order_totals"


@dg.asset(key_prefix=["floe_demo"], group_name="floe_demo")
def order_totals(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    warehouse = Path(os.environ.get(WAREHOUSE_ENV, "/tmp/floe-warehouse")) / context.run_id  # noqa: S108
    warehouse.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()  # in memory: DuckDB computes, Iceberg keeps
    totals = con.sql(
        f"SELECT (i % {CUSTOMERS})::BIGINT AS customer_id, count(*)::BIGINT AS orders, sum(i)::BIGINT AS amount "
        f"FROM range({ORDERS}) AS t(i) GROUP BY 1 ORDER BY 1"
    ).to_arrow_table()
    catalog = SqlCatalog("floe", uri=f"sqlite:///{warehouse}/catalog.db", warehouse=f"file://{warehouse}")
    namespace = TABLE.split(".", 1)[0]
    catalog.create_namespace_if_not_exists(namespace)
    catalog.create_table_if_not_exists(TABLE, schema=totals.schema).append(totals)
    # Read back through the catalog: the metadata it reports is what the table now holds.
    table = catalog.load_table(TABLE)
    snapshot = table.current_snapshot()
    written = table.scan().to_arrow()
    con.register("written", written)
    total = con.execute("SELECT sum(amount)::BIGINT, count(*)::BIGINT FROM written").fetchone()
    assert snapshot is not None and total is not None
    context.log.info(f"wrote {TABLE}: {total[1]} rows, snapshot {snapshot.snapshot_id}, {table.metadata_location}")
    return dg.MaterializeResult(
        metadata={
            "table": dg.MetadataValue.text(TABLE),
            "rows": dg.MetadataValue.int(int(total[1])),
            "total_amount": dg.MetadataValue.int(int(total[0])),
            "snapshot_id": dg.MetadataValue.text(str(snapshot.snapshot_id)),
            "metadata_location": dg.MetadataValue.text(str(table.metadata_location)),
        }
    )


floe_demo_job = dg.define_asset_job("floe_demo_job", selection=[order_totals])

defs = dg.Definitions(assets=[order_totals], jobs=[floe_demo_job])
