"""Search in the store (`Store.search`): the right items in feed order, the index kept in step
by every change (ingest, update, kill, unkill, embargo lift), built by the schema 4 migration,
rebuilt when the folding rules change, never finding a held or killed item."""

from __future__ import annotations

import json
import sqlite3
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.errors import StoreError
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.model import Item
from feedsvc.query import FeedParameters, cut_off, parse, parse_filterout, tokens
from feedsvc.sources import Document
from feedsvc.store.schema import VERSION as SCHEMA_VERSION

from .test_store_schema import columns_after


def add(store, catalog, *records: dict) -> None:
    lines = "".join(json.dumps(record) + "\n" for record in records)
    ingest_document(store, catalog, Document("doc.jsonl", lines.encode(), "jsonl"))


def record(item_id: str, title: str, body: str = "", when=None, topics=None) -> dict:
    found = {"id": item_id, "title": title}
    if body:
        found["content"] = f"<p>{body}</p>"
    if when is not None:
        found["published"] = when.isoformat()
    if topics:
        found["topics"] = topics
    return found


def ids(store, text: str, topic: str = "all", since=None, **more) -> list[str]:
    parameters = FeedParameters(query=parse(text), **more)
    return [item.id for item in store.search(topic, parameters, 50, since)]


def search_ids(store, topic: str, parameters: FeedParameters, limit: int = 50, since=None):
    return [item.id for item in store.search(topic, parameters, limit, since)]


def words_of(item: Item) -> list[list[str]]:
    return [tokens(item.title), tokens(item.body_text())]


def has(fields: list[list[str]], term) -> bool:
    size = len(term.tokens)
    return any(
        field[start : start + size] == list(term.tokens)
        for field in fields
        for start in range(len(field))
    )


def expected(store, topic: str, parameters: FeedParameters, limit: int) -> list[str]:
    """The plain answer: the topic's feed read whole, kept where the query says."""
    search = parameters.search()
    kept = []
    for item in store.newest(topic, 100_000):
        fields = words_of(item)
        if search is not None:
            if not all(any(has(fields, t) for t in clause) for clause in search.clauses):
                continue
            if any(has(fields, t) for t in search.excluded):
                continue
        elif any(has(fields, t) for t in parameters.filterout):
            continue
        kept.append(item.id)
    return kept[:limit]


def index_check(store) -> None:
    """SQLite: FTS5's own consistency check of the index (raises when it is corrupt). On
    PostgreSQL the document is a column of the row: every answer above checks it already."""
    if store.location.startswith("postgres"):
        return
    store.db.execute("INSERT INTO items_search (items_search, rank) VALUES ('integrity-check', 0)")


# -- the answer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["court", "the", "bank OR court", '"central bank"', "the -court", "2026"]
)
def test_search_gives_the_matching_items_of_the_feed_in_feed_order(filled, text) -> None:
    parameters = FeedParameters(query=parse(text))
    for topic in ("all", "world", "business", "other"):
        assert search_ids(filled, topic, parameters) == expected(filled, topic, parameters, 50)
    assert search_ids(filled, "all", parameters, 2) == expected(filled, "all", parameters, 2)


def test_search_matches_title_and_body_ignoring_case_and_accents(store, catalog) -> None:
    add(
        store,
        catalog,
        record("a1", "Mbappé scores twice", "Kylian Mbappé scored in Paris."),
        record("a2", "Swimming record", "Nguyễn Thị Ánh Viên won the 200 m."),
        record("a3", "Wind farm plans cut", "Ørsted said costs rose on the Straße."),
    )
    assert ids(store, "MBAPPE paris") == ["a1"]
    assert ids(store, '"nguyen thi"') == ["a2"]
    assert ids(store, "orsted strasse") == ["a3"]
    assert ids(store, "record OR paris") == ["a1", "a2"]  # a document's first item is the newest
    assert ids(store, '"cut orsted"') == []  # no phrase from the title into the body


