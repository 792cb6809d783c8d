"""The SQLite dialect: one file in WAL mode, one writer at a time (BEGIN IMMEDIATE), batches
of writes as savepoints of one transaction, `PRAGMA data_version` to learn of other
processes' commits, the FTS5 search index (sqlite_search.py), online backup. Every rule is in
`base.SQLStore`."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import StoreError
from ..query import FeedParameters
from . import NO_STORE, Features, Location
from .base import COLUMNS, SQLStore
from .sqlite_search import CREATE_TABLE, DELETE_ALL, DELETE_ROW, INSERT_ROW, newest_matches

# SQLite's page cache: a big document's index pages stay in memory while it is written;
# readers (the server's threads, one connection each) keep SQLite's small default.
INGEST_CACHE_KIB = 16384
READER_CACHE_KIB = 2000


class SQLiteStore(SQLStore):
    """A feedsvc store in one SQLite file; one instance per thread."""

    Error = sqlite3.Error
    features = Features(backup=True)
    # CROSS JOIN: SQLite walks filed's (topic, published, seq) key, then looks each item up.
    FILED_ITEMS = "filed CROSS JOIN items USING (seq, published)"
    GROUP_CONCAT = "group_concat({})"
    INLINE_KEY, KEYED_TABLE = True, " WITHOUT ROWID"  # rowid tables for an integer key only
    INTEGER = "INTEGER"
    SEARCH_DDL = (CREATE_TABLE,)
    BUSY_TIMEOUT_MS = 30_000  # how long a write waits for another's lock (a test shortens it)

    def __init__(
        self,
        db: sqlite3.Connection,
        clock: Callable[[], datetime],
        location: str,
        problem: str | None,
    ) -> None:
        super().__init__(clock, location, problem)
        self.db = db
        self._data_version = -1

    @classmethod
    def open(cls, location: Location, clock: Callable[[], datetime], create: bool) -> SQLiteStore:
        """Open the store at `location`; create it only if `create` (see `open_store`)."""
        path = Path(location.address)
        name = str(path)
        if path.is_dir():
            raise StoreError("is a directory, not a store file", name)
        exists = path.exists()
        if not exists and not create:
            raise StoreError(NO_STORE, name)
        if not exists:
            _make_room(path, location.default)
        problem = _why_not_writable(path if exists else path.parent)
        if problem and (create or not exists):
            raise StoreError(f"cannot create the store: {problem}", name)
        try:
            db = _connect(path, read_only=bool(problem))
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the store: {problem or error}", name) from None
        return cls(db, clock, name, problem)._open(create)

    def _setup(self) -> None:
        try:
            self._version()  # another program's database is left as it is
        except sqlite3.DatabaseError as error:
            reason = self.read_only_reason or error
            raise StoreError(f"not a feedsvc store: {reason}", self.location) from None
        if not self.read_only:
            self.db.execute(f"PRAGMA busy_timeout = {int(self.BUSY_TIMEOUT_MS)}")
            self.db.execute("PRAGMA journal_mode = WAL")
            # WAL with synchronous=NORMAL survives a killed process; only power loss can
            # drop the last commits, never corrupt the file.
            self.db.execute("PRAGMA synchronous = NORMAL")

    def close(self) -> None:
        self.db.close()

    def backup(self, target: Path) -> str:
        """A consistent copy of the store while others read and write it (SQLite's online
        backup), to a new file in an existing directory."""
        if target.exists():
            raise StoreError("already exists; choose a new file", str(target))
        if not target.parent.is_dir():
            raise StoreError(f"no such directory: {target.parent}", str(target))
        problem = _why_not_writable(target.parent)
        if problem:
            raise StoreError(problem, str(target))
        try:
            destination = sqlite3.connect(target)
        except sqlite3.Error as error:
            raise StoreError(f"cannot write: {error}", str(target)) from None
        try:
            self.db.backup(destination)
        except sqlite3.Error as error:
            target.unlink(missing_ok=True)
            raise StoreError(f"cannot write: {error}", str(target)) from None
        finally:
            destination.close()
        return f"backed up {self.location} to {target}"

    # -- running SQL ------------------------------------------------------------------------

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, params)

    def _insert(self, table: str, columns: Sequence[str], rows: Iterable[tuple], tail="") -> int:
        marks = ", ".join("?" * len(columns))
        sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){tail}"
        return self.db.executemany(sql, rows).rowcount

    def _update(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        sets = ", ".join(f"{name} = ?{n}" for n, name in enumerate(columns[1:], start=2))
        self.db.executemany(f"UPDATE {table} SET {sets} WHERE {columns[0]} = ?1", rows)

    def _delete(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        where = " AND ".join(f"{name} = ?" for name in columns)
        self.db.executemany(f"DELETE FROM {table} WHERE {where}", rows)

    def _in(self, column: str, kind: str, values: Sequence[Any]) -> tuple[str, str]:
        # One JSON parameter, whatever the number of values (SQLite caps `?` marks at 32766).
        return f"{column} IN (SELECT value FROM json_each(?))", json.dumps(list(values))

    def _failure(self, error: BaseException) -> StoreError:
        doing = "cannot write the store" if self._writing else "the store cannot be read"
        return StoreError(f"{doing}: {error}", self.location)

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self, big: bool) -> Iterator[None]:
        """SQLite's single writer, all or nothing."""
        if big:
            self.db.execute(f"PRAGMA cache_size = {-INGEST_CACHE_KIB}")
        try:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                yield
                self.db.execute("COMMIT")
            except BaseException:
                if self.db.in_transaction:  # after some errors (a full disk) SQLite has
                    self.db.execute("ROLLBACK")  # rolled back already
                raise
        finally:
            if big:
                self.db.execute(f"PRAGMA cache_size = {-READER_CACHE_KIB}")

    def _in_transaction(self) -> bool:
        return self.db.in_transaction

    def _begin_snapshot(self) -> None:
        self.db.execute("BEGIN")

    def _end_snapshot(self) -> None:
        if self.db.in_transaction:
            self.db.execute("COMMIT")

    def _changed(self) -> bool:
        """Whether another connection committed (one PRAGMA, no table read)."""
        version = self.db.execute("PRAGMA data_version").fetchone()[0]
        changed, self._data_version = version != self._data_version, version
        return changed

    # -- search: FTS5 -----------------------------------------------------------------------

    def _index(self, entries: list[tuple[int, str, str]]) -> None:
        self.db.executemany(INSERT_ROW, entries)

    def _unindex(self, entries: list[tuple[int, str, str]]) -> None:
        self.db.executemany(DELETE_ROW, entries)

    def _clear_index(self) -> None:
        self.db.execute(DELETE_ALL)

    def _search(
        self, topic: str | None, parameters: FeedParameters, limit: int, since: int | None
    ) -> list[tuple]:
        # One state of the store for both statements: the caller's snapshot, or its own.
        with nullcontext() if self.db.in_transaction else self.snapshot():
            seqs = newest_matches(self.db, parameters, limit, topic, since)
            rows = self._among(f"SELECT {COLUMNS} FROM items", "seq", seqs)
        place = {seq: n for n, seq in enumerate(seqs)}
        return sorted(rows, key=lambda row: place[row[0]])

    # -- the schema -------------------------------------------------------------------------

    def _version(self) -> int:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if not version and self.db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise StoreError("not a feedsvc store (a database of something else)", self.location)
        return version

    def _set_version(self, version: int) -> None:
        self.db.execute(f"PRAGMA user_version = {version}")


def _make_room(path: Path, default: bool) -> None:
    """A new store's directory must exist, except the default one (Flask's instance folder)."""
    if path.parent.is_dir():
        return
    if not default:
        raise StoreError(f"no such directory: {path.parent}", str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise StoreError(f"cannot create {path.parent}: {error.strerror}", str(path)) from None


def _why_not_writable(path: Path) -> str | None:
    """Why `path` (a store file or its directory) cannot be written, or None. SQLite's own
    message ("unable to open database file") says neither which nor why."""
    directory = path if path.is_dir() else path.parent
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "read-only file system"
    except OSError as error:
        return error.strerror
    for target in (directory, path):  # WAL needs to create files beside the store
        if not os.access(target, os.W_OK):
            return f"permission denied ({target})"
    return None


def _connect(path: Path, read_only: bool) -> sqlite3.Connection:
    if not read_only:
        return sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Nobody can write a store on a read-only disk, so it cannot change under us: immutable
    # lets SQLite read a WAL-mode file without creating its -shm beside it.
    uri = f"{path.resolve().as_uri()}?mode=ro&immutable=1"
    connection = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return connection
