"""Exit codes, the error classes behind them, and how an AWS SDK failure maps onto them.

One exit code per failure class, so whatever reruns a job (the Batch retry strategy, a person) knows
whether a retry can help: Batch retries EXIT_TRANSIENT only.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for bad flags; never retried
EXIT_BAD_INPUT = 3  # the input itself is wrong: retrying cannot help
EXIT_TRANSIENT = 4  # network, throttling, warehouse busy: the Batch retry strategy retries only this
EXIT_FAILED = 5  # anything else we understood (permissions, SQL rejected): needs a person

# AWS error codes that mean "try again later" in any service (throttling, timeouts, overload, conflicts);
# any 5xx and HTTP 429 mean the same.
TRANSIENT_AWS_CODES = frozenset(
    {
        "ActiveStatementsExceededException",
        "BandwidthLimitExceeded",
        "ConditionalRequestConflict",  # S3: a concurrent conditional write of the same key is in flight
        "InternalError",
        "InternalServerError",
        "InternalServerException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "TooManyRequestsException",
        "TransactionConflictException",
    }
)
# S3 codes for an object or bucket that is not there.
MISSING_AWS_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "404"})


class JobError(Exception):
    """A failure the job understood; needs a person (exit 5)."""

    exit_code = EXIT_FAILED


class BadInputError(JobError):
    """The input or the arguments are wrong: running again cannot help (exit 3)."""

    exit_code = EXIT_BAD_INPUT


class TransientError(JobError):
    """Network, throttling, a busy warehouse: running again later can succeed (exit 4)."""

    exit_code = EXIT_TRANSIENT


@dataclass(frozen=True)
class AwsFailure:
    """What an AWS SDK exception says: whether a retry can help, and AWS's code, HTTP status and message."""

    transient: bool
    code: str = ""  # the service's error code ("" unless the service answered with an error)
    status: int = 0  # HTTP status (0 unless the service answered)
    message: str = ""  # the service's message, or the exception's text

    @property
    def missing(self) -> bool:
        return self.code in MISSING_AWS_CODES


def describe_aws_error(exc: BaseException) -> AwsFailure:
    """Classify a boto3/botocore/s3transfer exception: connection failures, throttling codes, HTTP 429 and
    5xx are transient; everything else is not."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError, IncompleteReadError

    # IncompleteReadError: the connection dropped mid-body; reading again can succeed.
    if isinstance(exc, (ConnectionError, HTTPClientError, IncompleteReadError)):
        return AwsFailure(True, message=str(exc))
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        transient = code in TRANSIENT_AWS_CODES or status >= 500 or status == 429
        return AwsFailure(transient, code, status, str(error.get("Message", "") or exc))
    return AwsFailure(False, message=str(exc))


def classify_aws_error(exc: BaseException, action: str, *, missing_is_bad_input: bool = False) -> JobError:
    """The JobError an AWS SDK failure while doing `action` becomes (a JobError is returned as it is).

    Transient failures become TransientError; with `missing_is_bad_input`, a missing object or bucket is
    BadInputError (the input named to the job is gone); everything else is JobError.
    """
    if isinstance(exc, JobError):
        return exc
    from botocore.exceptions import ClientError

    failure = describe_aws_error(exc)
    if not isinstance(exc, ClientError):
        return (
            TransientError(f"{action}: {exc}")
            if failure.transient
            else JobError(f"{action}: {type(exc).__name__}: {exc}")
        )
    text = f"{action}: {failure.code}: {failure.message}"
    if failure.transient:
        return TransientError(text)
    if missing_is_bad_input and failure.missing:
        return BadInputError(f"{action}: does not exist ({failure.code})")
    return JobError(text)
