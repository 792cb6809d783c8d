"""The SQLite backend: one file in WAL mode; schema, migrations and its SQL. The rules of what
an ingest does come from `plan`; this module only reads and writes rows."""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from ..catalog import ALL
from ..errors import StoreError
from ..model import Item
from ..plan import (
    HELD,
    KILLED,
    Counts,
    Filer,
    IngestPlan,
    Row,
    Stored,
    file_items,
    from_micros,
    merge_duplicates,
    plan_ingest,
    plan_refile,
    row_from_json,
    to_micros,
)
from ..query import FOLD_VERSION, FeedParameters
from . import NO_STORE, Copied, Export, Location, Withdrawn, archive_places
from .rows import (
    held_values,
    item_of,
    killed_values,
    row_of,
    row_values,
    take_place,
    topics_of,
)
from .search import FOLD_KEY, body_text, check_cut_off, check_fold
from .sqlite_search import (
    CREATE_TABLE,
    DELETE_ALL,
    DELETE_ROW,
    INSERT_ROW,
    index_row,
    newest_matches,
)

SCHEMA_VERSION = 4
BATCH = 500  # ids per IN (...) query: well under SQLite's variable limit


def _index_all(connection: sqlite3.Connection) -> None:
    """Fill the search index anew from every live item, with this feedsvc's folding; with
    items, move the generation (search answers may change; a new store's stays 0). Inside the
    caller's write transaction."""
    connection.execute(DELETE_ALL)
    rows = connection.execute("SELECT seq, title, content, summary FROM items")
    indexed = 0
    while batch := rows.fetchmany(BATCH):
        indexed += len(batch)
        connection.executemany(
            INSERT_ROW,
            [
                index_row(seq, title, body_text(content, summary))
                for seq, title, content, summary in batch
            ],
        )
        indexed += len(batch)
    connection.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (FOLD_KEY, str(FOLD_VERSION)))
    if indexed:  # a new, empty store has not changed
        connection.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation'"
        )


def _add_search(connection: sqlite3.Connection) -> None:
    connection.execute(CREATE_TABLE)
    _index_all(connection)


# Each entry upgrades the store from the version before it; the list index + 1 is the version:
# an SQL script, or a function of the connection for a step SQL alone cannot do. Each runs in
# one transaction under the write lock, and only if the version is still the one before it.
MIGRATIONS: list[str | Callable[[sqlite3.Connection], None]] = [
    """
    CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
    INSERT OR IGNORE INTO meta VALUES ('generation', '0'), ('catalog', '');
    -- seq orders items first seen together: a larger seq is newer.
    CREATE TABLE IF NOT EXISTS items (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        content TEXT,
        summary TEXT,
        author TEXT,
        source TEXT,
        link TEXT,
        published INTEGER NOT NULL,   -- microseconds since the epoch, UTC
        updated INTEGER NOT NULL,
        pinned TEXT,                  -- topics the source gave (JSON Lines); NULL: the rules
        topics TEXT NOT NULL,         -- comma-separated slugs, as filed
        digest TEXT NOT NULL,         -- of the visible fields: a new digest moves `updated`
        generation INTEGER NOT NULL   -- the store generation that last changed this row
    );
    CREATE INDEX IF NOT EXISTS items_newest ON items (published, seq);
    CREATE INDEX IF NOT EXISTS items_generation ON items (generation);
    CREATE INDEX IF NOT EXISTS items_updated ON items (updated);
    -- One row per (topic, item), ordered as feeds are, so newest-N is an index walk.
    CREATE TABLE IF NOT EXISTS filed (
        topic TEXT NOT NULL,
        published INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (topic, published, seq)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS filed_seq ON filed (seq);
    """,
    # 2: editorial control. Items kept aside whole (as plan.row_to_json text): embargoed ones
    # until their time, withdrawn ones until an unkill; and a log of who did what.
    """
    CREATE TABLE IF NOT EXISTS held (
        id TEXT PRIMARY KEY,
        published INTEGER NOT NULL,   -- the embargo lifts at this moment
        row TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS held_published ON held (published);
    CREATE TABLE IF NOT EXISTS killed (
        id TEXT PRIMARY KEY,
        killed_at INTEGER NOT NULL,
        reason TEXT,
        topics TEXT NOT NULL,         -- where it was filed: its feeds carry a tombstone
        row TEXT NOT NULL,
        generation INTEGER NOT NULL   -- the store generation of the kill
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS log (
        n INTEGER PRIMARY KEY,
        at INTEGER NOT NULL,
        who TEXT NOT NULL,            -- cli, api, server (an embargo lifted)
        what TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    """,
    # 3: archive positions. Each item's place in first-seen order, in `all` (items.ordinal)
    # and in each topic it is filed under (filed.ordinal): archive page n of a topic holds
    # ordinals n*P to n*P+P-1, so a new item never moves an archived one.
    """
    ALTER TABLE items ADD COLUMN ordinal INTEGER;
    ALTER TABLE filed ADD COLUMN ordinal INTEGER;
    UPDATE items SET ordinal = numbered.n
        FROM (SELECT seq, row_number() OVER (ORDER BY seq) - 1 AS n FROM items) AS numbered
        WHERE numbered.seq = items.seq;
    UPDATE filed SET ordinal = numbered.n
        FROM (SELECT topic, seq, row_number() OVER (PARTITION BY topic ORDER BY seq) - 1 AS n
              FROM filed) AS numbered
        WHERE numbered.topic = filed.topic AND numbered.seq = filed.seq;
    CREATE TABLE ordinals (topic TEXT PRIMARY KEY, next INTEGER NOT NULL) WITHOUT ROWID;
    INSERT INTO ordinals SELECT 'all', count(*) FROM items;
    INSERT INTO ordinals SELECT topic, count(*) FROM filed GROUP BY topic;
    CREATE INDEX items_ordinal ON items (ordinal);
    CREATE INDEX filed_ordinal ON filed (topic, ordinal);
    """,
    # 4: full-text search: the index, filled from the items (a step of Python: the folding).
    _add_search,
]

