"""The PostgreSQL search index's SQL, for postgres.py to own and run by the rules of
`Store.search`, the same as SQLite's.

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
# Every row's document at once: seqs, folded titles, folded bodies as three arrays.
REINDEX_ROWS = (
    f"UPDATE feedsvc.items SET search = {DOCUMENT % ('u.title', 'u.body')} "
    "FROM unnest(%b::bigint[], %b::text[], %b::text[]) AS u (seq, title, body) "
    "WHERE items.seq = u.seq"
)


def search_sql(
    parameters: FeedParameters, topic: str | None, since: int | None, limit: int, columns: str
) -> tuple[str, list[object]]:
    """The statement for `Store.search` and its parameters (psycopg `%s` placeholders): the
    newest `limit` items (of `topic`; None: all) matching `q` and `filterout`, published at or
    after `since` (microseconds; None: any time), in feed order. `columns`: the item columns
    to select (`seq` and `published` need no table: the join merges them)."""
    conditions, values = ["TRUE"], []
    if topic is not None:
        conditions, values = ["filed.topic = %s"], [topic]
    search = parameters.search()
    if search is not None:
        conditions.append(f"items.search @@ {tsquery(search, values)}")
    elif parameters.filterout:
        conditions.append(f"NOT (items.search @@ {_tsquery_any(parameters.filterout, values)})")
    if since is not None:
        conditions.append("items.published >= %s")
        values.append(since)
    source, t = "feedsvc.items", "items"
    if topic is not None:
        source, t = f"feedsvc.filed JOIN {source} USING (seq, published)", "filed"
    where = " AND ".join(conditions)
    sql = f"SELECT {columns} FROM {source} WHERE {where} ORDER BY {t}.published DESC, {t}.seq DESC"
    return f"{sql} LIMIT %s", [*values, limit]


def _tsquery_any(terms: Sequence[Term], parameters: list[object]) -> str:
    if not terms:
        raise ValueError("no terms")
    parameters.extend(" ".join(term.tokens) for term in terms)
    return "(" + " || ".join("phraseto_tsquery('simple', %s)" for _ in terms) + ")"


def tsquery(query: Query, parameters: list[object]) -> str:
    """A parenthesised SQL expression of type tsquery for `query`, made only of
    `phraseto_tsquery('simple', %s)` calls, `&&`, `||`, `!!` and parentheses; its parameters,
    the folded words (the only place user text goes), are added to `parameters`."""
    wanted = " && ".join(_tsquery_any(clause, parameters) for clause in query.clauses)
    if not query.excluded:
        return f"({wanted})"
    return f"({wanted} && !! {_tsquery_any(query.excluded, parameters)})"
