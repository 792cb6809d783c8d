"""The search language of `?q=` and the feed filter parameters: parsed by our code into plain
data, which each engine's search module turns into its own query (store/sqlite_search.py:
FTS5; store/postgres_search.py: tsquery), so user text is never query syntax. Pure: no SQL,
no I/O.

The language is web search's: words (all must match), `"quoted phrases"`, `-word` and
`-"phrase"` to exclude, `OR` (in capitals) between two terms. OR binds tighter than the
implicit AND, as in web search: `mbappe psg OR real` is mbappe AND (psg OR real). Matching is
on whole words, ignoring case and accents (`fold`); the search index must hold text made by the
same `tokens` function, so both sides agree on what a word is.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from .errors import QueryError
from .model import body_text

MAX_QUERY_CHARS = 200
MAX_TERMS = 16
MAX_FILTER_TIME = 10 * 366 * 86_400  # seconds: ten years; an older cut-off filters nothing
PARAMETERS = ("filter_time", "filterout", "limit", "q")  # sorted: the canonical order
DURATIONS = (("day", 86_400), ("hour", 3600), ("minute", 60), ("second", 1))  # for titles
# Bump when `tokens` changes: an index built with the old rules must then be rebuilt, and a
# contentless index can only unindex a row with the exact text it was given.
FOLD_VERSION = 1

# ASCII text: upper case to lower, every character that is not a letter or digit to a space.
_ASCII_NON_WORD = bytes(c for c in range(128) if not chr(c).isalnum())
_ASCII_FOLD = bytes.maketrans(
    _ASCII_NON_WORD + bytes(range(65, 91)), b" " * len(_ASCII_NON_WORD) + bytes(range(97, 123))
)
_WORD = re.compile(r"\w+")  # letters, digits and `_` of every script (Unicode L*, N*)
# Letters NFKD does not split into a base letter and a mark, folded as people type them
# without the key; modifier-letter primes and apostrophes (U+02B9-U+02BD: Hawai'i written
# with an okina, the Ukrainian apostrophe) are left out; `_` (a `\w` character) splits words.
_SPELLED = {
    "æ": "ae",
    "ð": "d",
    "đ": "d",
    "ħ": "h",
    "\u0131": "i",  # dotless i
    "ł": "l",
    "ø": "o",
    "œ": "oe",
    "ŧ": "t",
    "þ": "th",
    "ƀ": "b",
    "ɨ": "i",
    "ʉ": "u",
    **dict.fromkeys(map(chr, range(0x2B9, 0x2BE)), ""),
    "_": " ",
}
_SPECIAL = re.compile("[" + "".join(_SPELLED) + "]")
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
# One piece of a query: an optional `-`, then a quoted phrase (an unclosed quote runs to the
# end) or a word (up to white space or a quote).
_PIECE = re.compile(r'(-?)(?:"([^"]*)"?|([^\s"]+))')


@functools.cache  # built on first use (about 25 ms), not at import; never changes after
def _marks() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Every combining mark (Unicode categories Mn, Mc, Me: accents and the like): those of the
    Basic Multilingual Plane, and those beyond it. Two patterns, because `re` tests a class
    that mixes both range by range, some 30 times slower than a class of the BMP alone."""
    # Marks live in planes 0, 1 and 14 only (a test checks every code point).
    points = [*range(0x20000), *range(0xE0000, 0xE1000)]
    marks = [point for point in points if unicodedata.category(chr(point))[0] == "M"]
    return _class([p for p in marks if p < 0x10000]), _class([p for p in marks if p >= 0x10000])


def _class(points: list[int]) -> re.Pattern[str]:
    ranges: list[list[int]] = []
    for point in points:
        if ranges and ranges[-1][1] == point - 1:
            ranges[-1][1] = point
        else:
            ranges.append([point, point])
    return re.compile("[" + "".join(f"{chr(a)}-{chr(b)}" for a, b in ranges) + "]+")


def tokens(text: str) -> list[str]:
    """The words of `text` as the search index holds them: NFKD, case-folded, combining marks
    dropped (`Nguyễn` -> `nguyen`), a few letters spelled as without the key (`ø` -> `o`,
    `ß` -> `ss`), then split into runs of letters and digits."""
    if text.isascii():
        return text.encode().translate(_ASCII_FOLD).decode().split()
    # NFKD before the case fold: compatibility forms (ligatures, x²) become plain letters.
    folded = unicodedata.normalize("NFKD", text).casefold()
    marks, astral_marks = _marks()
    folded = marks.sub("", folded)
    if _ASTRAL.search(folded):
        folded = astral_marks.sub("", folded)
    return _WORD.findall(_SPECIAL.sub(_spell, folded))


