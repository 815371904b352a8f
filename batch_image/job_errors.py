"""Exit codes shared by every job in the Batch image, one per failure class, so the Batch retry strategy
knows whether a retry can help (it retries EXIT_TRANSIENT only)."""

EXIT_OK = 0
EXIT_USAGE = 2  # argparse's own code for bad flags; never retried
EXIT_BAD_INPUT = 3  # the file itself is wrong: retrying cannot help
EXIT_TRANSIENT = 4  # network, throttling, warehouse busy: the Batch retry strategy retries only this
EXIT_FAILED = 5  # anything else we understood (permissions, SQL rejected): needs a person

# AWS error codes that mean "try again later" in any service (throttling, timeouts, overload, conflicts):
# every job maps them, and any 5xx, to EXIT_TRANSIENT.
TRANSIENT_AWS_CODES = frozenset(
    {
        "ActiveStatementsExceededException",
        "BandwidthLimitExceeded",
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


class JobError(Exception):
    exit_code = EXIT_FAILED


class BadInputError(JobError):
    exit_code = EXIT_BAD_INPUT


class TransientError(JobError):
    exit_code = EXIT_TRANSIENT
