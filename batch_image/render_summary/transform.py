"""Pure transforms: render-log CSV bytes -> validated rows + quarantined rows -> per-device summary.

Nothing here does I/O. Input arrives as an iterable of byte chunks (a local file's reads or a streaming
S3 body), taken as blocks of whole lines; each block is parsed, validated and aggregated on its own
(`parse_block`, safe to run on several threads at once), and per-device partial aggregates are merged,
so memory depends on the block size and the number of devices, never on the file size.

How a block is processed, and why (costs per 1M seed-format rows on one core of the 2-core build
machine; the whole job is measured by `python -m bench --only render-logs render-logs-large`):

- Fields are split by Arrow's CSV parser (`pyarrow.csv.read_csv`, quoting off, every field as bytes,
  ~100 ms; the former Python split loop and per-chunk pandas took ~8 s per 1M rows end to end). Run
  serially, Arrow numbers the lines it hands to `invalid_row_handler` (wrong field count, blank),
  and every other line is a row in order, so each row's physical line number follows. Its streaming
  reader (`open_csv`) was measured too: threaded it numbers nothing, and an unterminated quote stops
  the whole stream ("parser got out of sync with chunker"). So blocks are cut here and parsed
  serially, several at a time (the caller's `mapper`: Arrow releases the GIL).
- Lines Arrow must not parse are found with single-byte scans (~1 ms per 8 MB block when absent, as
  usual): a quote character (Arrow would accept `"a"b` and cannot report an unterminated quote per
  row), a carriage return not before `\n` (Arrow would end the record there), invalid UTF-8. The
  former Python code parses those lines, so they behave exactly as before; Arrow sees them blanked.
- Values are Arrow casts (~18 ms per float column, ~25 ms for timestamps). Arrow has no "null on
  failure" cast and a per-value regular expression costs ~90 ms per column, so a cast that fails is
  narrowed down (`_parse_column`) and only the values Arrow refuses go to pandas (`pd.to_numeric`,
  `pd.to_datetime(format="ISO8601")` after strip, as before): what is valid is what it always was,
  and the values Arrow accepts it parses to the same numbers (tests compare both on edge cases).
- Device ids are dictionary-encoded (~20 ms; few distinct values), each distinct id checked once with
  the former rules, and rows grouped by dictionary index with Arrow's hash aggregation (~16 ms).

DuckDB was measured as the engine too: its `read_csv` gives no line number for a row that parses but
fails validation, and joins a line with an unterminated quote to the following ones; the job's checks
in SQL took 8-11 s over 10M rows (its TIMESTAMPTZ casts), and it would add a second engine to the image.
"""

from __future__ import annotations

import codecs
import csv
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
from job_errors import BadInputError

REQUIRED_COLUMNS = ("timestamp", "device_id", "frame_rate", "gpu_usage", "latency_ms")
SUMMARY_COLUMNS = ("device_id", "avg_frame_rate", "avg_gpu_usage", "max_latency_ms", "log_count")
QUARANTINE_COLUMNS = ("line_number", "reason", "raw_line")
DEVICE_ID_MAX_BYTES = 50  # performance_summary.device_id is VARCHAR(50); Redshift counts bytes
INT4_MAX = 2**31 - 1
# Beyond any real display, and small enough that sums over billions of rows stay finite.
FRAME_RATE_MAX = 10_000
# Bytes read, and so parsed, at a time: about 110,000 seed-format rows. Large enough that per-block
# overheads vanish, small enough that a few blocks in flight stay far below the job's memory.
DEFAULT_BATCH_BYTES = 8 * 1024 * 1024

BLANK = " \t\n\r\x0b\x0c"  # what bytes.strip() removes: a line of only these is blank, skipped and not a row
_BAD_DEVICE_CHARACTER = re.compile(r"[\\\x00-\x1f\x7f]")
_DEVICE_REASONS = (  # bit -> reason, in the order reasons are listed
    (1, "empty device_id"),
    (2, "device_id longer than 50 bytes"),
    (4, "device_id contains a backslash or control character"),
)
_SLICE = 2048  # values cast together: small enough that a failing cast wastes little
_MAX_FAILURES = 8  # failed casts of one slice before pandas takes the rest of it
_FAILED_VALUE = re.compile(r"Failed to parse string: '(.*)' as a scalar of type", re.S)
_TIMESTAMP = pa.timestamp("ns", "UTC")
_NAIVE = pa.timestamp("ns")
_OFFSET = re.compile(r"(Z|[+-]\d\d(:?\d\d)?)\s*$")  # after the date: a UTC offset
_DIGIT = re.compile(r"[0-9]")
_PARTIAL_SCHEMA = pa.schema(
    [
        ("device_id", pa.string()),
        ("sum_frame_rate", pa.float64()),
        ("sum_gpu_usage", pa.float64()),
        ("max_latency_ms", pa.int64()),
        ("log_count", pa.int64()),
    ]
)