def _spell(letter: re.Match[str]) -> str:
    return _SPELLED[letter.group()]


def fold(text: str) -> str:
    """The text an index holds for `text`: its tokens, one space between."""
    return " ".join(tokens(text))


@dataclass(frozen=True, slots=True)
class Term:
    """A word (one token) or a phrase (tokens next to each other, in this order)."""

    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        # Built only from `tokens`; checked so no hand-made Term can carry query syntax.
        if not self.tokens or tokens(" ".join(self.tokens)) != list(self.tokens):
            raise ValueError(f"not folded tokens: {self.tokens!r}")

    def text(self) -> str:
        """The term as the query language writes it."""
        return self.tokens[0] if len(self.tokens) == 1 else '"' + " ".join(self.tokens) + '"'


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: every clause must match (a clause: any one of its terms), and none of
    the excluded terms."""

    clauses: tuple[tuple[Term, ...], ...]
    excluded: tuple[Term, ...] = ()


def indexed_text(title: str, content: str | None, summary: str | None) -> tuple[str, str]:
    """The two fields an item is found by (`Store.search`): its title and its body text
    (`model.body_text`), each folded."""
    return fold(title), fold(body_text(content, summary))


def parse(text: str) -> Query:
    """Parse a user's query; `QueryError` (a 400) when too long, too many terms, or nothing
    to look for. Pieces with no letter or digit (`*`, `!!`, emoji) are ignored, as are `OR`
    and `-` where they join nothing."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is longer than {MAX_QUERY_CHARS} characters")
    clauses: list[list[Term]] = []
    excluded: list[Term] = []
    count = 0
    # After an OR that follows a wanted term, the next wanted term joins that term's clause.
    last_wanted = joining = False
    for match in _PIECE.finditer(text):
        negated, phrase, word = match.groups()
        if word == "OR" and not negated:
            joining = last_wanted
            continue
        found = tokens(word if phrase is None else phrase)
        if not found:
            continue
        count += 1
        if count > MAX_TERMS:
            raise QueryError(f"the query has more than {MAX_TERMS} words and phrases")
        term = Term(tuple(found))
        if negated:
            excluded.append(term)
        elif joining:
            clauses[-1].append(term)
        else:
            clauses.append([term])
        last_wanted, joining = not negated, False
    return _query(clauses, excluded)


def _query(clauses: list[list[Term]], excluded: list[Term]) -> Query:
    if not clauses:
        if excluded:
            raise QueryError("the query only excludes: add a word to look for")
        raise QueryError("the query has no word to look for")
    unique: dict[frozenset[Term], tuple[Term, ...]] = {}
    for clause in clauses:
        terms = tuple(dict.fromkeys(clause))
        unique.setdefault(frozenset(terms), terms)
    query = Query(tuple(unique.values()), tuple(dict.fromkeys(excluded)))
    # NFKD can lengthen text (`ﷺ` is four words): the canonical form must parse again.
    if len(canonical(query)) > MAX_QUERY_CHARS:
        raise QueryError(f"the query is longer than {MAX_QUERY_CHARS} characters")
    return query


def canonical(query: Query) -> str:
    """The query's normalised text, stable for cache keys and feed titles: folded words, the
    user's order, exclusions last; `parse(canonical(q)) == q`."""
    wanted = [" OR ".join(term.text() for term in clause) for clause in query.clauses]
    return " ".join(wanted + ["-" + term.text() for term in query.excluded])


def excluding(query: Query, terms: Iterable[Term]) -> Query:
    """The query with more excluded terms (a feed's `filterout=`)."""
    return Query(query.clauses, tuple(dict.fromkeys((*query.excluded, *terms))))


