"""The store interface: what callers use, whatever the engine (SQLite or PostgreSQL).

Callers import this module only; `open_store` picks the backend from the store's location
(a file path or `sqlite:///path` for SQLite, `postgresql://...` for PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from ..errors import StoreError
from ..model import Item
from ..plan import Counts, Filer, Incoming, Row
from ..query import FeedParameters
from .location import Location, parse_location

__all__ = [
    "Copied",
    "Counts",
    "Export",
    "Features",
    "Location",
    "Store",
    "StoreError",
    "Withdrawn",
    "open_store",
    "parse_location",
    "utc_now",
]

NO_STORE = "no store here (create one with feedsvc init or feedsvc ingest)"


# A row as `export` gives it: seq, its generation, the row, its archive places by topic.
Exported = tuple[int, int, Row, dict[str, int]]
LogEntry = tuple[int, str, str, str]  # when (microseconds), who, what, detail


@dataclass(frozen=True, slots=True)
class Withdrawn:
    """A killed item as a store keeps it: the whole row, for an unkill."""

    row: Row
    killed_at: int  # microseconds
    reason: str | None
    topics: tuple[str, ...]  # where it was filed when killed: its feeds carry a tombstone
    generation: int  # the store generation of the kill


@dataclass(frozen=True, slots=True)
class Export:
    """Everything a store holds, for `feedsvc copy` (from `Store.export`, inside `snapshot()`;
    `rows` and then `log` are read once, in that order)."""

    generation: int
    catalog: str  # the digest of the topic rules the items are filed by
    rows: Iterator[Exported]  # oldest first
    ordinals: Mapping[str, int]  # each topic's next archive place (a kill leaves a gap)
    held: tuple[Row, ...]  # under embargo
    withdrawn: tuple[Withdrawn, ...]
    log: Iterator[LogEntry]  # oldest first


@dataclass(frozen=True, slots=True)
class Copied:
    """What `Store.import_store` wrote."""

    items: int
    held: int
    withdrawn: int
    log: int


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Features:
    """What an engine can do beyond the `Store` interface, so callers need not probe."""

    backup: bool  # `backup(target)`: a consistent copy while others read and write
    backup_advice: str = ""  # without `backup`: how to copy such a store ({location}, {target})


class Reading(Protocol):
    """What feeds, pages and builds read. Every method may raise `StoreError`."""

    location: str  # for messages: a path, or a URL without its password
    read_only: bool
    features: Features
    # Called after this connection lifted embargoes, with the topics of the items published.
    lift_listener: Callable[[set[str]], None] | None

    def generation(self) -> int:
        """A number that changes whenever the store's content changes (in any process)."""

    def snapshot(self) -> AbstractContextManager[None]:
        """Reads inside see one state of the store, whatever others commit meanwhile."""

    def newest(self, topic: str, limit: int) -> list[Item]:
        """The newest `limit` items of a topic (`all`: of the store), newest first."""

    def search(
        self, topic: str, parameters: FeedParameters, limit: int, since: datetime | None = None
    ) -> list[Item]:
        """`newest`'s items that match `q` and none of `filterout`, published at or after
        `since`. The rules every engine's index follows (its SQL: sqlite_search.py,
        postgres_search.py):

        - What an item is found by: its title and its body text (`Item.body_text`: the content
          as plain text, else the summary), each folded by `query.fold`, as two fields, so a
          phrase never runs from the title into the body. Both engines index exactly these words.
        - Which items can be found: the live ones only, those `newest` can return. Held and
          killed items are not in the index; an item enters it in the transaction that
          publishes it and leaves it in the one that withdraws it.
        - The index remembers the `query.FOLD_VERSION` it was built with; a store opened for
          writing rebuilds it when that differs, and `search` refuses a stale index.
        - Order and size: the newest `limit` matches in feed order (published, then arrival,
          descending), exactly what `newest` would give were the others not there.
        - `filter_time` needs `since`, the cut-off the caller computed from its clock
          (`query.cut_off`): a store never reads the time for it, so cached answers and their
          keys agree (else ValueError)."""

    def item(self, item_id: str) -> Item | None: ...

    def archive_pages(self, topic: str, size: int) -> int:
        """How many full archive pages of `size` items a topic has (RFC 5005 archives)."""

    def archive_page(self, topic: str, page: int, size: int) -> list[Item]:
        """The items at places page*size to page*size+size-1 (first-seen order), newest first."""

    def archive_changes(self, since: int, size: int) -> set[tuple[str, int]]:
        """(topic, page) of the archive pages whose items changed after generation `since`."""

    def counts(self) -> dict[str, int]:
        """Items per topic, `all` included."""

    def changed_since(self, generation: int) -> Iterator[Item]:
        """Items added or changed after `generation` (0: every item), oldest first."""

    def item_ids(self) -> Iterator[str]: ...

    def archive_dates(self, page: int, size: int) -> list[tuple[str, datetime | None]]:
        """Id and `updated` of the items of archive page `page` of `all` (`archive_page`'s
        items, newest first): what a sitemap lists, without reading whole items."""

    def newest_ids(self, count: int) -> list[str]:
        """The ids of the last `count` items first seen, oldest first (`item_ids`' tail)."""

    def last_updated(self) -> datetime | None:
        """The newest `updated` in the store."""

    def killed(self, since: int = 0) -> list[tuple[str, datetime, str | None, tuple[str, ...]]]:
        """Withdrawn items killed at or after `since` (microseconds): id, when, reason, topics."""

    def killed_at(self, item_id: str) -> datetime | None:
        """When the item was withdrawn, if it was."""

    def killed_ids(self) -> Iterator[str]: ...

    def pinned(self) -> Iterator[Item]:
        """The published items whose topics their source or an editor pinned, oldest first,
        each with those topics (labelled data for `feedsvc learn`)."""

    def health(self) -> tuple[int, int]:
        """Item count and generation."""

    def close(self) -> None: ...


