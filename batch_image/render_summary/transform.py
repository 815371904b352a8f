"""Pure transforms: raw CSV lines -> validated rows + quarantined rows -> per-device summary.

Nothing here does I/O. Input arrives as an iterable of raw byte lines, so the same code serves a
local file and a streaming S3 body, and the work happens in bounded chunks: per-device partial
aggregates are merged across chunks, so memory depends on the number of devices, not on file size.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
from job_errors import BadInputError

REQUIRED_COLUMNS = ("timestamp", "device_id", "frame_rate", "gpu_usage", "latency_ms")
SUMMARY_COLUMNS = ("device_id", "avg_frame_rate", "avg_gpu_usage", "max_latency_ms", "log_count")
QUARANTINE_COLUMNS = ("line_number", "reason", "raw_line")
DEVICE_ID_MAX_BYTES = 50  # performance_summary.device_id is VARCHAR(50); Redshift counts bytes
INT4_MAX = 2**31 - 1
# Beyond any real display, and small enough that sums over billions of rows stay finite.
FRAME_RATE_MAX = 10_000
DEFAULT_CHUNK_ROWS = 200_000

_PARTIAL_COLUMNS = ["device_id", "sum_frame_rate", "sum_gpu_usage", "max_latency_ms", "log_count"]


@dataclass(frozen=True)
class Chunk:
    """One bounded slice of the input: rows that parsed into the header's fields, and lines that did not."""

    rows: pd.DataFrame  # REQUIRED_COLUMNS as strings, plus line_number and raw_line
    rejected: pd.DataFrame  # QUARANTINE_COLUMNS


def _decode(line: bytes) -> str:
    return line.rstrip(b"\r\n").decode("utf-8")


def _split(text: str) -> list[str]:
    # Fast path for the common unquoted line; csv handles quoting exactly when a quote is present.
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text], strict=True))


