"""Archived feeds (RFC 5005), WebSub hubs in feeds and headers, and withdrawn items as readers
and static hosts see them: through the live app (fast path and Flask) and a static build."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path

import feedparser
import pytest

from feedsvc.catalog import ALL, load_catalog
from feedsvc.config import Settings
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.model import item_id as item_id_of
from feedsvc.render import FORMATS
from feedsvc.sources import Document
from feedsvc.static import build_site
from feedsvc.web import create_app

from .conftest import BASE_URL, FEEDS, TOKEN, Clock
from .feedcheck import assert_valid_atom, assert_valid_json_feed
from .hub import Hub

ENTRIES, PAGE = 20, 7
SPORT_WORDS = "Striker scores twice as league leaders win"


def small_site(tmp_path: Path, hubs: list[str] = ()) -> Path:
    """The repository's topics with small feeds and archive pages, and maybe hubs."""
    feeds = tmp_path / "feeds"
    shutil.copytree(FEEDS, feeds, ignore=shutil.ignore_patterns("samples"))
    site = (feeds / "site.toml").read_text()
    site = site.replace("entries_per_feed = 50", f"entries_per_feed = {ENTRIES}")
    site += f"archive_page_size = {PAGE}\nbase_url = {json.dumps(BASE_URL)}\n"
    if hubs:
        site += f"hubs = {json.dumps(list(hubs))}\n"
    (feeds / "site.toml").write_text(site)
    return feeds


def fill(store, catalog, clock, documents: int, per_document: int) -> None:
    """New items (each call's titles differ from every earlier call's)."""
    first = store.counts().get(ALL, 0)
    for d in range(documents):
        lines = [f"-\n{SPORT_WORDS}, round {first}-{d}-{k}\n" for k in range(per_document)]
        ingest_document(store, catalog, Document(f"{d}.txt", "".join(lines).encode(), "wire"))
        clock.advance(minutes=3)


@pytest.fixture
def history(request, tmp_path):
    """A small site's store, catalogue, clock and a client of the app as served (fast path in
    front; a test parametrizes `history` indirectly to run on Flask alone too)."""
    clock = Clock()
    feeds = small_site(tmp_path)
    catalog = load_catalog(feeds)
    db = tmp_path / "store.sqlite3"
    store = open_filed_store(db, catalog, clock, create=True)
    settings = Settings(db=str(db), feeds_dir=feeds, token=TOKEN)
    app = create_app(
        {
            "SETTINGS": settings,
            "CLOCK": clock,
            "CATALOG": catalog,
            "TESTING": True,
            "FASTPATH": getattr(request, "param", "fastpath") == "fastpath",
        }
    )
    return store, catalog, clock, app.test_client()


def follow(client, url: str) -> tuple[list[str], list[str]]:
    """Entry ids of a feed and of every archive page reached by prev-archive, and the URLs."""
    ids, seen = [], []
    while url:
        seen.append(url)
        response = client.get(url.removeprefix(BASE_URL.rstrip("/")))
        assert response.status_code == 200, url
        parsed = feedparser.parse(response.data)
        assert not parsed.bozo, (url, parsed.bozo_exception)
        ids.extend(entry.id for entry in parsed.entries)
        older = [link.href for link in parsed.feed.links if link.rel == "prev-archive"]
        url = older[0] if older else ""
    return ids, seen


@pytest.mark.parametrize("extension", ["atom", "rss"])
def test_following_prev_archive_collects_every_item_once(history, extension) -> None:
    store, catalog, clock, client = history
    fill(store, catalog, clock, documents=30, per_document=100)  # 3,000 items
    total = store.counts()["sport"]
    assert total == 3000
    ids, urls = follow(client, f"{BASE_URL}feeds/sport.{extension}")
    pages = total // PAGE
    assert len(urls) == pages + 1
    archived = ids[ENTRIES:]  # the feed may repeat the newest page's entries; pages never overlap
    assert len(archived) == pages * PAGE == len(set(archived))
    assert set(ids) == {
        f"tag:feedsvc.example,2026:feeds/sport/items/{i.id}" for i in store.newest("sport", 5000)
    }


