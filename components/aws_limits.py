"""What AWS accepts for the settings this project exposes, each with the AWS page that states it.

Stack configuration (components/config.py and each pipeline's config section) and the components
check values against these, so a bad value fails the preview with what AWS allows instead of
failing `pulumi up` halfway through.
"""

from __future__ import annotations

import re

# Fargate's task sizes: vCPU -> the memory (MiB) each allows. AWS Batch on Fargate takes the same
# combinations. https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-cpu-memory-error.html
FARGATE_MEMORY_MIB: dict[float, tuple[int, ...]] = {
    0.25: (512, 1024, 2048),
    0.5: tuple(range(1024, 4097, 1024)),
    1: tuple(range(2048, 8193, 1024)),
    2: tuple(range(4096, 16385, 1024)),
    4: tuple(range(8192, 30721, 1024)),
    8: tuple(range(16384, 61441, 4096)),
    16: tuple(range(32768, 122881, 8192)),
}

# Attempts of a Batch job's retry strategy.
# https://docs.aws.amazon.com/batch/latest/APIReference/API_RetryStrategy.html
BATCH_RETRY_ATTEMPTS = (1, 10)

# The retention periods (days) CloudWatch Logs accepts for a log group.
# https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutRetentionPolicy.html
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)

# Worker types of Glue Spark jobs (G.1X to G.8X: 1 to 8 DPUs per worker).
# https://docs.aws.amazon.com/glue/latest/dg/worker-types.html
GLUE_WORKER_TYPES = ("G.1X", "G.2X", "G.4X", "G.8X")
# A Glue Spark job's timeout, in minutes (the default is also the maximum, 48 hours).
# https://docs.aws.amazon.com/glue/latest/dg/add-job.html
GLUE_TIMEOUT_MINUTES = (1, 2880)

# Redshift Serverless base capacity, in RPUs, in steps of 8.
# https://docs.aws.amazon.com/redshift/latest/mgmt/serverless-capacity.html
REDSHIFT_RPU_RANGE = (8, 1024)
# The highest maximum capacity a workgroup may set, in RPUs (same page).
REDSHIFT_MAX_CAPACITY = 5632
# What Redshift Serverless does when a workgroup reaches its RPU-hour usage limit (breachAction).
# https://docs.aws.amazon.com/redshift-serverless/latest/APIReference/API_CreateUsageLimit.html
REDSHIFT_USAGE_LIMIT_ACTIONS = ("log", "emit-metric", "deactivate")

# EventBridge Scheduler's schedule expressions: rate(value unit), cron(six fields), at(yyyy-mm-ddThh:mm:ss).
# https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*?/,#L W-]+$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\)$")


def schedule_expression_problem(expression: str) -> str | None:
    """None if EventBridge Scheduler accepts the expression, else what is wrong with it."""
    rate = _RATE.match(expression)
    if rate:
        amount, unit = int(rate.group(1)), rate.group(2)
        if amount < 1:
            return "rate() needs a positive amount"
        if (amount == 1) != (not unit.endswith("s")):
            return f"rate({amount} {unit}): use the singular unit for 1 and the plural otherwise"
        return None
    if _AT.match(expression):
        return None
    if expression.startswith("cron(") and expression.endswith(")"):
        fields = expression[5:-1].split(" ")
        if len(fields) != 6:
            return f"cron() needs 6 fields (minutes hours day-of-month month day-of-week year), found {len(fields)}"
        if not all(_CRON_FIELD.match(f) for f in fields):
            return "cron() fields may use only digits, names, and * ? / , - # L W"
        day_of_month, day_of_week = fields[2], fields[4]
        if (day_of_month == "?") == (day_of_week == "?"):
            return "cron(): exactly one of day-of-month and day-of-week must be '?'"
        return None
    return "must be rate(...), cron(...) or at(...)"
