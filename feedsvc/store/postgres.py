"""The PostgreSQL dialect (psycopg 3), for several app hosts and ingest jobs on one database:
many rows at once as arrays (unnest, sent binary), the generation row locked FOR UPDATE as the
write lock, a conflict with another writer run again, NOTIFY to tell other processes of a
commit, the tsvector search index (postgres_search.py). Every rule is in `base.SQLStore`.

Everything lives in the `feedsvc` schema of the database the URL names (the connection's
search_path), so a database shared with other applications keeps its own tables."""

from __future__ import annotations

import itertools
import re
import select
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

import psycopg
from psycopg import errors as pg_errors

from ..errors import StoreError
from ..query import FeedParameters
from . import Features, Location
from .base import COLUMNS, Conflict, SQLStore
from .postgres_search import CREATE as SEARCH_INDEX
from .postgres_search import DOCUMENT, REINDEX_ROWS, search_sql
from .schema import TEXT, kind

# Before one schema description, PostgreSQL stores numbered their versions apart: 2 was
# SQLite's 3 (editorial tables and archive places at once), 3 was 4 (search).
LEGACY_VERSIONS = {2: 3, 3: 4}
SEARCH_DOCUMENT = DOCUMENT % ("u.title_words", "u.body_words")  # of an unnest(...) row
OTHER_SCHEMA = "not a feedsvc store (schema feedsvc holds something else)"
IDLE = psycopg.pq.TransactionStatus.IDLE  # no transaction open on the connection
CHANNEL = "feedsvc"  # NOTIFY channel: the payload is the new generation
# Notifications are lost while a connection is down (and a NOTIFY could in theory be delayed),
# so the counter is also read again at most this often when none arrives.
RECHECK_SECONDS = 1.0
CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise: an unreachable host fails
RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected, pg_errors.UniqueViolation)
# The lock every first open takes before it looks at (and maybe creates) the schema:
# two hosts starting on a new database at once must not both run the migrations.
MIGRATION_LOCK = 0x66656564  # "feed"


