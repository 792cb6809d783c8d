"""Hostile input: every published artifact stays valid and says the same text, documents that
cannot be read are rejected whole with one line naming file and line, no path escapes, and
HTTP errors are short plain text.

"The same text" here: the text after feedsvc's documented cleaning (`clean_text`: control
characters, C1 controls, U+FFFE/U+FFFF and lone surrogates removed; each wire line and JSON
Lines text field stripped). Wire paragraphs are escaped into `<p>` elements; JSON Lines `content`
is HTML cleaned to a safe subset. A feed must carry the stored text unchanged: RSS and Atom are
checked at the XML level (lxml, no recovery) and through feedparser, JSON Feed through
`json` and tests/feedcheck.py. Two reader quirks are allowed for, not blamed on feedsvc:
feedparser reads RSS titles by guessing whether they are HTML (RSS cannot say), so RSS titles
are compared through feedparser only when they hold no `<` or `&` (the XML-level check covers
them all); and feedparser "repairs" text that looks double-encoded (`as_feedparser_reads`).

Where feedsvc's own rules decide (a leading U+FEFF is a BOM; a wire document more than 1/8 NUL
bytes is taken for UTF-16 or binary; a byline name ends with a non-space), the generators and
the checks follow the README and feedsvc/sources.py.
"""

from __future__ import annotations

import contextlib
import html
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import feedparser
import lxml.html
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from feedsvc.catalog import Catalog, load_catalog
from feedsvc.cli import main
from feedsvc.errors import CatalogError, DocumentError, FeedsvcError
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.model import Item, clean_text, html_to_text, item_id
from feedsvc.pages import SCRIPT
from feedsvc.render import FORMATS, load_feed, render_feed
from feedsvc.sanitize import ALLOWED as SAFE_TAGS
from feedsvc.sources import Document, parse_document
from feedsvc.static import build_site
from feedsvc.store import Store
from feedsvc.store import open_store as open_engine
from feedsvc.web import create_app

from .conftest import BASE_URL, DATA, FEEDS, TOKEN, Clock, examples
from .feedcheck import assert_valid_atom, assert_valid_json_feed

ATOM = "{http://www.w3.org/2005/Atom}"
CONTENT_ENCODED = "{http://purl.org/rss/1.0/modules/content/}encoded"
DC_CREATOR = "{http://purl.org/dc/elements/1.1/}creator"
STRICT_XML = etree.XMLParser(
    recover=False, resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False
)
# The README's byline: a last line NAME--CODE, CODE 1-10 capitals or digits.
BYLINE_RULE = re.compile(r"\S(?:.*\S)?--[A-Z0-9]{1,10}")
LONG = ('<p>&amp;]]>😀ש "x" ' * 700)[:10_000]  # a 10,000-character paragraph

# Hostile pieces, named for the report and the parametrized tests.
PAYLOADS = {
    "script": "<script>document.title='PW'+'NED'</script>",
    "img-onerror": "\"><img src=x onerror=\"document.title='PW'+'NED'\">",
    "svg-onload": "'><svg onload=alert(1)>",
    "cdata-end": "a ]]> b <![CDATA[ c ]]>",
    "ampersands": "AT&T &amp; &lt;b&gt; &#12; &#x0; &nbsp; &bogus; &",
    "quotes": "\"double\" 'single' `back` \\ slash",
    "comment": "<!-- not a comment --> <?pi x?> <!DOCTYPE x>",
    "controls": "bell\x07 nul\x00 esc\x1b del\x7f nel\x85 c1\x9f vt\x0b ff\x0c end",
    "nonchars": "U+FFFE\ufffe U+FFFF\uffff BOM\ufeff ZWSP\u200b",
    "emoji": "😀 👩‍👩‍👧 🏳️‍🌈 \U0010fffd",
    "rtl": "שלום עליכם مرحبا بالعالم \u202eevil\u202c \u200fmark",
    "separators": "line\u2028sep para\u2029sep",
    "long": LONG,
}
FRAGMENTS = (
    *PAYLOADS.values(),
    "<",
    ">",
    "&",
    "--",
    "--AP",
    "-",
    "\t",
    "e\u0301",
    "İß",
    *"\x00\x07\x1b\x7f\x85\x9f\ufffe\uffff\ufeff\u2028",  # one at a time, too
)
SURROGATES = ("\ud800", "\udfff", "\udbff", "\ud83d")  # lone; only JSON's \u escapes carry them


# -- the check every test ends with: all feeds valid, and saying the stored text ---------------


def as_feedparser_reads(text: str) -> str:
    """feedparser "repairs" text that is all Latin-1 and valid UTF-8 once encoded so (it takes
    "Ã©" for a double-encoded "é"); a reader quirk, not the feed's text."""
    try:
        return text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def _norm(text: str) -> str:
    return " ".join(text.split())


def check_rss(data: bytes, items: list[Item], entry_ids: list[str]) -> None:
    root = etree.fromstring(data, STRICT_XML)
    elements = root.findall("channel/item")
    assert len(elements) == len(items)
    for element, item, entry_id in zip(elements, items, entry_ids, strict=True):
        assert element.findtext("guid") == entry_id
        assert element.findtext("title") == item.title
        # description: the plain text (summary, else the headline) as HTML, which readers
        # read it as; the full story in content:encoded.
        text = item.summary or item.title
        assert element.findtext("description") == html.escape(text, quote=False)
        assert element.findtext(CONTENT_ENCODED) == (item.content or None)
        assert element.findtext(DC_CREATOR) == item.author
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [entry.id for entry in parsed.entries] == entry_ids
    for entry, item in zip(parsed.entries, items, strict=True):
        if not re.search(r"[<&]", item.title):  # see the module docstring
            assert entry.title == as_feedparser_reads(item.title)


