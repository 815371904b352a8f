"""Unit tests of the render-log job: parsing, validation, aggregation, SQL generation, Data API driver.

Expected values are literal: device ids, counts and maxima copied from the seed, averages recomputed
here with math.fsum from the seed's own numbers (never from the code under test).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest
import sqlglot
from render_summary import cli, storage, transform
from render_summary.warehouse import RedshiftDataWarehouse, load_statements
from sqlglot import exp

from job_runtime import warehouse
from job_runtime.errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_TRANSIENT, BadInputError, JobError, TransientError

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "sample_data" / "render_logs" / "render_logs.csv"
WITH_ERRORS = REPO / "sample_data" / "render_logs" / "render_logs_with_errors.csv"
HEADER = b"timestamp,device_id,frame_rate,gpu_usage,latency_ms\n"
OK_ROW = b"2025-10-06T12:00:00,iac-vx1,60.0,90.0,20\n"

# The seed's numbers, copied by hand from render_logs.csv and grouped by device.
SEED_FRAME_RATES = {
    "iac-vx1": [59.81416753197429, 60.0173934212511, 59.53997824371653, 59.57080580273204, 59.8097078099175],
    "iac-vx2": [59.67959005566225, 59.7738895587058],
    "iac-vx3": [59.56224854984173],
    "iac-vx4": [59.562811926242844, 59.98366150279938, 59.51584255303957, 60.044616577104826, 60.007176271952396],
}
SEED_GPU_USAGES = {
    "iac-vx1": [84.59498867449261, 94.66859960432322, 94.35720190927759, 90.09781034726731, 76.57700156340529],
    "iac-vx2": [88.79872980114298, 94.22981804197595],
    "iac-vx3": [94.96991832936575],
    "iac-vx4": [80.11917348896034, 92.64415855126524, 87.52906982360963, 77.91527298479458, 91.54088090170268],
}
SEED_LOG_COUNTS = {"iac-vx1": 5, "iac-vx2": 2, "iac-vx3": 1, "iac-vx4": 5}
SEED_MAX_LATENCIES = {"iac-vx1": 24, "iac-vx2": 20, "iac-vx3": 21, "iac-vx4": 25}
SUMMARY_SCHEMA = pa.schema(
    [
        ("device_id", pa.string()),
        ("avg_frame_rate", pa.float64()),
        ("avg_gpu_usage", pa.float64()),
        ("max_latency_ms", pa.int64()),
        ("log_count", pa.int64()),
    ]
)


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def run_file(path: Path, tmp_path: Path, batch_bytes: int = transform.DEFAULT_BATCH_BYTES):
    """The whole job in-process (threads, block merge and streamed quarantine included), without a warehouse."""
    return cli.run(str(path), str(tmp_path / "quarantine"), None, "public", "performance_summary", batch_bytes)


def write(tmp_path: Path, data: bytes, name: str = "input.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def pieces(data: bytes, size: int) -> list[bytes]:
    """`data` as a reader delivers it, `size` bytes at a time: the job parses each piece's whole lines."""
    return [data[start : start + size] for start in range(0, len(data), size)]


def parsed(data: bytes, batch_bytes: int = 1000) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Header + body bytes -> (valid rows as Arrow, [(line_number, reason, raw_line)] in file order)."""
    _, batches = transform.parse(pieces(data, batch_bytes))
    valid, quarantined = [], []
    for batch in batches:
        valid.append(batch.valid)
        quarantined += batch.rejected
    assert quarantined == sorted(quarantined)
    return (pa.concat_tables(valid) if valid else pa.table({})), quarantined


def process(data: bytes, batch_bytes: int = 1000) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Header + body bytes -> (valid rows as pandas, [(line_number, reason, raw_line)] in file order)."""
    valid, quarantined = parsed(data, batch_bytes)
    return valid.to_pandas(), quarantined


def reasons_for(*body: bytes) -> list[str]:
    """Reasons for each body line in order (the lines start at line 2, after the header)."""
    valid, quarantined = process(HEADER + b"".join(body))
    assert len(valid) + len(quarantined) == len(body)
    return [reason for _, reason, _ in quarantined]


# --- the seed ---------------------------------------------------------------------------------------


def test_seed_summary_has_exact_values(tmp_path: Path) -> None:
    result, summary = run_file(SEED, tmp_path)

    assert isinstance(summary, pa.Table)
    assert summary.schema.equals(SUMMARY_SCHEMA, check_metadata=True)
    assert summary.num_rows == 4
    assert summary.column("device_id").to_pylist() == ["iac-vx1", "iac-vx2", "iac-vx3", "iac-vx4"]
    assert summary.column("log_count").to_pylist() == [5, 2, 1, 5]
    assert summary.column("max_latency_ms").to_pylist() == [24, 20, 21, 25]
    for row in summary.to_pylist():
        device = row["device_id"]
        assert row["log_count"] == SEED_LOG_COUNTS[device] == len(SEED_FRAME_RATES[device])
        assert row["max_latency_ms"] == SEED_MAX_LATENCIES[device]
        assert row["avg_frame_rate"] == pytest.approx(mean(SEED_FRAME_RATES[device]), rel=1e-12)
        assert row["avg_gpu_usage"] == pytest.approx(mean(SEED_GPU_USAGES[device]), rel=1e-12)

    assert result == cli.RunSummary(
        input=str(SEED), rows_in=13, rows_loaded=13, rows_quarantined=0, devices=4, quarantine=None,
        table="public.performance_summary", status="succeeded",
    )  # fmt: skip
    assert not (tmp_path / "quarantine").exists()


@pytest.mark.parametrize("batch_bytes", [1, 100, 300])  # 1: a block per line
def test_chunked_run_matches_single_chunk(tmp_path: Path, batch_bytes: int) -> None:
    whole_result, whole = run_file(SEED, tmp_path, batch_bytes=10_000)
    chunked_result, chunked = run_file(SEED, tmp_path, batch_bytes=batch_bytes)

    assert chunked_result == whole_result
    # Integer columns and order exactly; averages to the last couple of ulps (summation order differs).
    assert chunked.schema.equals(whole.schema, check_metadata=True)
    pd.testing.assert_frame_equal(chunked.to_pandas(), whole.to_pandas(), check_exact=False, rtol=1e-12, atol=0)
    assert chunked.select(["device_id", "max_latency_ms", "log_count"]).equals(
        whole.select(["device_id", "max_latency_ms", "log_count"])
    )
    for row in chunked.to_pylist():
        assert row["avg_frame_rate"] == pytest.approx(mean(SEED_FRAME_RATES[row["device_id"]]), rel=1e-12)
        assert row["avg_gpu_usage"] == pytest.approx(mean(SEED_GPU_USAGES[row["device_id"]]), rel=1e-12)


@pytest.mark.parametrize("batch_bytes", [1, 120, 100_000])
def test_chunking_of_bad_rows_keeps_accounting(tmp_path: Path, batch_bytes: int) -> None:
    result, summary = run_file(WITH_ERRORS, tmp_path, batch_bytes=batch_bytes)

    assert (result.rows_in, result.rows_loaded, result.rows_quarantined, result.devices) == (8, 2, 6, 2)
    assert summary.to_pydict() == {
        "device_id": ["iac-vx1", "iac-vx3"],
        "avg_frame_rate": [60.0, 58.5],
        "avg_gpu_usage": [90.0, 70.0],
        "max_latency_ms": [20, 30],
        "log_count": [1, 1],
    }
    path_hash = hashlib.sha256(str(WITH_ERRORS.resolve()).encode()).hexdigest()[:8]
    assert result.quarantine == str(tmp_path / "quarantine" / f"render_logs_with_errors.csv.{path_hash}.quarantine.csv")
    quarantined = pd.read_csv(result.quarantine, dtype={"line_number": "int64", "reason": str, "raw_line": str})
    assert quarantined.to_dict("records") == [
        {"line_number": 3, "reason": "empty device_id", "raw_line": "2025-10-06T12:00:10,,59.0,80.0,18"},
        {"line_number": 4, "reason": "non-numeric frame_rate", "raw_line": "2025-10-06T12:00:20,iac-vx2,fast,80.0,18"},
        {"line_number": 5, "reason": "unparsable timestamp", "raw_line": "not-a-time,iac-vx2,59.5,81.0,19"},
        {"line_number": 6, "reason": "expected 5 fields, found 4", "raw_line": "2025-10-06T12:00:40,iac-vx2,59.5,81.0"},
        {"line_number": 7, "reason": "gpu_usage outside 0..100",
         "raw_line": "2025-10-06T12:00:50,iac-vx3,58.0,101.5,22"},
        {"line_number": 9, "reason": "invalid UTF-8 (invalid start byte at byte 26)",
         "raw_line": "2025-10-06T12:01:10,iac-vx\\xff3,58.5,70.0,31"},
    ]  # fmt: skip


def test_clean_rerun_removes_stale_quarantine(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + OK_ROW + b"2025-10-06T12:00:01,,60.0,90.0,20\n")
    first, _ = run_file(path, tmp_path)
    assert first.quarantine is not None and Path(first.quarantine).is_file()

    path.write_bytes(HEADER + OK_ROW)
    second, _ = run_file(path, tmp_path)
    assert second.quarantine is None
    assert not Path(first.quarantine).exists()