Rejected = tuple[int, str, str]  # (line_number, reason, raw_line)
Data = bytes | bytearray  # a block: the local reader fills bytearrays in place


@dataclass(frozen=True)
class Layout:
    """Where the required fields sit in a record, from the header."""

    width: int  # fields per record
    positions: tuple[int, ...]  # index of each of REQUIRED_COLUMNS


@dataclass(frozen=True)
class Batch:
    """One block of the input, parsed: its valid rows, its rejects, and its per-device partial aggregate."""

    lines: int  # physical lines in the block, blank ones included (the next block's numbering starts after)
    rows: int  # non-blank lines: rows_in
    valid: pa.Table  # timestamp[ns, UTC], device_id dictionary<string>, frame_rate, gpu_usage, latency_ms int64
    rejected: list[Rejected]  # sorted by line_number; numbers count from the block's first line (1)
    partial: pa.Table  # partial_aggregate(valid)


def defer_pandas() -> None:
    """Keep pyarrow from importing pandas (~0.25 s of a ~2 s run over 10M rows) until pandas is needed.

    The first time pyarrow checks whether a value is a pandas object (nearly any `pa.array` or compute
    call), it imports pandas if it can, and never asks again. Asked once with pandas hidden, it treats
    values as not pandas; what needs pandas still gets it: the job's own fallbacks import it, and
    pyarrow's conversions to and from pandas import it on demand. Nothing is done when pandas is already
    loaded or pyarrow has already looked (tests; an importing program).
    """
    if "pandas" in sys.modules:
        return
    sys.meta_path.insert(0, _NoPandas)
    try:
        pa.array([0])
    finally:
        sys.meta_path.remove(_NoPandas)


