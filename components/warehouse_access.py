"""Warehouse access: a database role per pipeline that loads the warehouse, a read-only role for
analysts, and the schemas and grants they need, set up by the stack itself.

Who the jobs are in the database: a job calls the Redshift Data API with its IAM role and no secret,
and Redshift Serverless signs it in as database user `IAMR:<IAM role name>`, created at its first
sign-in with PUBLIC's rights only. The IAM role's `RedshiftDbRoles` tag (database role names joined
by ":") makes Redshift grant those database roles to that user at sign-in
(https://docs.aws.amazon.com/redshift/latest/mgmt/redshift-iam-access-federated-db-roles.html; the
`RedshiftDbGroups` tag is not supported on Serverless: .../mgmt/data-api-dbgroups.html). Every right
belongs to a database role, never to an `IAMR:` user, so an IAM role replaced under a new
(name-prefixed) name signs in as a new user with the same rights.

What each role may do (and nothing more):
- a loader (`<pipeline>_loader`): USAGE and CREATE on its schema (its job creates its tables if
  missing), SELECT/INSERT/UPDATE/DELETE on every current and future table of that schema, whoever
  created it (Redshift scoped permissions,
  https://docs.aws.amazon.com/redshift/latest/dg/t_scoped-permissions.html), and TEMP on the
  database (the loads stage in temp tables).
- the reader (`analyst`): USAGE on every pipeline schema and SELECT on all its current and future tables.

How it runs: one stored procedure holds every statement (each idempotent: a role is created only
if missing, `CREATE SCHEMA IF NOT EXISTS`, GRANTs), created and called by two `aws.redshiftdata.Statement`s
as the namespace's admin (its Secrets Manager secret) when the stack is deployed. The call carries a
hash of the procedure, so any change to the access runs it again; running it twice changes nothing.

PostgreSQL (local runs and tests) gets the same procedure in its dialect: PostgreSQL has no scoped
permissions, so a loader's session acts as the loader role (`SET ROLE`), the tables it creates are
the role's, and default privileges give the reader SELECT on them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

# Redshift identifiers are at most 127 bytes; PostgreSQL cuts names at 63. Lower-case, unquoted.
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DB_ROLES_TAG = "RedshiftDbRoles"
READER_ROLE = "analyst"
PROCEDURE = "public.setup_pipeline_access"
DIALECTS = ("redshift", "postgres")


@dataclass(frozen=True)
class Loader:
    """The database role of one pipeline that loads tables into `schema`."""

    role: str
    schema: str


def identifier(name: str, what: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"{what} {name!r} is not a plain lower-case SQL identifier ([a-z_][a-z0-9_]*, 63 at most)")
    return name


def loader_role(pipeline: str) -> str:
    """The database role of a pipeline's loads: `sales` -> `sales_loader`, `render-logs` -> `render_logs_loader`."""
    return identifier(pipeline.replace("-", "_") + "_loader", "database role")


