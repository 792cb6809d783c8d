"""The SQLite search index (feedsvc/store/sqlite_search.py) on real SQLite FTS5: the right items for
words, phrases, exclusions, OR and accents, kept in step when items change, and no user text
ever read as FTS5 syntax (no sqlite3.OperationalError for any string)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.errors import QueryError
from feedsvc.query import FeedParameters, Query, parse, parse_filterout, tokens
from feedsvc.store.sqlite_search import (
    CREATE_TABLE,
    DELETE_ALL,
    DELETE_ROW,
    INSERT_ROW,
    MATCHING,
    newest_matches,
    to_fts5,
)

from .fts_reference import index_row, search_condition

ITEMS = [
    ("Mbappé scores twice as PSG win", "Kylian Mbappé scored in both halves in Paris."),
    ("Nguyễn Thị Ánh Viên sets a record", "The swimmer from Vietnam won the 200 m."),
    ("Real Madrid sign a forward", "The transfer fee was not disclosed. Free agent next year."),
    ("Ørsted cuts offshore wind plans", "The Danish company Ørsted said costs rose in Łódź too."),
    ("Straße closed after flood", "Residents of the Hauptstraße were moved."),
    ("Markets: NEAR(a b) col:x *^", 'Odd "syntax" (in text) AND NOT a problem.'),
    ("Đặng Văn Lâm saves a penalty", "The goalkeeper kept a clean sheet for Muangthong."),
]

HOSTILE = [
    '"', '""', '"""', 'a"b', '"a" "', "*", "a*", "^a", "a^", "NEAR(a b)", "NEAR(a b, 2)",
    "col:x", "title:mbappe", "{title body}:x", "-title:x", "(", ")", "(a OR b", "a) AND (b",
    "AND", "OR", "NOT", "a AND b", "a NOT b", "NOT a", "a OR", "OR OR OR", "a +", "+ a",
    "a\x00b", "\x00", "mbappe\x00", "' OR 1=1 --", "'; DROP TABLE items; --", "\\", "\\\"",
    "😀 mbappe 🎉", "\u202emiddle\u202c", "مبابي", "שלום עולם", "\ufeffmbappe", "a\u0301\u0301",
    "\ud800", "\uffff", "x" * 10_000, '"' * 10_000, "(" * 150, "NEAR(" * 40, "mbappe " * 1500,
    "a:b:c", "a - - b", "--a", "-\"a b\"", '-"', "-", "- -", "&|!<->", "!!a", "a & b | !c",
]  # fmt: skip


SCHEMA = """
CREATE TABLE items (seq INTEGER PRIMARY KEY, published INTEGER NOT NULL, title TEXT, body TEXT);
CREATE INDEX items_newest ON items (published, seq);
CREATE TABLE filed (
    topic TEXT NOT NULL, published INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (topic, published, seq)
) WITHOUT ROWID;
CREATE INDEX filed_seq ON filed (seq);
"""  # the store's columns and indexes that sqlite_search relies on


def index(
    items: Sequence[tuple[str, str]],
    published: Sequence[int] | None = None,
    topics: Sequence[str] = (),
) -> sqlite3.Connection:
    """An in-memory store-like database: items (seq = place in `items`, from 1), filed under
    `topics` in turn, and the search index."""
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    db.execute(CREATE_TABLE)
    for seq, (title, body) in enumerate(items, start=1):
        date = seq * 1000 if published is None else published[seq - 1]
        db.execute("INSERT INTO items VALUES (?, ?, ?, ?)", (seq, date, title, body))
        if topics:
            topic = topics[(seq - 1) % len(topics)]
            db.execute("INSERT INTO filed VALUES (?, ?, ?)", (topic, date, seq))
        db.execute(INSERT_ROW, index_row(seq, title, body))
    return db


def found(db: sqlite3.Connection, text: str) -> set[int]:
    return {seq for (seq,) in db.execute(MATCHING, (to_fts5(parse(text)),))}