class _NoPandas:
    """An import hook under which `import pandas` raises ImportError (as if it were not installed)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ImportError(f"{name} is deferred")


# --- header ------------------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    # Fast path for the common unquoted line; csv handles quoting exactly when a quote is present.
    if '"' not in text:
        return text.split(",")
    return next(csv.reader([text], strict=True))


def parse_header(line: Data) -> list[str]:
    """Header fields, or BadInputError naming what is wrong (missing columns, duplicates, encoding)."""
    try:
        text = line.rstrip(b"\r\n").decode("utf-8").lstrip("\ufeff")
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


# --- blocks ------------------------------------------------------------------------------------------


def split_blocks(chunks: Iterable[Data]) -> Iterator[Data]:
    """Whole lines: each chunk up to its last b"\\n", after the unfinished line the previous one left.

    A record is one b"\\n" line however the source was read. A chunk that already ends a line and
    follows one that did passes through uncopied: the local file reader's chunks all do.
    """
    pending: list[Data | memoryview] = []  # the start of a line that has not ended yet
    for chunk in chunks:
        end = chunk.rfind(b"\n") + 1
        if not end:
            if chunk:
                pending.append(chunk)
            continue
        if pending:
            yield b"".join([*pending, memoryview(chunk)[:end]])
        else:
            yield chunk if end == len(chunk) else chunk[:end]
        pending = [memoryview(chunk)[end:]] if end < len(chunk) else []
    if pending:
        yield b"".join(pending)


def parse(
    chunks: Iterable[Data],
    mapper: Callable[[Callable[[Data], Batch], Iterator[Data]], Iterable[Batch]] = map,
) -> tuple[list[str], Iterator[Batch]]:
    """Parse the header eagerly (so a bad header fails before any work) and the body lazily, block by block.

    The blocks are the chunks as read (`split_blocks`), so the read size is the block size. `mapper(
    function, blocks)` applies `parse_block` and must yield results in input order (the builtin `map`,
    or a thread pool's ordered map). The batches come out with absolute line numbers: physical lines
    of the file, blank lines included. Returns ([], no batches) for an empty or blank-only file.
    """
    header, first_line, body = _read_header(split_blocks(chunks))
    if not header:
        return [], iter(())
    layout = Layout(len(header), tuple(header.index(c) for c in REQUIRED_COLUMNS))
    return header, _numbered(mapper(partial(parse_block, layout=layout), body), first_line)


def _read_header(blocks: Iterator[Data]) -> tuple[list[str], int, Iterator[Data]]:
    """(header, line number of the first data line, the blocks after the header line)."""
    line_number = 0
    for block in blocks:
        start = 0
        while start < len(block):
            end = block.find(b"\n", start) + 1 or len(block)
            line_number += 1
            if block[start:end].strip():
                header = parse_header(block[start:end])
                rest = [block[end:]] if end < len(block) else []
                return header, line_number + 1, _chain(rest, blocks)
            start = end
    return [], line_number + 1, iter(())


def _chain(first: list[Data], rest: Iterator[Data]) -> Iterator[Data]:
    yield from first
    yield from rest


def _numbered(batches: Iterable[Batch], first_line: int) -> Iterator[Batch]:
    line = first_line
    for batch in batches:
        offset = line - 1
        rejected = [(number + offset, reason, raw) for number, reason, raw in batch.rejected]
        yield Batch(batch.lines, batch.rows, batch.valid, rejected, batch.partial)
        line += batch.lines


# --- one block ---------------------------------------------------------------------------------------


def parse_block(block: Data, layout: Layout) -> Batch:
    """Parse, validate and aggregate one block of whole lines (line numbers relative to the block)."""
    rejected: list[Rejected] = []
    python_rows: list[tuple[int, str, list[str]]] = []  # (line, raw text, fields) of lines parsed by csv
    special_rows = 0
    special = _special_lines(block)
    buffer: Data = block
    if special:
        buffer = bytearray(block)
        for number, (start, end) in zip(_line_numbers(block, [s for s, _ in special]), special, strict=True):
            # Arrow sees spaces instead: a blank line, which its handler below skips, so the numbering holds.
            buffer[start:end] = b" " * (end - start)
            outcome = _parse_line(block[start:end], layout.width)
            if outcome is None:
                continue
            special_rows += 1
            text, parsed = outcome
            if isinstance(parsed, str):
                rejected.append((number, parsed, text))
            else:
                python_rows.append((number, text, parsed))

    table, skipped = _read(buffer, layout.width)
    blank_skipped = 0
    for number, found, text in skipped:
        if not text.strip(BLANK):
            blank_skipped += 1  # a blank line, or a special line handled above
        else:
            rejected.append((number, f"expected {layout.width} fields, found {found}", text))

    columns = [_one_array(table.column(i)) for i in range(layout.width)]
    arrow_columns = columns
    if python_rows:
        columns = [
            pa.concat_arrays([column, pa.array([row[2][i] for row in python_rows], pa.string()).view(pa.binary())])
            for i, column in enumerate(columns)
        ]
    valid, bad, reasons = validate(*(columns[i] for i in layout.positions))

    # Arrow's rows are the block's lines in order, less the lines its handler took: row j is on the
    # (j+1)-th line not handled. Only rejected rows need their number.
    arrow_bad = bad[bad < table.num_rows]
    handled = np.array(sorted(number for number, _, _ in skipped), dtype=np.int64)
    rows_before_handled = handled - 1 - np.arange(len(handled))
    numbers = (arrow_bad + 1 + np.searchsorted(rows_before_handled, arrow_bad, side="right")).tolist()
    texts = _joined(columns, arrow_bad)
    # An empty line parses as a row of empty fields, like a line of bare commas.
    empty_row = "," * (layout.width - 1)
    maybe_empty = [n for n, t in zip(numbers, texts, strict=True) if t == empty_row]
    blank_rows = _empty_lines(block, buffer, arrow_columns, skipped, maybe_empty)
    for number, text, reason in zip(numbers, texts, reasons[: len(arrow_bad)], strict=True):
        if number not in blank_rows:
            rejected.append((number, reason, text))
    for index, reason in zip(bad[len(arrow_bad) :], reasons[len(arrow_bad) :], strict=True):
        number, text, _ = python_rows[index - table.num_rows]
        rejected.append((number, reason, text))

    rejected.sort(key=lambda r: r[0])
    return Batch(
        lines=table.num_rows + len(skipped),
        rows=table.num_rows - len(blank_rows) + len(skipped) - blank_skipped + special_rows,
        valid=valid,
        rejected=rejected,
        partial=partial_aggregate(valid),
    )


def _special_lines(block: Data) -> list[tuple[int, int]]:
    """Byte ranges [start, end) of the lines Arrow must not parse (end: the line's b"\n" or the block's end).

    Each search is a single-byte scan, nearly free when the byte is absent, as it is in most files.
    """
    found: dict[int, int] = {}

    def add(position: int) -> int:
        start = block.rfind(b"\n", 0, position) + 1
        end = block.find(b"\n", position)
        found[start] = len(block) if end < 0 else end
        return found[start]

    position = block.find(b'"')
    while position >= 0:
        position = block.find(b'"', add(position))
    if b"\r" in block:  # a carriage return not before b"\n" would end Arrow's record there
        data = np.frombuffer(block, np.uint8)
        returns = np.flatnonzero(data == 13)
        following = data[np.minimum(returns + 1, len(data) - 1)]
        for position in returns[(returns + 1 == len(data)) | (following != 10)].tolist():
            add(position)
    if not block.isascii() and not _valid_utf8(block):
        position = 0
        while position < len(block):
            try:
                codecs.utf_8_decode(memoryview(block)[position:], "strict", True)
                break
            except UnicodeDecodeError as exc:
                position = add(position + exc.start) + 1
    return sorted(found.items())


def _valid_utf8(block: Data) -> bool:
    offsets = pa.py_buffer(np.array([0, len(block)], dtype=np.int64))
    try:
        pa.Array.from_buffers(pa.large_string(), 1, [None, offsets, pa.py_buffer(block)]).validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _line_numbers(block: Data, starts: list[int]) -> list[int]:
    """1-based line number of each (sorted) byte offset that starts a line."""
    numbers, line, previous = [], 1, 0
    for start in starts:
        line += block.count(b"\n", previous, start)
        numbers.append(line)
        previous = start
    return numbers


def _parse_line(raw: Data, width: int) -> tuple[str, list[str] | str] | None:
    """The former per-line parser: None for a blank line, else (text, fields) or (text, reason)."""
    if not raw.strip():
        return None
    line = raw.rstrip(b"\r\n")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return line.decode("utf-8", "backslashreplace"), f"invalid UTF-8 ({exc.reason} at byte {exc.start})"
    try:
        fields = _split(text)
    except (csv.Error, StopIteration) as exc:
        return text, f"malformed CSV quoting: {exc}"
    if len(fields) != width:
        return text, f"expected {width} fields, found {len(fields)}"
    return text, fields


def _read(buffer: Data, width: int) -> tuple[pa.Table, list[tuple[int, int, str]]]:
    """Arrow's serial CSV parse, quoting off, every field as bytes.

    Returns the rows with `width` fields and, for every other line, (line number, fields found, text).
    """
    skipped: list[tuple[int, int, str]] = []

    def handler(row: pv.InvalidRow) -> str:
        skipped.append((row.number, row.actual_columns, row.text))
        return "skip"

    names = [f"f{i}" for i in range(width)]
    table = pv.read_csv(
        pa.BufferReader(pa.py_buffer(buffer)),
        # Serial: only then does Arrow number the rows it hands to the handler. One parse block for the
        # whole buffer, so no line is ever longer than a block.
        read_options=pv.ReadOptions(column_names=names, use_threads=False, block_size=max(len(buffer), 1)),
        parse_options=pv.ParseOptions(quote_char=False, ignore_empty_lines=False, invalid_row_handler=handler),
        # An empty field becomes null: casts pass over nulls, so a missing value costs no failed cast.
        convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.binary()), strings_can_be_null=True, null_values=[""]
        ),
    )
    return table, skipped


def _one_array(column: pa.ChunkedArray) -> pa.Array:
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()  # combining copies


def _joined(columns: list[pa.Array], rows: np.ndarray) -> list[str]:
    """The raw text of unquoted rows: their fields joined by commas (the line without its ending)."""
    if not len(rows):
        return []
    picked = [column.take(pa.array(rows)).to_pylist() for column in columns]
    return [b",".join(field or b"" for field in fields).decode("utf-8") for fields in zip(*picked, strict=True)]


def _empty_lines(
    block: Data,
    buffer: Data,
    columns: list[pa.Array],
    skipped: list[tuple[int, int, str]],
    numbers: list[int],
) -> set[int]:
    """Which of these rows of empty fields are empty lines (1 byte) rather than bare commas (`width` bytes).

    Every byte Arrow read is a field, a separator or line end (`width` per row), a carriage return it
    dropped before b"\n", or part of a line it skipped: the bytes missing from that count say how many
    of these rows are empty lines. All or none settles it without a scan of the block.
    """
    if not numbers:
        return set()
    width = len(columns)
    size = len(buffer) + (not buffer.endswith(b"\n")) - (buffer.count(b"\r") if b"\r" in buffer else 0)
    counted = sum(pc.sum(pc.binary_length(column)).as_py() or 0 for column in columns)
    counted += len(columns[0]) * width + sum(len(text.encode()) + 1 for _, _, text in skipped)
    empty, remainder = divmod(counted - size, width - 1)
    if remainder == 0 and empty in (0, len(numbers)):
        return set(numbers) if empty else set()
    return _blank_lines(block, numbers)


def _blank_lines(block: Data, numbers: list[int]) -> set[int]:
    """Which of these 1-based line numbers hold a blank line (one scan of the block)."""
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    starts = np.concatenate(([0], ends + 1))
    blank = set()
    for number in numbers:
        start = int(starts[number - 1])
        end = int(ends[number - 1]) if number - 1 < len(ends) else len(block)
        if not block[start:end].strip():
            blank.add(number)
    return blank


# --- validation --------------------------------------------------------------------------------------


def validate(
    timestamp: pa.Array, device_id: pa.Array, frame_rate: pa.Array, gpu_usage: pa.Array, latency_ms: pa.Array
) -> tuple[pa.Table, np.ndarray, list[str]]:
    """Check the fields of parsed rows (binary arrays of UTF-8 text).

    Returns the valid rows, typed (timestamp[ns, UTC], a time without offset read as UTC; device_id
    trimmed, dictionary-encoded; frame_rate, gpu_usage float64; latency_ms int64), the indices of the
    invalid rows (ascending) and, for each, every reason that applies, joined by "; ".
    """
    device_flags, devices = _devices(device_id)
    text = timestamp.view(pa.string())
    ts = _parse_column(text, _timestamp_cast(text), _TIMESTAMPS)
    frame = _parse_column(frame_rate.view(pa.string()), _fast_number, _NUMBERS)
    gpu = _parse_column(gpu_usage.view(pa.string()), _fast_number, _NUMBERS)
    latency = _parse_column(latency_ms.view(pa.string()), _fast_number, _NUMBERS)

    # One vectorised test per row; the reasons are worked out, in Python, for the few rows that fail it.
    ok = pc.and_(pc.is_valid(ts), _within(frame, 0, FRAME_RATE_MAX))
    ok = pc.and_(ok, _within(gpu, 0, 100))
    ok = pc.and_(ok, pc.and_(_within(latency, 0, INT4_MAX), pc.fill_null(pc.equal(latency, pc.round(latency)), False)))
    if device_flags is not None:
        ok = pc.and_(ok, pc.equal(device_flags, 0))
    bad = pc.invert(ok)
    bad_rows = pc.indices_nonzero(bad).to_numpy().astype(np.int64)
    reasons = []
    if len(bad_rows):
        picked = pa.array(bad_rows)
        flags = device_flags.take(picked).to_pylist() if device_flags is not None else [0] * len(bad_rows)
        # The timestamp's validity only: a value would need pandas to convert (nanoseconds).
        found = zip(
            flags,
            pc.is_valid(ts).take(picked).to_pylist(),
            *(column.take(picked).to_pylist() for column in (frame, gpu, latency)),
            strict=True,
        )
        reasons = [_reasons(*row) for row in found]

    columns = {"timestamp": ts, "device_id": devices, "frame_rate": frame, "gpu_usage": gpu, "latency_ms": latency}
    if len(bad_rows):
        columns = {name: column.filter(ok) for name, column in columns.items()}
    columns["latency_ms"] = columns["latency_ms"].cast(pa.int64())
    return pa.table(columns), bad_rows, reasons


def _devices(raw: pa.Array) -> tuple[pa.Array | None, pa.DictionaryArray]:
    """Per-row problem bits (None when there is none) and the trimmed ids, dictionary-encoded.

    Render logs carry few distinct devices, so each distinct value is checked once (and remembered
    across blocks), in Python, with the former rules.
    """
    encoded = pc.dictionary_encode(raw)
    names: dict[str, int] = {}
    flags, remap = [], []
    for value in encoded.dictionary.to_pylist():
        device, problems = _check_device(value)
        flags.append(problems)
        remap.append(names.setdefault(device, len(names)))
    indices = encoded.indices
    if len(names) < len(remap):  # ids equal once trimmed share one dictionary entry
        indices = pa.array(remap, pa.int32()).take(indices)
    device_flags = None
    if any(flags) or encoded.null_count:  # a null is an empty field
        device_flags = pc.fill_null(pa.array(flags, pa.uint8()).take(encoded.indices), 1)
    return device_flags, pa.DictionaryArray.from_arrays(indices, pa.array(list(names), pa.string()))


@lru_cache(maxsize=1 << 16)
def _check_device(value: bytes) -> tuple[str, int]:
    """(the id trimmed as str.strip trims, its problem bits: see _DEVICE_REASONS)."""
    device = value.decode("utf-8").strip()
    problems = (
        (not device) * 1
        + (len(device.encode("utf-8")) > DEVICE_ID_MAX_BYTES) * 2
        + (_BAD_DEVICE_CHARACTER.search(device) is not None) * 4
    )
    return device, problems


def _within(values: pa.Array, low: float, high: float) -> pa.Array:
    """A number in [low, high]: false for null, NaN and infinities too."""
    return pc.fill_null(pc.and_(pc.greater_equal(values, low), pc.less_equal(values, high)), False)


def _reasons(
    device_flags: int, has_timestamp: bool, frame_rate: float | None, gpu: float | None, latency: float | None
) -> str:
    """Every reason a row fails, in the order the job has always listed them."""
    found = [reason for bit, reason in _DEVICE_REASONS if device_flags & bit]
    if not has_timestamp:
        found.append("unparsable timestamp")
    for name, value, high in (("frame_rate", frame_rate, FRAME_RATE_MAX), ("gpu_usage", gpu, 100)):
        if value is None or not math.isfinite(value):
            found.append(f"non-numeric {name}")
        elif not 0 <= value <= high:
            found.append(f"{name} outside 0..{high}")
    if latency is None or not math.isfinite(latency) or latency != round(latency):
        found.append("non-integer latency_ms")
    if latency is not None and math.isfinite(latency) and not 0 <= latency <= INT4_MAX:
        found.append(f"latency_ms outside 0..{INT4_MAX}")
    return "; ".join(found)


def _fast_number(values: pa.Array) -> pa.Array:
    return pc.cast(values, pa.float64())


def _pandas_numbers(texts: list[str | None]) -> list[float]:
    # Without an ASCII digit a string can only be nothing, NaN or infinity to pandas: not finite, so
    # "non-numeric" either way. Those skip pandas (a call costs about a millisecond).
    verdicts = dict.fromkeys((t for t in texts if t is None or not _DIGIT.search(t)), math.nan)
    others = [t for t in texts if t not in verdicts]
    if others:
        import pandas as pd  # here, not at module level: importing the job must not cost pandas' ~0.25 s

        text = pd.Series(others, dtype=object).str.strip()
        parsed = pd.to_numeric(text, errors="coerce").astype("float64")
        # pandas decides what is a number (as the job always did); the value is float()'s, correctly
        # rounded like Arrow's (pandas' parser can be an ulp off): a value never depends on its path.
        verdicts.update(zip(others, (_float(t, p) for t, p in zip(text, parsed, strict=True)), strict=True))
    return [verdicts[t] for t in texts]  # NaN: not finite, "non-numeric"


def _float(text: str, parsed: float) -> float:
    if math.isnan(parsed):
        return parsed
    try:
        return float(text)
    except ValueError:
        return parsed


def _timestamp_cast(values: pa.Array) -> Callable[[pa.Array], pa.Array]:
    # Arrow casts a time with an offset only to a zoned type, and one without only to a naive type (read
    # as UTC, as pandas does with utc=True; the view relabels without a pass). A file writes one form, so
    # its first value picks the cast; values in the other form are left to pandas.
    first = values[0].as_py() if len(values) and values[0].is_valid else ""
    if _OFFSET.search(first[10:]):
        return partial(pc.cast, target_type=_TIMESTAMP)
    return lambda piece: pc.cast(piece, _NAIVE).view(_TIMESTAMP)


def _pandas_timestamps(texts: list[str | None]) -> list[int | None]:
    # pandas' ISO 8601 parser wants digits, but for "now" and "today" (yes: the time of the run). Other
    # strings without an ASCII digit skip pandas (a call costs about a millisecond).
    verdicts: dict[str | None, int | None] = {
        t: None for t in texts if t is None or (not _DIGIT.search(t) and t.strip() not in ("now", "today"))
    }
    others = [t for t in texts if t not in verdicts]
    if others:
        import pandas as pd  # here, not at module level: importing the job must not cost pandas' ~0.25 s

        text = pd.Series(others, dtype=object).str.strip()
        # Times with and without an offset are parsed apart: pandas reads a time without offset that
        # follows one with an offset in the same call in that offset, not in UTC.
        zoned = text.map(lambda t: _OFFSET.search(t[10:]) is not None).astype(bool)
        parsed = pd.Series(pd.NaT, index=text.index, dtype="datetime64[ns, UTC]")
        for part in (text[zoned], text[~zoned]):
            if len(part):
                parsed[part.index] = pd.to_datetime(part, format="ISO8601", errors="coerce", utc=True)
        verdicts.update(zip(others, (None if pd.isna(t) else t.value for t in parsed), strict=True))
    return [verdicts[t] for t in texts]


class _Refused:
    """pandas' verdict on the strings Arrow refused for one kind of column, remembered.

    Bad values repeat ("N/A", "not-a-time"): the frequent ones are masked out before a column is cast
    (a failed cast costs a parse of its whole slice), and a pandas call costs about a millisecond. Only
    a pure function's results and counts: threads may share them, and results never depend on them.
    """

    def __init__(self, parse: Callable[[list[str | None]], list[Any]], type_: pa.DataType) -> None:
        self.parse, self.type = parse, type_
        self.memo: dict[str | None, Any] = {}
        self.seen: Counter[str | None] = Counter()
        self.whole = True  # whether the last column cast with no value refused (threads may race: a hint)

    def __call__(self, values: pa.Array) -> pa.Array:
        texts = values.to_pylist()
        known = {t: self.memo.get(t, self) for t in set(texts)}  # `self` marks "not known yet"
        unknown = [t for t, value in known.items() if value is self]
        if unknown:
            known.update(zip(unknown, self.parse(unknown), strict=True))
            if len(self.memo) > _REMEMBERED:
                self.memo.clear()
            self.memo.update((t, known[t]) for t in unknown)
        if len(self.seen) > _REMEMBERED:
            self.seen.clear()
        self.seen.update(texts)
        return pa.array([known[t] for t in texts], self.type)

    def frequent(self) -> list[str]:
        return [t for t, count in self.seen.most_common(4) if count > 1 and t is not None]


_REMEMBERED = 1 << 14
_NUMBERS = _Refused(_pandas_numbers, pa.float64())
_TIMESTAMPS = _Refused(_pandas_timestamps, _TIMESTAMP)


def _parse_column(values: pa.Array, fast: Callable[[pa.Array], pa.Array], refused: _Refused) -> pa.Array:
    """`fast(values)` (an Arrow cast) where it succeeds, `refused` (pandas: null/NaN if invalid) elsewhere.

    An Arrow cast fails whole, after parsing every value, and has no "null on failure" mode. So values
    refused often before are masked out first, and the column is cast whole if the last one was;
    otherwise in slices, and in a slice that fails, the value Arrow names is located and left out,
    and the rest cast again. pandas then judges the left-out values all at once: a bad value costs a
    couple of casts of one slice, not a pandas pass over the column.
    """
    column, masked = _mask(values, refused.frequent())
    pieces: list[pa.Array | tuple[int, int]] = []  # cast arrays, and (start, length) runs for pandas
    if refused.whole:  # the last column of this kind cast whole: try that first (one call, not hundreds)
        try:
            pieces.append(fast(column))
        except pa.ArrowInvalid:
            refused.whole = False
    if not pieces:
        for start in range(0, len(column), _SLICE):
            _cast_slice(column.slice(start, _SLICE), start, fast, pieces)
    runs = [piece for piece in pieces if isinstance(piece, tuple)]
    refused.whole = not runs
    if runs:
        judged = refused(pa.concat_arrays([column.slice(start, length) for start, length in runs]))
        used = 0
        for i, piece in enumerate(pieces):
            if isinstance(piece, tuple):
                pieces[i] = judged.slice(used, piece[1])
                used += piece[1]
    arrays = [piece for piece in pieces if not isinstance(piece, tuple)]
    result = arrays[0] if len(arrays) == 1 else pa.concat_arrays(arrays) if arrays else fast(column)
    if masked is not None:
        result = pc.replace_with_mask(result, masked, refused(values.filter(masked)))
    return result


def _mask(values: pa.Array, texts: list[str]) -> tuple[pa.Array, pa.Array | None]:
    """`values` with these texts turned null (the bitmap changes, the strings are not copied), and where."""
    masked = None
    for text in texts:
        hit = pc.fill_null(pc.equal(values, text), False)
        masked = hit if masked is None else pc.or_(masked, hit)
    if masked is None or not masked.true_count:
        return values, None
    if values.offset:
        values = pa.concat_arrays([values])
    valid = pc.and_not(pc.is_valid(values), masked)
    return pa.Array.from_buffers(values.type, len(values), [valid.buffers()[1], *values.buffers()[1:]]), masked


def _cast_slice(
    values: pa.Array, start: int, fast: Callable[[pa.Array], pa.Array], pieces: list[pa.Array | tuple[int, int]]
) -> None:
    for _ in range(_MAX_FAILURES):
        if not len(values):
            return
        try:
            pieces.append(fast(values))
            return
        except pa.ArrowInvalid as error:
            found = _FAILED_VALUE.search(str(error))
        # Its first occurrence fails (the same text parses the same way); values before it are retried,
        # in case Arrow named a later failure.
        index = pc.index(values, found.group(1)).as_py() if found else -1
        if index < 0:
            break  # Arrow did not name a value this slice holds
        if index:
            _cast_slice(values.slice(0, index), start, fast, pieces)
        pieces.append((start + index, 1))
        values, start = values.slice(index + 1), start + index + 1
    if len(values):
        pieces.append((start, len(values)))  # many failures, or unnamed ones: pandas takes the rest


# --- aggregation -------------------------------------------------------------------------------------


def partial_aggregate(valid: pa.Table) -> pa.Table:
    """Per-device sums, max and count for one block: mergeable with other blocks' partials."""
    devices = valid.column("device_id").combine_chunks()
    grouped = (
        pa.table(
            {
                "key": devices.indices,
                "frame_rate": valid.column("frame_rate"),
                "gpu_usage": valid.column("gpu_usage"),
                "latency_ms": valid.column("latency_ms"),
            }
        )
        .group_by("key", use_threads=False)
        .aggregate([("frame_rate", "sum"), ("gpu_usage", "sum"), ("latency_ms", "max"), ("latency_ms", "count")])
    )
    return pa.table(
        [
            devices.dictionary.take(grouped.column("key")),
            grouped.column("frame_rate_sum"),
            grouped.column("gpu_usage_sum"),
            grouped.column("latency_ms_max"),
            grouped.column("latency_ms_count"),
        ],
        schema=_PARTIAL_SCHEMA,
    )


def merge_partials(partials: Iterable[pa.Table]) -> pa.Table:
    tables = [p for p in partials if p.num_rows]
    if not tables:
        return _PARTIAL_SCHEMA.empty_table()
    merged = (
        pa.concat_tables(tables)
        .group_by("device_id", use_threads=False)
        .aggregate(
            [("sum_frame_rate", "sum"), ("sum_gpu_usage", "sum"), ("max_latency_ms", "max"), ("log_count", "sum")]
        )
    )
    return pa.table(
        [
            merged.column("device_id"),
            merged.column("sum_frame_rate_sum"),
            merged.column("sum_gpu_usage_sum"),
            merged.column("max_latency_ms_max"),
            merged.column("log_count_sum"),
        ],
        schema=_PARTIAL_SCHEMA,
    )


def finalize(partials: pa.Table) -> pa.Table:
    """The performance_summary rows, one per device, sorted by device_id: SUMMARY_COLUMNS, in that order.

    device_id string, the averages float64 (sum / count, one IEEE division as before), the rest int64.
    """
    count = partials.column("log_count")  # int64, like every column below (_PARTIAL_SCHEMA)
    divisor = count.cast(pa.float64())
    summary = pa.table(
        [
            partials.column("device_id"),
            pc.divide(partials.column("sum_frame_rate"), divisor),
            pc.divide(partials.column("sum_gpu_usage"), divisor),
            partials.column("max_latency_ms"),
            count,
        ],
        names=list(SUMMARY_COLUMNS),
    )
    # Arrow orders strings bytewise: for UTF-8 that is Python's str order (code points).
    return summary.take(pc.sort_indices(summary, sort_keys=[("device_id", "ascending")])).combine_chunks()
