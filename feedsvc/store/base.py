"""The one SQL store: every rule of a feedsvc store, written once for both engines (ingest,
kill and unkill, embargoes, archive places, export and import, the log, the generation,
migrations, reads). An engine's module subclasses `SQLStore` with its dialect only: how to run
SQL and move many rows, its transactions, its search index, how other processes learn of a
commit, and how it opens. Decisions that need no SQL come from `plan`.

Two shapes hold everything: `_write(work)` runs `work` in one transaction (again after a
conflict with another writer), and `_bump()` moves the generation once per write; `_errors()`
is the one place a driver's error becomes a one-line `StoreError`, on reads and writes.
SQL here is written with `?` placeholders and the table names of `schema`."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from datetime import datetime
from itertools import islice
from operator import attrgetter
from typing import Any, ClassVar, Self, TypeVar

from ..catalog import ALL
from ..errors import StoreError
from ..model import Item
from ..plan import (
    HELD,
    KILLED,
    NEVER,
    Counts,
    Filer,
    Incoming,
    IngestPlan,
    Row,
    Stored,
    from_micros,
    hold_until,
    incoming,
    plan_ingest,
    plan_kill,
    plan_refile,
    plan_unkill,
    row_from_json,
    row_to_json,
    stored_aside,
    to_micros,
)
from ..query import FOLD_VERSION, FeedParameters, indexed_text
from . import NO_STORE, Copied, Export, Exported, Features, LogEntry, Withdrawn
from .schema import BY_NAME, KEY, SEARCH_SINCE, TABLES, TEXT, VERSION, Table

T = TypeVar("T")
Words = Mapping[str, tuple[str, str]]  # items' search words by id (`plan.Incoming.words`)
ATTEMPTS = 5  # a write that meets a conflict with another writer runs again, this many times
CHUNK = 5000  # rows per statement when a whole store is read or copied
BATCH_UNDONE = "cannot write the store: a write failed and the engine undid its whole batch"
FOLD_KEY = "fold"  # meta: the FOLD_VERSION the search index holds ('0': not built yet)
STALE = (
    "the search index was made by another version of feedsvc; run any feedsvc command on the "
    "store where it can be written (feedsvc topics) to rebuild it"
)
# meta: the generation that last took a published item out of a topic unkilled (a withheld
# version; an update filed elsewhere)
TAKEN_DOWN = "taken_down"
KILLED_COLUMNS = ("id", "killed_at", "reason", "topics", "row", "generation")
HELD_COLUMNS = ("id", "published", "row")
FILED_COLUMNS = ("topic", "published", "seq", "ordinal")
# What an update of an item writes: not its seq, id, published (first seen) or ordinal.
# Item columns by name, so a field added to `Row` and to `schema` is read and written here.
READ = ("seq", *Row.__slots__)  # what a feed reads of an item (`row_of`)
COLUMNS = ", ".join(READ)
ITEM_COLUMNS = ("seq", "generation", "ordinal", *Row.__slots__)  # what an insert writes
KEPT = ("seq", "id", "published", "ordinal")  # what an update leaves (published: first seen)
CHANGED = tuple(c for c in ITEM_COLUMNS if c not in KEPT)
# The newsroom formats' columns (the last of Row's): a batch of items without any (wire, JSON
# Lines) is inserted without them, as binding ten NULLs an item costs a tenth of an ingest.
NO_NEWSROOM = (None,) * (len(Row.__slots__) - Row.__slots__.index("guid"))
PLAIN_COLUMNS = ITEM_COLUMNS[: -len(NO_NEWSROOM)]


class Conflict(StoreError):
    """Another writer got in the way (a serialization failure, a deadlock, an id it stored
    first): the write runs again on what the other left."""


class SQLStore:
    """A feedsvc store (the `Store` interface, which documents each public method); one
    instance (one connection) per thread. An engine's subclass supplies the dialect below."""

    Error: ClassVar[type[BaseException]]  # the driver's error class
    features: ClassVar[Features]
    FOR_UPDATE: ClassVar[str] = ""  # what locks the generation row for the transaction
    FILED_ITEMS: ClassVar[str]  # filed joined to items, as the engine walks it fastest
    GROUP_CONCAT: ClassVar[str]  # comma-joined values of a group: "...({})"
    INLINE_KEY: ClassVar[bool] = False  # an integer key said in its column, not apart
    KEYED_TABLE: ClassVar[str] = ""  # after CREATE TABLE (...) of a table keyed apart
    INTEGER: ClassVar[str]  # the type of an integer column (a text one is TEXT)
    SEARCH_DDL: ClassVar[tuple[str, ...]]  # what makes the search index (schema SEARCH_SINCE)

    def __init__(
        self, clock: Callable[[], datetime], location: str, read_only_reason: str | None
    ) -> None:
        self.clock = clock
        self.location = location
        self.read_only_reason = read_only_reason  # why it cannot be written, if it cannot
        self.read_only = read_only_reason is not None
        # Told the topics of items whose embargo this connection lifted (WebSub pings).
        self.lift_listener: Callable[[set[str]], None] | None = None
        self._generation = 0
        self._reread = True  # the counter must be read again (this connection wrote)
        self._snapshot: int | None = None  # inside snapshot(): its generation
        self._next_lift: int | None = None  # when the next embargo lifts (microseconds)
        self._lift_read_at: int | None = None  # the generation `_next_lift` was read at
        self._writing = False
        self._batched = False  # inside `batch()`: writes are savepoints of its transaction
        self._undone = False  # ... and the engine undid that transaction
        # Search index entries held back to the end of the batch (one insert, not one a
        # document): of the writes done (`_pending`), of the one under way (`_entries`).
        self._pending: list[tuple[int, str, str]] = []
        self._entries: list[tuple[int, str, str]] = []
        self._latest: int | None = None  # in a write: the generation, locked
        self._new: int | None = None  # in a write: the generation it moves to

    # -- the dialect: what each engine's subclass supplies ----------------------------------
    # Running SQL (no error conversion there: `_errors` does it): `_execute` one statement
    # (a cursor), `_stream` a query's rows a batch at a time; many rows at once: `_insert`
    # (`tail`: an ON CONFLICT clause; returns how many were inserted), `_update` (columns[1:]
    # of the rows whose columns[0] is given), `_delete`; `_in(column, kind, values)` a
    # condition "column is one of values" and its one parameter. `_failure(error)`:
    # a driver error as a one-line StoreError (a `Conflict` if running again may help).
    # Transactions: `_transaction(big)` one write transaction (under the engine's write lock
    # if it has one), `_in_transaction()` whether one is still open (an engine may undo it
    # by itself), `_begin_snapshot` / `_end_snapshot`; `_changed()` whether another
    # connection may have moved the generation (cheap: no table read), `_notify` it.
    # Search: `_index` / `_unindex` entries (seq, folded title, folded body), `_clear_index`,
    # `_search` (the rows of `Store.search`'s answer, in feed order). The schema: `_version`
    # (0: no store; StoreError for another program's database), `_set_version`, `_migration`
    # (if it needs more than a transaction), `_setup` (a new connection's settings).

    def _stream(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple]:
        return self._execute(sql, params)

    def _notify(self, generation: int) -> None:
        """Tell other connections, when this transaction commits (if the engine can)."""

    def _unindex(self, entries: list[tuple[int, str, str]]) -> None:
        """Take entries out of the search index (an index that keeps no text needs them)."""

    def _clear_index(self) -> None:
        """Empty the search index before it is filled again (if rows do not hold it)."""

    def _type(self, kind: str) -> str:
        return "TEXT" if kind == TEXT else self.INTEGER

    # -- running SQL: the one place driver errors are converted -----------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self.Error as error:
            raise self._failure(error) from None

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._errors():
            return self._execute(sql, params).fetchall()

    def _value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = self._rows(sql, params)
        return found[0][0] if found else None

    def _lazy(self, sql: str, params: Sequence[Any] = ()) -> Iterator[tuple]:
        """The rows of `sql` as they are read; the query runs now, so a store that cannot
        answer it fails here, before the caller acts (`copy` makes DST only after this)."""
        with self._errors():  # SQLite's stream is a cursor: the query runs at once
            rows = iter(self._stream(sql, params))
            first = next(rows, None)
        return self._rest(first, rows)

    def _rest(self, row: tuple | None, rows: Iterator[tuple]) -> Iterator[tuple]:
        try:
            while row is not None:
                yield row
                try:  # not `_errors()`: a context manager a row was most of reading ids
                    row = next(rows, None)
                except self.Error as error:
                    raise self._failure(error) from None
        finally:
            # Left unread (copy refused its DST) and closed after the store: nothing to undo.
            with contextlib.suppress(self.Error):
                rows.close()

    def _among(self, sql: str, column: str, values: Sequence[Any]) -> list[tuple]:
        """The rows of `sql` (up to its WHERE) whose `column` is one of `values`."""
        condition, listed = self._in(column, "int" if column == "seq" else "text", values)
        return self._rows(f"{sql} WHERE {condition}", (listed,))

    def _meta(self, key: str) -> str | None:
        return self._value("SELECT value FROM meta WHERE key = ?", (key,))

    def _set_meta(self, key: str, value: str) -> None:
        self._upsert("meta", ("key", "value"), [(key, value)])

    def _upsert(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        """Insert rows; a row whose key is there already replaces the other columns."""
        key = BY_NAME[table].key
        sets = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
        self._insert(table, columns, rows, f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET {sets}")

    # -- writing: one transaction shape -----------------------------------------------------

    def _write(self, work: Callable[[], T], big: bool = False) -> T:
        """Run `work` in one transaction, all or nothing, again after a conflict with another
        writer (a few times). Writes call `_lock()` before they change anything and `_bump()`
        when they change what readers see."""
        if self.read_only:
            raise StoreError(f"the store is read-only: {self.read_only_reason}", self.location)
        for attempt in range(1, ATTEMPTS + 1):
            self._writing, self._latest, self._new = True, None, None
            try:
                place = self._savepoint() if self._batched else self._transaction(big)
                with self._errors(), place:
                    result = work()
                    if self._new is not None:
                        self._notify(self._new)
            except Conflict:
                if attempt == ATTEMPTS:
                    raise StoreError(
                        f"gave up after {ATTEMPTS} conflicts with other writers", self.location
                    ) from None
                time.sleep(0.01 * attempt)
                continue
            finally:
                self._writing = False
                self._reread = self._reread or self._new is not None
            return result
        raise AssertionError("unreachable")

    def _lock(self) -> int:
        """Take the write lock (the generation row) and read the latest generation: writers
        queue here, and every change moves it, so the holder sees every commit before."""
        if self._latest is None:
            sql = "SELECT value FROM meta WHERE key = 'generation'" + self.FOR_UPDATE
            self._latest = int(self._value(sql))
        return self._latest

    def _bump(self, to: int | None = None) -> int:
        """The generation this write moves the store to (the next one, or `to`), set once."""
        if self._new is None:
            self._new = self._lock() + 1 if to is None else to
            self._execute("UPDATE meta SET value = ? WHERE key = 'generation'", (str(self._new),))
        return self._new

    def _log(self, at: int, who: str, what: str, detail: str) -> None:
        self._execute(
            "INSERT INTO log (n, at, who, what, detail) "
            "SELECT coalesce(max(n), 0) + 1, ?, ?, ?, ? FROM log",
            (at, who, what, detail),
        )

    # -- ingest -----------------------------------------------------------------------------

    def ingest(self, items: Sequence[Item], topics_for: Filer, who: str = "cli") -> Counts:
        return self.ingest_incoming(incoming(items, topics_for), who)

    def ingest_incoming(self, ready: Incoming, who: str = "cli") -> Counts:
        # Planned on rows read before the write lock, again on fresh rows if a commit came in
        # between (every change moves the generation): concurrent ingests neither lose an
        # update nor store an id twice, and one that changes nothing waits for no lock where
        # the engine lets readers write (PostgreSQL).
        items, filed, digests = ready.items, ready.filed, ready.digests
        ids = [item.id for item in items]
        words = dict(zip(ids, ready.words, strict=True))

        def work() -> Counts:
            now = to_micros(self.clock())
            seen = int(self._meta("generation") or 0)
            plan = plan_ingest(items, filed, self._existing(ids), now, digests)
            if plan.changes and self._lock() != seen:  # another writer committed meanwhile
                plan = plan_ingest(items, filed, self._existing(ids), now, digests)
            if plan.changes:
                generation = self._bump()
                self._apply(plan, generation, words)
                self._log(now, who, "ingest", str(plan.counts()))
                for reason, canceled in plan.cancel_groups():  # as `feedsvc kill --reason` does
                    self._withdraw(canceled, reason, who, now, generation, plan.canceled_new)
            return plan.counts()

        return self._write(work, big=len(items) > 1000)

    def _existing(self, ids: Sequence[str]) -> dict[str, Stored]:
        sql = "SELECT id, seq, digest, content IS NOT NULL, published, updated, version FROM items"
        found = {
            r[0]: Stored(r[1], r[2], bool(r[3]), r[4], r[5], version=r[6])
            for r in self._among(sql, "id", ids)
        }
        for table, state in (("held", HELD), ("killed", KILLED)):
            for (text,) in self._among(f"SELECT row FROM {table}", "id", ids):
                row = row_from_json(text)
                found[row.id] = stored_aside(row, state)
        return found

    def _apply(self, plan: IngestPlan, generation: int, words: Words | None = None) -> None:
        """Write a plan (the caller holds the write lock, so the archive places are ours);
        `words`: the items' search words by id, where known."""
        ordinals = self._ordinals()
        if plan.inserts:
            top = self._value("SELECT coalesce(max(seq), 0) FROM items")
            numbered = list(enumerate(plan.inserts, start=top + 1))
            rows = [(s, generation, take_place(ordinals, ALL), *row_values(r)) for s, r in numbered]
            columns = ITEM_COLUMNS
            if all(row[len(PLAIN_COLUMNS) :] == NO_NEWSROOM for row in rows):
                columns, rows = PLAIN_COLUMNS, [row[: len(PLAIN_COLUMNS)] for row in rows]
            entries = [entry(seq, row, words) for seq, row in numbered]
            if self._insert_items(columns, rows, entries) != len(rows):
                raise Conflict("another writer stored one of these items first", self.location)
            self._file(numbered, ordinals)
        if plan.updates:
            self._reindex_updates(plan.updates, words)
            changes = ((seq, generation, *updated_values(row)) for seq, row in plan.updates)
            self._update("items", ("seq", *CHANGED), changes)
            self._refile(plan.updates, ordinals)  # an update may leave a topic (a byline fixed)
        self._save_ordinals(ordinals)
        if plan.withholds:  # out of every feed until a usable version comes
            self._take_down([seq for seq, _ in plan.withholds])
            self._set_meta(TAKEN_DOWN, str(generation))
        holds = [*plan.holds, *(row for _, row in plan.withholds)]
        if holds:
            self._upsert("held", HELD_COLUMNS, [held_values(row) for row in holds])

    def _reindex_updates(self, updates: Sequence[tuple[int, Row]], words: Words | None) -> None:
        """Index updated items by their new text (read the old first: an index may have to be
        told the words it holds); items whose text is the same stay."""
        sql = "SELECT seq, title, content, summary FROM items"
        old = {seq: tuple(text) for seq, *text in self._among(sql, "seq", [s for s, _ in updates])}
        changed = [(s, r) for s, r in updates if old[s] != (r.title, r.content, r.summary)]
        if changed:
            self._forget([(seq, *indexed_text(*old[seq])) for seq, _ in changed])
            self._add_to_index([entry(seq, row, words) for seq, row in changed])

    def _file(self, rows: Iterable[tuple[int, Row]], ordinals: dict[str, int], kept=()) -> None:
        """File rows under their topics (but those `kept`), each at the next archive place."""
        self._insert(
            "filed",
            FILED_COLUMNS,
            (
                (slug, row.published, seq, take_place(ordinals, slug))
                for seq, row in rows
                for slug in row.topics
                if (slug, seq) not in kept
            ),
        )

    def _refile(self, rows: Sequence[tuple[int, Row]], ordinals: dict[str, int]) -> None:
        """File stored items under `row.topics`: a topic an item stays in keeps its archive
        place; a new one gets the next place there."""
        kept = set(self._among("SELECT topic, seq FROM filed", "seq", [s for s, _ in rows]))
        left = sorted(kept - {(slug, seq) for seq, row in rows for slug in row.topics})
        self._delete("filed", ("topic", "seq"), left)
        self._file(rows, ordinals, kept)
        if left:  # its archive pages change, and no killed row says so (`archive_changes`)
            self._set_meta(TAKEN_DOWN, str(self._bump()))

    def _retopic(self, rows: Sequence[tuple[int, Row]]) -> None:
        """Write stored items' new `topics` and `pinned`, and file them so."""
        generation = self._bump()
        changes = [(seq, row.pinned, ",".join(row.topics), generation) for seq, row in rows]
        self._update("items", ("seq", "pinned", "topics", "generation"), changes)
        ordinals = self._ordinals()
        self._refile(rows, ordinals)
        self._save_ordinals(ordinals)

    def _ordinals(self) -> dict[str, int]:
        return dict(self._rows("SELECT topic, next FROM ordinals"))

    def _save_ordinals(self, ordinals: dict[str, int]) -> None:
        """The next archive place of each topic, as counted on by `take_place`."""
        self._upsert("ordinals", ("topic", "next"), list(ordinals.items()))

    @contextmanager
    def batch(self) -> Iterator[None]:
        # A run of small documents commits once, not per document (a commit costs more than
        # writing 200 items); each write is a `_savepoint`, none tried after one undid all.
        with self._errors(), self._transaction(big=True):
            self._batched, self._undone, self._pending = True, False, []
            try:
                yield
                if self._undone:  # the writes that seemed to succeed were undone too
                    raise StoreError(BATCH_UNDONE, self.location)
                self._flush_index()
            finally:
                self._batched, self._pending = False, []
                self._reread = True

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        """A write inside `batch()`: all or nothing within the batch's transaction."""
        if self._undone:
            raise StoreError(BATCH_UNDONE, self.location)
        self._execute("SAVEPOINT one")
        pending, self._entries = self._pending, []
        try:
            yield
        except BaseException:
            self._pending = pending  # entries this write flushed are undone with it
            if self._in_transaction():
                self._execute("ROLLBACK TO one")
                self._execute("RELEASE one")
            else:  # the engine undid the whole transaction (SQLite on a full disk, say)
                self._undone = True
            raise
        self._execute("RELEASE one")
        self._pending += self._entries

    def _insert_items(
        self, columns: Sequence[str], rows: list[tuple], entries: list[tuple[int, str, str]]
    ) -> int:
        """Insert new items (an id stored already is left: the count says so) and their search
        index entries (in the same order); how many were inserted."""
        inserted = self._insert("items", columns, rows, " ON CONFLICT (id) DO NOTHING")
        self._add_to_index(entries)
        return inserted

    def _add_to_index(self, entries: list[tuple[int, str, str]]) -> None:
        """Index entries now, or in a batch at its end (with the rest of the batch's)."""
        if self._batched:
            self._entries += entries
        else:
            self._index(entries)

    def _flush_index(self) -> None:
        if self._pending or self._entries:
            self._index(self._pending + self._entries)
            self._pending, self._entries = [], []

    def _forget(self, entries: list[tuple[int, str, str]]) -> None:
        """Take entries out of the search index, once what is held back is in."""
        self._flush_index()
        self._unindex(entries)

    def _migration(self) -> AbstractContextManager[None]:
        """The transaction migrations run in (under a lock every opener takes)."""
        return self._transaction(big=False)

    def sync_catalog(self, digest: str, topics_for: Filer) -> int:
        if self.read_only or self._meta("catalog") == digest:
            return 0

        def work() -> int:
            self._lock()
            if self._meta("catalog") == digest:  # another process re-filed first
                return 0
            rows = self._rows(f"SELECT {COLUMNS} FROM items")
            moves = plan_refile(((row[0], row_of(row)) for row in rows), topics_for)
            self._set_meta("catalog", digest)
            if moves:
                self._retopic(moves)
            return len(moves)

        return self._write(work, big=True)

    # -- editorial control: embargo, kill ---------------------------------------------------

    def _now(self) -> int:
        """The clock's time, under the write lock (an editorial write's first step)."""
        self._lock()
        return to_micros(self.clock())

    def _held(self, where: str = "", params: Sequence[Any] = ()) -> list[Row]:
        """Held rows (`where`: a condition on the held table), oldest first."""
        rows = self._rows(f"SELECT row FROM held{where}", params)
        return sorted(map(row_from_json, (t for (t,) in rows)), key=lambda r: (r.published, r.id))

    def lift_due(self, who: str = "server") -> int:

        def work() -> list[Row]:
            now = self._now()
            rows = self._held(" WHERE published <= ?", (now,))
            if rows:
                self._apply(IngestPlan(tuple(rows), (), 0), self._bump())
                self._delete("held", ("id",), [(row.id,) for row in rows])
                self._log(now, who, "lift", " ".join(row.id for row in rows))
            return rows

        lifted = self._write(work)
        self._lift_read_at = None
        if lifted and self.lift_listener:
            self.lift_listener({slug for row in lifted for slug in row.topics})
        return len(lifted)

    def kill(self, ids: Sequence[str], reason: str | None, who: str) -> list[str]:
        return self._write(lambda: self._withdraw(ids, reason, who, self._now()))

    def _withdraw(
        self,
        ids: Sequence[str],
        reason: str | None,
        who: str,
        now: int,
        generation: int | None = None,
        unseen: Sequence[Row] = (),
    ) -> list[str]:
        """The kill: withdraw items from every feed, page and archive (published or held),
        keep them whole for an unkill, log it (`unseen`: see `plan_kill`)."""
        kill = plan_kill(ids, self._existing(list(ids)), unseen)
        if kill.unknown is not None:
            raise StoreError(f"no item {kill.unknown!r} in the store", self.location)
        if not kill.withdrawn:
            return []
        generation = self._bump() if generation is None else generation
        held = self._among("SELECT row FROM held", "id", kill.held)
        self._delete("held", ("id",), [(item_id,) for item_id in kill.held])
        rows = [*map(row_from_json, (t for (t,) in held)), *self._take_down(kill.live), *kill.new]
        gone = [killed_values(Withdrawn(r, now, reason, r.topics, generation)) for r in rows]
        self._insert("killed", KILLED_COLUMNS, gone)
        detail = " ".join(kill.withdrawn) + (f": {reason}" if reason else "")
        self._log(now, who, "kill", detail)
        return list(kill.withdrawn)

    def _take_down(self, seqs: Sequence[int]) -> list[Row]:
        """Published items out of every feed, topic and the search index; their rows."""
        live = self._among(f"SELECT {COLUMNS} FROM items", "seq", seqs)
        self._forget([(row[0], *indexed_text(*row[2:5])) for row in live])
        for table in ("filed", "items"):
            self._delete(table, ("seq",), [(seq,) for seq in seqs])
        return [row_of(row) for row in live]

    def unkill(self, ids: Sequence[str], who: str) -> list[str]:

        def work() -> list[str]:
            now = self._now()
            rows = self._among("SELECT id, row FROM killed", "id", ids)
            found = {item_id: row_from_json(text) for item_id, text in rows}
            unknown = next((item_id for item_id in ids if item_id not in found), None)
            if unknown is not None:
                raise StoreError(f"no withdrawn item {unknown!r}", self.location)
            self._apply(plan_unkill([found[i] for i in ids], now), self._bump())
            self._delete("killed", ("id",), [(item_id,) for item_id in ids])
            self._log(now, who, "unkill", " ".join(ids))
            return list(ids)

        return self._write(work)

    def pin(self, item_id: str, topics: Sequence[str], who: str) -> tuple[str, ...]:
        def work() -> tuple[str, ...]:
            self._lock()
            found = self._rows(f"SELECT {COLUMNS} FROM items WHERE id = ?", (item_id,))
            if not found:
                raise StoreError(f"no published item {item_id!r} in the store", self.location)
            seq, row = found[0][0], row_of(found[0])
            pinned = ",".join(topics)
            if row.pinned == pinned and row.topics == tuple(topics):
                return row.topics
            self._retopic([(seq, replace(row, pinned=pinned, topics=tuple(topics)))])
            self._log(to_micros(self.clock()), who, "pin", f"{item_id}: {pinned}")
            return row.topics

        return self._write(work)

    def pinned(self) -> Iterator[Item]:
        sql = f"SELECT {COLUMNS} FROM items WHERE pinned IS NOT NULL ORDER BY seq"
        return (
            replace(item_of(row), topics=topics_of(row[READ.index("pinned")]))
            for row in self._lazy(sql)
        )

    def killed(self, since: int = 0) -> list[tuple[str, datetime, str | None, tuple[str, ...]]]:
        rows = self._rows(
            "SELECT id, killed_at, reason, topics FROM killed WHERE killed_at >= ?", (since,)
        )
        return [
            (item_id, from_micros(at), reason, topics_of(topics))
            for item_id, at, reason, topics in sorted(rows, key=lambda r: (-r[1], r[0]))
        ]

    def killed_at(self, item_id: str) -> datetime | None:
        found = self._value("SELECT killed_at FROM killed WHERE id = ?", (item_id,))
        return from_micros(found) if found is not None else None

    def killed_ids(self) -> Iterator[str]:
        yield from sorted(item_id for (item_id,) in self._rows("SELECT id FROM killed"))

    def held(self) -> dict[str, int]:
        counts = Counter({ALL: 0})
        counts.update(slug for row in self._held() for slug in (ALL, *row.topics))
        return dict(counts)

    def next_lift(self) -> datetime | None:
        value = self._next_lift_at()
        return from_micros(value) if value is not None else None

    def _next_lift_at(self) -> int | None:
        return self._value("SELECT min(published) FROM held WHERE published < ?", (NEVER,))

    def log(self, limit: int = 100) -> list[tuple[datetime, str, str, str]]:
        sql = "SELECT at, who, what, detail FROM log ORDER BY n DESC LIMIT ?"
        return [(from_micros(at), *rest) for at, *rest in self._rows(sql, (limit,))]

    # -- generation: how renderers know the store changed -----------------------------------

    def generation(self) -> int:
        if self._snapshot is not None:
            return self._snapshot
        with self._errors():
            if self._changed() or self._reread:
                self._reread = False
                self._generation = int(self._meta("generation") or 0)
            if self._lift_read_at != self._generation:
                self._next_lift = self._next_lift_at()
                self._lift_read_at = self._generation
        due = self._next_lift is not None and to_micros(self.clock()) >= self._next_lift
        if due and not self.read_only:  # else one comparison a call
            self.lift_due()
            return self.generation()
        return self._generation

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        with self._errors():
            self._begin_snapshot()
            try:  # the first read fixes the snapshot: the generation of what is read
                generation = int(self._meta("generation") or 0)
            except BaseException:
                self._end_snapshot()
                raise
        self._snapshot = generation
        try:
            yield
        finally:
            self._snapshot = None
            with self._errors():
                self._end_snapshot()

    def health(self) -> tuple[int, int]:
        generation = self.generation()
        return self._value("SELECT count(*) FROM items"), generation

    # -- reading ----------------------------------------------------------------------------

    def _items(self, source: str, params: Sequence[Any]) -> list[Item]:
        return [item_of(row) for row in self._rows(f"SELECT {COLUMNS} FROM {source}", params)]

    def _feed(self, topic: str, tail: str, params: Sequence[Any]) -> list[Item]:
        """The items of `topic` (`all`: every item) by `tail`: a condition and the rest of the
        query, on `{t}`, the table that keeps the topic's order (items, or filed)."""
        if topic == ALL:
            return self._items(f"items WHERE {tail.format(t='items')}", params)
        source = f"{self.FILED_ITEMS} WHERE filed.topic = ? AND {tail.format(t='filed')}"
        return self._items(source, (topic, *params))

    def newest(self, topic: str, limit: int) -> list[Item]:
        return self._feed(topic, "TRUE ORDER BY {t}.published DESC, {t}.seq DESC LIMIT ?", (limit,))

    def search(
        self, topic: str, parameters: FeedParameters, limit: int, since: datetime | None = None
    ) -> list[Item]:
        if parameters.filter_time is not None and since is None:
            raise ValueError("filter_time needs the cut-off (since)")
        if self._meta(FOLD_KEY) != str(FOLD_VERSION):
            raise StoreError(STALE, self.location)
        floor = None if since is None else to_micros(since)
        with self._errors():
            rows = self._search(None if topic == ALL else topic, parameters, limit, floor)
        return [item_of(row) for row in rows]

    def item(self, item_id: str) -> Item | None:
        found = self._items("items WHERE id = ?", (item_id,))
        return found[0] if found else None

    def archive_pages(self, topic: str, size: int) -> int:
        return (self._value("SELECT next FROM ordinals WHERE topic = ?", (topic,)) or 0) // size

    def archive_page(self, topic: str, page: int, size: int) -> list[Item]:
        tail = "{t}.ordinal >= ? AND {t}.ordinal < ? ORDER BY {t}.ordinal DESC"
        return self._feed(topic, tail, (page * size, page * size + size))

    def archive_dates(self, page: int, size: int) -> list[tuple[str, datetime | None]]:
        sql = (
            "SELECT id, updated FROM items WHERE ordinal >= ? AND ordinal < ? ORDER BY ordinal DESC"
        )
        rows = self._rows(sql, (page * size, page * size + size))
        return [(item_id, None if at is None else from_micros(at)) for item_id, at in rows]

    def archive_changes(self, since: int, size: int) -> set[tuple[str, int]]:
        sql = "SELECT ordinal FROM items WHERE generation > ?"
        changed = {(ALL, ordinal // size) for (ordinal,) in self._rows(sql, (since,))}
        sql = (
            "SELECT filed.topic, filed.ordinal FROM items JOIN filed ON filed.seq = items.seq "
            "WHERE items.generation > ?"
        )
        changed.update((topic, ordinal // size) for topic, ordinal in self._rows(sql, (since,)))
        # A kill, or a withheld version taking an item out (rare): every page of its topics.
        killed = self._rows("SELECT topics FROM killed WHERE generation > ?", (since,))
        emptied = {topic for (topics,) in killed for topic in (ALL, *topics_of(topics))}
        if int(self._meta(TAKEN_DOWN) or 0) > since:
            emptied.update((ALL, *(t for (t,) in self._rows("SELECT DISTINCT topic FROM filed"))))
        for topic in emptied:
            changed.update((topic, page) for page in range(self.archive_pages(topic, size)))
        return changed

    def counts(self) -> dict[str, int]:
        counts = dict(sorted(self._rows("SELECT topic, count(*) FROM filed GROUP BY topic")))
        counts[ALL] = self._value("SELECT count(*) FROM items")
        return counts

    def changed_since(self, generation: int) -> Iterator[Item]:
        sql = f"SELECT {COLUMNS} FROM items WHERE generation > ? ORDER BY seq"
        return (item_of(row) for row in self._lazy(sql, (generation,)))

    def last_updated(self) -> datetime | None:
        value = self._value("SELECT max(updated) FROM items")
        return from_micros(value) if value is not None else None

    def item_ids(self) -> Iterator[str]:
        return (item_id for (item_id,) in self._lazy("SELECT id FROM items ORDER BY seq"))

    def newest_ids(self, count: int) -> list[str]:
        rows = self._rows("SELECT id FROM items ORDER BY seq DESC LIMIT ?", (count,))
        return [item_id for (item_id,) in reversed(rows)]

    # -- copying between stores -------------------------------------------------------------

    def export(self) -> Export:
        places = self.GROUP_CONCAT.format("topic || '=' || ordinal")
        rows: Iterator[Exported] = (
            (row[0], row[len(READ)], row_of(row), archive_places(*row[len(READ) + 1 :]))
            for row in self._lazy(
                f"SELECT {COLUMNS}, generation, ordinal, (SELECT {places} FROM filed "
                "WHERE filed.seq = items.seq) FROM items ORDER BY seq"
            )
        )
        held = tuple(self._held())
        withdrawn = tuple(
            Withdrawn(row_from_json(text), at, reason, topics_of(topics), generation)
            for _, text, at, reason, topics, generation in sorted(
                self._rows("SELECT id, row, killed_at, reason, topics, generation FROM killed")
            )
        )
        log: Iterator[LogEntry] = (
            tuple(entry) for entry in self._lazy("SELECT at, who, what, detail FROM log ORDER BY n")
        )
        generation = int(self._meta("generation") or 0)
        catalog = self._meta("catalog") or ""
        return Export(generation, catalog, rows, self._ordinals(), held, withdrawn, log)

    def import_store(self, export: Export) -> Copied:

        def work() -> Copied:
            latest = self._lock()
            found = self._value(
                "SELECT EXISTS (SELECT 1 FROM items) OR EXISTS (SELECT 1 FROM held) "
                "OR EXISTS (SELECT 1 FROM killed)"
            )
            if found:
                raise StoreError("already holds items; copy into an empty store", self.location)
            ordinals: dict[str, int] = {}  # the next archive place of each topic
            count = 0
            while batch := list(islice(export.rows, CHUNK)):
                self._import_rows(batch, ordinals)
                count += len(batch)
            for topic, following in export.ordinals.items():  # withdrawn items' places too
                ordinals[topic] = max(ordinals.get(topic, 0), following)
            self._save_ordinals(ordinals)
            self._insert("held", HELD_COLUMNS, map(held_values, export.held))
            self._insert("killed", KILLED_COLUMNS, map(killed_values, export.withdrawn))
            last = self._value("SELECT coalesce(max(n), 0) FROM log")
            logged = 0
            while entries := list(islice(export.log, CHUNK)):
                numbered = [(last + logged + n, *e) for n, e in enumerate(entries, start=1)]
                self._insert("log", ("n", "at", "who", "what", "detail"), numbered)
                logged += len(entries)
            self._set_meta("catalog", export.catalog)
            self._bump(max(export.generation, latest))
            return Copied(count, len(export.held), len(export.withdrawn), logged)

        return self._write(work, big=True)

    def _import_rows(self, batch: list[Exported], ordinals: dict[str, int]) -> None:
        rows = [(seq, gen, places[ALL], *row_values(row)) for seq, gen, row, places in batch]
        self._insert_items(ITEM_COLUMNS, rows, [entry(seq, row) for seq, _, row, _ in batch])
        self._insert(
            "filed",
            FILED_COLUMNS,
            [
                (slug, row.published, seq, p[slug])
                for seq, _, row, p in batch
                for slug in row.topics
            ],
        )
        for _, _, _, places in batch:
            for topic, place in places.items():
                ordinals[topic] = max(ordinals.get(topic, 0), place + 1)

    # -- opening: the schema, made and migrated from `schema.TABLES` -------------------------

    def _open(self, create: bool) -> Self:
        """Set up a store just connected to (the engine's `_setup`), check its schema,
        migrate it; closed again if any of that fails."""
        try:
            with self._errors():
                self._setup()
                self._prepare(create)
        except StoreError:
            self.close()
            raise
        return self

    def _ddl(self, table: Table) -> str:
        """CREATE TABLE for `table` as it was at the version that added it."""
        inline = self.INLINE_KEY and table.key == tuple(
            c.name for c in table.columns if c.kind == KEY
        )
        columns = [
            f"{c.name} {self._type(c.kind)}"
            + (" PRIMARY KEY" if inline and c.kind == KEY else "" if c.null else " NOT NULL")
            + (" UNIQUE" if c.unique else "")
            for c in table.columns
            if c.since <= table.since
        ]
        if inline:
            return f"CREATE TABLE {table.name} ({', '.join(columns)})"
        key = f"PRIMARY KEY ({', '.join(table.key)})"
        return f"CREATE TABLE {table.name} ({', '.join([*columns, key])}){self.KEYED_TABLE}"

    def _prepare(self, create: bool) -> None:
        """Check the store's schema version; migrate it (a writable store) and rebuild its
        search index if made with other folding rules. Run once, by the engine's `open`."""
        version = self._version()
        if version == 0 and not create:
            raise StoreError(NO_STORE, self.location)
        if version > VERSION:
            raise StoreError(
                f"the store has schema {version}, newer than this feedsvc knows ({VERSION}); "
                "upgrade feedsvc",
                self.location,
            )
        if self.read_only:
            if version < VERSION:
                raise StoreError("the store needs an upgrade, and it is read-only", self.location)
            return
        if version < VERSION:
            with self._migration():
                self._migrate(self._version())  # again: another process may have done it
        if self._meta(FOLD_KEY) != str(FOLD_VERSION):  # again under the lock: done meanwhile?
            self._write(lambda: self._meta(FOLD_KEY) != str(FOLD_VERSION) and self._refold())

    def _migrate(self, version: int) -> None:
        """From `version` to `VERSION`, each step's tables, columns and indexes from the
        schema, then its data step."""
        for number in range(version + 1, VERSION + 1):
            for table in TABLES:
                if table.since == number:
                    self._execute(self._ddl(table))
                elif table.since < number:
                    for column in table.columns:
                        if column.since == number:
                            kind = self._type(column.kind)
                            self._execute(
                                f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
                            )
                for index in table.indexes:
                    if index.since == number:
                        columns = ", ".join(index.columns)
                        self._execute(f"CREATE INDEX {index.name} ON {table.name} ({columns})")
            for statement in DATA_STEPS.get(number, ()):
                self._execute(statement)
            if number == SEARCH_SINCE:
                for statement in self.SEARCH_DDL:
                    self._execute(statement)
                self._refold()
        self._set_version(VERSION)

    def _refold(self) -> None:
        """Fill the search index anew from every live item, with this feedsvc's folding; with
        items, move the generation (search answers may change; a new store's stays 0)."""
        self._clear_index()
        indexed = 0
        rows = self._stream("SELECT seq, title, content, summary FROM items")
        while chunk := list(islice(rows, CHUNK)):
            self._index([(seq, *indexed_text(*text)) for seq, *text in chunk])
            indexed += len(chunk)
        self._set_meta(FOLD_KEY, str(FOLD_VERSION))
        if indexed:
            self._execute(
                "UPDATE meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) "
                "WHERE key = 'generation'"
            )
            self._reread = True


def entry(seq: int, row: Row, words: Words | None = None) -> tuple[int, str, str]:
    """A row's search index entry: seq, folded title, folded body (from `words` if there)."""
    found = words.get(row.id) if words else None
    return (seq, *(found or indexed_text(row.title, row.content, row.summary)))


# -- rows as the tables keep them ------------------------------------------------------------

_FIELDS = attrgetter(*Row.__slots__)
_TOPICS = Row.__slots__.index("topics")  # kept comma-separated


def row_values(row: Row) -> tuple:
    """A row's columns after seq, in READ order (topics comma-separated)."""
    values = _FIELDS(row)
    return (*values[:_TOPICS], ",".join(values[_TOPICS]), *values[_TOPICS + 1 :])


def updated_values(row: Row) -> tuple:
    """What an update writes of a row (CHANGED but the generation)."""
    return tuple(
        v for name, v in zip(Row.__slots__, row_values(row), strict=True) if name not in KEPT
    )


def row_of(row: tuple) -> Row:
    """The Row of a tuple of READ columns (seq first)."""
    values = row[1 : len(READ)]
    return Row(*values[:_TOPICS], topics_of(values[_TOPICS]), *values[_TOPICS + 1 :])


def item_of(row: tuple) -> Item:
    return row_of(row).item()


def topics_of(text: str | None) -> tuple[str, ...]:
    """Slugs as a column keeps them, comma-separated ("" or NULL: none)."""
    return tuple(text.split(",")) if text else ()


def held_values(row: Row) -> tuple[str, int, str]:
    """A `held` row: id, the moment its embargo lifts (withheld: NEVER), the whole row."""
    return row.id, hold_until(row), row_to_json(row)


def killed_values(withdrawn: Withdrawn) -> tuple[str, int, str | None, str, str, int]:
    """A `killed` row: id, when, reason, where it was filed, the whole row, the generation."""
    w = withdrawn
    return w.row.id, w.killed_at, w.reason, ",".join(w.topics), row_to_json(w.row), w.generation


def take_place(ordinals: dict[str, int], topic: str) -> int:
    """The next archive place of `topic`, counted on."""
    place = ordinals.get(topic, 0)
    ordinals[topic] = place + 1
    return place


def archive_places(ordinal: int, filed: str | None) -> dict[str, int]:
    """An item's archive places by topic (`all` included), from `topic=place,...`."""
    places = {"all": ordinal}
    for pair in filed.split(",") if filed else ():
        topic, _, place = pair.rpartition("=")
        places[topic] = int(place)
    return places


# What each schema version does to the rows (after its tables, columns and indexes).
DATA_STEPS: dict[int, tuple[str, ...]] = {
    1: ("INSERT INTO meta VALUES ('generation', '0'), ('catalog', '')",),
    # Archive places: first-seen order, in `all` and in each topic.
    3: (
        "UPDATE items SET ordinal = numbered.n FROM (SELECT seq, row_number() OVER "
        "(ORDER BY seq) - 1 AS n FROM items) AS numbered WHERE numbered.seq = items.seq",
        "UPDATE filed SET ordinal = numbered.n FROM (SELECT topic, seq, row_number() OVER "
        "(PARTITION BY topic ORDER BY seq) - 1 AS n FROM filed) AS numbered "
        "WHERE numbered.topic = filed.topic AND numbered.seq = filed.seq",
        "INSERT INTO ordinals SELECT 'all', count(*) FROM items",
        "INSERT INTO ordinals SELECT topic, count(*) FROM filed GROUP BY topic",
    ),
}
