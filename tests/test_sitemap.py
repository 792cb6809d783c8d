"""Sitemaps: `/sitemap.xml` (the sitemaps protocol 0.9; an index of files past 50,000 URLs),
`/sitemap-news.xml` (Google News) and `/robots.txt`, validated against the protocol's schemas
(tests/data/sitemaps/, written out from the published definitions) and Google News' rules."""

from __future__ import annotations

import fcntl
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lxml import etree

from bench.gen import documents
from feedsvc.catalog import Catalog
from feedsvc.config import Settings
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.render import item_path, topic_path
from feedsvc.site import NEWS_SITEMAP, ROBOTS, SITEMAP, SITEMAP_PAGES, SiteMap, sitemap_part
from feedsvc.sitemap import MAX_URLS, news_language, w3c_datetime
from feedsvc.sources import Document
from feedsvc.static import build_site
from feedsvc.store import Store
from feedsvc.web import create_app

from .conftest import BASE_URL, DATA, FEEDS, TOKEN, Clock

SCHEMAS = DATA / "sitemaps"
NS = {
    "s": "http://www.sitemaps.org/schemas/sitemap/0.9",
    "news": "http://www.google.com/schemas/sitemap-news/0.9",
}


def schema(name: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(SCHEMAS / name)))


URLSET, INDEX, NEWS = schema("sitemap.xsd"), schema("siteindex.xsd"), schema("news-check.xsd")


def valid(data: bytes, against: etree.XMLSchema) -> etree._Element:
    """The parsed document, after checking it against a schema (the errors, when not)."""
    root = etree.fromstring(data)
    assert against.validate(root), against.error_log
    return root


def locs(root: etree._Element) -> list[str]:
    return root.xpath("//s:loc/text()", namespaces=NS)


def lastmods(root: etree._Element) -> dict[str, str]:
    return {
        url.findtext("s:loc", namespaces=NS): url.findtext("s:lastmod", namespaces=NS)
        for url in root.xpath("/s:urlset/s:url", namespaces=NS)
    }


def jsonl(store: Store, catalog: Catalog, *records: dict) -> None:
    text = "\n".join(json.dumps(record) for record in records)
    ingest_document(store, catalog, Document("doc.jsonl", text.encode(), "jsonl"))


def news(data: bytes) -> list[dict[str, str]]:
    """The news sitemap's articles, checked against Google News' documented rules."""
    root = valid(data, NEWS)
    urls = root.xpath("/s:urlset/s:url", namespaces=NS)
    assert len(urls) <= 1000
    articles = []
    for url in urls:
        entry = url.find("news:news", namespaces=NS)
        assert entry is not None
        articles.append(
            {
                "loc": url.findtext("s:loc", namespaces=NS),
                "name": entry.findtext("news:publication/news:name", namespaces=NS),
                "language": entry.findtext("news:publication/news:language", namespaces=NS),
                "date": entry.findtext("news:publication_date", namespaces=NS),
                "title": entry.findtext("news:title", namespaces=NS),
            }
        )
    dates = [datetime.fromisoformat(article["date"]) for article in articles]
    assert not dates or max(dates) - min(dates) <= timedelta(days=2)
    return articles


# -- /sitemap.xml ------------------------------------------------------------------------------


def test_sitemap_lists_every_page_dated_by_the_store(filled, catalog, client, clock) -> None:
    response = client.get("/sitemap.xml")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    root = valid(response.data, URLSET)
    items = filled.newest("all", 1000)
    expected = {BASE_URL, *(BASE_URL + topic_path(t.slug) for t in catalog.feeds)}
    expected |= {BASE_URL + item_path(item.id) for item in items}
    assert sorted(locs(root)) == sorted(expected)  # each once
    dates = lastmods(root)
    for item in items:
        assert dates[BASE_URL + item_path(item.id)] == w3c_datetime(item.updated)
    assert dates[BASE_URL] == w3c_datetime(filled.last_updated())
    # Each page's lastmod is the Last-Modified it is served with.
    for url, stamp in dates.items():
        page = client.get("/" + (url.removeprefix(BASE_URL) or ""))
        served = page.last_modified.astimezone(UTC)
        assert stamp == w3c_datetime(served), url
    clock.advance(days=30)  # dates follow the store, never the clock
    assert client.get("/sitemap.xml").data == response.data


