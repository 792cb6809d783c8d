"""The HTML pages in a real browser: headless Chromium loads the index and item pages, from a
static build (file:// URLs) and from the live app behind a real HTTP server, with hostile items
in the store (tests/data/hostile_*), and no injected script may run.

The payloads in those items would, if they ran, set `document.title` to PWNED or add an element
with the id `pwned-marker`; they spell both in pieces ('PW'+'NED'), so only running them can put
the words in the DOM. A control page holding the same payloads unescaped proves they do run.

Needs Debian's `chromium` (`apt-get install -y chromium`). Without it the tests are skipped,
with that reason, unless FEEDSVC_REQUIRE_BROWSER=1 (as .ci/run sets) makes them fail instead.
One Chromium reads every page of the module (tests/browser.py).
"""

from __future__ import annotations

import contextlib
import functools
import html
import socketserver
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import lxml.html
import pytest
from werkzeug.serving import make_server

from feedsvc.catalog import Catalog
from feedsvc.ingest import ingest_document
from feedsvc.model import Item, Topic
from feedsvc.render import FORMATS, feed_path
from feedsvc.sources import Document
from feedsvc.static import build_site
from feedsvc.store import Store
from feedsvc.web import create_app

from .browser import Browser, chromium
from .conftest import DATA

HOSTILE_FILES = (DATA / "hostile_wire.txt", DATA / "hostile_items.jsonl")
MARKERS = ("PWNED", "pwned-marker")  # what the payloads write if they run
INERT = ("script", "img", "svg", "iframe", "object", "embed", "math", "form", "meta", "base")


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """One Chromium for the module's tests; each page in a fresh browser context."""
    with chromium(tmp_path_factory.mktemp("chromium")) as running:
        yield running


@pytest.fixture
def hostile(store: Store, catalog: Catalog) -> list[Item]:
    """The store holding the hostile documents; their items, newest first."""
    for path in HOSTILE_FILES:
        kind = "jsonl" if path.suffix == ".jsonl" else "wire"
        counts = ingest_document(store, catalog, Document(path.name, path.read_bytes(), kind))
        assert counts.new > 0
    items = store.newest("all", 100)
    assert len(items) == 6
    return items


@pytest.fixture
def live(hostile: list[Item], settings, clock) -> Iterator[str]:
    """The live app (not TESTING, fast path on) behind a real HTTP server on a free port."""
    app = create_app({"SETTINGS": settings, "CLOCK": clock})
    with serving(make_server("127.0.0.1", 0, app, threaded=True)) as url:
        yield url