class PostgresStore(SQLStore):
    """A feedsvc store in a PostgreSQL database; one instance (one connection) per thread.
    The connection LISTENs for other processes' commits, so `generation()` costs no round
    trip: it drains notifications already received, without waiting."""

    Error = psycopg.Error
    features = Features(
        backup=False,
        backup_advice="feedsvc backup copies SQLite stores; for PostgreSQL use its own tool: "
        "pg_dump -Fc '{location}' > {target} (restore with pg_restore), or feedsvc copy to an "
        "SQLite file",
    )
    FOR_UPDATE = " FOR UPDATE"
    FILED_ITEMS = "filed JOIN items USING (seq, published)"
    GROUP_CONCAT = "string_agg({}, ',')"
    INTEGER = "BIGINT"
    SEARCH_DDL = SEARCH_INDEX

    def __init__(
        self,
        conninfo: str,
        clock: Callable[[], datetime],
        location: str,
        connection: psycopg.Connection,
        read_only_reason: str | None = None,
    ) -> None:
        super().__init__(clock, location, read_only_reason)
        self.conninfo = conninfo
        self._connection = connection  # closed when lost; `db` makes it again
        self._checked = float("-inf")  # when the counter was last read (monotonic)
        self._heard = False  # a notification came since
        self._cursors = itertools.count()

    @classmethod
    def open(cls, location: Location, clock: Callable[[], datetime], create: bool) -> PostgresStore:
        """Open the store in the database at `location`; make its schema only if `create`."""
        name = str(location)
        connection = _connect(location.address, name)
        return cls(location.address, clock, name, connection)._open(create)

    def _setup(self) -> None:
        if self.db.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
            self.read_only_reason, self.read_only = "a standby server (read-only)", True
        self._listen()

    def close(self) -> None:
        self._connection.close()

    @property
    def db(self) -> psycopg.Connection:
        """The connection, made again if it was lost (the server restarted, a network cut)."""
        if self._connection.closed:
            self._connection = _connect(self.conninfo, self.location)
            self._listen()
        return self._connection

    def _listen(self) -> None:
        self.db.add_notify_handler(self._on_notify)
        self.db.execute(f"LISTEN {CHANNEL}")
        self._checked = float("-inf")  # notifications were lost while disconnected

    # -- running SQL: `?` marks become psycopg's, many rows go as one array per column ------

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor:
        return self.db.execute(sql.replace("?", "%s"), params)

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple]:
        """In a transaction a server-side cursor (rows come in batches, not all at once);
        outside one, where PostgreSQL has no cursor, an ordinary one."""
        idle = self.db.info.transaction_status == IDLE
        name = None if idle else f"feedsvc_{next(self._cursors)}"
        with self.db.cursor(name=name) if name else self.db.cursor() as cursor:
            cursor.execute(sql.replace("?", "%s"), params)
            yield from cursor

    def _unnest(
        self, sql: str, table: str, columns: Sequence[str], rows: Iterable[tuple], words=False
    ) -> int:
        """Run `sql` with the rows as its `{}`: unnest(...) AS u (columns), one binary array per
        column (psycopg's text-array dumper runs a quoting regex on every element: a fifth of an
        ingest's client CPU); `words`: each row ends with its folded title and body. How many
        rows it touched; without rows, nothing runs."""
        names = [*columns, *(("title_words", "body_words") if words else ())]
        kinds = [kind(table, c) for c in columns] + [TEXT] * (len(names) - len(columns))
        arrays: list[list] = [[] for _ in kinds]
        for row in rows:
            for array, value in zip(arrays, row, strict=True):
                array.append(value)
        if not arrays[0]:
            return 0
        types = ", ".join(f"%b::{self._type(k)}[]" for k in kinds)
        source = f"unnest({types}) AS u ({', '.join(names)})"
        return self.db.execute(sql.format(source), arrays).rowcount

    def _insert_items(
        self, columns: Sequence[str], rows: list[tuple], entries: list[tuple[int, str, str]]
    ) -> int:
        """One statement with the search documents: indexing by an UPDATE afterwards writes
        every row twice (a new version, and new entries in every index)."""
        rows = [(*row, title, body) for row, (_, title, body) in zip(rows, entries, strict=True)]
        names = ", ".join(columns)
        sql = f"INSERT INTO items ({names}, search) SELECT {names}, {SEARCH_DOCUMENT} FROM {{}}"
        return self._unnest(f"{sql} ON CONFLICT (id) DO NOTHING", "items", columns, rows, True)

    def _insert(self, table: str, columns: Sequence[str], rows: Iterable[tuple], tail="") -> int:
        sql = f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM {{}}{tail}"
        return self._unnest(sql, table, columns, rows)

    def _update(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        sets = ", ".join(f"{c} = u.{c}" for c in columns[1:])
        where = f"{table}.{columns[0]} = u.{columns[0]}"
        self._unnest(f"UPDATE {table} SET {sets} FROM {{}} WHERE {where}", table, columns, rows)

    def _delete(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        where = " AND ".join(f"{table}.{c} = u.{c}" for c in columns)
        self._unnest(f"DELETE FROM {table} USING {{}} WHERE {where}", table, columns, rows)

    def _in(self, column: str, kind: str, values: Sequence[Any]) -> tuple[str, list]:
        return f"{column} = ANY(%b::{self._type(kind)}[])", list(values)

    def _failure(self, error: BaseException) -> StoreError:
        if isinstance(error, RETRYABLE):
            return Conflict(_one_line(error), self.location)
        if isinstance(error, psycopg.OperationalError):
            if self._connection.broken:
                self._connection.close()  # made again at the next use
            return StoreError(f"the store cannot be reached: {_one_line(error)}", self.location)
        return StoreError(f"the store failed: {_one_line(error)}", self.location)

    # -- transactions and notifications -----------------------------------------------------

    def _transaction(self, big: bool) -> AbstractContextManager[Any]:
        return self.db.transaction()

    def _in_transaction(self) -> bool:
        connection = self._connection
        return not connection.closed and connection.info.transaction_status != IDLE

    def _begin_snapshot(self) -> None:
        self.db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")

    def _end_snapshot(self) -> None:
        if not self._connection.closed:
            self._connection.execute("COMMIT")

    def _notify(self, generation: int) -> None:
        # Delivered to every listening connection when (and only if) this transaction commits.
        self.db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(generation)))

    def _changed(self) -> bool:
        """A notification came, the connection was made again, or RECHECK_SECONDS passed."""
        try:
            self._poll()
        except psycopg.OperationalError:
            # The connection dropped (a server restart, a network cut): once more on a new
            # one, which reads the counter, as notifications sent meanwhile were lost.
            self.close()
            self._poll()
        if self._heard or time.monotonic() - self._checked > RECHECK_SECONDS:
            self._heard, self._checked = False, time.monotonic()
            return True
        return False

    def _poll(self) -> None:
        connection = self.db
        # One poll(2) with no wait when nothing arrived, the usual case on every request.
        if select.select([connection.fileno()], [], [], 0)[0]:
            # libpq sees that the server closed the connection only on the read after its
            # last message: the second read tells now (it raises), not at the next request.
            connection.pgconn.consume_input()
            connection.pgconn.consume_input()
            while (raw := connection.pgconn.notifies()) is not None:
                self._heard = self._heard or raw.relname.decode() == CHANNEL

    def _on_notify(self, notice: psycopg.Notify) -> None:
        """Notifications that came in while a query ran (psycopg hands them over here)."""
        self._heard = self._heard or notice.channel == CHANNEL

    # -- search: a tsvector column ----------------------------------------------------------

    def _index(self, entries: list[tuple[int, str, str]]) -> None:
        if entries:
            self.db.execute(REINDEX_ROWS, [list(column) for column in zip(*entries, strict=True)])

    def _search(
        self, topic: str | None, parameters: FeedParameters, limit: int, since: int | None
    ) -> list[tuple]:
        query, values = search_sql(parameters, topic, since, limit, COLUMNS)
        return self.db.execute(query, values).fetchall()

    # -- the schema -------------------------------------------------------------------------

    def _version(self) -> int:
        """The schema version of the store in this database; 0 when there is none."""
        if self.db.execute("SELECT to_regclass('feedsvc.meta')").fetchone()[0] is None:
            if self.db.execute(
                "SELECT EXISTS (SELECT 1 FROM pg_class JOIN pg_namespace n "
                "ON n.oid = relnamespace WHERE n.nspname = 'feedsvc')"
            ).fetchone()[0]:
                raise StoreError(OTHER_SCHEMA, self.location)
            return 0
        found = self._meta("schema_version")
        if found is None:
            raise StoreError(OTHER_SCHEMA, self.location)
        return LEGACY_VERSIONS.get(int(found), int(found))

    def _set_version(self, version: int) -> None:
        self._set_meta("schema_version", str(version))

    @contextmanager
    def _migration(self) -> Iterator[None]:
        """One transaction, under a lock every opener takes: the second of two hosts opening
        a new database waits, then finds nothing to do."""
        with self._errors(), self.db.transaction():
            self.db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            self.db.execute("CREATE SCHEMA IF NOT EXISTS feedsvc")
            yield