def access_statements(loaders: Sequence[Loader], database: str, dialect: str) -> list[str]:
    """Every statement of the setup, in order; each can run again without changing anything."""
    if dialect not in DIALECTS:
        raise ValueError(f"dialect must be one of {DIALECTS}, got {dialect!r}")
    database = identifier(database, "database")
    redshift = dialect == "redshift"
    to = "TO ROLE " if redshift else "TO "
    roles = sorted({identifier(loader.role, "database role") for loader in loaders} | {READER_ROLE})
    if len({loader.role for loader in loaders}) != len(loaders):
        raise ValueError("each loader role loads exactly one schema")
    statements = [f"CREATE ROLE {role}" for role in roles]  # guarded by the procedure: only when missing
    for schema in sorted({identifier(loader.schema, "schema") for loader in loaders}):
        statements.append(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        statements.append(f"GRANT USAGE ON SCHEMA {schema} {to}{READER_ROLE}")
        if redshift:
            statements.append(f"GRANT SELECT FOR TABLES IN SCHEMA {schema} {to}{READER_ROLE}")
        else:
            statements.append(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} {to}{READER_ROLE}")
    for loader in sorted(loaders, key=lambda item: item.role):
        role, schema = loader.role, loader.schema
        statements.append(f"GRANT USAGE, CREATE ON SCHEMA {schema} {to}{role}")
        if redshift:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE FOR TABLES IN SCHEMA {schema} {to}{role}")
        else:
            statements.append(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} {to}{role}")
            statements.append(
                f"ALTER DEFAULT PRIVILEGES FOR ROLE {role} IN SCHEMA {schema} GRANT SELECT ON TABLES {to}{READER_ROLE}"
            )
        statements.append(f"GRANT TEMP ON DATABASE {database} {to}{role}")
    return statements


def procedure_sql(loaders: Sequence[Loader], database: str, dialect: str) -> str:
    """`CREATE OR REPLACE PROCEDURE` running access_statements; CREATE ROLE only for a missing role."""
    roles_view, name_column = ("svv_roles", "role_name") if dialect == "redshift" else ("pg_roles", "rolname")
    body = ["DECLARE", "  found INTEGER;", "BEGIN"]
    for sql in access_statements(loaders, database, dialect):
        # Every statement is made of validated identifiers and keywords: no quote to escape.
        if sql.startswith("CREATE ROLE "):
            role = sql.removeprefix("CREATE ROLE ")
            body += [
                f"  SELECT INTO found COUNT(*) FROM {roles_view} WHERE {name_column} = '{role}';",
                "  IF found = 0 THEN",
                f"    EXECUTE '{sql}';",
                "  END IF;",
            ]
        else:
            body.append(f"  EXECUTE '{sql}';")
    body.append("END;")
    newline = "\n"
    return f"CREATE OR REPLACE PROCEDURE {PROCEDURE}() AS $$\n{newline.join(body)}\n$$ LANGUAGE plpgsql"


def call_sql(procedure: str) -> str:
    """CALL the procedure; the comment changes with the procedure, so a changed setup runs again."""
    digest = hashlib.sha256(procedure.encode()).hexdigest()[:16]
    return f"CALL {PROCEDURE}() /* setup {digest} */"


def db_roles_tag(*roles: str) -> dict[str, str]:
    """The IAM role tag that makes Redshift Serverless grant these database roles at sign-in."""
    return {DB_ROLES_TAG: ":".join(identifier(role, "database role") for role in roles)}


@dataclass(frozen=True, kw_only=True)
class WarehouseAccessArgs:
    workgroup_name: pulumi.Input[str]
    database: str
    # The namespace's Redshift-managed admin secret: the setup runs as the admin.
    admin_secret_arn: pulumi.Input[str]
    # One database role per loading pipeline, each with the schema it loads.
    loaders: tuple[Loader, ...]


class WarehouseAccess(pulumi.ComponentResource):
    """The database roles, schemas and grants of the pipelines (see the module docstring), set up on
    the workgroup by the deploying identity through the Data API with the admin secret."""

    reader_role: str

    def __init__(self, name: str, args: WarehouseAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:warehouse:WarehouseAccess", name, None, opts)
        procedure = procedure_sql(args.loaders, args.database, "redshift")
        statements: list[aws.redshiftdata.Statement] = []
        for step, sql, statement_name in (
            ("procedure", procedure, "create-pipeline-access-procedure"),
            ("setup", call_sql(procedure), "setup-pipeline-access"),
        ):
            statements.append(
                aws.redshiftdata.Statement(
                    f"{name}-{step}",
                    workgroup_name=args.workgroup_name,
                    database=args.database,
                    secret_arn=args.admin_secret_arn,
                    sql=sql,
                    statement_name=statement_name,
                    # The CALL needs the procedure it calls.
                    opts=pulumi.ResourceOptions(parent=self, depends_on=statements[-1:]),
                )
            )
        self.reader_role = READER_ROLE
        self.register_outputs({"reader_role": self.reader_role})