def check_atom(data: bytes, items: list[Item], entry_ids: list[str]) -> None:
    assert_valid_atom(data)
    root = etree.fromstring(data, STRICT_XML)
    elements = root.findall(f"{ATOM}entry")
    assert len(elements) == len(items)
    for element, item in zip(elements, items, strict=True):
        assert element.findtext(f"{ATOM}title") == item.title
        assert element.findtext(f"{ATOM}summary") == (item.summary or item.title)
        assert element.findtext(f"{ATOM}content") == (item.content or None)
        assert element.findtext(f"{ATOM}author/{ATOM}name") == item.author
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert [entry.id for entry in parsed.entries] == entry_ids
    for entry, item in zip(parsed.entries, items, strict=True):
        assert entry.title == as_feedparser_reads(item.title)
        if item.summary:
            assert entry.summary == as_feedparser_reads(item.summary)
        if item.content:
            read = _norm(html_to_text(entry.content[0].value))
            assert read == _norm(html_to_text(as_feedparser_reads(item.content)))
        if item.author:
            assert entry.author == item.author


def check_json(data: bytes, items: list[Item], entry_ids: list[str]) -> None:
    document = assert_valid_json_feed(data)
    assert [entry["id"] for entry in document["items"]] == entry_ids
    for entry, item in zip(document["items"], items, strict=True):
        assert entry["title"] == item.title
        assert entry.get("summary") == item.summary
        assert entry.get("content_html") == (item.content or None)
        if item.author:
            assert entry["authors"] == [{"name": item.author}]


CHECKS = {"rss": check_rss, "atom": check_atom, "json": check_json}


def check_published(store: Store, catalog: Catalog) -> int:
    """Render every feed of every topic; all must be valid and carry the stored text.
    Returns the number of entries seen in the `all` feed."""
    seen = 0
    for topic in catalog.feeds:
        feed = load_feed(store, catalog, topic)
        items = list(feed.items)
        entry_ids = [feed.entry_id(item) for item in items]
        for extension in FORMATS:
            CHECKS[extension](render_feed(feed, extension), items, entry_ids)
        if topic.slug == "all":
            seen = len(items)
    return seen


def check_content_is_safe(content: str | None) -> None:
    """Stored HTML holds only the allowlisted tags, and no attribute but a safe href."""
    if content is None:
        return
    for tag in re.findall(r"<[^>]*>", content):
        name = re.match(r"</?([a-zA-Z0-9]+)", tag)
        assert name and name[1].lower() in SAFE_TAGS, tag
        attributes = re.sub(r"^</?[a-zA-Z0-9]+", "", tag).strip("<>/ ")
        if attributes:
            assert name[1] == "a", tag
            assert re.fullmatch(r'href="(https?|mailto):[^"<>]*"', attributes, re.IGNORECASE), tag


def is_the_pages_script(element: lxml.html.HtmlElement) -> bool:
    """feedsvc's own script: in the head, from the site's file, nothing inline."""
    return (
        element.tag == "script"
        and element.getparent().tag == "head"
        and element.get("src", "").rpartition("/")[2] == SCRIPT
        and not (element.text or "").strip()
    )


def assert_no_markup_injected(page: bytes) -> None:
    """The page as a browser's parser sees it: no script, no event handler, no embed."""
    document = lxml.html.document_fromstring(page)
    for element in document.iter():
        if not isinstance(element.tag, str) or is_the_pages_script(element):
            continue
        assert element.tag not in ("script", "img", "svg", "iframe", "object", "embed"), element
        for attribute in element.attrib:
            assert not attribute.lower().startswith("on"), (element.tag, attribute)
        assert not element.get("href", "").strip().lower().startswith("javascript:")


@pytest.fixture(scope="module")
def shared_catalog() -> Catalog:
    return load_catalog(FEEDS, BASE_URL)


@pytest.fixture
def catalog(shared_catalog: Catalog) -> Catalog:
    """Overrides conftest's: the catalogue is loaded once for this module (it is the slow part
    of the `store` fixture, and nothing here changes it)."""
    return shared_catalog


class FreshStore:
    """A new store in a temporary directory, for one hypothesis example."""

    def __init__(self, catalog: Catalog) -> None:
        self.directory = tempfile.mkdtemp(prefix="feedsvc-hostile-")
        self.store = open_filed_store(
            Path(self.directory) / "store.sqlite3", catalog, Clock(), create=True
        )

    def __enter__(self) -> Store:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def cleaned(text: str) -> str:
    return clean_text(text).strip()


# -- wire documents ---------------------------------------------------------------------------


@dataclass
class Expected:
    title: str
    paragraphs: list[str]
    author: str | None = None
    source: str | None = None


def paragraphs_of(content: str | None) -> list[str]:
    if content is None:
        return []
    return [html.unescape(p) for p in re.findall(r"<p>(.*?)</p>", content, re.DOTALL)]


VISIBLE = st.sampled_from(["x", "Zürich", "😀", "ש", "<b>", "&", "]]>", "\"'", "中文", "0"])


def wire_text(pieces: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """A line of hostile text that still has something visible once cleaned and stripped."""
    return st.tuples(pieces, VISIBLE, pieces).map(
        lambda parts: "".join(parts).replace("\r", " ").replace("\n", " ")
    )


HOSTILE_PIECES = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), max_size=5
).map("".join)
LINE = wire_text(HOSTILE_PIECES)
PARAGRAPH = st.one_of(LINE, LINE, LINE, st.just(LONG))


@st.composite
def wire_article(draw: st.DrawFn) -> tuple[list[str], Expected]:
    title = draw(LINE)
    paragraphs = draw(st.lists(PARAGRAPH, max_size=3))
    name = st.tuples(HOSTILE_PIECES, VISIBLE).map(
        lambda parts: "".join(parts).replace("\r", " ").replace("\n", " ")
    )  # a name ends with a visible character, right before the "--"
    byline = draw(st.none() | st.tuples(name, st.from_regex(r"[A-Z0-9]{1,10}", fullmatch=True)))
    if byline is None and paragraphs and BYLINE_RULE.fullmatch(cleaned(paragraphs[-1])):
        paragraphs.append("The end.")  # otherwise that paragraph is a byline, as documented
    lines = [title, *paragraphs]
    expected = Expected(cleaned(title), [cleaned(p) for p in paragraphs])
    if byline is not None:
        lines.append(f"{byline[0]}--{byline[1]}")
        expected.author, expected.source = cleaned(byline[0]), byline[1]
    return lines, expected


