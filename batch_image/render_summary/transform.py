"""Pure transforms: render-log CSV bytes -> validated rows + quarantined rows -> per-device summary.

Nothing here does I/O. Input arrives as an iterable of byte chunks (a local file's mapped blocks or a
streaming S3 body), taken as blocks of whole lines; each block is parsed, validated and aggregated on
its own (`parse_block`, safe to run on several threads at once), and per-device partial aggregates
are merged, so memory depends on the block size and the number of devices, never on the file size.

How a block is processed (the measurements behind each choice: docs/benchmarks.md):

- A local file is memory-mapped a block at a time (`storage.iter_chunks`): blocks are views of the
  OS's cached pages, never copied. The scans below copy a view a window at a time.
- Fields are split by Arrow's CSV parser (`pyarrow.csv.read_csv`, quoting off, every field a string),
  run serially per block so that the lines it hands to `invalid_row_handler` (wrong field count,
  blank) number every row's physical line; blocks are cut here and parsed several at a time (the
  caller's `mapper`: Arrow releases the GIL).
- Lines Arrow must not parse are found by single-byte searches, one 256 KiB window at a time: a quote
  character (Arrow would accept `"a"b` and cannot report an unterminated quote per row), a carriage
  return not before `\n` (Arrow would end the record there), invalid UTF-8. The Python line parser
  (`_parse_line`) handles those lines; Arrow sees them blanked.
- Values are Arrow casts; a cast that fails is narrowed down (`_parse_column`) and only the values
  Arrow refuses go to pandas (`pd.to_numeric`, `pd.to_datetime(format="ISO8601")` after strip), so
  what is valid is pandas' verdict, and the values Arrow accepts parse to the same numbers.
- Device ids are dictionary-encoded and each distinct id is checked once. The checks are numpy
  comparisons on the cast values, and rows are summed by dictionary index with numpy's `bincount`,
  the invalid ones into a spare group: nothing is filtered. A sum adds its values in row order, so
  sums are the same to the bit whatever the block size. Only tests look at the valid rows
  (`Batch.valid` filters them when asked).
- An empty line parses as a row of empty fields, like a line of bare commas: a byte count read off
  the columns' offsets tells them apart.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache, partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from job_runtime.errors import BadInputError

REQUIRED_COLUMNS = ("timestamp", "device_id", "frame_rate", "gpu_usage", "latency_ms")
SUMMARY_COLUMNS = ("device_id", "avg_frame_rate", "avg_gpu_usage", "max_latency_ms", "log_count")
QUARANTINE_COLUMNS = ("line_number", "reason", "raw_line")
DEVICE_ID_MAX_BYTES = 50  # performance_summary.device_id is VARCHAR(50); Redshift counts bytes
INT4_MAX = 2**31 - 1
# Beyond any real display, and small enough that sums over billions of rows stay finite.
FRAME_RATE_MAX = 10_000
# Bytes read, and so parsed, at a time: about 110,000 render-log rows. Large enough that per-block
# overheads vanish, small enough that a few blocks in flight stay far below the job's memory.
DEFAULT_BATCH_BYTES = 8 * 1024 * 1024

BLANK = " \t\n\r\x0b\x0c"  # what bytes.strip() removes: a line of only these is blank, skipped and not a row
_BAD_DEVICE_CHARACTER = re.compile(r"[\\\x00-\x1f\x7f]")
_DEVICE_REASONS = (  # bit -> reason, in the order reasons are listed
    (1, "empty device_id"),
    (2, "device_id longer than 50 bytes"),
    (4, "device_id contains a backslash or control character"),
)
_WINDOW = 1 << 18  # bytes of a block searched for every rare byte before the next: fits a core's cache
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
# A block: a view of a memory-mapped local file (not copied), a streamed body's bytearray, bytes (tests).
Data = bytes | bytearray | memoryview


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
    rejected: list[Rejected]  # sorted by line_number; numbers count from the block's first line (1)
    partial: pa.Table  # the valid rows' per-device sums, max and count (partial_aggregate)
    typed: pa.Table  # every parsed row, typed as `valid` but for latency_ms (float64)
    invalid: np.ndarray = field(compare=False)  # indices in `typed` of rows failing the checks (and empty lines)

    @cached_property
    def valid(self) -> pa.Table:
        """timestamp[ns, UTC], device_id dictionary<string>, frame_rate, gpu_usage, latency_ms int64.

        Built when asked for (tests): the job needs only the partial aggregate.
        """
        table = self.typed
        if len(self.invalid):
            keep = np.ones(table.num_rows, dtype=bool)
            keep[self.invalid] = False
            table = table.filter(keep)
        return table.set_column(4, "latency_ms", table.column("latency_ms").cast(pa.int64()))


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


def parse_header(line: bytes | bytearray) -> list[str]:
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
    pending: list[Data] = []  # the start of a line that has not ended yet
    for chunk in chunks:
        if not pending and chunk[-1:] == b"\n":
            yield chunk
            continue
        if isinstance(chunk, memoryview):
            chunk = chunk.tobytes()  # searched below: a rare case (a line longer than a chunk, the last line)
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
        text = block.tobytes() if isinstance(block, memoryview) else block  # searched: the first block only
        start = 0
        while start < len(text):
            end = text.find(b"\n", start) + 1 or len(text)
            line_number += 1
            if text[start:end].strip():
                header = parse_header(text[start:end])
                rest = [block[end:]] if end < len(block) else []
                return header, line_number + 1, itertools.chain(rest, blocks)
            start = end
    return [], line_number + 1, iter(())


def _numbered(batches: Iterable[Batch], first_line: int) -> Iterator[Batch]:
    line = first_line
    for batch in batches:
        offset = line - 1
        rejected = [(number + offset, reason, raw) for number, reason, raw in batch.rejected]
        yield replace(batch, rejected=rejected)
        line += batch.lines


# --- one block ---------------------------------------------------------------------------------------


def parse_block(block: Data, layout: Layout) -> Batch:
    """Parse, validate and aggregate one block of whole lines (line numbers relative to the block)."""
    rejected: list[Rejected] = []
    python_rows: list[tuple[int, str, list[str]]] = []  # (line, raw text, fields) of lines parsed by csv
    special_rows = 0
    quotes, returns, wide = _rare_bytes(block)
    special = _special_lines(block, quotes, returns, wide) if quotes or returns or wide else []
    buffer: Data = block
    if special:
        buffer = bytearray(block)
        for number, (start, end) in zip(_line_numbers(buffer, [s for s, _ in special]), special, strict=True):
            outcome = _parse_line(buffer[start:end], layout.width)
            # Arrow sees spaces instead: a blank line, which its handler below skips, so the numbering holds.
            buffer[start:end] = b" " * (end - start)
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
            pa.concat_arrays([column, pa.array([row[2][i] for row in python_rows], pa.string())])
            for i, column in enumerate(columns)
        ]
    typed, bad, reasons, partial = validate(*(columns[i] for i in layout.positions))

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
    blank_rows = _empty_lines(block, buffer, returns, arrow_columns, skipped, maybe_empty)
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
        rejected=rejected,
        partial=partial,
        typed=typed,
        invalid=bad,
    )


def _rare_bytes(block: Data) -> tuple[bool, bool, bool]:
    """Whether the block holds a quote character, a carriage return, a byte that is not ASCII.

    Single-byte scans of a copy of one window at a time, which all three read from the core's cache
    (and which has bytes' methods, as a view of a mapped file has not).
    """
    quotes = returns = wide = False
    view = memoryview(block)
    for start in range(0, len(view), _WINDOW):
        window = view[start : start + _WINDOW].tobytes()
        quotes = quotes or b'"' in window
        returns = returns or b"\r" in window
        wide = wide or not window.isascii()
    return quotes, returns, wide


def _special_lines(block: Data, quotes: bool, returns: bool, wide: bool) -> list[tuple[int, int]]:
    """Byte ranges [start, end) of the lines Arrow must not parse (end: the line's b"\n" or the block's end).

    Only the kinds of byte `_rare_bytes` found are looked for.
    """
    lone: list[int] = []  # carriage returns not before b"\n": Arrow would end the record there
    if returns:
        data = np.frombuffer(block, np.uint8)
        found_returns = np.flatnonzero(data == 13)
        following = data[np.minimum(found_returns + 1, len(data) - 1)]
        lone = found_returns[(found_returns + 1 == len(data)) | (following != 10)].tolist()
    invalid = wide and not _valid_utf8(block)
    if not (quotes or lone or invalid):
        return []
    text = block.tobytes() if isinstance(block, memoryview) else block  # searched with bytes' methods
    found: dict[int, int] = {}

    def add(position: int) -> int:
        start = text.rfind(b"\n", 0, position) + 1
        end = text.find(b"\n", position)
        found[start] = len(text) if end < 0 else end
        return found[start]

    position = text.find(b'"') if quotes else -1
    while position >= 0:
        position = text.find(b'"', add(position))
    for position in lone:
        add(position)
    if invalid:
        position = 0
        while position < len(text):
            try:
                codecs.utf_8_decode(memoryview(text)[position:], "strict", True)
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


def _line_numbers(block: bytes | bytearray, starts: list[int]) -> list[int]:
    """1-based line number of each (sorted) byte offset that starts a line."""
    numbers, line, previous = [], 1, 0
    for start in starts:
        line += block.count(b"\n", previous, start)
        numbers.append(line)
        previous = start
    return numbers


def _parse_line(raw: bytes | bytearray, width: int) -> tuple[str, list[str] | str] | None:
    """The Python line parser: None for a blank line, else (text, fields) or (text, reason)."""
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
    """Arrow's serial CSV parse, quoting off, every field as a string (not checked: see `_special_lines`).

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
        # Every line that is not valid UTF-8 is blanked before the parse, so Arrow need not check.
        convert_options=pv.ConvertOptions(
            column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True, null_values=[""], check_utf8=False
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
    return [",".join(value or "" for value in values) for values in zip(*picked, strict=True)]


def _empty_lines(
    block: Data,
    buffer: Data,
    returns: bool,
    columns: list[pa.Array],
    skipped: list[tuple[int, int, str]],
    numbers: list[int],
) -> set[int]:
    """Which of these rows of empty fields are empty lines (1 byte) rather than bare commas (`width` bytes).

    Every byte Arrow read is a field, a separator or line end (`width` per row), a carriage return it
    dropped before b"\n", or part of a line it skipped: the bytes missing from that count say how many
    of these rows are empty lines. All or none settles it without a scan of the block. A column's
    bytes are read off its offsets (a null is an empty field: no bytes), not summed value by value.
    """
    if not numbers:
        return set()
    width = len(columns)
    size = len(buffer) + (buffer[-1:] != b"\n") - (_count(buffer, 13) if returns else 0)
    counted = sum(_value_bytes(column) for column in columns)
    counted += len(columns[0]) * width + sum(len(text.encode()) + 1 for _, _, text in skipped)
    empty, remainder = divmod(counted - size, width - 1)
    if remainder == 0 and empty in (0, len(numbers)):
        return set(numbers) if empty else set()
    return _blank_lines(block, numbers)


def _count(block: Data, byte: int) -> int:
    return int(np.count_nonzero(np.frombuffer(block, np.uint8) == byte))


def _value_bytes(column: pa.Array) -> int:
    """The bytes of a binary or string array's values, from its first and last offsets."""
    if not len(column):
        return 0
    offsets = np.frombuffer(column.buffers()[1], np.int32)
    return int(offsets[column.offset + len(column)] - offsets[column.offset])


def _blank_lines(block: Data, numbers: list[int]) -> set[int]:
    """Which of these 1-based line numbers hold a blank line (one scan of the block)."""
    ends = np.flatnonzero(np.frombuffer(block, np.uint8) == 10)
    starts = np.concatenate(([0], ends + 1))
    blank = set()
    for number in numbers:
        start = int(starts[number - 1])
        end = int(ends[number - 1]) if number - 1 < len(ends) else len(block)
        if not bytes(block[start:end]).strip():
            blank.add(number)
    return blank


# --- validation --------------------------------------------------------------------------------------


def validate(
    timestamp: pa.Array, device_id: pa.Array, frame_rate: pa.Array, gpu_usage: pa.Array, latency_ms: pa.Array
) -> tuple[pa.Table, np.ndarray, list[str], pa.Table]:
    """Check the fields of parsed rows (string arrays), and aggregate the valid ones.

    Returns the rows, typed (timestamp[ns, UTC], a time without offset read as UTC; device_id trimmed,
    dictionary-encoded; frame_rate, gpu_usage, latency_ms float64), the indices of the invalid rows
    (ascending) and, for each, every reason that applies, joined by "; ", and the valid rows'
    per-device partial aggregate. Nothing is filtered: only tests look at the valid rows (`Batch.valid`).
    """
    device_flags, codes, devices, keys = _devices(device_id)
    ts = _parse_column(timestamp, _timestamp_cast(timestamp), _TIMESTAMPS)
    frame = _parse_column(frame_rate, _fast_number, _NUMBERS)
    gpu = _parse_column(gpu_usage, _fast_number, _NUMBERS)
    latency = _parse_column(latency_ms, _fast_number, _NUMBERS)

    # One vectorised test per row, in numpy (a missing number is NaN there, and NaN fails every
    # comparison); the reasons are worked out, in Python, for the few rows that fail it.
    f, g, n = (column.to_numpy(zero_copy_only=False) for column in (frame, gpu, latency))
    ok = (f >= 0) & (f <= FRAME_RATE_MAX) & (g >= 0) & (g <= 100) & (n >= 0) & (n <= INT4_MAX) & (n == np.round(n))
    has_timestamp = ts.is_valid().to_numpy(zero_copy_only=False) if ts.null_count else None
    if has_timestamp is not None:
        ok &= has_timestamp
    ok &= np.take(device_flags == 0, codes)  # (np.take: several times faster than indexing)
    bad_rows = np.flatnonzero(~ok)
    reasons = []
    if len(bad_rows):
        found = zip(
            device_flags[codes[bad_rows]].tolist(),
            # The timestamp's validity only: a value would need pandas to convert (nanoseconds).
            has_timestamp[bad_rows].tolist() if has_timestamp is not None else [True] * len(bad_rows),
            f[bad_rows].tolist(),
            g[bad_rows].tolist(),
            n[bad_rows].tolist(),
            strict=True,
        )
        reasons = [_reasons(*row) for row in found]

    columns = {"timestamp": ts, "device_id": devices, "frame_rate": frame, "gpu_usage": gpu, "latency_ms": latency}
    return pa.table(columns), bad_rows, reasons, partial_aggregate(devices.dictionary, keys, ok, f, g, n)


def _devices(raw: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.DictionaryArray, np.ndarray]:
    """The problem bits of each distinct id, each row's code (its index there), the trimmed ids,
    dictionary-encoded, and each row's index into that dictionary.

    A missing id is the code (and index) one past the end, with problem bit 1 ("empty device_id").

    Render logs carry few distinct devices, so each distinct value is checked once (and remembered
    across blocks), in Python, with the line rules.
    """
    encoded = pc.dictionary_encode(raw)
    names: dict[str, int] = {}
    flags, remap = [], []
    for value in encoded.dictionary.to_pylist():
        device, problems = _check_device(value)
        flags.append(problems)
        remap.append(names.setdefault(device, len(names)))
    indices = encoded.indices
    codes = (indices.fill_null(len(flags)) if indices.null_count else indices).to_numpy()
    keys = codes
    if len(names) < len(remap):  # ids equal once trimmed share one dictionary entry
        indices = pa.array(remap, pa.int32()).take(indices)
        keys = np.take(np.array([*remap, len(names)], np.int32), codes)
    devices = pa.DictionaryArray.from_arrays(indices, pa.array(list(names), pa.string()), safe=False)
    return np.array([*flags, 1], np.uint8), codes, devices, keys


@lru_cache(maxsize=1 << 16)
def _check_device(value: str) -> tuple[str, int]:
    """(the id trimmed as str.strip trims, its problem bits: see _DEVICE_REASONS)."""
    device = value.strip()
    problems = (
        (not device) * 1
        + (len(device.encode("utf-8")) > DEVICE_ID_MAX_BYTES) * 2
        + (_BAD_DEVICE_CHARACTER.search(device) is not None) * 4
    )
    return device, problems


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
    values: pa.Array,
    start: int,
    fast: Callable[[pa.Array], pa.Array],
    pieces: list[pa.Array | tuple[int, int]],
    failures: list[int] | None = None,
) -> None:
    # `failures`: the failed casts this slice may still spend, shared with the calls on its prefixes, so
    # a slice of many distinct bad values costs at most _MAX_FAILURES casts (and as many levels of calls).
    failures = [_MAX_FAILURES] if failures is None else failures
    while len(values) and failures[0] > 0:
        try:
            pieces.append(fast(values))
            return
        except pa.ArrowInvalid as error:
            found = _FAILED_VALUE.search(str(error))
        failures[0] -= 1
        # Its first occurrence fails (the same text parses the same way); values before it are retried,
        # in case Arrow named a later failure.
        index = pc.index(values, found.group(1)).as_py() if found else -1
        if index < 0:
            break  # Arrow did not name a value this slice holds
        if index:
            _cast_slice(values.slice(0, index), start, fast, pieces, failures)
        pieces.append((start + index, 1))
        values, start = values.slice(index + 1), start + index + 1
    if len(values):
        pieces.append((start, len(values)))  # many failures, or unnamed ones: pandas takes the rest


# --- aggregation -------------------------------------------------------------------------------------


def partial_aggregate(
    names: pa.Array, keys: np.ndarray, ok: np.ndarray, frame: np.ndarray, gpu: np.ndarray, latency: np.ndarray
) -> pa.Table:
    """Per-device sums, max and count of one block's rows where `ok` (`keys` index `names`): mergeable.

    In numpy, by device index: the rows not ok fall in a spare group, dropped, so nothing is filtered.
    A sum adds its values one by one in row order, as Arrow's grouped sum did: the same sums to the bit.
    """
    spare = len(names)
    groups = np.where(ok, keys, spare).astype(np.intp)  # the index type numpy wants: cast once, not per call
    count = np.bincount(groups, minlength=spare + 1)[:spare]
    frame_sum = np.bincount(groups, frame, spare + 1)[:spare]
    gpu_sum = np.bincount(groups, gpu, spare + 1)[:spare]
    latency_max = np.full(spare + 1, -np.inf)
    with np.errstate(invalid="ignore"):  # NaN, a missing value, only in the spare group
        np.maximum.at(latency_max, groups, latency)
    present = np.flatnonzero(count)
    return pa.table(
        [
            names.take(present),
            frame_sum[present],
            gpu_sum[present],
            latency_max[present].astype(np.int64),
            count[present],
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