def test_following_json_next_url_collects_every_item_once(history) -> None:
    store, catalog, clock, client = history
    fill(store, catalog, clock, documents=20, per_document=100)  # 2,000 items
    ids, url, pages = [], f"{BASE_URL}feeds/sport.json", 0
    while url:
        document = assert_valid_json_feed(client.get(url.removeprefix(BASE_URL[:-1])).data)
        ids += [item["id"] for item in document["items"]]
        url, pages = document.get("next_url", ""), pages + 1
    archived = ids[ENTRIES:]
    assert pages == 2000 // PAGE + 1 and len(archived) == len(set(archived)) == 2000 // PAGE * PAGE
    assert len(set(ids)) == store.counts()["sport"] == 2000


def test_archive_pages_are_valid_immutable_once_linked_and_linked_both_ways(history) -> None:
    store, catalog, clock, client = history
    fill(store, catalog, clock, documents=3, per_document=10)  # 30 items: 4 full pages
    first = client.get("/feeds/sport/archive/0.atom")
    assert first.status_code == 200
    assert first.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert_valid_atom(first.data)
    assert b"<fh:archive/>" in first.data
    parsed = feedparser.parse(first.data)
    rels = {link.rel: link.href for link in parsed.feed.links}
    assert rels["current"] == f"{BASE_URL}feeds/sport.atom"
    assert rels["next-archive"] == f"{BASE_URL}feeds/sport/archive/1.atom"
    assert "prev-archive" not in rels
    newest = client.get("/feeds/sport/archive/3.rss")
    last_rels = {link.rel for link in feedparser.parse(newest.data).feed.links}
    assert "prev-archive" in last_rels and "next-archive" not in last_rels
    # It gains a next-archive link when page 4 fills: cached like the feed, not for a year.
    assert newest.headers["Cache-Control"] == f"public, max-age={catalog.site.max_age}"
    document = assert_valid_json_feed(client.get("/feeds/sport/archive/1.json").data)
    assert document["next_url"] == f"{BASE_URL}feeds/sport/archive/0.json"
    assert client.get("/feeds/sport/archive/4.atom").status_code == 404  # not full yet
    assert client.get("/feeds/sport/archive/01.atom").status_code == 404
    assert client.get("/feeds/nope/archive/0.atom").status_code == 404


def test_a_new_item_changes_no_page_but_links_the_newest_to_a_page_it_fills(history) -> None:
    store, catalog, clock, client = history
    fill(store, catalog, clock, documents=2, per_document=10)  # pages 0, 1 full; 6 items on
    pages = [f"/feeds/sport/archive/{page}.{ext}" for page in (0, 1) for ext in FORMATS]
    before = {path: client.get(path).data for path in pages}
    fill(store, catalog, clock, documents=1, per_document=1)  # page 2 fills
    after = {path: client.get(path).data for path in pages}
    # Page 0 as it was; page 1's RSS and Atom gain the link (JSON Feed links only older pages).
    assert [after[path] == before[path] for path in pages] == [True] * 3 + [False, False, True]
    for ext in ("rss", "atom"):
        old, new = (feedparser.parse(d[f"/feeds/sport/archive/1.{ext}"]) for d in (before, after))
        assert [e.id for e in new.entries] == [e.id for e in old.entries]
        rels = {link.rel: link.href for link in new.feed.links}
        assert rels["next-archive"] == f"{BASE_URL}feeds/sport/archive/2.{ext}"