@st.composite
def wire_document(draw: st.DrawFn) -> tuple[bytes, list[Expected]]:
    """Random wire text: an optional leading article, then headlines each maybe followed by
    an article; random line ends (LF, CRLF, CR, mixed) and maybe a BOM."""
    lines: list[str] = []
    expected: list[Expected] = []
    if draw(st.booleans()):
        article_lines, article = draw(wire_article())
        lines += article_lines
        expected.append(article)
    for _ in range(draw(st.integers(0 if expected else 1, 3))):
        headline = draw(LINE)
        lines += ["-", headline]
        expected.append(Expected(cleaned(headline), []))
        if draw(st.booleans()):
            article_lines, article = draw(wire_article())
            lines += article_lines
            expected.append(article)
    ends = draw(
        st.lists(st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(lines), max_size=len(lines))
    )
    text = "".join(line + end for line, end in zip(lines, ends, strict=True))
    # A leading U+FEFF is a BOM and dropped: give the text one, so a line's own U+FEFF stays.
    bom = "\ufeff" if draw(st.booleans()) or text.startswith("\ufeff") else ""
    return (bom + text).encode("utf-8"), expected


@settings(max_examples=examples(30), suppress_health_check=[HealthCheck.too_slow])
@given(document=wire_document())
def test_random_wire_documents_publish_valid_feeds_with_the_same_text(
    shared_catalog: Catalog, document: tuple[bytes, list[Expected]]
) -> None:
    data, expected = document
    ids = [item_id(e.title) for e in expected]
    assume(len(set(ids)) == len(ids))  # a repeated headline is one item, as documented
    if data.count(b"\x00") * 8 > len(data):  # documented: taken for UTF-16 or binary
        with pytest.raises(DocumentError, match="NUL"):
            parse_document(Document("fuzz.txt", data, "wire"))
        return
    items = parse_document(Document("fuzz.txt", data, "wire"))
    assert [
        Expected(i.title, paragraphs_of(i.content), i.author, i.source) for i in items
    ] == expected
    for item, e in zip(items, expected, strict=True):
        assert item.summary == (e.paragraphs[0] if e.paragraphs else None)
    with FreshStore(shared_catalog) as store:
        counts = ingest_document(store, shared_catalog, Document("fuzz.txt", data, "wire"))
        assert counts.new == len(expected)
        stored = {item.id: item for item in store.newest("all", 1000)}
        assert {i.id: (i.title, i.content, i.summary, i.author) for i in items} == {
            k: (v.title, v.content, v.summary, v.author) for k, v in stored.items()
        }
        assert check_published(store, shared_catalog) == len(expected)


# -- JSON Lines documents ---------------------------------------------------------------------

JSON_PIECES = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS + SURROGATES), st.text(max_size=12)), max_size=5
).map("".join)
HTML_PIECES = st.lists(
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<p onclick=alert(1)>",
            "<script>document.title='PW'+'NED'</script>",
            "<script>",
            "</script>",
            '<img src=x onerror="alert(1)">',
            "<svg onload=alert(1)><p>in svg</p></svg>",
            '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
            "<style>p{}</style>",
            '<a href="javascript:alert(1)">js</a>',
            '<a href=" JAVASCRIPT:alert(1)">js</a>',
            '<a href="java&#x09;script:alert(1)">js</a>',
            "<a href='https://ok.example/?a=1&amp;b=\"2\"' onmouseover=x>ok</a>",
            '<a href="mailto:a@example.org">mail</a>',
            "<b>",
            "</b>",
            "<br/>",
            "<p/>",
            "<ul><li>one<li>two</ul>",
            "<h2 style='x'>head</h2>",
            "<math><mi>x</mi></math>",
            "<table><tr><td>cell</td></tr></table>",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
            "&#60;b&#62;",
            "&#0;",
            "&#12;",
            "&#x81;",
            "&#x80;",
            "&#xd800;",
            "&amp;",
            "&",
            "<",
            ">",
            "]]>",
            "<![CDATA[x]]>",
            "<!-- c -->",
            "<!DOCTYPE html>",
            "<?php x ?>",
            "\x00",
            "\x0c",
            "\ufffe",
            "\ud800",
            LONG,
        ]
    )
    | st.text(max_size=10),
    max_size=8,
).map("".join)
JSON_ID = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,20}", fullmatch=True)
LINKS = st.sampled_from(
    [
        "https://news.example.org/a?b=1&c=2",
        "http://news.example.org/%22%3E%3Cscript%3E",
        "https://news.example.org/\u00e9t\u00e9",
    ]
)


@st.composite
def jsonl_document(draw: st.DrawFn) -> tuple[bytes, list[dict], bool]:
    """Random JSON Lines: hostile text in every text field; `\\u` escapes (lone surrogates
    included) or raw UTF-8, where a lone surrogate makes the document invalid UTF-8."""
    records = draw(
        st.lists(
            st.fixed_dictionaries(
                {"id": JSON_ID, "title": JSON_PIECES},
                optional={
                    "content": HTML_PIECES,
                    "summary": JSON_PIECES,
                    "author": JSON_PIECES,
                    "source": JSON_PIECES,
                    "link": LINKS,
                },
            ),
            min_size=1,
            max_size=4,
            unique_by=lambda record: record["id"],
        )
    )
    ascii_only = draw(st.booleans())
    ends = draw(
        st.lists(
            st.sampled_from(["\n", "\r\n", "\r"]), min_size=len(records), max_size=len(records)
        )
    )
    text = "".join(
        json.dumps(record, ensure_ascii=ascii_only) + end
        for record, end in zip(records, ends, strict=True)
    )
    data = text.encode("utf-8", "surrogatepass")  # raw lone surrogates: not valid UTF-8
    raw_surrogates = not ascii_only and re.search("[\ud800-\udfff]", text) is not None
    return data, records, raw_surrogates


