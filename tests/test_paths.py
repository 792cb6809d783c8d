"""The fast path and Flask answer every resource of the site alike (bytes, status, headers),
so the web tests run once, as served, and twice only where the two are meant to differ."""

from __future__ import annotations

from pathlib import Path

from flask import request

from feedsvc.catalog import load_catalog
from feedsvc.config import Settings
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.site import SiteMap
from feedsvc.sources import Document
from feedsvc.web import create_app

from .conftest import SAMPLES, TOKEN, Clock
from .test_history import fill, small_site

# Feeds with parameters the fast path answers itself (searches, filters, a limit).
QUERIES = [
    "feeds/all.atom?q=court+OR+bank",
    "feeds/world.rss?limit=3",
    "feeds/all.json?filter_time=7200",
    "feeds/all.rss?filterout=football",
    "feeds/sport.atom?q=striker&limit=2",
]
# What the fast path leaves to Flask: compared too, they must not differ by who answers.
MISSES = ["feeds/nope.rss", "items/0000000000000000.html", "feeds/all.rss?limit=abc", "nope"]


def answer(client, method: str, path: str, headers: dict[str, str]):
    response = client.open(f"/{path}", method=method, headers=headers)
    return response.status_code, sorted(response.headers.items()), response.data


def test_the_fast_path_answers_every_resource_as_flask_does(tmp_path: Path) -> None:
    feeds = small_site(tmp_path)  # small archive pages: archives exist
    catalog = load_catalog(feeds)
    clock = Clock()
    db = tmp_path / "store.sqlite3"
    store = open_filed_store(db, catalog, clock, create=True)
    for path in sorted(SAMPLES.glob("*.txt")):
        ingest_document(store, catalog, Document(path.name, path.read_bytes(), "wire"))
        clock.advance(hours=1)
    fill(store, catalog, clock, documents=3, per_document=8)
    killed = next(iter(store.item_ids()))
    store.kill([killed], "test", "cli")  # its page: a 410 tombstone
    settings = Settings(db=str(db), feeds_dir=feeds, token=TOKEN)
    config = {"SETTINGS": settings, "CLOCK": clock, "CATALOG": catalog, "TESTING": True}
    fast_app = create_app({**config, "FASTPATH": True})
    reached_flask: list[str] = []
    fast_app.before_request(lambda: reached_flask.append(request.path))
    fast, flask = fast_app.test_client(), create_app({**config, "FASTPATH": False}).test_client()

    site = SiteMap(catalog)
    resources = [*site.paths(store), *site.live_paths()]
    kinds = {path.split("/")[0].split("?")[0] for path in resources}
    assert {"feeds", "topics", "items", "index.html", "feeds.opml", "feedsvc.js"} <= kinds
    assert any("/archive/" in path for path in resources)
    assert f"items/{killed}.html" in resources
    compared = 0
    for path in [*resources, *QUERIES, *MISSES]:
        stamps = dict(answer(flask, "GET", path, {})[1])
        variants: list[dict[str, str]] = [{}, {"Accept-Encoding": "gzip"}]
        if "ETag" in stamps:
            variants += [
                {"If-None-Match": stamps["ETag"]},
                {"If-None-Match": stamps["ETag"], "Accept-Encoding": "gzip"},
                {"If-None-Match": '"other"', "If-Modified-Since": stamps["Last-Modified"]},
            ]
        if "Last-Modified" in stamps:
            variants.append({"If-Modified-Since": stamps["Last-Modified"]})
        for method in ("GET", "HEAD"):
            for headers_sent in variants:
                expected = answer(flask, method, path, headers_sent)
                got = answer(fast, method, path, headers_sent)
                if got[0] == 304:
                    # The one difference known: Werkzeug strips Last-Modified from Flask's
                    # 304s, the fast path keeps it (RFC 9110 15.4.5 allows both).
                    got = (304, [h for h in got[1] if h[0] != "Last-Modified"], got[2])
                assert got == expected, f"{method} /{path} {headers_sent}: fast path differs"
                compared += 1
    assert compared > 500
    # The fast path answered every resource and parameter feed itself (else this proves
    # nothing): only the misses reached Flask.
    assert set(reached_flask) <= {f"/{path.split('?')[0]}" for path in MISSES}