def _connect(conninfo: str, name: str) -> psycopg.Connection:
    """An autocommit connection (transactions are explicit) to the feedsvc schema, or a
    one-line `StoreError`."""
    try:
        options = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.ProgrammingError as error:
        raise StoreError(f"not a valid PostgreSQL URL: {_one_line(error)}", name) from None
    extra = {} if "connect_timeout" in options else {"connect_timeout": CONNECT_TIMEOUT}
    try:
        connection = psycopg.connect(conninfo, autocommit=True, **extra)
        connection.execute("SET search_path TO feedsvc")
    except psycopg.Error as error:
        raise StoreError(f"cannot connect: {_one_line(error)}", name) from None
    return connection


def _one_line(error: BaseException) -> str:
    """libpq's message without its multi-line decoration: what went wrong, in one line.
    "connection failed: connection to server at "h" (addr), port p failed: FATAL: why" -> why."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if not lines:
        return type(error).__name__
    text = re.sub(r"^connection failed: ", "", lines[0])
    text = re.sub(r"^connection to server (at|on) .*? failed: ", "", text)
    text = re.sub(r"^FATAL:\s*", "", text) or lines[0]
    if len(lines) > 1 and lines[1].startswith("Is the server running"):
        text += " (is PostgreSQL running there, accepting TCP/IP connections?)"
    return text
