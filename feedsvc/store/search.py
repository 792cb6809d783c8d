"""Search in the store, whatever the engine: the rules every backend's `Store.search` follows.
The engines' SQL lives beside their backends (`sqlite_search.py`; `postgres_search.py` for the
PostgreSQL backend); what they share is here.

- What an item is found by: its title and its body text (`Item.body_text`: the content as
  plain text, else the summary), each folded by `query.fold`, as two fields, so a phrase never
  runs from the title into the body. Both engines index exactly these words.
- Which items can be found: the live ones only, those `newest` can return. Held (embargoed)
  and killed items are not in the index; an item enters it in the transaction that publishes
  it and leaves it in the one that withdraws it.
- The index remembers the `query.FOLD_VERSION` it was built with (meta key `FOLD_KEY`); a
  store opened for writing rebuilds it when that differs, and `search` refuses a stale index.
- Order and size: the answer is the newest `limit` matches in feed order (published, then
  arrival, descending), exactly what `newest` would give were the others not there.
"""

from __future__ import annotations

from ..errors import StoreError
from ..query import FOLD_VERSION, FeedParameters

FOLD_KEY = "fold"  # meta: the FOLD_VERSION the index holds ('0': not built yet)
STALE = (
    "the search index was made by another version of feedsvc; run any feedsvc command on the "
    "store where it can be written (feedsvc topics) to rebuild it"
)


def check_fold(stored: str | None, where: str) -> None:
    """`StoreError` unless the index was built with this feedsvc's folding."""
    if stored != str(FOLD_VERSION):
        raise StoreError(STALE, where)


def check_cut_off(parameters: FeedParameters, since: object | None) -> None:
    """`filter_time` needs the cut-off the caller computed from its clock (`query.cut_off`):
    a store never reads the time itself for it, so cached answers and their keys agree."""
    if parameters.filter_time is not None and since is None:
        raise ValueError("filter_time needs the cut-off (since)")
