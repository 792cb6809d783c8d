"""The SQLite store: schema, migrations and every query (the only module that speaks SQL)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from .catalog import ALL, Catalog
from .errors import DocumentError, StoreError
from .model import Item, normalise_title

SCHEMA_VERSION = 1
BATCH = 500  # ids per IN (...) query: well under SQLite's variable limit

# Each entry upgrades the store from the version before it; the list index + 1 is the version.
# Written to be re-runnable, so two processes opening a new store at once do not collide.
MIGRATIONS = [
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
]

# SQLite's page cache: a big document's index pages stay in memory while it is written;
# readers (the server's threads, one connection each) keep SQLite's small default.
INGEST_CACHE_KIB = 16384
READER_CACHE_KIB = 2000
COLUMNS = "seq, id, title, content, summary, author, source, link, published, updated, topics"


@dataclass(frozen=True, slots=True)
class Counts:
    """What an ingest did to the store."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: Counts) -> Counts:
        return Counts(
            self.new + other.new, self.updated + other.updated, self.unchanged + other.unchanged
        )


def to_micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


def utc_now() -> datetime:
    return datetime.now(UTC)


def digest(item: Item) -> str:
    """A hash of what the source said of an item (its pinned topics included, the rules' filing
    not): `updated` moves only when this changes. The title counts in its normalised form, so
    the same headline re-sent in other capitals or spacing is not news."""
    fields = (
        normalise_title(item.title),
        item.content,
        item.summary,
        item.author,
        item.source,
        item.link,
    )
    # \x1f cannot occur in stored text (clean_text removes it), so fields cannot run together.
    text = "\x1f".join("\x1e" if value is None else value for value in fields)
    text += "\x1f" + ",".join(item.topics)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def merge_duplicates(items: Sequence[Item]) -> list[Item]:
    """One item per id, at its first position; a later article replaces an earlier headline,
    but a headline never replaces an article."""
    merged: dict[str, Item] = {}
    for item in items:
        earlier = merged.get(item.id)
        if earlier is None or item.content or not earlier.content:
            merged[item.id] = item
    return list(merged.values())


