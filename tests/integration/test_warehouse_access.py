"""The warehouse access setup (components/warehouse_access.py) on a real PostgreSQL, and each loading
job's exact load transaction run as a login that holds only its pipeline's database role.

Redshift rule under test: a Data API caller signs in as `IAMR:<role name>` with PUBLIC's rights only,
plus the database roles of its IAM role's `RedshiftDbRoles` tag
(https://docs.aws.amazon.com/redshift/latest/mgmt/redshift-iam-access-federated-db-roles.html). So
every privilege a load uses (USAGE/CREATE on the schema, TEMP on the database, DML on the table)
must come from the stack's grants to that role. PostgreSQL enforces the same privileges (and since
version 15 PUBLIC may not even CREATE in schema public), so a missing grant fails here.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sales_load_warehouse as sales
from render_summary import warehouse as render_warehouse

from components.warehouse_access import READER_ROLE, Loader, access_statements, call_sql, procedure_sql
from job_runtime.errors import JobError
from localrun.postgres import login_dsn, setup_access
from pipelines import covid_star_schema as star
from tests.jobs.test_covid_star_schema import ROWS, STAGED, write_curated

PARTIALS = pa.table(  # one file's per-device sums (render_summary.transform.partial_aggregate)
    {
        "device_id": ["iac-vx1", "iac-vx2"],
        "sum_frame_rate": [297.5, 60.5],
        "sum_gpu_usage": [355.0, 111.0],
        "max_latency_ms": [24, 20],
        "log_count": [5, 2],
    }
)
SOURCE = "s3://raw/render-logs/2025/10/06/render_logs.csv"


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def schemas(postgres_dsn: str) -> Iterator[dict[str, str]]:
    """Fresh schemas for the three loading pipelines (the setup creates them), dropped afterwards."""
    names = {"render-logs": unique("rl"), "sales": unique("sales"), "covid19": unique("covid")}
    yield names
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for schema in names.values():
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def loaders(schemas: dict[str, str]) -> list[Loader]:
    return [
        Loader("render_logs_loader", schemas["render-logs"]),
        Loader("sales_loader", schemas["sales"]),
        Loader("covid19_loader", schemas["covid19"]),
    ]


def load_render_logs(dsn: str, schema: str) -> None:
    with tempfile.TemporaryDirectory() as stage:
        render_warehouse.PostgresWarehouse(dsn, stage).load(
            render_warehouse.stage_table(PARTIALS, SOURCE), SOURCE, schema, "performance_summary"
        )


def load_sales(dsn: str, schema: str, stage: Path) -> None:
    columns = sales.table_columns(["order_id", "order_date", "customer_id", "product_id", "quantity", "unit_price"])
    stage.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {
                "order_id": ["o-1"],
                "customer_id": ["c-1"],
                "product_id": ["p-1"],
                "quantity": pa.array([2], pa.int32()),
                "unit_price": pa.array([Decimal("9.99")], pa.decimal128(12, 2)),
                "order_date": pa.array([date(2024, 3, 1)], pa.date32()),
                "source_file": ["sales_2024_03.csv"],
            }
        ).select(columns),
        stage / "part-0.parquet",
    )
    statements = sales.load_statements(
        ["order_id", "order_date", "customer_id", "product_id", "quantity", "unit_price"],
        ["sales_2024_03.csv"],
        schema=schema,
        table="sales",
    )
    sales.PostgresWarehouse(dsn).run_transaction(statements, str(stage))


def test_redshift_setup_is_exactly_the_grants_each_role_needs() -> None:
    """Loaders: USAGE+CREATE on their schema, DML on every current and future table of it (Redshift scoped
    permissions, https://docs.aws.amazon.com/redshift/latest/dg/t_scoped-permissions.html), TEMP for the
    stages; the reader: USAGE and SELECT. Roles are granted `TO ROLE` (Redshift's GRANT syntax for roles)."""
    statements = access_statements(
        [Loader("sales_loader", "public"), Loader("covid19_loader", "covid")], "analytics", "redshift"
    )
    assert statements == [
        "CREATE ROLE analyst",
        "CREATE ROLE covid19_loader",
        "CREATE ROLE sales_loader",
        "CREATE SCHEMA IF NOT EXISTS covid",
        "GRANT USAGE ON SCHEMA covid TO ROLE analyst",
        "GRANT SELECT FOR TABLES IN SCHEMA covid TO ROLE analyst",
        "CREATE SCHEMA IF NOT EXISTS public",
        "GRANT USAGE ON SCHEMA public TO ROLE analyst",
        "GRANT SELECT FOR TABLES IN SCHEMA public TO ROLE analyst",
        "GRANT USAGE, CREATE ON SCHEMA covid TO ROLE covid19_loader",
        "GRANT SELECT, INSERT, UPDATE, DELETE FOR TABLES IN SCHEMA covid TO ROLE covid19_loader",
        "GRANT TEMP ON DATABASE analytics TO ROLE covid19_loader",
        "GRANT USAGE, CREATE ON SCHEMA public TO ROLE sales_loader",
        "GRANT SELECT, INSERT, UPDATE, DELETE FOR TABLES IN SCHEMA public TO ROLE sales_loader",
        "GRANT TEMP ON DATABASE analytics TO ROLE sales_loader",
    ]
    procedure = procedure_sql([Loader("sales_loader", "public")], "analytics", "redshift")
    # Redshift has no CREATE ROLE IF NOT EXISTS: the procedure looks the role up in SVV_ROLES first.
    assert (
        "  SELECT INTO found COUNT(*) FROM svv_roles WHERE role_name = 'sales_loader';\n"
        "  IF found = 0 THEN\n"
        "    EXECUTE 'CREATE ROLE sales_loader';\n"
        "  END IF;\n"
    ) in procedure
    assert procedure.startswith("CREATE OR REPLACE PROCEDURE public.setup_pipeline_access() AS $$\n")
    assert procedure.endswith("END;\n$$ LANGUAGE plpgsql")


def test_the_setup_runs_again_whenever_it_changes_and_only_then() -> None:
    one = procedure_sql([Loader("sales_loader", "public")], "analytics", "redshift")
    two = procedure_sql([Loader("sales_loader", "public")], "analytics", "redshift")
    other = procedure_sql([Loader("sales_loader", "sales")], "analytics", "redshift")
    assert call_sql(one) == call_sql(two)
    assert call_sql(one) != call_sql(other)
    assert call_sql(one).startswith("CALL public.setup_pipeline_access() /* setup ")


@pytest.mark.parametrize(
    ("loaders_", "message"),
    [
        ([Loader("Sales", "public")], "database role 'Sales' is not a plain lower-case SQL identifier"),
        ([Loader("sales_loader", "pub;lic")], "schema 'pub;lic' is not a plain lower-case SQL identifier"),
        ([Loader("x", "a"), Loader("x", "b")], "each loader role loads exactly one schema"),
    ],
)
def test_unsafe_or_ambiguous_setups_are_refused(loaders_: list[Loader], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        access_statements(loaders_, "analytics", "redshift")


def test_every_load_runs_as_its_pipeline_role_alone(postgres_dsn: str, schemas: dict[str, str], tmp_path: Path) -> None:
    """Each job's exact load transaction (create its table, temp stage, COPY, DELETE, MERGE) succeeds as a
    login holding only its loader role, after the setup ran twice (it is idempotent)."""
    setup_access(postgres_dsn, loaders(schemas))
    setup_access(postgres_dsn, loaders(schemas))

    load_render_logs(login_dsn(postgres_dsn, "IAMR:render-logs-job", "render_logs_loader"), schemas["render-logs"])
    load_sales(login_dsn(postgres_dsn, "IAMR:sales-load-glue", "sales_loader"), schemas["sales"], tmp_path / "stage")
    covid = login_dsn(postgres_dsn, "IAMR:covid-states", "covid19_loader")
    assert star.load_postgres(covid, schemas["covid19"], write_curated(tmp_path / "curated", ROWS)) == STAGED

    reader = login_dsn(postgres_dsn, "IAMR:analyst-console", READER_ROLE)
    with psycopg.connect(reader) as conn:
        assert conn.execute(f"SELECT count(*) FROM {schemas['render-logs']}.performance_summary").fetchone() == (2,)
        assert conn.execute(f"SELECT order_id FROM {schemas['sales']}.sales").fetchall() == [("o-1",)]
        assert conn.execute(f"SELECT count(*) FROM {schemas['covid19']}.fact_cases").fetchone() == (6,)
        # Read-only: the reader cannot change a loaded table.
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table sales"):
            conn.execute(f"DELETE FROM {schemas['sales']}.sales")


def test_a_replaced_iam_role_signs_in_as_a_new_user_with_the_same_rights(
    postgres_dsn: str, schemas: dict[str, str]
) -> None:
    """An IAM role made with a name prefix gets a new name when replaced, so a new `IAMR:` user: it must
    still load the table the old user created (the rights are the role's, not the user's)."""
    setup_access(postgres_dsn, loaders(schemas))
    load_render_logs(login_dsn(postgres_dsn, "IAMR:render-logs-job-1", "render_logs_loader"), schemas["render-logs"])
    load_render_logs(login_dsn(postgres_dsn, "IAMR:render-logs-job-2", "render_logs_loader"), schemas["render-logs"])
    with psycopg.connect(postgres_dsn) as conn:
        owner = conn.execute(
            "SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = 'performance_summary'",
            [schemas["render-logs"]],
        ).fetchone()
    assert owner == ("render_logs_loader",)


def test_without_the_setup_a_job_has_public_rights_only_and_its_load_fails(
    postgres_dsn: str, schemas: dict[str, str], tmp_path: Path
) -> None:
    """What a first deploy met before the stack set up access: the COVID-19 load as an unprivileged user."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schemas['covid19']}")
        conn.execute("DROP ROLE IF EXISTS nobody_loader")
        conn.execute("CREATE ROLE nobody_loader")
    dsn = login_dsn(postgres_dsn, unique("IAMR:unprivileged"), "nobody_loader")
    curated = write_curated(tmp_path / "curated", ROWS)
    with pytest.raises(
        psycopg.errors.InsufficientPrivilege, match=f"permission denied for schema {schemas['covid19']}"
    ):
        star.load_postgres(dsn, schemas["covid19"], curated)


def test_a_loader_cannot_touch_another_pipelines_schema(postgres_dsn: str, schemas: dict[str, str]) -> None:
    setup_access(postgres_dsn, loaders(schemas))
    dsn = login_dsn(postgres_dsn, "IAMR:render-logs-job", "render_logs_loader")
    with pytest.raises(JobError, match=f"rejected the load: permission denied for schema {schemas['sales']}"):
        load_render_logs(dsn, schemas["sales"])
