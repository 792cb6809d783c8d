"""The PostgreSQL search index's SQL, for the PostgreSQL backend (postgres.py) to own and run:
nothing here runs by itself. The rules are those of `search.py`, the same as SQLite's.

A `tsvector` column `items.search` (GIN-indexed) holds each item's two folded fields
(`search.indexed_text`), title and body apart by a `_` lexeme that no query can hold (folded
words have no `_`; the parser drops it), so a phrase cannot run from the title into the body.
The text is folded in Python, not by a PostgreSQL dictionary, so both engines index the same
words; the `simple` configuration only splits at the spaces and keeps each word as it is.

Keeping it in step: every statement that inserts an item or changes its title, content or
summary sets `search` to `DOCUMENT` over that item's `indexed_text` in the same statement (the
column is NOT NULL, so an insert that forgets fails); a killed item's row is deleted, and its
index entry with it. A store whose meta `fold` differs from `query.FOLD_VERSION` is rebuilt
with `REINDEX_ROWS` over every row.

Reading: `search_sql` is one statement: the newest `limit` matches in feed order; the GIN index
finds the matches, and PostgreSQL sorts them (no windowed walk as on SQLite).
"""

from __future__ import annotations

from ..query import FeedParameters, to_tsquery_any_sql, to_tsquery_sql

# Migration: the column, then (in the same transaction, under the migration lock) every row's
# document set with `REINDEX_ROWS` and the meta row written, then `MIGRATION_AFTER`.
MIGRATION = """
ALTER TABLE feedsvc.items ADD COLUMN search tsvector;
INSERT INTO feedsvc.meta VALUES ('fold', '0') ON CONFLICT (key) DO NOTHING;
"""
MIGRATION_AFTER = """
ALTER TABLE feedsvc.items ALTER COLUMN search SET NOT NULL;
CREATE INDEX items_search ON feedsvc.items USING gin (search);
"""

# An item's document from its two folded fields (two text parameters).
DOCUMENT = "to_tsvector('simple', %s) || '_:1'::tsvector || to_tsvector('simple', %s)"
# The same over columns of an unnest(...) row source `u` with fields `title_words`, `body_words`.
DOCUMENT_OF_U = (
    "to_tsvector('simple', u.title_words) || '_:1'::tsvector || to_tsvector('simple', u.body_words)"
)
# Every row's document at once: seqs, folded titles, folded bodies as three arrays.
REINDEX_ROWS = (
    f"UPDATE feedsvc.items SET search = {DOCUMENT_OF_U} "
    "FROM unnest(%b::bigint[], %b::text[], %b::text[]) AS u (seq, title_words, body_words) "
    "WHERE items.seq = u.seq"
)


def search_sql(
    parameters: FeedParameters, topic: str | None, since: int | None, limit: int, columns: str
) -> tuple[str, list[object]]:
    """The statement for `Store.search` and its parameters (psycopg `%s` placeholders): the
    newest `limit` items (of `topic`; None: all) matching `q` and `filterout`, published at or
    after `since` (microseconds; None: any time), in feed order. `columns`: the item columns
    to select, each qualified with `items.`."""
    conditions: list[str] = []
    values: list[object] = []
    search = parameters.search()
    if search is not None:
        expression, words = to_tsquery_sql(search)
        conditions.append(f"items.search @@ {expression}")
        values += words
    elif parameters.filterout:
        expression, words = to_tsquery_any_sql(parameters.filterout)
        conditions.append(f"NOT (items.search @@ {expression})")
        values += words
    if since is not None:
        conditions.append("items.published >= %s")
        values.append(since)
    where = " AND ".join(conditions) or "TRUE"
    if topic is None:
        sql = (
            f"SELECT {columns} FROM feedsvc.items WHERE {where} "
            "ORDER BY items.published DESC, items.seq DESC LIMIT %s"
        )
        return sql, [*values, limit]
    sql = (
        f"SELECT {columns} FROM feedsvc.filed JOIN feedsvc.items "
        "ON items.seq = filed.seq AND items.published = filed.published "
        f"WHERE filed.topic = %s AND {where} "
        "ORDER BY filed.published DESC, filed.seq DESC LIMIT %s"
    )
    return sql, [topic, *values, limit]
