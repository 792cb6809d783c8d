"""Search over HTTP: query feeds (`?q=`, `filterout=`, `filter_time=`, `limit=`) through the fast
path and through Flask (the `app` fixture runs every test with each), the search page, the
OpenSearch description, and what a static build has of them (nothing)."""

from __future__ import annotations

import gzip
import json
import time
from datetime import timedelta
from urllib.parse import quote

import feedparser
import lxml.html
import pytest
from lxml import etree
from werkzeug.http import parse_date

from feedsvc.ingest import ingest_document
from feedsvc.query import FeedParameters, parse
from feedsvc.render import FORMATS
from feedsvc.sources import Document
from feedsvc.static import build_site
from feedsvc.store import open_store as open_engine
from feedsvc.web import create_app

from .conftest import BASE_URL, SAMPLES, app_config
from .feedcheck import assert_valid_atom, assert_valid_json_feed

OPENSEARCH_NS = "http://a9.com/-/spec/opensearch/1.1/"
HOSTILE = [
    "q=" + quote('"'),
    "q=" + quote("***"),
    "q=" + "x" * 10_000,
    "q=" + quote("a" * 201),
    "q=" + "+".join(f"w{n}" for n in range(17)),
    "q=%00",
    "q=%ff%fe",
    "q=-court",
    "q=court&q=bank",
    "q",
    "utm_source=x",
    "limit=0",
    "limit=abc",
    "limit=51",
    "filter_time=-1",
    "filter_time=1e3",
    "filterout=" + quote("|||"),
    "&".join(f"q{n}=x" for n in range(20)),
]


@pytest.fixture
def filled(app, settings, catalog, clock):
    store = open_engine(settings.db, clock)
    for path in sorted(SAMPLES.glob("*.txt")):
        ingest_document(store, catalog, Document(path.name, path.read_bytes(), "wire"))
        clock.advance(hours=1)
    store.close()
    return app


@pytest.fixture
def store(filled, settings, clock):
    store = open_engine(settings.db, clock)
    yield store
    store.close()


def renders(client) -> int:
    return client.get("/healthz").json["renders"]


def matches(store, topic: str, text: str, limit: int = 50) -> list:
    return store.search(topic, FeedParameters(query=parse(text)), limit)


def read_feed(data: bytes, extension: str) -> tuple[str, list[str]]:
    """A feed's title and entry titles, as a reader sees them (feedparser reads RSS and Atom;
    JSON Feed is checked against its spec)."""
    if extension == "json":
        document = assert_valid_json_feed(data)
        return document["title"], [item["title"] for item in document["items"]]
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.bozo_exception
    return parsed.feed.title, [entry.title for entry in parsed.entries]


# -- query feeds -------------------------------------------------------------------------------


@pytest.mark.parametrize("extension", list(FORMATS))
def test_a_query_feed_holds_the_matches_and_names_the_search(
    filled, client, store, extension
) -> None:
    response = client.get(f"/feeds/world.{extension}?q=Court")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == FORMATS[extension].content_type
    expected = matches(store, "world", "court")
    assert len(expected) >= 2
    title, entries = read_feed(response.data, extension)
    assert entries == [item.title for item in expected]
    assert "search: court" in title and "World" in title
    self_url = f"{BASE_URL}feeds/world.{extension}?q=court"
    if extension == "atom":
        assert_valid_atom(response.data)
        parsed = feedparser.parse(response.data)
        links = {link.rel: link.href for link in parsed.feed.links}
        assert links["self"] == self_url
        assert links["alternate"] == f"{BASE_URL}search?q=court&topic=world"
        assert parsed.feed.id.endswith("feeds/world?q=court")
    elif extension == "json":
        document = assert_valid_json_feed(response.data)
        assert document["feed_url"] == self_url
    else:
        self_links = etree.fromstring(response.data).xpath(
            "//atom:link[@rel='self']/@href", namespaces={"atom": "http://www.w3.org/2005/Atom"}
        )
        assert self_links == [self_url]