def test_filterout_and_a_time_cut_off_narrow_the_answer(store, catalog, clock) -> None:
    start = clock.now - timedelta(hours=3)
    add(
        store,
        catalog,
        record("old", "Storm warning issued", when=start),
        record(
            "mid", "Storm closes ports", "Ferries stay in harbour.", when=start + timedelta(hours=1)
        ),
        record("new", "Storm moves north", when=start + timedelta(hours=2)),
    )
    assert ids(store, "storm") == ["new", "mid", "old"]
    assert ids(store, "storm", filterout=parse_filterout("ferries")) == ["new", "old"]
    since = start + timedelta(minutes=30)
    assert ids(store, "storm", since=since, filter_time=9000) == ["new", "mid"]
    # filterout alone, and the cut-off alone, are searches too
    only_out = FeedParameters(filterout=parse_filterout("north|ports"))
    assert search_ids(store, "all", only_out) == ["old"]
    recent = FeedParameters(filter_time=3600)
    assert search_ids(store, "all", recent, since=start + timedelta(hours=2)) == ["new"]
    with pytest.raises(ValueError):  # filter_time without the cut-off is a caller's bug
        store.search("all", recent, 10)


def test_a_filter_time_cut_off_is_rounded_down_to_the_step(clock) -> None:
    moment = cut_off(clock.now + timedelta(seconds=299), 3600, 300)
    assert moment == clock.now - timedelta(hours=1)  # 12:04:59 - 1 h, down to 11:00
    assert cut_off(clock.now + timedelta(seconds=300), 3600, 300) > moment


# -- kept in step ------------------------------------------------------------------------------


def test_a_changed_item_is_found_by_its_new_words_only(store, catalog, clock) -> None:
    add(store, catalog, record("x1", "Harbour bridge reopens", "Traffic flows again."))
    clock.advance(minutes=5)
    add(store, catalog, record("x1", "Harbour tunnel reopens", "Cyclists return."))
    assert ids(store, "tunnel cyclists") == ["x1"]
    assert ids(store, "bridge") == [] and ids(store, "traffic") == []
    index_check(store)


def test_a_headline_that_becomes_an_article_is_found_by_its_body(store, catalog, clock) -> None:
    title = "Lighthouse keeper retires after forty years"
    ingest_document(store, catalog, Document("a.txt", f"-\n{title}\n".encode(), "wire"))
    assert ids(store, "lantern") == []
    clock.advance(minutes=5)
    article = f"{title}\nHe trimmed the lantern every night.\n".encode()
    assert ingest_document(store, catalog, Document("b.txt", article, "wire")).updated == 1
    assert len(ids(store, "lantern lighthouse")) == 1
    index_check(store)


def test_a_killed_item_is_never_found_and_unkill_brings_it_back(store, catalog) -> None:
    add(store, catalog, record("k1", "Minister resigns"), record("k2", "Minister visits port"))
    store.kill(["k1"], "wrong name", "cli")
    assert ids(store, "minister") == ["k2"]
    assert ids(store, "resigns") == []
    index_check(store)
    store.unkill(["k1"], "cli")
    assert ids(store, "resigns") == ["k1"]
    index_check(store)


def test_a_killed_items_words_do_not_find_the_next_item(store, catalog, clock) -> None:
    # The newest item's seq is given again to the next new item: its index entry must be gone.
    add(store, catalog, record("gone", "Harvest festival opens"), record("k", "Spy scandal widens"))
    store.kill(["gone"], None, "cli")  # the newest: a document's first item
    clock.advance(minutes=1)
    add(store, catalog, record("next", "Harvest festival closes"))
    assert ids(store, "spy") == ["k"]
    assert ids(store, "opens") == [] and ids(store, "closes") == ["next"]


def test_a_held_item_is_found_only_once_its_embargo_lifts(store, catalog, clock) -> None:
    due = clock.now + timedelta(hours=1)
    add(store, catalog, record("e1", "Quarterly results beat forecasts", when=due))
    assert ids(store, "quarterly") == []
    store.kill(["e1"], None, "cli")  # killed while held: not found, now or later
    store.unkill(["e1"], "cli")  # held again
    assert ids(store, "quarterly") == []
    clock.advance(hours=1)
    store.generation()  # the first generation check after the time publishes it
    assert ids(store, "quarterly") == ["e1"]
    index_check(store)


