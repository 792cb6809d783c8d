"""The live app: routes and HTTP semantics, each checked with the fast path and with Flask alone
(the `app` fixture runs every test twice)."""

from __future__ import annotations

import gzip
import re
from dataclasses import replace
from datetime import timedelta
from xml.etree import ElementTree

import feedparser
import pytest
from flask import request
from werkzeug.http import http_date, parse_date

from feedsvc.ingest import ingest_document
from feedsvc.render import FORMATS
from feedsvc.sources import Document
from feedsvc.store import Store
from feedsvc.web import create_app

from .conftest import TOKEN


def renders(client) -> int:
    return client.get("/healthz").json["renders"]


@pytest.mark.parametrize("extension", list(FORMATS))
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


def test_if_none_match_gives_304(filled, client) -> None:
    etag = client.get("/feeds/world.rss").headers["ETag"]
    response = client.get("/feeds/world.rss", headers={"If-None-Match": etag})
    assert response.status_code == 304 and response.data == b""
    assert response.headers["ETag"] == etag
    assert client.get("/feeds/world.rss", headers={"If-None-Match": '"other"'}).status_code == 200
    weak = client.get("/feeds/world.rss", headers={"If-None-Match": f'W/{etag}, "x"'})
    assert weak.status_code == 304


def test_if_modified_since_at_or_after_last_modified_gives_304(filled, client) -> None:
    last_modified = parse_date(client.get("/feeds/all.atom").headers["Last-Modified"])
    for moment, status in (
        (last_modified, 304),
        (last_modified + timedelta(seconds=30), 304),  # a reader's clock, not our date
        (last_modified - timedelta(seconds=1), 200),
    ):
        response = client.get("/feeds/all.atom", headers={"If-Modified-Since": http_date(moment)})
        assert response.status_code == status


def test_if_none_match_wins_over_if_modified_since(filled, client) -> None:
    response = client.get("/feeds/all.atom")
    headers = {"If-None-Match": '"stale"', "If-Modified-Since": response.headers["Last-Modified"]}
    assert client.get("/feeds/all.atom", headers=headers).status_code == 200


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
    writer = Store.open(settings.db_path, clock)
    clock.advance(hours=1)
    ingest_document(writer, catalog, Document("late.txt", b"-\nLate night headline\n", "wire"))
    second = client.get("/feeds/all.atom", headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200
    assert feedparser.parse(second.data).entries[0].title == "Late night headline"


def test_fast_path_answers_feeds_without_flask(filled, settings, clock) -> None:
    fast = create_app({"SETTINGS": settings, "CLOCK": clock, "TESTING": True, "FASTPATH": True})
    reached_flask: list[str] = []
    fast.before_request(lambda: reached_flask.append(request.full_path))
    client = fast.test_client()
    for extension in FORMATS:
        assert client.get(f"/feeds/all.{extension}").status_code == 200
        assert client.head(f"/feeds/world.{extension}").status_code == 200
    assert reached_flask == []
    # What the fast path does not answer still reaches Flask (the hook does record).
    assert client.get("/feeds/all.rss?limit=2").status_code == 200
    assert client.get("/feeds/nope.rss").status_code == 404
    assert reached_flask == ["/feeds/all.rss?limit=2", "/feeds/nope.rss?"]


def test_steady_state_does_not_render(filled, client) -> None:
    client.get("/feeds/all.rss")
    before = renders(client)
    for _ in range(20):
        client.get("/feeds/all.rss")
        client.get("/feeds/all.rss", headers={"Accept-Encoding": "gzip"})
    assert renders(client) == before


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


def test_bad_limit_is_400_and_good_limit_trims(filled, client) -> None:
    assert client.get("/feeds/all.rss?limit=abc").status_code == 400
    assert client.get("/feeds/all.rss?limit=0").status_code == 400
    parsed = feedparser.parse(client.get("/feeds/all.rss?limit=3").data)
    assert len(parsed.entries) == 3


def test_wrong_method_is_405(filled, client) -> None:
    response = client.post("/feeds/all.rss")
    assert response.status_code == 405 and b"Traceback" not in response.data


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
    # One subscription per topic: a reader importing the list gets no duplicates.
    urls = [outline.get("xmlUrl") for outline in root.iter("outline")]
    assert urls == [catalog.site.url(f"feeds/{topic.slug}.rss") for topic in catalog.feeds]
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
    lines = capfd.readouterr().out.splitlines()
    assert len(lines) == 3, lines
    clf = re.compile(
        r'127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:[\d:]{8} \+0000\] "(.*)" (\d{3}) (\S+)'
    )
    parsed = [clf.fullmatch(line) for line in lines]
    assert all(parsed), lines
    assert parsed[0].groups() == ("GET /feeds/all.rss HTTP/1.1", "200", str(size))
    assert parsed[1].group(1) == 'GET /items/\\nforged\\".html?x=1 HTTP/1.1'
    assert parsed[2].group(2) == "415"
    assert TOKEN not in "\n".join(lines)