# --- bad input: whole-file failures -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (
            b"timestamp,device_id,frame_rate\n",
            "missing required column(s): gpu_usage, latency_ms; expected timestamp, device_id, frame_rate, "
            "gpu_usage, latency_ms, found timestamp, device_id, frame_rate",
        ),
        (
            b"timestamp,device_id,gpu_usage,frame_rate,latency\n",
            "missing required column(s): latency_ms; expected timestamp, device_id, frame_rate, gpu_usage, "
            "latency_ms, found timestamp, device_id, gpu_usage, frame_rate, latency",
        ),
        (
            b"timestamp,device_id,frame_rate,gpu_usage,latency_ms,device_id\n",
            "header repeats column(s): device_id",
        ),
        (
            b"timestamp,device\xe9id,frame_rate,gpu_usage,latency_ms\n",
            "header line is not valid UTF-8 (invalid continuation byte at byte 16)",
        ),
        (
            b'timestamp,"device_id,frame_rate,gpu_usage,latency_ms\n',
            "header line is not valid CSV: unexpected end of data",
        ),
    ],
)
def test_bad_header_is_bad_input(tmp_path: Path, header: bytes, message: str) -> None:
    with pytest.raises(BadInputError) as raised:
        transform.parse([header, OK_ROW])
    assert str(raised.value) == message
    assert raised.value.exit_code == EXIT_BAD_INPUT == 3

    # Through the whole job: fails before any row is read or any quarantine file is written.
    path = write(tmp_path, header + OK_ROW)
    with pytest.raises(BadInputError, match=re.escape(message)):
        run_file(path, tmp_path)
    assert not (tmp_path / "quarantine").exists()


def test_missing_local_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInputError, match="input file does not exist: "):
        run_file(tmp_path / "nope.csv", tmp_path)


def test_header_with_bom_and_spaces_is_accepted() -> None:
    header = b"\xef\xbb\xbf timestamp , device_id,frame_rate ,gpu_usage, latency_ms \r\n"
    assert transform.parse_header(header) == list(transform.REQUIRED_COLUMNS)
    valid, quarantined = process(header + b"2025-10-06T12:00:00,iac-vx1,60.0,90.0,20\r\n")
    assert quarantined == []
    assert valid[["device_id", "frame_rate", "gpu_usage", "latency_ms"]].to_dict("records") == [
        {"device_id": "iac-vx1", "frame_rate": 60.0, "gpu_usage": 90.0, "latency_ms": 20}
    ]


def test_quoted_header_and_reordered_columns_are_accepted() -> None:
    header = b'"latency_ms","device_id","timestamp","gpu_usage","frame_rate"\n'
    valid, quarantined = process(header + b"21,iac-vx9,2025-10-06T12:00:00,50.5,30.25\n")
    assert quarantined == []
    assert valid[["device_id", "frame_rate", "gpu_usage", "latency_ms"]].to_dict("records") == [
        {"device_id": "iac-vx9", "frame_rate": 30.25, "gpu_usage": 50.5, "latency_ms": 21}
    ]


def test_empty_file(tmp_path: Path) -> None:
    assert transform.parse([])[0] == []
    result, summary = run_file(write(tmp_path, b""), tmp_path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined, result.devices) == (0, 0, 0, 0)
    assert result.quarantine is None
    assert summary.num_rows == 0 and summary.schema.equals(SUMMARY_SCHEMA, check_metadata=True)


def test_blank_only_file_is_empty(tmp_path: Path) -> None:
    result, summary = run_file(write(tmp_path, b"\n  \r\n\n"), tmp_path)
    assert (result.rows_in, result.rows_quarantined, result.devices) == (0, 0, 0)
    assert summary.num_rows == 0


def test_header_only_file(tmp_path: Path) -> None:
    header, batches = transform.parse([HEADER])
    assert header == list(transform.REQUIRED_COLUMNS)
    assert list(batches) == []
    result, summary = run_file(write(tmp_path, HEADER), tmp_path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined, result.devices) == (0, 0, 0, 0)
    assert summary.num_rows == 0
    assert summary.schema.equals(SUMMARY_SCHEMA, check_metadata=True)


# --- bad input: row-level quarantine -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"2025-10-06T12:00:00,,60.0,90.0,20\n", "empty device_id"),
        (b"2025-10-06T12:00:00,   ,60.0,90.0,20\n", "empty device_id"),
        (b"2025-10-06T12:00:00,iac-vx1,fast,90.0,20\n", "non-numeric frame_rate"),
        (b"2025-10-06T12:00:00,iac-vx1,,90.0,20\n", "non-numeric frame_rate"),
        (b"2025-10-06T12:00:00,iac-vx1,nan,90.0,20\n", "non-numeric frame_rate"),
        (b"2025-10-06T12:00:00,iac-vx1,inf,90.0,20\n", "non-numeric frame_rate"),
        (b"2025-10-06T12:00:00,iac-vx1,60.0,high,20\n", "non-numeric gpu_usage"),
        (b"not-a-time,iac-vx1,60.0,90.0,20\n", "unparsable timestamp"),
        (b"2025-13-06T12:00:00,iac-vx1,60.0,90.0,20\n", "unparsable timestamp"),
        (b",iac-vx1,60.0,90.0,20\n", "unparsable timestamp"),
        (b"2025-10-06T12:00:00,iac-vx1,60.0,90.0\n", "expected 5 fields, found 4"),
        (b"2025-10-06T12:00:00,iac-vx1,60.0,90.0,20,7\n", "expected 5 fields, found 6"),
        (b"2025-10-06T12:00:00,iac-vx1,60.0,100.5,20\n", "gpu_usage outside 0..100"),
        (b"2025-10-06T12:00:00,iac-vx1,60.0,-0.5,20\n", "gpu_usage outside 0..100"),
        (b"2025-10-06T12:00:00,iac-vx1,-1.0,90.0,20\n", "frame_rate outside 0..10000"),
        (b"2025-10-06T12:00:00,iac-vx1,1e308,90.0,20\n", "frame_rate outside 0..10000"),
        (b"2025-10-06T12:00:00,iac-vx1,60.0,90.0,20.5\n", "non-integer latency_ms"),
        (b"2025-10-06T12:00:00,iac-vx1,60.0,90.0,twenty\n", "non-integer latency_ms"),
        (b"2025-10-06T12:00:00,iac-vx1,60.0,90.0,-1\n", "latency_ms outside 0..2147483647"),
        (b"2025-10-06T12:00:00,iac-vx1,60.0,90.0,2147483648\n", "latency_ms outside 0..2147483647"),
        (b"2025-10-06T12:00:00," + b"d" * 51 + b",60.0,90.0,20\n", "device_id longer than 50 bytes"),
        # 26 two-byte characters: 26 characters but 52 bytes (VARCHAR(50) counts bytes in Redshift).
        ("2025-10-06T12:00:00,{},60.0,90.0,20\n".format("é" * 26).encode(), "device_id longer than 50 bytes"),
        (b"2025-10-06T12:00:00,iac\\vx1,60.0,90.0,20\n", "device_id contains a backslash or control character"),
        (b"2025-10-06T12:00:00,iac\x01vx1,60.0,90.0,20\n", "device_id contains a backslash or control character"),
        (b'2025-10-06T12:00:00,"iac-vx1,60.0,90.0,20\n', "malformed CSV quoting: unexpected end of data"),
        (b'2025-10-06T12:00:00,"iac"vx1,60.0,90.0,20\n', "malformed CSV quoting: ',' expected after '\"'"),
        (b"2025-10-06T12:00:00,iac-vx\xff1,60.0,90.0,20\n", "invalid UTF-8 (invalid start byte at byte 26)"),
        (b"2025-10-06T12:00:00,iac-vx\xc3,60.0,90.0,20\n", "invalid UTF-8 (invalid continuation byte at byte 26)"),
    ],
)
def test_bad_row_is_quarantined_with_exact_reason(line: bytes, reason: str) -> None:
    valid, quarantined = process(HEADER + OK_ROW + line + OK_ROW)
    assert len(valid) == 2
    shown = line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
    assert quarantined == [(3, reason, shown)]


def test_row_failing_several_checks_gets_every_reason() -> None:
    assert reasons_for(b"2025-10-06T12:00:00,,60.0,101,20\n") == ["empty device_id; gpu_usage outside 0..100"]
    assert reasons_for(b"yesterday,iac\\1,-2,x,1.5\n") == [
        "device_id contains a backslash or control character; unparsable timestamp; frame_rate outside 0..10000; "
        "non-numeric gpu_usage; non-integer latency_ms"
    ]


@pytest.mark.parametrize(
    ("latency", "expected"), [(b"20.0", 20), (b"20", 20), (b" 20 ", 20), (b"0", 0), (b"2147483647", 2147483647)]
)
def test_integral_latency_is_accepted(latency: bytes, expected: int) -> None:
    valid, quarantined = process(HEADER + b"2025-10-06T12:00:00,iac-vx1,60.0,90.0," + latency + b"\n")
    assert quarantined == []
    assert valid["latency_ms"].tolist() == [expected]
    assert str(valid["latency_ms"].dtype) == "int64"


