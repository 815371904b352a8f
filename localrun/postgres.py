"""A throwaway PostgreSQL cluster, the local stand-in for Redshift (tests and the local run).

Uses the Debian `postgresql` package's binaries. The server listens on a Unix socket only (no TCP
port to collide with), in a fresh temp directory, and is stopped and deleted on exit. initdb refuses
to run as root, so as root the cluster is created and run as the `postgres` system user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from components.warehouse_access import Loader, call_sql, procedure_sql

PORT = 5432  # only names the socket file; nothing listens on TCP


def find_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    for directory in reversed(candidates):
        if (Path(directory) / "initdb").exists():
            return Path(directory)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise RuntimeError(
        "PostgreSQL server binaries not found (looked in /usr/lib/postgresql/*/bin and PATH). "
        "Install them with: sudo apt-get install -y postgresql   (or run `make setup`)"
    )


@contextmanager
def temporary_postgres() -> Iterator[str]:
    """Yield a libpq DSN to a fresh, empty database; stop and delete the cluster afterwards."""
    bin_dir = find_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="pg-"))
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    if as_root:
        shutil.chown(root, "postgres", "postgres")
    data = root / "data"

    def pg(*args: str) -> None:
        result = subprocess.run([*prefix, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed:\n{result.stdout}\n{result.stderr}")

    try:
        pg(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")
        pg(
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(root / "server.log"),
            "start",
            "-o",
            f"-k {root} -p {PORT} -c listen_addresses='' -c fsync=off",
        )
        try:
            yield f"host={root} port={PORT} user=postgres dbname=postgres"
        finally:
            pg(str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-m", "fast", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def setup_access(admin_dsn: str, loaders: Sequence[Loader], database: str = "postgres") -> None:
    """What the stack does on Redshift at deploy time: create and call the access procedure, as the admin."""
    procedure = procedure_sql(loaders, database, "postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(procedure)
        conn.execute(call_sql(procedure))


def login_dsn(admin_dsn: str, user: str, role: str) -> str:
    """A DSN signing in as `user` (created if missing) holding only database role `role`, as Redshift
    Serverless signs in a job's IAM role as `IAMR:<name>` with the roles of its RedshiftDbRoles tag.

    The session acts as the role (libpq `options=-c role=...`): PostgreSQL has no scoped permissions,
    so this is how what a loader creates stays the role's, whichever user created it."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [user]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE USER {} IN ROLE {}").format(sql.Identifier(user), sql.Identifier(role)))
    return make_conninfo(admin_dsn, user=user, options=f"-c role={role}")
