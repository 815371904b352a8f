"""The warehouse access setup in the mocked estates: who signs in to Redshift, as which database role,
and that the stack (not a person with an admin password) creates those roles and their grants.

AWS rules:
- A Data API call without a secret signs in to Redshift Serverless as `IAMR:<role name>` with PUBLIC's
  rights, plus the database roles its IAM role's `RedshiftDbRoles` tag names
  (https://docs.aws.amazon.com/redshift/latest/mgmt/redshift-iam-access-federated-db-roles.html;
  BatchExecuteStatement, https://docs.aws.amazon.com/redshift-data/latest/APIReference/API_BatchExecuteStatement.html).
- A Data API call with SecretArn runs as the secret's user: the namespace's managed admin secret.
"""

from __future__ import annotations

import json

from components.warehouse_access import Loader, call_sql, procedure_sql
from tests.infra.harness import Estate, build_estate

SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:redshift!dataplatform-dev-warehouse"
LOADERS = [
    Loader("render_logs_loader", "public"),
    Loader("sales_loader", "public"),
    Loader("covid19_loader", "covid"),
]


def data_api_callers(estate: Estate) -> dict[str, dict]:
    """Every IAM role whose policy allows running SQL through the Data API, by resource name."""
    callers = {}
    for policy in estate.of_type("aws:iam/rolePolicy:RolePolicy"):
        document = json.loads(policy.inputs["policy"])
        actions = {
            a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
        }
        if actions & {"redshift-data:BatchExecuteStatement", "redshift-data:ExecuteStatement"}:
            role = policy.name.removesuffix("-policy")
            callers[role] = estate.named(role).inputs
    return callers


def test_the_stack_sets_up_the_roles_and_grants_as_the_namespace_admin(dev: Estate) -> None:
    statements = dev.of_type("aws:redshiftdata/statement:Statement")
    assert [s.name for s in statements] == ["warehouse-access-procedure", "warehouse-access-setup"]
    procedure = procedure_sql(LOADERS, "analytics", "redshift")
    expected = {"workgroupName": "dataplatform-dev-warehouse", "database": "analytics", "secretArn": SECRET}
    assert statements[0].inputs == {**expected, "sql": procedure, "statementName": "create-pipeline-access-procedure"}
    assert statements[1].inputs == {**expected, "sql": call_sql(procedure), "statementName": "setup-pipeline-access"}
    # The CALL runs only after the procedure exists.
    assert statements[0].urn in statements[1].dependencies


def test_every_data_api_caller_signs_in_with_exactly_its_pipelines_database_role(dev: Estate) -> None:
    """Without the tag a caller has PUBLIC's rights only: no CREATE in its schema, no DML on its tables."""
    callers = data_api_callers(dev)
    tags = {name: inputs.get("tags") for name, inputs in callers.items()}
    assert tags == {
        "render-logs-job-role": {"RedshiftDbRoles": "render_logs_loader"},
        "sales-load-role": {"RedshiftDbRoles": "sales_loader"},
        "covid-flow-role": {"RedshiftDbRoles": "covid19_loader"},
    }
    # ... and each tagged role is one the setup creates and grants.
    procedure = dev.named("warehouse-access-procedure").inputs["sql"]
    for tag in tags.values():
        assert f"EXECUTE 'CREATE ROLE {tag['RedshiftDbRoles']}';" in procedure  # type: ignore[index]


def test_prod_sets_up_the_same_access(prod: Estate) -> None:
    procedure = prod.named("warehouse-access-procedure").inputs["sql"]
    assert procedure == procedure_sql(LOADERS, "analytics", "redshift")


def test_only_the_pipelines_a_stack_builds_get_a_database_role() -> None:
    estate = build_estate("dev", "Pulumi.dev.yaml", {"dataplatform:pipelines": '["sales", "sensor-timeseries"]'})
    procedure = estate.named("warehouse-access-procedure").inputs["sql"]
    assert procedure == procedure_sql([Loader("sales_loader", "public")], "analytics", "redshift")
    assert "covid19_loader" not in procedure and "render_logs_loader" not in procedure
