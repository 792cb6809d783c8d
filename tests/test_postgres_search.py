"""The PostgreSQL search statements (feedsvc/store/postgres_search.py) on a real PostgreSQL give
exactly SQLite's answers: the same items, in the same order, for any query, filter, topic and
cut-off. The PostgreSQL backend runs these statements; until it is merged this file makes its
own tables (the columns search uses) in a database of its own.

Runs on the suite's own PostgreSQL server (conftest's `postgres` fixture: skipped outside CI
only when its binaries are missing).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc.errors import QueryError
from feedsvc.query import FeedParameters, indexed_text, parse, parse_filterout
from feedsvc.store.postgres_search import CREATE, DOCUMENT, REINDEX_ROWS, search_sql
from feedsvc.store.sqlite_search import CREATE_TABLE, INSERT_ROW, newest_matches

psycopg = pytest.importorskip("psycopg")

TABLES = """
CREATE SCHEMA feedsvc;
CREATE TABLE feedsvc.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE feedsvc.items (seq BIGINT PRIMARY KEY, published BIGINT NOT NULL);
CREATE TABLE feedsvc.filed (topic TEXT, published BIGINT, seq BIGINT,
    PRIMARY KEY (topic, published, seq));
"""  # the columns of the backend's tables that search reads
SQLITE_TABLES = """
CREATE TABLE items (seq INTEGER PRIMARY KEY, published INTEGER NOT NULL);
CREATE INDEX items_newest ON items (published, seq);
CREATE TABLE filed (topic TEXT NOT NULL, published INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (topic, published, seq)) WITHOUT ROWID;
CREATE INDEX filed_seq ON filed (seq);
"""
# Words that split or fold differently in naive tokenizers: marks, ligatures, scripts without
# spaces, apostrophes, dotted and underscored words, numbers PostgreSQL's parser types apart.
VOCABULARY = ["Mbappé", "mbappe", "PSG", "Nguyễn", "Văn", "real", "madrid", "e-mail", "ørsted",
              "Straße", "strasse", "the", "a", "1", "😀", "NEAR", "AND", "x²", "ﬁnal", "l'été",
              "3.5", "1e5", "foo_bar", "İstanbul", "ΣΟΦΙΑ", "σοφια", "東京", "co-op",
              "user@host.example", "http://x.example/a"]  # fmt: skip
PIECES = [*VOCABULARY, "OR", "-", "-psg", '"', '"real madrid"', '-"nguyen van"', "*", "(", ":"]
COMMON = ["the"] * 8 + ["a"] * 4 + ["real"] * 3  # so queries match several items
TEXT = st.lists(st.sampled_from(VOCABULARY + COMMON), max_size=8).map(" ".join)
# Few dates: items share them, so the order among equal dates is tested too.
ITEM = st.tuples(TEXT, TEXT, st.integers(0, 12), st.sampled_from(["news", "sport"]))
QUERY = st.one_of(
    st.sampled_from(["the", "a", "real", "the -a", "a OR real", '"the a"', "the real"]),
    st.lists(st.sampled_from(PIECES), min_size=1, max_size=6).map(" ".join),
)


@pytest.fixture(scope="module")
def server(postgres) -> Iterator[psycopg.Connection]:
    url = postgres.database()
    try:
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(TABLES)
            for statement in CREATE:
                connection.execute(statement)
            yield connection
    finally:
        postgres.drop(url)


def load(pg, items: list[tuple[str, str, int, str]]) -> sqlite3.Connection:
    """The items in PostgreSQL (documents set as the migration sets them, one by DOCUMENT)
    and in an SQLite index of the same items."""
    lite = sqlite3.connect(":memory:")
    lite.executescript(SQLITE_TABLES)
    lite.execute(CREATE_TABLE)
    pg.execute("TRUNCATE feedsvc.items, feedsvc.filed")
    texts = []
    for seq, (title, body, published, topic) in enumerate(items, start=1):
        words = indexed_text(title, f"<p>{body}</p>" if body else None, None)
        texts.append((seq, *words))
        lite.execute("INSERT INTO items VALUES (?, ?)", (seq, published))
        lite.execute("INSERT INTO filed VALUES (?, ?, ?)", (topic, published, seq))
        lite.execute(INSERT_ROW, (seq, *words))
        pg.execute(
            f"INSERT INTO feedsvc.items (seq, published, search) VALUES (%s, %s, {DOCUMENT})",
            (seq, published, "", ""),
        )
        pg.execute("INSERT INTO feedsvc.filed VALUES (%s, %s, %s)", (topic, published, seq))
    seqs, titles, bodies = map(list, zip(*texts, strict=True))
    pg.execute(REINDEX_ROWS, (seqs, titles, bodies))
    return lite


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(ITEM, min_size=1, max_size=20),
    QUERY,
    st.sampled_from(["", "psg|real", "the", "straße|a"]),
    st.sampled_from([None, "news", "sport"]),
    st.sampled_from([None, 4, 9]),
    st.integers(1, 8),
)
def test_postgresql_finds_what_sqlite_finds_in_the_same_order(
    server, items, text, filterout, topic, since, limit
) -> None:
    try:
        query = parse(text)
    except QueryError:
        query = None
    out = parse_filterout(filterout) if filterout else ()
    parameters = FeedParameters(query=query, filterout=out, filter_time=since and 60)
    lite = load(server, items)
    expected = newest_matches(lite, parameters, limit, topic, since)
    sql, values = search_sql(parameters, topic, since, limit, "items.seq")
    assert [seq for (seq,) in server.execute(sql, values)] == expected


def test_a_phrase_does_not_run_from_the_title_into_the_body(server) -> None:
    lite = load(server, [("Transfer talk: real", "Madrid wait", 1, "news")])
    for text, expected in (('"real madrid"', []), ("real madrid", [1]), ('"madrid wait"', [1])):
        parameters = FeedParameters(query=parse(text))
        assert newest_matches(lite, parameters, 5) == expected
        sql, values = search_sql(parameters, None, None, 5, "items.seq")
        assert [seq for (seq,) in server.execute(sql, values)] == expected, text