def test_refiling_keeps_search_in_step_with_the_topics(store, catalog) -> None:
    add(store, catalog, record("r1", "Election recount ordered", topics=["world"]))
    assert ids(store, "recount", topic="world") == ["r1"]
    assert ids(store, "recount", topic="sport") == []


# -- building the index ------------------------------------------------------------------------


def test_a_schema_3_store_gets_its_index_by_migration(tmp_path, catalog, clock) -> None:
    path = tmp_path / "old.sqlite3"
    store = open_filed_store(path, catalog, clock, create=True)
    add(
        store, catalog, record("m1", "Volcano erupts near airport"), record("m2", "Airport reopens")
    )
    generation = store.generation()
    store.close()
    with sqlite3.connect(path) as db:  # back to schema 3: no search index, no later columns
        db.executescript(
            ";".join(columns_after(3))
            + "; DROP TABLE items_search; DELETE FROM meta WHERE key = 'fold';"
            " PRAGMA user_version = 3;"
        )
    reopened = open_filed_store(path, catalog, clock)
    assert reopened.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert ids(reopened, "airport") == ["m1", "m2"]
    assert reopened.generation() > generation  # cached searches are made again
    index_check(reopened)


def test_an_index_made_with_other_folding_rules_is_rebuilt_at_open(tmp_path, catalog, clock):
    path = tmp_path / "s.sqlite3"
    store = open_filed_store(path, catalog, clock, create=True)
    add(store, catalog, record("f1", "Glacier retreat measured"))
    store.close()
    with sqlite3.connect(path) as db:  # as a feedsvc with other rules would leave it
        db.execute("INSERT INTO items_search (items_search) VALUES ('delete-all')")
        db.execute("UPDATE meta SET value = '0' WHERE key = 'fold'")
    reopened = open_filed_store(path, catalog, clock)
    assert ids(reopened, "glacier") == ["f1"]


def test_a_store_whose_index_is_stale_refuses_to_search(store, catalog) -> None:
    add(store, catalog, record("s1", "Bridge opens"))
    stale = "UPDATE {}meta SET value = '0' WHERE key = 'fold'"  # another feedsvc's
    if store.location.startswith("postgres"):
        with store.db.transaction():
            store.db.execute(stale.format("feedsvc."))
    else:
        store.db.execute(stale.format(""))
    with pytest.raises(StoreError, match="another version of feedsvc"):
        ids(store, "bridge")


# -- any sequence of changes -------------------------------------------------------------------

WORDS = ["storm", "port", "bank", "court", "rates", "the", "Mbappé", "mbappe", "ørsted"]
TEXT = st.lists(st.sampled_from(WORDS), min_size=1, max_size=5).map(" ".join)
QUERIES = ["storm", "the", "bank OR court", '"the port"', "the -storm", "mbappe", "orsted rates"]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["add", "add", "kill", "unkill"]), st.integers(0, 5), TEXT, TEXT),
        min_size=1,
        max_size=12,
    ),
    st.sampled_from(QUERIES),
    st.sampled_from(["", "port|rates"]),
)
def test_after_any_changes_search_equals_the_plain_answer(
    tmp_path_factory, catalog, clock, steps, text, filterout
) -> None:
    store = open_filed_store(
        tmp_path_factory.mktemp("s") / "s.sqlite3", catalog, clock, create=True
    )
    try:
        for action, number, title, body in steps:
            item_id = f"i{number}"
            clock.advance(minutes=1)
            if action == "add":
                add(store, catalog, record(item_id, title, body))
            elif action == "kill" and store.item(item_id):
                store.kill([item_id], None, "cli")
            elif action == "unkill" and store.killed_at(item_id) is not None:
                store.unkill([item_id], "cli")
        out = parse_filterout(filterout) if filterout else ()
        parameters = FeedParameters(query=parse(text), filterout=out)
        assert search_ids(store, "all", parameters, 4) == expected(store, "all", parameters, 4)
        index_check(store)
    finally:
        store.close()
