"""Rules AWS enforces that Pulumi mocks never will, each checked on the mocked estate.

Every test names the rule and the AWS (or provider) documentation it comes from. Mocks accept any
input; these tests hold the inputs to what the service does with them on a real first deploy.
"""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any

import gharchive_events
import pytest
import sales_csv_to_parquet

from components.orchestration import glue_state_message
from pipelines import covid, covid_staging, gharchive, sales
from tests.infra.harness import ACCOUNT, REGION, Estate, build_estate, repo_digest

KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/lake-key"
LOG_GROUP_ARN = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"


def statements(estate: Estate, role_name: str) -> list[dict[str, Any]]:
    """Every statement of the inline policies of the role registered as `role_name`."""
    role_urn = estate.named(role_name).urn
    return [
        s
        for p in estate.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.parent == role_urn
        for s in json.loads(p.inputs["policy"])["Statement"]
    ]


def actions(stmt: dict[str, Any]) -> list[str]:
    return stmt["Action"] if isinstance(stmt["Action"], list) else [stmt["Action"]]


def role_physical_name(arn: str) -> str:
    return arn.rsplit("/", 1)[1]


def log_groups(estate: Estate) -> dict[str, dict[str, Any]]:
    return {g.inputs["name"]: g.inputs for g in estate.of_type("aws:cloudwatch/logGroup:LogGroup")}


# --- 3. Redshift COPY/UNLOAD under enhanced VPC routing -------------------------------------------


def test_warehouse_reaches_s3_by_https_through_the_gateway_endpoint_prefix_list_and_nothing_else(
    dev: Estate, prod: Estate
) -> None:
    """With enhanced VPC routing Redshift sends COPY and UNLOAD traffic through the workgroup's VPC, so
    its security group must let it out to S3; an S3 gateway endpoint serves same-Region buckets
    (Amazon Redshift Management Guide, "Enhanced VPC routing" and "Turning on enhanced VPC routing":
    https://docs.aws.amazon.com/redshift/latest/mgmt/enhanced-vpc-routing.html,
    https://docs.aws.amazon.com/redshift/latest/mgmt/enhanced-vpc-enabling-cluster.html). A security
    group that restricts outbound traffic must allow the gateway endpoint's prefix list (AWS PrivateLink
    Guide, "Gateway endpoints", security groups: https://docs.aws.amazon.com/vpc/latest/privatelink/gateway-endpoints.html)."""
    for estate in (dev, prod):
        endpoint = estate.one("aws:ec2/vpcEndpoint:VpcEndpoint")
        assert (endpoint.inputs["vpcEndpointType"], endpoint.inputs["serviceName"]) == (
            "Gateway",
            f"com.amazonaws.{REGION}.s3",
        )
        # The warehouse lives in the private subnets, whose route table carries the endpoint's route.
        assert "net-private-rt-id" in endpoint.inputs["routeTableIds"]
        warehouse = estate.one("aws:ec2/securityGroup:SecurityGroup", "warehouse")
        assert warehouse.inputs["egress"] == [
            {
                "protocol": "tcp",
                "fromPort": 443,
                "toPort": 443,
                "prefixListIds": ["pl-6da54004"],  # the mock's prefixListId of the S3 endpoint
                "description": "S3 through the gateway endpoint (COPY and UNLOAD)",
            }
        ]
        assert endpoint.urn in warehouse.property_dependencies["egress"]
        workgroup = estate.one("aws:redshiftserverless/workgroup:Workgroup").inputs
        assert workgroup["enhancedVpcRouting"] is True
        assert workgroup["securityGroupIds"] == ["net-warehouse-sg-id"]


# --- 7. Crawler table levels and the table names the pipelines query ----------------------------


