"""What the components expect of the jobs they run: the run metrics' names and where a job learns its
dimension values, and the exit codes the Batch retry strategy and the alarm descriptions speak of.

A job run by `GlueJob` or `BatchJob` and watched by `Monitoring` emits one CloudWatch Embedded Metric
Format line per run in namespace NAMESPACE with exactly the dimensions DIMENSIONS and metrics from UNITS,
and exits with the codes below. In this estate job_runtime/metrics.py and job_runtime/errors.py are the
jobs' side of it (tests/infra/test_components_package.py keeps the two equal); the components package
holds its own copy so that a program installing it needs nothing else.
"""

from __future__ import annotations

# One namespace for every pipeline job's run figures.
NAMESPACE = "DataPlatform/Pipelines"
# Every run metric carries exactly these dimensions, in this order: the Pulumi stack, the pipeline's
# name and the job's name.
DIMENSIONS = ("Stack", "Pipeline", "Job")

ROWS_IN = "RowsIn"
ROWS_LOADED = "RowsLoaded"
ROWS_QUARANTINED = "RowsQuarantined"
DURATION = "DurationSeconds"
FILES = "Files"  # input files newly processed by the run
DEVICES = "Devices"
EVENTS = "Events"
# Metric name -> its EMF unit.
UNITS = {
    ROWS_IN: "Count",
    ROWS_LOADED: "Count",
    ROWS_QUARANTINED: "Count",
    DURATION: "Seconds",
    FILES: "Count",
    DEVICES: "Count",
    EVENTS: "Count",
}

# A Batch job's Stack and Pipeline dimension values: environment variables BatchJob sets.
STACK_ENV = "METRICS_STACK"
PIPELINE_ENV = "METRICS_PIPELINE"
# A Glue job's Stack and Pipeline dimension values: default arguments GlueJob sets.
STACK_ARGUMENT = "--metrics_stack"
PIPELINE_ARGUMENT = "--metrics_pipeline"

# Exit codes of a Batch job, one per failure class, so whatever reruns it knows whether a retry can help.
EXIT_USAGE = 2  # bad flags (argparse's own code): a retry cannot help
EXIT_BAD_INPUT = 3  # the input itself is wrong: a retry cannot help
EXIT_TRANSIENT = 4  # network, throttling, a busy service: the only code BatchJob retries by default
EXIT_FAILED = 5  # any other understood failure (permissions, SQL rejected): needs a person
