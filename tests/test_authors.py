"""Author and source feeds (opt-in in site.toml): slugs for any byline, valid feeds, the same
bytes live (fast path and Flask) and static, links from item pages, kills, and a site that
has not turned them on left as it was."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.bylines import SLUG, author_names, name_slug
from feedsvc.catalog import Catalog, load_catalog
from feedsvc.config import Settings
from feedsvc.errors import CatalogError
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.render import FORMATS
from feedsvc.site import SiteMap
from feedsvc.sources import Document
from feedsvc.static import MANIFEST, build_site
from feedsvc.store import Store
from feedsvc.web import create_app

from .conftest import BASE_URL, FEEDS, SAMPLES, TOKEN, Clock
from .feedcheck import assert_valid_atom, assert_valid_json_feed
from .test_bucket import BUCKET, bucket, endpoint, expected_headers, local_files, objects, s3
from .test_paths import answer

__all__ = ["endpoint", "s3"]  # fixtures of the bucket tests, used here
DATA = Path(__file__).parent / "data"
ON = "author_feeds = true\nsource_feeds = true\n"
HASHED = re.compile(r"x--[0-9a-f]{8}")


# -- slugs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("byline", "slugs"),
    [
        ("A.Costa/B.Ng", ["a-costa", "b-ng"]),
        ("Ana Costa and Bo Ng", ["ana-costa", "bo-ng"]),
        ("Ana Costa & Bo Ng; Cy Park", ["ana-costa", "bo-ng", "cy-park"]),
        ("By ANA COSTA", ["ana-costa"]),
        ("Ána Cósta, ana costa", ["ana-costa"]),  # one author, however spelled
        ("Zoë O'Brien", ["zoe-obrien"]),
        ("Zoe O\u2019Brien", ["zoe-obrien"]),  # a typographic apostrophe: the same author
        ("Pamela Anderson", ["pamela-anderson"]),  # "and" only as a word
        ("Jean-Luc Straße", ["jean-luc-strasse"]),
        ("Łukasz Żółć", ["lukasz-zolc"]),
        ("", []),
        ("   ", []),
        (" / -- & ", []),
        (None, []),
    ],
)
def test_bylines_give_one_slug_per_author(byline: str | None, slugs: list[str]) -> None:
    assert [name_slug(name) for name in author_names(byline)] == slugs


def test_names_without_ascii_letters_get_a_stable_hashed_slug() -> None:
    one, two = name_slug("王伟"), name_slug("李娜")
    assert one and two and HASHED.fullmatch(one) and HASHED.fullmatch(two)
    assert one != two
    assert name_slug(" 王伟 ") == one  # spacing is not part of a name
    mixed = name_slug("Ana 王")
    assert mixed != name_slug("Ana") and mixed.startswith("ana--")  # type: ignore[union-attr]
    assert name_slug("Олена Коваль") != name_slug("Олег Коваль")


def test_a_very_long_name_gets_a_bounded_slug() -> None:
    name = "Maria " * 40
    slug = name_slug(name)
    assert slug and SLUG.fullmatch(slug) and len(slug) <= 70
    assert slug != name_slug("Maria " * 41)


@given(st.text(max_size=80))
def test_any_byline_gives_safe_slugs(byline: str) -> None:
    for name in author_names(byline):
        slug = name_slug(name)
        assert slug is not None and SLUG.fullmatch(slug), (name, slug)
        assert name_slug(name) == slug  # stable


# -- a site with author and source feeds -------------------------------------------------------


@dataclass
class Site:
    store: Store
    catalog: Catalog
    clock: Clock
    settings: Settings


def catalogue(tmp_path: Path, extra: str = ON, name: str = "feeds") -> Path:
    feeds = tmp_path / name
    shutil.copytree(FEEDS, feeds, ignore=shutil.ignore_patterns("samples"))
    with (feeds / "site.toml").open("a") as site:
        site.write(f'archive_page_size = 2\nbase_url = "{BASE_URL}"\n{extra}')
    return feeds


def ingest(site: Site, name: str, data: bytes, kind: str = "wire") -> None:
    ingest_document(site.store, site.catalog, Document(name, data, kind))
    site.clock.advance(hours=1)


def fill(site: Site) -> None:
    for path in sorted(SAMPLES.glob("*.txt")):
        ingest(site, path.name, path.read_bytes())
    ingest(site, "bylines.txt", (DATA / "bylines.txt").read_bytes())
    ingest(site, "bylines.jsonl", (DATA / "bylines.jsonl").read_bytes(), "jsonl")


@pytest.fixture
def bylined(db: str, tmp_path: Path) -> Site:
    """A store (each engine) of the samples and the byline documents, author and source feeds
    on, archive pages of two items."""
    clock = Clock()
    feeds = catalogue(tmp_path)
    catalog = load_catalog(feeds)
    store = open_filed_store(db, catalog, clock, create=True)
    site = Site(store, catalog, clock, Settings(db=db, feeds_dir=feeds, token=TOKEN))
    fill(site)
    yield site
    store.close()


def app(site: Site, fastpath: bool):
    config = {"SETTINGS": site.settings, "CLOCK": site.clock, "CATALOG": site.catalog}
    return create_app({**config, "TESTING": True, "FASTPATH": fastpath})


def built(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.suffix != ".gz" and path.name != MANIFEST
    }


def keys(site: Site) -> list[str]:
    return SiteMap(site.catalog).byline_keys(site.store)


def test_every_author_and_source_has_valid_feeds_of_its_items(bylined: Site) -> None:
    found = keys(bylined)
    assert {"authors/a-costa", "authors/b-ng", "authors/ana-costa", "authors/bo-ng"} <= set(found)
    assert {"authors/zoe-obrien", "authors/l-marchetti", "sources/xy", "sources/pc"} <= set(found)
    assert {"sources/reuters", "sources/cul"} <= set(found)
    assert sum(bool(HASHED.fullmatch(k.partition("/")[2])) for k in found) == 1  # 王伟
    client = app(bylined, fastpath=True).test_client()
    for key in found:
        items = bylined.store.newest(key, 100)
        documents = {ext: client.get(f"/feeds/{key}.{ext}") for ext in FORMATS}
        assert all(r.status_code == 200 for r in documents.values()), key
        assert_valid_atom(documents["atom"].data)
        for ext in ("rss", "atom"):
            feed = feedparser.parse(documents[ext].data)
            assert not feed.bozo, (key, ext, feed.bozo_exception)
            assert [e.title for e in feed.entries] == [item.title for item in items]
            assert all(e.link.startswith(BASE_URL) for e in feed.entries)
            prefix = f"{bylined.catalog.site.tag_prefix}feeds/{key}/items/"
            assert [e.id for e in feed.entries] == [prefix + item.id for item in items]
            assert all(e.published_parsed for e in feed.entries)
            assert feed.feed.link == f"{BASE_URL}{key}.html"
            terms = {tag.term for e in feed.entries for tag in e.get("tags", [])}
            assert terms and all("/" not in term for term in terms)  # topics only
        json_feed = assert_valid_json_feed(documents["json"].data)
        assert [e["title"] for e in json_feed["items"]] == [item.title for item in items]
        assert json_feed["feed_url"] == f"{BASE_URL}feeds/{key}.json"
        assert json_feed["home_page_url"] == f"{BASE_URL}{key}.html"
        if key.startswith("authors/"):
            assert all(key.partition("/")[2] in _slugs(item.author) for item in items)


def _slugs(byline: str | None) -> list[str | None]:
    return [name_slug(name) for name in author_names(byline)]


def test_two_spellings_of_one_author_share_a_feed_named_as_the_newest_spells_it(
    bylined: Site,
) -> None:
    client = app(bylined, fastpath=True).test_client()
    feed = feedparser.parse(client.get("/feeds/authors/ana-costa.atom").data)
    titles = [entry.title for entry in feed.entries]
    # "ANA COSTA--XY" in wire text and "Ana Costa and Bo Ng" in JSON Lines, later.
    assert titles == [
        "Tram line extension approved after long debate",
        "Village bakery wins regional bread prize",
    ]
    assert feed.feed.title.endswith(": Ana Costa")
    obrien = json.loads(client.get("/feeds/authors/zoe-obrien.json").data)
    assert obrien["title"].endswith(": Zoe O\u2019Brien")  # the JSON Lines item, newer
    assert len(obrien["items"]) == 2


def test_no_author_feed_for_an_empty_byline(bylined: Site) -> None:
    for item_id in ("byline-empty", "byline-punctuation"):
        item = bylined.store.item(item_id)
        assert item is not None
        assert all("/" not in slug for slug in item.topics), item.topics


def test_the_item_page_links_its_authors_and_source_and_they_link_their_feeds(
    bylined: Site,
) -> None:
    client = app(bylined, fastpath=True).test_client()
    harbour = next(i for i in bylined.store.newest("sources/xy", 10) if "Harbour" in i.title)
    page = client.get(f"/items/{harbour.id}.html").get_data(as_text=True)
    more = re.search(r'<p class="meta more-by">(.*?)</p>', page)
    assert more is not None
    links = re.findall(r'<a href="\.\./([^"]+)">([^<]+)</a>', more[1])
    assert links == [
        ("authors/a-costa.html", "A.Costa"),
        ("authors/b-ng.html", "B.Ng"),
        ("sources/xy.html", "XY"),
    ]
    for path, _ in links:
        author = client.get(f"/{path}")
        assert author.status_code == 200
        text = author.get_data(as_text=True)
        key = path.removesuffix(".html")
        for extension, form in FORMATS.items():
            alternate = (
                f'<link rel="alternate" type="{re.escape(form.media_type)}" title="[^"]*" '
                f'href="{re.escape(BASE_URL)}feeds/{key}.{extension}">'
            )
            assert re.search(alternate, text), (path, extension)
        assert f'<a href="../items/{harbour.id}.html">' in text
        assert f'<main data-topic="{key}">' in text  # live, its search box searches it
    quiet = client.get("/items/byline-empty.html").get_data(as_text=True)
    assert "more-by" not in quiet
    # WebSub: a change to the item pings its author and source feeds too.
    urls = SiteMap(bylined.catalog).feed_urls(harbour.topics)
    assert (
        f"{BASE_URL}feeds/authors/b-ng.atom" in urls and f"{BASE_URL}feeds/sources/xy.rss" in urls
    )


@pytest.mark.parametrize("fastpath", [True, False], ids=["fastpath", "flask"])
def test_every_path_of_a_static_build_is_served_live_with_the_same_bytes(
    bylined: Site, tmp_path: Path, fastpath: bool
) -> None:
    target = tmp_path / "site"
    build_site(bylined.store, bylined.catalog, target)
    files = built(target)
    assert set(files) == set(SiteMap(bylined.catalog).paths(bylined.store))
    assert set(files) == SiteMap(bylined.catalog).path_set(bylined.store)
    bylines = [p for p in files if p.startswith(("authors/", "sources/", "feeds/authors/"))]
    bylines += [p for p in files if p.startswith("feeds/sources/")]
    assert any("/archive/" in p for p in bylines)  # two items make a page
    assert len(bylines) >= len(keys(bylined)) * (len(FORMATS) + 1)
    client = app(bylined, fastpath).test_client()
    for path, data in files.items():
        response = client.get(f"/{path}")
        assert response.status_code == 200, path
        assert response.data == data, f"/{path}: live and static bytes differ"
    sitemap = files["sitemap.xml"].decode()
    assert f"<loc>{BASE_URL}authors/ana-costa.html</loc>" in sitemap
    assert "authors" not in files["feeds.opml"].decode()  # one subscription per item: topics
    for missing in ("feeds/authors/nobody.rss", "authors/nobody.html", "feeds/authors/x.txt"):
        assert client.get(f"/{missing}").status_code == 404


def test_live_author_and_source_feeds_take_a_search_and_filters(bylined: Site) -> None:
    client = app(bylined, fastpath=True).test_client()
    found = feedparser.parse(client.get("/feeds/sources/xy.atom?q=bakery").data)
    assert [e.title for e in found.entries] == ["Village bakery wins regional bread prize"]
    links = {link.rel: link.href for link in found.feed.links}
    assert links["self"] == f"{BASE_URL}feeds/sources/xy.atom?q=bakery"
    page = client.get(links["alternate"].removeprefix(BASE_URL.rstrip("/")))
    assert page.status_code == 200 and b"Village bakery" in page.data
    assert b'value="sources/xy"' in page.data  # the form searches the source again
    assert len(feedparser.parse(client.get("/feeds/sources/xy.rss?limit=1").data).entries) == 1
    assert client.get("/feeds/sources/xy.rss?limit=abc").status_code == 400
    assert client.get("/feeds/authors/nobody.rss?q=x").status_code == 404
    assert client.get("/search?q=x&topic=authors/nobody").status_code == 404


def test_the_fast_path_answers_byline_resources_as_flask_does(bylined: Site) -> None:
    fast = app(bylined, fastpath=True).test_client()
    flask = app(bylined, fastpath=False).test_client()
    paths = ["authors/a-costa.html", "feeds/sources/xy.atom", "feeds/authors/zoe-obrien.json"]
    paths += ["feeds/authors/ana-costa/archive/0.rss", "feeds/authors/a-costa.rss?q=cranes"]
    paths += ["feeds/authors/nobody.rss", "sources/nobody.html", "feeds/authors/a-costa.txt"]
    paths += ["feeds/sources/xy.json?limit=1", "feeds/sources/xy.rss?limit=abc"]
    paths += ["search?q=bakery&topic=sources/xy", "search?q=x&topic=authors/nobody"]
    for path in paths:
        stamps = dict(answer(flask, "GET", path, {})[1])
        variants = [{}, {"Accept-Encoding": "gzip"}]
        if "ETag" in stamps:
            variants.append({"If-None-Match": stamps["ETag"]})
        for method in ("GET", "HEAD"):
            for headers in variants:
                got, expected = (answer(c, method, path, headers) for c in (fast, flask))
                if got[0] == 304:  # Werkzeug drops Last-Modified from Flask's 304s (test_paths)
                    got = (304, [h for h in got[1] if h[0] != "Last-Modified"], got[2])
                assert got == expected, (path, method, headers)


def test_a_bucket_holds_the_directory_builds_bytes_with_feed_headers(
    s3, bylined: Site, tmp_path: Path
) -> None:
    build_site(bylined.store, bylined.catalog, tmp_path / "site")
    build_site(bylined.store, bylined.catalog, bucket(bylined.catalog))
    stored = objects(s3)
    stored.pop(MANIFEST)
    assert stored == local_files(tmp_path / "site")
    site, max_age = SiteMap(bylined.catalog), bylined.catalog.site.max_age
    for path in ("feeds/authors/a-costa.rss", "authors/a-costa.html", "sources/xy.html"):
        head = s3.head_object(Bucket=BUCKET, Key=f"site/{path}")
        expected = expected_headers(site, bylined.store, path, max_age)
        assert (head["ContentType"], head["CacheControl"]) == expected
    assert expected_headers(site, bylined.store, "feeds/authors/a-costa.rss", max_age)[1] == (
        f"public, max-age={max_age}"  # a feed's, not a page's
    )
    ingest(
        bylined, "new.txt", b"Ice rink opens early\nCold nights let the rink open.\nCy Park--XY\n"
    )
    report = build_site(bylined.store, bylined.catalog, bucket(bylined.catalog))
    assert "feeds/authors/cy-park.atom" in report.paths
    build_site(bylined.store, bylined.catalog, tmp_path / "site")
    stored = objects(s3)
    stored.pop(MANIFEST)
    assert stored == local_files(tmp_path / "site")


def test_an_incremental_build_equals_a_whole_one(bylined: Site, tmp_path: Path) -> None:
    target = tmp_path / "site"
    build_site(bylined.store, bylined.catalog, target)
    # A new author, a corrected byline (Bo Ng's story moves to Bea Ng), and a kill.
    ingest(
        bylined,
        "new.txt",
        b"Ice rink opens early\nCold nights let the rink open.\nCy Park--XY\n",
    )
    moved = (
        '{"id": "byline-two-names", "title": "Tram line extension approved after long debate", '
        '"content": "<p>Councillors backed the route by a narrow margin.</p><p>Work starts in '
        'May.</p>", "author": "Ana Costa and Bea Ng", "source": "Reuters"}\n'
    )
    ingest(bylined, "moved.jsonl", moved.encode(), "jsonl")
    # ... and one of Zoe O'Brien's two stories is Cy Park's after all: hers loses it.
    lighthouse = (
        '{"id": "byline-apostrophe", "title": "Lighthouse keeper\'s log goes on display", '
        '"content": "<p>The museum shows pages from a century of storms.</p>", '
        '"author": "Cy Park", "source": "PC"}\n'
    )
    ingest(bylined, "lighthouse.jsonl", lighthouse.encode(), "jsonl")
    bakery = bylined.store.newest("authors/ana-costa", 10)[-1]
    bylined.store.kill([bakery.id], "wrong bakery", "cli")
    report = build_site(bylined.store, bylined.catalog, target)
    assert "feeds/authors/cy-park.rss" in report.paths
    assert not (target / "feeds/authors/bo-ng.rss").exists()  # no story of hers is left
    assert not (target / "authors/bo-ng.html").exists()
    whole = tmp_path / "whole"
    build_site(bylined.store, bylined.catalog, whole)
    assert built(target) == built(whole)
    client = app(bylined, fastpath=True).test_client()
    assert client.get("/feeds/authors/bo-ng.atom").status_code == 404
    obrien = feedparser.parse(client.get("/feeds/authors/zoe-obrien.rss").data)
    assert [e.title for e in obrien.entries] == ["Glacier retreat measured by volunteer climbers"]
    atom = client.get("/feeds/authors/ana-costa.atom").data
    assert bakery.id.encode() in atom and b"at:deleted-entry" in atom  # a tombstone (RFC 6721)
    assert [e.title for e in feedparser.parse(atom).entries] == [
        "Tram line extension approved after long debate"
    ]


def test_new_items_and_a_kill_rebuild_only_their_authors_and_sources(
    bylined: Site, tmp_path: Path
) -> None:
    target = tmp_path / "site"
    build_site(bylined.store, bylined.catalog, target)
    before = built(target)
    news = "Ice rink opens early\nCold nights let the rink open.\nCy Park--XY\n-\nQuiet day\n"
    news += "Library extends hours\nReading rooms stay open late.\nA.Costa--NEW\n"
    ingest(bylined, "new.txt", news.encode())
    obrien = bylined.store.newest("authors/zoe-obrien", 1)[0]
    bylined.store.kill([obrien.id], None, "cli")
    report = build_site(bylined.store, bylined.catalog, target)
    written = {p for p in report.paths if p.startswith(("authors/", "feeds/authors/"))}
    written |= {p for p in report.paths if p.startswith(("sources/", "feeds/sources/"))}
    touched = {"authors/cy-park", "authors/a-costa", "sources/xy", "sources/new"}
    touched |= {"authors/zoe-obrien", "sources/pc"}  # the kill: a tombstone in their feeds
    keys_written = {re.sub(r"(/archive/\d+)?\.\w+$", "", p.removeprefix("feeds/")) for p in written}
    assert keys_written <= touched
    assert "feeds/authors/cy-park.rss" in written and "feeds/sources/new.json" in written
    assert "feeds/authors/l-marchetti.rss" not in written  # untouched: not even rendered
    whole = tmp_path / "whole"
    build_site(bylined.store, bylined.catalog, whole)
    assert built(target) == built(whole)
    assert built(target)["feeds/authors/b-ng.rss"] == before["feeds/authors/b-ng.rss"]


def test_a_tombstone_that_expires_leaves_the_feed_in_an_incremental_build(
    bylined: Site, tmp_path: Path
) -> None:
    obrien = bylined.store.newest("authors/zoe-obrien", 1)[0]
    bylined.store.kill([obrien.id], None, "cli")
    target = tmp_path / "site"
    build_site(bylined.store, bylined.catalog, target)
    assert b"at:deleted-entry" in (target / "feeds/authors/zoe-obrien.atom").read_bytes()
    bylined.clock.advance(days=bylined.catalog.site.tombstone_days + 1)
    ingest(
        bylined,
        "later.txt",
        b"Harvest festival draws crowds\nStalls sold out by noon.\nCy Park--XY\n",
    )
    build_site(bylined.store, bylined.catalog, target)
    assert b"at:deleted-entry" not in (target / "feeds/authors/zoe-obrien.atom").read_bytes()
    whole = tmp_path / "whole"
    build_site(bylined.store, bylined.catalog, whole)
    assert built(target) == built(whole)


def test_an_update_filed_under_another_topic_rewrites_the_archive_page_it_left(
    db: str, tmp_path: Path
) -> None:
    # The store's rule, which a corrected byline depends on, shown with topics: the page an
    # item left is rewritten by an incremental build (a whole build leaves its place empty).
    clock = Clock()
    catalog = load_catalog(catalogue(tmp_path, extra=""))
    store = open_filed_store(db, catalog, clock, create=True)
    site = Site(store, catalog, clock, Settings(db=db))

    def story(n: int, topic: str, text: str = "Final whistle.") -> str:
        line = {"id": f"m{n}", "title": f"Match report {n}", "content": f"<p>{text}</p>"}
        return json.dumps(line | {"topics": [topic]})

    ingest(site, "a.jsonl", "\n".join(story(n, "sport") for n in range(4)).encode(), "jsonl")
    target = tmp_path / "site"
    build_site(store, catalog, target)
    ingest(site, "b.jsonl", story(1, "business", "A club sold.").encode(), "jsonl")
    build_site(store, catalog, target)
    whole = tmp_path / "whole"
    build_site(store, catalog, whole)
    assert built(target) == built(whole)
    store.close()


def test_off_by_default_nothing_changes_and_turning_on_refiles(db: str, tmp_path: Path) -> None:
    clock = Clock()
    plain = load_catalog(catalogue(tmp_path, extra="", name="plain"))
    store = open_filed_store(db, plain, clock, create=True)
    site = Site(store, plain, clock, Settings(db=db))
    fill(site)
    build_site(store, plain, tmp_path / "plain-site")
    said_off = load_catalog(
        catalogue(tmp_path, "author_feeds = false\nsource_feeds = false\n", "off")
    )
    assert said_off.digest == plain.digest  # stored items stay where they are
    build_site(store, said_off, tmp_path / "off-site")
    files = built(tmp_path / "plain-site")
    assert files == built(tmp_path / "off-site")
    assert not [p for p in files if "authors" in p or p.startswith(("sources", "feeds/sources"))]
    assert not [p for p, data in files.items() if b"more-by" in data]
    assert SiteMap(plain).producer("feeds/authors/a-costa.rss") is None
    # Turned on: the stored items are filed under their authors and sources when opened.
    on = load_catalog(catalogue(tmp_path, name="on"))
    store.close()
    store = open_filed_store(db, on, clock)
    assert "authors/a-costa" in SiteMap(on).byline_keys(store)
    build_site(store, on, tmp_path / "plain-site")
    assert (tmp_path / "plain-site/feeds/authors/a-costa.rss").exists()
    # ... and off again: gone.
    store.close()
    store = open_filed_store(db, plain, clock)
    build_site(store, plain, tmp_path / "plain-site")
    assert built(tmp_path / "plain-site") == files
    store.close()


def test_a_site_with_only_source_feeds_has_no_author_feeds(db: str, tmp_path: Path) -> None:
    clock = Clock()
    catalog = load_catalog(catalogue(tmp_path, extra="source_feeds = true\n"))
    store = open_filed_store(db, catalog, clock, create=True)
    fill(Site(store, catalog, clock, Settings(db=db)))
    found = SiteMap(catalog).byline_keys(store)
    assert found and all(key.startswith("sources/") for key in found)
    assert SiteMap(catalog).producer("feeds/authors/a-costa.rss") is None
    store.close()


def test_a_setting_that_is_not_true_or_false_is_one_line(tmp_path: Path) -> None:
    feeds = catalogue(tmp_path, extra='author_feeds = "yes"\n')
    with pytest.raises(CatalogError) as raised:
        load_catalog(feeds)
    assert str(raised.value) == f"{feeds / 'site.toml'}: 'author_feeds' must be true or false"
