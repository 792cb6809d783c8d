"""The converter: every feed readable by a real reader, valid, deterministic; feedgen's pitfalls
each handled on purpose."""

from __future__ import annotations

import html
import json
import locale
import re
import shutil
import sys
import threading
from datetime import UTC, datetime

import feedparser
import pytest
from lxml import etree

from feedsvc.catalog import Catalog, load_catalog
from feedsvc.ingest import ingest_document
from feedsvc.render import FORMATS, load_feed, pretty_json, render_feed
from feedsvc.sources import Document

from .conftest import BASE_URL, FEEDS
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


def test_rss_channel_link_is_the_topic_page_not_the_self_link(filled, catalog) -> None:
    rss = etree.fromstring(render_feed(load_feed(filled, catalog, catalog.all_topic), "rss"))
    channel = rss.find("channel")
    assert channel.findtext("link") == catalog.site.url("topics/all.html")
    self_link = channel.find(f"{ATOM}link")
    assert self_link.get("rel") == "self"
    assert self_link.get("href") == catalog.site.url("feeds/all.rss")


def test_atom_links_keep_rel_and_type(filled, catalog) -> None:
    atom = etree.fromstring(render_feed(load_feed(filled, catalog, catalog.all_topic), "atom"))
    feed_links = {link.get("rel"): link for link in atom.findall(f"{ATOM}link")}
    assert feed_links["self"].get("href") == catalog.site.url("feeds/all.atom")
    assert feed_links["self"].get("type") == "application/atom+xml"
    assert feed_links["alternate"].get("href") == catalog.site.url("topics/all.html")
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


def test_a_headline_entry_carries_the_headline_as_its_text(filled, catalog) -> None:
    """Readers show an entry's summary or description as its body: without one a headline is
    an empty entry (rss2email mails just a URL)."""
    feed = load_feed(filled, catalog, catalog.all_topic)
    headlines = [item for item in feed.items if not item.content]
    assert headlines and len(headlines) < len(feed.items)
    by_id = {item.id: item for item in headlines}
    for extension in ("rss", "atom"):
        parsed = feedparser.parse(render_feed(feed, extension))
        seen = 0
        for entry in parsed.entries:
            item = by_id.get(entry.id.rsplit("/", 1)[1])
            if item:
                assert entry.summary == item.title, extension
                seen += 1
        assert seen == len(headlines), extension
    document = json.loads(render_feed(feed, "json"))
    texts = {
        entry["id"].rsplit("/", 1)[1]: entry.get("content_text") for entry in document["items"]
    }
    assert all(texts[item.id] == item.title for item in headlines)


LITERAL = 'The <b>bold</b> tag & "&amp;" are words here, 3 < 4.'


def test_rss_description_is_html_showing_the_plain_text_atom_and_json_stay_plain(
    store, catalog
) -> None:
    """RSS readers read description as HTML: the plain summary goes in escaped, so a reader
    shows "<b>bold</b>" as those characters, not in bold. Atom (type text) and JSON Feed
    carry the text itself."""
    document = f"Council publishes its style guide\n{LITERAL}\nA second paragraph.\n"
    ingest_document(store, catalog, Document("x.txt", document.encode(), "wire"))
    feed = load_feed(store, catalog, catalog.all_topic)
    rss = etree.fromstring(render_feed(feed, "rss"))
    description = rss.findtext("channel/item/description")
    assert description == html.escape(LITERAL, quote=False)
    assert "<b>" not in description
    entry = feedparser.parse(render_feed(feed, "rss")).entries[0]
    assert entry.summary_detail.type == "text/html" and html.unescape(entry.summary) == LITERAL
    assert "<b>" not in entry.summary  # a reader rendering it shows no bold
    atom = etree.fromstring(render_feed(feed, "atom"))
    (summary,) = atom.iter(f"{ATOM}summary")
    assert summary.get("type") in (None, "text") and summary.text == LITERAL
    assert feedparser.parse(render_feed(feed, "atom")).entries[0].summary == LITERAL
    assert json.loads(render_feed(feed, "json"))["items"][0]["summary"] == LITERAL


SY = "{http://purl.org/rss/1.0/modules/syndication/}"
PERIOD_SECONDS = {"hourly": 3600, "daily": 86_400, "weekly": 604_800}


@pytest.mark.parametrize("max_age", [300, 30, 90, 3600, 7000, 86_400, 100_000])
def test_ttl_and_update_schedule_say_what_max_age_says(store, tmp_path, max_age) -> None:
    catalog = catalog_with(tmp_path, max_age)
    feed = load_feed(store, catalog, catalog.all_topic)
    channel = etree.fromstring(render_feed(feed, "rss")).find("channel")
    atom = etree.fromstring(render_feed(feed, "atom"))
    assert int(channel.findtext("ttl")) == max(1, max_age // 60)  # minutes, as caches round
    for parent in (channel, atom):
        period = parent.findtext(f"{SY}updatePeriod")  # lower case, as the module spells it
        frequency = int(parent.findtext(f"{SY}updateFrequency"))
        assert parent.find(f"{SY}UpdatePeriod") is None
        # Polls as often as the cache allows, never more often, at most twice as slow.
        interval = PERIOD_SECONDS[period] / frequency
        assert max_age <= interval < 2 * max_age
    if max_age == 300:
        assert (channel.findtext("ttl"), channel.findtext(f"{SY}updatePeriod")) == ("5", "hourly")
        assert channel.findtext(f"{SY}updateFrequency") == "12"


def test_max_age_zero_announces_no_schedule(store, tmp_path) -> None:
    catalog = catalog_with(tmp_path, 0)
    data = render_feed(load_feed(store, catalog, catalog.all_topic), "rss")
    assert b"<ttl>" not in data and b"updatePeriod" not in data


def catalog_with(tmp_path, max_age: int) -> Catalog:
    """The repository's catalogue with another max_age."""
    feeds = shutil.copytree(FEEDS, tmp_path / "feeds", ignore=shutil.ignore_patterns("samples"))
    site = (feeds / "site.toml").read_text()
    (feeds / "site.toml").write_text(re.sub(r"(?m)^max_age = \d+$", f"max_age = {max_age}", site))
    catalog = load_catalog(feeds, BASE_URL)
    assert catalog.site.max_age == max_age
    return catalog


@pytest.mark.parametrize(
    "value",
    [
        {"title": 'Quotes " and \\ and\nnew line, \u2028 and é', "items": [], "hubs": {}},
        {"items": [{"id": "a", "tags": ["x", "y"], "size": 12, "ratio": 0.5, "ok": True}]},
        {"nested": {"deeper": {"list": [[], {}, [1, [2, [None]]], ("a", "b")]}}},
        [],
        {},
        "plain",
        -7,
        None,
    ],
)
def test_pretty_json_is_json_dumps_with_an_indent(value) -> None:
    """The JSON Feed writer's own pretty printer gives json's bytes exactly."""
    assert pretty_json(value) == json.dumps(value, ensure_ascii=False, indent=2)
