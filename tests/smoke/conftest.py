"""The smoke tests' AWS: moto's S3 and DynamoDB over HTTP, with the stack's raw and processed buckets."""

from __future__ import annotations

import pytest

from tests.smoke.support import PROCESSED, RAW, Aws


@pytest.fixture
def aws(moto_server) -> Aws:
    moto_server.reset()
    aws = Aws(moto_server.endpoint_url)
    s3 = aws.client("s3")
    for bucket in (RAW, PROCESSED):
        s3.create_bucket(Bucket=bucket)
    return aws