def test_withdrawn_and_held_items_are_in_no_sitemap(filled, catalog, client, clock) -> None:
    victim = filled.newest("all", 1)[0]
    filled.kill([victim.id], "wrong name", "cli")
    due = clock.now + timedelta(hours=3)
    jsonl(
        filled, catalog, {"id": "emb-1", "title": "Embargoed results", "published": due.isoformat()}
    )
    assert filled.held()["all"] == 1
    everything = client.get("/sitemap.xml").data + client.get("/sitemap-news.xml").data
    assert b"items/emb-1.html" not in everything
    assert f"items/{victim.id}.html".encode() not in everything
    assert client.get(f"/items/{victim.id}.html").status_code == 410  # its page says so


def test_sitemap_answers_conditional_requests(filled, client) -> None:
    for path in ("/sitemap.xml", "/sitemap-news.xml", "/robots.txt"):
        gzipped = client.get(path, headers={"Accept-Encoding": "gzip"})
        assert gzipped.headers["Content-Encoding"] == "gzip"
        plain = client.get(path)
        assert client.get(path, headers={"If-None-Match": plain.headers["ETag"]}).status_code == 304
        since = {"If-Modified-Since": plain.headers["Last-Modified"]}
        assert client.get(path, headers=since).status_code == 304
        assert client.head(path).headers["Content-Length"] == str(len(plain.data))


# -- /sitemap-news.xml -------------------------------------------------------------------------


def test_news_sitemap_holds_the_two_days_up_to_the_newest_item(
    store, catalog, client, clock
) -> None:
    newest = clock.now - timedelta(hours=1)
    records = [
        {
            "id": f"n{hours}",
            "title": f"Story {hours} hours before & <after>",
            "content": "Text.",
            "published": (newest - timedelta(hours=hours)).isoformat(),
        }
        for hours in (0, 5, 47, 48, 49, 80)
    ]
    jsonl(store, catalog, *records)
    response = client.get("/sitemap-news.xml")
    assert response.headers["Content-Type"] == "application/xml; charset=utf-8"
    articles = news(response.data)
    # 48 hours before the newest is in (the window's edge), 49 is not.
    assert [a["loc"] for a in articles] == [f"{BASE_URL}items/n{h}.html" for h in (0, 5, 47, 48)]
    assert {a["name"] for a in articles} == {catalog.site.title}
    assert {a["language"] for a in articles} == {news_language(catalog.site.language)}
    assert articles[0]["title"] == "Story 0 hours before & <after>"
    assert articles[0]["date"] == w3c_datetime(newest)
    clock.advance(days=10)  # the clock is not the window: a later build is the same
    assert client.get("/sitemap-news.xml").data == response.data


def test_news_sitemap_holds_at_most_a_thousand_articles(store, catalog, client, clock) -> None:
    start = clock.now - timedelta(hours=10)
    jsonl(
        store,
        catalog,
        *(
            {
                "id": f"a{n:04d}",
                "title": f"Brief number {n}",
                "published": (start + timedelta(seconds=n)).isoformat(),
            }
            for n in range(1005)
        ),
    )
    articles = news(client.get("/sitemap-news.xml").data)
    assert len(articles) == 1000
    assert articles[0]["loc"] == f"{BASE_URL}items/a1004.html"  # the newest thousand
    assert articles[-1]["loc"] == f"{BASE_URL}items/a0005.html"


def test_an_empty_store_has_valid_sitemaps(store, client) -> None:
    valid(client.get("/sitemap.xml").data, URLSET)  # the home and topic pages
    # No article yet: the home page alone (a URL set may not be empty), with no news entry.
    home = valid(client.get("/sitemap-news.xml").data, NEWS)
    assert locs(home) == [BASE_URL] and not home.xpath("//news:news", namespaces=NS)


@pytest.mark.parametrize(
    ("language", "code"),
    [
        ("en", "en"),
        ("en-GB", "en"),
        ("pt-BR", "pt"),
        ("zh-CN", "zh-cn"),
        ("zh-TW", "zh-tw"),
        ("zh-Hant", "zh"),
        ("fil", "fil"),
        ("x", "und"),
    ],
)
def test_news_language_is_an_iso_639_code(language: str, code: str) -> None:
    assert news_language(language) == code


# -- /robots.txt -------------------------------------------------------------------------------


def test_robots_allows_all_and_names_both_sitemaps(filled, client) -> None:
    response = client.get("/robots.txt")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.data.decode().splitlines() == [
        "User-agent: *",
        "Allow: /",
        "",
        f"Sitemap: {BASE_URL}sitemap.xml",
        f"Sitemap: {BASE_URL}sitemap-news.xml",
    ]