def check_jsonl_items(items: list[Item], records: list[dict]) -> None:
    assert len(items) == len(records)
    for item, record in zip(items, records, strict=True):
        assert item.id == record["id"]
        assert item.title, f"an item with an empty title from {record['title']!r}"
        assert item.title == cleaned(record["title"])
        for key in ("author", "source"):
            assert getattr(item, key) == (cleaned(record.get(key) or "") or None)
        if cleaned(record.get("summary") or ""):
            assert item.summary == cleaned(record["summary"])
        check_content_is_safe(item.content)
        for field in (item.title, item.summary, item.author, item.content):
            assert field is None or clean_text(field) == field, "uncleaned text stored"
        assert item.link == record.get("link")


@settings(max_examples=examples(80), suppress_health_check=[HealthCheck.too_slow])
@given(document=jsonl_document())
def test_random_json_lines_are_cleaned_or_rejected_and_publish_the_same_text(
    shared_catalog: Catalog, document: tuple[bytes, list[dict], bool]
) -> None:
    data, records, raw_surrogates = document
    # What JSON says: escaped surrogates that make a pair are one character after decoding.
    records = [json.loads(json.dumps(record)) for record in records]
    try:
        items = parse_document(Document("fuzz.jsonl", data, "jsonl"))
    except FeedsvcError as error:
        assert str(error).startswith("fuzz.jsonl:") and "\n" not in str(error)
        rejectable = raw_surrogates or any(not cleaned(r["title"]) for r in records)
        assert rejectable, f"rejected a good document: {error}"
        return
    assert not raw_surrogates, "a document that is not UTF-8 was read"
    check_jsonl_items(items, records)
    with FreshStore(shared_catalog) as store:
        counts = ingest_document(store, shared_catalog, Document("fuzz.jsonl", data, "jsonl"))
        assert counts.new == len(records)
        assert check_published(store, shared_catalog) == len(records)


@settings(max_examples=examples(100))
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | JSON_PIECES,
        lambda children: (
            st.lists(children, max_size=3)
            | st.dictionaries(st.sampled_from(["id", "title", "topics", "link", "x"]), children)
        ),
        max_leaves=6,
    )
)
def test_any_json_value_on_a_line_is_an_item_or_a_feedsvc_error(value: object) -> None:
    """Structured fuzzing of JSON Lines (tests/test_wire.py feeds it arbitrary bytes)."""
    data = json.dumps(value).encode()
    try:
        items = parse_document(Document("v.jsonl", data, "jsonl"))
    except FeedsvcError as error:
        assert str(error).startswith("v.jsonl:1: ")
        return
    for item in items:
        assert item.id and item.title


# -- each hostile payload, by name, in every field -----------------------------------------------


def hostile_wire(payload: str) -> bytes:
    line = payload.replace("\r", " ").replace("\n", " ")
    return (
        f"-\nHeadline {line} one\nArticle {line} two\nFirst {line} paragraph.\n"
        f"Second {line}\nAuthor {line} Name--RTR\n"
    ).encode()


def hostile_jsonl(payload: str, name: str) -> bytes:
    record = {
        "id": f"hostile-{name}",
        "title": f"Title {payload}",
        "summary": f"Summary {payload}",
        "author": f"Author {payload}",
        "source": f"SRC {payload}",
        "content": f"<p>{html.escape(payload)}</p><p>Content {payload}</p>",
        "link": "https://news.example.org/story?a=1&b=2",
    }
    return (json.dumps(record) + "\n").encode("ascii")


@pytest.mark.parametrize("name", list(PAYLOADS))
def test_each_hostile_payload_in_every_field_publishes_valid_feeds(
    name: str, store: Store, catalog: Catalog
) -> None:
    payload = PAYLOADS[name]
    wire_items = parse_document(Document("h.txt", hostile_wire(payload), "wire"))
    visible = cleaned(payload)
    assert [i.title for i in wire_items] == [
        cleaned(f"Headline {payload} one"),
        cleaned(f"Article {payload} two"),
    ]
    article = wire_items[1]
    assert article.author == cleaned(f"Author {payload} Name") and article.source == "RTR"
    assert paragraphs_of(article.content) == [
        cleaned(f"First {payload} paragraph."),
        cleaned(f"Second {payload}"),
    ]
    jsonl_items = parse_document(Document("h.jsonl", hostile_jsonl(payload, name), "jsonl"))
    (item,) = jsonl_items
    assert item.title == cleaned(f"Title {payload}") and item.author == cleaned(f"Author {payload}")
    check_content_is_safe(item.content)
    assert visible in html_to_text(item.content or "")
    ingest_document(store, catalog, Document("h.txt", hostile_wire(payload), "wire"))
    ingest_document(store, catalog, Document("h.jsonl", hostile_jsonl(payload, name), "jsonl"))
    assert check_published(store, catalog) == 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("title", "\u0007"),
        ("title", "\ud800"),
        ("title", "\ufffe\uffff"),
        ("title", "\x00 \x1b"),
    ],
    ids=["bell", "lone-surrogate", "nonchars", "controls"],
)
def test_a_title_that_cleans_to_nothing_is_rejected_not_stored(
    field: str, value: str, store: Store, catalog: Catalog
) -> None:
    """'title' is required and non-empty; a title of nothing but removed characters must not
    become an empty title, which no feed can carry (feedgen refuses an entry without one)."""
    data = (json.dumps({"id": "empty-title", field: value}) + "\n").encode()
    document = Document("empty.jsonl", data, "jsonl")
    with pytest.raises(DocumentError) as caught:
        ingest_document(store, catalog, document)
    assert str(caught.value).startswith("empty.jsonl:1: ")
    assert store.counts()["all"] == 0
    check_published(store, catalog)