def test_equal_searches_share_one_canonical_url_and_one_render(filled, client) -> None:
    first = client.get("/feeds/all.atom?q=COURT+OR+bank&limit=50")
    before = renders(client)
    for spelling in ("q=court%20OR%20bank", "limit=50&q=Court+OR+Bank", "q=court+OR+b%C3%A0nk"):
        again = client.get(f"/feeds/all.atom?{spelling}")
        assert again.data == first.data, spelling
    assert renders(client) == before
    parsed = feedparser.parse(first.data)
    assert parsed.feed.links[0].href == f"{BASE_URL}feeds/all.atom?q=court%20OR%20bank"
    limited = feedparser.parse(client.get("/feeds/all.atom?q=court+OR+bank&limit=2").data)
    assert len(limited.entries) == 2
    assert limited.feed.links[0].href.endswith("?limit=2&q=court%20OR%20bank")


def test_filterout_leaves_items_out_of_a_search_and_of_a_plain_feed(filled, client, store):
    searched = feedparser.parse(client.get("/feeds/world.rss?q=court&filterout=korea|India").data)
    titles = [entry.title for entry in searched.entries]
    assert titles == [i.title for i in matches(store, "world", "court -korea -india")]
    assert titles and not any("Korea" in t or "India" in t for t in titles)
    plain = feedparser.parse(client.get("/feeds/world.rss?filterout=court").data)
    assert plain.entries and not any("Court" in entry.title for entry in plain.entries)
    assert "without: court" in plain.feed.title


@pytest.mark.both_paths
def test_a_query_feed_answers_conditional_requests_and_gzip(filled, client) -> None:
    url = "/feeds/world.atom?q=court"
    response = client.get(url)
    etag = response.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    since = response.headers["Last-Modified"]
    assert client.get(url, headers={"If-Modified-Since": since}).status_code == 304
    zipped = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(zipped.data) == response.data
    head = client.head(url)
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(response.data))
    assert response.headers["Cache-Control"].startswith("public, max-age=")


def test_a_search_with_no_match_is_an_empty_valid_feed(filled, client) -> None:
    for extension in FORMATS:
        response = client.get(f"/feeds/sport.{extension}?q=zzyzx+unmatched")
        assert response.status_code == 200
        assert read_feed(response.data, extension)[1] == []
    assert_valid_atom(client.get("/feeds/sport.atom?q=zzyzx").data)
    assert assert_valid_json_feed(client.get("/feeds/sport.json?q=zzyzx").data)["items"] == []
    assert parse_date(client.get("/feeds/sport.rss?q=zzyzx").headers["Last-Modified"])


@pytest.mark.parametrize("query_string", HOSTILE)
@pytest.mark.both_paths
def test_a_bad_parameter_is_400_with_a_short_text(filled, client, query_string: str) -> None:
    response = client.get(f"/feeds/all.rss?{query_string}")
    assert response.status_code == 400, query_string
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert text.startswith("400 Bad Request: ") and len(text) < 200
    assert "Traceback" not in text


@pytest.mark.parametrize(
    "text", ["court*", '"court', "court:", "(court)", "^court", "+court", "court OR", "côurt -"]
)
def test_other_engines_syntax_is_only_words_here(filled, client, text: str) -> None:
    # Each reduces to the word court: the same canonical feed, byte for byte.
    response = client.get(f"/feeds/all.atom?q={quote(text)}")
    assert response.status_code == 200
    assert response.data == client.get("/feeds/all.atom?q=court").data
    assert feedparser.parse(response.data).entries


@pytest.mark.both_paths
def test_unknown_topic_with_a_query_is_404(filled, client) -> None:
    assert client.get("/feeds/nope.rss?q=court").status_code == 404


