"""Unit tests of the render-log job: parsing, validation, aggregation, SQL generation, Data API driver.

Expected values are literal: device ids, counts and maxima copied from the seed, averages recomputed
here with math.fsum from the seed's own numbers (never from the code under test).
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlglot
from job_errors import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_TRANSIENT, BadInputError, JobError, TransientError
from render_summary import cli, transform
from render_summary.warehouse import RedshiftDataWarehouse, load_statements
from sqlglot import exp

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
SUMMARY_DTYPES = {
    "device_id": "object",
    "avg_frame_rate": "float64",
    "avg_gpu_usage": "float64",
    "max_latency_ms": "int64",
    "log_count": "int64",
}


def mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def run_file(path: Path, tmp_path: Path, chunk_rows: int = transform.DEFAULT_CHUNK_ROWS):
    """The whole job in-process (streaming chunk merge included), without a warehouse."""
    return cli.run(str(path), str(tmp_path / "quarantine"), None, "public", "performance_summary", chunk_rows)


def write(tmp_path: Path, data: bytes, name: str = "input.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def process(data: bytes, chunk_rows: int = 1000) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    """Header + body bytes -> (valid rows, [(line_number, reason, raw_line)] sorted by line)."""
    _, chunks = transform.read_chunks(data.splitlines(keepends=True), chunk_rows)
    valid, rejected = [], []
    for chunk in chunks:
        good, bad = transform.validate(chunk.rows)
        valid.append(good)
        rejected += [chunk.rejected, bad]
    rows = pd.concat(valid, ignore_index=True) if valid else pd.DataFrame()
    quarantined = [
        (int(r.line_number), r.reason, r.raw_line) for frame in rejected for r in frame.itertuples(index=False)
    ]
    return rows, sorted(quarantined)


def reasons_for(*body: bytes) -> list[str]:
    """Reasons for each body line in order (the lines start at line 2, after the header)."""
    valid, quarantined = process(HEADER + b"".join(body))
    assert len(valid) + len(quarantined) == len(body)
    return [reason for _, reason, _ in quarantined]


# --- the seed ---------------------------------------------------------------------------------------


def test_seed_summary_has_exact_values(tmp_path: Path) -> None:
    result, summary = run_file(SEED, tmp_path)

    assert list(summary.columns) == list(SUMMARY_DTYPES)
    assert {c: str(t) for c, t in summary.dtypes.items()} == SUMMARY_DTYPES
    assert list(summary.index) == [0, 1, 2, 3]
    assert summary["device_id"].tolist() == ["iac-vx1", "iac-vx2", "iac-vx3", "iac-vx4"]
    assert summary["log_count"].tolist() == [5, 2, 1, 5]
    assert summary["max_latency_ms"].tolist() == [24, 20, 21, 25]
    for row in summary.itertuples(index=False):
        assert row.log_count == SEED_LOG_COUNTS[row.device_id] == len(SEED_FRAME_RATES[row.device_id])
        assert row.max_latency_ms == SEED_MAX_LATENCIES[row.device_id]
        assert row.avg_frame_rate == pytest.approx(mean(SEED_FRAME_RATES[row.device_id]), rel=1e-12)
        assert row.avg_gpu_usage == pytest.approx(mean(SEED_GPU_USAGES[row.device_id]), rel=1e-12)

    assert result == cli.RunSummary(
        input=str(SEED), rows_in=13, rows_loaded=13, rows_quarantined=0, devices=4, quarantine=None,
        table="public.performance_summary", status="succeeded",
    )  # fmt: skip
    assert not (tmp_path / "quarantine").exists()


@pytest.mark.parametrize("chunk_rows", [1, 2, 5])
def test_chunked_run_matches_single_chunk(tmp_path: Path, chunk_rows: int) -> None:
    whole_result, whole = run_file(SEED, tmp_path, chunk_rows=10_000)
    chunked_result, chunked = run_file(SEED, tmp_path, chunk_rows=chunk_rows)

    assert chunked_result == whole_result
    # Integer columns and order exactly; averages to the last couple of ulps (summation order differs).
    pd.testing.assert_frame_equal(chunked, whole, check_exact=False, rtol=1e-12, atol=0)
    assert chunked[["device_id", "max_latency_ms", "log_count"]].equals(
        whole[["device_id", "max_latency_ms", "log_count"]]
    )
    for row in chunked.itertuples(index=False):
        assert row.avg_frame_rate == pytest.approx(mean(SEED_FRAME_RATES[row.device_id]), rel=1e-12)
        assert row.avg_gpu_usage == pytest.approx(mean(SEED_GPU_USAGES[row.device_id]), rel=1e-12)


@pytest.mark.parametrize("chunk_rows", [1, 3, 1000])
def test_chunking_of_bad_rows_keeps_accounting(tmp_path: Path, chunk_rows: int) -> None:
    result, summary = run_file(WITH_ERRORS, tmp_path, chunk_rows=chunk_rows)

    assert (result.rows_in, result.rows_loaded, result.rows_quarantined, result.devices) == (8, 2, 6, 2)
    assert summary.to_dict("list") == {
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
        transform.read_chunks([header, OK_ROW])
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
    assert transform.read_chunks([])[0] == []
    result, summary = run_file(write(tmp_path, b""), tmp_path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined, result.devices) == (0, 0, 0, 0)
    assert result.quarantine is None
    assert summary.empty and list(summary.columns) == list(SUMMARY_DTYPES)


def test_blank_only_file_is_empty(tmp_path: Path) -> None:
    result, summary = run_file(write(tmp_path, b"\n  \r\n\n"), tmp_path)
    assert (result.rows_in, result.rows_quarantined, result.devices) == (0, 0, 0)
    assert summary.empty


def test_header_only_file(tmp_path: Path) -> None:
    header, chunks = transform.read_chunks([HEADER])
    assert header == list(transform.REQUIRED_COLUMNS)
    assert list(chunks) == []
    result, summary = run_file(write(tmp_path, HEADER), tmp_path)
    assert (result.rows_in, result.rows_loaded, result.rows_quarantined, result.devices) == (0, 0, 0, 0)
    assert summary.empty
    assert {c: str(t) for c, t in summary.dtypes.items()} == SUMMARY_DTYPES


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
    valid, _ = process(HEADER + OK_ROW)
    assert list(valid.columns) == ["timestamp", "device_id", "frame_rate", "gpu_usage", "latency_ms"]
    assert str(valid["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert [str(valid[c].dtype) for c in ("device_id", "frame_rate", "gpu_usage", "latency_ms")] == [
        "object", "float64", "float64", "int64",
    ]  # fmt: skip


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
    assert summary.to_dict("list") == {
        "device_id": ["iac-vx1"], "avg_frame_rate": [15.0], "avg_gpu_usage": [30.0],
        "max_latency_ms": [5], "log_count": [2],
    }  # fmt: skip
    assert result.rows_loaded == 2


# --- SQL generation ----------------------------------------------------------------------------------


def two_device_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "device_id": ["iac-vx1", "o'brien"],
            "avg_frame_rate": [59.75, 60.125],
            "avg_gpu_usage": [88.5, 0.1],
            "max_latency_ms": [24, 7],
            "log_count": [5, 1],
        }
    )


def test_load_statements_exact() -> None:
    statements = load_statements(two_device_summary(), "s3://raw/render-logs/a.csv", "analytics", "perf")
    assert statements == [
        "CREATE TABLE IF NOT EXISTS analytics.perf (device_id VARCHAR(50) NOT NULL, avg_frame_rate FLOAT8, "
        "avg_gpu_usage FLOAT8, max_latency_ms INT4, log_count INT4, source_uri VARCHAR(1024) NOT NULL, "
        "PRIMARY KEY (source_uri, device_id))",
        "CREATE TEMP TABLE perf_stage (LIKE analytics.perf)",
        "INSERT INTO perf_stage (device_id, avg_frame_rate, avg_gpu_usage, max_latency_ms, log_count, source_uri) "
        "VALUES ('iac-vx1', 59.75, 88.5, 24, 5, 's3://raw/render-logs/a.csv'), "
        "('o''brien', 60.125, 0.1, 7, 1, 's3://raw/render-logs/a.csv')",
        "DELETE FROM analytics.perf WHERE source_uri = 's3://raw/render-logs/a.csv' "
        "AND device_id NOT IN (SELECT device_id FROM perf_stage)",
        "MERGE INTO analytics.perf USING perf_stage s ON analytics.perf.source_uri = s.source_uri "
        "AND analytics.perf.device_id = s.device_id "
        "WHEN MATCHED THEN UPDATE SET avg_frame_rate = s.avg_frame_rate, avg_gpu_usage = s.avg_gpu_usage, "
        "max_latency_ms = s.max_latency_ms, log_count = s.log_count "
        "WHEN NOT MATCHED THEN INSERT "
        "(device_id, avg_frame_rate, avg_gpu_usage, max_latency_ms, log_count, source_uri) "
        "VALUES (s.device_id, s.avg_frame_rate, s.avg_gpu_usage, s.max_latency_ms, s.log_count, s.source_uri)",
        "DROP TABLE perf_stage",
    ]


def test_floats_are_written_with_full_precision() -> None:
    summary = two_device_summary().assign(avg_frame_rate=[59.750410561918294, 1e-05])
    insert = load_statements(summary, "s3://b/k", "public", "performance_summary")[2]
    assert "('iac-vx1', 59.750410561918294, 88.5, 24, 5, 's3://b/k')" in insert
    assert "('o''brien', 1e-05, 0.1, 7, 1, 's3://b/k')" in insert


def test_quote_in_source_uri_is_escaped() -> None:
    statements = load_statements(two_device_summary(), "file:///data/it's.csv", "public", "performance_summary")
    assert "DELETE FROM public.performance_summary WHERE source_uri = 'file:///data/it''s.csv' AND" in statements[3]
    assert statements[2].count("'file:///data/it''s.csv'") == 2


@pytest.mark.parametrize(
    ("schema", "table", "message"),
    [
        ("Public", "performance_summary", "schema 'Public' is not a plain lower-case SQL identifier"),
        ("public", "perf; DROP TABLE x", "table 'perf; DROP TABLE x' is not a plain lower-case SQL identifier"),
        ("public", "", "table '' is not a plain lower-case SQL identifier"),
        ("public", "1perf", "table '1perf' is not a plain lower-case SQL identifier"),
        ("a.b", "perf", "schema 'a.b' is not a plain lower-case SQL identifier"),
        ("public", '"perf"', "table '\"perf\"' is not a plain lower-case SQL identifier"),
    ],
)
def test_bad_identifier_is_refused(schema: str, table: str, message: str) -> None:
    with pytest.raises(JobError) as raised:
        load_statements(two_device_summary(), "s3://b/k", schema, table)
    assert str(raised.value) == message
    assert raised.value.exit_code == EXIT_FAILED


@pytest.mark.parametrize("bad", ["s3://b/k\\x", "s3://b/k\nDROP", "s3://b/\x00"])
def test_backslash_or_control_character_in_literal_is_refused(bad: str) -> None:
    with pytest.raises(JobError, match="refusing to embed string with backslash/control character"):
        load_statements(two_device_summary(), bad, "public", "performance_summary")


def test_many_devices_are_split_into_500_row_inserts() -> None:
    n = 1001
    summary = pd.DataFrame(
        {
            "device_id": [f"dev-{i:04d}" for i in range(n)],
            "avg_frame_rate": [float(i) + 0.5 for i in range(n)],
            "avg_gpu_usage": [50.0] * n,
            "max_latency_ms": list(range(n)),
            "log_count": [1] * n,
        }
    )
    statements = load_statements(summary, "s3://b/k", "public", "performance_summary")
    assert len(statements) == 8
    inserts = statements[2:5]
    assert all(s.startswith("INSERT INTO performance_summary_stage (") for s in inserts)
    assert [s.count("('dev-") for s in inserts] == [500, 500, 1]
    assert "('dev-0000', 0.5, 50.0, 0, 1, 's3://b/k')" in inserts[0]
    assert "('dev-0499', 499.5, 50.0, 499, 1, 's3://b/k')" in inserts[0]
    assert "('dev-0500', 500.5, 50.0, 500, 1, 's3://b/k')" in inserts[1]
    assert inserts[2].endswith("VALUES ('dev-1000', 1000.5, 50.0, 1000, 1, 's3://b/k')")
    assert [s.split(" ", 1)[0] for s in statements[5:]] == ["DELETE", "MERGE", "DROP"]
    # Far below the Data API's 100 KB per-statement limit.
    assert max(len(s.encode()) for s in statements) < 50_000


def test_statements_parse_as_redshift_sql() -> None:
    statements = load_statements(two_device_summary(), "s3://raw/it's.csv", "public", "performance_summary")
    kinds = []
    for sql in statements:
        tree = sqlglot.parse_one(sql, read="redshift", error_level=sqlglot.ErrorLevel.RAISE)
        kinds.append(type(tree))
    assert kinds == [exp.Create, exp.Create, exp.Insert, exp.Delete, exp.Merge, exp.Drop]

    # The parser, not our escaping, says what the literals are.
    insert = sqlglot.parse_one(statements[2], read="redshift")
    strings = [lit.this for lit in insert.find_all(exp.Literal) if lit.is_string]
    assert strings == ["iac-vx1", "s3://raw/it's.csv", "o'brien", "s3://raw/it's.csv"]
    tuples = list(insert.find_all(exp.Tuple))
    assert len(tuples) == 2 and all(len(t.expressions) == 6 for t in tuples)

    merge = sqlglot.parse_one(statements[4], read="redshift")
    assert merge.this.sql() == "public.performance_summary"
    whens = merge.args["whens"].expressions
    assert [bool(w.args.get("matched")) for w in whens] == [True, False]


# --- Redshift Data API driver -------------------------------------------------------------------------


class FakeDataApi:
    """Records every call; describe_statement answers from a scripted list of statuses."""

    def __init__(self, statuses: list[str], error: str = "", batch_error: Exception | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._statuses = list(statuses)
        self._error = error
        self._batch_error = batch_error

    def batch_execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("batch_execute_statement", kwargs))
        if self._batch_error is not None:
            raise self._batch_error
        return {"Id": "stmt-0001"}

    def describe_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("describe_statement", kwargs))
        if not self._statuses:
            raise AssertionError("describe_statement polled after a final status")
        status = self._statuses.pop(0)
        described: dict[str, Any] = {"Id": kwargs["Id"], "Status": status}
        if status in ("FAILED", "ABORTED"):
            described["Error"] = self._error
        return described

    def cancel_statement(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("cancel_statement", kwargs))
        return {"Status": True}


STATEMENTS = load_statements(two_device_summary(), "s3://raw/a.csv", "public", "performance_summary")


def redshift(client: FakeDataApi, **kwargs: Any) -> RedshiftDataWarehouse:
    return RedshiftDataWarehouse("wg-dev", "analytics", client=client, poll_seconds=0, **kwargs)


def test_redshift_finished_runs_all_statements_in_one_batch() -> None:
    client = FakeDataApi(["SUBMITTED", "PICKED", "STARTED", "FINISHED"])
    redshift(client).run_transaction(STATEMENTS)

    assert [name for name, _ in client.calls] == ["batch_execute_statement"] + ["describe_statement"] * 4
    batch = client.calls[0][1]
    assert set(batch) == {"WorkgroupName", "Database", "Sqls", "StatementName"}
    assert batch["WorkgroupName"] == "wg-dev"
    assert batch["Database"] == "analytics"
    assert batch["Sqls"] == STATEMENTS
    assert re.fullmatch(r"render-summary-[0-9a-f]{8}", batch["StatementName"])
    assert all(kwargs == {"Id": "stmt-0001"} for _, kwargs in client.calls[1:])


def test_redshift_failed_is_job_error_with_the_error_text() -> None:
    client = FakeDataApi(["STARTED", "FAILED"], error='ERROR: column "x" does not exist')
    with pytest.raises(JobError) as raised:
        redshift(client).run_transaction(STATEMENTS)
    assert type(raised.value) is JobError
    assert str(raised.value) == 'Redshift load failed: ERROR: column "x" does not exist'
    assert raised.value.exit_code == EXIT_FAILED


def test_redshift_aborted_is_job_error() -> None:
    client = FakeDataApi(["ABORTED"], error="cancelled by user")
    with pytest.raises(JobError, match=r"^Redshift load aborted: cancelled by user$") as raised:
        redshift(client).run_transaction(STATEMENTS)
    assert type(raised.value) is JobError


def test_redshift_serialization_conflict_is_transient() -> None:
    error = "ERROR: 1023 DETAIL: Serializable isolation violation on table - 123456, transactions forming the cycle"
    client = FakeDataApi(["FAILED"], error=error)
    with pytest.raises(TransientError) as raised:
        redshift(client).run_transaction(STATEMENTS)
    assert str(raised.value) == f"Redshift load failed: {error}"
    assert raised.value.exit_code == EXIT_TRANSIENT == 4


def test_redshift_timeout_cancels_and_is_transient() -> None:
    client = FakeDataApi(["STARTED"] * 5)
    with pytest.raises(TransientError, match=r"^Redshift load did not finish within 0s$"):
        redshift(client, timeout_seconds=0).run_transaction(STATEMENTS)
    assert client.calls[-1] == ("cancel_statement", {"Id": "stmt-0001"})


def test_redshift_too_many_statements_fails_before_any_call() -> None:
    client = FakeDataApi(["FINISHED"])
    with pytest.raises(JobError) as raised:
        redshift(client).run_transaction(["SELECT 1"] * 41)
    assert type(raised.value) is JobError
    assert str(raised.value) == (
        "load needs 41 statements but one Data API transaction allows 40 (about 17500 devices per file)"
    )
    assert client.calls == []

    redshift(client).run_transaction(["SELECT 1"] * 40)  # the limit itself is fine
    assert len(client.calls[0][1]["Sqls"]) == 40


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
        redshift(client).run_transaction(STATEMENTS)
    assert type(raised.value) is expected
    assert str(raised.value).startswith(f"Redshift Data API: {code} ")
    assert len(client.calls) == 1


def test_redshift_connection_error_is_transient() -> None:
    from botocore.exceptions import EndpointConnectionError

    client = FakeDataApi([], batch_error=EndpointConnectionError(endpoint_url="https://redshift-data.example"))
    with pytest.raises(TransientError, match=r"^Redshift Data API: Could not connect"):
        redshift(client).run_transaction(STATEMENTS)


def test_same_named_local_files_in_two_folders_get_separate_quarantine_files(tmp_path: Path) -> None:
    bad = b"timestamp,device_id,frame_rate,gpu_usage,latency_ms\n2025-10-06T12:00:00,,1,1,1\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first, second = write(tmp_path / "a", bad, "logs.csv"), write(tmp_path / "b", bad, "logs.csv")
    one, _ = run_file(first, tmp_path)
    two, _ = run_file(second, tmp_path)
    assert one.quarantine != two.quarantine
    assert Path(one.quarantine).exists() and Path(two.quarantine).exists()


def test_s3_lines_split_like_a_local_file() -> None:
    from render_summary.storage import split_lines

    chunks = [b"a,b\r\nc", b"\rd\n", b"", b"e\nlast"]
    assert list(split_lines(chunks)) == [b"a,b\r\n", b"c\rd\n", b"e\n", b"last"]
    assert list(split_lines([b"x\n"])) == [b"x\n"]
    assert list(split_lines([])) == []
