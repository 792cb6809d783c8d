"""The site map: one list of the site's paths, used by the live app and the static build, so
both have the same paths with the same bytes."""

from __future__ import annotations

from email.utils import format_datetime
from pathlib import Path
from xml.etree import ElementTree

from feedsvc.ingest import ingest_document
from feedsvc.site import SiteMap
from feedsvc.sources import Document
from feedsvc.static import MANIFEST, build_site


def built(root: Path) -> dict[str, bytes]:
    """The files of a build by relative path, without the .gz beside each and the manifest."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in root.rglob("*")
        if path.is_file() and path.suffix != ".gz" and path.name != MANIFEST
    }


def test_every_path_of_a_static_build_is_served_live_with_the_same_bytes(
    filled, catalog, client, tmp_path
) -> None:
    build_site(filled, catalog, tmp_path / "site")
    files = built(tmp_path / "site")
    kinds = {path.split("/")[0] for path in files}
    assert {"feeds", "topics", "items", "index.html", "feeds.opml", "feedsvc.js"} <= kinds
    assert {"sitemap.xml", "sitemap-news.xml", "robots.txt"} <= kinds
    for path, data in sorted(files.items()):
        response = client.get(f"/{path}")
        assert response.status_code == 200, path
        assert response.data == data, f"/{path}: live and static bytes differ"


def test_the_build_writes_exactly_the_site_maps_paths(filled, catalog, tmp_path) -> None:
    site = tmp_path / "site"
    build_site(filled, catalog, site)
    assert set(built(site)) == set(SiteMap(catalog).paths(filled))
    assert SiteMap(catalog).path_set(filled) == set(SiteMap(catalog).paths(filled))
    again = build_site(filled, catalog, site)  # nothing written is then found stale
    assert (again.written, again.removed) == (0, 0)
    (site / "topics" / "retired.html").write_text("someone's own page")  # not the build's
    assert build_site(filled, catalog, site).removed == 0
    assert (site / "topics" / "retired.html").read_text() == "someone's own page"
    (site / "topics" / "retired.html").unlink()
    assert set(built(site)) == set(SiteMap(catalog).paths(filled))


def test_opml_date_is_the_newest_change_live_and_static(
    filled, catalog, client, clock, tmp_path
) -> None:
    # An older article changed after newer headlines came in: its `updated` is the newest
    # change, though the newest item by publication is another.
    oldest = filled.newest("all", 100)[-1]
    clock.advance(hours=5)
    late = f"{oldest.title}\nA new detail, hours later.\n".encode()
    assert ingest_document(filled, catalog, Document("late.txt", late, "wire")).updated == 1
    assert filled.newest("all", 1)[0].updated < filled.last_updated() == clock.now
    build_site(filled, catalog, tmp_path / "site")
    static = (tmp_path / "site" / "feeds.opml").read_bytes()
    live = client.get("/feeds.opml")
    assert live.data == static
    stamp = ElementTree.fromstring(static).findtext("head/dateModified")
    assert stamp == live.headers["Last-Modified"] == format_datetime(clock.now, usegmt=True)


def test_only_site_paths_are_produced(catalog) -> None:
    site = SiteMap(catalog)
    for path in ("feeds/all.rss", "topics/other.html", "index.html", "feeds.opml", "feedsvc.js"):
        assert site.producer(path) is not None, path
    for path in ("sitemap.xml", "sitemap-news.xml", "robots.txt"):
        assert site.producer(path) is not None, path
    assert site.producer("items/abc123.html") is not None  # whether it exists: the store says
    assert site.producer("sitemaps/3.xml") is not None  # exists once the store is that big
    for path in (
        "feeds/nope.rss",
        "feeds/all.xml",
        "topics/nope.html",
        "items/../index.html",
        "items/.html",
        "items/a/b.html",
        "sitemaps/03.xml",
        "sitemaps/x.xml",
        "sitemaps/index.xml",
        "/index.html",
        "",
    ):
        assert site.producer(path) is None, path
