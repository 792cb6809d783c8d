"""The live app: routes and HTTP semantics, each checked with the fast path and with Flask alone
(the `app` fixture runs every test twice)."""

from __future__ import annotations

import gzip
import re
import time
from dataclasses import replace
from datetime import timedelta
from xml.etree import ElementTree

import feedparser
import lxml.html
import pytest
from flask import request
from werkzeug.http import http_date, parse_date

from feedsvc.catalog import load_catalog
from feedsvc.ingest import ingest_document
from feedsvc.render import FORMATS
from feedsvc.sources import Document
from feedsvc.store import open_store as open_engine
from feedsvc.web import create_app

from .conftest import BASE_URL, FEEDS, TOKEN, app_config


def renders(client) -> int:
    return client.get("/healthz").json["renders"]


@pytest.mark.parametrize("extension", list(FORMATS))
@pytest.mark.both_paths
def test_feed_has_type_and_caching_headers(filled, client, catalog, extension) -> None:
    response = client.get(f"/feeds/all.{extension}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == f"{FORMATS[extension].media_type}; charset=utf-8"
    assert response.headers["Cache-Control"] == f"public, max-age={catalog.site.max_age}"
    assert response.headers["Vary"] == "Accept-Encoding"
    assert response.headers["ETag"].startswith('"')
    assert int(response.headers["Content-Length"]) == len(response.data)
    assert parse_date(response.headers["Last-Modified"]) is not None


def test_feed_over_http_has_the_entries_of_the_store(filled, client) -> None:
    parsed = feedparser.parse(client.get("/feeds/all.atom").data)
    assert not parsed.bozo
    assert [e.title for e in parsed.entries] == [i.title for i in filled.newest("all", 50)]


@pytest.mark.both_paths
def test_if_none_match_gives_304(filled, client) -> None:
    etag = client.get("/feeds/world.rss").headers["ETag"]
    response = client.get("/feeds/world.rss", headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.data == b""
    assert response.headers["ETag"] == etag
    assert client.get("/feeds/world.rss", headers={"If-None-Match": '"other"'}).status_code == 200
    weak = client.get("/feeds/world.rss", headers={"If-None-Match": f'W/{etag}, "x"'})
    assert weak.status_code == 304


@pytest.mark.both_paths
def test_if_modified_since_at_or_after_last_modified_gives_304(filled, client) -> None:
    last_modified = parse_date(client.get("/feeds/all.atom").headers["Last-Modified"])
    for moment, status in (
        (last_modified, 304),
        (last_modified + timedelta(seconds=30), 304),  # a reader's clock, not our date
        (last_modified - timedelta(seconds=1), 200),
    ):
        response = client.get("/feeds/all.atom", headers={"If-Modified-Since": http_date(moment)})
        assert response.status_code == status


@pytest.mark.both_paths
def test_if_none_match_wins_over_if_modified_since(filled, client) -> None:
    response = client.get("/feeds/all.atom")
    headers = {"If-None-Match": '"stale"', "If-Modified-Since": response.headers["Last-Modified"]}
    assert client.get("/feeds/all.atom", headers=headers).status_code == 200


@pytest.mark.both_paths
def test_gzip_when_accepted(filled, client) -> None:
    plain = client.get("/feeds/all.rss")
    zipped = client.get("/feeds/all.rss", headers={"Accept-Encoding": "br, gzip;q=0.8"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == plain.data
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    refused = client.get("/feeds/all.rss", headers={"Accept-Encoding": "gzip;q=0"})
    assert "Content-Encoding" not in refused.headers
    again = client.get("/feeds/all.rss", headers={"If-None-Match": zipped.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.both_paths
def test_head_has_headers_and_no_body(filled, client) -> None:
    get = client.get("/feeds/all.json")
    head = client.head("/feeds/all.json")
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == get.headers["Content-Length"]
    assert head.headers["ETag"] == get.headers["ETag"]


def test_feed_changes_after_an_ingest_by_another_process(
    filled, client, settings, catalog, clock
) -> None:
    first = client.get("/feeds/all.atom")
    writer = open_engine(settings.db, clock)
    clock.advance(hours=1)
    ingest_document(writer, catalog, Document("late.txt", b"-\nLate night headline\n", "wire"))
    second = client.get("/feeds/all.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert feedparser.parse(second.data).entries[0].title == "Late night headline"


def test_fast_path_answers_feeds_without_flask(filled, settings, catalog, clock) -> None:
    fast = create_app(app_config(settings, catalog, CLOCK=clock, TESTING=True, FASTPATH=True))
    reached_flask: list[str] = []
    fast.before_request(lambda: reached_flask.append(request.full_path))
    client = fast.test_client()
    for extension in FORMATS:
        assert client.get(f"/feeds/all.{extension}").status_code == 200
        assert client.head(f"/feeds/world.{extension}").status_code == 200
    assert reached_flask == []
    assert client.get("/feeds/all.rss?limit=2").status_code == 200  # parameters too
    assert reached_flask == []
    # What the fast path does not answer still reaches Flask (the hook does record).
    assert client.get("/feeds/all.rss?limit=0").status_code == 400
    assert client.get("/feeds/nope.rss").status_code == 404
    assert reached_flask == ["/feeds/all.rss?limit=0", "/feeds/nope.rss?"]


@pytest.mark.both_paths
def test_steady_state_does_not_render(filled, client) -> None:
    client.get("/feeds/all.rss")
    before = renders(client)
    for _ in range(20):
        client.get("/feeds/all.rss")
        client.get("/feeds/all.rss", headers={"Accept-Encoding": "gzip"})
    assert renders(client) == before


@pytest.mark.both_paths
def test_unknown_topic_format_and_item_are_404(filled, client) -> None:
    for path in (
        "/feeds/nope.rss",
        "/feeds/all.xml",
        "/feeds/all",
        "/items/zzzz.html",
        "/items/../feeds/all.rss",
        "/nothing",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.mimetype == "text/plain" and len(response.data) < 200


@pytest.mark.both_paths
def test_bad_limit_is_400_and_good_limit_trims(filled, client) -> None:
    assert client.get("/feeds/all.rss?limit=abc").status_code == 400
    assert client.get("/feeds/all.rss?limit=0").status_code == 400
    parsed = feedparser.parse(client.get("/feeds/all.rss?limit=3").data)
    assert len(parsed.entries) == 3


@pytest.mark.both_paths
def test_wrong_method_is_405(filled, client) -> None:
    response = client.post("/feeds/all.rss")
    assert response.status_code == 405 and b"Traceback" not in response.data
    # 405 only where a resource is: a path the site does not have is 404 whatever the method
    # (the topics' rules match the catalogue's slugs and formats, not any name).
    assert client.post("/topics/sport.html").status_code == 405
    for path in ("/feeds/nope.rss", "/feeds/all.xml", "/topics/nope.html"):
        assert client.post(path).status_code == 404, path


def test_index_lists_topics_and_autodiscovery(filled, client, catalog) -> None:
    page = client.get("/").get_data(as_text=True)
    for topic in catalog.feeds:
        for extension, fmt in FORMATS.items():
            url = catalog.site.url(f"feeds/{topic.slug}.{extension}")
            assert f'<link rel="alternate" type="{fmt.media_type}"' in page
            assert url in page
    assert client.get("/index.html").data == client.get("/").data


def test_item_page_and_opml(filled, client, catalog) -> None:
    item = filled.newest("all", 1)[0]
    page = client.get(f"/items/{item.id}.html")
    assert page.status_code == 200 and page.mimetype == "text/html"
    opml = client.get("/feeds.opml")
    assert opml.status_code == 200 and opml.mimetype == "text/x-opml"
    root = ElementTree.fromstring(opml.data)
    assert root.tag == "opml" and root.get("version") == "2.0"
    # One subscription per topic and `other`, not `all`: a reader importing the list gets
    # every item, and none twice under one guid in two lists of `all` and a topic.
    urls = [outline.get("xmlUrl") for outline in root.iter("outline")]
    slugs = [*(topic.slug for topic in catalog.topics), "other"]
    assert urls == [catalog.site.url(f"feeds/{slug}.rss") for slug in slugs]
    for url in urls:
        assert client.get(url.removeprefix(catalog.site.base_url.rstrip("/"))).status_code == 200


def test_healthz_reports_store(filled, client) -> None:
    health = client.get("/healthz").json
    assert health["status"] == "ok" and health["items"] > 0 and health["generation"] > 0


def test_api_ingest_shows_in_next_response(filled, client) -> None:
    response = client.post(
        "/api/items",
        data="-\nSubmarine cable repaired off the cape\n",
        content_type="text/plain",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 200 and response.json["new"] == 1
    parsed = feedparser.parse(client.get("/feeds/all.atom").data)
    assert parsed.entries[0].title == "Submarine cable repaired off the cape"


@pytest.mark.parametrize("fastpath", [True, False])
def test_access_log_is_one_escaped_line_per_request(filled, settings, clock, capfd, fastpath):
    logged = create_app(
        {
            "SETTINGS": replace(settings, access_log=True),
            "CLOCK": clock,
            "TESTING": True,
            "FASTPATH": fastpath,
        }
    ).test_client()
    capfd.readouterr()
    size = len(logged.get("/feeds/all.rss").data)
    logged.get("/items/%0Aforged%22.html?x=1")
    logged.post("/api/items", data="x", headers={"Authorization": f"Bearer {TOKEN}"})
    logged.get("/items/caf%C3%A9.html")
    lines = _logged_lines(capfd, 4)
    assert len(lines) == 4, lines
    clf = re.compile(
        r'127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:[\d:]{8} \+0000\] "(.*)" (\d{3}) (\S+)'
    )
    parsed = [clf.fullmatch(line) for line in lines]
    assert all(parsed), lines
    assert parsed[0].groups() == ("GET /feeds/all.rss HTTP/1.1", "200", str(size))
    assert parsed[1].group(1) == 'GET /items/\\nforged\\".html?x=1 HTTP/1.1'
    assert parsed[2].group(2) == "415"
    assert parsed[3].group(1) == "GET /items/caf\\xc3\\xa9.html HTTP/1.1"  # bytes, as nginx logs
    assert TOKEN not in "\n".join(lines)


def _logged_lines(capfd, expected: int) -> list[str]:
    """The access log's lines, waiting for its buffer to be flushed (at most every 50 ms)."""
    out = ""
    deadline = time.monotonic() + 2
    while out.count("\n") < expected and time.monotonic() < deadline:
        time.sleep(0.01)
        out += capfd.readouterr().out
    return out.splitlines()


def test_opml_subscriptions_reach_every_item_once_per_topic(filled, client, settings) -> None:
    """A reader importing the OPML list gets every stored item (`other` holds those no topic
    took), no subscription to `all`, and no guid in two subscriptions: an item filed under two
    topics has an id per topic feed, as readers keying by guid show each guid in one feed."""
    writer = open_engine(settings.db)
    unmatched = b"-\nZorblat quuxes the blue vexillum at dawn\n"
    ingest_document(writer, load_catalog(FEEDS, BASE_URL), Document("odd.txt", unmatched, "wire"))
    writer.close()
    # PostgreSQL tells the app of the commit by NOTIFY: wait until its feeds show it.
    deadline = time.monotonic() + 5
    while b"Zorblat" not in client.get("/feeds/other.rss").data:
        assert time.monotonic() < deadline, "the app never saw the other process's ingest"
        time.sleep(0.01)
    root = ElementTree.fromstring(client.get("/feeds.opml").data)
    seen: list[str] = []
    filed: set[str] = set()
    for outline in root.iter("outline"):
        path = outline.get("xmlUrl").removeprefix(BASE_URL.rstrip("/"))
        assert path != "/feeds/all.rss"
        slug = path.removeprefix("/feeds/").removesuffix(".rss")
        ids = [entry.id for entry in feedparser.parse(client.get(path).data).entries]
        prefix = f"tag:feedsvc.example,2026:feeds/{slug}/items/"
        assert all(entry_id.startswith(prefix) for entry_id in ids), slug
        seen += ids
        filed |= {entry_id.removeprefix(prefix) for entry_id in ids}
    assert len(seen) == len(set(seen))  # a guid is never in two subscriptions (newsboat)
    store = open_engine(settings.db)
    assert filed == {item.id for item in store.newest("all", 1000)}
    assert store.counts()["other"] > 0  # items no topic rule matches
    other = feedparser.parse(client.get("/feeds/other.atom").data).entries
    assert all([tag.term for tag in entry.tags] == ["other"] for entry in other)


def test_each_topic_has_a_page_the_index_links_to(filled, client, catalog, settings) -> None:
    index = client.get("/").get_data(as_text=True)
    store = open_engine(settings.db)
    for topic in catalog.feeds:
        assert f'href="topics/{topic.slug}.html"' in index
        page = client.get(f"/topics/{topic.slug}.html")
        assert page.status_code == 200 and page.mimetype == "text/html"
        text = page.get_data(as_text=True)
        assert f"<h2>{topic.title}</h2>" in text
        for item in store.newest(topic.slug, 30):
            assert f'href="../items/{item.id}.html"' in text
    assert client.get("/topics/nope.html").status_code == 404
    script = client.get("/feedsvc.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"


def test_a_headline_page_links_its_topics_and_its_first_topics_latest(
    filled, client, catalog, settings
) -> None:
    store = open_engine(settings.db)
    headline = next(
        item for item in store.newest("all", 100) if not item.content and len(item.topics) > 1
    )
    page = lxml.html.document_fromstring(client.get(f"/items/{headline.id}.html").data)
    links = page.xpath("//article//p[@class='meta']/a")
    assert [a.get("href") for a in links] == [f"../topics/{s}.html" for s in headline.topics]
    assert [a.text for a in links] == [catalog.topic(s).title for s in headline.topics]
    (more,) = page.xpath("//section[@id='more']")
    first = catalog.topic(headline.topics[0])
    assert more.get("data-feed") == f"../feeds/{first.slug}.json"  # the script lists it
    assert more.xpath("string(h3)") == f"Latest in {first.title}"
    assert more.xpath("p/a/@href") == [f"../topics/{first.slug}.html"]  # and without script
    assert page.xpath("//head/script/@src") == ["../feedsvc.js"]


@pytest.mark.both_paths
def test_an_item_page_is_rendered_once_per_store_generation(
    filled, client, settings, catalog, clock
) -> None:
    item = open_engine(settings.db).newest("all", 1)[0]
    first = client.get(f"/items/{item.id}.html")
    before = renders(client)
    for _ in range(5):
        assert client.get(f"/items/{item.id}.html").data == first.data
    assert renders(client) == before
    writer = open_engine(settings.db, clock)
    clock.advance(hours=1)
    ingest_document(
        writer, catalog, Document("x.txt", b"-\nFog delays the morning ferry\n", "wire")
    )
    # PostgreSQL tells other connections of a commit by NOTIFY: allow it a moment to arrive.
    deadline = time.monotonic() + 2
    while True:
        assert client.get(f"/items/{item.id}.html").data == first.data
        if renders(client) > before or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    assert renders(client) == before + 1
    assert client.get(f"/items/{item.id}.html").data == first.data
    assert renders(client) == before + 1


def test_item_pages_and_limited_feeds_are_kept_in_a_bounded_lru(filled, settings, clock) -> None:
    app = create_app({"SETTINGS": settings, "CLOCK": clock, "RECENT_CACHED": 3})
    publisher = app.extensions["feedsvc"]
    paths = [f"items/{item.id}.html" for item in publisher.store().newest("all", 5)]
    paths += ["feeds/all.rss?limit=2", "feeds/all.atom?limit=3"]

    def get(path: str) -> None:
        feed, _, query_string = path.partition("?")
        found = publisher.feed_query(feed, query_string) if query_string else publisher.get(path)
        assert found is not None and found.body

    for path in paths:  # 7 resources through a cache of 3
        get(path)
    assert publisher.renders == 7
    get(paths[-1])  # still cached
    get(paths[-3])
    assert publisher.renders == 7
    get(paths[0])  # long evicted: rendered again
    assert publisher.renders == 8
    get(paths[-2])  # the least recently used of the three before: evicted by paths[0]
    assert publisher.renders == 9
