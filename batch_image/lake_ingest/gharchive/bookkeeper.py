"""The job's state in DynamoDB: the jobs item (baseline, bookmark and lease) and one job_run_details row per run.

Every write is conditional, so two concurrent runs never store the same hour twice (see the package
docstring).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from job_runtime.errors import EXIT_OK, JobError, classify_aws_error
from lake_ingest.gharchive.hours import JOB, iso

SUCCEEDED, FAILED, RUNNING = "SUCCEEDED", "FAILED", "RUNNING"

# Placeholders of the jobs item's lease attributes (DynamoDB rejects names an expression does not use,
# so `#bookmark` is added only where the expression reads it).
_LEASE_NAMES = {
    "#owner": "lease_owner",
    "#lease_hour": "lease_hour",
    "#expires": "lease_expires",
    "#updated": "updated_at",
}


class LeaseConflict(Exception):
    """Another run owns the hour or moved the bookmark: this run stops cleanly."""


@dataclass
class RunResult:
    run_id: str | None
    started_at: str
    status: str = RUNNING
    hours: list[str] = field(default_factory=list)
    bytes: int = 0
    bookmark: str | None = None
    stopped_reason: str | None = None
    error: str | None = None
    exit_code: int = EXIT_OK
    finished_at: str | None = None

    def fail(self, exc: JobError, hour_text: str | None) -> None:
        self.status, self.error, self.exit_code = FAILED, str(exc), exc.exit_code
        self.stopped_reason = f"failed on hour {hour_text}" if hour_text else "failed"

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job": JOB,
            "run_id": self.run_id,
            "status": self.status,
            "hours_fetched": len(self.hours),
            "bytes": self.bytes,
            "first_hour": self.hours[0] if self.hours else None,
            "last_hour": self.hours[-1] if self.hours else None,
            "bookmark": self.bookmark,
            "stopped_reason": self.stopped_reason,
        }
        if self.error is not None:
            out["error"] = self.error
        return out


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: int) -> dict[str, str]:
    return {"N": str(value)}


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, typed in item.items():
        (kind, value), *_ = typed.items()
        out[name] = int(value) if kind == "N" else value
    return out


class Bookkeeper:
    """The jobs item (bookmark + lease) and this run's job_run_details row; every write is conditional."""

    def __init__(
        self,
        client: Any,
        jobs_table: str,
        runs_table: str,
        job_name: str,
        run_id: str,
        lease_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.jobs_table, self.runs_table = jobs_table, runs_table
        self.job_name, self.run_id = job_name, run_id
        self.lease_seconds = lease_seconds
        self.clock = clock

    def _call(self, action: str, method: str, conditional: bool = False, **kwargs: Any) -> Any:
        """Calls the client; AWS failures become JobError/TransientError, except a failed condition when
        `conditional` (the caller decides what losing the condition means)."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, method)(**kwargs)
        except ClientError as exc:
            if conditional and self._condition_failed(exc):
                raise
            raise classify_aws_error(exc, action) from exc
        except BotoCoreError as exc:
            raise classify_aws_error(exc, action) from exc

    @staticmethod
    def _condition_failed(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return (
            isinstance(exc, ClientError)
            and exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"
        )

    def read_item(self) -> dict[str, Any]:
        response = self._call(
            f"reading {self.job_name!r} from {self.jobs_table}",
            "get_item",
            TableName=self.jobs_table,
            Key={"job_name": _s(self.job_name)},
            ConsistentRead=True,
        )
        return _plain(response.get("Item", {}))

    def _update_job_item(
        self, action: str, update: str, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> bool:
        """One conditional update of the jobs item; False when its condition did not hold."""
        try:
            self._call(
                action,
                "update_item",
                conditional=True,
                TableName=self.jobs_table,
                Key={"job_name": _s(self.job_name)},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
            )
        except Exception as exc:
            if not self._condition_failed(exc):
                raise
            return False
        return True

    @staticmethod
    def _bookmark_condition(expected: str | None, values: dict[str, Any]) -> str:
        if expected is None:
            return "attribute_not_exists(#bookmark)"
        values[":expected"] = _s(expected)
        return "#bookmark = :expected"

    def claim(self, hour_text: str, expected_bookmark: str | None) -> None:
        now = self.clock()
        values: dict[str, Any] = {
            ":run": _s(self.run_id),
            ":hour": _s(hour_text),
            ":expires": _n(int(now) + self.lease_seconds),
            ":now": _n(int(now)),
            ":at": _s(iso(datetime.fromtimestamp(now, UTC))),
        }
        condition = (
            f"({self._bookmark_condition(expected_bookmark, values)}) "
            "AND (attribute_not_exists(#owner) OR #expires < :now)"
        )
        claimed = self._update_job_item(
            f"claiming hour {hour_text} in {self.jobs_table}",
            "SET #owner = :run, #lease_hour = :hour, #expires = :expires, #updated = :at",
            condition,
            {"#bookmark": "bookmark", **_LEASE_NAMES},
            values,
        )
        if not claimed:
            raise LeaseConflict(self._conflict_reason(hour_text, expected_bookmark))

    def _conflict_reason(self, hour_text: str, expected_bookmark: str | None) -> str:
        item = self.read_item()
        owner, expires = item.get("lease_owner"), item.get("lease_expires")
        if owner and owner != self.run_id and expires is not None and expires >= int(self.clock()):
            until = iso(datetime.fromtimestamp(expires, UTC))
            return f"another run holds the lease on hour {item.get('lease_hour')} (run {owner}, until {until})"
        if item.get("bookmark") != expected_bookmark:
            return f"another run moved the bookmark to {item.get('bookmark')} before hour {hour_text} was claimed"
        return f"another run claimed hour {hour_text} first"

    def seed_baseline(self, baseline_day: str) -> str:
        """The item's `baseline_day`: written as `baseline_day` only when the item has none (the first
        run, or an item from before baselines were kept), so an operator's edit always wins."""
        seeded = self._update_job_item(
            f"seeding the baseline {baseline_day} in {self.jobs_table}",
            "SET #baseline = :day",
            "attribute_not_exists(#baseline)",
            {"#baseline": "baseline_day"},
            {":day": _s(baseline_day)},
        )
        if seeded:
            return baseline_day
        stored = self.read_item().get("baseline_day")
        if not isinstance(stored, str):  # removed again between the two calls: a person is editing the item
            raise JobError(f"job {self.job_name!r} in {self.jobs_table}: baseline_day changed while this run read it")
        return stored

    def advance(self, hour_text: str, expected_bookmark: str | None, baseline_day: str) -> None:
        """Moves the bookmark to `hour_text` (counted from `baseline_day`) and drops this run's lease."""
        values: dict[str, Any] = {
            ":run": _s(self.run_id),
            ":hour": _s(hour_text),
            ":baseline": _s(baseline_day),
            ":at": _s(iso(datetime.fromtimestamp(self.clock(), UTC))),
        }
        condition = f"#owner = :run AND ({self._bookmark_condition(expected_bookmark, values)})"
        advanced = self._update_job_item(
            f"advancing the bookmark to {hour_text} in {self.jobs_table}",
            "SET #bookmark = :hour, #from = :baseline, #updated = :at REMOVE #owner, #lease_hour, #expires",
            condition,
            {"#bookmark": "bookmark", "#from": "bookmark_baseline", **_LEASE_NAMES},
            values,
        )
        if not advanced:
            raise JobError(
                f"hour {hour_text}: lost the lease before advancing the bookmark (another run took it over "
                f"after --lease-seconds {self.lease_seconds}; the stored object is identical and the bookmark "
                "was left to that run)"
            )

    def release(self) -> bool:
        """Drop this run's lease without touching the bookmark. False when the lease was not ours anymore."""
        return self._update_job_item(
            f"releasing the lease in {self.jobs_table}",
            "SET #updated = :at REMOVE #owner, #lease_hour, #expires",
            "#owner = :run",
            _LEASE_NAMES,
            {":run": _s(self.run_id), ":at": _s(iso(datetime.fromtimestamp(self.clock(), UTC)))},
        )

    def start_run(self, started_at: str) -> None:
        self._call(
            f"recording run {self.run_id} in {self.runs_table}",
            "put_item",
            TableName=self.runs_table,
            Item={
                "job_name": _s(self.job_name),
                "run_id": _s(self.run_id),
                "status": _s(RUNNING),
                "started_at": _s(started_at),
                "hours_fetched": {"L": []},
                "hours_count": _n(0),
                "bytes": _n(0),
            },
            ConditionExpression="attribute_not_exists(run_id)",
        )

    def record_progress(self, hours: list[str], total_bytes: int) -> None:
        self._call(
            f"recording progress of run {self.run_id} in {self.runs_table}",
            "update_item",
            TableName=self.runs_table,
            Key={"job_name": _s(self.job_name), "run_id": _s(self.run_id)},
            UpdateExpression="SET #hours = :hours, #count = :count, #bytes = :bytes",
            ExpressionAttributeNames={"#hours": "hours_fetched", "#count": "hours_count", "#bytes": "bytes"},
            ExpressionAttributeValues={
                ":hours": {"L": [_s(h) for h in hours]},
                ":count": _n(len(hours)),
                ":bytes": _n(total_bytes),
            },
        )

    def finish_run(self, result: RunResult) -> None:
        item: dict[str, Any] = {
            "job_name": _s(self.job_name),
            "run_id": _s(self.run_id),
            "status": _s(result.status),
            "started_at": _s(result.started_at),
            "finished_at": _s(result.finished_at or result.started_at),
            "hours_fetched": {"L": [_s(h) for h in result.hours]},
            "hours_count": _n(len(result.hours)),
            "bytes": _n(result.bytes),
        }
        if result.stopped_reason is not None:
            item["stopped_reason"] = _s(result.stopped_reason)
        if result.error is not None:
            item["error"] = _s(result.error)
        self._call(
            f"recording the end of run {self.run_id} in {self.runs_table}",
            "put_item",
            TableName=self.runs_table,
            Item=item,
        )
