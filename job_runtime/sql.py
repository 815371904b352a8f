"""SQL text that Redshift and PostgreSQL read alike: quoting, and the statements of an idempotent load.

A load is CREATE TABLE IF NOT EXISTS (run first, in its own transaction: see
warehouse.split_setup), then one transaction: LOCK <target(s)>; CREATE TEMP TABLE <stage> (LIKE <target>); fill
the stage (COPY from S3 on Redshift, COPY FROM STDIN on PostgreSQL, or INSERTs); optionally DELETE the
target rows of the reloaded sources that the stage no longer has (Redshift's MERGE has no WHEN NOT
MATCHED BY SOURCE); MERGE the stage into the target on its key; DROP the stage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from job_runtime.errors import BadInputError

# Redshift's limit is 127 bytes; PostgreSQL truncates names beyond 63 bytes.
MAX_IDENTIFIER_BYTES = 127
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
STAGE_SUFFIX = "_stage"
IAM_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$")


def identifier(
    name: str, what: str, *, max_bytes: int = MAX_IDENTIFIER_BYTES, error: type[Exception] = BadInputError
) -> str:
    """`name` if it is a plain lower-case SQL identifier of at most `max_bytes`; else raises `error`."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name) or len(name) > max_bytes:
        raise error(f"{what} {name!r} is not a plain lower-case SQL identifier")
    return name


def literal(value: object, *, error: type[Exception] = BadInputError) -> str:
    """A SQL literal both dialects read the same way: numbers as written; strings quoted with quotes
    doubled, refusing backslashes and control characters (the two disagree on backslashes)."""
    if isinstance(value, str):
        if "\\" in value or any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise error(f"refusing to embed a string with a backslash or control character in SQL: {value!r}")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, float):
        return repr(value)
    return str(int(value))  # type: ignore[call-overload]


def stage_name(table: str) -> str:
    """The temporary stage table of a load into `table`."""
    return table + STAGE_SUFFIX


def create_table(
    target: str, definitions: Sequence[str], primary_key: Sequence[str], constraints: Sequence[str] = ()
) -> str:
    """`definitions` are the columns; `constraints` (e.g. foreign keys) follow the primary key."""
    parts = [*definitions, f"PRIMARY KEY ({', '.join(primary_key)})", *constraints]
    return f"CREATE TABLE IF NOT EXISTS {target} ({', '.join(parts)})"


def lock(*tables: str) -> str:
    """`LOCK a, b`: the first statement of a load's transaction, so loads into one table queue instead of
    Redshift aborting all but one of them on a serializable-isolation conflict ("Serializable isolation"
    and "LOCK" in the Redshift Database Developer Guide). Every load names its tables in the same
    order, as those pages advise against deadlocks. PostgreSQL takes the same ACCESS EXCLUSIVE lock."""
    if not tables:
        raise ValueError("LOCK needs at least one table")
    return f"LOCK {', '.join(tables)}"


def create_stage(stage: str, target: str) -> str:
    return f"CREATE TEMP TABLE {stage} (LIKE {target})"


def copy_from_s3(stage: str, uri: str, iam_role: str) -> str:
    """Redshift: fill the stage from the Parquet under `uri` (a Parquet COPY maps columns by position)."""
    return f"COPY {stage} FROM {literal(uri)} IAM_ROLE {literal(iam_role)} FORMAT AS PARQUET"


def copy_from_stdin(stage: str, columns: Sequence[str]) -> str:
    """PostgreSQL: fill the stage from rows the client sends (see warehouse.run_postgres_transaction)."""
    return f"COPY {stage} ({', '.join(columns)}) FROM STDIN"


def delete_vanished(target: str, stage: str, source_column: str, sources: Sequence[str], key: str) -> str:
    """Delete the target's rows of these sources whose key the stage no longer has (a corrected source
    dropped them): Redshift's MERGE has no WHEN NOT MATCHED BY SOURCE."""
    if len(sources) == 1:
        of_sources = f"{source_column} = {literal(sources[0])}"
    else:
        of_sources = f"{source_column} IN ({', '.join(literal(s) for s in sources)})"
    return f"DELETE FROM {target} WHERE {of_sources} AND {key} NOT IN (SELECT {key} FROM {stage})"


def merge(target: str, stage: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """Upsert the stage into the target on `key`. UPDATE SET names bare target columns (neither Redshift
    nor PostgreSQL accepts qualified ones there)."""
    on = " AND ".join(f"{target}.{k} = s.{k}" for k in key)
    updates = ", ".join(f"{c} = s.{c}" for c in columns if c not in key)
    return (
        f"MERGE INTO {target} USING {stage} s ON {on} WHEN MATCHED THEN UPDATE SET {updates} "
        f"WHEN NOT MATCHED THEN INSERT ({', '.join(columns)}) VALUES ({', '.join(f's.{c}' for c in columns)})"
    )


def drop(stage: str) -> str:
    return f"DROP TABLE {stage}"
