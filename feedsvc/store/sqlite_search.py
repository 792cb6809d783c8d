"""The SQLite search index (FTS5), for sqlite.py to own and run by the rules of `Store.search`.

A contentless FTS5 table (`content=''`: the index only) over each item's title and body as
folded in Python (`query.fold`, so both engines index the same words), with the `ascii`
tokenizer, which splits folded text at its spaces only; rowid is `items.seq`. A new item is
`INSERT_ROW`; a changed or withdrawn one is first `DELETE_ROW` with the text it was indexed
with (a contentless table must be told the old words); `DELETE_ALL` empties it for a rebuild.

`newest_matches` gives the newest matches in feed order without reading every match: FTS5
returns them by rowid (seq) from the newest down, and seq order is nearly feed order
(published, seq); a check on the `items_newest` / `filed` indexes proves no older-seq item
could still rank higher.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

from ..query import FeedParameters, Query, Term

TABLE = "items_search"

# columnsize=0: no per-row sizes (they serve only bm25 ranking; feeds are newest first).
CREATE_TABLE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
    "title, body, content='', columnsize=0, tokenize='ascii')"
)
INSERT_ROW = f"INSERT INTO {TABLE} (rowid, title, body) VALUES (?, ?, ?)"
DELETE_ROW = f"INSERT INTO {TABLE} ({TABLE}, rowid, title, body) VALUES ('delete', ?, ?, ?)"
DELETE_ALL = f"INSERT INTO {TABLE} ({TABLE}) VALUES ('delete-all')"
MATCHING = f"SELECT rowid FROM {TABLE} WHERE {TABLE} MATCH ?"
_NEWEST_BELOW = f"{MATCHING} AND rowid < ? ORDER BY rowid DESC LIMIT ?"
_FROM_SEQ = f"{MATCHING} AND rowid >= ?"

FIRST_WINDOW = 200  # matches read at first; each further read is four times larger
_TOP_SEQ = 2**63 - 1
_NO_CUT_OFF = -(2**63) + 1  # `floor - 1` stays a 64-bit integer


def to_fts5_any(terms: Sequence[Term]) -> str:
    """An FTS5 MATCH expression true when any of `terms` is present."""
    if not terms:
        raise ValueError("no terms")
    # Every token a string: inside "..." nothing is syntax (a quote would be doubled; tokens
    # hold only letters and digits anyway). `+` joins the strings of a phrase.
    quoted = (" + ".join('"' + t.replace('"', '""') + '"' for t in term.tokens) for term in terms)
    return " OR ".join(quoted)


def to_fts5(query: Query) -> str:
    """The FTS5 MATCH expression of `query`, for a table whose text is `fold`ed and whose
    tokenizer splits at spaces only (see store/sqlite_search.py)."""
    wanted = " AND ".join(f"({to_fts5_any(clause)})" for clause in query.clauses)
    if not query.excluded:
        return wanted
    return f"({wanted}) NOT ({to_fts5_any(query.excluded)})"


def newest_matches(
    db: sqlite3.Connection,
    parameters: FeedParameters,
    limit: int,
    topic: str | None = None,
    since: int | None = None,
    window: int = FIRST_WINDOW,
) -> list[int]:
    """The seqs of the newest `limit` items (of `topic`; None: all items) that match `q` and
    `filterout`, published at or after `since` (None: any time), in feed order (published,
    then seq, descending). Run it inside the store's read snapshot."""
    floor = _NO_CUT_OFF if since is None else since
    search = parameters.search()
    if search is not None:
        return _by_match(db, to_fts5(search), limit, topic, floor, window)
    if parameters.filterout:
        return _without(db, to_fts5_any(parameters.filterout), limit, topic, floor, window)
    return [seq for seq, _ in _newest(db, topic, floor, limit)]


def _by_match(
    db: sqlite3.Connection, expression: str, limit: int, topic: str | None, floor: int, size: int
) -> list[int]:
    """Read matches from the largest seq down, a window at a time, until the best `limit` of
    them cannot be beaten by an item of smaller seq."""
    found: list[tuple[int, int]] = []
    below = _TOP_SEQ
    while True:
        batch = [seq for (seq,) in db.execute(_NEWEST_BELOW, (expression, below, size))]
        found += _dated(db, batch, topic, floor)
        found.sort(reverse=True)
        if len(batch) < size:
            return [seq for _, seq in found[:limit]]
        below = batch[-1]
        # An item of smaller seq could still enter the answer only if published after the
        # last one in it (or, while the answer is short, at or after the cut-off).
        bar = found[limit - 1][0] if len(found) >= limit else floor - 1
        if not _newer_below(db, topic, bar, below):
            return [seq for _, seq in found[:limit]]
        size *= 4


def _of(topic: str | None) -> tuple[str, tuple[str, ...]]:
    """Where a feed's rows are read, up to a condition: items (all), or filed for a topic."""
    return ("items WHERE", ()) if topic is None else ("filed WHERE topic = ? AND", (topic,))


def _dated(
    db: sqlite3.Connection, seqs: list[int], topic: str | None, floor: int
) -> list[tuple[int, int]]:
    """(published, seq) of those of `seqs` in `topic` and published at or after `floor`."""
    source, given = _of(topic)
    # One JSON parameter, whatever the number of seqs (SQLite caps `?` marks at 32766).
    sql = f"SELECT published, seq FROM {source} seq IN (SELECT value FROM json_each(?)) AND "
    return db.execute(sql + "published >= ?", (*given, json.dumps(seqs), floor)).fetchall()


def _newer_below(db: sqlite3.Connection, topic: str | None, published: int, below: int) -> bool:
    """Whether an item (of `topic`) with a seq under `below` is published after `published`."""
    source, given = _of(topic)
    sql = f"SELECT 1 FROM {source} published > ? AND seq < ? LIMIT 1"
    return db.execute(sql, (*given, published, below)).fetchone() is not None


def _without(
    db: sqlite3.Connection, expression: str, limit: int, topic: str | None, floor: int, size: int
) -> list[int]:
    """The feed's newest items less those matching `expression`: read the newest `size`, drop
    the matches among them (one FTS5 read from their smallest seq up), widen if too few."""
    size = max(size, 2 * limit)
    while True:
        newest = _newest(db, topic, floor, size)
        if not newest:
            return []
        lowest = min(seq for seq, _ in newest)
        dropped = {seq for (seq,) in db.execute(_FROM_SEQ, (expression, lowest))}
        kept = [seq for seq, _ in newest if seq not in dropped]
        if len(kept) >= limit or len(newest) < size:
            return kept[:limit]
        size *= 4


def _newest(
    db: sqlite3.Connection, topic: str | None, floor: int, count: int
) -> list[tuple[int, int]]:
    """(seq, published) of the newest `count` items (of `topic`), in feed order."""
    source, given = _of(topic)
    sql = f"SELECT seq, published FROM {source} published >= ? ORDER BY published DESC, seq DESC"
    return db.execute(sql + " LIMIT ?", (*given, floor, count)).fetchall()