@pytest.mark.parametrize(
    "content",
    [
        "<p>form&#12;feed</p>",
        "<p>form&#x0C;feed</p>",
        "<p>form&#x0c;feed &#x81; &#x8d; &#x9d;</p>",
        '<p><a href="https://example.org/a&#12;b">link</a></p>',
    ],
    ids=["decimal", "hex", "c1", "href"],
)
def test_character_references_in_content_cannot_smuggle_control_characters(
    content: str, store: Store, catalog: Catalog
) -> None:
    """clean_text runs before the HTML cleaner decodes `&#12;` into U+000C, which XML 1.0 cannot
    carry: the decoded text must be cleaned too, or every feed holding the item fails."""
    data = json.dumps({"id": "charref", "title": "Character references", "content": content})
    document = Document("charref.jsonl", data.encode(), "jsonl")
    with contextlib.suppress(FeedsvcError):  # rejecting the document is fine too
        ingest_document(store, catalog, document)
    for item in store.newest("all", 10):
        for text in (item.content, item.summary):
            assert text is None or clean_text(text) == text, f"uncleaned text stored: {text!r}"
    check_published(store, catalog)


@pytest.mark.parametrize(
    "link",
    [
        "http://[broken",
        "https://[::1/x",
        'https://news.example.org/"><img src=x onerror=alert(1)>',
        "https://news.example.org/a b",
    ],
    ids=["bad-ipv6", "bad-ipv6-2", "markup", "space"],
)
def test_hostile_links_are_rejected_or_published_as_valid_urls(
    link: str, store: Store, catalog: Catalog
) -> None:
    """A link is 'an absolute URL': one urlsplit cannot parse must be a DocumentError (not a
    ValueError), and one that is stored must make a valid feed (JSON Feed: no whitespace)."""
    data = (json.dumps({"id": "link", "title": "Linked story", "link": link}) + "\n").encode()
    try:
        ingest_document(store, catalog, Document("link.jsonl", data, "jsonl"))
    except FeedsvcError as error:
        assert str(error).startswith("link.jsonl:1: ")
    check_published(store, catalog)


@pytest.mark.parametrize(
    "date",
    [
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-11-20T08:00:00+25:00",
        "2026-11-20T08:00:00-99:99",
    ],
    ids=["before-year-1-in-utc", "after-year-9999-in-utc", "offset-25h", "offset-99h"],
)
def test_extreme_dates_are_rejected_or_published(date: str, store: Store, catalog: Catalog) -> None:
    """A date the store cannot read back (outside years 1-9999 in UTC) or an impossible offset
    must be a DocumentError; never a crash, and never an item that breaks every feed."""
    data = (json.dumps({"id": "dated", "title": "Dated story", "published": date}) + "\n").encode()
    try:
        ingest_document(store, catalog, Document("dates.jsonl", data, "jsonl"))
    except FeedsvcError as error:
        assert str(error).startswith("dates.jsonl:1: ")
    check_published(store, catalog)


def test_hostile_fixture_documents_publish_valid_feeds_and_a_safe_site(
    store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    for path in (DATA / "hostile_wire.txt", DATA / "hostile_items.jsonl"):
        ingest_document(
            store,
            catalog,
            Document(path.name, path.read_bytes(), "jsonl" if path.suffix == ".jsonl" else "wire"),
        )
    assert check_published(store, catalog) == 6
    for item in store.newest("all", 100):
        check_content_is_safe(item.content)
    outdir = tmp_path / "out" / "site"
    build_site(store, catalog, outdir)
    for extension in FORMATS:
        for topic in catalog.feeds:
            assert (outdir / "feeds" / f"{topic.slug}.{extension}").is_file()
    for path in (outdir / "feeds").glob("*.atom"):
        assert_valid_atom(path.read_bytes())
    for path in (outdir / "feeds").glob("*.json"):
        assert_valid_json_feed(path.read_bytes())
    for path in (outdir / "feeds").glob("*.rss"):
        etree.fromstring(path.read_bytes(), STRICT_XML)
    assert {p.name for p in (outdir / "items").glob("*.html")} == {
        f"{item_id}.html" for item_id in store.item_ids()
    }


# -- documents that cannot be read: one line naming file and line, nothing stored --------------

BAD_BYTES = {
    "latin-1": "caf\u00e9".encode("latin-1"),
    "lone-continuation": b"\x80abc",
    "truncated": b"euro \xe2\x82",
    "overlong": b"slash \xc0\xaf",
    "surrogate": b"sur \xed\xa0\x80 rogate",
    "ff": b"\xff\xfe",
}
LINE_ENDS = {"lf": ["\n"], "crlf": ["\r\n"], "cr": ["\r"], "mixed": ["\r\n", "\r", "\n"]}


def good_lines(kind: str) -> list[bytes]:
    if kind == "wire":
        return [b"-", b"A good headline", b"-", "Another good headline é".encode(), b"-"]
    return [
        json.dumps({"id": f"good-{n}", "title": f"Good title {n} \u00e9"}).encode()
        for n in range(5)
    ]


def bad_document(kind: str, ends: list[str], bad: bytes, bom: bool, bad_line: int) -> bytes:
    lines = good_lines(kind)
    if kind == "wire":
        lines[bad_line - 1] = b"Bad headline " + bad
    else:
        lines[bad_line - 1] = b'{"id": "bad", "title": "' + bad + b'"}'
    out = b"\xef\xbb\xbf" if bom else b""
    for number, line in enumerate(lines):
        out += line + ends[number % len(ends)].encode()
    return out


def snapshot(store: Store) -> tuple:
    return store.generation(), store.counts(), list(store.item_ids()), store.last_updated()


@pytest.fixture
def prefilled(store: Store, catalog: Catalog) -> Store:
    ingest_document(store, catalog, Document("first.txt", b"-\nAlready stored headline\n", "wire"))
    return store


@pytest.mark.parametrize("bom", [False, True], ids=["no-bom", "bom"])
@pytest.mark.parametrize("ends", list(LINE_ENDS))
@pytest.mark.parametrize("bad", list(BAD_BYTES))
@pytest.mark.parametrize("kind", ["wire", "jsonl"])
def test_bad_encoding_mid_file_names_file_and_line_and_stores_nothing(
    kind: str, bad: str, ends: str, bom: bool, prefilled: Store, catalog: Catalog
) -> None:
    data = bad_document(kind, LINE_ENDS[ends], BAD_BYTES[bad], bom, bad_line=4)
    before = snapshot(prefilled)
    name = f"odd.{'txt' if kind == 'wire' else 'jsonl'}"
    with pytest.raises(DocumentError) as caught:
        ingest_document(prefilled, catalog, Document(name, data, kind))
    message = str(caught.value)
    assert (caught.value.where, caught.value.line) == (name, 4)
    assert message.startswith(f"{name}:4: ") and "\n" not in message and len(message) < 200
    assert snapshot(prefilled) == before


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('{"id": "a", "title": "ok"}\r\n{"id": "b", "title": "x",}\r\n', 2),
        ('{"id": "a", "title": "ok"}\r{"id": "b", "title": "ok"}\r{"id": "c"}\r', 3),
        ('{"id": "a", "title": "ok"}\r\n\r\n\n\r{"id": "../b", "title": "x"}\n', 5),
        ('{"id": "a", "title": "ok"}\n\ufeff{"id": "b", "title": "x"}\n', 2),
        ('\ufeff{"id": "a", "title": "ok"}\r\n{"id": "b", "title": "x", "link": "ftp://x"}', 2),
        ('{"id": "a", "title": "ok"}\n{"id": "b", "title": "\\ud800 ok", "topics": ["../x"]}\n', 2),
        ('{"id": "a", "title": "ok"}\n{"id": "b", "title": "raw \x01 control"}\n', 2),
    ],
    ids=["crlf", "cr", "blank-lines", "bom-mid-file", "bom-then-crlf", "bad-topic", "raw-control"],
)
def test_bad_json_line_with_odd_line_ends_names_its_line_and_stores_nothing(
    text: str, line: int, prefilled: Store, catalog: Catalog
) -> None:
    before = snapshot(prefilled)
    with pytest.raises(DocumentError) as caught:
        ingest_document(prefilled, catalog, Document("odd.jsonl", text.encode(), "jsonl"))
    assert str(caught.value).startswith(f"odd.jsonl:{line}: ")
    assert "\n" not in str(caught.value)
    assert snapshot(prefilled) == before