def parse_header(line: bytes) -> list[str]:
    """Header fields, or BadInputError naming what is wrong (missing columns, duplicates, encoding)."""
    try:
        text = _decode(line).lstrip("\ufeff")
        fields = [f.strip() for f in _split(text)]
    except UnicodeDecodeError as exc:
        raise BadInputError(f"header line is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise BadInputError(f"header line is not valid CSV: {exc}") from exc
    duplicates = sorted({f for f in fields if fields.count(f) > 1})
    if duplicates:
        raise BadInputError(f"header repeats column(s): {', '.join(duplicates)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in fields]
    if missing:
        raise BadInputError(
            f"missing required column(s): {', '.join(missing)}; "
            f"expected {', '.join(REQUIRED_COLUMNS)}, found {', '.join(fields) or '(none)'}"
        )
    return fields


def read_chunks(lines: Iterable[bytes], chunk_rows: int = DEFAULT_CHUNK_ROWS) -> tuple[list[str], Iterator[Chunk]]:
    """Parse the header eagerly (so a bad header fails before any work) and the body lazily in chunks.

    Blank lines are skipped and not counted. A record is one physical line: a quoted field
    spanning lines is quarantined as malformed rather than silently joined to the next line.
    Returns ([], empty iterator) for an empty file.
    """
    it = iter(lines)
    line_number = 0
    for raw in it:
        line_number += 1
        if raw.strip():
            header = parse_header(raw)
            break
    else:
        return [], iter(())
    wanted = [header.index(c) for c in REQUIRED_COLUMNS]
    width = len(header)

    def chunks() -> Iterator[Chunk]:
        nonlocal line_number
        good: list[list[str]] = []
        bad: list[tuple[int, str, str]] = []
        for raw in it:
            line_number += 1
            if not raw.strip():
                continue
            try:
                text = _decode(raw)
            except UnicodeDecodeError as exc:
                shown = raw.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
                bad.append((line_number, f"invalid UTF-8 ({exc.reason} at byte {exc.start})", shown))
            else:
                try:
                    fields = _split(text)
                except (csv.Error, StopIteration) as exc:
                    bad.append((line_number, f"malformed CSV quoting: {exc}", text))
                else:
                    if len(fields) != width:
                        bad.append((line_number, f"expected {width} fields, found {len(fields)}", text))
                    else:
                        good.append([fields[i] for i in wanted] + [str(line_number), text])
            if len(good) + len(bad) >= chunk_rows:
                yield _chunk(good, bad)
                good, bad = [], []
        if good or bad:
            yield _chunk(good, bad)

    return header, chunks()


def _chunk(good: list[list[str]], bad: list[tuple[int, str, str]]) -> Chunk:
    rows = pd.DataFrame(good, columns=[*REQUIRED_COLUMNS, "line_number", "raw_line"], dtype=object)
    rows["line_number"] = rows["line_number"].astype("int64")
    rejected = pd.DataFrame(bad, columns=list(QUARANTINE_COLUMNS)).astype({"line_number": "int64"})
    return Chunk(rows=rows, rejected=rejected)


def validate(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split parsed rows into typed valid rows and quarantined rows carrying every reason that applies.

    Valid rows have: timestamp (datetime64, UTC; a time without offset is read as UTC), device_id (str),
    frame_rate, gpu_usage (float64), latency_ms (int64). Quarantined rows have QUARANTINE_COLUMNS.
    """
    device = rows["device_id"].astype(str).str.strip()
    # utc=True: one file may carry several offsets (a DST change); without it pandas returns an object
    # column with a FutureWarning today and raises in pandas 3.
    ts = pd.to_datetime(rows["timestamp"].str.strip(), format="ISO8601", errors="coerce", utc=True)
    frame = pd.to_numeric(rows["frame_rate"].str.strip(), errors="coerce")
    gpu = pd.to_numeric(rows["gpu_usage"].str.strip(), errors="coerce")
    latency = pd.to_numeric(rows["latency_ms"].str.strip(), errors="coerce")

    checks: list[tuple[pd.Series, str]] = [
        (device.eq(""), "empty device_id"),
        (device.str.encode("utf-8").str.len().gt(DEVICE_ID_MAX_BYTES), "device_id longer than 50 bytes"),
        (device.str.contains(r"[\\\x00-\x1f\x7f]", regex=True), "device_id contains a backslash or control character"),
        (ts.isna(), "unparsable timestamp"),
        (~_finite(frame), "non-numeric frame_rate"),
        (_finite(frame) & (frame.lt(0) | frame.gt(FRAME_RATE_MAX)), "frame_rate outside 0..10000"),
        (~_finite(gpu), "non-numeric gpu_usage"),
        (_finite(gpu) & (gpu.lt(0) | gpu.gt(100)), "gpu_usage outside 0..100"),
        (~_finite(latency) | latency.ne(latency.round()), "non-integer latency_ms"),
        (_finite(latency) & (latency.lt(0) | latency.gt(INT4_MAX)), "latency_ms outside 0..2147483647"),
    ]
    reasons = pd.Series("", index=rows.index, dtype=object)
    for failed, reason in checks:
        failed = failed.fillna(False).astype(bool)
        reasons[failed] = reasons[failed] + "; " + reason
    bad = reasons.ne("")

    valid = pd.DataFrame(
        {
            "timestamp": ts[~bad],
            "device_id": device[~bad],
            "frame_rate": frame[~bad].astype("float64"),
            "gpu_usage": gpu[~bad].astype("float64"),
            "latency_ms": latency[~bad].astype("int64"),
        }
    ).reset_index(drop=True)
    quarantined = pd.DataFrame(
        {
            "line_number": rows.loc[bad, "line_number"],
            "reason": reasons[bad].str.removeprefix("; "),
            "raw_line": rows.loc[bad, "raw_line"],
        }
    ).reset_index(drop=True)
    return valid, quarantined


def _finite(values: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(values.astype("float64")), index=values.index)


def partial_aggregate(valid: pd.DataFrame) -> pd.DataFrame:
    """Per-device sums, max and count for one chunk: mergeable with other chunks' partials."""
    grouped = valid.groupby("device_id", sort=False)
    return pd.DataFrame(
        {
            "sum_frame_rate": grouped["frame_rate"].sum(),
            "sum_gpu_usage": grouped["gpu_usage"].sum(),
            "max_latency_ms": grouped["latency_ms"].max(),
            "log_count": grouped["latency_ms"].size(),
        }
    ).reset_index()[_PARTIAL_COLUMNS]


def merge_partials(partials: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [p for p in partials if not p.empty]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in _PARTIAL_COLUMNS}).astype(
            {"device_id": object, "max_latency_ms": "int64", "log_count": "int64"}
        )
    merged = pd.concat(frames, ignore_index=True).groupby("device_id", sort=False)
    return pd.DataFrame(
        {
            "sum_frame_rate": merged["sum_frame_rate"].sum(),
            "sum_gpu_usage": merged["sum_gpu_usage"].sum(),
            "max_latency_ms": merged["max_latency_ms"].max(),
            "log_count": merged["log_count"].sum(),
        }
    ).reset_index()[_PARTIAL_COLUMNS]


def finalize(partials: pd.DataFrame) -> pd.DataFrame:
    """The performance_summary rows, one per device, sorted by device_id."""
    count = partials["log_count"].astype("int64")
    summary = pd.DataFrame(
        {
            "device_id": partials["device_id"].astype(object),
            "avg_frame_rate": partials["sum_frame_rate"] / count,
            "avg_gpu_usage": partials["sum_gpu_usage"] / count,
            "max_latency_ms": partials["max_latency_ms"].astype("int64"),
            "log_count": count,
        }
    )
    return summary.sort_values("device_id", ignore_index=True)[list(SUMMARY_COLUMNS)]
