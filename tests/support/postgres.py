"""A throwaway PostgreSQL cluster for tests (SPEC §9): `initdb` + `pg_ctl` from the
distribution's package, run as the `postgres` system user (initdb refuses root) on a
temporary directory that user owns, listening on a Unix socket only (no TCP port at all).

Each test gets a fresh database made from a migrated template (`CREATE DATABASE … TEMPLATE`,
a file copy: far faster than migrating every time).
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote

PG_USER = "postgres"
TEMPLATE = "sj_template"


def postgres_bin() -> Path | None:
    """The newest `/usr/lib/postgresql/<version>/bin` holding `initdb`, or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    return Path(found[-1]).parent if found else None


def missing_reason() -> str | None:
    """Why no cluster can be started here (None: it can)."""
    if postgres_bin() is None:
        return "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin"
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        return "no `postgres` system user"
    if os.geteuid() != 0 and pwd.getpwuid(os.geteuid()).pw_name != PG_USER:
        return "the test cluster runs as `postgres`: run the tests as root or as postgres"
    return None


class PostgresCluster:
    """One cluster: `start()`, `database()` per test, `stop()`."""

    def __init__(self, *, durable: bool = False) -> None:
        """`durable`: the server's own defaults for fsync and synchronous_commit (the
        benchmark); else both off (tests: a thrown-away cluster, fast)."""
        self.durable = durable
        bindir = postgres_bin()
        assert bindir is not None, missing_reason()
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="sj-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self._names = itertools.count(1)
        self._template_ready = False

    # -- running as the postgres user ---------------------------------------------------

    def _as_postgres(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(argv)
        if os.geteuid() == 0:
            command = ["runuser", "-u", PG_USER, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        entry = pwd.getpwnam(PG_USER)
        self.socket_dir.mkdir()
        os.chown(self.root, entry.pw_uid, entry.pw_gid)
        os.chown(self.socket_dir, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o755)
        self._as_postgres(str(self.bindir / "initdb"), "-D", str(self.data), "-U", PG_USER,
                          "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync")
        self.pg_ctl_start()

    def pg_ctl_start(self) -> None:
        # listen_addresses='': no TCP socket at all (tests never leave loopback, §standards).
        # fsync off: a test cluster is thrown away; durability is not what tests measure.
        options = (f"-c listen_addresses='' -c unix_socket_directories='{self.socket_dir}' "
                   "-c max_connections=300 -c shared_buffers=64MB")
        if not self.durable:
            options += " -c fsync=off -c full_page_writes=off -c synchronous_commit=off"
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
                          "-l", str(self.root / "server.log"), "-w", "-t", "60", "start")

    def pg_ctl_stop(self, mode: str = "fast") -> None:
        self._as_postgres(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode,
                          "-w", "stop", check=False)

    def stop(self) -> None:
        self.pg_ctl_stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # -- databases ------------------------------------------------------------------------

    def url(self, dbname: str) -> str:
        """A libpq URL of `dbname` over the Unix socket (no password: trust auth)."""
        return (f"postgresql:///{dbname}?host={quote(str(self.socket_dir), safe='')}"
                f"&user={PG_USER}")

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def drop(self, url: str) -> None:
        """Drop a database made by `database()` (connections to it are ended)."""
        from psycopg.conninfo import conninfo_to_dict

        name = str(conninfo_to_dict(url)["dbname"])
        assert name.startswith("sj_test_")
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def database(self, *, migrated: bool = True) -> str:
        """The URL of a new, empty database (migrated by default: a copy of the template)."""
        name = f"sj_test_{next(self._names)}"
        if not migrated:
            self._admin(f"CREATE DATABASE {name}")
            return self.url(name)
        if not self._template_ready:
            self._admin(f"CREATE DATABASE {TEMPLATE}")
            from adapters.postgres.schema import migrate

            migrate(self.url(TEMPLATE))
            self._template_ready = True
        self._admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        return self.url(name)