@pytest.mark.parametrize("kind", ["wire", "jsonl"])
def test_cli_ingest_of_a_bad_document_is_one_line_and_leaves_the_store(
    kind: str, runner, settings, tmp_path: Path
) -> None:
    path = tmp_path / f"odd.{'txt' if kind == 'wire' else 'jsonl'}"
    path.write_bytes(bad_document(kind, LINE_ENDS["mixed"], BAD_BYTES["latin-1"], True, bad_line=4))
    first = runner.invoke(main, ["ingest", str(DATA / "wire_basic.txt")])
    assert first.exit_code == 0, first.output
    store = open_engine(settings.db)
    try:
        before = snapshot(store)
        result = runner.invoke(main, ["ingest", str(path)])
        assert result.exit_code == 1
        assert result.stderr.startswith(f"feedsvc: error: {path}:4: not valid UTF-8")
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.output
        assert snapshot(store) == before
    finally:
        store.close()


# -- paths: nothing a slug or an id says can leave OUTDIR or the site --------------------------

SITE_TOML = """title = "t"
description = "d"
base_url = "http://127.0.0.1:8000/"
author = "a"
"""
TOPIC_TOML = 'title = "T"\ndescription = "D"\n[rules]\nmatch = ["word"]\n'


@pytest.mark.parametrize(
    "filename",
    [
        "..toml",
        "...toml",
        ".hidden.toml",
        "-x.toml",
        "X.toml",
        "a_b.toml",
        "a b.toml",
        "a.b.toml",
        "all.toml",
        "other.toml",
        "%2e%2e.toml",
        "..%2fx.toml",
        "\u00e9t\u00e9.toml",
        "x" * 41 + ".toml",
        "x\\..\\y.toml",
    ],
)
def test_catalogue_rejects_topic_files_whose_slug_is_not_safe(
    filename: str, tmp_path: Path
) -> None:
    feeds = tmp_path / "feeds"
    (feeds / "topics").mkdir(parents=True)
    (feeds / "site.toml").write_text(SITE_TOML)
    (feeds / "topics" / "good.toml").write_text(TOPIC_TOML)
    assert [t.slug for t in load_catalog(feeds).feeds] == ["all", "good", "other"]
    (feeds / "topics" / filename).write_text(TOPIC_TOML)
    with pytest.raises(CatalogError) as caught:
        load_catalog(feeds)
    assert "bad topic slug" in str(caught.value)