class Writing(Protocol):
    """Storing documents and keeping their filing in step with the rules."""

    def ingest(self, items: Sequence[Item], topics_for: Filer, who: str = "cli") -> Counts:
        """Store one document's items in one transaction, all or nothing, idempotently; items
        dated in the future are held until then (an embargo)."""

    def ingest_incoming(self, ready: Incoming, who: str = "cli") -> Counts:
        """`ingest` of items made ready before (`plan.incoming`, in a worker process)."""

    def batch(self) -> AbstractContextManager[None]:
        """Writes inside share one transaction, seen by others when it ends; each is still all
        or nothing, and a batch the engine could not keep whole (SQLite on a full disk, a lost
        connection) ends in a `StoreError` with none of it stored."""

    def sync_catalog(self, digest: str, topics_for: Filer) -> int:
        """Re-file every item if the rules (`digest`) changed; how many items moved."""


class Editorial(Protocol):
    """Editorial control: each operation is one transaction that moves the generation and is
    written to the log with who did it (cli, api, server, build)."""

    def kill(self, ids: Sequence[str], reason: str | None, who: str) -> list[str]:
        """Withdraw items everywhere at once; their ids stay withdrawn. Unknown ids: error."""

    def unkill(self, ids: Sequence[str], who: str) -> list[str]:
        """Publish withdrawn items again (held again if their embargo has not lifted)."""

    def pin(self, item_id: str, topics: Sequence[str], who: str) -> tuple[str, ...]:
        """File a published item under `topics` (checked against the catalogue by the caller)
        whatever the rules say (an editor's correction, kept as labelled data); the topics it
        was under. Unknown id: error."""

    def held(self) -> dict[str, int]:
        """Items under embargo per topic (`all` included)."""

    def next_lift(self) -> datetime | None:
        """When the next embargo lifts (None: nothing is held)."""

    def lift_due(self, who: str = "server") -> int:
        """Publish held items whose time has come (`generation` does this by itself)."""

    def log(self, limit: int = 100) -> list[tuple[datetime, str, str, str]]:
        """The newest operations: when, who, what, detail."""


class Transfer(Protocol):
    """Copying a store whole (`feedsvc copy`, `feedsvc backup`)."""

    def export(self) -> Export:
        """Everything the store holds (for `feedsvc copy`; inside `snapshot()`)."""

    def import_store(self, export: Export) -> Copied:
        """Fill an empty store with another's `export`, losslessly, in one transaction."""

    def backup(self, target: Path) -> str:
        """With `features.backup` only: a consistent copy at `target`; what was done."""


class Store(Reading, Writing, Editorial, Transfer, Protocol):
    """A feedsvc store, whatever the engine. One instance per thread."""


def open_store(
    location: Location | str | Path,
    clock: Callable[[], datetime] = utc_now,
    create: bool = False,
) -> Store:
    """The store at `location`. Only `create=True` (init, ingest) makes a new one; any other
    opening of a place that holds no store is a `StoreError`, and nothing is written."""
    if not isinstance(location, Location):
        location = parse_location(location)
    if location.engine == "postgresql":
        try:
            from .postgres import PostgresStore  # deferred: psycopg is an optional extra
        except ImportError:
            raise StoreError(
                "a PostgreSQL store needs the driver: pip install 'feedsvc[postgres]'",
                str(location),
            ) from None

        return PostgresStore.open(location, clock, create)
    from .sqlite import SQLiteStore

    return SQLiteStore.open(location, clock, create)