def glue_table_names(s3_path: str, configuration: str, table_prefix: str, keys: list[str]) -> set[str]:
    """The tables a crawler of `s3_path` creates for objects at `keys` (relative to the bucket), as Glue
    documents it: with TableLevelConfiguration L the table is the folder at absolute level L, counting
    the bucket as level 1, named `table_prefix` + that folder's name, lower-cased, other characters
    than letters, digits and underscores made underscores ("Specifying the table location and
    partitioning level", https://docs.aws.amazon.com/glue/latest/dg/crawler-table-level.html)."""
    level = json.loads(configuration)["Grouping"]["TableLevelConfiguration"]
    bucket, _, root = s3_path.removeprefix("s3://").partition("/")
    assert bucket and root.endswith("/")
    names = set()
    for key in keys:
        assert key.startswith(root), (key, root)
        levels = [bucket, *PurePosixPath(key).parent.parts]  # folders only: level 1 is the bucket
        assert len(levels) >= level, f"{key}: no folder at level {level}"
        location = "/".join(levels[1:level]) + "/"
        # The table's location is inside the crawled path: a table above it is not this dataset's.
        assert location.startswith(root), f"{key}: table at {location}, above the crawler's path {root}"
        names.add(re.sub(r"[^a-z0-9_]", "_", (table_prefix + levels[level - 1]).lower()))
    return names


def crawler_tables(estate: Estate, crawler: str, keys: list[str]) -> set[str]:
    inputs = estate.named(f"{crawler}-crawler").inputs
    (target,) = inputs["s3Targets"]
    return glue_table_names(target["path"], inputs["configuration"], inputs["tablePrefix"], keys)


def test_each_crawler_creates_exactly_the_tables_the_pipelines_query(dev: Estate) -> None:
    """Glue creates a crawler's tables at TableLevelConfiguration, an absolute level where the bucket is
    level 1 ("Specifying the table location and partitioning level",
    https://docs.aws.amazon.com/glue/latest/dg/crawler-table-level.html). For each crawler, the
    folder layout its writer produces must give the tables the Athena queries, named queries and
    README use: one `covid_landing_<dataset>` per landing dataset (the staging UNLOADs read them) and
    `sales_input`. The tables whose schema is ours (CatalogTable: sales Parquet, GH Archive events,
    sensor time series, COVID-19 curated) are outside every crawler's path, so no crawl can add a
    second table over their data or change their schema."""
    assert {c.name for c in dev.of_type("aws:glue/crawler:Crawler")} == {f"{c}-crawler" for c in CRAWLERS}
    # copy-datasets lands each dataset's files under covid/landing/<dataset>/ (nested folders kept).
    landing = [f"{covid.LANDING_PREFIX}{d}/part-1/data.csv" for d in covid_staging.DATASETS]
    assert crawler_tables(dev, "covid-landing-crawler", landing) == {
        covid_staging.raw_table(d) for d in covid_staging.DATASETS
    }
    definition = dev.named("covid-flow-machine").inputs["definition"]
    assert set(re.findall(r"FROM (covid_landing_\w+)", definition)) == {
        covid_staging.raw_table(d) for d in covid_staging.DATASETS
    }
    # Uploads land directly in the input prefix; the convert job partitions by order date and file.
    assert crawler_tables(dev, "sales-input-crawler", ["sales/input/2026-11-01.csv"]) == {"sales_input"}
    # The converted Parquet is the stack's table sales_orders (tests/infra/test_glue_pipelines.py): no crawler
    # covers it, so none can add a second table or change its schema.
    parquet = f"{sales.PARQUET_PREFIX}order_date=2026-11-01/{sales_csv_to_parquet.SOURCE_FILE}=a.csv/part-0.parquet"
    crawled = [
        t["path"].split("/", 3)[3] for c in dev.of_type("aws:glue/crawler:Crawler") for t in c.inputs["s3Targets"]
    ]
    assert crawled and not any(parquet.startswith(prefix) for prefix in crawled)
    # No crawler reads under any table the stack defines (nor above it: a crawl of a parent folder would
    # catalog the table's folder too).
    defined = [t.inputs["storageDescriptor"]["location"] for t in dev.of_type("aws:glue/catalogTable:CatalogTable")]
    assert len(defined) == 7
    crawled_uris = [t["path"] for c in dev.of_type("aws:glue/crawler:Crawler") for t in c.inputs["s3Targets"]]
    assert not [(c, d) for c in crawled_uris for d in defined if c.startswith(d) or d.startswith(c)]
    # gharchive_events (partitioned by date and hour, folders as the job writes them) is the stack's table.
    date, hour = gharchive_events.PARTITIONS
    events = dev.one("aws:glue/catalogTable:CatalogTable", "gharchive-events").inputs
    assert events["name"] == gharchive.EVENTS_TABLE
    assert [k["name"] for k in events["partitionKeys"]] == [date, hour]
    for query in dev.of_type("aws:athena/namedQuery:NamedQuery"):
        assert f"FROM {gharchive.EVENTS_TABLE}" in query.inputs["query"], query.name


