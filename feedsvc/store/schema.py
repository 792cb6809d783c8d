"""The one description of a store's tables, columns and indexes: both engines' DDL and
migrations are made from it (`SQLStore._migrate`), and a test compares it with both engines'
live schemas. A new item field is one `Column` here (with the version that adds it).

Each table, column and index says the schema version that added it; a store at version n
gets, for each later version, its new tables, its new columns (ALTER TABLE ... ADD COLUMN) and
its new indexes, then that version's data step (`SQLStore._migrate`). Dates are microseconds
since the epoch, UTC, in every engine, so both give the same bytes."""

from __future__ import annotations

from dataclasses import dataclass

VERSION = 5
SEARCH_SINCE = 4  # the search index: each engine's own (FTS5 table; tsvector column + GIN)
INT, TEXT, KEY = "int", "text", "key"  # KEY: an integer primary key feedsvc numbers itself


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: str  # INT, TEXT or KEY
    null: bool = False
    unique: bool = False
    since: int = 1


@dataclass(frozen=True, slots=True)
class Index:
    name: str
    columns: tuple[str, ...]
    since: int = 1


@dataclass(frozen=True, slots=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    indexes: tuple[Index, ...] = ()
    since: int = 1


def _columns(spec: str, since: int = 1) -> tuple[Column, ...]:
    """Columns from "name kind[?][!]" words: `?` nullable, `!` unique."""
    found = []
    for word in spec.split():
        name, _, kind = word.partition(":")
        found.append(
            Column(name, kind.strip("?!"), null="?" in kind, unique="!" in kind, since=since)
        )
    return tuple(found)


TABLES = (
    Table("meta", _columns("key:text value:text"), ("key",)),
    # seq orders items first seen together: a larger seq is newer. pinned: the topics the
    # source gave (None: the rules); topics: as filed, comma-separated; digest: of the visible
    # fields (a new one moves `updated`); generation: the one that last changed the row;
    # ordinal: the item's archive place in `all` (first-seen order, never reused). Since 5,
    # the newsroom formats' fields (plan.Row: subjects comma-joined, images as JSON, status
    # NULL for usable); every one nullable, so older rows need no data step.
    Table(
        "items",
        _columns(
            "seq:key id:text! title:text content:text? summary:text? author:text? source:text? "
            "link:text? published:int updated:int pinned:text? topics:text digest:text "
            "generation:int"
        )
        + _columns("ordinal:int?", since=3)
        + _columns(
            "guid:text? version:int? status:text? embargo:int? language:text? subjects:text? "
            "images:text? ednote:text? correction:text? dateline:text?",
            since=5,
        ),
        ("seq",),
        (
            Index("items_newest", ("published", "seq")),
            Index("items_generation", ("generation",)),
            Index("items_updated", ("updated",)),
            Index("items_ordinal", ("ordinal",), since=3),
        ),
    ),
    # One row per (topic, item), in feed order, so newest-N is an index walk; ordinal: the
    # item's archive place in the topic.
    Table(
        "filed",
        _columns("topic:text published:int seq:int") + _columns("ordinal:int?", since=3),
        ("topic", "published", "seq"),
        (Index("filed_seq", ("seq",)), Index("filed_ordinal", ("topic", "ordinal"), since=3)),
    ),
    # Items kept aside whole (plan.row_to_json): embargoed until `published`; withdrawn until
    # an unkill (topics: where it was filed, its feeds carry a tombstone).
    Table(
        "held",
        _columns("id:text published:int row:text"),
        ("id",),
        (Index("held_published", ("published",), since=2),),
        since=2,
    ),
    Table(
        "killed",
        _columns("id:text killed_at:int reason:text? topics:text row:text generation:int"),
        ("id",),
        since=2,
    ),
    Table("log", _columns("n:key at:int who:text what:text detail:text"), ("n",), since=2),
    Table("ordinals", _columns("topic:text next:int"), ("topic",), since=3),  # next places
)
BY_NAME = {table.name: table for table in TABLES}


def kind(table: str, column: str) -> str:
    return next(c.kind for c in BY_NAME[table].columns if c.name == column)