def eventually(check, store) -> bool:
    """True once `check()` is: at once on SQLite; on PostgreSQL another connection learns of
    a commit by NOTIFY, which may take a moment."""
    deadline = time.monotonic() + (2.0 if store.location.startswith("postgres") else 0.0)
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_killed_item_leaves_its_searches_at_once_and_unkill_restores_it(
    filled, client, store
) -> None:
    url = "/feeds/world.json?q=court"
    victim = matches(store, "world", "court")[0]
    assert victim.title in client.get(url).get_data(as_text=True)
    store.kill([victim.id], "legal", "cli")
    assert eventually(lambda: victim.title not in client.get(url).get_data(as_text=True), store)
    assert victim.title not in client.get("/search?q=court").get_data(as_text=True)
    store.unkill([victim.id], "cli")
    assert eventually(lambda: victim.title in client.get(url).get_data(as_text=True), store)


def test_a_held_item_is_found_only_after_its_embargo(filled, client, store, catalog, clock):
    due = clock.now + timedelta(minutes=10)
    line = {"id": "emb-9", "title": "Observatory finds comet", "published": due.isoformat()}
    document = Document("e.jsonl", (json.dumps(line) + "\n").encode(), "jsonl")
    assert ingest_document(store, catalog, document).held == 1
    url = "/feeds/all.atom?q=comet"
    assert feedparser.parse(client.get(url).data).entries == []
    clock.advance(minutes=10)
    assert [e.title for e in feedparser.parse(client.get(url).data).entries] == [line["title"]]


def test_filter_time_keeps_recent_items_with_a_cut_off_rounded_to_max_age(
    filled, client, catalog, clock
) -> None:
    # The samples came an hour apart; the newest an hour before now. max_age: 300 s.
    step = catalog.site.max_age
    recent = feedparser.parse(client.get("/feeds/all.atom?filter_time=7200").data)
    everything = feedparser.parse(client.get("/feeds/all.atom").data)
    assert 0 < len(recent.entries) < len(everything.entries)
    assert all(entry.published_parsed for entry in recent.entries)
    before = renders(client)
    clock.advance(seconds=step - 1)  # the same step: the same cut-off, the cached answer
    client.get("/feeds/all.atom?filter_time=7200")
    assert renders(client) == before
    clock.advance(seconds=1)  # the next step: a new cut-off
    client.get("/feeds/all.atom?filter_time=7200")
    assert renders(client) == before + 1
    assert "last 2 hours" in recent.feed.title


def test_query_feeds_are_kept_in_a_bounded_lru(filled, settings, catalog, clock) -> None:
    app = create_app(app_config(settings, catalog, CLOCK=clock, SEARCHES_CACHED=2))
    publisher = app.extensions["feedsvc"]
    queries = ["q=court", "q=bank", "q=court&limit=3"]
    for query_string in queries:
        assert publisher.feed_query("feeds/all.rss", query_string).body
    assert publisher.renders == 3
    publisher.feed_query("feeds/all.rss", queries[-1])  # still kept
    assert publisher.renders == 3
    publisher.feed_query("feeds/all.rss", queries[0])  # the least recently used: gone
    assert publisher.renders == 4


@pytest.mark.both_paths
def test_a_cached_query_feed_is_answered_by_the_fast_path(filled, app, client) -> None:
    seen = []
    app.before_request(lambda: seen.append(1))
    client.get("/feeds/all.atom?q=court")
    client.get("/feeds/all.atom?q=bad&q=twice")
    expected = [1] if app.config["FASTPATH"] else [1, 1]  # the bad one goes to Flask for its 400
    assert seen == expected


# -- the search page and the OpenSearch description --------------------------------------------


def test_the_search_page_lists_the_matches_and_the_three_feeds(filled, client, store) -> None:
    response = client.get("/search?q=Court&topic=world")
    assert response.status_code == 200 and response.mimetype == "text/html"
    page = lxml.html.document_fromstring(response.data)
    titles = [a.text_content() for a in page.xpath("//section[@id='results']//li/a")]
    assert titles == [item.title for item in matches(store, "world", "court")]
    feeds = page.xpath("//section[@id='subscribe']//li/a/@href")
    assert feeds == [f"{BASE_URL}feeds/world.{extension}?q=court" for extension in FORMATS]
    alternates = page.xpath("//head/link[@rel='alternate']/@href")
    assert alternates == feeds
    (box,) = page.xpath("//form[@id='search']//input[@name='q']/@value")
    assert box == "court"
    assert page.xpath("//form[@id='search']//input[@name='topic']/@value") == ["world"]
    assert page.xpath("//head/link[@rel='search']/@href") == [f"{BASE_URL}opensearch.xml"]
    for feed in feeds:  # each link works, and is the canonical URL of its own feed
        assert client.get(feed.removeprefix(BASE_URL.rstrip("/"))).status_code == 200
    assert (
        client.get(
            "/search?q=Court&topic=world", headers={"If-None-Match": response.headers["ETag"]}
        ).status_code
        == 304
    )


