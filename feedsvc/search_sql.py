"""The full-text search index's SQL, for the store backends to own and execute (this module
runs nothing; it moves into the store package with them).

SQLite: an FTS5 table over each item's title and body, fed with our own folded text
(`query.fold`), not the raw columns. FTS5's `unicode61 remove_diacritics 2` folds Nguyễn and
Mbappé, but not ø, ł, đ, ß, Greek tonos, Cyrillic ё or ligatures, and it splits words
differently from PostgreSQL; folding in Python gives both engines the same words. The table is
contentless (`content=''`): the folded text is not stored twice, the index only. Its tokenizer,
`ascii`, splits folded text at the spaces and nowhere else (folded text holds ASCII letters and
digits, any non-ASCII letter, and single spaces), so the index's words are exactly
`query.tokens`; title and body are two columns, so no phrase spans them.

Keeping it in step (in the ingest's transaction): a new item is `INSERT_ROW`; a changed item
is `DELETE_ROW` with the text it was indexed with (a contentless table must be told the old
words: recompute them from the old row with `index_row`) then `INSERT_ROW`. A store whose
`FOLD_VERSION` (kept by the store, e.g. in `meta`) differs from `query.FOLD_VERSION` must be
rebuilt: `DELETE_ALL`, then `INSERT_ROW` for every item (the migration that adds the table
does the same for existing stores).

PostgreSQL: a `tsvector` column (GIN-indexed) set to `PG_DOCUMENT` with the same two folded
texts; a query is `search @@ <query.to_tsquery_sql(...)>`.
"""

from __future__ import annotations

from .query import FeedParameters, fold, to_fts5, to_fts5_any

TABLE = "items_search"

# rowid is items.seq. columnsize=0: no per-row sizes (they serve only bm25 ranking; feeds are
# newest first).
CREATE_TABLE = (
    f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5("
    "title, body, content='', columnsize=0, tokenize='ascii')"
)
INSERT_ROW = f"INSERT INTO {TABLE} (rowid, title, body) VALUES (?, ?, ?)"
DELETE_ROW = f"INSERT INTO {TABLE} ({TABLE}, rowid, title, body) VALUES ('delete', ?, ?, ?)"
DELETE_ALL = f"INSERT INTO {TABLE} ({TABLE}) VALUES ('delete-all')"
MATCHING = f"SELECT rowid FROM {TABLE} WHERE {TABLE} MATCH ?"

# PostgreSQL: title and body apart by a `_` lexeme that no query can hold (folded words have
# no `_`; the parser drops it), so a phrase cannot run from the title into the body.
PG_DOCUMENT = "to_tsvector('simple', %s) || '_:1'::tsvector || to_tsvector('simple', %s)"


def index_row(seq: int, title: str, body: str) -> tuple[int, str, str]:
    """The parameters of `INSERT_ROW` / `DELETE_ROW` for an item (`body`: `Item.body_text()`)."""
    return seq, fold(title), fold(body)


def document_parameters(title: str, body: str) -> tuple[str, str]:
    """The parameters of `PG_DOCUMENT` for an item."""
    return fold(title), fold(body)


def search_condition(
    parameters: FeedParameters, since: int | None = None
) -> tuple[str, list[object]]:
    """A condition on `items` (its `seq` and `published`) for `q`, `filterout` and
    `filter_time` (`since`: the cut-off in the store's `published` units, computed by the store
    from its clock), with `?` placeholders and their values; ("1", []) for none."""
    conditions: list[str] = []
    values: list[object] = []
    search = parameters.search()
    if search is not None:
        conditions.append(f"items.seq IN ({MATCHING})")
        values.append(to_fts5(search))
    elif parameters.filterout:
        conditions.append(f"items.seq NOT IN ({MATCHING})")
        values.append(to_fts5_any(parameters.filterout))
    if parameters.filter_time is not None:
        if since is None:
            raise ValueError("filter_time needs the cut-off")
        conditions.append("items.published >= ?")
        values.append(since)
    return " AND ".join(conditions) or "1", values