def test_static_build_writes_archives_with_the_live_bytes(history, tmp_path) -> None:
    store, catalog, clock, client = history
    fill(store, catalog, clock, documents=2, per_document=10)
    site = tmp_path / "site"
    build_site(store, catalog, site)
    written = sorted(p.relative_to(site).as_posix() for p in site.glob("feeds/*/archive/*.*[!z]"))
    # sport and all hold the 20 items: two full pages each, in three formats
    assert len(written) == 2 * (20 // PAGE) * len(FORMATS)
    for relative in written:
        assert (site / relative).read_bytes() == client.get(f"/{relative}").data
    fill(store, catalog, clock, documents=1, per_document=1)  # page 2 fills
    again = build_site(store, catalog, site)
    # The new page, and the one before it (its RSS and Atom gain a next-archive link).
    assert {p for p in again.paths if "/archive/" in p} == {
        f"feeds/{slug}/archive/{page}.{ext}"
        for slug in ("sport", ALL)
        for page, extensions in ((1, ("rss", "atom")), (2, FORMATS))
        for ext in extensions
    }
    assert again.archives_rewritten == 0  # no page's entries changed


def test_a_build_reports_rewritten_archive_pages_for_a_kill_not_for_a_page_filling(
    history, tmp_path
) -> None:
    store, catalog, clock, _client = history
    fill(store, catalog, clock, documents=2, per_document=PAGE)  # two full pages
    site = tmp_path / "site"
    build_site(store, catalog, site)
    fill(store, catalog, clock, documents=1, per_document=PAGE)  # a third fills
    filled_up = build_site(store, catalog, site)
    assert "feeds/sport/archive/1.atom" in filled_up.paths  # it gained its next-archive link
    assert filled_up.archives_rewritten == 0
    oldest = store.archive_page("sport", 0, PAGE)[0]
    store.kill([oldest.id], "test", "cli")
    killed = build_site(store, catalog, site)
    assert killed.archives_rewritten == len(FORMATS) * 2  # page 0 of sport and of all


@pytest.mark.parametrize("history", ["fastpath", "flask"], indirect=True)
def test_a_killed_item_gives_410_a_tombstone_and_a_static_withdrawn_page(history, tmp_path):
    store, catalog, clock, client = history
    fill(store, catalog, clock, documents=1, per_document=5)
    victim = store.newest("sport", 5)[2]
    clock.advance(minutes=1)
    response = client.delete(
        f"/api/items/{victim.id}?reason=wrong+name", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200 and response.json["killed"] == [victim.id]
    page = client.get(f"/items/{victim.id}.html")
    assert page.status_code == 410 and b"withdrawn" in page.data
    atom = client.get("/feeds/sport.atom").data
    assert_valid_atom(atom)
    assert f'ref="tag:feedsvc.example,2026:feeds/sport/items/{victim.id}"'.encode() in atom
    assert b"<at:comment>wrong name</at:comment>" in atom
    for extension in FORMATS:
        assert victim.title.encode() not in client.get(f"/feeds/sport.{extension}").data
    assert victim.id.encode() not in client.get("/feeds/sport.rss").data
    site = tmp_path / "site"
    build_site(store, catalog, site)
    assert (site / f"items/{victim.id}.html").read_bytes() == page.data
    unknown = client.delete(
        "/api/items/0000000000000000", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert unknown.status_code == 404
    assert client.delete(f"/api/items/{victim.id}").status_code == 401


def test_embargoed_item_appears_live_at_its_time_without_a_restart(history) -> None:
    _store, _catalog, clock, client = history
    due = clock.now.replace(microsecond=0)
    due = due.replace(second=(due.second + 2) % 60) if due.second < 58 else due
    line = json.dumps(
        {
            "id": "emb-9",
            "title": "Embargoed results",
            "published": f"{clock.now.isoformat()[:19]}+00:00",
        }
    )

    later = (clock.now + timedelta(seconds=2)).isoformat()
    line = json.dumps({"id": "emb-9", "title": "Embargoed results", "published": later})
    posted = client.post(
        "/api/items",
        data=line,
        content_type="application/x-ndjson",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert posted.json["held"] == 1
    assert b"Embargoed results" not in client.get("/feeds/all.atom").data
    assert client.get("/items/emb-9.html").status_code == 404
    clock.advance(seconds=2)
    assert b"Embargoed results" in client.get("/feeds/all.atom").data
    assert client.get("/items/emb-9.html").status_code == 200


def test_hubs_are_advertised_and_pinged_after_an_api_ingest(tmp_path) -> None:
    with Hub() as hub:
        clock = Clock()
        feeds = small_site(tmp_path, hubs=[hub.url])
        catalog = load_catalog(feeds)
        db = tmp_path / "store.sqlite3"
        open_filed_store(db, catalog, clock, create=True).close()
        settings = Settings(db=str(db), feeds_dir=feeds, token=TOKEN)
        client = create_app({"SETTINGS": settings, "CLOCK": clock, "TESTING": True}).test_client()
        response = client.get("/feeds/all.atom")
        assert response.headers.getlist("Link") == [
            f'<{hub.url}>; rel="hub"',
            f'<{BASE_URL}feeds/all.atom>; rel="self"',
        ]
        parsed = feedparser.parse(response.data)
        assert any(link.rel == "hub" and link.href == hub.url for link in parsed.feed.links)
        rss = feedparser.parse(client.get("/feeds/all.rss").data)
        assert any(link.rel == "hub" for link in rss.feed.links)
        assert assert_valid_json_feed(client.get("/feeds/all.json").data)["hubs"] == [
            {"type": "WebSub", "url": hub.url}
        ]
        assert hub.requests == []
        posted = client.post(
            "/api/items",
            data=f"-\n{SPORT_WORDS}, final\n",
            content_type="text/plain",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert posted.status_code == 200
        ((_content_type, form),) = hub.wait_for(1)
        urls = [value for key, value in form if key == "hub.url"]
        assert f"{BASE_URL}feeds/sport.atom" in urls and f"{BASE_URL}feeds/all.json" in urls
        assert f"{BASE_URL}feeds/world.rss" not in urls
        again = client.post(
            "/api/items",
            data=f"-\n{SPORT_WORDS}, final\n",
            content_type="text/plain",
            headers={"Authorization": f"Bearer {TOKEN}"},
        )
        assert again.json["unchanged"] == 1
        assert len(hub.wait_for(2, timeout=0.5)) == 1  # nothing changed: no ping


def test_cli_ingest_and_build_ping_the_hub_once_each(tmp_path, runner) -> None:
    from feedsvc.cli import main

    with Hub() as hub:
        feeds = small_site(tmp_path, hubs=[hub.url])
        db = tmp_path / "cli.sqlite3"
        doc = tmp_path / "d.txt"
        doc.write_text(f"-\n{SPORT_WORDS}, cli\n")
        env = {"FEEDSVC_FEEDS": str(feeds), "FEEDSVC_DB": str(db)}
        assert runner.invoke(main, ["ingest", str(doc)], env=env).exit_code == 0
        assert f"{BASE_URL}feeds/sport.rss" in hub.published_urls(-1)
        assert runner.invoke(main, ["ingest", str(doc)], env=env).exit_code == 0  # unchanged
        assert runner.invoke(main, ["build", str(tmp_path / "site")], env=env).exit_code == 0
        assert len(hub.wait_for(2)) == 2  # the ingest, then the build that wrote feeds
        assert runner.invoke(main, ["build", str(tmp_path / "site")], env=env).exit_code == 0
        assert len(hub.requests) == 2  # a build that changed no feed pings nobody
        item_id = item_id_of(f"{SPORT_WORDS}, cli")
        for command, count in (("kill", 3), ("unkill", 4)):  # the item's topic feeds changed
            assert runner.invoke(main, [command, item_id], env=env).exit_code == 0
            hub.wait_for(count)
            assert f"{BASE_URL}feeds/sport.rss" in hub.published_urls(-1), command