def test_table_level_counts_the_bucket_as_level_one() -> None:
    """The documented example: for mydataset/year/month/day/hour, level 3 puts the table at
    mydataset/year/month (https://docs.aws.amazon.com/glue/latest/dg/crawler-table-level.html)."""
    configuration = json.dumps({"Grouping": {"TableLevelConfiguration": 3}})
    keys = ["mydataset/year/month/day/hour/f.json"]
    assert glue_table_names("s3://bucket/mydataset/", configuration, "", keys) == {"year"}


# --- 9. The image is a dependency of the job definitions that run it -----------------------------


def test_every_job_definition_runs_the_pushed_digest_of_the_image(dev: Estate) -> None:
    """A job definition that names the image by digest (`repository@sha256:...`, a form AWS Batch
    accepts: ContainerProperties `image`, https://docs.aws.amazon.com/batch/latest/APIReference/API_ContainerProperties.html)
    runs exactly what was pushed and depends on the push, so Pulumi registers it only after the push
    succeeded. The tag is then only a label and may stay mutable: an immutable tag refuses a rebuild
    with another digest under the same tag ("Image tag mutability",
    https://docs.aws.amazon.com/AmazonECR/latest/userguide/image-tag-mutability.html)."""
    image = dev.one("docker:index/image:Image")
    digest = repo_digest(image.inputs["imageName"])
    repository = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/dataplatform-dev-batch"
    assert re.fullmatch(re.escape(repository) + r"@sha256:[0-9a-f]{64}", digest)
    definitions = dev.of_type("aws:batch/jobDefinition:JobDefinition")
    assert len(definitions) == 3
    for definition in definitions:
        assert json.loads(definition.inputs["containerProperties"])["image"] == digest, definition.name
        assert image.urn in definition.property_dependencies["containerProperties"], definition.name
    assert dev.one("aws:ecr/repository:Repository").inputs["imageTagMutability"] == "MUTABLE"


# --- 10. No perpetual diff on the workgroup ------------------------------------------------------


def test_workgroup_sets_every_config_parameter_aws_reports_sorted_as_aws_returns_them(dev: Estate) -> None:
    """Redshift Serverless reports the full parameter set of a workgroup (AWS adds the defaults, and
    require_ssl/use_fips_ssl: Terraform's aws_redshiftserverless_workgroup, config_parameter,
    https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/redshiftserverless_workgroup);
    a program that sets only require_ssl sees the rest as removed on every preview. The set is the
    documented one with AWS's defaults, require_ssl true, in AWS's (key) order."""
    params = dev.one("aws:redshiftserverless/workgroup:Workgroup").inputs["configParameters"]
    assert params == [
        {"parameterKey": "auto_mv", "parameterValue": "true"},
        {"parameterKey": "datestyle", "parameterValue": "ISO, MDY"},
        {"parameterKey": "enable_case_sensitive_identifier", "parameterValue": "false"},
        {"parameterKey": "enable_user_activity_logging", "parameterValue": "true"},
        {"parameterKey": "max_query_execution_time", "parameterValue": "14400"},
        {"parameterKey": "query_group", "parameterValue": "default"},
        {"parameterKey": "require_ssl", "parameterValue": "true"},
        {"parameterKey": "search_path", "parameterValue": "$user, public"},
        {"parameterKey": "use_fips_ssl", "parameterValue": "false"},
    ]
    keys = [p["parameterKey"] for p in params]
    assert keys == sorted(keys)


# --- 11. Glue metrics, Glue 5.0 logging, multipart aborts, messages ------------------------------


GLUE_JOBS = ("sales-convert", "sales-load", "sensor-job", "gharchive-events", "covid-clean")


