"""The query language and feed parameters as plain data: parsing, folding, limits, the
canonical form, and the shape of what is handed to the engines (user text only as quoted FTS5
strings or as PostgreSQL parameters). The engines themselves run in test_sqlite_search.py."""

from __future__ import annotations

import itertools
import re
import sys
import unicodedata
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.errors import FeedsvcError, QueryError
from feedsvc.query import (
    MAX_FILTER_TIME,
    MAX_QUERY_CHARS,
    MAX_TERMS,
    FeedParameters,
    Query,
    Term,
    canonical,
    fold,
    parse,
    parse_feed_parameters,
    parse_filterout,
    tokens,
)
from feedsvc.store.postgres_search import tsquery
from feedsvc.store.sqlite_search import to_fts5

ENTRIES = 50
QUERY_TEXT = st.text(max_size=MAX_QUERY_CHARS)
# Pieces that exercise the grammar: words, marks, operators, quotes, FTS5 and tsquery syntax.
PIECES = st.sampled_from(
    ["Mbappé", "nguyễn", "psg", "OR", "or", "-", '"', "-psg", '"real madrid"', "*", "^", "NEAR",
     "(", ")", "a:b", "AND", "NOT", "!", "&", "|", "<->", "'", "\\", "\x00", "😀", "ß", "Ø"]
)  # fmt: skip
GRAMMAR_TEXT = st.lists(PIECES, max_size=12).map(" ".join)


def words(*texts: str) -> tuple[tuple[Term, ...], ...]:
    """Clauses of one word each."""
    return tuple((Term(tuple(tokens(text))),) for text in texts)


def term(text: str) -> Term:
    return Term(tuple(tokens(text)))


# -- folding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "typed"),
    [
        ("Mbappé", "mbappe"),
        ("Nguyễn", "nguyen"),  # ễ: e with circumflex and tilde
        ("Đặng", "dang"),  # đ, and ặ: a with breve and dot below
        ("Ørsted", "orsted"),
        ("Łódź", "lodz"),
        ("Straße", "strasse"),
        ("ÆSIR", "aesir"),
        ("İstanbul", "istanbul"),
        ("ﬁnance", "finance"),
        ("ΑΘΉΝΑ", "αθηνα"),
        ("Ёлка", "елка"),
        ("Hawai\u02bbi", "hawaii"),  # with an okina,
    ],
)
def test_accents_case_and_special_letters_fold_to_what_people_type(written: str, typed: str):
    assert tokens(written) == [typed]


def test_words_are_runs_of_letters_and_digits_of_any_script():
    assert tokens("Covid-19: «Tōkyō» 東京 2020_games, x²") == [
        "covid", "19", "tokyo", "東京", "2020", "games", "x2"
    ]  # fmt: skip


def test_folded_text_is_the_words_one_space_apart():
    assert fold("  Nguyễn\tVăn -- Thiệu! ") == "nguyen van thieu"


def test_every_combining_mark_is_dropped():
    # Scans every code point: the table of marks must miss none, in any plane. A mark never
    # splits a word nor stays in one (the case fold makes U+0345 the letter iota).
    kept = []
    for point in range(sys.maxunicode + 1):
        if unicodedata.category(chr(point))[0] == "M":
            found = tokens("a" + chr(point) + "b")
            if len(found) != 1 or any(unicodedata.category(c)[0] == "M" for c in found[0]):
                kept.append(hex(point))
    assert kept == []


@given(st.text())
def test_folding_folded_text_changes_nothing(text: str):
    folded = tokens(text)
    assert tokens(" ".join(folded)) == folded
    assert all(token and " " not in token and '"' not in token for token in folded)


# -- the language ------------------------------------------------------------------------------


def test_words_must_all_match():
    assert parse("Mbappé  PSG") == Query(words("mbappe", "psg"))


def test_quoted_phrase_is_one_term_of_several_words():
    assert parse('"Real Madrid" win') == Query(((term("real madrid"),), (term("win"),)))


def test_unclosed_quote_runs_to_the_end():
    assert parse('win "real madrid') == parse('win "real madrid"')


def test_a_word_with_inner_punctuation_is_a_phrase():
    assert parse("e-mail") == parse('"e mail"')


def test_minus_excludes_a_word_or_a_phrase():
    query = parse('madrid -real -"atletico fans"')
    assert query == Query(words("madrid"), (term("real"), term("atletico fans")))