@contextlib.contextmanager
def static_server(root: Path, handler: type[SimpleHTTPRequestHandler] | None = None):
    """A plain static file server on `root` (it answers 404 for /opensearch.xml)."""
    handler = functools.partial(handler or QuietHandler, directory=str(root))
    with serving(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url


@contextlib.contextmanager
def serving(server: socketserver.TCPServer) -> Iterator[str]:
    """`server` answering on its own thread; its URL. Shut down and closed afterwards."""
    thread = threading.Thread(target=server.serve_forever, name="browser-test-server")
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


# -- what a page must look like in the browser -----------------------------------------------


def parse_dom(dom: str) -> lxml.html.HtmlElement:
    return lxml.html.document_fromstring(dom)


def assert_inert(dom: str, where: str) -> lxml.html.HtmlElement:
    """No payload ran, and none is left as markup the browser could run (but the search box
    the live pages' script puts in the header, checked by `search_box`)."""
    for marker in MARKERS:
        assert marker not in dom, f"{where}: an injected script ran ({marker} in the DOM)"
    document = parse_dom(dom)
    assert not document.xpath("//body//style"), f"{where}: a <style> in the body"
    ours = set(document.xpath("//body/header/form[@id='search']"))
    for element in document.xpath("//body//*"):
        if not isinstance(element.tag, str) or element in ours:
            continue
        assert element.tag.lower() not in INERT, f"{where}: a <{element.tag}> element"
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"{where}: <{element.tag} {name}=...>"
            if name in ("href", "src"):
                assert not value.strip().lower().startswith(("javascript:", "data:")), where
    return document


def text_of_html(fragment: str) -> str:
    return lxml.html.fragment_fromstring(fragment, create_parent="div").text_content()


def assert_item_page(dom: str, item: Item, catalog: Catalog, where: str) -> None:
    document = assert_inert(dom, where)
    assert document.findtext(".//title") == f"{item.title} - {catalog.site.title}", where
    (heading,) = document.xpath("//article/h2")
    assert heading.text_content() == item.title, where
    assert html.escape(item.title, quote=False) in dom, f"{where}: the title is not escaped text"
    article = document.xpath("//article")[0].text_content()
    if item.author:
        assert item.author in article, where
        assert html.escape(item.author, quote=False) in dom, where
    if item.content:
        assert text_of_html(item.content) in article, where
    elif item.summary:
        assert item.summary in article, where


def assert_index_page(dom: str, items: list[Item], catalog: Catalog, where: str) -> None:
    document = assert_inert(dom, where)
    site = catalog.site
    assert document.findtext(".//title") == site.title, where
    links = {a.get("href"): a.text_content() for a in document.xpath("//main//ul/li/a")}
    for item in items:
        assert links.get(f"items/{item.id}.html") == item.title, f"{where}: {item.id}"
        assert html.escape(item.title, quote=False) in dom, where
    # Every feed: listed with its subscribe links, and announced for autodiscovery.
    listed = document.xpath("//ul[@class='topics']/li/@id")
    assert listed == [f"topic-{topic.slug}" for topic in catalog.feeds], where
    assert listed[0] == "topic-all" and listed[-1] == "topic-other"
    assert len(listed) == 2 + len(catalog.topics) > 2
    alternates = {
        (link.get("type"), link.get("href"))
        for link in document.xpath("//head/link[@rel='alternate']")
    }
    for topic in catalog.feeds:
        (entry,) = document.xpath(f"//li[@id='topic-{topic.slug}']")
        assert entry.xpath("string(strong)") == topic.title, where
        assert entry.xpath("strong/a/@href") == [f"topics/{topic.slug}.html"], where
        subscribe = {(a.get("type"), a.get("href")) for a in entry.xpath(".//a")}
        for format_ in FORMATS.values():
            expected = (format_.media_type, site.url(feed_path(topic.slug, format_.extension)))
            assert expected in subscribe, f"{where}: no {format_.label} link for {topic.slug}"
            assert expected in alternates, f"{where}: no autodiscovery for {expected}"
    assert len(alternates) == len(catalog.feeds) * len(FORMATS), where


def assert_topic_page(
    dom: str, topic: Topic, latest: list[Item], catalog: Catalog, where: str
) -> lxml.html.HtmlElement:
    """A topic's page: what it is, its latest items, its three feeds to copy or open."""
    document = assert_inert(dom, where)
    site = catalog.site
    assert document.findtext(".//title") == f"{topic.title} - {site.title}", where
    assert document.xpath("string(//main/h2)") == topic.title, where
    assert topic.description in document.xpath("string(//main/p[1])"), where
    titles = [a.text_content() for a in document.xpath("//ul[@class='latest']/li/a")]
    assert titles == [item.title for item in latest], where
    hrefs = document.xpath("//ul[@class='latest']/li/a/@href")
    assert hrefs == [f"../items/{item.id}.html" for item in latest], where
    alternates = [
        (link.get("type"), link.get("href"))
        for link in document.xpath("//head/link[@rel='alternate']")
    ]
    feeds = [
        (format_.media_type, site.url(feed_path(topic.slug, format_.extension)))
        for format_ in FORMATS.values()
    ]
    assert alternates == feeds, f"{where}: autodiscovery"
    for format_, (media_type, url) in zip(FORMATS.values(), feeds, strict=True):
        (row,) = document.xpath(f"//li[@id='feed-{format_.extension}']")
        assert row.xpath("a/@href") == [url] and row.xpath("a/@type") == [media_type], where
        assert row.xpath("string(a/code)") == url, where
        (button,) = row.xpath("button")
        assert button.get("data-copy") == url, where
        assert button.get("hidden") is None, f"{where}: the script did not show the copy buttons"
    rss = site.url(feed_path(topic.slug, "rss"))
    readers = document.xpath("//p[@class='readers']/a/@href")
    assert readers[0] == f"feed:{rss}", where
    assert len(readers) >= 3 and all(quote(rss, safe="") in href for href in readers[1:]), where
    assert all(href.startswith("https://") for href in readers[1:]), where
    return document


def search_box(dom: str) -> tuple[str, list[tuple[str, str, str]], list[str]] | None:
    """The search box in a page's header, if any: its action, its fields (type, name, value)
    and the page's rel=search links."""
    document = parse_dom(dom)
    links = document.xpath("//head/link[@rel='search']/@href")
    forms = document.xpath("//form")
    if not forms:
        assert not links, "a rel=search link without a search box"
        return None
    (form,) = forms
    assert form.getparent().tag == "header" and form.get("method") == "get"
    fields = [(i.get("type"), i.get("name"), i.get("value") or "") for i in form.xpath(".//input")]
    return form.get("action"), fields, links


def latest_on_item_page(document: lxml.html.HtmlElement) -> list[str]:
    return [a.text_content() for a in document.xpath("//section[@id='more']/ul/li/a")]


# -- the tests ------------------------------------------------------------------------------


def test_the_payloads_run_when_not_escaped(
    browser: Browser, hostile: list[Item], tmp_path: Path
) -> None:
    """The control: the same titles, authors and content put raw into a page do run, so the
    checks below would see them if feedsvc let them through."""
    raw = "".join(
        f"<h2>{item.title}</h2><p>{item.author or ''}</p><p>{item.summary or ''}</p>"
        for item in hostile
    )
    wire_text = (DATA / "hostile_wire.txt").read_text()
    page = tmp_path / "control.html"
    page.write_text(f"<!doctype html><title>control</title><body>{raw}<div>{wire_text}</div>")
    dom = browser.dom(page.as_uri())
    document = parse_dom(dom)
    assert document.findtext(".//title") == "PWNED", "the title payloads did not run"
    assert document.xpath("//*[@id='pwned-marker']"), "the element payloads did not run"


def test_static_pages_escape_everything(
    browser: Browser, hostile: list[Item], store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    outdir = tmp_path / "site"
    build_site(store, catalog, outdir)
    index = (outdir / "index.html").as_uri()
    pages = {(outdir / "items" / f"{item.id}.html").as_uri(): item for item in hostile}
    topics = {(outdir / "topics" / f"{topic.slug}.html").as_uri(): topic for topic in catalog.feeds}
    doms = browser.doms([index, *pages, *topics])
    assert_index_page(doms[index], hostile, catalog, "static index.html")
    for url, item in pages.items():
        assert_item_page(doms[url], item, catalog, f"static items/{item.id}.html")
    for url, topic in topics.items():
        latest = store.newest(topic.slug, 30)
        assert_topic_page(doms[url], topic, latest, catalog, f"static topics/{topic.slug}.html")
    for url, dom in doms.items():
        assert search_box(dom) is None, f"{url}: a search box on a page opened from disk"


def test_live_pages_escape_everything(
    browser: Browser, hostile: list[Item], live: str, store: Store, catalog: Catalog
) -> None:
    pages = {f"{live}items/{item.id}.html": item for item in hostile}
    topics = {f"{live}topics/{topic.slug}.html": topic for topic in catalog.feeds}
    doms = browser.doms([live, f"{live}index.html", *pages, *topics])
    assert_index_page(doms[live], hostile, catalog, "live /")
    assert_index_page(doms[f"{live}index.html"], hostile, catalog, "live /index.html")
    listed = 0
    for url, item in pages.items():
        where = f"live /items/{item.id}.html"
        assert_item_page(doms[url], item, catalog, where)
        # Its first topic's latest items, read by the page's script from the topic's feed.
        latest = [i.title for i in store.newest(item.topics[0], 11) if i.id != item.id][:10]
        assert latest_on_item_page(parse_dom(doms[url])) == latest, where
        listed += bool(latest)
    assert listed, "no item page had other items of its topic to list: the check saw nothing"
    for url, topic in topics.items():
        latest = store.newest(topic.slug, 30)
        assert_topic_page(doms[url], topic, latest, catalog, f"live /topics/{topic.slug}.html")


def test_live_pages_get_a_search_box_and_a_static_site_none(
    browser: Browser, hostile: list[Item], live: str, store: Store, catalog: Catalog, tmp_path: Path
) -> None:
    """The live app and a static build serve the same page bytes; only the live one answers
    /opensearch.xml, so only there does the script put in the box and the rel=search link."""
    item = hostile[0]
    paths = ["", "topics/world.html", "topics/all.html", f"items/{item.id}.html"]
    build_site(store, catalog, tmp_path / "site")
    with static_server(tmp_path / "site") as static:
        urls = [live + path for path in paths] + [static + p for p in ("index.html", *paths[1:])]
        doms = browser.doms(urls)
    for path in paths:
        found = search_box(doms[live + path])
        assert found is not None, f"live /{path}: no search box"
        action, fields, links = found
        assert action == f"{live}search" and links == [f"{live}opensearch.xml"], path
        topic = [("hidden", "topic", "world")] if path == "topics/world.html" else []
        assert fields == [("search", "q", ""), *topic], path
    for url in urls[len(paths) :]:
        assert search_box(doms[url]) is None, f"{url}: a search box on a static site"


def test_screenshot_of_the_index_page(
    browser: Browser, hostile: list[Item], live: str, tmp_path: Path
) -> None:
    """An artifact to look at (kept in pytest's tmp dir): the index with hostile items."""
    shot = tmp_path / "artifacts" / "index.png"
    shot.parent.mkdir()
    shot.write_bytes(browser.screenshot(live, 1200, 900))
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 1000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1200, 900)


def test_a_page_sees_nothing_the_page_before_left(browser: Browser, tmp_path: Path) -> None:
    """Each page opens in a browser context of its own (as each had a fresh profile when every
    page was a Chromium run): storage and cookies one page set are gone for the next."""
    script = "localStorage.getItem('seen') + ' ' + document.cookie"
    (tmp_path / "set.html").write_text(
        "<!doctype html><title>set</title><script>localStorage.setItem('seen', 'yes');"
        f"document.cookie = 'seen=yes'; document.title = {script}</script>"
    )
    (tmp_path / "get.html").write_text(
        f"<!doctype html><title>get</title><script>document.title = {script}</script>"
    )
    with static_server(tmp_path) as url:
        assert parse_dom(browser.dom(f"{url}set.html")).findtext(".//title") == "yes seen=yes"
        assert parse_dom(browser.dom(f"{url}get.html")).findtext(".//title") == "null "