def test_glue_jobs_may_publish_their_metrics_to_the_glue_namespace_only(dev: Estate) -> None:
    """--enable-metrics and --enable-observability-metrics make the job publish CloudWatch metrics in
    the `Glue` namespace, which needs cloudwatch:PutMetricData ("Monitoring AWS Glue using Amazon
    CloudWatch metrics", https://docs.aws.amazon.com/glue/latest/dg/monitoring-awsglue-with-cloudwatch-metrics.html;
    https://repost.aws/knowledge-center/glue-job-metrics-cloudwatch). The action has no resource
    type, so the cloudwatch:namespace condition is what scopes it."""
    for job in GLUE_JOBS:
        arguments = dev.named(f"{job}-job").inputs["defaultArguments"]
        assert arguments["--enable-metrics"] == arguments["--enable-observability-metrics"] == "true"
        metrics = [s for s in statements(dev, f"{job}-role") if "cloudwatch:PutMetricData" in actions(s)]
        assert metrics == [
            {
                "Effect": "Allow",
                "Action": ["cloudwatch:PutMetricData"],
                "Resource": ["*"],
                "Condition": {"StringEquals": {"cloudwatch:namespace": "Glue"}},
            }
        ], job


def test_glue_5_jobs_do_not_pass_the_glue_4_continuous_logging_switch(dev: Estate) -> None:
    """Continuous logging is a Glue 4.0-and-earlier feature; in Glue 5.0 every job logs in real time and
    --custom-logGroup-prefix chooses the groups ("Logging for AWS Glue jobs",
    https://docs.aws.amazon.com/glue/latest/dg/monitor-continuous-logging.html; "Enabling continuous
    logging for AWS Glue 4.0 and earlier jobs",
    https://docs.aws.amazon.com/glue/latest/dg/monitor-continuous-logging-enable.html)."""
    for job in GLUE_JOBS:
        inputs = dev.named(f"{job}-job").inputs
        assert inputs["glueVersion"] == "5.0"
        assert not [a for a in inputs["defaultArguments"] if a.startswith("--enable-continuous")], job
        assert "--continuous-log-logGroup" not in inputs["defaultArguments"], job


def test_every_glue_job_that_may_put_an_object_may_abort_its_multipart_upload(dev: Estate) -> None:
    """Spark's S3 writers upload large files in parts and abort the parts of a failed write; aborting
    is authorised by s3:AbortMultipartUpload alone, and the parts of an upload never aborted stay
    billed ("Multipart upload API and permissions",
    https://docs.aws.amazon.com/AmazonS3/latest/userguide/mpuoverview.html#mpuAndPermissions)."""
    checked = 0
    for job in GLUE_JOBS:
        for stmt in statements(dev, f"{job}-role"):
            if "s3:PutObject" in actions(stmt):
                assert "s3:AbortMultipartUpload" in actions(stmt), (job, stmt)
                checked += 1
    assert checked >= 10  # each job's temp folder and its own outputs


def test_glue_job_failure_messages_name_the_log_group_and_stream_the_job_writes(dev: Estate) -> None:
    """Glue 5.0 writes driver and executor logs to <--custom-logGroup-prefix>/error, in streams
    <job run id>-driver and <job run id>-<executor> ("Logging for AWS Glue jobs",
    https://docs.aws.amazon.com/glue/latest/dg/monitor-continuous-logging.html): the failure
    message names that group, which the stack owns, not /aws-glue/jobs/error."""
    target = dev.named("sales-notify-2-failed-target").inputs["inputTransformer"]
    template = json.loads(target["inputTemplate"])
    assert template.endswith("Logs: CloudWatch log group /aws-glue/jobs/<name>/error, stream <run>-driver.")
    assert target["inputPaths"]["name"] == "$.detail.jobName" and target["inputPaths"]["run"] == "$.detail.jobRunId"
    job = dev.named("sales-convert-job").inputs
    error_group = template.rsplit("log group ", 1)[1].split(",")[0].replace("<name>", job["name"])
    assert error_group == job["defaultArguments"]["--custom-logGroup-prefix"] + "/error"
    assert error_group in log_groups(dev)