def test_static_build_writes_the_sitemaps_as_served(filled, catalog, client, tmp_path) -> None:
    build_site(filled, catalog, tmp_path / "site")
    for path in (SITEMAP, NEWS_SITEMAP, ROBOTS):
        data = (tmp_path / "site" / path).read_bytes()
        assert client.get(f"/{path}").data == data, path
    assert not (tmp_path / "site" / "sitemaps").exists()  # one file is enough here


# -- more than 50,000 pages: an index of sitemap files ------------------------------------------

BIG = MAX_URLS + 10  # items: with the home and topic pages, more than one file holds


def build_big(path: Path, catalog: Catalog) -> None:
    store = open_filed_store(str(path), catalog, Clock(), create=True)
    with store.batch():
        for document in documents(BIG, per_doc=5000):
            ingest_document(store, catalog, document)
    store.close()  # the last connection: SQLite folds the WAL into the file


@pytest.fixture(scope="module")
def big(
    tmp_path_factory: pytest.TempPathFactory, worker_id: str, repo_catalog: Catalog
) -> tuple[Store, Catalog, Clock, Path]:
    """A SQLite store of generated wire items, more than one sitemap file holds (some 15 s to
    make). Under xdist the first worker here makes it, under a lock, in the run's directory
    (shared by the workers); each test module opens its own copy (a test here writes to it)."""
    path = tmp_path_factory.mktemp("big") / "store.sqlite3"
    if worker_id == "master":  # not under xdist
        build_big(path, repo_catalog)
    else:
        shared = tmp_path_factory.getbasetemp().parent / "sitemap-big"
        shared.mkdir(exist_ok=True)
        with (shared / "lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
            if not (shared / "made").exists():
                build_big(shared / "store.sqlite3", repo_catalog)
                (shared / "made").touch()
        shutil.copyfile(shared / "store.sqlite3", path)
    clock = Clock()
    store = open_filed_store(str(path), repo_catalog, clock)
    yield store, repo_catalog, clock, path
    store.close()


def test_past_50000_urls_the_sitemap_is_an_index_of_files(big) -> None:
    store, catalog, clock, path = big
    settings = Settings(db=str(path), feeds_dir=FEEDS, base_url=BASE_URL, token=TOKEN)
    client = create_app({"SETTINGS": settings, "CLOCK": clock, "TESTING": True, "CATALOG": catalog})
    client = client.test_client()
    site = SiteMap(catalog)
    index = valid(client.get("/sitemap.xml").data, INDEX)
    files = [SITEMAP_PAGES, sitemap_part(0), sitemap_part(1)]
    assert locs(index) == [BASE_URL + path for path in files]
    assert site.sitemap_paths(store) == files
    seen: list[str] = []
    for name in files:
        response = client.get(f"/{name}")
        assert (
            response.status_code == 200
            and response.headers["Content-Type"] == "application/xml; charset=utf-8"
        )
        assert response.data == site.render(store, name).body  # the static build's bytes
        assert len(response.data) < 50 * 1024 * 1024
        urls = locs(valid(response.data, URLSET))
        assert len(urls) <= MAX_URLS
        if name == sitemap_part(0):  # its archive place's items, newest first, as the store has
            listed = store.archive_page("all", 0, site.sitemap_size)
            assert urls == [BASE_URL + item_path(item.id) for item in listed]
        seen += urls
    assert len(seen) == len(set(seen))
    pages = {BASE_URL, *(BASE_URL + topic_path(t.slug) for t in catalog.feeds)}
    items = {BASE_URL + item_path(item_id) for item_id in store.item_ids()}
    assert set(seen) == pages | items and len(items) == BIG
    assert client.get("/sitemaps/2.xml").status_code == 404
    assert client.get("/sitemaps/01.xml").status_code == 404


def test_a_full_sitemap_file_keeps_its_bytes(big) -> None:
    store, catalog, clock, _ = big
    site = SiteMap(catalog)
    full = site.render(store, sitemap_part(0)).body
    last = site.render(store, sitemap_part(1)).body
    generation = store.generation()
    clock.advance(hours=1)
    ingest_document(store, catalog, Document("late.txt", b"-\nA late headline\n", "wire"))
    assert site.render(store, sitemap_part(0)).body == full  # a new item: the last file only
    assert site.render(store, sitemap_part(1)).body != last
    assert site.sitemap_changes(store, generation) == [SITEMAP_PAGES, sitemap_part(1)]
    # A withdrawn item leaves its file (and a static build rewrites every file once).
    victim = store.archive_page("all", 0, MAX_URLS)[-1]
    store.kill([victim.id], None, "cli")
    after = site.render(store, sitemap_part(0)).body
    assert f"items/{victim.id}.html".encode() not in after and after != full
