"""Archive places in the store: fixed pages in first-seen order, per topic and for `all`."""

from __future__ import annotations

import sqlite3

from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.sources import Document

from .test_store_schema import columns_after

SIZE = 10


def add(store, catalog, titles: list[str]) -> None:
    text = "".join(f"-\n{title}\n" for title in titles)
    ingest_document(store, catalog, Document("d.txt", text.encode(), "wire"))


def football(n: int) -> str:
    return f"Striker scores twice as league leaders win match {n}"


def pages(store, topic: str) -> list[list[str]]:
    count = store.archive_pages(topic, SIZE)
    return [[i.title for i in store.archive_page(topic, n, SIZE)] for n in range(count)]


def test_pages_hold_items_in_first_seen_order_and_never_move(store, catalog, clock) -> None:
    for batch in range(3):  # three documents of 12, the first item of each the newest
        add(store, catalog, [football(batch * 12 + k) for k in reversed(range(12))])
        clock.advance(minutes=5)
    before = pages(store, "sport")
    assert len(before) == 3 and [len(p) for p in before] == [SIZE] * 3
    seen = [title for page in before for title in reversed(page)]
    assert seen == [football(n) for n in range(30)]  # oldest page first, oldest item first
    assert pages(store, "all") == before  # every sample item here is sport
    add(store, catalog, [football(99)])
    assert pages(store, "sport") == before  # a new item never changes a full page


def test_a_kill_empties_only_its_place(store, catalog) -> None:
    add(store, catalog, [football(k) for k in reversed(range(25))])
    before = pages(store, "sport")
    victim = store.archive_page("sport", 0, SIZE)[3]
    store.kill([victim.id], None, "cli")
    after = pages(store, "sport")
    assert after[1] == before[1] and victim.title not in after[0]
    assert len(after[0]) == SIZE - 1


def test_an_older_store_gets_its_places_by_migration(tmp_path, catalog, clock) -> None:
    path = tmp_path / "old.sqlite3"
    store = open_filed_store(path, catalog, clock, create=True)
    add(store, catalog, [football(k) for k in reversed(range(23))])
    expected = pages(store, "sport")
    store.close()
    with sqlite3.connect(path) as db:  # back to schema 2: no places yet, no later columns
        db.executescript(
            ";".join(columns_after(2)) + ";"
            "DROP INDEX items_ordinal; DROP INDEX filed_ordinal; DROP TABLE ordinals;"
            "ALTER TABLE items DROP COLUMN ordinal; ALTER TABLE filed DROP COLUMN ordinal;"
            "PRAGMA user_version = 2;"
        )
    reopened = open_filed_store(path, catalog, clock)
    assert pages(reopened, "sport") == expected


def test_an_item_pinned_out_of_a_topic_marks_that_topics_pages_changed(store, catalog) -> None:
    add(store, catalog, [football(k) for k in reversed(range(12))])
    since = store.generation()
    moved = store.archive_page("sport", 0, SIZE)[0]
    store.pin(moved.id, ["business"], "cli")
    assert moved.title not in [i.title for i in store.archive_page("sport", 0, SIZE)]
    assert ("sport", 0) in store.archive_changes(since, SIZE)  # an incremental build redoes it
