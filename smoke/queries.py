"""SQL where users see the data: Redshift through the Data API, the lake through Athena.

Both APIs are asynchronous: start, poll until done (bounded), then page through the rows. Values come
back as Python values (Data API fields) or strings (Athena, which returns text), None for NULL.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from job_runtime.warehouse import WarehouseError, wait_for_statement

QUERY_POLL_SECONDS = 2.0


class Clock(Protocol):
    def now(self) -> float: ...  # seconds, monotonic
    def wall(self) -> datetime: ...  # aware UTC time, to compare with AWS timestamps
    def sleep(self, seconds: float) -> None: ...


class RealClock:
    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class QueryError(Exception):
    """A statement failed, was aborted or did not finish in time."""


@dataclass(frozen=True)
class Warehouse:
    """Redshift Serverless through the Data API, signed in with the namespace's admin secret (the CI
    identity is not a database user with grants on the pipelines' tables)."""

    client: Any
    clock: Clock
    workgroup: str
    database: str
    secret_arn: str
    timeout_seconds: float = 300

    def query(self, sql: str, parameters: Mapping[str, str] | None = None) -> list[tuple[Any, ...]]:
        request: dict[str, Any] = {
            "WorkgroupName": self.workgroup,
            "Database": self.database,
            "SecretArn": self.secret_arn,
            "Sql": sql,
        }
        if parameters:
            request["Parameters"] = [{"name": k, "value": v} for k, v in parameters.items()]
        statement_id = self.client.execute_statement(**request)["Id"]
        try:
            described = wait_for_statement(
                self.client,
                statement_id,
                poll_seconds=QUERY_POLL_SECONDS,
                timeout_seconds=self.timeout_seconds,
                cancel_on_timeout=False,
                now=self.clock.now,
                sleep=self.clock.sleep,
            )
        except WarehouseError as exc:
            if exc.timed_out:
                raise QueryError(f"Data API statement still {exc.status} after {self.timeout_seconds:.0f} s") from exc
            raise QueryError(f"Data API statement {exc.status}: {exc.error or 'no error given'}") from exc
        if not described.get("HasResultSet"):
            return []
        rows: list[tuple[Any, ...]] = []
        page: dict[str, Any] = {"Id": statement_id}
        while True:
            result = self.client.get_statement_result(**page)
            rows.extend(tuple(_field(f) for f in record) for record in result["Records"])
            if not result.get("NextToken"):
                return rows
            page["NextToken"] = result["NextToken"]


def _field(field: Mapping[str, Any]) -> Any:
    if field.get("isNull"):
        return None
    for kind in ("longValue", "doubleValue", "stringValue", "booleanValue", "blobValue"):
        if kind in field:
            return field[kind]
    raise QueryError(f"unexpected Data API field {dict(field)!r}")


@dataclass(frozen=True)
class Athena:
    """Athena in the estate's workgroup (which sets where results go and how they are encrypted)."""

    client: Any
    clock: Clock
    workgroup: str
    database: str
    timeout_seconds: float = 300

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        query_id = self.client.start_query_execution(
            QueryString=sql, QueryExecutionContext={"Database": self.database}, WorkGroup=self.workgroup
        )["QueryExecutionId"]
        deadline = self.clock.now() + self.timeout_seconds
        while True:
            execution = self.client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]
            state = execution["Status"]["State"]
            if state == "SUCCEEDED":
                break
            if state in ("FAILED", "CANCELLED"):
                reason = execution["Status"].get("StateChangeReason", "no reason given")
                raise QueryError(f"Athena query {state}: {reason}")
            if self.clock.now() >= deadline:
                raise QueryError(f"Athena query still {state} after {self.timeout_seconds:.0f} s")
            self.clock.sleep(QUERY_POLL_SECONDS)
        # A SELECT's first row holds the column names; DDL returns no rows worth reading.
        if execution.get("StatementType") != "DML":
            return []
        rows: list[tuple[str | None, ...]] = []
        page: dict[str, Any] = {"QueryExecutionId": query_id}
        first = True
        while True:
            result = self.client.get_query_results(**page)
            for row in result["ResultSet"]["Rows"][1 if first else 0 :]:
                rows.append(tuple(cell.get("VarCharValue") for cell in row["Data"]))
            first = False
            if not result.get("NextToken"):
                return rows
            page["NextToken"] = result["NextToken"]
