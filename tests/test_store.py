"""The store: idempotent, transactional ingest; stable ids and honest dates; cheap generations."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime

import pytest

from feedsvc.catalog import load_catalog
from feedsvc.errors import DocumentError, StoreError
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.sources import Document, parse_document
from feedsvc.store import Counts
from feedsvc.store import open_store as open_engine
from feedsvc.store.schema import VERSION as SCHEMA_VERSION

from . import pg
from .conftest import FEEDS, SAMPLES


def doc(text: str, name: str = "doc.txt", kind: str = "wire") -> Document:
    return Document(name, text.encode(), kind)


def ingest(store, catalog, text: str, kind: str = "wire") -> Counts:
    return ingest_document(store, catalog, doc(text, kind=kind))


def dump(db: str) -> list:
    """Every row of the store's tables, whichever the engine."""
    if db.startswith("postgresql://"):
        return pg.dump(db)
    with sqlite3.connect(db) as connection:
        return [
            connection.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall()
            for t in ("items", "filed", "meta")
        ]


def wait_for_generation(store, expected: int, timeout: float = 3.0) -> int:
    """The store's generation once it is `expected`; on PostgreSQL another connection learns of
    a commit by NOTIFY, a moment after it (on SQLite at once)."""
    deadline = time.monotonic() + timeout
    while store.generation() != expected and time.monotonic() < deadline:
        time.sleep(0.001)
    return store.generation()


def test_same_document_twice_changes_nothing(store, catalog, settings) -> None:
    documents = sorted(SAMPLES.glob("*.txt"))
    for path in documents:
        ingest_document(store, catalog, Document(path.name, path.read_bytes(), "wire"))
    before = dump(settings.db)
    generation = store.generation()
    for path in documents:
        counts = ingest_document(store, catalog, Document(path.name, path.read_bytes(), "wire"))
        assert counts.new == counts.updated == 0
    assert dump(settings.db) == before
    assert store.generation() == generation


def test_same_headline_twice_is_one_item(store, catalog) -> None:
    assert ingest(store, catalog, "-\nVolcano erupts near the coast\n") == Counts(new=1)
    assert ingest(store, catalog, "-\nvolcano  ERUPTS near the coast\n") == Counts(unchanged=1)
    assert len(store.newest("all", 10)) == 1


def test_headline_then_article_is_an_update(store, catalog, clock) -> None:
    ingest(store, catalog, "-\nCentral bank holds rates steady\n")
    first = store.newest("all", 1)[0]
    clock.advance(hours=3)
    counts = ingest(
        store,
        catalog,
        "Central bank holds rates steady\nThe bank kept its main rate at 4%.\nK.Lund--ECO\n",
    )
    assert counts == Counts(updated=1)
    article = store.item(first.id)
    assert article.content == "<p>The bank kept its main rate at 4%.</p>"
    assert article.published == first.published
    assert article.updated == clock.now != first.updated


def test_headline_never_replaces_its_article(store, catalog) -> None:
    ingest(store, catalog, "Rail link opens\nTrains ran on time.\n")
    assert ingest(store, catalog, "-\nRail link opens\n") == Counts(unchanged=1)
    assert store.newest("all", 1)[0].content == "<p>Trains ran on time.</p>"


def test_headline_and_article_in_one_document_merge(store, catalog) -> None:
    counts = ingest(
        store, catalog, "-\nDam plan approved\n-\nOther news\nDam plan approved\nText.\n"
    )
    assert counts == Counts(new=2)
    assert [i.title for i in store.newest("all", 5)] == ["Dam plan approved", "Other news"]
    assert store.newest("all", 5)[0].content == "<p>Text.</p>"


def test_document_order_is_feed_order_newest_first(store, catalog, clock) -> None:
    ingest(store, catalog, "-\nOlder A\n-\nOlder B\n")
    clock.advance(minutes=5)
    ingest(store, catalog, "-\nNewest\n-\nSecond\n-\nThird\n")
    assert [i.title for i in store.newest("all", 10)] == [
        "Newest",
        "Second",
        "Third",
        "Older A",
        "Older B",
    ]


