"""Warehouse: Redshift Serverless for loaded tables; Glue Data Catalog, crawlers and Athena for the lake."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.aws_limits import REDSHIFT_RPU_RANGE, REDSHIFT_USAGE_LIMIT_ACTIONS
from components.compute import glue_security_configuration
from components.iam import document, list_buckets, objects, service_role, statement
from components.storage import s3_uri, stateful


@dataclass(frozen=True, kw_only=True)
class WarehouseArgs:
    account_id: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    subnet_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    security_group_ids: pulumi.Input[Sequence[pulumi.Input[str]]]
    database: str = "analytics"
    # Redshift Processing Units: a multiple of 8 from 8 to 1024; 0 max means no cap.
    base_capacity: int = 8
    max_capacity: int = 0
    # RPU-hours the workgroup may use per day; 0 sets no usage limit.
    daily_rpu_hour_limit: int = 0
    # At the limit: "log", "emit-metric" (a CloudWatch metric too) or "deactivate" (queries refused until
    # the next day). "log" by default: a limit never stops a warehouse unless the stack asks for it.
    usage_limit_action: str = "log"
    # What Redshift itself may read (COPY from S3), as IAM statements.
    redshift_role_statements: list[dict[str, Any]] = field(default_factory=list)
    # Without removal, the namespace (its data) is protected and retained on destroy.
    remove_data_on_destroy: bool = False


# Every parameter Redshift Serverless reports for a workgroup, sorted by key as AWS returns them, with
# AWS's defaults except require_ssl. Setting only some makes every preview show the rest as removed.
WORKGROUP_CONFIG_PARAMETERS: tuple[tuple[str, str], ...] = (
    ("auto_mv", "true"),
    ("datestyle", "ISO, MDY"),
    ("enable_case_sensitive_identifier", "false"),
    # The namespace exports useractivitylog, which Redshift writes only with this on.
    ("enable_user_activity_logging", "true"),
    ("max_query_execution_time", "14400"),
    ("query_group", "default"),
    ("require_ssl", "true"),
    ("search_path", "$user, public"),
    ("use_fips_ssl", "false"),
)


class Warehouse(pulumi.ComponentResource):
    """A Redshift Serverless namespace and workgroup: encrypted with the estate key, the admin
    password generated and kept by Secrets Manager (never in config or state), not publicly
    accessible, enhanced VPC routing, TLS required, audit logs exported, an IAM role for COPY, and
    optionally a daily RPU-hour usage limit."""

    namespace_name: pulumi.Output[str]
    workgroup_name: pulumi.Output[str]
    workgroup_arn: pulumi.Output[str]
    database: str
    admin_secret_arn: pulumi.Output[str]
    copy_role_arn: pulumi.Output[str]

    def __init__(self, name: str, args: WarehouseArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:warehouse:Warehouse", name, None, opts)
        low, high = REDSHIFT_RPU_RANGE
        if args.base_capacity % 8 or not low <= args.base_capacity <= high:
            raise ValueError(f"Warehouse {name}: base_capacity must be a multiple of 8 from {low} to {high}")
        if args.daily_rpu_hour_limit < 0 or args.usage_limit_action not in REDSHIFT_USAGE_LIMIT_ACTIONS:
            raise ValueError(
                f"Warehouse {name}: daily_rpu_hour_limit must be >= 0 and usage_limit_action one of "
                "log, emit-metric, deactivate"
            )
        copy_role = service_role(
            f"{name}-copy-role",
            f"{name}-copy",
            "redshift.amazonaws.com",
            args.account_id,
            args.redshift_role_statements or [{"Effect": "Deny", "Action": "s3:*", "Resource": "*"}],
            parent=self,
        )
        namespace = aws.redshiftserverless.Namespace(
            f"{name}-namespace",
            namespace_name=naming.physical(name, 64),
            db_name=args.database,
            admin_username="admin",
            manage_admin_password=True,
            admin_password_secret_kms_key_id=args.kms_key_arn,
            kms_key_id=args.kms_key_arn,
            iam_roles=[copy_role.arn],
            default_iam_role_arn=copy_role.arn,
            log_exports=["connectionlog", "userlog", "useractivitylog"],
            opts=stateful(args.remove_data_on_destroy, self),
        )
        workgroup = aws.redshiftserverless.Workgroup(
            f"{name}-workgroup",
            workgroup_name=naming.physical(name, 64),
            namespace_name=namespace.namespace_name,
            base_capacity=args.base_capacity,
            max_capacity=args.max_capacity or None,
            publicly_accessible=False,
            enhanced_vpc_routing=True,
            subnet_ids=args.subnet_ids,
            security_group_ids=args.security_group_ids,
            config_parameters=[{"parameter_key": k, "parameter_value": v} for k, v in WORKGROUP_CONFIG_PARAMETERS],
            opts=pulumi.ResourceOptions(parent=self),
        )
        if args.daily_rpu_hour_limit:
            aws.redshiftserverless.UsageLimit(
                f"{name}-daily-rpu-hours",
                resource_arn=workgroup.arn,
                usage_type="serverless-compute",
                amount=args.daily_rpu_hour_limit,
                period="daily",
                breach_action=args.usage_limit_action,
                opts=pulumi.ResourceOptions(parent=workgroup),
            )
        self.namespace_name = namespace.namespace_name
        self.workgroup_name = workgroup.workgroup_name
        self.workgroup_arn = workgroup.arn
        self.database = args.database
        self.admin_secret_arn = namespace.admin_password_secret_arn
        self.copy_role_arn = copy_role.arn
        self.register_outputs(
            {
                "namespace_name": self.namespace_name,
                "workgroup_name": self.workgroup_name,
                "workgroup_arn": self.workgroup_arn,
                "admin_secret_arn": self.admin_secret_arn,
                "copy_role_arn": self.copy_role_arn,
            }
        )


def data_api_statements(workgroup_arn: pulumi.Input[str]) -> list[dict[str, Any]]:
    """What a job needs to run SQL on the workgroup through the Redshift Data API as its own IAM
    identity (no password): run, follow and cancel statements, and get temporary credentials."""
    return [
        statement(["redshift-data:BatchExecuteStatement", "redshift-data:ExecuteStatement"], [workgroup_arn]),
        # The Data API does not scope these to a resource; a caller only sees its own statements.
        statement(
            ["redshift-data:CancelStatement", "redshift-data:DescribeStatement", "redshift-data:GetStatementResult"],
            ["*"],
        ),
        statement(["redshift-serverless:GetCredentials"], [workgroup_arn]),
    ]


@dataclass(frozen=True, kw_only=True)
class QueryCatalogArgs:
    kms_key_arn: pulumi.Input[str]
    results_bucket: pulumi.Input[str]
    # Athena stops a query that would scan more than this (cost guard), 10 GiB by default.
    bytes_scanned_cutoff_per_query: int = 10 * 1024**3
    remove_data_on_destroy: bool = False


class QueryCatalog(pulumi.ComponentResource):
    """A Glue Data Catalog database for the lake's tables and an Athena workgroup whose settings
    are enforced (clients cannot turn off result encryption) with KMS-encrypted results."""

    database_name: pulumi.Output[str]
    workgroup_name: pulumi.Output[str]

    def __init__(self, name: str, args: QueryCatalogArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:warehouse:QueryCatalog", name, None, opts)
        database = aws.glue.CatalogDatabase(
            f"{name}-database",
            name=naming.snake(name, 255),
            description=f"Data-lake tables of {pulumi.get_project()}/{pulumi.get_stack()}",
            opts=pulumi.ResourceOptions(parent=self),
        )
        workgroup = aws.athena.Workgroup(
            f"{name}-athena",
            name=naming.physical(name, 128),
            force_destroy=args.remove_data_on_destroy,
            configuration={
                "enforce_workgroup_configuration": True,
                "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": args.bytes_scanned_cutoff_per_query,
                "result_configuration": {
                    "output_location": s3_uri(args.results_bucket, "athena/"),
                    "encryption_configuration": {"encryption_option": "SSE_KMS", "kms_key_arn": args.kms_key_arn},
                },
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.database_name = database.name
        self.workgroup_name = workgroup.name
        self.register_outputs({"database_name": self.database_name, "workgroup_name": self.workgroup_name})


@dataclass(frozen=True, kw_only=True)
class CrawlerArgs:
    account_id: pulumi.Input[str]
    region: pulumi.Input[str]
    kms_key_arn: pulumi.Input[str]
    database_name: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    # The dataset's root folder ("sales/parquet/"): one table there, its subfolders are partitions.
    prefix: str
    table_prefix: str
    # True: each folder directly under the prefix is its own table (several datasets under one root).
    table_per_folder: bool = False
    # True: CSV files always have a header row. Glue's default classifier guesses, and guesses
    # "no header" when every column is a string (the header then becomes a data row named col0...).
    csv_with_header: bool = False
    # Glob patterns (relative to the prefix) the crawler skips.
    exclusions: tuple[str, ...] = ()
    # True: every run crawls the whole prefix again (CRAWL_EVERYTHING), so files added to a folder it
    # already crawled are seen, and schema changes are applied (new columns merged). False: only new
    # folders are crawled (CRAWL_NEW_FOLDERS_ONLY), which Glue allows only with schema changes logged.
    recrawl_everything: bool = False
    # Retention of the crawler's log group (a value CloudWatch Logs accepts).
    log_retention_days: int = 30


def table_level(prefix: str, table_per_folder: bool = False) -> int:
    """Glue's TableLevelConfiguration for tables at `prefix` (or at each folder directly under it):
    Glue counts absolute levels from the bucket, which is level 1, so "sales/parquet/" is level 3."""
    return 1 + len(prefix.strip("/").split("/")) + int(table_per_folder)


def crawler_configuration(prefix: str, table_per_folder: bool = False) -> str:
    """One table at the dataset root (or per folder under it) however many files or folders
    arrive, its partitions following the table, and new columns merged rather than a second table made."""
    return json.dumps(
        {
            "Version": 1.0,
            "Grouping": {
                "TableGroupingPolicy": "CombineCompatibleSchemas",
                "TableLevelConfiguration": table_level(prefix, table_per_folder),
            },
            "CrawlerOutput": {
                "Partitions": {"AddOrUpdateBehavior": "InheritFromTable"},
                "Tables": {"AddOrUpdateBehavior": "MergeNewColumns"},
            },
            "CreatePartitionIndex": True,
        },
        sort_keys=True,
    )


def crawler_log_group_name(
    role_name: pulumi.Input[str], security_configuration: pulumi.Input[str]
) -> pulumi.Output[str]:
    """Where a crawler whose security configuration encrypts CloudWatch logs writes: Glue names the
    group after the role (path included; ours are at "/") and the security configuration."""
    return pulumi.Output.concat("/aws-glue/crawlers-role/", role_name, "-", security_configuration)


class Crawler(pulumi.ComponentResource):
    """A Glue crawler over one S3 dataset that does not fight the jobs: it crawls new folders only and
    logs (never applies) schema changes, or with `recrawl_everything` crawls it all and merges new
    columns; it logs deletions, keeps one table per dataset, and encrypts
    its logs with the estate key into its own log group (the stack's, so destroy removes it), the
    only group its role may write to. Started by a workflow trigger, never on a schedule."""

    crawler_name: pulumi.Output[str]
    crawler_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]

    def __init__(self, name: str, args: CrawlerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:warehouse:Crawler", name, None, opts)
        if not args.prefix.endswith("/") or args.prefix.startswith("/"):
            raise ValueError(f"Crawler {name}: prefix must be a folder like 'sales/parquet/', got {args.prefix!r}")
        account, region = pulumi.Output.from_input(args.account_id), pulumi.Output.from_input(args.region)
        catalog = pulumi.Output.concat("arn:aws:glue:", region, ":", account, ":")
        security = glue_security_configuration(name, args.kms_key_arn, self)
        role = service_role(
            f"{name}-role",
            f"{name}-crawler",
            "glue.amazonaws.com",
            args.account_id,
            [
                statement(["s3:GetObject"], objects(args.bucket_arn, args.prefix)),
                list_buckets(args.bucket_arn),
                statement(["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], [args.kms_key_arn]),
                statement(
                    [
                        "glue:BatchCreatePartition",
                        "glue:BatchGetPartition",
                        "glue:BatchUpdatePartition",
                        "glue:CreatePartition",
                        "glue:CreatePartitionIndex",
                        "glue:CreateTable",
                        "glue:GetDatabase",
                        "glue:GetPartition",
                        "glue:GetPartitions",
                        "glue:GetTable",
                        "glue:GetTables",
                        "glue:UpdatePartition",
                        "glue:UpdateTable",
                    ],
                    [
                        pulumi.Output.concat(catalog, "catalog"),
                        pulumi.Output.concat(catalog, "database/", args.database_name),
                        pulumi.Output.concat(catalog, "table/", args.database_name, "/", args.table_prefix, "*"),
                    ],
                ),
            ],
            parent=self,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=crawler_log_group_name(role.name, security.name),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.kms_key_arn,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # A second inline policy: the group's name comes from the role's, so it cannot be in the first.
        # The crawler associates the security configuration's key with the group and writes one stream
        # per crawler; CreateLogGroup only ever finds the group already there.
        logs_policy = aws.iam.RolePolicy(
            f"{name}-logs-policy",
            role=role.id,
            policy=document(
                [
                    statement(
                        ["logs:AssociateKmsKey", "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                        [log_group.arn, pulumi.Output.concat(log_group.arn, ":*")],
                    )
                ]
            ),
            opts=pulumi.ResourceOptions(parent=role),
        )
        classifiers = []
        if args.csv_with_header:
            classifiers.append(
                aws.glue.Classifier(
                    f"{name}-csv",
                    name=naming.physical(f"{name}-csv", 255),
                    csv_classifier={
                        "contains_header": "PRESENT",
                        "delimiter": ",",
                        "quote_symbol": '"',
                        "allow_single_column": False,
                    },
                    opts=pulumi.ResourceOptions(parent=self),
                ).name
            )
        crawler = aws.glue.Crawler(
            f"{name}-crawler",
            name=naming.physical(name, 255),
            role=role.arn,
            database_name=args.database_name,
            table_prefix=args.table_prefix,
            s3_targets=[
                {
                    "path": s3_uri(args.bucket_name, args.prefix),
                    "exclusions": list(args.exclusions),
                }
            ],
            # Recrawling only new folders requires that schema changes and deletions are only logged
            # (Glue, "Incremental crawls"); a full recrawl may apply schema changes. Deletions are only
            # logged either way: a table never disappears because its folder was emptied.
            recrawl_policy={
                "recrawl_behavior": "CRAWL_EVERYTHING" if args.recrawl_everything else "CRAWL_NEW_FOLDERS_ONLY"
            },
            schema_change_policy={
                "update_behavior": "UPDATE_IN_DATABASE" if args.recrawl_everything else "LOG",
                "delete_behavior": "LOG",
            },
            classifiers=classifiers,
            configuration=crawler_configuration(args.prefix, args.table_per_folder),
            security_configuration=security.name,
            # Its log group and the right to write to it exist before any crawl can start.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[log_group, logs_policy]),
        )
        self.crawler_name = crawler.name
        self.crawler_arn = crawler.arn
        self.log_group_name = log_group.name
        self.register_outputs(
            {"crawler_name": self.crawler_name, "crawler_arn": self.crawler_arn, "log_group_name": self.log_group_name}
        )


# Athena reads Parquet through Hive's Parquet SerDe and formats (what `CREATE EXTERNAL TABLE ... STORED AS
# PARQUET` writes into the Glue table).
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
# Glue and Athena names: 1 to 255 bytes, lower case (Glue folds table names to lower case; Athena
# queries in lower case). Letters, digits and underscores, not starting with an underscore (Athena
# would need backticks around it), so every name is usable unquoted in Athena SQL.
CATALOG_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,254}$")
# Hive primitive types Glue accepts as partition keys (only primitives may partition a table).
HIVE_PRIMITIVE = re.compile(
    r"^(string|bigint|int|smallint|tinyint|double|float|boolean|date|timestamp|binary|decimal\(\d+,\d+\)"
    r"|varchar\(\d+\)|char\(\d+\))$"
)
HIVE_COMPLEX = re.compile(r"^(array|map|struct)<.+>$")
# Athena partition projection: the four column types and the date interval units it accepts.
PROJECTION_TYPES = ("date", "enum", "injected", "integer")
PROJECTION_DATE_UNITS = ("YEARS", "MONTHS", "WEEKS", "DAYS", "HOURS", "MINUTES", "SECONDS", "MILLISECONDS")


@dataclass(frozen=True)
class Projection:
    """How Athena computes one partition column's values (table properties `projection.<column>.*`)."""

    type: str
    # The other properties of the column, without the `projection.<column>.` prefix: ("range", "0,23").
    properties: tuple[tuple[str, str], ...] = ()


def date_projection(date_format: str, date_range: str, interval: int = 1, unit: str = "DAYS") -> Projection:
    """Dates written with `date_format` (Java DateTimeFormatter, "yyyy-MM-dd") from the first to the last
    of `date_range` ("2020-01-01,NOW"; NOW and NOW±N UNITS allowed), one every `interval` `unit`."""
    if unit not in PROJECTION_DATE_UNITS:
        raise ValueError(f"date projection unit must be one of {', '.join(PROJECTION_DATE_UNITS)}, got {unit!r}")
    return Projection(
        "date",
        (("format", date_format), ("interval", str(interval)), ("interval.unit", unit), ("range", date_range)),
    )


def integer_projection(low: int, high: int) -> Projection:
    """Integers from `low` to `high` inclusive, written without padding."""
    if low > high:
        raise ValueError(f"integer projection range {low},{high} is empty")
    return Projection("integer", (("range", f"{low},{high}"),))


def enum_projection(values: Sequence[str]) -> Projection:
    """One of `values` (no commas inside a value: Athena splits the list on them)."""
    if not values or any("," in v for v in values):
        raise ValueError(f"enum projection values must be non-empty and comma-free, got {values!r}")
    return Projection("enum", (("values", ",".join(values)),))


def injected_projection() -> Projection:
    """A value each query must give in its WHERE clause (unbounded, e.g. an id)."""
    return Projection("injected")


@dataclass(frozen=True, kw_only=True)
class CatalogTableArgs:
    database: pulumi.Input[str]
    # The table's name as users type it in Athena ("gharchive_events"); the database carries the stack.
    name: str
    # The dataset's root folder, "s3://bucket/prefix/" (its partitions are folders under it).
    location: pulumi.Input[str]
    # (name, Glue/Hive type) of each column the job writes, in the files' order: ("id", "string").
    columns: tuple[tuple[str, str], ...]
    # (name, Hive primitive type) of each partition folder level, outermost first: ("date", "string").
    partition_keys: tuple[tuple[str, str], ...] = ()
    # Partition projection, one entry per partition key (all of them, or none: no projection, and
    # partitions must then be registered some other way).
    projection: tuple[tuple[str, Projection], ...] = ()
    description: str = ""


def projection_parameters(
    location: str, partition_keys: Sequence[tuple[str, str]], projection: Sequence[tuple[str, Projection]]
) -> dict[str, str]:
    """The table properties that turn on Athena partition projection for Hive-style folders
    (`<location><key>=<value>/...`): each key's type and properties, and the location template."""
    if not projection:
        return {}
    params = {"projection.enabled": "true"}
    for column, spec in projection:
        params[f"projection.{column}.type"] = spec.type
        params.update({f"projection.{column}.{key}": value for key, value in spec.properties})
    params["storage.location.template"] = location + "".join(f"{k}=${{{k}}}/" for k, _ in partition_keys)
    return params


def table_parameters(name: str, args: CatalogTableArgs, location: str) -> dict[str, str]:
    """The table's parameters once its location is known (a bucket's name may be known only at deploy
    time, so the location is checked here too): Parquet, external, and the projection properties."""
    if not (location.startswith("s3://") and location.endswith("/")):
        raise ValueError(f"CatalogTable {name}: location must be a folder like 's3://bucket/prefix/'")
    return {
        "classification": "parquet",
        "EXTERNAL": "TRUE",
        **projection_parameters(location, args.partition_keys, args.projection),
    }


def validate_table(name: str, args: CatalogTableArgs) -> None:
    """Raise ValueError where Glue or Athena would refuse the table or not query it."""
    for what in (args.name, *(c for c, _ in args.columns), *(k for k, _ in args.partition_keys)):
        if not CATALOG_NAME.match(what):
            raise ValueError(f"CatalogTable {name}: {what!r} is not a lower_snake_case name of at most 255 bytes")
    names = [c for c, _ in args.columns] + [k for k, _ in args.partition_keys]
    if len(set(names)) != len(names) or not args.columns:
        raise ValueError(f"CatalogTable {name}: columns and partition keys must be non-empty and distinct")
    for column, typ in args.columns:
        if not (HIVE_PRIMITIVE.match(typ) or HIVE_COMPLEX.match(typ)):
            raise ValueError(f"CatalogTable {name}: column {column} has type {typ!r}, not a Glue/Hive type")
    for key, typ in args.partition_keys:
        if not HIVE_PRIMITIVE.match(typ):
            raise ValueError(f"CatalogTable {name}: partition key {key} must have a primitive type, got {typ!r}")
    projected = [c for c, _ in args.projection]
    if projected and projected != [k for k, _ in args.partition_keys]:
        raise ValueError(f"CatalogTable {name}: projection must cover every partition key, in order")
    for column, spec in args.projection:
        if spec.type not in PROJECTION_TYPES:
            raise ValueError(f"CatalogTable {name}: projection type of {column} must be one of {PROJECTION_TYPES}")
    if isinstance(args.location, str) and not (args.location.startswith("s3://") and args.location.endswith("/")):
        raise ValueError(f"CatalogTable {name}: location must be a folder like 's3://bucket/prefix/'")


class CatalogTable(pulumi.ComponentResource):
    """A Glue Data Catalog table over a Parquet dataset whose schema the estate owns: external (dropping
    it leaves the data), its columns and partition keys declared here (so a schema change shows in
    `pulumi preview` and no crawler has to discover it), and, where partition folders follow a
    pattern, Athena partition projection, so a new partition is queryable the moment it is written."""

    table_name: pulumi.Output[str]
    database_name: pulumi.Output[str]
    table_arn: pulumi.Output[str]

    def __init__(self, name: str, args: CatalogTableArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("dataplatform:warehouse:CatalogTable", name, None, opts)
        validate_table(name, args)

        parameters = pulumi.Output.from_input(args.location).apply(
            lambda location: table_parameters(name, args, location)
        )
        table = aws.glue.CatalogTable(
            f"{name}-table",
            database_name=args.database,
            name=args.name,
            description=args.description or None,
            table_type="EXTERNAL_TABLE",
            parameters=parameters,
            # Athena needs the list even when empty (Glue CreateTable: PartitionKeys).
            partition_keys=[{"name": k, "type": t} for k, t in args.partition_keys],
            storage_descriptor={
                "location": args.location,
                "input_format": PARQUET_INPUT_FORMAT,
                "output_format": PARQUET_OUTPUT_FORMAT,
                "ser_de_info": {
                    "serialization_library": PARQUET_SERDE,
                    "parameters": {"serialization.format": "1"},
                },
                "columns": [{"name": c, "type": t} for c, t in args.columns],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.table_name = table.name
        self.database_name = table.database_name
        self.table_arn = table.arn
        self.register_outputs(
            {"table_name": self.table_name, "database_name": self.database_name, "table_arn": self.table_arn}
        )