# -- feed parameters ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FeedParameters:
    """What a live feed URL asks for besides its topic and format."""

    query: Query | None = None  # q=
    filterout: tuple[Term, ...] = ()  # filterout=a|b: items holding any of these are left out
    filter_time: int | None = None  # seconds: only items published since then
    limit: int | None = None  # None: the site's entries_per_feed

    def search(self) -> Query | None:
        """`q` with the `filterout` terms excluded (None without `q`)."""
        return None if self.query is None else excluding(self.query, self.filterout)

    def filters(self) -> bool:
        """Whether these parameters choose which items (`q`, `filterout`, `filter_time`), not
        only how many."""
        return self.query is not None or bool(self.filterout) or self.filter_time is not None

    def describe(self) -> str:
        """The choice in words, for a feed's title or a page's heading ("" when none)."""
        parts = []
        if self.query is not None:
            parts.append(f"search: {canonical(self.query)}")
        if self.filterout:
            parts.append("without: " + ", ".join(term.text() for term in self.filterout))
        if self.filter_time is not None:
            parts.append(f"last {_duration(self.filter_time)}")
        return "; ".join(parts)

    def pairs(self) -> list[tuple[str, str]]:
        """The canonical parameters: (name, value), values normalised, names sorted."""
        values = {
            "filter_time": None if self.filter_time is None else str(self.filter_time),
            "filterout": _filterout_text(self.filterout) or None,
            "limit": None if self.limit is None else str(self.limit),
            "q": None if self.query is None else canonical(self.query),
        }
        return [(name, value) for name in PARAMETERS if (value := values[name])]

    def query_string(self) -> str:
        """The canonical query string ("" for the plain feed): the `rel=self` URL's and the
        cache key."""
        return "&".join(f"{name}={quote(value, safe='')}" for name, value in self.pairs())


def _duration(seconds: int) -> str:
    name, size = next((name, size) for name, size in DURATIONS if seconds % size == 0)
    count = seconds // size
    return f"{count} {name}" + ("s" if count != 1 else "")


def cut_off(now: datetime, filter_time: int, step: int) -> datetime:
    """The moment `filter_time` keeps items from: `filter_time` seconds before `now`, rounded
    down to a whole multiple of `step` seconds (the site's max_age), so every request within
    one step shares one cut-off, and one cached answer; the feed may then hold up to `step`
    seconds more than asked, never less."""
    step = max(step, 1)
    moment = int((now - timedelta(seconds=filter_time)).timestamp())
    return datetime.fromtimestamp(moment - moment % step, UTC)


def parse_filterout(text: str) -> tuple[Term, ...]:
    """`filterout=` terms: words or phrases separated by `|` (no patterns), sorted."""
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(f"filterout is longer than {MAX_QUERY_CHARS} characters")
    terms = {Term(tuple(found)) for piece in text.split("|") if (found := tokens(piece))}
    if not terms:
        raise QueryError("filterout has no word to filter out")
    if len(terms) > MAX_TERMS:
        raise QueryError(f"filterout has more than {MAX_TERMS} terms")
    ordered = tuple(sorted(terms, key=lambda term: term.tokens))
    if len(_filterout_text(ordered)) > MAX_QUERY_CHARS:  # NFKD lengthened it
        raise QueryError(f"filterout is longer than {MAX_QUERY_CHARS} characters")
    return ordered


def _filterout_text(terms: Sequence[Term]) -> str:
    return "|".join(" ".join(term.tokens) for term in terms)


def _whole_number(name: str, value: str, top: int, unit: str = "") -> int:
    if value.isascii() and value.isdigit() and len(value) <= 12 and 1 <= int(value) <= top:
        return int(value)
    raise QueryError(f"{name} must be a whole number{unit} from 1 to {top}")


def parse_feed_parameters(
    pairs: Iterable[tuple[str, str]], entries_per_feed: int
) -> FeedParameters:
    """Read a feed URL's parameters (name, value pairs in URL order); `QueryError` for an
    unknown name, a name given twice or a bad value. `limit` equal to the site's default is
    dropped, so both URLs share one canonical form."""
    given: dict[str, str] = {}
    for name, value in pairs:
        if name not in PARAMETERS:
            raise QueryError("unknown parameter: feeds take " + ", ".join(PARAMETERS))
        if name in given:
            raise QueryError(f"{name} is given twice")
        given[name] = value
    limit = None
    if "limit" in given:
        limit = _whole_number("limit", given["limit"], entries_per_feed)
    return FeedParameters(
        query=parse(given["q"]) if "q" in given else None,
        filterout=parse_filterout(given["filterout"]) if "filterout" in given else (),
        filter_time=(
            _whole_number("filter_time", given["filter_time"], MAX_FILTER_TIME, " of seconds")
            if "filter_time" in given
            else None
        ),
        limit=None if limit == entries_per_feed else limit,
    )