def test_crawler_messages_name_the_group_given_for_the_crawler() -> None:
    """A crawler whose security configuration encrypts CloudWatch logs writes to
    /aws-glue/crawlers-role/<role>-<security configuration>, stream <crawler name>, not
    /aws-glue/crawlers (see test_every_crawler_logs_to_its_own_stack_log_group)."""
    group = "/aws-glue/crawlers-role/crawler-role-1-dataplatform-dev-sales-input-crawler-security"
    text = json.loads(glue_state_message("sales", "1/4", "crawler", "It catalogs the CSVs.", group))
    assert text == (
        "[sales] step 1/4: Glue crawler <name> <state> at <time>. Message: <message> <error>. "
        f"It catalogs the CSVs. Logs: CloudWatch log group {group}, stream <name>."
    )


def test_a_crawler_step_without_its_log_group_is_refused() -> None:
    with pytest.raises(ValueError, match="sales step 1/4: a crawler's log group is named after its role; pass it"):
        glue_state_message("sales", "1/4", "crawler", "It catalogs the CSVs.")


# --- Destroy leaves nothing billable behind: every log destination is a stack log group -----------


def test_every_glue_job_logs_to_its_own_encrypted_stack_log_groups_and_may_write_only_there(dev: Estate) -> None:
    """Glue 5.0 writes a job's logs to <prefix>/output and <prefix>/error for --custom-logGroup-prefix
    ("Logging for AWS Glue jobs", https://docs.aws.amazon.com/glue/latest/dg/monitor-continuous-logging.html).
    The stack creates both (KMS, the stack's retention), so `pulumi destroy` removes them, and the job's
    role may write to those two only. The job's security configuration leaves CloudWatch encryption to
    the groups' own key: with it, Glue names groups after the security configuration instead
    ("Security configuration with continuous logging", monitor-continuous-logging-enable.html)."""
    groups = log_groups(dev)
    for job in GLUE_JOBS:
        inputs = dev.named(f"{job}-job").inputs
        prefix = inputs["defaultArguments"]["--custom-logGroup-prefix"]
        assert prefix == f"/aws-glue/jobs/{inputs['name']}"
        own = [f"{prefix}/output", f"{prefix}/error"]
        for name in own:
            assert (groups[name]["kmsKeyId"], groups[name]["retentionInDays"]) == (KEY, 7), name
        logging = [s for s in statements(dev, f"{job}-role") if any(a.startswith("logs:") for a in actions(s))]
        assert logging == [
            {
                "Effect": "Allow",
                "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [LOG_GROUP_ARN + n for n in own] + [LOG_GROUP_ARN + n + ":*" for n in own],
            }
        ], job
        security = dev.named(f"{job}-security").inputs
        assert inputs["securityConfiguration"] == security["name"]
        assert security["encryptionConfiguration"]["cloudwatchEncryption"] == {"cloudwatchEncryptionMode": "DISABLED"}
        # The groups exist before the job can run (else Glue would create them, unencrypted, unowned).
        assert {dev.named(f"{job}-{kind}-logs").urn for kind in ("output", "error")} <= set(
            dev.named(f"{job}-job").dependencies
        ), job


CRAWLERS = (
    "sales-input-crawler",
    "covid-landing-crawler",
)


