"""The PostgreSQL search index's SQL, for postgres.py to own and run; the rules are those
of `search.py`, the same as SQLite's.

A `tsvector` column `items.search` (GIN-indexed) holds each item's two folded fields
(`search.indexed_text`), title and body apart by a `_` lexeme no query can hold, so a phrase
cannot run from one into the other; the `simple` configuration only splits at the spaces.
Rows are indexed by `REINDEX_ROWS` in the transaction that writes them; a killed item's row
goes, and its entry with it. `search_sql` is one statement: the GIN index finds the matches,
PostgreSQL sorts them.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..query import FeedParameters, Query, Term

# The index (schema version 4): the column, then its GIN index.
CREATE = (
    "ALTER TABLE feedsvc.items ADD COLUMN search tsvector",
    "CREATE INDEX items_search ON feedsvc.items USING gin (search)",
)

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


def _tsquery_any(terms: Sequence[Term], parameters: list[str]) -> str:
    if not terms:
        raise ValueError("no terms")
    parameters.extend(" ".join(term.tokens) for term in terms)
    return "(" + " || ".join("phraseto_tsquery('simple', %s)" for _ in terms) + ")"


def to_tsquery_any_sql(terms: Sequence[Term]) -> tuple[str, list[str]]:
    """A parenthesised tsquery SQL expression true when any of `terms` is present, and its
    parameters (psycopg `%s` placeholders)."""
    parameters: list[str] = []
    return _tsquery_any(terms, parameters), parameters


def to_tsquery_sql(query: Query) -> tuple[str, list[str]]:
    """A parenthesised SQL expression of type tsquery for `query`, made only of
    `phraseto_tsquery('simple', %s)` calls, `&&`, `||`, `!!` and parentheses, and its
    parameters: the folded words, the only place user text goes."""
    parameters: list[str] = []
    wanted = " && ".join(_tsquery_any(clause, parameters) for clause in query.clauses)
    if not query.excluded:
        return f"({wanted})", parameters
    return f"({wanted} && !! {_tsquery_any(query.excluded, parameters)})", parameters
