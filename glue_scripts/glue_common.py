"""What every Glue script here shares: arguments, the Spark session, file listing, run summaries (metrics).

On AWS Glue this file ships beside each script through `--extra-py-files` (see
components/compute.py GlueJob), so scripts import it as the top-level module `glue_common`; the
package `job_runtime` (error classes, SQL, the warehouse transaction, contracts) ships the same way
as a zip.
Locally the same code runs on pyspark 3.5 with local paths; `s3://` URIs work on Glue, whose
EMRFS serves the Hadoop FileSystem calls below.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from job_runtime import metrics
from job_runtime.errors import EXIT_BAD_INPUT, BadInputError

log = logging.getLogger("glue_job")


def resolve_args(argv: Sequence[str], required: Sequence[str], optional: dict[str, str]) -> dict[str, str]:
    """`--name value` job arguments: Glue's getResolvedOptions on Glue, argparse elsewhere.

    Optional arguments fall back to the given defaults (Glue itself has no optional arguments).
    """
    try:
        from awsglue.utils import getResolvedOptions  # type: ignore[import-not-found]
    except ImportError:
        parser = argparse.ArgumentParser()
        for name in required:
            parser.add_argument(f"--{name}", required=True)
        for name, default in optional.items():
            parser.add_argument(f"--{name}", default=default)
        return vars(parser.parse_known_args(list(argv))[0])
    given = {a[2:].split("=", 1)[0] for a in argv if a.startswith("--")}
    resolved = getResolvedOptions(list(argv), [*required, *(n for n in optional if n in given)])
    return {**optional, **resolved}


def spark_session(app_name: str):
    """The Glue job's Spark session (committing the job on exit), or a local[2] one."""
    from pyspark.sql import SparkSession

    try:
        from awsglue.context import GlueContext  # type: ignore[import-not-found]
        from pyspark.context import SparkContext
    except ImportError:
        builder = SparkSession.builder.master("local[2]").appName(app_name)
    else:  # pragma: no cover - only on AWS Glue
        return configure(GlueContext(SparkContext.getOrCreate()).spark_session)
    return configure(
        builder.config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )


def configure(spark):
    """Settings every job relies on, applied to any session (Glue's or a local one)."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    # Overwrite replaces only the partitions a run writes, never the whole dataset.
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    spark.conf.set("spark.sql.parquet.compression.codec", "snappy")
    # No `_SUCCESS` files among the data: crawlers and COPY see Parquet only.
    spark.conf.set("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    spark.sparkContext._jsc.hadoopConfiguration().set("mapreduce.fileoutputcommitter.marksuccessfuljobs", "false")
    return spark


@dataclass(frozen=True)
class FileInfo:
    uri: str
    size: int
    modified_ms: int


def _path(spark, uri: str):
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path, path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())


def list_files(spark, uri: str, suffix: str = "") -> list[FileInfo]:
    """Files under a directory/prefix (recursively), or the one file `uri` names, sorted by URI."""
    path, fs = _path(spark, uri)
    if not fs.exists(path):
        return []
    if fs.getFileStatus(path).isFile():
        status = fs.getFileStatus(path)
        return [FileInfo(str(status.getPath().toString()), status.getLen(), status.getModificationTime())]
    found = []
    iterator = fs.listFiles(path, True)
    while iterator.hasNext():
        status = iterator.next()
        name = status.getPath().getName()
        if name.endswith(suffix) and not name.startswith(("_", ".")):
            found.append(FileInfo(status.getPath().toString(), status.getLen(), status.getModificationTime()))
    return sorted(found, key=lambda f: f.uri)


def delete_matching(spark, glob: str) -> int:
    """Delete every path matching a Hadoop glob; returns how many were deleted."""
    path, fs = _path(spark, glob)
    matches = fs.globStatus(path) or []
    for status in matches:
        fs.delete(status.getPath(), True)
    return len(matches)


def read_text(spark, uri: str) -> str | None:
    """A small UTF-8 file (state markers), or None if it does not exist."""
    path, fs = _path(spark, uri)
    if not fs.exists(path):
        return None
    stream = fs.open(path)
    try:
        jvm = spark.sparkContext._jvm
        return str(jvm.org.apache.commons.io.IOUtils.toString(stream, "UTF-8"))
    finally:
        stream.close()


def write_text(spark, uri: str, text: str) -> None:
    """Create or replace a small UTF-8 file (state markers)."""
    path, fs = _path(spark, uri)
    stream = fs.create(path, True)
    try:
        stream.write(bytearray(text.encode("utf-8")))
    finally:
        stream.close()


@dataclass(frozen=True)
class RunMetrics:
    """Where a run's metrics go (the Stack and Pipeline dimension values; "" for the job's own pipeline)
    and when the run started (time.monotonic())."""

    stack: str
    pipeline: str
    started: float


# Until a job's main() calls start_run (e.g. a test calling a job's functions directly): a local run
# timed from this module's import.
_run = RunMetrics(metrics.LOCAL_STACK, "", time.monotonic())


def start_run(argv: Sequence[str]) -> RunMetrics:
    """Start timing this run and read its metrics' Stack and Pipeline from the optional job arguments
    `--metrics_stack` and `--metrics_pipeline` (components/compute.py GlueJob sets both)."""
    global _run
    stack, pipeline = (name.removeprefix("--") for name in (metrics.STACK_ARGUMENT, metrics.PIPELINE_ARGUMENT))
    args = resolve_args(argv, (), {stack: metrics.LOCAL_STACK, pipeline: ""})
    _run = RunMetrics(args[stack].strip() or metrics.LOCAL_STACK, args[pipeline].strip(), time.monotonic())
    return _run


def log_summary(job: str, pipeline: str, job_metrics: dict[str, int] | None = None, **figures: Any) -> dict[str, Any]:
    """The run's one summary: printed to stdout as one CloudWatch Embedded Metric Format line (pure JSON,
    no log prefix, so EMF extraction and Logs Insights read it) and returned as `{"job": job, **figures}`.

    `figures` hold rows_in, rows_loaded and rows_quarantined; `job_metrics` the job's other metrics
    (job_runtime.metrics: Files, Devices, Events); `pipeline` is the registry name the job belongs to,
    used unless the run was started with --metrics_pipeline.
    """
    summary = {"job": job, **figures}
    metrics.emit_run_summary(
        summary,
        stack=_run.stack,
        pipeline=_run.pipeline or pipeline,
        job=job,
        duration_seconds=time.monotonic() - _run.started,
        metrics=job_metrics,
    )
    return summary


def setup_logging() -> None:
    """The jobs' own INFO lines on stdout (CloudWatch on Glue); other libraries' loggers keep their level."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def run(main: Callable[[Sequence[str] | None], Any], argv: Sequence[str] | None = None) -> int:
    """A job's process exit code: 0, or EXIT_BAD_INPUT when `main` raises BadInputError (message logged).

    On AWS Glue the BadInputError propagates instead: Glue records an uncaught exception's message as
    the job run's error message, which is what the failure notification shows; an exit code is
    not (and Glue does not retry by exit code anyway).
    """
    try:
        main(argv)
    except BadInputError as exc:
        log.error("bad input: %s", exc)
        try:
            import awsglue  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            return EXIT_BAD_INPUT
        raise  # pragma: no cover - only on AWS Glue
    return 0