def test_every_crawler_logs_to_its_own_stack_log_group_and_may_write_only_there(dev: Estate) -> None:
    """A crawler with a security configuration that encrypts CloudWatch logs writes to the group
    /aws-glue/crawlers-role/<role path and name>-<security configuration>, one stream per crawler
    (the group Glue reports as LastCrawl.LogGroup; "Encrypting data written by AWS Glue",
    https://docs.aws.amazon.com/glue/latest/dg/encryption-security-configuration.html, and the
    crawler's logs:AssociateKmsKey on it). The stack creates that group (KMS, the stack's retention)
    so destroy removes it, and the role may write only there. Without the security configuration the
    crawler would write to /aws-glue/crawlers, one group for the whole account that no stack can own."""
    groups = log_groups(dev)
    for crawler in CRAWLERS:
        inputs = dev.named(f"{crawler}-crawler").inputs
        security = dev.named(f"{crawler}-security").inputs
        assert inputs["securityConfiguration"] == security["name"]
        assert security["encryptionConfiguration"]["cloudwatchEncryption"] == {
            "cloudwatchEncryptionMode": "SSE-KMS",
            "kmsKeyArn": KEY,
        }
        role_name = role_physical_name(inputs["role"])
        assert inputs["role"] == f"arn:aws:iam::{ACCOUNT}:role/{role_name}"  # path "/": no path in the name
        name = f"/aws-glue/crawlers-role/{role_name}-{security['name']}"
        assert (groups[name]["kmsKeyId"], groups[name]["retentionInDays"]) == (KEY, 7), crawler
        logging = [s for s in statements(dev, f"{crawler}-role") if any(a.startswith("logs:") for a in actions(s))]
        assert logging == [
            {
                "Effect": "Allow",
                "Action": ["logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                "Resource": [LOG_GROUP_ARN + name, LOG_GROUP_ARN + name + ":*"],
            }
        ], crawler
        assert dev.named(f"{crawler}-logs").urn in dev.named(f"{crawler}-crawler").dependencies


def test_every_log_destination_of_the_estate_is_a_log_group_of_the_stack(dev: Estate, prod: Estate) -> None:
    """What services write to must be removed by `pulumi destroy`: Batch's awslogs group, each state
    machine's vended-logs group, the VPC flow log group, and (tested above) each Glue job's and crawler's
    groups. No role may write logs to a group the stack does not create."""
    for estate in (dev, prod):
        groups = log_groups(estate)
        arns = {LOG_GROUP_ARN + name for name in groups}
        for definition in estate.of_type("aws:batch/jobDefinition:JobDefinition"):
            options = json.loads(definition.inputs["containerProperties"])["logConfiguration"]["options"]
            assert options["awslogs-group"] in groups, definition.name
        for machine in estate.of_type("aws:sfn/stateMachine:StateMachine"):
            destination = machine.inputs["loggingConfiguration"]["logDestination"]
            assert destination.removesuffix(":*") in arns, machine.name
        for flow_log in estate.of_type("aws:ec2/flowLog:FlowLog"):
            assert flow_log.inputs["logDestination"] in arns
        for policy in estate.of_type("aws:iam/rolePolicy:RolePolicy"):
            for stmt in json.loads(policy.inputs["policy"])["Statement"]:
                if any(a in ("logs:CreateLogStream", "logs:PutLogEvents") for a in actions(stmt)):
                    resources = stmt["Resource"] if isinstance(stmt["Resource"], list) else [stmt["Resource"]]
                    assert {r.removesuffix(":*") for r in resources} <= arns, (policy.name, resources)


# --- 14. Dev cost guard -------------------------------------------------------------------------


def test_the_dev_warehouse_is_capped_and_stops_at_its_daily_rpu_hours(dev: Estate, prod: Estate) -> None:
    """Redshift Serverless bills RPU-hours; a workgroup's max capacity caps RPUs and a usage limit of
    RPU-hours per day, week or month can log, emit a metric or turn off user queries when reached
    ("Billing for compute capacity", https://docs.aws.amazon.com/redshift/latest/mgmt/serverless-billing-on-demand.html;
    CreateUsageLimit, https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_CreateUsageLimit.html).
    Dev stops at 24 RPU-hours a day; prod only emits a metric."""
    for estate, cap, amount, action in ((dev, 32, 24, "deactivate"), (prod, 128, 1536, "emit-metric")):
        workgroup = estate.one("aws:redshiftserverless/workgroup:Workgroup")
        assert workgroup.inputs["maxCapacity"] == cap
        limit = estate.one("aws:redshiftserverless/usageLimit:UsageLimit")
        assert limit.inputs == {
            "resourceArn": f"arn:aws:redshift-serverless:{REGION}:{ACCOUNT}:workgroup/0b9f4c3e-"
            + workgroup.inputs["workgroupName"],
            "usageType": "serverless-compute",
            "amount": amount,
            "period": "daily",
            "breachAction": action,
        }


def test_no_usage_limit_when_the_stack_sets_none() -> None:
    """redshiftDailyRpuHourLimit 0 (the project default) creates no usage limit."""
    estate = build_estate("dev", "Pulumi.dev.yaml", {"dataplatform:redshiftDailyRpuHourLimit": "0"})
    assert estate.of_type("aws:redshiftserverless/usageLimit:UsageLimit") == []