def test_published_is_first_seen_and_never_changes(store, catalog, clock) -> None:
    ingest(store, catalog, "-\nBridge reopens\n")
    seen = clock.now
    clock.advance(days=2)
    ingest(store, catalog, "Bridge reopens\nTraffic flows again.\n")
    item = store.newest("all", 1)[0]
    assert item.published == seen and item.updated == clock.now


def test_source_dates_are_kept(store, catalog) -> None:
    ingest(
        store,
        catalog,
        '{"id": "x1", "title": "Dated", "published": "2026-01-02T03:04:05Z"}',
        kind="jsonl",
    )
    item = store.item("x1")
    assert item.published == item.updated == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_failed_document_leaves_no_trace(store, catalog, settings) -> None:
    ingest(store, catalog, "-\nKeep me\n")
    before = dump(settings.db)
    bad = '{"id": "ok", "title": "fine"}\n{"id": "bad", "title": "pinned", "topics": ["nope"]}\n'
    with pytest.raises(DocumentError, match="unknown topic 'nope'"):
        ingest(store, catalog, bad, kind="jsonl")
    assert dump(settings.db) == before


def test_pinned_topics_override_the_rules(store, catalog) -> None:
    ingest(
        store,
        catalog,
        '{"id": "p1", "title": "Football final tonight", "topics": ["health"]}',
        kind="jsonl",
    )
    assert store.item("p1").topics == ("health",)


def test_generation_moves_only_on_change_and_is_seen_by_other_connections(
    store, catalog, settings
) -> None:
    other = open_engine(settings.db)
    start = other.generation()
    ingest(store, catalog, "-\nA change\n")
    assert wait_for_generation(other, start + 1) == start + 1
    ingest(store, catalog, "-\nA change\n")  # the same again: no change
    # Not a fixed sleep to see nothing happen: a real change after it, whose generation the
    # other connection waits for, would be one higher had the repeat moved it.
    ingest(store, catalog, "-\nA second change\n")
    assert store.generation() == start + 2
    assert wait_for_generation(other, start + 2) == start + 2
    other.close()


def statements_of(store, call) -> list[str]:
    """The SQL statements `call` makes the store run (SQLite's trace, parameters bound)."""
    seen: list[str] = []
    store.db.set_trace_callback(seen.append)
    try:
        call()
    finally:
        store.db.set_trace_callback(None)
    return [s for s in seen if s.lstrip().upper().startswith("SELECT")]


@pytest.mark.sqlite_only
@pytest.mark.parametrize("topic", ["world", "all"])
def test_newest_is_an_index_walk_not_a_sort(filled, topic) -> None:
    """The plan of the very statements `newest` runs: no temporary B-tree (a sort of the whole
    topic on every feed render) and an index for the order."""
    statements = statements_of(filled, lambda: filled.newest(topic, 50))
    assert statements
    for statement in statements:
        plan = " ".join(r[-1] for r in filled.db.execute("EXPLAIN QUERY PLAN " + statement))
        assert "TEMP B-TREE" not in plan, plan
        assert "INDEX" in plan or "PRIMARY KEY" in plan, plan


def test_changed_since_a_generation(store, catalog) -> None:
    ingest(store, catalog, "-\nFirst story\n")
    generation = store.generation()
    ingest(store, catalog, "-\nSecond story\n")
    assert [i.title for i in store.changed_since(generation)] == ["Second story"]
    assert len(list(store.changed_since(0))) == 2


def test_editing_topic_rules_refiles_stored_items(tmp_path, settings, clock) -> None:
    feeds = tmp_path / "feeds"
    (feeds / "topics").mkdir(parents=True)
    (feeds / "site.toml").write_text((FEEDS / "site.toml").read_text().split("topic_order")[0])
    topic = feeds / "topics" / "weather.toml"
    topic.write_text('title = "Weather"\ndescription = "Skies."\n[rules]\nmatch = ["rain"]\n')
    store = open_filed_store(settings.db, load_catalog(feeds), clock, create=True)
    ingest(store, load_catalog(feeds), "-\nSnow closes mountain pass\n")
    assert store.counts().get("weather", 0) == 0
    topic.write_text('title = "Weather"\ndescription = "Skies."\n[rules]\nmatch = ["snow"]\n')
    store.close()
    store = open_filed_store(settings.db, load_catalog(feeds), clock)
    assert store.counts()["weather"] == 1
    assert store.newest("weather", 5)[0].topics == ("weather",)