def test_or_binds_tighter_than_the_implied_and():
    assert parse("mbappe psg OR real") == Query(((term("mbappe"),), (term("psg"), term("real"))))


def test_or_chains_and_lowercase_or_is_a_word():
    assert parse("a OR b OR c") == Query(((term("a"), term("b"), term("c")),))
    assert parse("war or peace") == Query(words("war", "or", "peace"))


@pytest.mark.parametrize(
    ("text", "same_as"),
    [("OR a", "a"), ("a OR", "a"), ("a OR OR b", "a OR b"), ("a OR -b c", "a c -b"),
     ("-b OR a", "a -b"), ("a -b OR c", "a c -b"), ("a OR * OR b", "a OR b"), ("a - b", "a b"),
     ("a * b", "a b")],
)  # fmt: skip
def test_operators_that_join_nothing_are_ignored(text: str, same_as: str):
    assert parse(text) == parse(same_as)


def test_repeated_terms_and_clauses_count_once():
    assert parse("a a b OR c c OR b -d -d") == Query(
        ((term("a"),), (term("b"), term("c"))), (term("d"),)
    )


@pytest.mark.parametrize("text", ["", "   ", "* ^ :", "😀 🎉", '""', "OR", "\x00"])
def test_a_query_with_nothing_to_find_is_refused(text: str):
    with pytest.raises(QueryError, match="no word"):
        parse(text)


def test_a_query_that_only_excludes_is_refused():
    with pytest.raises(QueryError, match="only excludes"):
        parse('-transfer -"free agent"')


