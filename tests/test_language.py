"""An item's language in its entry: Atom xml:lang, JSON Feed `language` where the feed's
differs, RSS channel `<language>` only for a feed of one language (else dc:language per item).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import lxml.html
import pytest
from lxml import etree

from feedsvc.catalog import Catalog
from feedsvc.errors import DocumentError
from feedsvc.ingest import ingest_document
from feedsvc.model import Item
from feedsvc.pages import Pages
from feedsvc.render import Feed, load_feed, render_feed
from feedsvc.sources import Document, parse_document

from .conftest import DATA
from .feedcheck import assert_valid_atom, assert_valid_json_feed

ATOM = "{http://www.w3.org/2005/Atom}"
DC = "{http://purl.org/dc/elements/1.1/}"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
WHEN = datetime(2026, 11, 20, 7, 30, tzinfo=UTC)


def item(item_id: str, language: str | None) -> Item:
    return Item(item_id, f"Story {item_id}", published=WHEN, updated=WHEN, language=language)


def feed_of(catalog: Catalog, *items: Item) -> Feed:
    return Feed(catalog.site, catalog.topic("all"), items, WHEN)


GERMAN = item("de-1", "de")
ENGLISH = item("en-1", None)  # no language given: the site's (en)
BRITISH = item("en-2", "EN")  # the same language, written otherwise


def test_a_feed_of_one_language_says_it_on_the_channel(catalog: Catalog) -> None:
    rss = etree.fromstring(render_feed(feed_of(catalog, GERMAN, item("de-2", "de")), "rss"))
    assert rss.findtext("channel/language") == "de"
    assert rss.findall(f".//item/{DC}language") == []
    document = json.loads(render_feed(feed_of(catalog, GERMAN), "json"))
    assert document["language"] == "de" and "language" not in document["items"][0]


def test_a_feed_of_several_languages_says_each_items_own(catalog: Catalog) -> None:
    feed = feed_of(catalog, GERMAN, ENGLISH, BRITISH)
    rss = etree.fromstring(render_feed(feed, "rss"))
    # a channel language would be wrong for some items: RSS says none, each item dc:language
    assert rss.find("channel/language") is None
    assert [i.findtext(f"{DC}language") for i in rss.iter("item")] == ["de", "en", "EN"]
    data = render_feed(feed, "json")
    assert_valid_json_feed(data)
    document = json.loads(data)
    assert document["language"] == "en"
    assert [i.get("language") for i in document["items"]] == ["de", None, None]


def test_atom_entries_in_another_language_than_the_site_say_so(catalog: Catalog) -> None:
    for items in ((GERMAN,), (GERMAN, ENGLISH, BRITISH)):
        data = render_feed(feed_of(catalog, *items), "atom")
        assert_valid_atom(data)
        atom = etree.fromstring(data)
        assert atom.get(XML_LANG) == "en"  # the feed's own words (title, subtitle) are the site's
        entries = atom.findall(f"{ATOM}entry")
        assert [e.get(XML_LANG) for e in entries] == ["de", None, None][: len(entries)]


def test_an_empty_or_site_language_feed_keeps_the_sites_language(catalog: Catalog) -> None:
    for items in ((), (ENGLISH, BRITISH)):
        rss = etree.fromstring(render_feed(feed_of(catalog, *items), "rss"))
        assert rss.findtext("channel/language") == "en"


def test_language_is_read_from_json_lines() -> None:
    items = parse_document(
        Document("pictures.jsonl", (DATA / "pictures.jsonl").read_bytes(), "jsonl")
    )
    assert [i.language for i in items] == [None, None, "de", None]


@pytest.mark.parametrize("value", ["german", "d", "de_DE", "", 5, "de-"])
def test_a_bad_language_is_one_line(value: object) -> None:
    text = json.dumps({"id": "a", "title": "t", "language": value})
    with pytest.raises(DocumentError, match="'language' must be a BCP 47 tag") as caught:
        parse_document(Document("x.jsonl", text.encode(), "jsonl"))
    assert caught.value.line == 1


def test_pages_mark_an_item_in_another_language(catalog: Catalog) -> None:
    pages = Pages(catalog)
    assert lxml.html.fromstring(pages.item(GERMAN)).xpath("//article/@lang") == ["de"]
    assert lxml.html.fromstring(pages.item(BRITISH)).xpath("//article/@lang") == []
    topic = lxml.html.fromstring(pages.topic(catalog.topic("world"), [GERMAN, ENGLISH]))
    assert [li.get("lang") for li in topic.xpath("//ul[@class='latest']/li")] == ["de", None]


def test_language_sent_in_json_lines_reaches_the_feeds(store, catalog: Catalog) -> None:
    document = Document("pictures.jsonl", (DATA / "pictures.jsonl").read_bytes(), "jsonl")
    ingest_document(store, catalog, document)
    feed = load_feed(store, catalog, catalog.topic("world"))
    atom = etree.fromstring(render_feed(feed, "atom"))
    languages = {e.findtext(f"{ATOM}title"): e.get(XML_LANG) for e in atom.iter(f"{ATOM}entry")}
    assert languages["Rathaus beschließt neuen Radweg"] == "de"