def test_boundary_values_are_accepted() -> None:
    body = (
        b"2025-10-06T12:00:00,iac-vx1,0,0,0\n"
        b"2025-10-06T12:00:00,iac-vx1,0.0,100,1\n"
        b"2025-10-06T12:00:00," + b"d" * 50 + b",1,100.0,1\n"
        b"2025-10-06T12:00:00," + "é".encode() * 25 + b",1,50,1\n"
    )
    valid, quarantined = process(HEADER + body)
    assert quarantined == []
    assert valid["device_id"].tolist() == ["iac-vx1", "iac-vx1", "d" * 50, "é" * 25]


def test_valid_rows_have_typed_columns() -> None:
    valid, _ = parsed(HEADER + OK_ROW + b"2025-10-06T12:00:01, iac-vx1 ,61,91,21\n")
    assert valid.schema == pa.schema(
        [
            ("timestamp", pa.timestamp("ns", "UTC")),
            # Few distinct ids: one dictionary entry per trimmed id.
            ("device_id", pa.dictionary(pa.int32(), pa.string())),
            ("frame_rate", pa.float64()),
            ("gpu_usage", pa.float64()),
            ("latency_ms", pa.int64()),
        ]
    )
    assert valid.column("device_id").combine_chunks().dictionary.to_pylist() == ["iac-vx1"]
    frame = valid.to_pandas()
    assert str(frame["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert [str(frame[c].dtype) for c in ("frame_rate", "gpu_usage", "latency_ms")] == ["float64", "float64", "int64"]


def test_mixed_utc_offsets_are_valid_timestamps() -> None:
    """Logs crossing a DST change carry two offsets in one file: still valid, and no pandas warning."""
    body = (
        b"2025-10-26T01:59:59+02:00,iac-vx1,60,90,20\n"
        b"2025-10-26T02:00:00+01:00,iac-vx1,60,90,20\n"
        b"2025-10-26T02:00:01Z,iac-vx1,60,90,20\n"
        b"2025-10-26T02:00:02,iac-vx1,60,90,20\n"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        valid, quarantined = process(HEADER + body)
    assert quarantined == []
    assert valid["timestamp"].dt.strftime("%H:%M:%S").tolist() == ["23:59:59", "01:00:00", "02:00:01", "02:00:02"]
    assert str(valid["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_blank_lines_are_skipped_and_not_counted(tmp_path: Path) -> None:
    data = b"\n\r\n" + HEADER + b"\n" + OK_ROW + b"   \n\r\n" + b"2025-10-06T12:00:01,iac-vx2,50,40,10\n\n"
    valid, quarantined = process(data)
    assert quarantined == []
    assert valid["device_id"].tolist() == ["iac-vx1", "iac-vx2"]

    result, _ = run_file(write(tmp_path, data + b"bad,line\n"), tmp_path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (3, 2, 1)
    quarantined_file = pd.read_csv(result.quarantine)
    # Line numbers are physical line numbers in the file, blank lines included.
    assert quarantined_file.to_dict("records") == [
        {"line_number": 10, "reason": "expected 5 fields, found 2", "raw_line": "bad,line"}
    ]


def test_extra_columns_are_ignored() -> None:
    header = b"timestamp,site,device_id,frame_rate,gpu_usage,latency_ms,notes\n"
    valid, quarantined = process(header + b"2025-10-06T12:00:00,lab,iac-vx1,60.0,90.0,20,anything at all\n")
    assert quarantined == []
    assert list(valid.columns) == ["timestamp", "device_id", "frame_rate", "gpu_usage", "latency_ms"]
    assert valid[["device_id", "frame_rate", "gpu_usage", "latency_ms"]].to_dict("records") == [
        {"device_id": "iac-vx1", "frame_rate": 60.0, "gpu_usage": 90.0, "latency_ms": 20}
    ]


def test_quoted_fields_are_parsed() -> None:
    valid, quarantined = process(
        HEADER + b'"2025-10-06T12:00:00","iac,vx1","60.5",90,"20"\n' + b'2025-10-06T12:00:01,"say ""hi""",1,2,3\n'
    )
    assert quarantined == []
    assert valid["device_id"].tolist() == ["iac,vx1", 'say "hi"']
    assert valid["frame_rate"].tolist() == [60.5, 1.0]


def test_device_id_is_trimmed_and_grouped_after_trimming(tmp_path: Path) -> None:
    data = HEADER + b"2025-10-06T12:00:00, iac-vx1 ,10,20,3\n2025-10-06T12:00:01,iac-vx1,20,40,5\n"
    result, summary = run_file(write(tmp_path, data), tmp_path)
    assert summary.to_pydict() == {
        "device_id": ["iac-vx1"], "avg_frame_rate": [15.0], "avg_gpu_usage": [30.0],
        "max_latency_ms": [5], "log_count": [2],
    }  # fmt: skip
    assert result.rows_loaded == 2


def run_in_fresh_process(tmp_path: Path, path: Path) -> dict[str, Any]:
    """`cli.run` in a fresh Python, as the Batch job runs: what it returns and whether pandas got imported."""
    script = (
        "import json, sys\n"
        "from render_summary import cli\n"
        "imported = 'pandas' in sys.modules\n"
        f"result, summary = cli.run({str(path)!r}, {str(tmp_path / 'q')!r}, None, 'public', 'performance_summary')\n"
        "ran = 'pandas' in sys.modules\n"
        "print(json.dumps({'after_import': imported, 'after_run': ran,\n"
        "    'schema': summary.schema.serialize().to_pybytes().hex(), 'summary': summary.to_pydict(),\n"
        "    'printed': summary.to_pandas().to_string(index=False), 'quarantine': result.quarantine}))\n"
    )
    # From batch_image/ (first on sys.path with -c): the very files the editable install gives the tests.
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO / "batch_image", capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    schema = pa.ipc.read_schema(pa.py_buffer(bytes.fromhex(found.pop("schema"))))
    assert schema.equals(SUMMARY_SCHEMA, check_metadata=True)
    found["quarantined"] = pd.read_csv(found.pop("quarantine")).to_dict("records")
    return found


def test_a_run_needs_no_pandas_until_a_value_does(tmp_path: Path) -> None:
    """Importing pandas costs ~0.25 s. pyarrow would import it on its first `pa.array` call; the job keeps
    it from doing so (`transform.defer_pandas`), and only a value Arrow refuses that holds a digit
    brings pandas in (the job's fallback parser), after which pyarrow's pandas conversions still work.
    """
    rows = (
        HEADER
        + OK_ROW
        + b"2025-10-06T12:00:01,iac-vx2,59.5,80.25,31\n"
        + b"2025-10-06T12:00:02,iac-vx1,61.0,70.0,25\n"
        + b"2025-10-06T12:00:03,iac-vx2,N/A,80.0,20\n"  # no digit: "non-numeric", no pandas fallback
        + b"not-a-time,iac-vx2,59.0,80.0,20\n"  # no digit: "unparsable timestamp", no pandas fallback
        + b"2025-10-06T12:00:04.123456789,iac-vx2,59.0,101.0,20\n"  # nanoseconds, rejected for its gpu_usage
    )
    summary = {
        "device_id": ["iac-vx1", "iac-vx2"], "avg_frame_rate": [60.5, 59.5], "avg_gpu_usage": [80.0, 80.25],
        "max_latency_ms": [25, 31], "log_count": [2, 1],
    }  # fmt: skip
    printed = (
        "device_id  avg_frame_rate  avg_gpu_usage  max_latency_ms  log_count\n"
        "  iac-vx1            60.5          80.00              25          2\n"
        "  iac-vx2            59.5          80.25              31          1"
    )
    quarantined = [
        {"line_number": 5, "reason": "non-numeric frame_rate", "raw_line": "2025-10-06T12:00:03,iac-vx2,N/A,80.0,20"},
        {"line_number": 6, "reason": "unparsable timestamp", "raw_line": "not-a-time,iac-vx2,59.0,80.0,20"},
        {
            "line_number": 7,
            "reason": "gpu_usage outside 0..100",
            "raw_line": "2025-10-06T12:00:04.123456789,iac-vx2,59.0,101.0,20",
        },
    ]
    clean = run_in_fresh_process(tmp_path, write(tmp_path, rows, "clean.csv"))
    assert clean == {
        "after_import": False, "after_run": False, "summary": summary, "printed": printed, "quarantined": quarantined
    }  # fmt: skip

    odd = b"2025-10-06T12:00:05,iac-vx2,12abc,80.0,20\n"  # a digit: pandas judges it
    with_odd = run_in_fresh_process(tmp_path, write(tmp_path, rows + odd, "odd.csv"))
    assert with_odd == {
        "after_import": False,
        "after_run": True,
        "summary": summary,
        "printed": printed,
        "quarantined": [
            *quarantined,
            {"line_number": 8, "reason": "non-numeric frame_rate", "raw_line": odd.decode().strip()},
        ],
    }


# --- streaming: blocks, threads, line numbers, quarantine ----------------------------------------------

ALL_REASONS = (
    "empty device_id; unparsable timestamp; non-numeric frame_rate; non-numeric gpu_usage; non-integer latency_ms"
)
# Every kind of line the job meets, as (line, what it must become): a reason and the raw_line the
# quarantine shows, None for a blank line (skipped, not a row), or the valid row (device, frame, gpu, latency).
LINE_KINDS: list[tuple[bytes, tuple[str, str] | tuple[str, float, float, int] | None]] = [
    (b"2025-10-06T12:00:10,,59.0,80.0,18", ("empty device_id", "2025-10-06T12:00:10,,59.0,80.0,18")),
    (b"", None),
    (
        b"2025-10-06T12:00:20,iac-vx2,fast,80.0,18",
        ("non-numeric frame_rate", "2025-10-06T12:00:20,iac-vx2,fast,80.0,18"),
    ),
    (b"not-a-time,iac-vx2,59.5,81.0,19", ("unparsable timestamp", "not-a-time,iac-vx2,59.5,81.0,19")),
    (b"   ", None),
    (b"2025-10-06T12:00:40,iac-vx2,59.5,81.0", ("expected 5 fields, found 4", "2025-10-06T12:00:40,iac-vx2,59.5,81.0")),
    (
        b"2025-10-06T12:00:50,iac-vx3,58.0,101.5,22",
        ("gpu_usage outside 0..100", "2025-10-06T12:00:50,iac-vx3,58.0,101.5,22"),
    ),
    (b"\r", None),  # an empty line with a CRLF ending
    (
        b"2025-10-06T12:01:10,iac-vx\xff3,58.5,70.0,31",
        ("invalid UTF-8 (invalid start byte at byte 26)", "2025-10-06T12:01:10,iac-vx\\xff3,58.5,70.0,31"),
    ),
    (
        b'2025-10-06T12:01:20,"iac-vx4,58.5,70.0,31',
        ("malformed CSV quoting: unexpected end of data", '2025-10-06T12:01:20,"iac-vx4,58.5,70.0,31'),
    ),
    (
        b"2025-10-06T12:01:30,iac-vx4,58.5,70.0,20.5",
        ("non-integer latency_ms", "2025-10-06T12:01:30,iac-vx4,58.5,70.0,20.5"),
    ),
    (b",,,,", (ALL_REASONS, ",,,,")),
    (
        b"2025-10-06T12:01:40,iac\rvx1,60,90,20",
        ("device_id contains a backslash or control character", "2025-10-06T12:01:40,iac\rvx1,60,90,20"),
    ),
    (
        b"2025-10-06T12:01:50,iac-vx1,60,90,20,7",
        ("expected 5 fields, found 6", "2025-10-06T12:01:50,iac-vx1,60,90,20,7"),
    ),
    (b"\t", None),
    # Valid rows the fast path cannot take: quoted, padded, zoned, spelled differently.
    (b'"2025-10-06T12:02:00","iac,vx9","60.5",90,"20"', ("iac,vx9", 60.5, 90.0, 20)),
    (b" 2025-10-06T12:02:10 , iac-vx1 , +61 , 9.1e1 , 21.0 ", ("iac-vx1", 61.0, 91.0, 21)),
    (b"2025-10-06T14:02:20+02:00,iac-vx1,62,92,22", ("iac-vx1", 62.0, 92.0, 22)),
    (b"2025-10-06T12:02:30Z,iac-vx5,63,93,23", ("iac-vx5", 63.0, 93.0, 23)),
    (b"2025-10-06,iac-vx5,64,94,24", ("iac-vx5", 64.0, 94.0, 24)),
    (b"2025-10,iac-vx5,65,95,25", ("iac-vx5", 65.0, 95.0, 25)),  # pandas' ISO 8601 takes a month; Arrow does not
]


def mixed_file(rounds: int) -> tuple[bytes, list[tuple[int, str, str]], dict]:
    """A render log of `rounds` times every kind of LINE_KINDS, each followed by a plain valid row; some
    lines end in CRLF.

    Returns the bytes, the exact quarantine [(line_number, reason, raw_line)] and the valid values per
    device, all known from the construction (not from the code under test).
    """
    data = bytearray(b"\n" + HEADER)  # a blank line before the header counts in the numbering too
    quarantine: list[tuple[int, str, str]] = []
    values: dict[str, list[tuple[float, float, int]]] = {}
    line_number = 2
    for round_ in range(rounds):
        for offset, (line, outcome) in enumerate(LINE_KINDS):
            i = round_ * len(LINE_KINDS) + offset
            frame, gpu, latency = 50 + (i * 37 % 1000) / 100, (i * 53 % 10_000) / 100, i % 97
            row = f"2025-10-06T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.{i:06d},dev-{i % 7},"
            plain = (f"{row}{frame},{gpu},{latency}".encode(), (f"dev-{i % 7}", frame, gpu, latency))
            for text, expected in ((line, outcome), plain):
                line_number += 1
                data += text + (b"\r\n" if i % 5 == 0 and text else b"\n")
                if expected is None:
                    continue
                if isinstance(expected[1], str):
                    quarantine.append((line_number, expected[0], expected[1]))
                else:
                    values.setdefault(expected[0], []).append(expected[1:])
    return bytes(data), quarantine, values


def read_quarantine(path: str | Path) -> list[tuple[int, str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["line_number", "reason", "raw_line"]
    return [(int(number), reason, raw) for number, reason, raw in rows[1:]]


def assert_summary(summary: pa.Table, values: dict[str, list[tuple[float, float, int]]]) -> None:
    assert summary.schema.equals(SUMMARY_SCHEMA, check_metadata=True)
    assert summary.column("device_id").to_pylist() == sorted(values)
    for row in summary.to_pylist():
        rows = values[row["device_id"]]
        assert (row["log_count"], row["max_latency_ms"]) == (len(rows), max(r[2] for r in rows))
        assert row["avg_frame_rate"] == pytest.approx(math.fsum(r[0] for r in rows) / len(rows), rel=1e-12)
        assert row["avg_gpu_usage"] == pytest.approx(math.fsum(r[1] for r in rows) / len(rows), rel=1e-12)


@pytest.mark.parametrize("batch_bytes", [1, 300, 4096, transform.DEFAULT_BATCH_BYTES])
def test_every_batch_size_gives_the_same_exact_result(tmp_path: Path, batch_bytes: int) -> None:
    """1 byte: a block per line, so every boundary falls next to a blank, quoted or broken line somewhere."""
    data, quarantine, values = mixed_file(60)
    rows_in = sum(1 for line in data.split(b"\n")[2:] if line.strip())
    path = write(tmp_path, data)

    result, summary = run_file(path, tmp_path, batch_bytes=batch_bytes)

    assert (result.rows_in, result.rows_quarantined) == (rows_in, len(quarantine))
    assert result.rows_loaded == sum(len(v) for v in values.values()) == rows_in - len(quarantine)
    assert result.devices == len(values) == 10
    assert read_quarantine(result.quarantine) == quarantine
    assert_summary(summary, values)


def test_line_numbers_across_block_boundaries_and_blank_lines() -> None:
    """Blank lines of every sort at block starts and ends still count in the numbering."""
    data = (
        b"\r\n  \n" + HEADER + b"\n"  # lines 1-4: blank, blank, header, blank
        + b"bad,5\n" + b"\n" * 3  # line 5; 6-8 blank
        + OK_ROW + b"\t\n" + b",,,,\n" + b"\r\n"  # 9 ok; 10 blank; 11 bare commas; 12 blank
        + b'x,"y\n' + OK_ROW * 2 + b"\n" + b"2025-10-06T12:00:00,\xc3,1,2,3\n" + b"last,line"  # 13; 14-15; 16; 17; 18
    )  # fmt: skip
    expected = [
        (5, "expected 5 fields, found 2", "bad,5"),
        (11, ALL_REASONS, ",,,,"),
        (13, "malformed CSV quoting: unexpected end of data", 'x,"y'),
        (17, "invalid UTF-8 (invalid continuation byte at byte 20)", "2025-10-06T12:00:00,\\xc3,1,2,3"),
        (18, "expected 5 fields, found 2", "last,line"),
    ]
    for batch_bytes in (1, 2, 7, 30, 64, 10_000):
        header, lazy = transform.parse(pieces(data, batch_bytes))
        batches = list(lazy)
        assert header == list(transform.REQUIRED_COLUMNS)
        assert [r for b in batches for r in b.rejected] == expected, batch_bytes
        assert sum(b.rows for b in batches) == 8
        assert sum(b.lines for b in batches) == 18 - 3  # the lines after the header
        assert sum(b.valid.num_rows for b in batches) == 3


def test_blank_lines_among_bare_comma_lines_are_told_apart() -> None:
    """An empty line and a line of bare commas parse alike: the job counts bytes, or looks, to tell them apart."""
    for body, quarantined_lines in [
        (b"\n\n" + OK_ROW + b"\n", []),  # only empty lines: settled by the byte count
        (b",,,,\n" + OK_ROW + b",,,,\r\n", [2, 4]),  # only bare commas: settled by the byte count
        (b",,,,\n\n" + OK_ROW + b"\r\n,,,,\n", [2, 6]),  # both: the lines are looked at
    ]:
        valid, quarantined = process(HEADER + body, batch_bytes=10_000)
        assert [(n, reason) for n, reason, _ in quarantined] == [(n, ALL_REASONS) for n in quarantined_lines]
        assert valid["device_id"].tolist() == ["iac-vx1"]


def test_dense_failures_are_left_to_pandas_and_still_exact() -> None:
    """A column Arrow cannot cast anywhere (padded numbers) costs a pandas pass, not one failed cast per value."""
    rows = [
        f"2025-10-06T12:00:{i % 60:02d}, iac-vx{i % 3} , {i % 50}.5 , +{i % 100} , {i % 30} ".encode()
        for i in range(5000)
    ]
    valid, quarantined = process(HEADER + b"\n".join(rows) + b"\n", batch_bytes=1 << 20)
    assert quarantined == []
    assert len(valid) == 5000
    assert valid["frame_rate"].tolist() == [i % 50 + 0.5 for i in range(5000)]
    assert valid["gpu_usage"].tolist() == [float(i % 100) for i in range(5000)]
    assert valid["latency_ms"].tolist() == [i % 30 for i in range(5000)]
    assert valid["device_id"].astype(str).tolist() == [f"iac-vx{i % 3}" for i in range(5000)]


NUMBERS = ["1e5", ".5", "5.", "-0", "+5", "1_000", " 5", "5 ", "0x10", "nan", "NaN", "inf", "-inf", "Infinity",
           "1e400", "1e-400", "00012", "4.9e-324", "1e", "e5", "--1", "1.2.3", "", "1d5", "0.1f", "5e+3", "5E-3",
           "-.5", "+.5", "1.", "+", "-", ".", "\u0663", "100", "100.0000000000001", "99.99999999999999"]  # fmt: skip
TIMESTAMPS = ["2025-10-06T12:00:00", "2025-10-06T12:00:00.886796", "2025-10-06T12:00:00.123456789",
              "2025-10-06T12:00:00.1234567891", "2025-10-06 12:00:00", "2025-10-06", "2025-10-06T12",
              "2025-10-06T12:00", "2025-10", "2025", "20251006", "20251006T120000", "2025-10-06T12:00:00Z",
              "2025-10-06T12:00:00+02:00", "2025-10-06T12:00:00+0200", "2025-10-06T12:00:00+02",
              "2025-10-06T12:00:00 +02:00", "2025-10-06T12:00:00z", "2025-13-06T12:00:00", "2025-02-30T12:00:00",
              "2025-10-06T24:00:00", "2025-10-06T23:59:60", "2025-10-06T12:00:00.", "2025-10-06t12:00:00",
              "2025-1-6T12:00:00", "2025-10-06T1:00:00", "2025-10-06T12:00:00-00:00", "2025-10-06T12:00:00+14:00",
              "2025-10-06T12:00:00+25:00", "+2025-10-06T12:00:00", "0001-01-01T00:00:00", "1677-09-21T00:12:43",
              "2262-04-11T23:47:16", "2262-04-12T00:00:00", "9999-12-31T00:00:00", "2025-W41-1", "2025-279",
              " 2025-10-06T12:00:00 ", "", "not-a-time"]  # fmt: skip


@pytest.mark.parametrize("neighbours", [0, 3000])  # alone, or among valid values that Arrow casts in slices
def test_numbers_are_judged_as_pandas_judges_them(neighbours: int) -> None:
    """Arrow parses what it can; what it cannot goes to pandas: together they must be pandas' verdict."""
    filler = [b"2025-10-06T12:00:00,iac-vx1,60,50.25,20"] * neighbours
    lines = filler + [f"2025-10-06T12:00:00,edge-{i},60,{n},20".encode() for i, n in enumerate(NUMBERS)] + filler
    valid, quarantined = process(HEADER + b"\n".join(lines) + b"\n", batch_bytes=1 << 20)

    # pandas decides what is a number; the value is the correctly rounded one (pandas' own
    # parser can be an ulp off: "99.99999999999999" -> 100.0).
    is_number = pd.to_numeric(pd.Series(NUMBERS, dtype=object).str.strip(), errors="coerce").notna()
    expected = [float(n) if ok else math.nan for n, ok in zip(NUMBERS, is_number, strict=True)]
    accepted = {f"edge-{i}": x for i, x in enumerate(expected) if math.isfinite(x) and 0 <= x <= 100}
    edges = valid[valid["device_id"].astype(str).str.startswith("edge-")]
    assert dict(zip(edges["device_id"].astype(str), edges["gpu_usage"], strict=True)) == accepted
    reasons = {raw.split(",")[1]: reason for _, reason, raw in quarantined}
    for i, x in enumerate(expected):
        if f"edge-{i}" not in accepted:
            want = "non-numeric gpu_usage" if not math.isfinite(x) else "gpu_usage outside 0..100"
            assert reasons[f"edge-{i}"] == want, NUMBERS[i]


@pytest.mark.parametrize("neighbours", [0, 3000])
def test_timestamps_are_judged_as_pandas_judges_them(neighbours: int) -> None:
    filler = [b"2025-10-06T12:00:00.5,iac-vx1,60,50,20"] * neighbours
    lines = filler + [f"{t},edge-{i},60,50,20".encode() for i, t in enumerate(TIMESTAMPS)] + filler
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no pandas warning either (mixed offsets, formats)
        valid, quarantined = process(HEADER + b"\n".join(lines) + b"\n", batch_bytes=1 << 20)

    # One value at a time: in one call pandas reads a time without offset after one with an offset in that
    # offset; the job reads it in UTC, as documented.
    expected = [pd.to_datetime(t.strip(), format="ISO8601", errors="coerce", utc=True) for t in TIMESTAMPS]
    accepted = {f"edge-{i}": t for i, t in enumerate(expected) if not pd.isna(t)}
    edges = valid[valid["device_id"].astype(str).str.startswith("edge-")]
    assert dict(zip(edges["device_id"].astype(str), edges["timestamp"], strict=True)) == accepted
    assert (len(accepted), len(TIMESTAMPS)) == (24, 40)  # both outcomes are well represented
    assert sorted(raw.split(",")[1] for _, _, raw in quarantined) == sorted(
        f"edge-{i}" for i in range(len(TIMESTAMPS)) if f"edge-{i}" not in accepted
    )
    assert {reason for _, reason, _ in quarantined} == {"unparsable timestamp"}


DIGIT_FREE = ["now", "today", " now ", "NOW", "Today", "NaT", "nat", "nan", "NaN", "-nan", "inf", "+inf", "-Infinity",
              "N/A", "null", "None", "-", ".", "T", "Z", "e", "not-a-time", "\u0663\u0662"]  # fmt: skip


def test_values_without_digits_are_judged_as_pandas_judges_them() -> None:
    """They skip pandas (no digit: no number, no date); pandas' own exceptions stay: "now" and "today"."""
    lines = [f"{t},ts-{i},60,50,20\n2025-10-06T12:00:00,num-{i},{t},50,20".encode() for i, t in enumerate(DIGIT_FREE)]
    valid, quarantined = process(HEADER + b"\n".join(lines) + b"\n")

    text = pd.Series(DIGIT_FREE, dtype=object).str.strip()
    dates = [pd.to_datetime(t, format="ISO8601", errors="coerce", utc=True) for t in text]
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    devices = set(valid["device_id"].astype(str))
    assert devices == {f"ts-{i}" for i, t in enumerate(dates) if not pd.isna(t)} == {"ts-0", "ts-1", "ts-2"}
    assert not any(math.isfinite(x) for x in numbers)  # so every num- row is "non-numeric frame_rate"
    assert sorted(reason for _, reason, _ in quarantined) == sorted(
        ["unparsable timestamp"] * (len(DIGIT_FREE) - 3) + ["non-numeric frame_rate"] * len(DIGIT_FREE)
    )


def test_a_file_of_zoned_times_is_cast_zoned() -> None:
    body = b"".join(f"2025-10-06T12:00:{i % 60:02d}+02:00,iac-vx1,60,50,20\n".encode() for i in range(3000))
    valid, quarantined = process(HEADER + body + b"2025-10-06T12:00:00,iac-vx1,60,50,20\n")
    assert quarantined == []
    assert valid["timestamp"].dt.strftime("%H:%M:%S").tolist() == [f"10:00:{i % 60:02d}" for i in range(3000)] + [
        "12:00:00"
    ]


def test_quarantine_is_written_as_rows_arrive(tmp_path: Path) -> None:
    """Rows reach the disk while the job runs (memory holds one part at most), and appear only on commit."""
    target = tmp_path / "q" / "input.csv.quarantine.csv"
    rows = [(n, f"reason {n}", f'raw, "{n}"\r\nline') for n in range(1, 2001)]
    with storage.QuarantineWriter(str(target), part_bytes=1000) as writer:
        for start in range(0, len(rows), 100):
            writer.write(rows[start : start + 100])
            (temporary,) = (tmp_path / "q").glob(".input.csv.quarantine.csv.*.tmp")
            assert temporary.stat().st_size > 0
            assert writer._buffer.tell() < 1000 + 100 * 40  # what is not on disk yet: under a part and a write
            assert not target.exists()
        writer.commit()
    assert read_quarantine(target) == rows
    assert list((tmp_path / "q").iterdir()) == [target]


def test_a_failed_run_keeps_the_previous_quarantine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = mixed_file(30)[0]
    path = write(tmp_path, data)
    first, _ = run_file(path, tmp_path)
    assert first.quarantine is not None
    before = Path(first.quarantine).read_bytes()

    def dropped_connection(uri: str, chunk_bytes: int):
        with open(uri, "rb") as handle:
            yield handle.read(len(data) // 2)
        raise TransientError(f"reading {uri}: connection reset")

    path.write_bytes(data.replace(b"fast", b"slow"))
    monkeypatch.setattr(storage, "iter_chunks", dropped_connection)
    with pytest.raises(TransientError, match="connection reset"):
        run_file(path, tmp_path, batch_bytes=1000)
    assert Path(first.quarantine).read_bytes() == before
    assert [p.name for p in Path(first.quarantine).parent.iterdir()] == [Path(first.quarantine).name]


# --- SQL generation ----------------------------------------------------------------------------------

PERF = "analytics.perf"
BY_FILE = "analytics.perf_by_file"


def test_load_statements_exact() -> None:
    statements = load_statements("s3://raw/render-logs/a.csv", "analytics", "perf")
    assert statements == [
        "CREATE TABLE IF NOT EXISTS analytics.perf_by_file (source_uri VARCHAR(1024) NOT NULL, "
        "device_id VARCHAR(50) NOT NULL, sum_frame_rate FLOAT8 NOT NULL, sum_gpu_usage FLOAT8 NOT NULL, "
        "max_latency_ms INT4 NOT NULL, log_count INT8 NOT NULL, PRIMARY KEY (source_uri, device_id))",
        "CREATE TABLE IF NOT EXISTS analytics.perf (device_id VARCHAR(50) NOT NULL, avg_frame_rate FLOAT8 NOT NULL, "
        "avg_gpu_usage FLOAT8 NOT NULL, max_latency_ms INT4 NOT NULL, log_count INT8 NOT NULL, "
        "PRIMARY KEY (device_id))",
        "LOCK analytics.perf_by_file, analytics.perf",
        "CREATE TEMP TABLE perf_by_file_stage (LIKE analytics.perf_by_file)",
        "COPY perf_by_file_stage (source_uri, device_id, sum_frame_rate, sum_gpu_usage, max_latency_ms, log_count) "
        "FROM STDIN",
        "CREATE TEMP TABLE perf_touched AS SELECT device_id FROM analytics.perf_by_file "
        "WHERE source_uri = 's3://raw/render-logs/a.csv' UNION SELECT device_id FROM perf_by_file_stage",
        "DELETE FROM analytics.perf_by_file WHERE source_uri = 's3://raw/render-logs/a.csv' "
        "AND device_id NOT IN (SELECT device_id FROM perf_by_file_stage)",
        "MERGE INTO analytics.perf_by_file USING perf_by_file_stage s "
        "ON analytics.perf_by_file.source_uri = s.source_uri AND analytics.perf_by_file.device_id = s.device_id "
        "WHEN MATCHED THEN UPDATE SET sum_frame_rate = s.sum_frame_rate, sum_gpu_usage = s.sum_gpu_usage, "
        "max_latency_ms = s.max_latency_ms, log_count = s.log_count "
        "WHEN NOT MATCHED THEN INSERT (source_uri, device_id, sum_frame_rate, sum_gpu_usage, max_latency_ms, "
        "log_count) VALUES (s.source_uri, s.device_id, s.sum_frame_rate, s.sum_gpu_usage, s.max_latency_ms, "
        "s.log_count)",
        "DELETE FROM analytics.perf WHERE device_id IN (SELECT device_id FROM perf_touched)",
        "INSERT INTO analytics.perf (device_id, avg_frame_rate, avg_gpu_usage, max_latency_ms, log_count) "
        "SELECT device_id, SUM(sum_frame_rate) / CAST(SUM(log_count) AS FLOAT8), "
        "SUM(sum_gpu_usage) / CAST(SUM(log_count) AS FLOAT8), MAX(max_latency_ms), SUM(log_count) "
        "FROM analytics.perf_by_file WHERE device_id IN (SELECT device_id FROM perf_touched) GROUP BY device_id",
        "DROP TABLE perf_by_file_stage",
        "DROP TABLE perf_touched",
    ]


ROLE = "arn:aws:iam::123456789012:role/warehouse-copy"


def test_redshift_fills_the_stage_by_parquet_copy_and_nothing_else_differs() -> None:
    local = load_statements("s3://raw/a.csv", "public", "performance_summary")
    remote = load_statements("s3://raw/a.csv", "public", "performance_summary", "s3://processed/stage/r1/", ROLE)
    assert remote[4] == (
        f"COPY performance_summary_by_file_stage FROM 's3://processed/stage/r1/' IAM_ROLE '{ROLE}' FORMAT AS PARQUET"
    )
    assert remote[:4] + remote[5:] == local[:4] + local[5:]


@pytest.mark.parametrize(("stage", "role"), [("/tmp/stage", ROLE), ("s3://p/s/", ""), ("s3://p/s/", "role/x")])
def test_redshift_copy_needs_an_s3_stage_and_a_role_arn(stage: str, role: str) -> None:
    with pytest.raises(JobError, match=r"^Redshift COPY needs an s3:// stage and an IAM role ARN"):
        load_statements("s3://raw/a.csv", "public", "performance_summary", stage, role)


def test_the_load_is_the_same_twelve_statements_whatever_the_file() -> None:
    """No rows in the SQL: the statement count and sizes do not depend on the devices (Data API: at most
    40 statements and 100 KB per batch)."""
    statements = load_statements("s3://raw/a.csv", "public", "performance_summary", "s3://p/stage/x/", ROLE)
    assert len(statements) == 12 <= warehouse.DATA_API_MAX_STATEMENTS
    assert sum(len(s.encode()) for s in statements) < 5_000
    assert not any(" VALUES (" in s and not s.startswith("MERGE") for s in statements)


def test_quote_in_source_uri_is_escaped() -> None:
    statements = load_statements("file:///data/it's.csv", "public", "performance_summary")
    assert "WHERE source_uri = 'file:///data/it''s.csv' AND" in statements[6]
    assert "WHERE source_uri = 'file:///data/it''s.csv' UNION" in statements[5]


@pytest.mark.parametrize(
    ("schema", "table", "message"),
    [
        ("Public", "performance_summary", "schema 'Public' is not a plain lower-case SQL identifier"),
        ("public", "perf; DROP TABLE x", "table 'perf; DROP TABLE x' is not a plain lower-case SQL identifier"),
        ("public", "", "table '' is not a plain lower-case SQL identifier"),
        ("public", "1perf", "table '1perf' is not a plain lower-case SQL identifier"),
        ("a.b", "perf", "schema 'a.b' is not a plain lower-case SQL identifier"),
        ("public", '"perf"', "table '\"perf\"' is not a plain lower-case SQL identifier"),
        # <table>_by_file_stage must fit Redshift's 127 bytes.
        ("public", "t" * 114, f"table '{'t' * 114}' is not a plain lower-case SQL identifier"),
    ],
)
def test_bad_identifier_is_refused(schema: str, table: str, message: str) -> None:
    with pytest.raises(JobError) as raised:
        load_statements("s3://b/k", schema, table)
    assert str(raised.value) == message
    assert raised.value.exit_code == EXIT_FAILED


def test_longest_table_name_allowed() -> None:
    statements = load_statements("s3://b/k", "public", "t" * 113)
    assert max(len(name) for s in statements for name in re.findall(r"t+_[a-z_]+", s)) == 127


@pytest.mark.parametrize("bad", ["s3://b/k\\x", "s3://b/k\nDROP", "s3://b/\x00"])
def test_backslash_or_control_character_in_literal_is_refused(bad: str) -> None:
    with pytest.raises(JobError, match="refusing to embed a string with a backslash or control character"):
        load_statements(bad, "public", "performance_summary")


def test_statements_parse_as_redshift_sql() -> None:
    statements = load_statements("s3://raw/it's.csv", "public", "performance_summary", "s3://p/s/r/", ROLE)
    kinds = [type(sqlglot.parse_one(s, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)) for s in statements]
    assert kinds[:2] == [exp.Create, exp.Create]
    assert kinds[3:] == [exp.Create, exp.Copy, exp.Create, exp.Delete, exp.Merge, exp.Delete, exp.Insert, exp.Drop,
                         exp.Drop]  # fmt: skip
    # The parser, not our escaping, says what the source literal is.
    delete = sqlglot.parse_one(statements[6], read="redshift")
    assert [lit.this for lit in delete.find_all(exp.Literal) if lit.is_string] == ["s3://raw/it's.csv"]
    merge = sqlglot.parse_one(statements[7], read="redshift")
    assert merge.this.sql() == "public.performance_summary_by_file"
    assert [bool(w.args.get("matched")) for w in merge.args["whens"].expressions] == [True, False]


def test_stage_rows_are_the_files_sums_in_table_column_order(tmp_path: Path) -> None:
    from render_summary.warehouse import BY_FILE_COLUMNS, stage_table, write_stage

    partials = transform.merge_partials(b.partial for b in transform.parse([SEED.read_bytes()])[1])
    rows = stage_table(partials, "s3://raw/seed.csv").sort_by("device_id")
    assert rows.column_names == [name for name, _ in BY_FILE_COLUMNS]
    assert rows.column("device_id").to_pylist() == ["iac-vx1", "iac-vx2", "iac-vx3", "iac-vx4"]
    assert rows.column("source_uri").to_pylist() == ["s3://raw/seed.csv"] * 4
    assert rows.column("log_count").to_pylist() == [5, 2, 1, 5]
    assert rows.column("max_latency_ms").to_pylist() == [24, 20, 21, 25]
    assert rows.column("max_latency_ms").type == pa.int32()  # Parquet INT32 -> INT4 by Redshift's COPY
    for device, total in zip(
        rows.column("device_id").to_pylist(), rows.column("sum_frame_rate").to_pylist(), strict=True
    ):
        assert total == pytest.approx(math.fsum(SEED_FRAME_RATES[device]), rel=1e-15)
    write_stage(rows, tmp_path / "s" / "part-0.parquet")
    assert list(warehouse.parquet_rows(str(tmp_path / "s" / "part-0.parquet"))) == [
        tuple(r.values()) for r in rows.to_pylist()
    ]


# --- Redshift Data API driver -------------------------------------------------------------------------


class FakeDataApi:
    """Records every call; describe_statement answers from a scripted list of (status, error)."""

    def __init__(self, statuses: list[str], error: str = "", batch_error: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._statuses = list(statuses)
        self._error = error
        self._batch_error = batch_error
        self._ids = 0

    def _id(self) -> dict[str, Any]:
        self._ids += 1
        return {"Id": f"stmt-{self._ids:04d}"}

    def execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("execute_statement", kwargs))
        return self._id()

    def batch_execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("batch_execute_statement", kwargs))
        if self._batch_error is not None:
            raise self._batch_error
        return self._id()

    def describe_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_statement", kwargs))
        if not self._statuses:
            raise AssertionError("describe_statement polled after a final status")
        status = self._statuses.pop(0)
        error = ""
        if ":" in status:
            status, error = status.split(":", 1)
        described: dict[str, Any] = {"Id": kwargs["Id"], "Status": status}
        if status in ("FAILED", "ABORTED"):
            described["Error"] = error or self._error
        return described

    def cancel_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("cancel_statement", kwargs))
        return {"Status": True}


STATEMENTS = load_statements("s3://raw/a.csv", "public", "performance_summary", "s3://p/stage/r/", ROLE)
TRANSACTION = STATEMENTS[2:]  # from LOCK on: what runs as one batch


class FakeS3:
    def __init__(self, fail_upload: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.uploaded: list[tuple[Any, ...]] = []
        self.fail_upload = fail_upload

    def upload_file(self, path: str, bucket: str, key: str) -> None:
        self.calls.append(("upload_file", (bucket, key)))
        if self.fail_upload:
            from botocore.exceptions import EndpointConnectionError

            raise EndpointConnectionError(endpoint_url="https://s3.example")
        self.uploaded = list(warehouse.parquet_rows(path))

    def delete_object(self, **kwargs: Any) -> None:
        self.calls.append(("delete_object", (kwargs["Bucket"], kwargs["Key"])))


def redshift(client: FakeDataApi, s3: FakeS3 | None = None, **kwargs: Any) -> RedshiftDataWarehouse:
    return RedshiftDataWarehouse(
        "wg-dev", "analytics", "s3://processed/stage/render-logs/", ROLE, client=client, s3=s3 or FakeS3(),
        poll_seconds=0, **kwargs,
    )  # fmt: skip


def seed_rows() -> pa.Table:
    from render_summary.warehouse import stage_table

    return stage_table(transform.merge_partials(b.partial for b in transform.parse([SEED.read_bytes()])[1]), "s3://r/s")


def test_redshift_load_creates_the_tables_then_stages_copies_and_deletes_the_stage() -> None:
    client, s3 = FakeDataApi(["FINISHED", "FINISHED", "STARTED", "FINISHED"]), FakeS3()
    redshift(client, s3).load(seed_rows(), "s3://r/s", "public", "performance_summary")

    # Each CREATE TABLE IF NOT EXISTS is its own statement, before the transaction that LOCKs the tables.
    names = [name for name, _ in client.calls]
    assert (
        names
        == ["execute_statement", "describe_statement"] * 2 + ["batch_execute_statement"] + ["describe_statement"] * 2
    )
    creates = [kwargs["Sql"] for name, kwargs in client.calls if name == "execute_statement"]
    batch = client.calls[-3][1]
    upload = s3.calls[0][1]
    assert re.fullmatch(r"stage/render-logs/[0-9a-f]{32}/part-0\.parquet", upload[1])
    stage_uri = f"s3://processed/{upload[1].removesuffix('part-0.parquet')}"
    expected = load_statements("s3://r/s", "public", "performance_summary", stage_uri, ROLE)
    assert creates == expected[:2]
    assert set(batch) == {"WorkgroupName", "Database", "Sqls", "StatementName"}
    assert (batch["WorkgroupName"], batch["Database"]) == ("wg-dev", "analytics")
    assert batch["Sqls"] == expected[2:]
    assert batch["Sqls"][0] == "LOCK public.performance_summary_by_file, public.performance_summary"
    assert re.fullmatch(r"render-summary-[0-9a-f]{8}", batch["StatementName"])
    assert s3.calls == [("upload_file", ("processed", upload[1])), ("delete_object", ("processed", upload[1]))]
    assert sorted((r[1], r[4], r[5]) for r in s3.uploaded) == [
        ("iac-vx1", 24, 5), ("iac-vx2", 20, 2), ("iac-vx3", 21, 1), ("iac-vx4", 25, 5),
    ]  # fmt: skip


def test_redshift_stage_is_deleted_when_the_load_fails() -> None:
    client, s3 = FakeDataApi(["FINISHED", "FINISHED", "FAILED"], error="ERROR: boom"), FakeS3()
    with pytest.raises(JobError, match=r"^Redshift load failed: ERROR: boom$"):
        redshift(client, s3).load(seed_rows(), "s3://r/s", "public", "performance_summary")
    assert [name for name, _ in s3.calls] == ["upload_file", "delete_object"]


def test_redshift_stage_upload_failure_is_transient_and_runs_no_sql() -> None:
    client, s3 = FakeDataApi([]), FakeS3(fail_upload=True)
    with pytest.raises(TransientError, match=r"^staging s3://processed/stage/render-logs/"):
        redshift(client, s3).load(seed_rows(), "s3://r/s", "public", "performance_summary")
    assert client.calls == []


def test_a_create_that_loses_the_race_to_a_concurrent_one_is_retried() -> None:
    race = 'FAILED:ERROR: duplicate key value violates unique constraint "pg_type_typname_nsp_index"'
    client = FakeDataApi([race, "FINISHED", "FINISHED", "FINISHED"])
    warehouse.run_redshift_transaction(STATEMENTS, workgroup="wg", database="db", client=client, poll_seconds=0)
    executed = [kwargs["Sql"] for name, kwargs in client.calls if name == "execute_statement"]
    assert executed == [STATEMENTS[0], STATEMENTS[0], STATEMENTS[1]]


def test_a_create_that_fails_otherwise_is_not_retried() -> None:
    client = FakeDataApi(["FAILED:ERROR: permission denied for schema public"])
    with pytest.raises(warehouse.WarehouseError, match="permission denied"):
        warehouse.run_redshift_transaction(STATEMENTS, workgroup="wg", database="db", client=client, poll_seconds=0)
    assert [name for name, _ in client.calls] == ["execute_statement", "describe_statement"]


def test_redshift_finished_runs_the_transaction_in_one_batch() -> None:
    client = FakeDataApi(["SUBMITTED", "PICKED", "STARTED", "FINISHED"])
    redshift(client).run_transaction(TRANSACTION, "render-summary-0000abcd")

    assert [name for name, _ in client.calls] == ["batch_execute_statement"] + ["describe_statement"] * 4
    batch = client.calls[0][1]
    assert batch == {
        "WorkgroupName": "wg-dev", "Database": "analytics", "Sqls": TRANSACTION,
        "StatementName": "render-summary-0000abcd",
    }  # fmt: skip
    assert all(kwargs == {"Id": "stmt-0001"} for _, kwargs in client.calls[1:])


def test_redshift_failed_is_job_error_with_the_error_text() -> None:
    client = FakeDataApi(["STARTED", "FAILED"], error='ERROR: column "x" does not exist')
    with pytest.raises(JobError) as raised:
        redshift(client).run_transaction(TRANSACTION, "n")
    assert type(raised.value) is JobError
    assert str(raised.value) == 'Redshift load failed: ERROR: column "x" does not exist'
    assert raised.value.exit_code == EXIT_FAILED


def test_redshift_aborted_is_job_error() -> None:
    client = FakeDataApi(["ABORTED"], error="cancelled by user")
    with pytest.raises(JobError, match=r"^Redshift load aborted: cancelled by user$") as raised:
        redshift(client).run_transaction(TRANSACTION, "n")
    assert type(raised.value) is JobError


def test_redshift_serialization_conflict_is_transient() -> None:
    error = "ERROR: 1023 DETAIL: Serializable isolation violation on table - 123456, transactions forming the cycle"
    client = FakeDataApi(["FAILED"], error=error)
    with pytest.raises(TransientError) as raised:
        redshift(client).run_transaction(TRANSACTION, "n")
    assert str(raised.value) == f"Redshift load failed: {error}"
    assert raised.value.exit_code == EXIT_TRANSIENT == 4


def test_redshift_timeout_cancels_and_is_transient() -> None:
    client = FakeDataApi(["STARTED"] * 5)
    with pytest.raises(TransientError, match=r"^Redshift load did not finish within 0s$"):
        redshift(client, timeout_seconds=0).run_transaction(TRANSACTION, "n")
    assert client.calls[-1] == ("cancel_statement", {"Id": "stmt-0001"})


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("ActiveStatementsExceededException", 400, TransientError),
        ("ThrottlingException", 400, TransientError),
        ("InternalServerException", 500, TransientError),
        ("ValidationException", 400, JobError),
        ("AccessDeniedException", 403, JobError),
    ],
)
def test_redshift_api_errors_are_classified(code: str, status: int, expected: type[JobError]) -> None:
    from botocore.exceptions import ClientError

    error = ClientError(
        {"Error": {"Code": code, "Message": "boom"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "BatchExecuteStatement",
    )
    client = FakeDataApi([], batch_error=error)
    with pytest.raises(JobError) as raised:
        redshift(client).run_transaction(TRANSACTION, "n")
    assert type(raised.value) is expected
    assert str(raised.value).startswith(f"Redshift Data API: {code}: ")
    assert len(client.calls) == 1


def test_redshift_connection_error_is_transient() -> None:
    from botocore.exceptions import EndpointConnectionError

    client = FakeDataApi([], batch_error=EndpointConnectionError(endpoint_url="https://redshift-data.example"))
    with pytest.raises(TransientError, match=r"^Redshift Data API: Could not connect"):
        redshift(client).run_transaction(TRANSACTION, "n")


def test_same_named_local_files_in_two_folders_get_separate_quarantine_files(tmp_path: Path) -> None:
    bad = b"timestamp,device_id,frame_rate,gpu_usage,latency_ms\n2025-10-06T12:00:00,,1,1,1\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = write(tmp_path / "a", bad, "logs.csv"), write(tmp_path / "b", bad, "logs.csv")
    one, _ = run_file(first, tmp_path)
    two, _ = run_file(second, tmp_path)
    assert one.quarantine != two.quarantine
    assert Path(one.quarantine).exists() and Path(two.quarantine).exists()


def test_blocks_split_only_at_newlines_like_a_local_file() -> None:
    """S3 reads and file reads arrive in arbitrary pieces; blocks end only after b"\\n" (never at a lone \\r)."""
    chunks = [b"a,b\r\nc", b"\rd\n", b"", b"e\nlast"]
    assert list(transform.split_blocks(chunks)) == [b"a,b\r\n", b"c\rd\n", b"e\n", b"last"]
    assert list(transform.split_blocks([b"a,b\r\nc\rd", b"\ne\nla", b"st"])) == [b"a,b\r\n", b"c\rd\ne\n", b"last"]
    assert list(transform.split_blocks([b"x", b"y", b"z\n", b"\n"])) == [b"xyz\n", b"\n"]
    block = bytearray(b"1\n2\n")
    assert next(transform.split_blocks([block])) is block  # whole lines already: not copied
    assert list(transform.split_blocks([])) == []


@pytest.mark.parametrize("size", [1, 7, 64, 1 << 20])
def test_local_and_streamed_reads_are_the_same_whole_lines(tmp_path: Path, size: int) -> None:
    """S3 and a local file give the job the same blocks: the same sums to the last bit."""
    data = b"".join(f"line {i},{'x' * (i % 13)}\n".encode() for i in range(500)) + b"no newline at the end"
    local = list(storage.iter_chunks(str(write(tmp_path, data)), size))
    stream = io.BytesIO(data)
    assert [bytes(c) for c in storage.whole_lines(stream.read, size)] == [bytes(c) for c in local]
    trickle = io.BytesIO(data)  # a stream that returns less than asked
    assert [bytes(c) for c in storage.whole_lines(lambda n: trickle.read(min(n, 5)), size)] == [bytes(c) for c in local]
    assert b"".join(local) == data
    assert all(len(c) <= size for c in local)
    # Whole lines, but where a line is longer than a read (it then spans chunks) and at the end.
    assert all(bytes(c).endswith(b"\n") for c in local if b"\n" in bytes(c))
    blocks = [bytes(b) for b in transform.split_blocks(local)]
    assert b"".join(blocks) == data
    assert all(b.endswith(b"\n") for b in blocks[:-1])


def test_a_file_that_cannot_be_mapped_is_read_into_the_same_chunks(tmp_path: Path, monkeypatch) -> None:
    data = b"".join(f"line {i},{'x' * (i % 13)}\n".encode() for i in range(500))
    path = write(tmp_path, data)
    mapped = [bytes(c) for c in storage.iter_chunks(str(path), 300)]

    def no_mapping(*args: object, **kwargs: object) -> None:
        raise OSError(19, "No such device")  # what mmap says on a file system that cannot map files

    monkeypatch.setattr(storage.mmap, "mmap", no_mapping)
    read = list(storage.iter_chunks(str(path), 300))
    assert all(isinstance(c, bytearray) for c in read)
    assert [bytes(c) for c in read] == mapped and b"".join(read) == data and len(mapped) > 10


def test_an_empty_local_file_gives_no_chunks(tmp_path: Path) -> None:
    assert list(storage.iter_chunks(str(write(tmp_path, b"")), 300)) == []


@pytest.mark.parametrize("column", ["frame_rate", "timestamp"])
def test_thousands_of_distinct_refused_values_in_one_slice(tmp_path: Path, column: str) -> None:
    """Arrow names one refused value per failed cast: a slice of 2,048 distinct ones costs a bounded number
    of casts before pandas takes the rest (it once recursed once per value: RecursionError)."""
    rows = 3000
    if column == "frame_rate":  # a digit in each: pandas judges them all, and refuses them
        body = b"".join(f"2025-10-06T12:00:00,iac-vx1,{i}.5x,90.0,20\n".encode() for i in range(rows))
    else:  # the first value is naive, so the cast is the naive one; pandas reads the zoned ones
        body = b"".join(
            f"2025-10-06T12:{i // 60 % 60:02d}:{i % 60:02d}Z,iac-vx1,60.0,90.0,20\n".encode() for i in range(rows)
        )
        body = b"2025-10-06T11:00:00,iac-vx1,60.0,90.0,20\n" + body
    result, summary = run_file(write(tmp_path, HEADER + body), tmp_path)
    if column == "frame_rate":
        assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (rows, 0, rows)
        quarantined = pd.read_csv(result.quarantine)
        assert set(quarantined["reason"]) == {"non-numeric frame_rate"}
        assert quarantined["line_number"].tolist() == list(range(2, rows + 2))
    else:
        assert (result.rows_in, result.rows_loaded, result.rows_quarantined) == (rows + 1, rows + 1, 0)
        assert summary.to_pydict()["log_count"] == [rows + 1]


@pytest.mark.parametrize("size", [1, 300, 4096, transform.DEFAULT_BATCH_BYTES])
def test_mapped_file_blocks_parse_as_streamed_ones_do(tmp_path: Path, size: int) -> None:
    """A local file's chunks are views of the mapped file, not copies: every odd line kind (quoted, lone
    carriage return, invalid UTF-8, blank) parses from them exactly as from a stream's bytearrays."""
    data, _, _ = mixed_file(5)
    path = write(tmp_path, data)
    local = list(storage.iter_chunks(str(path), size))
    assert all(isinstance(chunk, memoryview) for chunk in local)
    assert all(bytes(chunk).endswith(b"\n") for chunk in local if b"\n" in bytes(chunk))

    def outcome(chunks: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
        header, batches = transform.parse(chunks)
        return header, [(b.lines, b.rows, b.rejected, b.valid.to_pylist(), b.partial.to_pylist()) for b in batches]

    mapped = outcome(storage.iter_chunks(str(path), size))
    assert mapped == outcome(storage.whole_lines(io.BytesIO(data).read, size))
    assert mapped == outcome([bytes(chunk) for chunk in local])


def test_every_device_id_distinct_in_a_block(tmp_path: Path) -> None:
    """No id repeats (nothing for the dictionary to fold), two equal once trimmed, and each kind of bad id."""
    rows = [f"2025-10-06T12:00:00,dev-{i:05d},{i % 60}.5,{i % 100},{i % 50}\n".encode() for i in range(3000)]
    rows[10] = b"2025-10-06T12:00:00, dev-00011 ,1.5,2,3\n"  # dev-00011 once trimmed
    rows[20] = b"2025-10-06T12:00:00,,1,2,3\n"
    rows[30] = b"2025-10-06T12:00:00," + b"x" * 51 + b",1,2,3\n"
    rows[40] = b"2025-10-06T12:00:00,dev\\40,1,2,3\n"
    result, summary = run_file(write(tmp_path, HEADER + b"".join(rows)), tmp_path)

    assert read_quarantine(result.quarantine) == [
        (22, "empty device_id", "2025-10-06T12:00:00,,1,2,3"),
        (32, "device_id longer than 50 bytes", rows[30].decode().strip()),
        (42, "device_id contains a backslash or control character", "2025-10-06T12:00:00,dev\\40,1,2,3"),
    ]
    assert (result.rows_in, result.rows_loaded, result.devices) == (3000, 2997, 2996)
    found = {row["device_id"]: row for row in summary.to_pylist()}
    assert found["dev-00011"] == {
        "device_id": "dev-00011", "avg_frame_rate": (1.5 + 11.5) / 2, "avg_gpu_usage": (2 + 11) / 2,
        "max_latency_ms": 11, "log_count": 2,
    }  # fmt: skip
    assert found["dev-02999"] == {
        "device_id": "dev-02999", "avg_frame_rate": 59.5, "avg_gpu_usage": 99.0, "max_latency_ms": 49, "log_count": 1
    }  # fmt: skip
    assert "dev-00010" not in found and "dev-00020" not in found