def contains(words: list[str], phrase: Sequence[str]) -> bool:
    size = len(phrase)
    return any(words[start : start + size] == list(phrase) for start in range(len(words)))


def oracle(query: Query, items: Sequence[tuple[str, str]]) -> set[int]:
    """The items a query should find, by plain list search over each field's folded words."""
    result = set()
    for seq, (title, body) in enumerate(items, start=1):
        fields = [tokens(title), tokens(body)]

        def has(term, fields=fields) -> bool:
            return any(contains(field, term.tokens) for field in fields)

        if all(any(has(t) for t in clause) for clause in query.clauses) and not any(
            has(t) for t in query.excluded
        ):
            result.add(seq)
    return result


@pytest.fixture
def db() -> Iterator[sqlite3.Connection]:
    connection = index(ITEMS)
    yield connection
    connection.close()


# By their place in ITEMS.
MBAPPE, NGUYEN, MADRID, ORSTED, STRASSE, MARKETS, DANG = range(1, 8)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mbappe", {MBAPPE}),
        ("MBAPPÉ paris", {MBAPPE}),
        ("nguyen", {NGUYEN}),
        ('"nguyen thi anh vien"', {NGUYEN}),
        ('"vien nguyen"', set()),  # a phrase keeps its order
        ("dang lam", {DANG}),
        ("orsted lodz", {ORSTED}),
        ("strasse", {STRASSE}),
        ("hauptstrasse", {STRASSE}),
        ("straße -flood", set()),
        ("mbappe OR nguyen", {MBAPPE, NGUYEN}),
        ("the -transfer", {NGUYEN, DANG, ORSTED, STRASSE}),
        ('the -"free agent" -ørsted', {NGUYEN, DANG, STRASSE}),
        ('the -"agent free"', {NGUYEN, DANG, ORSTED, STRASSE, MADRID}),
        ("near col x", {MARKETS}),
        ('"and not"', {MARKETS}),
        ("a problem", {MARKETS}),
        ("200", {NGUYEN}),
    ],
)
def test_queries_find_the_items_they_describe(db: sqlite3.Connection, text: str, expected: set):
    assert found(db, text) == expected


def test_a_phrase_does_not_run_from_the_title_into_the_body(db: sqlite3.Connection):
    assert found(db, '"penalty the goalkeeper"') == set()
    assert found(db, "penalty goalkeeper") == {DANG}


def test_the_index_splits_words_exactly_where_the_query_does():
    # U+19B0: a New Tai Lue letter that FTS5's unicode61 tokenizer takes for a separator.
    db = index([("x\u19b0y", ""), ("x y", ""), ("Kx\u19b0y", "")])
    assert found(db, "x\u19b0y") == {1}
    assert found(db, '"x y"') == {2}


def test_or_joins_the_term_before_it_with_the_one_after(db: sqlite3.Connection):
    # mbappe AND (psg OR swimmer): not the swimmer's item, which lacks mbappe.
    assert found(db, "mbappe psg OR swimmer") == {MBAPPE}
    assert found(db, "kylian OR swimmer won OR scored") == {MBAPPE, NGUYEN}


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_queries_are_refused_or_answered_never_a_syntax_error(
    db: sqlite3.Connection, text: str
):
    try:
        query = parse(text)
    except QueryError:
        return
    assert found(db, text) == oracle(query, ITEMS)


@settings(max_examples=300)
@given(st.text(max_size=200))
def test_any_text_is_refused_or_answered(text: str):
    db = index(ITEMS)
    try:
        query = parse(text)
    except QueryError:
        return
    assert found(db, text) == oracle(query, ITEMS)


VOCABULARY = ["Mbappé", "mbappe", "PSG", "psg", "Nguyễn", "Văn", "real", "madrid", "e-mail",
              "ørsted", "Straße", "strasse", "the", "a", "1", "😀", "NEAR", "AND"]  # fmt: skip