def test_the_search_page_without_a_query_is_its_form(filled, client) -> None:
    for url in ("/search", "/search?q=", "/search?q=+++"):
        response = client.get(url)
        assert response.status_code == 200, url
        page = lxml.html.document_fromstring(response.data)
        assert page.xpath("//form[@id='search']") and not page.xpath("//section[@id='results']")


def test_a_search_with_no_match_says_so_and_still_offers_its_feeds(filled, client) -> None:
    page = lxml.html.document_fromstring(client.get("/search?q=zzyzx").data)
    assert page.xpath("string(//section[@id='results']//li)") == "No item matches."
    assert len(page.xpath("//section[@id='subscribe']//li/a")) == len(FORMATS)


@pytest.mark.parametrize(
    ("query_string", "message"),
    [
        ("q=" + quote("***"), "no word to look for"),
        ("q=" + quote("<script>alert(1)</script> -x -y") + "&limit=0", "limit must be"),
        ("q=court&topic=nope", "no such topic"),
        ("q=court&topic=world&topic=sport", "topic is given twice"),
        ("filterout=court", "give q"),
    ],
)
@pytest.mark.both_paths
def test_a_bad_search_is_400_with_the_form_and_why(filled, client, query_string, message) -> None:
    response = client.get(f"/search?{query_string}")
    assert response.status_code == 400 and response.mimetype == "text/html"
    assert b"<script>alert" not in response.data
    page = lxml.html.document_fromstring(response.data)
    assert message in page.xpath("string(//p[@id='error'])")
    assert page.xpath("//form[@id='search']")


def test_the_opensearch_description_leads_to_the_search(filled, client) -> None:
    response = client.get("/opensearch.xml")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == (
        "application/opensearchdescription+xml; charset=utf-8"
    )
    root = etree.fromstring(response.data)
    assert root.tag == f"{{{OPENSEARCH_NS}}}OpenSearchDescription"
    short_name = root.findtext(f"{{{OPENSEARCH_NS}}}ShortName")
    assert short_name and len(short_name) <= 16
    assert root.findtext(f"{{{OPENSEARCH_NS}}}Description")
    templates = {
        url.get("type"): url.get("template") for url in root.iter(f"{{{OPENSEARCH_NS}}}Url")
    }
    assert templates["text/html"] == f"{BASE_URL}search?q={{searchTerms}}"
    assert templates["application/atom+xml"] == f"{BASE_URL}feeds/all.atom?q={{searchTerms}}"
    for media_type, template in templates.items():
        url = template.replace("{searchTerms}", quote("court")).removeprefix(BASE_URL)
        answer = client.get("/" + url)
        assert answer.status_code == 200, template
        assert answer.mimetype == media_type.split(";")[0]
    etag = response.headers["ETag"]
    assert client.get("/opensearch.xml", headers={"If-None-Match": etag}).status_code == 304


def test_a_static_build_has_no_search(filled, store, catalog, client, tmp_path) -> None:
    build_site(store, catalog, tmp_path / "site")
    site = tmp_path / "site"
    assert not (site / "opensearch.xml").exists() and not (site / "search").exists()
    for path in [site / "index.html", *site.glob("topics/*.html"), *site.glob("items/*.html")]:
        data = path.read_bytes()
        # Neither a box nor a link in the bytes: the live app's script adds them, where the
        # site answers /opensearch.xml.
        assert b"<form" not in data and b'rel="search"' not in data, path
        assert b"opensearch" not in data, path
