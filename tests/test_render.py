"""The converter: every feed readable by a real reader, valid, deterministic; feedgen's pitfalls
each handled on purpose."""

from __future__ import annotations

import json
import locale
import sys
import threading
from datetime import UTC, datetime

import feedparser
from lxml import etree

from feedsvc.ingest import ingest_document
from feedsvc.render import FORMATS, load_feed, render_feed
from feedsvc.sources import Document

from .feedcheck import assert_valid_atom, assert_valid_json_feed

ATOM = "{http://www.w3.org/2005/Atom}"


def feeds(store, catalog):
    for topic in catalog.feeds:
        feed = load_feed(store, catalog, topic)
        for extension in FORMATS:
            yield topic, feed, extension, render_feed(feed, extension)


def test_every_feed_parses_in_feedparser_as_the_store_holds_it(filled, catalog) -> None:
    checked = 0
    for topic, feed, extension, data in feeds(filled, catalog):
        if extension == "json":
            continue
        parsed = feedparser.parse(data)
        assert not parsed.bozo, (topic.slug, extension, parsed.get("bozo_exception"))
        assert [e.id for e in parsed.entries] == [feed.entry_id(i) for i in feed.items]
        for entry, item in zip(parsed.entries, feed.items, strict=True):
            assert entry.title == item.title
            assert entry.link == feed.entry_link(item)
            assert entry.published_parsed[:6] == item.published.utctimetuple()[:6]
            assert entry.get("author") == item.author
            if item.content:
                assert entry.content[0].value == item.content
        checked += 1
    assert checked == 2 * len(catalog.feeds)


def test_every_atom_feed_passes_the_rfc4287_schema(filled, catalog) -> None:
    for _topic, _feed, extension, data in feeds(filled, catalog):
        if extension == "atom":
            assert_valid_atom(data)


def test_every_json_feed_follows_json_feed_11(filled, catalog) -> None:
    for _topic, feed, extension, data in feeds(filled, catalog):
        if extension == "json":
            document = assert_valid_json_feed(data)
            assert [i["id"] for i in document["items"]] == [feed.entry_id(i) for i in feed.items]


def test_rendering_is_byte_deterministic(filled, catalog) -> None:
    first = [data for *_, data in feeds(filled, catalog)]
    second = [data for *_, data in feeds(filled, catalog)]
    assert first == second


def test_no_now_in_output_dates_come_from_the_store(filled, catalog, clock) -> None:
    feed = load_feed(filled, catalog, catalog.all_topic)
    newest = max(item.updated for item in feed.items)
    assert feed.updated == newest < datetime.now(UTC)
    rss = etree.fromstring(render_feed(feed, "rss"))
    assert rss.findtext("channel/lastBuildDate") == newest.strftime("%a, %d %b %Y %H:%M:%S +0000")
    atom = etree.fromstring(render_feed(feed, "atom"))
    assert atom.findtext(f"{ATOM}updated") == newest.isoformat()
    for entry in atom.iter(f"{ATOM}entry"):
        assert entry.findtext(f"{ATOM}updated") <= newest.isoformat()


def test_rss_channel_link_is_the_site_not_the_self_link(filled, catalog) -> None:
    rss = etree.fromstring(render_feed(load_feed(filled, catalog, catalog.all_topic), "rss"))
    channel = rss.find("channel")
    assert channel.findtext("link") == catalog.site.base_url
    self_link = channel.find(f"{ATOM}link")
    assert self_link.get("rel") == "self"
    assert self_link.get("href") == catalog.site.url("feeds/all.rss")


def test_atom_links_keep_rel_and_type(filled, catalog) -> None:
    atom = etree.fromstring(render_feed(load_feed(filled, catalog, catalog.all_topic), "atom"))
    feed_links = {link.get("rel"): link for link in atom.findall(f"{ATOM}link")}
    assert feed_links["self"].get("href") == catalog.site.url("feeds/all.atom")
    assert feed_links["self"].get("type") == "application/atom+xml"
    assert feed_links["alternate"].get("href") == catalog.site.base_url
    for entry in atom.iter(f"{ATOM}entry"):
        (link,) = entry.findall(f"{ATOM}link")
        assert link.get("rel") == "alternate" and link.get("type") == "text/html"
        assert link.get("href").startswith(catalog.site.base_url)