class Store:
    """A feedsvc store in one SQLite file; one instance per thread."""

    def __init__(self, connection: sqlite3.Connection, clock: Callable[[], datetime]) -> None:
        self.db = connection
        self.clock = clock
        self._data_version = -1
        self._generation = 0

    @classmethod
    def open(cls, path: Path, clock: Callable[[], datetime] = utc_now) -> Store:
        """Open (creating or upgrading) the store at `path`."""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open the store: {error}", str(path)) from None
        try:
            connection.execute("PRAGMA busy_timeout = 30000")
            connection.execute("PRAGMA journal_mode = WAL")
            # WAL with synchronous=NORMAL survives a killed process; only power loss can
            # drop the last commits, never corrupt the file.
            connection.execute("PRAGMA synchronous = NORMAL")
            _migrate(connection, path)
        except sqlite3.DatabaseError as error:
            connection.close()
            raise StoreError(f"not a feedsvc store: {error}", str(path)) from None
        return cls(connection, clock)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the store, whatever other processes commit meanwhile."""
        self.db.execute("BEGIN")
        try:
            yield
        finally:
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
                self._data_version = version
        except sqlite3.Error as error:
            raise StoreError(f"the store cannot be read: {error}") from None
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

    def ingest(self, items: Sequence[Item], catalog: Catalog) -> Counts:
        """Store one document's items, all or nothing; the same document twice changes nothing."""
        items = merge_duplicates(items)
        filed = [catalog.topics_for(item) for item in items]  # before the write lock
        cache = INGEST_CACHE_KIB if len(items) > 1000 else READER_CACHE_KIB
        self.db.execute(f"PRAGMA cache_size = {-cache}")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            counts = self._ingest(items, filed)
            self.db.execute("COMMIT")
            self._data_version = -1  # data_version only moves for other connections' commits
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        finally:
            self.db.execute(f"PRAGMA cache_size = {-READER_CACHE_KIB}")
        return counts

    def _ingest(self, items: list[Item], filed: list[tuple[str, ...]]) -> Counts:
        existing = self._existing([item.id for item in items])
        now = to_micros(self.clock())
        fresh = [(i, t) for i, t in zip(items, filed, strict=True) if i.id not in existing]
        changed = []
        for item, topics in zip(items, filed, strict=True):
            row = existing.get(item.id)
            if row is None:
                continue
            seq, old_digest, has_content, published = row
            if (has_content and not item.content) or digest(item) == old_digest:
                continue  # a headline never overwrites its article
            changed.append((seq, published, item, topics))
        if not fresh and not changed:
            return Counts(unchanged=len(items))
        generation = self._bump_generation()
        self._insert(fresh, now, generation)
        self._update(changed, now, generation)
        return Counts(len(fresh), len(changed), len(items) - len(fresh) - len(changed))

    def _existing(self, ids: list[str]) -> dict[str, tuple[int, str, bool, int]]:
        found = {}
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                f"SELECT id, seq, digest, content IS NOT NULL, published FROM items "
                f"WHERE id IN ({marks})",
                chunk,
            ):
                found[row[0]] = (row[1], row[2], bool(row[3]), row[4])
        return found

    def _insert(self, fresh: list[tuple[Item, tuple[str, ...]]], now: int, generation: int) -> None:
        top = self.db.execute("SELECT coalesce(max(seq), 0) FROM items").fetchone()[0]
        rows, filed_rows = [], []
        # The first item of a document is its newest: it gets the largest seq.
        for offset, (item, topics) in enumerate(reversed(fresh), start=1):
            seq = top + offset
            published = to_micros(item.published) if item.published else now
            updated = to_micros(item.updated) if item.updated else published
            rows.append(_row(seq, item, topics, published, max(updated, published), generation))
            filed_rows.extend((slug, published, seq) for slug in topics)
        self.db.executemany(
            "INSERT INTO items (seq, id, title, content, summary, author, source, link, "
            "published, updated, pinned, topics, digest, generation) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        self.db.executemany("INSERT INTO filed VALUES (?, ?, ?)", filed_rows)

    def _update(
        self, changed: list[tuple[int, int, Item, tuple[str, ...]]], now: int, gen: int
    ) -> None:
        for seq, published, item, topics in changed:
            updated = to_micros(item.updated) if item.updated else now
            row = _row(seq, item, topics, published, max(updated, published), gen)
            self.db.execute(
                "UPDATE items SET title = ?, content = ?, summary = ?, author = ?, source = ?, "
                "link = ?, updated = ?, pinned = ?, topics = ?, digest = ?, generation = ? "
                "WHERE seq = ?",
                (*row[2:8], row[9], *row[10:], seq),
            )
            self._refile(seq, published, topics)

    def _refile(self, seq: int, published: int, topics: Sequence[str]) -> None:
        self.db.execute("DELETE FROM filed WHERE seq = ?", (seq,))
        self.db.executemany(
            "INSERT INTO filed VALUES (?, ?, ?)", [(slug, published, seq) for slug in topics]
        )

    def sync_catalog(self, catalog: Catalog) -> int:
        """Re-file every stored item if the topic rules changed; returns how many moved."""
        if self._meta("catalog") == catalog.digest:
            return 0
        self.db.execute("BEGIN IMMEDIATE")
        try:
            moved = self._refile_all(catalog)
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'catalog'", (catalog.digest,))
            self.db.execute("COMMIT")
            self._data_version = -1
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return moved

    def _refile_all(self, catalog: Catalog) -> int:
        moves = []
        query = f"SELECT {COLUMNS}, pinned FROM items"
        for row in self.db.execute(query).fetchall():
            item = _item(row[:-1])
            pinned = tuple(row[-1].split(",")) if row[-1] else ()
            try:
                topics = catalog.topics_for(replace(item, topics=pinned))
            except DocumentError:  # a pinned topic left the catalogue: the rules decide now
                topics = catalog.topics_for(replace(item, topics=()))
            if topics != item.topics:
                moves.append((row[0], to_micros(item.published), replace(item, topics=topics)))
        if moves:
            generation = self._bump_generation()
            for seq, published, item in moves:
                self.db.execute(
                    "UPDATE items SET topics = ?, generation = ? WHERE seq = ?",
                    (",".join(item.topics), generation, seq),
                )
                self._refile(seq, published, item.topics)
        return len(moves)

    # -- reading --------------------------------------------------------------------------

    def newest(self, topic: str, limit: int) -> list[Item]:
        """The newest `limit` items of a topic (`all`: of the store), newest first."""
        if topic == ALL:
            query = f"SELECT {COLUMNS} FROM items ORDER BY published DESC, seq DESC LIMIT ?"
            return [_item(row) for row in self.db.execute(query, (limit,))]
        query = (
            f"SELECT {COLUMNS} FROM filed CROSS JOIN items USING (seq, published) "
            "WHERE filed.topic = ? ORDER BY filed.published DESC, filed.seq DESC LIMIT ?"
        )
        return [_item(row) for row in self.db.execute(query, (topic, limit))]

    def item(self, item_id: str) -> Item | None:
        row = self.db.execute(f"SELECT {COLUMNS} FROM items WHERE id = ?", (item_id,)).fetchone()
        return _item(row) if row else None

    def counts(self) -> dict[str, int]:
        """Items per topic, `all` included."""
        counts = dict(self.db.execute("SELECT topic, count(*) FROM filed GROUP BY topic"))
        counts[ALL] = self.db.execute("SELECT count(*) FROM items").fetchone()[0]
        return counts

    def changed_since(self, generation: int) -> Iterator[Item]:
        """Items added or changed after `generation` (0: every item), oldest first."""
        query = f"SELECT {COLUMNS} FROM items WHERE generation > ? ORDER BY seq"
        for row in self.db.execute(query, (generation,)):
            yield _item(row)

    def last_updated(self) -> datetime | None:
        """The newest `updated` in the store."""
        value = self.db.execute("SELECT max(updated) FROM items").fetchone()[0]
        return from_micros(value) if value is not None else None

    def item_ids(self) -> Iterator[str]:
        for (item_id,) in self.db.execute("SELECT id FROM items ORDER BY seq"):
            yield item_id

    def health(self) -> tuple[int, int]:
        """Item count and generation, or a `StoreError` if the store cannot be read."""
        generation = self.generation()
        try:
            return self.db.execute("SELECT count(*) FROM items").fetchone()[0], generation
        except sqlite3.Error as error:
            raise StoreError(f"the store cannot be read: {error}") from None

    def integrity(self) -> str:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0]

    def backup(self, target: Path) -> None:
        """A consistent copy of the store while others read and write it."""
        destination = sqlite3.connect(target)
        try:
            self.db.backup(destination)
        finally:
            destination.close()