def test_newer_schema_refuses_to_open(tmp_path) -> None:
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this feedsvc"):
        open_engine(path)


def test_not_a_database_is_a_clear_error(tmp_path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("just some text, not SQLite " * 100)
    with pytest.raises(StoreError, match="not a feedsvc store"):
        open_engine(path)


@pytest.mark.sqlite_only
def test_wal_mode_and_backup(store, catalog, tmp_path) -> None:
    assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    ingest(store, catalog, "-\nBacked up\n")
    store.backup(tmp_path / "copy.sqlite3")
    copy = open_engine(tmp_path / "copy.sqlite3")
    assert [i.title for i in copy.newest("all", 5)] == ["Backed up"]
    assert copy.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_samples_parse_without_error() -> None:
    for path in SAMPLES.glob("*.txt"):
        assert parse_document(Document(path.name, path.read_bytes(), "wire"))


# -- opening: only init and ingest create a store ---------------------------------------------


def test_opening_a_missing_store_is_an_error_and_writes_nothing(tmp_path) -> None:
    path = tmp_path / "typo.sqlite3"
    with pytest.raises(StoreError, match="no store here"):
        open_engine(path)
    assert list(tmp_path.iterdir()) == []


def test_an_explicit_store_in_a_missing_directory_is_never_made(tmp_path) -> None:
    with pytest.raises(StoreError, match="no such directory"):
        open_engine(tmp_path / "no" / "dir" / "x.sqlite3", create=True)
    assert not (tmp_path / "no").exists()


def test_the_default_location_gets_its_directory(tmp_path) -> None:
    from feedsvc.store.location import location_of

    location = location_of(None, tmp_path / "instance")
    open_engine(location, create=True).close()
    assert (tmp_path / "instance" / "feedsvc.sqlite3").is_file()


def test_an_empty_file_is_no_store_and_another_database_is_left_alone(tmp_path) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    with pytest.raises(StoreError, match="no store here"):
        open_engine(empty)
    other = tmp_path / "other.sqlite3"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE invoices (n INTEGER)")
    before = other.read_bytes()
    with pytest.raises(StoreError, match="not a feedsvc store"):
        open_engine(other, create=True)
    assert other.read_bytes() == before


def test_sqlite_url_and_path_name_the_same_store(tmp_path, catalog) -> None:
    path = tmp_path / "s.sqlite3"
    store = open_engine(f"sqlite:///{path}", create=True)
    ingest(store, catalog, "-\nOne item\n")
    store.close()
    assert open_engine(path).counts()["all"] == 1
    with pytest.raises(StoreError, match="unknown store scheme"):
        open_engine("mysql://localhost/x")


@pytest.mark.sqlite_only
def test_backup_refuses_a_missing_directory_and_an_existing_file(store, tmp_path) -> None:
    with pytest.raises(StoreError, match="no such directory"):
        store.backup(tmp_path / "none" / "b.sqlite3")
    (tmp_path / "b.sqlite3").write_text("keep me")
    with pytest.raises(StoreError, match="already exists"):
        store.backup(tmp_path / "b.sqlite3")
    assert (tmp_path / "b.sqlite3").read_text() == "keep me"


def test_newest_ids_and_archive_dates_are_the_whole_reads_cut_short(filled) -> None:
    """The incremental build's small reads give what the whole ones would."""
    ids = list(filled.item_ids())
    for count in (0, 1, 3, len(ids), len(ids) + 5):
        assert filled.newest_ids(count) == ids[len(ids) - min(count, len(ids)) :]
    for page, size in ((0, 1), (0, 4), (1, 4), (0, 1000), (50, 4)):
        items = filled.archive_page("all", page, size)
        assert filled.archive_dates(page, size) == [(item.id, item.updated) for item in items]
