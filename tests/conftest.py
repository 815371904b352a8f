"""Shared, generic fixtures: one Spark session, one real PostgreSQL and one moto HTTP server per test session,
and the whole program built under Pulumi mocks once per stack file (tests read the estates, never change them).

Each starts lazily, only when a test asks for them, so suites that need neither (Pulumi mocks,
pure transforms) pay nothing. Tests isolate themselves inside the shared servers: a fresh schema
per test in PostgreSQL, a reset (`moto_server.reset()`) or unique bucket names in moto.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from localrun.postgres import temporary_postgres


@pytest.fixture(scope="session")
def dev():
    """The program for Pulumi.dev.yaml under mocks (tests.infra.harness.Estate)."""
    from tests.infra.harness import build_estate

    return build_estate("dev", "Pulumi.dev.yaml")


@pytest.fixture(scope="session")
def prod():
    """The program for Pulumi.prod.yaml under mocks."""
    from tests.infra.harness import build_estate

    return build_estate("prod", "Pulumi.prod.yaml")


@pytest.fixture(scope="session")
def spark():
    """One local[2] Spark session (the Glue 5.0 engine, pyspark 3.5) for the whole run: it takes ~8 s to start."""
    from glue_common import spark_session

    session = spark_session("tests")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """libpq DSN of a throwaway PostgreSQL (Unix socket only), started once per session."""
    with temporary_postgres() as dsn:
        yield dsn


@dataclass(frozen=True)
class MotoServer:
    """A moto server speaking real HTTP on 127.0.0.1; point boto3 or a subprocess at `endpoint_url`."""

    endpoint_url: str

    def aws_env(self) -> dict[str, str]:
        """Environment that sends every AWS SDK call to this server with dummy credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
        )

    def reset(self) -> None:
        """Forget every resource in every service (moto's own reset endpoint)."""
        assert self.endpoint_url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", data=b"", method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - local moto server
            response.read()


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    """moto's ThreadedMotoServer on a free local port, shared by the session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield MotoServer(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()