def _row(
    seq: int, item: Item, topics: tuple[str, ...], published: int, updated: int, gen: int
) -> tuple:
    """An items row; `item.topics` are the ones its source pinned, `topics` the filed ones."""
    pinned = ",".join(item.topics) if item.topics else None
    return (
        seq,
        item.id,
        item.title,
        item.content,
        item.summary,
        item.author,
        item.source,
        item.link,
        published,
        updated,
        pinned,
        ",".join(topics),
        digest(item),
        gen,
    )


def _item(row: tuple) -> Item:
    return Item(
        id=row[1],
        title=row[2],
        content=row[3],
        summary=row[4],
        author=row[5],
        source=row[6],
        link=row[7],
        published=from_micros(row[8]),
        updated=from_micros(row[9]),
        topics=tuple(row[10].split(",")) if row[10] else (),
    )


def _migrate(connection: sqlite3.Connection, path: Path) -> None:
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"the store has schema {version}, newer than this feedsvc knows ({SCHEMA_VERSION}); "
            "upgrade feedsvc",
            str(path),
        )
    for number in range(version, SCHEMA_VERSION):
        connection.executescript(
            f"BEGIN IMMEDIATE; {MIGRATIONS[number]}; PRAGMA user_version = {number + 1}; COMMIT;"
        )