def test_entries_in_store_order_not_prepended(filled, catalog) -> None:
    feed = load_feed(filled, catalog, catalog.all_topic)
    parsed = feedparser.parse(render_feed(feed, "rss"))
    assert [e.title for e in parsed.entries] == [i.title for i in feed.items]
    assert feed.items[0].published >= feed.items[-1].published


def test_rss_guid_is_a_tag_uri_not_a_permalink(filled, catalog) -> None:
    rss = etree.fromstring(render_feed(load_feed(filled, catalog, catalog.all_topic), "rss"))
    for guid in rss.iter("guid"):
        assert guid.get("isPermaLink") == "false"
        assert guid.text.startswith(catalog.site.tag_prefix + "items/")


def test_generator_and_docs_are_set_on_purpose(filled, catalog) -> None:
    feed = load_feed(filled, catalog, catalog.all_topic)
    rss = etree.fromstring(render_feed(feed, "rss"))
    assert rss.findtext("channel/generator") == "feedsvc"
    assert rss.findtext("channel/docs") == "https://www.rssboard.org/rss-specification"
    atom = etree.fromstring(render_feed(feed, "atom"))
    assert atom.findtext(f"{ATOM}generator") == "feedsvc"


def test_illegal_xml_characters_are_cleaned_at_ingest(store, catalog) -> None:
    ingest_document(store, catalog, Document("x.txt", b"Bad \x01\x02 title\nPara \x1b.\n", "wire"))
    data = render_feed(load_feed(store, catalog, catalog.all_topic), "atom")
    assert feedparser.parse(data).entries[0].title == "Bad  title"


def test_dates_are_timezone_aware(filled, catalog) -> None:
    for item in load_feed(filled, catalog, catalog.all_topic).items:
        assert item.published.tzinfo is not None and item.updated.tzinfo is not None


def test_rss_renders_in_threads_leave_the_process_locale_as_it_was(filled, catalog) -> None:
    # feedgen formats RSS dates under setlocale(), which is process-wide: a save/restore pair
    # interleaved between threads would leave every later render (and the process) in "C".
    feed = load_feed(filled, catalog, catalog.all_topic)
    expected = render_feed(feed, "rss")
    results: list[bytes] = []

    def work() -> None:
        for _ in range(20):
            results.append(render_feed(feed, "rss"))

    original = locale.setlocale(locale.LC_ALL)
    interval = sys.getswitchinterval()
    try:
        chosen = locale.setlocale(locale.LC_ALL, "C.UTF-8")  # anything but feedgen's "C"
        sys.setswitchinterval(1e-6)  # hand the GIL over often, inside feedgen's pair too
        threads = [threading.Thread(target=work) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert locale.setlocale(locale.LC_ALL) == chosen
    finally:
        sys.setswitchinterval(interval)
        locale.setlocale(locale.LC_ALL, original)
    assert set(results) == {expected}


def test_articles_carry_full_content_headlines_do_not(filled, catalog) -> None:
    feed = load_feed(filled, catalog, catalog.all_topic)
    rss = etree.fromstring(render_feed(feed, "rss"))
    encoded = "{http://purl.org/rss/1.0/modules/content/}encoded"
    for element, item in zip(rss.iter("item"), feed.items, strict=True):
        assert (
            (element.findtext(encoded) == item.content)
            if item.content
            else (element.find(encoded) is None)
        )
        if item.author:
            assert element.findtext("{http://purl.org/dc/elements/1.1/}creator") == item.author
    document = json.loads(render_feed(feed, "json"))
    for entry, item in zip(document["items"], feed.items, strict=True):
        assert entry.get("content_html") == item.content
        assert entry["url"].startswith("http")


def test_empty_feed_is_valid_and_dated(store, catalog) -> None:
    feed = load_feed(store, catalog, catalog.all_topic)
    assert feed.items == []
    assert_valid_atom(render_feed(feed, "atom"))
    assert not feedparser.parse(render_feed(feed, "rss")).bozo
    assert_valid_json_feed(render_feed(feed, "json"))
