"""A real PostgreSQL server for the tests (no tests in here): Debian's binaries, a cluster in a
temporary directory on a free port of 127.0.0.1, run as a non-root user, stopped at the end.

The `db` fixture gives each test an empty database: one per test session (per xdist worker),
emptied before each test (`reset`: its sessions ended, every schema a test made dropped), which
costs a few milliseconds where a `CREATE DATABASE ... TEMPLATE` copy cost a quarter of a second.
Tests that need a database of their own (several at once, copies of one) ask `database()`.
Without the binaries the PostgreSQL half of the suite is skipped with a reason, except under
FEEDSVC_CI=1, where it fails instead."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import psycopg

USER = "feedsvc"
PASSWORD = "pg-test-secret-81d"  # only on 127.0.0.1, in a cluster that lives for one run
TEMPLATE = "feedsvc_template"


def binaries() -> Path | None:
    """The newest PostgreSQL server binaries installed (Debian keeps each major apart)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresServer:
    """One cluster: `start()`, `database()` per test, `stop()`."""

    def __init__(self, bin_dir: Path, **settings: str) -> None:
        self.bin_dir = bin_dir
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="feedsvc-pg-"))
        self.data = self.root / "data"
        self.settings = settings
        self._names = itertools.count(1)
        self._scratch: str | None = None
        self._scratch_used = False
        # PostgreSQL refuses to run as root: as root, run it as the `postgres` user.
        self.run_as = "postgres" if os.geteuid() == 0 else None

    def _run(self, args: Sequence[str], **kwargs) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
        if result.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed:\n{result.stdout}{result.stderr}")
        return result

    def start(self) -> PostgresServer:
        if self.run_as:
            user = pwd.getpwnam(self.run_as)
            os.chown(self.root, user.pw_uid, user.pw_gid)
        password_file = self.root / "password"
        password_file.write_text(PASSWORD + "\n")
        if self.run_as:
            os.chown(password_file, pwd.getpwnam(self.run_as).pw_uid, -1)
        self._run(
            [
                "initdb",
                "-D",
                str(self.data),
                "-U",
                USER,
                f"--pwfile={password_file}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",  # so a wrong password fails, as in production
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "max_connections": "200",
            "fsync": "off",  # a test cluster: the machine never loses power under it
            "full_page_writes": "off",
            "shared_buffers": "64MB",
            **self.settings,
        }
        flags = " ".join(f"-c {key}={value}" for key, value in options.items())
        self._run(
            [
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.root / "log"),
                "-w",
                "-o",
                flags,
                "start",
            ]
        )
        with self.admin() as connection:
            connection.execute(f"CREATE DATABASE {TEMPLATE}")
        return self

    def url(self, database: str, password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def admin(self) -> psycopg.Connection:
        return psycopg.connect(self.url("postgres"), autocommit=True)

    def database(self, template: str | None = None) -> str:
        """A new database, empty or a copy of the database at URL `template` (which nobody
        may be connected to); its URL."""
        name = f"test_{os.getpid()}_{next(self._names)}"
        source = template.rsplit("/", 1)[1] if template else TEMPLATE
        with self.admin() as connection:
            connection.execute(f"CREATE DATABASE {name} TEMPLATE {source} STRATEGY FILE_COPY")
        return self.url(name)

    def scratch(self) -> str:
        """The session's reusable database, empty as a new one: reset here if a test used it."""
        if self._scratch is not None and self._scratch_used and not self.reset(self._scratch):
            self.drop(self._scratch)
            self._scratch = None
        if self._scratch is None:
            self._scratch = self.database()
        self._scratch_used = True
        return self._scratch

    def reset(self, url: str) -> bool:
        """Empty the database at `url` as a test found it: end every other session on it (a
        store a test left open, a transaction holding locks), drop each schema but `public`;
        False if anything else is left (then the caller replaces the database)."""
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(name), autocommit=True) as connection:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            schemas = connection.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%'"
                " AND nspname NOT IN ('public', 'information_schema')"
            ).fetchall()
            for (schema,) in schemas:
                connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
            (left,) = connection.execute(
                "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = 'public')"
                " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n"
                " ON n.oid = p.pronamespace WHERE n.nspname = 'public')"
                " + (SELECT count(*) FROM pg_largeobject_metadata)"
            ).fetchone()
        return left == 0

    def drop(self, url: str) -> None:
        name = url.rsplit("/", 1)[1]
        with self.admin() as connection:
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run(["pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def dump(url: str) -> list:
    """Every row of the store's tables, sorted (to compare two states of a store)."""
    with psycopg.connect(url) as connection:
        return [
            connection.execute(f"SELECT * FROM feedsvc.{table} ORDER BY 1, 2").fetchall()
            for table in ("items", "filed", "meta")
        ]