QUERY_PIECES = st.sampled_from(
    [*VOCABULARY, "OR", "-", "-psg", '"', '"real madrid"', '-"nguyễn văn"', "*", "(", ")", ":"]
)
DOCUMENT = st.lists(st.sampled_from(VOCABULARY), max_size=8).map(" ".join)


@settings(max_examples=200)
@given(
    st.lists(st.tuples(DOCUMENT, DOCUMENT), min_size=1, max_size=6),
    st.lists(QUERY_PIECES, min_size=1, max_size=8).map(" ".join),
)
def test_fts5_finds_exactly_what_the_query_means(items: list[tuple[str, str]], text: str):
    try:
        query = parse(text)
    except QueryError:
        return
    assert found(index(items), text) == oracle(query, items)


# -- keeping the index in step -----------------------------------------------------------------


def replace_item(db: sqlite3.Connection, seq: int, title: str, body: str) -> None:
    old_title, old_body = db.execute(
        "SELECT title, body FROM items WHERE seq = ?", (seq,)
    ).fetchone()
    db.execute(DELETE_ROW, index_row(seq, old_title, old_body))
    db.execute(INSERT_ROW, index_row(seq, title, body))
    db.execute("UPDATE items SET title = ?, body = ? WHERE seq = ?", (title, body, seq))


def integrity(db: sqlite3.Connection) -> None:
    """FTS5's own check of its index (raises sqlite3.DatabaseError when corrupt)."""
    db.execute("INSERT INTO items_search (items_search, rank) VALUES ('integrity-check', 0)")


def test_a_changed_item_is_found_by_its_new_words_only(db: sqlite3.Connection):
    replace_item(db, 1, "Mbappé joins Real Madrid", "Kylian Mbappé signs for five years.")
    assert found(db, "psg") == set()
    assert found(db, "madrid") == {MBAPPE, MADRID}
    assert found(db, '"five years"') == {MBAPPE}
    integrity(db)


def test_rebuilding_the_index_finds_the_same_items(db: sqlite3.Connection):
    before = {text: found(db, text) for text in ["mbappe", "the -transfer", "orsted OR strasse"]}
    db.execute(DELETE_ALL)
    assert found(db, "mbappe") == set()
    for seq, title, body in db.execute("SELECT seq, title, body FROM items").fetchall():
        db.execute(INSERT_ROW, index_row(seq, title, body))
    assert {text: found(db, text) for text in before} == before
    integrity(db)


# -- the condition a store adds to its feed query ----------------------------------------------


def selected(db: sqlite3.Connection, parameters: FeedParameters, since: int | None = None) -> list:
    condition, values = search_condition(parameters, since)
    query = f"SELECT seq FROM items WHERE {condition} ORDER BY published DESC, seq DESC"
    return [seq for (seq,) in db.execute(query, values)]


def test_search_condition_combines_query_filterout_and_time(db: sqlite3.Connection):
    assert selected(db, FeedParameters()) == [
        DANG,
        MARKETS,
        STRASSE,
        ORSTED,
        MADRID,
        NGUYEN,
        MBAPPE,
    ]
    the = parse("the")
    assert selected(db, FeedParameters(query=the)) == [DANG, STRASSE, ORSTED, MADRID, NGUYEN]
    free = parse_filterout("free agent|ørsted")
    assert selected(db, FeedParameters(query=the, filterout=free)) == [DANG, STRASSE, NGUYEN]
    assert selected(db, FeedParameters(filterout=free)) == [DANG, MARKETS, STRASSE, NGUYEN, MBAPPE]
    recent = FeedParameters(query=the, filterout=free, filter_time=60)
    assert selected(db, recent, since=STRASSE * 1000) == [DANG, STRASSE]
    with pytest.raises(ValueError):
        search_condition(recent)


# -- the newest matches, without reading every match -------------------------------------------


