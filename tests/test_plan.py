"""Ingest planning: the engine-independent rules, tested without any database."""

from __future__ import annotations

import itertools
import pickle
from datetime import UTC, datetime

from feedsvc.ingest import Prepared
from feedsvc.model import Image, Item, item_id
from feedsvc.plan import (
    Stored,
    digest,
    incoming,
    merge_duplicates,
    plan_ingest,
    plan_refile,
    to_micros,
)

NOW = to_micros(datetime(2026, 11, 24, 12, 0, tzinfo=UTC))


def headline(title: str) -> Item:
    return Item(id=item_id(title), title=title)


def article(title: str, text: str = "Text.") -> Item:
    return Item(id=item_id(title), title=title, content=f"<p>{text}</p>", summary=text)


def plan(items, existing=None, now=NOW):
    items = merge_duplicates(items)
    return plan_ingest(items, [("world",)] * len(items), existing or {}, now)


def stored(item: Item, seq: int = 1, published: int = NOW - 10**9) -> Stored:
    return Stored(seq, digest(item), item.content is not None, published, published)


def test_items_first_seen_together_get_strictly_decreasing_dates_in_document_order() -> None:
    titles = [f"Story number {n}" for n in range(50)]
    result = plan([headline(t) for t in titles])
    newest_first = list(reversed(result.inserts))  # inserts run oldest first
    assert [r.title for r in newest_first] == titles
    dates = [r.published for r in newest_first]
    assert dates[0] == NOW  # the first item has the time the document was first seen
    assert all(a > b for a, b in itertools.pairwise(dates))
    assert dates[0] - dates[-1] == 49  # a microsecond apart: the smallest step kept
    assert [r.updated for r in newest_first] == dates


def test_dates_the_source_gives_are_kept() -> None:
    given = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    item = Item(id="a1", title="Dated", published=given, updated=given)
    (row,) = plan([item]).inserts
    assert row.published == row.updated == to_micros(given)


def test_same_text_again_is_unchanged_and_headline_never_overwrites_article() -> None:
    story = article("Dam plan approved")
    assert plan([story], {story.id: stored(story)}).counts().unchanged == 1
    later_headline = headline("Dam plan approved")
    result = plan([later_headline], {story.id: stored(story)})
    assert not result.changes and result.unchanged == 1


def test_a_change_keeps_published_and_moves_updated_forward() -> None:
    old = headline("Rail link opens")
    was = stored(old, seq=7)
    result = plan([article("Rail link opens")], {old.id: was})
    ((seq, row),) = result.updates
    assert seq == 7 and row.published == was.published
    assert row.updated == NOW > was.updated
    # A clock behind the stored date still moves `updated` forward, never back.
    ((_, again),) = plan([article("Rail link opens", "New.")], {old.id: stored(old)}, 0).updates
    assert again.updated > was.updated


def test_a_later_article_replaces_an_earlier_headline_in_one_document() -> None:
    merged = merge_duplicates([headline("Vote count"), headline("Other"), article("Vote count")])
    assert [i.title for i in merged] == ["Vote count", "Other"]
    assert merged[0].content is not None
    assert merge_duplicates([article("Vote count"), headline("Vote count")])[0].content


def test_refile_moves_only_rows_whose_topics_change() -> None:
    (row,) = plan([headline("Quiet day")]).inserts
    moves = plan_refile([(1, row)], lambda item: ("world",))
    assert moves == []
    ((seq, moved),) = plan_refile([(1, row)], lambda item: ("sport",))
    assert seq == 1 and moved.topics == ("sport",) and moved.published == row.published


def test_an_item_comes_back_whole_from_an_ingest_worker() -> None:
    """Workers send items back pickled (as their fields, `Item.__reduce__`): every field."""
    item = Item(
        id="0123456789abcdef",
        title="Ferry timetable changes",
        content="<p>Boats leave earlier.</p>",
        summary="Boats leave earlier.",
        author="J.Ortega",
        source="Harbour desk",
        link="https://example.org/ferry",
        published=datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
        updated=datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
        topics=("world", "business"),
        guid="urn:newsml:example.org:20261120:ferry",
        version=2,
        status="withheld",
        embargo=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
        language="en",
        subjects=("medtop:04000000",),
        images=(Image("https://example.org/ferry.jpg", "image/jpeg", 800, 600, "Ferry", "Desk"),),
        ednote="Check the times",
        correction="Boats leave at 7, not 8.",
        dateline="PORT, Nov 20",
    )
    ready = incoming([item, headline("Pier closes")], lambda item: ("world",))
    prepared = Prepared("doc.txt", ready)
    assert pickle.loads(pickle.dumps(prepared)) == prepared
    assert [f for f in Item.__slots__ if getattr(item, f) in (None, ())] == []  # all set
