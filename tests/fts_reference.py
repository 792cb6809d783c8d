"""The plain, exact way to a search's answer on an FTS5 index: a condition that reads every
match. Not used by feedsvc (`sqlite_search.newest_matches` is its fast way); the tests and
bench.search compare the two."""

from __future__ import annotations

from feedsvc.query import FeedParameters, fold
from feedsvc.store.sqlite_search import MATCHING, to_fts5, to_fts5_any


def index_row(seq: int, title: str, body: str) -> tuple[int, str, str]:
    """The parameters of `INSERT_ROW` / `DELETE_ROW` for an item (`body`: `Item.body_text()`)."""
    return seq, fold(title), fold(body)


def search_condition(
    parameters: FeedParameters, since: int | None = None
) -> tuple[str, list[object]]:
    """A condition on `items` (its `seq` and `published`) for `q`, `filterout` and
    `filter_time` (`since`: the cut-off in the store's `published` units), with `?`
    placeholders and their values; ("1", []) for none. It reads every match."""
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