def reference(db, parameters: FeedParameters, limit: int, topic, since) -> list[int]:
    """The plain, exact answer: every match, sorted."""
    condition, values = search_condition(parameters, since)
    if topic is not None:
        condition += " AND items.seq IN (SELECT seq FROM filed WHERE topic = ?)"
        values.append(topic)
    query = f"SELECT seq FROM items WHERE {condition} ORDER BY published DESC, seq DESC LIMIT ?"
    return [seq for (seq,) in db.execute(query, [*values, limit])]


def test_newest_matches_are_the_newest_by_date_not_by_arrival(db: sqlite3.Connection):
    # Stored last but dated first: a late item is not the newest.
    db.execute("UPDATE items SET published = 1 WHERE seq = ?", (DANG,))
    the = FeedParameters(query=parse("the"))
    assert newest_matches(db, the, 2, window=1) == [STRASSE, ORSTED]
    assert newest_matches(db, the, 9, window=1) == [STRASSE, ORSTED, MADRID, NGUYEN, DANG]


def test_newest_matches_keep_reading_while_the_answer_is_short():
    # Dates in step with seq: nothing below a window is newer, yet the answer needs more.
    db = index([("the", "")] * 4, [1, 2, 3, 4])
    the = FeedParameters(query=parse("the"))
    assert newest_matches(db, the, 9, window=1) == [4, 3, 2, 1]
    # With a cut-off, down to the items published at the cut-off itself, and no further.
    recent = FeedParameters(query=parse("the"), filter_time=60)
    assert newest_matches(db, recent, 9, since=2, window=1) == [4, 3, 2]
    at_cut_off = index([("the", "")] * 2, [2, 5])
    assert newest_matches(at_cut_off, recent, 9, since=2, window=1) == [2, 1]


def test_newest_matches_of_a_topic_are_the_newest_by_date_in_that_topic():
    # seq:        1    2    3    4
    # topic:      a    a    b    a
    # published:  100  1    500  2
    db = index([("the", "")] * 4, [100, 1, 500, 2], ["a", "a", "b", "a"])
    the = FeedParameters(query=parse("the"))
    assert newest_matches(db, the, 1, topic="a", window=1) == [1]
    assert newest_matches(db, the, 2, topic="b", window=1) == [3]


def test_newest_matches_drop_filtered_out_items_and_widen_the_window(db: sqlite3.Connection):
    # The two newest items are filtered out: the first window holds nothing to keep.
    free = FeedParameters(filterout=parse_filterout("the|markets"))
    assert newest_matches(db, free, 1, window=1) == [MBAPPE]
    assert newest_matches(db, free, 5, window=1) == [MBAPPE]


@settings(max_examples=150)
@given(
    st.lists(st.tuples(DOCUMENT, DOCUMENT, st.integers(0, 30)), min_size=1, max_size=25),
    st.one_of(
        st.sampled_from(["the", "a", "psg", "the -a", "psg OR real", '"the a"']),
        st.lists(QUERY_PIECES, min_size=1, max_size=6).map(" ".join),
    ),
    st.sampled_from(["", "psg", "the|a"]),
    st.integers(1, 6),
    st.sampled_from([None, "news", "sport"]),
    st.sampled_from([None, 10, 25]),
    st.integers(1, 4),
    st.booleans(),
)
def test_newest_matches_equal_the_plain_sorted_query(
    rows, text, filterout, limit, topic, since, window, in_step
):
    # Dates out of step with arrival (seq) or in step, shared dates, topics, time cut-offs,
    # tiny windows.
    dates = [d for _, _, d in rows]
    db = index(
        [(t, b) for t, b, _ in rows], sorted(dates) if in_step else dates, ["news", "sport", "art"]
    )
    try:
        query = parse(text)
    except QueryError:
        query = None
    out = parse_filterout(filterout) if filterout else ()
    parameters = FeedParameters(query=query, filterout=out, filter_time=since and 60)
    expected = reference(db, parameters, limit, topic, since)
    assert newest_matches(db, parameters, limit, topic, since, window) == expected