BATCH_UNDONE = "cannot write the store: a write failed and SQLite undid its whole batch"
# SQLite's page cache: a big document's index pages stay in memory while it is written;
# readers (the server's threads, one connection each) keep SQLite's small default.
INGEST_CACHE_KIB = 16384
READER_CACHE_KIB = 2000
COLUMNS = (
    "seq, id, title, content, summary, author, source, link, published, updated, pinned, "
    "topics, digest"
)
# The statements feeds are read with; tests check SQLite's plan of these very strings.
NEWEST_ALL = f"SELECT {COLUMNS} FROM items ORDER BY published DESC, seq DESC LIMIT ?"
NEWEST_TOPIC = (
    f"SELECT {COLUMNS} FROM filed CROSS JOIN items USING (seq, published) "
    "WHERE filed.topic = ? ORDER BY filed.published DESC, filed.seq DESC LIMIT ?"
)
INSERT_ITEM = (
    "INSERT INTO items (seq, id, title, content, summary, author, source, link, published, "
    "updated, pinned, topics, digest, generation, ordinal) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_FILED = "INSERT INTO filed (topic, published, seq, ordinal) VALUES (?, ?, ?, ?)"
ARCHIVE_ALL = (
    f"SELECT {COLUMNS} FROM items WHERE ordinal >= ? AND ordinal < ? ORDER BY ordinal DESC"
)
ARCHIVE_TOPIC = (
    f"SELECT {COLUMNS} FROM filed CROSS JOIN items USING (seq, published) "
    "WHERE filed.topic = ? AND filed.ordinal >= ? AND filed.ordinal < ? ORDER BY filed.ordinal DESC"
)
UPDATE_ITEM = (
    "UPDATE items SET title = ?, content = ?, summary = ?, author = ?, source = ?, link = ?, "
    "updated = ?, pinned = ?, topics = ?, digest = ?, generation = ? WHERE seq = ?"
)


class SQLiteStore:
    """A feedsvc store in one SQLite file; one instance per thread."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        clock: Callable[[], datetime],
        location: str,
        read_only_reason: str | None = None,
    ) -> None:
        self.db = connection
        self.clock = clock
        self.location = location
        self.read_only_reason = read_only_reason  # why it cannot be written, if it cannot
        self.read_only = read_only_reason is not None
        self._data_version = -1
        self._generation = 0
        self._next_lift: int | None = None  # when the next embargo lifts (microseconds)
        self._in_snapshot = False  # inside a snapshot: no lifting (it would need a write)
        self._batched = False  # inside `batch()`: writes are part of its transaction
        self._undone = False  # ... and SQLite undid that transaction
        # Told the topics of items whose embargo this connection lifted (WebSub pings).
        self.lift_listener: Callable[[set[str]], None] | None = None

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
            connection = _connect(path, read_only=bool(problem))
        except sqlite3.Error as error:
            raise StoreError(f"cannot open the store: {problem or error}", name) from None
        try:
            _check_is_store(connection, name, create)
            if not problem:
                connection.execute("PRAGMA busy_timeout = 30000")
                connection.execute("PRAGMA journal_mode = WAL")
                # WAL with synchronous=NORMAL survives a killed process; only power loss can
                # drop the last commits, never corrupt the file.
                connection.execute("PRAGMA synchronous = NORMAL")
                _migrate(connection, name)
                _refold(connection)
            else:
                _check_version(connection, name)
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StoreError(f"not a feedsvc store: {problem or error}", name) from None
        except StoreError:
            connection.close()
            raise
        return cls(connection, clock, name, problem)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the store, whatever other processes commit meanwhile."""
        self.db.execute("BEGIN")
        self._in_snapshot = True
        try:
            yield
        finally:
            self._in_snapshot = False
            self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # -- generation: how renderers know the store changed ------------------------------------

    def generation(self) -> int:
        """The store's generation; cheap when nothing changed (one PRAGMA, no table read)."""
        try:
            version = self.db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                self._generation = int(self._meta("generation"))
                self._next_lift = self._next_lift_micros()
                self._data_version = version
        except sqlite3.Error as error:
            raise StoreError(f"the store cannot be read: {error}") from None
        due = self._next_lift is not None and to_micros(self.clock()) >= self._next_lift
        if due and not self.read_only and not self._in_snapshot:  # else one comparison a call
            self.lift_due()
            return self.generation()
        return self._generation

    def _meta(self, key: str) -> str:
        return self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]

    def _bump_generation(self) -> int:
        row = self.db.execute(
            "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation' "
            "RETURNING value"
        ).fetchone()
        return int(row[0])

    # -- writing --------------------------------------------------------------------------

    @contextmanager
    def _write(self, big: bool = False) -> Iterator[None]:
        """One write transaction (SQLite's single writer), all or nothing; inside `batch()`,
        part of the batch's. A failed write (a full disk, say) is a one-line `StoreError`."""
        if self.read_only:
            raise StoreError(f"the store is read-only: {self.read_only_reason}", self.location)
        if self._batched:  # a savepoint: the write is all or nothing within the batch
            if self._undone:
                raise StoreError(BATCH_UNDONE, self.location)
            self.db.execute("SAVEPOINT one")
            try:
                yield
            except BaseException as error:
                if self.db.in_transaction:
                    self.db.execute("ROLLBACK TO one")
                    self.db.execute("RELEASE one")
                else:  # SQLite undid the whole transaction (a full disk, say)
                    self._undone = True
                if isinstance(error, sqlite3.Error):
                    raise StoreError(f"cannot write the store: {error}", self.location) from None
                raise
            self.db.execute("RELEASE one")
            return
        if big:
            self.db.execute(f"PRAGMA cache_size = {-INGEST_CACHE_KIB}")
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise StoreError(f"cannot write the store: {error}", self.location) from None
        try:
            yield
            self.db.execute("COMMIT")
            self._data_version = -1  # data_version only moves for other connections' commits
        except sqlite3.Error as error:
            self._rollback()
            raise StoreError(f"cannot write the store: {error}", self.location) from None
        except BaseException:
            self._rollback()
            raise
        finally:
            if big:
                self.db.execute(f"PRAGMA cache_size = {-READER_CACHE_KIB}")

    def _rollback(self) -> None:
        if self.db.in_transaction:  # after some errors (a full disk) SQLite has rolled back
            self.db.execute("ROLLBACK")

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The writes inside share one transaction, committed when it ends: a run of many
        small documents commits once, not per document (a commit, with its WAL checkpoint,
        costs more than writing 200 items). Each write is a savepoint, all or nothing on its own;
        when SQLite undoes the whole transaction (a full disk), so does the batch: the block
        ends in a `StoreError`, and no write is tried after the one that failed."""
        with self._write(big=True):
            self._batched, self._undone = True, False
            try:
                yield
            finally:
                self._batched = False
            if self._undone:  # the writes that seemed to succeed were undone too
                raise StoreError(BATCH_UNDONE, self.location)

    def ingest(self, items: Sequence[Item], topics_for: Filer, who: str = "cli") -> Counts:
        """Store one document's items, all or nothing; the same document twice changes nothing."""
        items = merge_duplicates(items)
        filed = file_items(items, topics_for)  # before the write lock
        with self._write(big=len(items) > 1000):
            now = to_micros(self.clock())
            existing = self._existing([item.id for item in items])
            plan = plan_ingest(items, filed, existing, now)
            if plan.changes:
                self._apply(plan, self._bump_generation())
                self._log(now, who, "ingest", str(plan.counts()))
        return plan.counts()

    def _existing(self, ids: list[str]) -> dict[str, Stored]:
        found = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                "SELECT id, seq, digest, content IS NOT NULL, published, updated FROM items "
                f"WHERE id IN ({marks})",
                chunk,
            ):
                found[row[0]] = Stored(row[1], row[2], bool(row[3]), row[4], row[5])
            for table, state in (("held", HELD), ("killed", KILLED)):
                query = f"SELECT row FROM {table} WHERE id IN ({marks})"
                for (text,) in self.db.execute(query, chunk):
                    row = row_from_json(text)
                    found[row.id] = Stored(
                        0, row.digest, row.content is not None, *_dates(row), state
                    )
        return found

    def _apply(self, plan: IngestPlan, generation: int) -> None:
        top = self.db.execute("SELECT coalesce(max(seq), 0) FROM items").fetchone()[0]
        ordinals = self._ordinals()

        # Generators, not lists: a 100,000-item document would hold every row twice over.
        def numbered() -> Iterator[tuple[int, Row]]:
            return enumerate(plan.inserts, start=top + 1)

        self.db.executemany(
            INSERT_ITEM,
            (
                (seq, *row_values(row), generation, take_place(ordinals, ALL))
                for seq, row in numbered()
            ),
        )
        self.db.executemany(
            INSERT_FILED,
            (
                (slug, row.published, seq, take_place(ordinals, slug))
                for seq, row in numbered()
                for slug in row.topics
            ),
        )
        self.db.executemany(INSERT_ROW, (_indexed(seq, row) for seq, row in numbered()))
        self._reindex(plan.updates)  # before the rows change: it reads the old text
        for seq, row in plan.updates:
            values = row_values(row)
            self.db.execute(UPDATE_ITEM, (*values[1:7], *values[8:], generation, seq))
            self._refile(seq, row, ordinals)
        self._save_ordinals(ordinals)
        self.db.executemany(
            "INSERT OR REPLACE INTO held VALUES (?, ?, ?)",
            [held_values(row) for row in plan.holds],
        )

    def _reindex(self, updates: Sequence[tuple[int, Row]]) -> None:
        """Index updated items by their new text: the old entry goes (a contentless index must
        be told the words it holds), the new one comes; items whose text is the same stay."""
        if not updates:
            return
        seqs = json.dumps([seq for seq, _ in updates])
        old = {
            seq: (title, content, summary)
            for seq, title, content, summary in self.db.execute(
                "SELECT seq, title, content, summary FROM items "
                "WHERE seq IN (SELECT value FROM json_each(?))",
                (seqs,),
            )
        }
        for seq, row in updates:
            title, content, summary = old[seq]
            if (title, content, summary) != (row.title, row.content, row.summary):
                self.db.execute(DELETE_ROW, index_row(seq, title, body_text(content, summary)))
                self.db.execute(INSERT_ROW, _indexed(seq, row))

    def _insert_rows(self, rows: Sequence[Row], generation: int) -> None:
        """Rows that become live (lifted, unkilled), oldest first."""
        self._apply(IngestPlan(tuple(rows), (), 0), generation)

    def _log(self, at: int, who: str, what: str, detail: str) -> None:
        self.db.execute(
            "INSERT INTO log (at, who, what, detail) VALUES (?, ?, ?, ?)", (at, who, what, detail)
        )

    # -- editorial control: embargo, kill ---------------------------------------------------

    def next_lift(self) -> datetime | None:
        """When the next embargo lifts, if any item is held."""
        value = self._next_lift_micros()
        return from_micros(value) if value is not None else None

    def _next_lift_micros(self) -> int | None:
        return self.db.execute("SELECT min(published) FROM held").fetchone()[0]

    def lift_due(self, who: str = "server") -> int:
        """Publish the held items whose time has come; how many."""
        with self._write():
            now = to_micros(self.clock())
            due = self.db.execute(
                "SELECT id, row FROM held WHERE published <= ? ORDER BY published, id", (now,)
            ).fetchall()
            rows = [row_from_json(text) for _, text in due]
            if due:
                generation = self._bump_generation()
                self._insert_rows(rows, generation)
                self.db.executemany("DELETE FROM held WHERE id = ?", [(i,) for i, _ in due])
                self._log(now, who, "lift", " ".join(i for i, _ in due))
        if rows and self.lift_listener:
            self.lift_listener({slug for row in rows for slug in row.topics})
        return len(due)

    def kill(self, ids: Sequence[str], reason: str | None, who: str) -> list[str]:
        """Withdraw items from every feed and page at once; the ids are remembered. Returns the
        ids that were published or held (others were already withdrawn); unknown ids are an
        error and nothing is done."""
        with self._write():
            now = to_micros(self.clock())
            found = self._existing(list(ids))
            unknown = [i for i in ids if i not in found]
            if unknown:
                raise StoreError(f"no item {unknown[0]!r} in the store", self.location)
            withdrawn = [i for i in ids if found[i].state != KILLED]
            if withdrawn:
                generation = self._bump_generation()
                for item_id in withdrawn:
                    self._withdraw(item_id, found[item_id], now, reason, generation)
                self._log(now, who, "kill", " ".join(withdrawn) + (f": {reason}" if reason else ""))
        return withdrawn

    def _withdraw(
        self, item_id: str, stored: Stored, now: int, reason: str | None, gen: int
    ) -> None:
        if stored.state == HELD:
            (text,) = self.db.execute("SELECT row FROM held WHERE id = ?", (item_id,)).fetchone()
            self.db.execute("DELETE FROM held WHERE id = ?", (item_id,))
            row = row_from_json(text)
        else:
            row = row_of(
                self.db.execute(f"SELECT {COLUMNS} FROM items WHERE id = ?", (item_id,)).fetchone()
            )
            self.db.execute(DELETE_ROW, _indexed(stored.seq, row))
            self.db.execute("DELETE FROM filed WHERE seq = ?", (stored.seq,))
            self.db.execute("DELETE FROM items WHERE seq = ?", (stored.seq,))
        self.db.execute(
            "INSERT INTO killed VALUES (?, ?, ?, ?, ?, ?)",
            killed_values(Withdrawn(row, now, reason, row.topics, gen)),
        )

    def unkill(self, ids: Sequence[str], who: str) -> list[str]:
        """Publish withdrawn items again (or hold them, if their embargo has not lifted)."""
        with self._write():
            now = to_micros(self.clock())
            marks = ",".join("?" * len(ids))
            rows = self.db.execute(
                f"SELECT id, row FROM killed WHERE id IN ({marks})", list(ids)
            ).fetchall()
            found = {item_id: row_from_json(text) for item_id, text in rows}
            unknown = [i for i in ids if i not in found]
            if unknown:
                raise StoreError(f"no withdrawn item {unknown[0]!r}", self.location)
            generation = self._bump_generation()
            restored = [found[i] for i in ids]
            live = sorted((r for r in restored if r.published <= now), key=lambda r: r.published)
            self._insert_rows(live, generation)
            self.db.executemany(
                "INSERT OR REPLACE INTO held VALUES (?, ?, ?)",
                [held_values(r) for r in restored if r.published > now],
            )
            self.db.executemany("DELETE FROM killed WHERE id = ?", [(i,) for i in ids])
            self._log(now, who, "unkill", " ".join(ids))
        return list(ids)

    def killed(self, since: int = 0) -> list[tuple[str, datetime, str | None, tuple[str, ...]]]:
        """Withdrawn items (id, when, reason, topics it was filed under), newest first."""
        return [
            (item_id, from_micros(at), reason, topics_of(topics))
            for item_id, at, reason, topics in self.db.execute(
                "SELECT id, killed_at, reason, topics FROM killed WHERE killed_at >= ? "
                "ORDER BY killed_at DESC, id",
                (since,),
            )
        ]

    def killed_at(self, item_id: str) -> datetime | None:
        query = "SELECT killed_at FROM killed WHERE id = ?"
        found = self.db.execute(query, (item_id,)).fetchone()
        return from_micros(found[0]) if found else None

    def killed_ids(self) -> Iterator[str]:
        for (item_id,) in self.db.execute("SELECT id FROM killed ORDER BY id"):
            yield item_id

    def held(self) -> dict[str, int]:
        """Items under embargo, per topic (`all` included)."""
        counts: dict[str, int] = {ALL: 0}
        for (text,) in self.db.execute("SELECT row FROM held"):
            counts[ALL] += 1
            for slug in row_from_json(text).topics:
                counts[slug] = counts.get(slug, 0) + 1
        return counts

    def log(self, limit: int = 100) -> list[tuple[datetime, str, str, str]]:
        """The newest operations: (when, who, what, detail), newest first."""
        return [
            (from_micros(at), who, what, detail)
            for at, who, what, detail in self.db.execute(
                "SELECT at, who, what, detail FROM log ORDER BY n DESC LIMIT ?", (limit,)
            )
        ]

    def _refile(self, seq: int, row: Row, ordinals: dict[str, int]) -> None:
        """File a stored item under `row.topics`: a topic it stays in keeps its archive place;
        a new one gets the next place there."""
        kept = dict(self.db.execute("SELECT topic, ordinal FROM filed WHERE seq = ?", (seq,)))
        gone = [(slug, seq) for slug in kept if slug not in row.topics]
        self.db.executemany("DELETE FROM filed WHERE topic = ? AND seq = ?", gone)
        self.db.executemany(
            INSERT_FILED,
            [(s, row.published, seq, take_place(ordinals, s)) for s in row.topics if s not in kept],
        )

    def _ordinals(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT topic, next FROM ordinals"))

    def _save_ordinals(self, ordinals: dict[str, int]) -> None:
        self.db.executemany("INSERT OR REPLACE INTO ordinals VALUES (?, ?)", ordinals.items())

    def sync_catalog(self, digest: str, topics_for: Filer) -> int:
        """Re-file every stored item if the topic rules changed; returns how many moved."""
        if self._meta("catalog") == digest or self.read_only:
            return 0
        with self._write(big=True):
            rows = self.db.execute(f"SELECT {COLUMNS} FROM items").fetchall()
            moves = plan_refile(((row[0], row_of(row)) for row in rows), topics_for)
            if moves:
                generation = self._bump_generation()
                ordinals = self._ordinals()
                for seq, row in moves:
                    self.db.execute(
                        "UPDATE items SET topics = ?, generation = ? WHERE seq = ?",
                        (",".join(row.topics), generation, seq),
                    )
                    self._refile(seq, row, ordinals)
                self._save_ordinals(ordinals)
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'catalog'", (digest,))
        return len(moves)

    # -- reading --------------------------------------------------------------------------

    def newest(self, topic: str, limit: int) -> list[Item]:
        if topic == ALL:
            return [item_of(row) for row in self.db.execute(NEWEST_ALL, (limit,))]
        return [item_of(row) for row in self.db.execute(NEWEST_TOPIC, (topic, limit))]

    def search(
        self, topic: str, parameters: FeedParameters, limit: int, since: datetime | None = None
    ) -> list[Item]:
        """The newest `limit` items of a topic (`all`: of the store) that match `q` and
        `filterout`, published at or after `since` (the `filter_time` cut-off), newest first."""
        check_cut_off(parameters, since)
        with self._reading():
            check_fold(_fold_version(self.db), self.location)
            floor = None if since is None else to_micros(since)
            seqs = newest_matches(
                self.db, parameters, limit, None if topic == ALL else topic, floor
            )
            rows = self.db.execute(
                f"SELECT {COLUMNS} FROM items WHERE seq IN (SELECT value FROM json_each(?))",
                (json.dumps(seqs),),
            ).fetchall()
        place = {seq: n for n, seq in enumerate(seqs)}
        return [item_of(row) for row in sorted(rows, key=lambda row: place[row[0]])]

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """One state of the store for a read of several statements: the caller's snapshot,
        or one of its own."""
        if self.db.in_transaction:
            yield
        else:
            with self.snapshot():
                yield

    def archive_pages(self, topic: str, size: int) -> int:
        """How many full archive pages of `size` a topic has (ordinals ever given / size)."""
        found = self.db.execute("SELECT next FROM ordinals WHERE topic = ?", (topic,)).fetchone()
        return (found[0] if found else 0) // size

    def archive_page(self, topic: str, page: int, size: int) -> list[Item]:
        """Archive page `page` of a topic: the items at places page*size to page*size+size-1
        in first-seen order (fewer if some were withdrawn), newest first."""
        bounds = (page * size, page * size + size)
        if topic == ALL:
            return [item_of(row) for row in self.db.execute(ARCHIVE_ALL, bounds)]
        return [item_of(row) for row in self.db.execute(ARCHIVE_TOPIC, (topic, *bounds))]

    def archive_changes(self, since: int, size: int) -> set[tuple[str, int]]:
        """The archive pages (topic, page) whose items changed after generation `since`; a kill
        since then counts as a change of every page of the topics it was filed under."""
        changed: set[tuple[str, int]] = {
            (ALL, ordinal // size)
            for (ordinal,) in self.db.execute(
                "SELECT ordinal FROM items WHERE generation > ?", (since,)
            )
        }
        changed.update(
            (topic, ordinal // size)
            for topic, ordinal in self.db.execute(
                "SELECT filed.topic, filed.ordinal FROM items JOIN filed USING (seq) "
                "WHERE items.generation > ?",
                (since,),
            )
        )
        for (topics,) in self.db.execute(
            "SELECT topics FROM killed WHERE generation > ?", (since,)
        ):
            for topic in (ALL, *topics_of(topics)):
                changed.update((topic, page) for page in range(self.archive_pages(topic, size)))
        return changed

    def item(self, item_id: str) -> Item | None:
        row = self.db.execute(f"SELECT {COLUMNS} FROM items WHERE id = ?", (item_id,)).fetchone()
        return item_of(row) if row else None

    def counts(self) -> dict[str, int]:
        counts = dict(self.db.execute("SELECT topic, count(*) FROM filed GROUP BY topic"))
        counts[ALL] = self.db.execute("SELECT count(*) FROM items").fetchone()[0]
        return counts

    def changed_since(self, generation: int) -> Iterator[Item]:
        query = f"SELECT {COLUMNS} FROM items WHERE generation > ? ORDER BY seq"
        for row in self.db.execute(query, (generation,)):
            yield item_of(row)

    def last_updated(self) -> datetime | None:
        value = self.db.execute("SELECT max(updated) FROM items").fetchone()[0]
        return from_micros(value) if value is not None else None

    def item_ids(self) -> Iterator[str]:
        for (item_id,) in self.db.execute("SELECT id FROM items ORDER BY seq"):
            yield item_id

    def export(self) -> Export:
        """Everything the store holds, for `feedsvc copy`; call inside `snapshot()` for one
        consistent state."""
        query = (
            f"SELECT {COLUMNS}, generation, ordinal, (SELECT group_concat(topic || '=' || "
            "ordinal) FROM filed WHERE filed.seq = items.seq) FROM items ORDER BY seq"
        )
        rows = (
            (row[0], row[13], row_of(row), archive_places(row[14], row[15]))
            for row in self.db.execute(query)
        )
        held = tuple(
            row_from_json(text)
            for (text,) in self.db.execute("SELECT row FROM held ORDER BY published, id")
        )
        withdrawn = tuple(
            Withdrawn(row_from_json(text), at, reason, topics_of(topics), generation)
            for text, at, reason, topics, generation in self.db.execute(
                "SELECT row, killed_at, reason, topics, generation FROM killed ORDER BY id"
            )
        )
        log = (
            tuple(entry)
            for entry in self.db.execute("SELECT at, who, what, detail FROM log ORDER BY n")
        )
        return Export(
            int(self._meta("generation")),
            self._meta("catalog"),
            rows,
            self._ordinals(),
            held,
            withdrawn,
            log,
        )

    def import_store(self, export: Export) -> Copied:
        """Fill an empty store with another store's `export`: items with their seq, dates,
        digests, filing, archive places and generations; held and withdrawn items; the log.
        One transaction. A store with items (held or withdrawn ones too) refuses."""
        with self._write(big=True):
            found = self.db.execute(
                "SELECT EXISTS (SELECT 1 FROM items) OR EXISTS (SELECT 1 FROM held) "
                "OR EXISTS (SELECT 1 FROM killed)"
            ).fetchone()[0]
            if found:
                raise StoreError("already holds items; copy into an empty store", self.location)
            ordinals: dict[str, int] = {}  # the next archive place of each topic
            count = 0
            for seq, row_generation, row, places in export.rows:
                self.db.execute(INSERT_ITEM, (seq, *row_values(row), row_generation, places[ALL]))
                self.db.execute(INSERT_ROW, _indexed(seq, row))  # found by search as before
                self.db.executemany(
                    INSERT_FILED, [(slug, row.published, seq, places[slug]) for slug in row.topics]
                )
                for topic, place in places.items():
                    ordinals[topic] = max(ordinals.get(topic, 0), place + 1)
                count += 1
            for topic, following in export.ordinals.items():  # withdrawn items' places too
                ordinals[topic] = max(ordinals.get(topic, 0), following)
            self._save_ordinals(ordinals)
            self.db.executemany(
                "INSERT INTO held VALUES (?, ?, ?)",
                [held_values(row) for row in export.held],
            )
            self.db.executemany(
                "INSERT INTO killed VALUES (?, ?, ?, ?, ?, ?)",
                [killed_values(w) for w in export.withdrawn],
            )
            logged = 0
            for entry in export.log:
                self._log(*entry)
                logged += 1
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'catalog'", (export.catalog,))
            self.db.execute(
                "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) WHERE key = 'generation'",
                (export.generation,),
            )
        return Copied(count, len(export.held), len(export.withdrawn), logged)

    def health(self) -> tuple[int, int]:
        generation = self.generation()
        try:
            return self.db.execute("SELECT count(*) FROM items").fetchone()[0], generation
        except sqlite3.Error as error:
            raise StoreError(f"the store cannot be read: {error}") from None

    def integrity(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]

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
            destination.close()
            target.unlink(missing_ok=True)
            raise StoreError(f"cannot write: {error}", str(target)) from None
        destination.close()
        return f"backed up {self.location} to {target}"


def _indexed(seq: int, row: Row) -> tuple[int, str, str]:
    """The search index's entry for a row (`INSERT_ROW` / `DELETE_ROW` parameters)."""
    return index_row(seq, row.title, body_text(row.content, row.summary))


def _dates(row: Row) -> tuple[int, int]:
    return row.published, row.updated


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


def _check_is_store(connection: sqlite3.Connection, name: str, create: bool) -> None:
    """An existing database that feedsvc did not make is not ours to write."""
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version:
        return
    tables = connection.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
    if tables:
        raise StoreError("not a feedsvc store (a database of something else)", name)
    if not create:
        raise StoreError(NO_STORE, name)


def _check_version(connection: sqlite3.Connection, name: str) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store has schema {version}, newer than this feedsvc knows ({SCHEMA_VERSION}); "
            "upgrade feedsvc",
            name,
        )
    if version < SCHEMA_VERSION:
        raise StoreError("the store needs an upgrade, and it is read-only", name)


def _migrate(connection: sqlite3.Connection, name: str) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        _check_version(connection, name)
    for number in range(version, SCHEMA_VERSION):
        connection.execute("BEGIN IMMEDIATE")
        # Another process may have run this step while we waited for the lock.
        if connection.execute("PRAGMA user_version").fetchone()[0] > number:
            connection.execute("COMMIT")
            continue
        try:
            step = MIGRATIONS[number]
            if callable(step):
                step(connection)
            else:
                for statement in _statements(step):
                    connection.execute(statement)
            connection.execute(f"PRAGMA user_version = {number + 1}")
            connection.execute("COMMIT")
        except BaseException:
            connection.execute("ROLLBACK")
            raise


def _refold(connection: sqlite3.Connection) -> None:
    """Rebuild the search index if it was made with other folding rules (another feedsvc)."""
    if _fold_version(connection) == str(FOLD_VERSION):
        return
    connection.execute("BEGIN IMMEDIATE")
    try:
        if _fold_version(connection) != str(FOLD_VERSION):  # not done while we waited
            _index_all(connection)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise


def _fold_version(connection: sqlite3.Connection) -> str | None:
    found = connection.execute("SELECT value FROM meta WHERE key = ?", (FOLD_KEY,)).fetchone()
    return found[0] if found else None


def _statements(script: str) -> list[str]:
    """A migration's statements (executescript would commit the open transaction)."""
    lines = [line.split("--", 1)[0] for line in script.splitlines()]
    return [part.strip() for part in "\n".join(lines).split(";") if part.strip()]