@pytest.mark.parametrize("slug", ["../x", "..", "a/b", "/etc/passwd", "good/../good"])
def test_catalogue_rejects_unknown_slugs_in_topic_order(slug: str, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    (feeds / "topics").mkdir(parents=True)
    (feeds / "site.toml").write_text(SITE_TOML + f"topic_order = [{json.dumps(slug)}]\n")
    (feeds / "topics" / "good.toml").write_text(TOPIC_TOML)
    with pytest.raises(CatalogError):
        load_catalog(feeds)


@pytest.mark.parametrize(
    "bad_id",
    [
        "../../etc/passwd",
        "a/b",
        "..",
        ".",
        "./a",
        "/abs",
        "a\\b",
        "..\\..\\x",
        "%2e%2e",
        "%2e%2e%2fx",
        ".hidden",
        "-x",
        "a" * 129,
        "a\u2215b",  # division slash
        "\uff41",  # fullwidth a
        "a\u0000b",
        "a b",
        "a\nb",
        "a?b",
        "a#b",
    ],
)
def test_json_lines_ids_that_are_not_safe_file_names_are_rejected(bad_id: str) -> None:
    data = (json.dumps({"id": bad_id, "title": "t"}) + "\n").encode()
    with pytest.raises(DocumentError) as caught:
        parse_document(Document("ids.jsonl", data, "jsonl"))
    assert str(caught.value).startswith("ids.jsonl:1: 'id' ")


@pytest.mark.parametrize("slug", ["../x", "..", "a/b", "All", "x" * 41, "sp ace", ""])
def test_json_lines_topics_that_are_not_slugs_are_rejected(slug: str) -> None:
    data = (json.dumps({"id": "a", "title": "t", "topics": [slug]}) + "\n").encode()
    with pytest.raises(DocumentError):
        parse_document(Document("topics.jsonl", data, "jsonl"))


def files_outside(root: Path, outdir: Path) -> set[Path]:
    return {
        p
        for p in root.rglob("*")
        if p.is_file() and not p.is_relative_to(outdir) and not p.name.startswith("store.sqlite3")
    }


@pytest.mark.parametrize("bad_id", ["../../escape", "../../../escape", "x/../../../escape"])
def test_static_build_never_writes_outside_outdir_even_for_a_bad_stored_id(
    bad_id: str, store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    """Ids are checked when documents are read; the build checks again, for a store written
    some other way (an older feedsvc, a hand edit)."""
    store.ingest([Item(id=bad_id, title="Escaping item")], catalog.topics_for)
    outdir = tmp_path / "a" / "b" / "site"
    before = files_outside(tmp_path, outdir)
    try:
        build_site(store, catalog, outdir)
    except FeedsvcError as error:
        assert "outside" in str(error)
    assert files_outside(tmp_path, outdir) == before
    assert all(p.is_relative_to(outdir) for p in tmp_path.rglob("escape.html*"))


# -- HTTP ------------------------------------------------------------------------------------

TRAVERSALS = [
    "/items/../x",
    "/items/../pyproject.toml",
    "/items/%2e%2e%2fx.html",
    "/items/..%2Fsetup.html",
    "/items/..%2F..%2Fpyproject.toml",
    "/items/%2e%2e.html",
    "/items/..html",
    "/items/.html",
    "/items/%252e%252e%252fx.html",
    "/items/" + "a" * 1000 + ".html",
    "/items/" + "a" * 129 + ".html",
    "/items/%00.html",
    "/items/a%00.html",
    "/items/hostile-1.html/../../pyproject.toml",
    "/items/hostile-1.html%00",
    "/feeds/../pyproject.toml",
    "/feeds/%2e%2e/x.rss",
    "/feeds/..%2f..%2fpyproject.rss",
    "/feeds/%2e%2e%2fpyproject.toml",
    "/feeds/all.rss/../../README.md",
    "/feeds/all%00.rss",
    "/feeds/" + "a" * 1000 + ".rss",
    "/../pyproject.toml",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/static/../pyproject.toml",
    "/index.html/../pyproject.toml",
]


@pytest.fixture
def hostile_client(client, settings, clock):
    """The app (both variants) over a store holding the hostile fixture documents."""
    store = open_engine(settings.db, clock)
    catalog = client.application.extensions["feedsvc"].catalog
    for path in (DATA / "hostile_wire.txt", DATA / "hostile_items.jsonl"):
        kind = "jsonl" if path.suffix == ".jsonl" else "wire"
        ingest_document(store, catalog, Document(path.name, path.read_bytes(), kind))
    store.close()
    return client


def plain_error_problem(response, *statuses: int) -> str | None:
    """Why `response` is not a short plain-text error with one of `statuses` (None if it is)."""
    body = response.get_data(as_text=True)
    if response.status_code not in statuses:
        return f"status {response.status_code}, not {statuses}: {body[:80]!r}"
    if response.mimetype != "text/plain":
        return f"content type {response.mimetype!r}"
    if len(response.data) >= 200:
        return f"a {len(response.data)}-byte body: {body[:80]!r}..."
    if "Traceback" in body or "<" in body or "[build-system]" in body or "root:" in body:
        return f"body {body!r}"
    return None


def assert_plain_error(response, *statuses: int) -> None:
    problem = plain_error_problem(response, *statuses)
    assert problem is None, problem


def probe(problems: list[str], label: str, statuses: tuple[int, ...], request, *args, **kwargs):
    """Make one request; note a problem (an exception counts) instead of stopping at the first."""
    try:
        response = request(*args, **kwargs)
    except Exception as error:  # TESTING: Flask lets a view's exception through
        problems.append(f"{label}: raised {type(error).__name__}: {error}")
        return None
    problem = plain_error_problem(response, *statuses)
    if problem:
        problems.append(f"{label}: {problem}")
    return response


@pytest.mark.both_paths
def test_traversal_and_overlong_paths_are_404_never_a_file(hostile_client) -> None:
    problems: list[str] = []
    for path in TRAVERSALS:
        for method in ("GET", "HEAD"):
            probe(
                problems,
                f"{method} {path[:60]}",
                (404, 400),
                hostile_client.open,
                path,
                method=method,
            )
    assert not problems, "\n".join(problems)


def test_the_hostile_items_are_served(hostile_client) -> None:
    """The answers above are not 404 for everything: the real items are served, escaped."""
    for item_path in ("/items/hostile-1.html", "/items/Hostile.Id_3-x.html", "/"):
        response = hostile_client.get(item_path)
        assert response.status_code == 200, item_path
        assert_no_markup_injected(response.data)
    for extension in FORMATS:
        assert hostile_client.get(f"/feeds/all.{extension}").status_code == 200


NOT_FOUND = [
    "/feeds/nope.rss",
    "/feeds/all.xml",
    "/feeds/all.RSS",
    "/feeds/ALL.rss",
    "/feeds/all.rss.gz",
    "/feeds/all.",
    "/feeds/.rss",
    "/feeds/all",
    "/feeds/<script>.rss",
    "/feeds/all.rss%3Cscript%3E",
    "/items/nonexistent.html",
    "/items/hostile-1.htm",
    "/items/<script>.html",
    "/nope",
]


@pytest.mark.both_paths
def test_unknown_topic_format_or_page_is_a_plain_404(hostile_client) -> None:
    problems: list[str] = []
    for path in NOT_FOUND:
        probe(problems, path, (404,), hostile_client.get, path)
    assert not problems, "\n".join(problems)


BAD_LIMITS = [
    "abc",
    "-1",
    "0",
    "999999",
    "51",
    "",
    "1.5",
    "1e3",
    "0x10",
    " 5",
    "5 ",
    "+5",
    "9" * 400,
    "\u00b2",  # superscript two: str.isdigit() says yes, int() says no
    "\u2460",  # circled one, the same
]


@pytest.mark.both_paths
def test_bad_limit_is_a_plain_400(hostile_client) -> None:
    problems: list[str] = []
    for limit in BAD_LIMITS:
        probe(
            problems,
            f"?limit={limit[:20]!r}",
            (400,),
            hostile_client.get,
            "/feeds/all.rss",
            query_string={"limit": limit},
        )
    assert not problems, "\n".join(problems)


WRONG_METHODS = [
    ("POST", "/"),
    ("PUT", "/"),
    ("DELETE", "/index.html"),
    ("POST", "/feeds/all.rss"),
    ("PUT", "/feeds/all.atom"),
    ("PATCH", "/feeds/all.json"),
    ("DELETE", "/feeds.opml"),
    ("POST", "/items/hostile-1.html"),
    ("POST", "/healthz"),
    ("GET", "/api/items"),
    ("PUT", "/api/items"),
]


@pytest.mark.both_paths
def test_wrong_method_is_a_plain_405_with_allow(hostile_client) -> None:
    problems: list[str] = []
    for method, path in WRONG_METHODS:
        label = f"{method} {path}"
        response = probe(problems, label, (405,), hostile_client.open, path, method=method)
        if response is not None and not response.headers.get("Allow"):
            problems.append(f"{label}: no Allow header")
    assert not problems, "\n".join(problems)


def test_the_app_is_not_in_debug_mode(app, settings, monkeypatch) -> None:
    assert app.debug is False
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    production = create_app({"SETTINGS": settings})
    assert production.debug is False and production.testing is False


@pytest.mark.sqlite_only  # breaks the store by overwriting its file
def test_an_internal_error_is_a_plain_500_without_traceback(store, settings, clock) -> None:
    """Not TESTING, so Flask answers an exception as a production server would."""
    production = create_app({"SETTINGS": settings, "CLOCK": clock, "FASTPATH": False})
    for suffix in ("", "-wal", "-shm"):
        Path(f"{Path(settings.db)}{suffix}").unlink(missing_ok=True)
    Path(settings.db).write_bytes(b"this is not a database " * 200)
    client = production.test_client()
    for path in ("/", "/feeds/all.rss", "/items/hostile-1.html"):
        assert_plain_error(client.get(path), 500, 503)


API_DOCUMENTS = {
    "long-id": ("application/x-ndjson", json.dumps({"id": "../" * 400, "title": "t"}).encode()),
    "title-type": ("application/x-ndjson", json.dumps({"id": "a", "title": ["x" * 999]}).encode()),
    "not-utf8": ("text/plain", b"-\n" + "caf\u00e9 ".encode("latin-1") * 300),
    "raw-surrogate": ("application/x-ndjson", b'{"id": "a", "title": "\xed\xa0\x80"}'),
    "bad-json": ("application/x-ndjson", b'{"id": "a", "title": "<script>' + b"x" * 500),
    "bad-link": ("application/x-ndjson", b'{"id": "a", "title": "t", "link": "http://[x"}'),
    "bad-offset": (
        "application/x-ndjson",
        b'{"id": "a", "title": "t", "published": "2026-01-01T00:00:00+25:00"}',
    ),
}


def test_api_rejects_hostile_documents_with_a_short_plain_400(hostile_client) -> None:
    problems: list[str] = []
    for name, (mimetype, body) in API_DOCUMENTS.items():
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": mimetype}
        probe(
            problems,
            name,
            (400,),
            hostile_client.post,
            "/api/items",
            data=body,
            headers=headers,
        )
    assert not problems, "\n".join(problems)


API_POISON = {
    "empty-title": b'{"id": "p1", "title": "\\u0007\\ud800"}',
    "form-feed-ref": b'{"id": "p2", "title": "t", "content": "<p>a&#12;b</p>"}',
    "year-0": b'{"id": "p3", "title": "t", "published": "0001-01-01T00:00:00+01:00"}',
    "space-link": b'{"id": "p4", "title": "t", "link": "https://example.org/a b"}',
    "fine": b'{"id": "p5", "title": "<script>x</script>", "content": "<img onerror=x>"}',
}


@pytest.mark.parametrize("name", list(API_POISON))
def test_nothing_posted_to_the_api_can_break_the_feeds(hostile_client, name: str) -> None:
    response = hostile_client.post(
        "/api/items",
        data=API_POISON[name] + b"\n",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"},
    )
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert_plain_error(response, 400)
    for extension in FORMATS:
        feed = hostile_client.get(f"/feeds/all.{extension}")
        assert feed.status_code == 200
        if extension == "atom":
            assert_valid_atom(feed.data)
        elif extension == "json":
            assert_valid_json_feed(feed.data)
        else:
            etree.fromstring(feed.data, STRICT_XML)
    assert hostile_client.get("/").status_code == 200