def test_long_queries_and_too_many_terms_are_refused_with_a_short_message():
    parse("x" * MAX_QUERY_CHARS)
    with pytest.raises(QueryError, match="longer than"):
        parse("a " * (MAX_QUERY_CHARS // 2 + 1))  # one word once repeats are dropped
    with pytest.raises(QueryError, match="longer than") as error:
        parse("x" * (MAX_QUERY_CHARS + 1))
    assert len(str(error.value)) < 80
    with pytest.raises(QueryError, match="longer than"):
        parse("x" * 10_000)
    parse(" ".join(f"w{n}" for n in range(MAX_TERMS)))
    with pytest.raises(QueryError, match="more than"):
        parse(" ".join(f"w{n}" for n in range(MAX_TERMS + 1)))


def test_a_query_whose_canonical_form_grows_too_long_is_refused():
    # U+FDFA is one character and four words once folded.
    with pytest.raises(QueryError, match="longer than"):
        parse("\ufdfa" * 12)


def test_query_error_is_a_user_error():
    assert issubclass(QueryError, FeedsvcError)


# -- canonical form ----------------------------------------------------------------------------


def test_canonical_text_ignores_case_accents_and_spacing():
    assert canonical(parse("  MBAPPÉ   -Transfer  PSG ")) == "mbappe psg -transfer"
    assert canonical(parse('"Nguyễn  Văn" OR x')) == '"nguyen van" OR x'


@given(st.one_of(QUERY_TEXT, GRAMMAR_TEXT))
def test_canonical_text_parses_back_to_the_same_query(text: str):
    try:
        query = parse(text)
    except QueryError:
        return
    assert parse(canonical(query)) == query
    assert canonical(parse(canonical(query))) == canonical(query)


# -- what the engines get ----------------------------------------------------------------------

FTS5_STRING = r'"(?:[^"]|"")+"'
FTS5_SHAPE = re.compile(rf"(?:{FTS5_STRING}|\(|\)| \+ | AND | OR | NOT )+")
TSQUERY_CALL = "phraseto_tsquery('simple', %s)"
TSQUERY_SHAPE = re.compile(
    r"(?:CALL|\(|\)| && | \|\| | && !! )+".replace("CALL", re.escape(TSQUERY_CALL))
)


def test_fts5_expression_quotes_every_token():
    query = parse('mbappe psg OR "real madrid" -transfer')
    assert to_fts5(query) == '(("mbappe") AND ("psg" OR "real" + "madrid")) NOT ("transfer")'


def test_tsquery_sql_carries_user_words_only_in_parameters():
    parameters: list[object] = []
    sql = tsquery(parse('mbappe psg OR "real madrid" -transfer'), parameters)
    assert sql == (
        "((phraseto_tsquery('simple', %s)) && (phraseto_tsquery('simple', %s) || "
        "phraseto_tsquery('simple', %s)) && !! (phraseto_tsquery('simple', %s)))"
    )
    assert parameters == ["mbappe", "psg", "real madrid", "transfer"]


@given(st.one_of(QUERY_TEXT, GRAMMAR_TEXT))
def test_engine_expressions_are_only_quoted_words_and_operators(text: str):
    try:
        query = parse(text)
    except QueryError:
        return
    assert FTS5_SHAPE.fullmatch(to_fts5(query))
    parameters: list[object] = []
    sql = tsquery(query, parameters)
    assert TSQUERY_SHAPE.fullmatch(sql)
    # Parenthesised whole, so `search @@ (...)` cannot bind to its first operand only.
    depths = list(itertools.accumulate({"(": 1, ")": -1}.get(c, 0) for c in sql))
    assert sql[0] == "(" and depths[-1] == 0 and 0 not in depths[:-1]
    assert sql.count("%s") == len(parameters)
    assert parameters == [" ".join(term.tokens) for clause in query.clauses for term in clause] + [
        " ".join(term.tokens) for term in query.excluded
    ]


def test_terms_cannot_be_made_from_unfolded_text():
    for bad in [('a"b',), ("A",), ("a b",), ("",), ()]:
        with pytest.raises(ValueError):
            Term(bad)


# -- feed parameters ---------------------------------------------------------------------------


def feed_parameters(query_string: str) -> FeedParameters:
    return parse_feed_parameters(parse_qsl(query_string, keep_blank_values=True), ENTRIES)


def test_parameters_are_read_and_written_back_normalised_and_sorted():
    parameters = feed_parameters(
        "q=Mbappé+-Transfer&limit=10&filterout=Rumour|Free Agent&filter_time=3600"
    )
    assert parameters.query == parse("mbappe -transfer")
    assert parameters.filterout == (term("free agent"), term("rumour"))
    assert (parameters.filter_time, parameters.limit) == (3600, 10)
    assert parameters.query_string() == (
        "filter_time=3600&filterout=free%20agent%7Crumour&limit=10&q=mbappe%20-transfer"
    )


def test_plain_feed_and_default_limit_have_no_query_string():
    assert feed_parameters("").query_string() == ""
    assert feed_parameters(f"limit={ENTRIES}") == FeedParameters()


def test_filterout_terms_are_excluded_from_the_search():
    parameters = feed_parameters("q=mbappe&filterout=transfer")
    assert parameters.search() == parse("mbappe -transfer")
    assert feed_parameters("filterout=transfer").search() is None


@pytest.mark.parametrize(
    ("query_string", "message"),
    [
        ("utm_source=x", "unknown parameter"),
        ("q=a&q=b", "q is given twice"),
        ("limit=0", "limit must be a whole number from 1 to 50"),
        (f"limit={ENTRIES + 1}", "limit must be"),
        ("limit=%EF%BC%95", "limit must be"),  # a fullwidth digit five
        ("limit=-3", "limit must be"),
        ("filter_time=1.5", "filter_time must be a whole number of seconds"),
        (f"filter_time={MAX_FILTER_TIME + 1}", "filter_time must be"),
        ("filter_time=" + "9" * 5000, "filter_time must be"),
        ("filterout=", "filterout has no word"),
        ("filterout=" + "|".join(f"w{n}" for n in range(MAX_TERMS + 1)), "more than"),
        ("filterout=" + "x" * (MAX_QUERY_CHARS + 1), "longer than"),
        ("q=", "no word"),
        ("q=-a", "only excludes"),
    ],
)
def test_bad_parameters_are_query_errors_with_short_messages(query_string: str, message: str):
    with pytest.raises(QueryError, match=message) as error:
        feed_parameters(query_string)
    assert len(str(error.value)) <= 80


def test_filterout_takes_words_and_phrases_not_patterns():
    assert parse_filterout(".*|(a+)+$|Nguyễn Văn") == (term("a"), term("nguyen van"))


@given(
    st.dictionaries(
        st.sampled_from(["q", "filterout", "filter_time", "limit"]),
        st.one_of(GRAMMAR_TEXT, st.text(max_size=40), st.integers(-5, 99).map(str)),
    )
)
def test_canonical_query_string_reads_back_to_the_same_parameters(given_values: dict):
    try:
        parameters = parse_feed_parameters(given_values.items(), ENTRIES)
    except QueryError:
        return
    again = feed_parameters(parameters.query_string())
    assert again == parameters
    assert again.query_string() == parameters.query_string()