def qualify(spark, uri: str) -> str:
    """The fully qualified form of a path, as `list_files` reports URIs (e.g. `file:/tmp/x`, `s3://b/k`)."""
    path, fs = _path(spark, uri)
    return str(fs.makeQualified(path).toString())


def exists(spark, uri: str) -> bool:
    path, fs = _path(spark, uri)
    return bool(fs.exists(path))


def delete_path(spark, uri: str) -> bool:
    """Delete one file or directory (recursively), taking the name literally (no glob)."""
    path, fs = _path(spark, uri)
    return bool(fs.delete(path, True))


def partition_dir(spark, column: str, value: str) -> str:
    """The directory name Spark writes for a partition value (`col=escaped`), e.g. `source_file=a%2Fb.csv`.

    Spark's own escaping, so deleting or filtering a partition names exactly what a write produced;
    the escaped value holds none of `* ? [ { \\ ^`, so it is also a literal in a Hadoop glob.
    """
    utils = spark.sparkContext._jvm.org.apache.spark.sql.catalyst.catalog.ExternalCatalogUtils
    return f"{column}={utils.escapePathName(value)}"


def read_small_files(spark, uris: Sequence[str]) -> list[str]:
    """The UTF-8 text of many small files (state markers) in one Spark job instead of one GET each."""
    if not uris:
        return []
    rows = spark.read.text(list(uris), wholetext=True).collect()
    return [row.value for row in rows]


def relative(root: str, uri: str) -> str:
    """A listed file's path relative to the input root (its own name when the root is that file)."""
    if uri == root:
        return uri.rsplit("/", 1)[-1]
    prefix = root.rstrip("/") + "/"
    if not uri.startswith(prefix):
        raise ValueError(f"{uri} is not under {root}")
    return uri[len(prefix) :]


def read_markers(spark, directory: str, key: str = "source_file") -> dict[str, dict]:
    """Every JSON state marker under a directory, by the input-relative path it records under `key`."""
    uris = [f.uri for f in list_files(spark, directory, ".json")]
    markers = [json.loads(text) for text in read_small_files(spark, uris)]
    return {m[key]: m for m in markers}


def is_current(marker: dict | None, info: FileInfo) -> bool:
    """True when a marker records exactly this version (size, modification time) of the file."""
    return marker is not None and (marker.get("size"), marker.get("modified_ms")) == (info.size, info.modified_ms)
