"""Plain text done right in RSS (and Atom): `&` and `<` in plain-text elements are written as
hexadecimal references (`&#x26;`, `&#x3C;`), as the RSS Best Practices Profile and the W3C
validator advise, so no reader takes a headline such as "Yields<Bunds" or "R&amp;D" for HTML.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import feedparser
import pytest
from lxml import etree

from feedsvc.catalog import Catalog
from feedsvc.ingest import ingest_document
from feedsvc.model import Image, Item
from feedsvc.render import Feed, load_feed, plain_text_references, render_feed
from feedsvc.sources import Document

from .feedcheck import assert_valid_atom

DC = "{http://purl.org/dc/elements/1.1/}"
ATOM = "{http://www.w3.org/2005/Atom}"
WHEN = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
HOSTILE_TITLES = (
    "Yields<Bunds as spreads narrow",
    "R&amp;D budgets: &lt;b&gt; is not bold",
    "Ampersands & angle <brackets> & CDATA ]]> ends",
    "\"Double\" and 'single' quotes &quot; &#39;",
    "\u202b\u05e2\u05d3\u05db\u05d5\u05df\u202c: mark \u200f & <i>",  # RTL
    "&#x26; already a reference &#60;",
)
# An element's text between its tags (no markup: the writers put none in these elements).
_ELEMENT_TEXT = r"<{tag}(?:\s[^>]*)?>([^<]*)</{tag}>"


def hostile_item(number: int, title: str) -> Item:
    return Item(
        f"h{number}",
        title,
        author=f"{title[:12]} & <desk>",
        published=WHEN,
        updated=WHEN,
        topics=("world",),
        images=(Image("https://img.example.org/p.jpg", caption=title, credit="A & <B>"),),
    )


def hostile_feed(catalog: Catalog) -> Feed:
    items = [hostile_item(n, t) for n, t in enumerate(HOSTILE_TITLES)]
    return Feed(catalog.site, catalog.topic("all"), items, WHEN)


def texts(data: bytes, tag: str) -> list[str]:
    return re.findall(_ELEMENT_TEXT.format(tag=re.escape(tag)), data.decode("utf-8"))


@pytest.mark.parametrize("extension", ["rss", "atom"])
def test_plain_text_elements_use_hexadecimal_references(catalog: Catalog, extension: str) -> None:
    data = render_feed(hostile_feed(catalog), extension)
    plain = ["title", "media:description", "media:credit"]
    plain += ["dc:creator"] if extension == "rss" else ["name", "summary"]
    for tag in plain:
        found = texts(data, tag)
        assert found, tag
        for text in found:
            assert "&amp;" not in text and "&lt;" not in text, (tag, text)
    assert "Yields&#x3C;Bunds as spreads narrow" in texts(data, "title")


@pytest.mark.parametrize("extension", ["rss", "atom"])
def test_hostile_titles_read_back_exactly(catalog: Catalog, extension: str) -> None:
    data = render_feed(hostile_feed(catalog), extension)
    if extension == "atom":
        assert_valid_atom(data)
    tree = etree.fromstring(data)
    if extension == "rss":
        titles = [i.findtext("title") for i in tree.iter("item")]
        authors = [i.findtext(f"{DC}creator") for i in tree.iter("item")]
    else:
        titles = [e.findtext(f"{ATOM}title") for e in tree.iter(f"{ATOM}entry")]
        authors = [e.findtext(f"{ATOM}author/{ATOM}name") for e in tree.iter(f"{ATOM}entry")]
    assert titles == list(HOSTILE_TITLES)
    assert authors == [f"{t[:12]} & <desk>" for t in HOSTILE_TITLES]
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert len(parsed.entries) == len(HOSTILE_TITLES)
    if extension == "atom":  # type="text" is unambiguous (feedparser guesses at RSS titles)
        assert [entry.title for entry in parsed.entries] == list(HOSTILE_TITLES)


def test_rss_description_stays_html_showing_the_text(catalog: Catalog) -> None:
    """The description is HTML to readers: the title in it is escaped once as HTML, then as
    XML, in lxml's form; a reader shows the characters the headline has."""
    data = render_feed(hostile_feed(catalog), "rss")
    tree = etree.fromstring(data)
    first = next(tree.iter("item"))
    assert first.findtext("description") == "Yields&lt;Bunds as spreads narrow"
    assert "Yields&amp;lt;Bunds" in texts(data, "description")[1]  # the channel's comes first
    # feedparser hands the description on as the HTML it is
    assert feedparser.parse(data).entries[0].summary == "Yields&lt;Bunds as spreads narrow"


def test_references_leave_attributes_markup_and_html_elements_alone() -> None:
    document = (
        b'<rss xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        b'<channel><title a="x&amp;y">A &amp; B &lt;c&gt;</title>'
        b"<description>&lt;p&gt;R&amp;amp;D&lt;/p&gt;</description>"
        b"<content:encoded>&lt;b&gt;</content:encoded>"
        b"<plain>no escapes</plain></channel></rss>"
    )
    assert plain_text_references(document) == (
        b'<rss xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        b'<channel><title a="x&amp;y">A &#x26; B &#x3C;c&gt;</title>'
        b"<description>&lt;p&gt;R&amp;amp;D&lt;/p&gt;</description>"
        b"<content:encoded>&lt;b&gt;</content:encoded>"
        b"<plain>no escapes</plain></channel></rss>"
    )
    assert etree.fromstring(plain_text_references(document)).findtext("channel/title") == (
        "A & B <c>"
    )


def test_hostile_titles_from_json_lines_end_to_end(store, catalog: Catalog) -> None:
    lines = [
        json.dumps({"id": f"t{n}", "title": title, "author": "Desk & <co>", "topics": ["world"]})
        for n, title in enumerate(HOSTILE_TITLES)
    ]
    document = Document("hostile.jsonl", "\n".join(lines).encode(), "jsonl")
    assert ingest_document(store, catalog, document).new == len(HOSTILE_TITLES)
    feed = load_feed(store, catalog, catalog.topic("world"))
    first = render_feed(feed, "rss")
    assert render_feed(feed, "rss") == first  # deterministic
    tree = etree.fromstring(first)
    assert sorted(i.findtext("title") for i in tree.iter("item")) == sorted(HOSTILE_TITLES)
    for text in texts(first, "title"):
        assert "&amp;" not in text and "&lt;" not in text
