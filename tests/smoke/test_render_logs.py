"""The render-log smoke run: uploads land under `<prefix>smoke/`, each upload's execution is found by its
S3 event, waited for with progress lines, then performance_summary and the quarantine are checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from smoke import samples
from tests.smoke.support import (
    MACHINE,
    PROCESSED,
    RAW,
    RUN_NAME,
    Aws,
    described,
    history,
    keys,
    listed,
    put,
    run,
    s3_event,
    stub_statement,
)

RENDER_MACHINE = f"{MACHINE}render-logs-flow"
GOOD_KEY = "render-logs/smoke/render_logs.csv"
BAD_KEY = "render-logs/smoke/render_logs_with_errors.csv"
SQL = (
    "SELECT device_id, log_count, max_latency_ms, sum_frame_rate / log_count, sum_gpu_usage / log_count "
    "FROM public.performance_summary_by_file WHERE source_uri = :source_uri ORDER BY device_id"
)
TOTALS_SQL = (
    "SELECT t.device_id, t.log_count, t.max_latency_ms, t.avg_frame_rate, t.avg_gpu_usage, "
    "f.log_count, f.max_latency_ms, f.avg_frame_rate, f.avg_gpu_usage "
    "FROM public.performance_summary t JOIN (SELECT device_id, SUM(log_count) AS log_count, "
    "MAX(max_latency_ms) AS max_latency_ms, SUM(sum_frame_rate) / SUM(log_count) AS avg_frame_rate, "
    "SUM(sum_gpu_usage) / SUM(log_count) AS avg_gpu_usage FROM public.performance_summary_by_file "
    "GROUP BY device_id) f ON f.device_id = t.device_id "
    "WHERE t.device_id IN ('iac-vx1', 'iac-vx2', 'iac-vx3', 'iac-vx4') ORDER BY t.device_id"
)
QUARANTINE_KEY = f"quarantine/render-logs/{RAW}/{BAD_KEY}.quarantine.csv"
# The quarantine file render-summary writes for the bad-rows sample (line_number, reason, raw_line).
QUARANTINE_CSV = "line_number,reason,raw_line\n" + "".join(f"{n},bad row,x\n" for n in range(3, 9))

GOOD_ROWS = [
    ("iac-vx1", 5, 24, 59.75041056191829, 88.05912041975321),
    ("iac-vx2", 2, 20, 59.726739807184025, 91.51427392155946),
    ("iac-vx3", 1, 21, 59.56224854984173, 94.96991832936575),
    ("iac-vx4", 5, 25, 59.8228217662278, 85.94971115006649),
]
BAD_ROWS = [("iac-vx1", 1, 20, 60.0, 90.0), ("iac-vx3", 1, 30, 58.5, 70.0)]


def records(rows: list[tuple[Any, ...]]) -> list[list[dict[str, Any]]]:
    return [
        [{"stringValue": d}, {"longValue": n}, {"longValue": m}, {"doubleValue": f}, {"doubleValue": g}]
        for d, n, m, f, g in rows
    ]


# The totals over both samples (and nothing else loaded): iac-vx1 and iac-vx3 are in both.
TOTALS = [
    ("iac-vx1", 6, 24, (5 * 59.75041056191829 + 60.0) / 6, (5 * 88.05912041975321 + 90.0) / 6),
    ("iac-vx2", 2, 20, 59.726739807184025, 91.51427392155946),
    ("iac-vx3", 2, 30, (59.56224854984173 + 58.5) / 2, (94.96991832936575 + 70.0) / 2),
    ("iac-vx4", 5, 25, 59.8228217662278, 85.94971115006649),
]


def total_records(totals: list[tuple[Any, ...]], of_files: list[tuple[Any, ...]]) -> list[list[dict[str, Any]]]:
    return [a + b[1:] for a, b in zip(records(totals), records(of_files), strict=True)]


def stub_executions(aws: Aws, good_polls: int = 4) -> None:
    """Both executions started by their S3 events; the bad-rows file's finishes at once, the other's
    runs for `good_polls` polls (15 s apart) before it succeeds."""
    sfn = aws.stub("stepfunctions")
    good_input, bad_input = s3_event(RAW, GOOD_KEY), s3_event(RAW, BAD_KEY)
    good_arn = described(RENDER_MACHINE, "event-a", "RUNNING")["executionArn"]
    bad_arn = described(RENDER_MACHINE, "event-b", "RUNNING")["executionArn"]
    list_request = {"stateMachineArn": RENDER_MACHINE, "maxResults": 100}

    def describe(name: str, arn: str, status: str, payload: str) -> None:
        sfn.add_response("describe_execution", described(RENDER_MACHINE, name, status, payload), {"executionArn": arn})

    # First poll, render_logs.csv: the listing (newest first), each candidate's input, then its status.
    sfn.add_response("list_executions", listed(RENDER_MACHINE, "event-b", "event-a"), list_request)
    describe("event-b", bad_arn, "RUNNING", bad_input)
    describe("event-a", good_arn, "RUNNING", good_input)
    describe("event-a", good_arn, "RUNNING", good_input)
    history_request = {"executionArn": good_arn, "reverseOrder": True, "maxResults": 25}
    sfn.add_response("get_execution_history", history(("SummarizeRenderLogs", "{}")), history_request)
    # First poll, render_logs_with_errors.csv: found at the top of the listing, already succeeded.
    sfn.add_response("list_executions", listed(RENDER_MACHINE, "event-b", "event-a"), list_request)
    describe("event-b", bad_arn, "RUNNING", bad_input)
    describe("event-b", bad_arn, "SUCCEEDED", bad_input)
    for _ in range(good_polls - 1):
        describe("event-a", good_arn, "RUNNING", good_input)
        sfn.add_response("get_execution_history", history(("SummarizeRenderLogs", "{}")), history_request)
    describe("event-a", good_arn, "SUCCEEDED", good_input)


def test_samples_are_uploaded_under_the_prefix_and_the_run_passes(aws: Aws, tmp_path: Path) -> None:
    put(aws.client("s3"), PROCESSED, QUARANTINE_KEY, QUARANTINE_CSV)
    stub_executions(aws)
    stub_statement(aws, "q1", SQL, records(GOOD_ROWS), source_uri=f"s3://{RAW}/{GOOD_KEY}")
    stub_statement(aws, "q2", SQL, records(BAD_ROWS), source_uri=f"s3://{RAW}/{BAD_KEY}")
    stub_statement(aws, "q3", TOTALS_SQL, total_records(TOTALS, TOTALS))

    outcome = run(aws, tmp_path, "--only", "render-logs")

    assert outcome.lines == [
        f"smoke: {RUN_NAME} on stack pr-12: render-logs; timeout 40 min",
        f"[0m00s] render-logs: uploaded render_logs.csv to s3://{RAW}/{GOOD_KEY}",
        f"[0m00s] render-logs: uploaded render_logs_with_errors.csv to s3://{RAW}/{BAD_KEY}",
        "[0m00s] render-logs render_logs_with_errors.csv: SUCCEEDED",
        "[0m30s] render-logs render_logs.csv: SummarizeRenderLogs RUNNING",
        "[1m00s] render-logs render_logs.csv: SUCCEEDED",
        "PASS render-logs: 2 run(s) succeeded, 5 check(s) passed",
        "smoke: all 1 pipeline(s) passed on pr-12 in 1m00s",
    ]
    assert outcome.code == 0
    aws.assert_all_used()
    s3 = aws.client("s3")
    assert sorted(keys(s3, RAW)) == [GOOD_KEY, BAD_KEY]
    for key, name in ((GOOD_KEY, "render_logs.csv"), (BAD_KEY, "render_logs_with_errors.csv")):
        body = s3.get_object(Bucket=RAW, Key=key)["Body"].read()
        assert body == samples.sample("render_logs", name).read_bytes()
    assert outcome.summary == (
        "### Smoke run on `pr-12`: passed\n"
        "\n"
        "| Pipeline | Result | Step | Details |\n"
        "| --- | --- | --- | --- |\n"
        "| render-logs | passed |  | public.performance_summary_by_file: 4 device row(s) for render_logs.csv; "
        "0 quarantined row(s) for render_logs.csv; public.performance_summary_by_file: 2 device row(s) for "
        "render_logs_with_errors.csv; 6 quarantined row(s) for render_logs_with_errors.csv; "
        "public.performance_summary: 4 device(s), each the total of its rows in public.performance_summary_by_file |\n"
        "\n"
        "1 of 1 pipeline(s) passed in 1m00s (timeout 40 min).\n"
    )


def test_a_wrong_summary_fails_naming_the_pipeline_and_the_check(aws: Aws, tmp_path: Path) -> None:
    put(aws.client("s3"), PROCESSED, QUARANTINE_KEY, QUARANTINE_CSV)
    stub_executions(aws, good_polls=1)
    wrong = [GOOD_ROWS[0], ("iac-vx2", 1, 20, 59.7, 91.5)]
    stub_statement(aws, "q1", SQL, records(wrong), source_uri=f"s3://{RAW}/{GOOD_KEY}")

    outcome = run(aws, tmp_path, "--only", "render-logs")

    assert outcome.code == 1
    assert outcome.lines[-2:] == [
        f"FAIL render-logs at check warehouse: public.performance_summary_by_file rows for s3://{RAW}/{GOOD_KEY}: "
        "expected iac-vx1 5 log(s) max 24 ms 59.750411 fps 88.059120 GPU, iac-vx2 2 log(s) max 20 ms 59.726740 "
        "fps 91.514274 GPU, iac-vx3 1 log(s) max 21 ms 59.562249 fps 94.969918 GPU, iac-vx4 5 log(s) max 25 ms "
        "59.822822 fps 85.949711 GPU; found iac-vx1 5 log(s) max 24 ms 59.750411 fps 88.059120 GPU, iac-vx2 1 "
        "log(s) max 20 ms 59.700000 fps 91.500000 GPU",
        "smoke: FAILED on pr-12 after 0m15s: render-logs at check warehouse",
    ]
    failed = "| render-logs | **FAILED** | check warehouse | public.performance_summary_by_file rows for"
    assert failed in outcome.summary
    aws.assert_all_used()


def test_totals_that_are_not_the_per_file_rows_fail(aws: Aws, tmp_path: Path) -> None:
    put(aws.client("s3"), PROCESSED, QUARANTINE_KEY, QUARANTINE_CSV)
    stub_executions(aws, good_polls=1)
    stub_statement(aws, "q1", SQL, records(GOOD_ROWS), source_uri=f"s3://{RAW}/{GOOD_KEY}")
    stub_statement(aws, "q2", SQL, records(BAD_ROWS), source_uri=f"s3://{RAW}/{BAD_KEY}")
    # iac-vx1's total counts only one file (a load that did not update the totals); iac-vx4 is missing.
    stale = [(*TOTALS[0][:1], 5, *TOTALS[0][2:]), *TOTALS[1:3]]
    stub_statement(aws, "q3", TOTALS_SQL, total_records(stale, TOTALS[:3]))

    outcome = run(aws, tmp_path, "--only", "render-logs")

    assert outcome.code == 1
    assert outcome.lines[-2] == (
        "FAIL render-logs at check warehouse: public.performance_summary: expected one row per device (iac-vx1, "
        "iac-vx2, iac-vx3, iac-vx4) equal to the totals of public.performance_summary_by_file; found iac-vx1, "
        "iac-vx2, iac-vx3, not equal for iac-vx1"
    )
    aws.assert_all_used()


def test_a_missing_quarantine_file_fails_the_quarantine_check(aws: Aws, tmp_path: Path) -> None:
    stub_executions(aws, good_polls=1)
    stub_statement(aws, "q1", SQL, records(GOOD_ROWS), source_uri=f"s3://{RAW}/{GOOD_KEY}")
    stub_statement(aws, "q2", SQL, records(BAD_ROWS), source_uri=f"s3://{RAW}/{BAD_KEY}")

    outcome = run(aws, tmp_path, "--only", "render-logs")

    assert outcome.code == 1
    assert outcome.lines[-2] == (
        f"FAIL render-logs at check quarantine: expected 6 quarantined row(s) in s3://{PROCESSED}/{QUARANTINE_KEY}, "
        "found 0"
    )
    aws.assert_all_used()


def test_no_execution_for_an_upload_times_out_at_the_trigger(aws: Aws, tmp_path: Path) -> None:
    """Nothing started by the S3 event (say EventBridge may not start the machine): bounded, named. An
    execution from before the upload (an earlier smoke run's) is not taken for this one's."""
    sfn = aws.stub("stepfunctions")
    earlier = listed(RENDER_MACHINE, "earlier-run", started=-600)
    for _ in range(5 * 2):  # polls at 0, 15, 30, 45 and 60 s, one listing per file each
        sfn.add_response("list_executions", earlier, {"stateMachineArn": RENDER_MACHINE, "maxResults": 100})

    outcome = run(aws, tmp_path, "--only", "render-logs", "--timeout-minutes", "1")

    assert outcome.code == 1
    assert outcome.lines[3:] == [
        "[0m30s] render-logs render_logs.csv: trigger WAITING",
        "[0m30s] render-logs render_logs_with_errors.csv: trigger WAITING",
        "[1m00s] render-logs render_logs.csv: TIMED OUT at trigger",
        "[1m00s] render-logs render_logs_with_errors.csv: TIMED OUT at trigger",
        f"FAIL render-logs at trigger: render_logs.csv: no execution started for s3://{RAW}/{GOOD_KEY} within 1 min",
        "smoke: FAILED on pr-12 after 1m00s: render-logs at trigger",
    ]
    aws.assert_all_used()
