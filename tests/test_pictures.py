"""Pictures: read from JSON Lines, linked (never fetched) in every feed format and on the pages.

The rendering tests build feeds from Items directly; the end-to-end ones go through the store."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import feedparser
import lxml.html
import pytest
from lxml import etree

from feedsvc.catalog import Catalog
from feedsvc.errors import DocumentError
from feedsvc.ingest import ingest_document
from feedsvc.model import Image, Item
from feedsvc.pages import Pages
from feedsvc.render import FORMATS, Feed, load_feed, render_feed
from feedsvc.sources import Document, parse_document

from .browser import chromium
from .conftest import BASE_URL, DATA
from .feedcheck import assert_valid_atom, assert_valid_json_feed

MEDIA = "{http://search.yahoo.com/mrss/}"
WHEN = datetime(2026, 11, 20, 6, 30, tzinfo=UTC)
SPAN = Image(
    "https://img.news.example.org/bridge-span.jpg",
    "image/jpeg",
    1200,
    800,
    "The last span rises over the harbour mouth.",
    "M. Okafor/Desk Photo",
    184_233,
)
CROWD = Image("https://img.news.example.org/bridge-crowd.webp", caption="Onlookers on the quay.")
NO_TYPE = Image("https://img.news.example.org/render?id=7&size=large", width=640, height=360)


def jsonl(text: str) -> list[Item]:
    return parse_document(Document("pics.jsonl", text.encode(), "jsonl"))


def item(*images: Image, item_id: str = "pic-1") -> Item:
    return Item(
        item_id,
        "Harbour cranes lift the last span",
        content="<p>The final steel section went up at first light.</p>",
        summary="The final steel section went up at first light.",
        published=WHEN,
        updated=WHEN,
        topics=("world",),
        images=images,
    )


def feed_of(catalog: Catalog, *items: Item) -> Feed:
    return Feed(catalog.site, catalog.topic("all"), items, WHEN)


# -- JSON Lines ----------------------------------------------------------------------------


def test_images_are_read_from_json_lines_with_every_field() -> None:
    items = parse_document(
        Document("pictures.jsonl", (DATA / "pictures.jsonl").read_bytes(), "jsonl")
    )
    first = items[0]
    assert first.images == (
        SPAN,
        Image(CROWD.url, None, None, None, CROWD.caption, None, None),
    )
    assert items[2].images == () and items[2].language == "de"


def test_the_same_picture_twice_is_one_picture() -> None:
    line = {"id": "a", "title": "t", "images": [{"url": SPAN.url}, {"url": SPAN.url}]}
    assert jsonl(json.dumps(line))[0].images == (Image(SPAN.url),)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        ("x", "'images' must be a list"),
        (["https://a.example/p.jpg"], "'images[0]' must be an object"),
        ([{"caption": "no url"}], "'images[0].url' is required"),
        ([{"url": "/relative.jpg"}], "'images[0].url' must be an absolute http(s) URL"),
        ([{"url": "javascript:alert(1)"}], "absolute http(s) URL"),
        ([{"url": 'https://a.example/"><script>'}], "absolute http(s) URL"),
        ([{"url": "https://a.example/p.jpg", "colour": "red"}], "unknown field images[0].colour"),
        ([{"url": "https://a.example/p.jpg", "width": 0}], "'images[0].width' must be a whole"),
        ([{"url": "https://a.example/p.jpg", "height": 1.5}], "'images[0].height' must be"),
        ([{"url": "https://a.example/p.jpg", "width": True}], "'images[0].width' must be"),
        ([{"url": "https://a.example/p.jpg", "length": "12"}], "'images[0].length' must be"),
        ([{"url": "https://a.example/p.jpg", "type": "jpeg"}], "'images[0].type' must be a"),
        ([{"url": "https://a.example/p.jpg", "caption": 3}], "'images[0].caption' must be a"),
        ([{"url": f"https://a.example/{n}.jpg"} for n in range(21)], "at most 20"),
    ],
)
def test_a_bad_picture_is_one_line_naming_file_and_line(images, message: str) -> None:
    text = '{"id": "ok", "title": "fine"}\n' + json.dumps(
        {"id": "a", "title": "t", "images": images}
    )
    with pytest.raises(DocumentError) as caught:
        jsonl(text)
    assert caught.value.line == 2
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


# -- feeds ---------------------------------------------------------------------------------


def test_rss_carries_media_rss_and_an_enclosure_only_where_the_length_is_known(
    catalog: Catalog,
) -> None:
    items = item(SPAN, CROWD), item(NO_TYPE, item_id="p2"), item(CROWD, item_id="p3")
    data = render_feed(feed_of(catalog, *items), "rss")
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    with_length, without, typed_only = parsed.entries
    assert typed_only.enclosures == [] and typed_only.media_content[0]["url"] == CROWD.url
    assert [m["url"] for m in with_length.media_content] == [SPAN.url, CROWD.url]
    first = with_length.media_content[0]
    assert (first["medium"], first["type"], first["width"], first["height"]) == (
        "image",
        "image/jpeg",
        "1200",
        "800",
    )
    assert first["filesize"] == "184233"
    assert with_length.media_content[1]["type"] == "image/webp"  # from the URL's ending
    assert with_length.media_thumbnail == [{"url": SPAN.url, "width": "1200", "height": "800"}]
    assert with_length.media_credit == [{"content": SPAN.credit}]
    assert [(e.href, e.type, e.length) for e in with_length.enclosures] == [
        (SPAN.url, "image/jpeg", "184233")
    ]
    # RSS requires an enclosure's length: none known, no enclosure; Media RSS still says it all
    assert without.enclosures == []
    assert without.media_content[0]["url"] == NO_TYPE.url
    assert "type" not in without.media_content[0]
    tree = etree.fromstring(data)
    descriptions = tree.findall(f".//item[1]/{MEDIA}content/{MEDIA}description")
    assert [(d.text, d.get("type")) for d in descriptions] == [
        (SPAN.caption, "plain"),
        (CROWD.caption, "plain"),
    ]


def test_atom_links_each_picture_as_an_enclosure_and_carries_media_rss(
    catalog: Catalog,
) -> None:
    data = render_feed(feed_of(catalog, item(SPAN, CROWD), item(NO_TYPE, item_id="p2")), "atom")
    assert_valid_atom(data)
    parsed = feedparser.parse(data)
    assert not parsed.bozo
    first, second = parsed.entries
    assert [(e.href, e.type, e.get("length")) for e in first.enclosures] == [
        (SPAN.url, "image/jpeg", "184233"),
        (CROWD.url, "image/webp", None),
    ]
    assert [m["url"] for m in first.media_content] == [SPAN.url, CROWD.url]
    assert first.media_thumbnail[0]["url"] == SPAN.url
    assert [e.href for e in second.enclosures] == [NO_TYPE.url]


def test_json_feed_has_the_first_picture_as_image_and_typed_ones_as_attachments(
    catalog: Catalog,
) -> None:
    data = render_feed(feed_of(catalog, item(SPAN, CROWD), item(NO_TYPE, item_id="p2")), "json")
    assert_valid_json_feed(data)
    first, second = json.loads(data)["items"]
    assert first["image"] == SPAN.url
    assert first["attachments"] == [
        {
            "url": SPAN.url,
            "mime_type": "image/jpeg",
            "title": SPAN.caption,
            "size_in_bytes": 184233,
        },
        {"url": CROWD.url, "mime_type": "image/webp", "title": CROWD.caption},
    ]
    # an attachment needs a mime_type: a picture of unknown type is only the item's image
    assert second["image"] == NO_TYPE.url and "attachments" not in second


def test_a_feed_without_pictures_declares_no_media_namespace(catalog: Catalog) -> None:
    for extension in ("rss", "atom"):
        data = render_feed(feed_of(catalog, item()), extension)
        assert b"search.yahoo.com/mrss" not in data and b"enclosure" not in data


def test_hostile_picture_text_stays_text_in_every_format(catalog: Catalog) -> None:
    hostile = Image(
        "https://img.example.org/a?b=1&c=<2>",
        caption='<script>x</script> & "quoted" ]]> \u200f',
        credit="R&amp;D <desk>",
    )
    # the URL is not one JSON Lines would let in; a newsroom parser could still hand one over
    feed = feed_of(catalog, item(replace(hostile, url="https://img.example.org/a?b=1&c=2")))
    for extension in FORMATS:
        data = render_feed(feed, extension)
        if extension == "json":
            entry = json.loads(data)["items"][0]
            assert entry["image"] == "https://img.example.org/a?b=1&c=2"
            continue
        parsed = feedparser.parse(data)
        assert not parsed.bozo
        credit = etree.fromstring(data).find(f".//{MEDIA}credit")
        assert credit.text == "R&amp;D <desk>"
        assert b"<desk>" not in data and b"<script>" not in data


# -- pages ---------------------------------------------------------------------------------


def test_item_page_shows_each_picture_sized_with_caption_and_credit(catalog: Catalog) -> None:
    page = lxml.html.fromstring(Pages(catalog).item(item(SPAN, CROWD)))
    figures = page.xpath("//article/figure")
    assert len(figures) == 2
    img = figures[0].find("img")
    assert (img.get("src"), img.get("width"), img.get("height"), img.get("alt")) == (
        SPAN.url,
        "1200",
        "800",
        SPAN.caption,
    )
    assert img.get("loading") is None  # the first picture is what the page opens on
    caption = figures[0].find("figcaption")
    assert SPAN.caption in caption.text_content() and caption.find("span").text == SPAN.credit
    assert figures[1].find("img").get("width") is None  # unknown: not made up
    assert figures[1].find("img").get("loading") == "lazy"


def test_item_page_tells_link_previews_its_picture(catalog: Catalog) -> None:
    page = lxml.html.fromstring(Pages(catalog).item(item(SPAN)))

    def meta(key: str) -> str:
        (value,) = page.xpath(f"//head/meta[@property='{key}' or @name='{key}']/@content")
        return value

    assert meta("og:image") == SPAN.url
    assert (meta("og:image:width"), meta("og:image:height")) == ("1200", "800")
    assert meta("og:image:alt") == SPAN.caption
    assert meta("og:url") == f"{BASE_URL}items/pic-1.html"
    assert meta("twitter:card") == "summary_large_image"
    assert meta("twitter:image") == SPAN.url
    bare = lxml.html.fromstring(Pages(catalog).item(item()))
    assert bare.xpath("//meta[@property='og:image']") == []
    assert bare.xpath("//meta[@name='twitter:card']/@content") == ["summary"]


def test_topic_page_shows_each_items_first_picture(catalog: Catalog) -> None:
    topic = catalog.topic("world")
    latest = [item(SPAN, CROWD), item(item_id="p2")]
    page = lxml.html.fromstring(Pages(catalog).topic(topic, latest))
    items = page.xpath("//ul[@class='latest']/li")
    assert [len(li.findall("figure")) for li in items] == [1, 0]
    img = items[0].find("figure/img")
    assert (img.get("src"), img.get("width"), img.get("height")) == (SPAN.url, "1200", "800")
    assert SPAN.credit in items[0].find("figure/figcaption").text_content()


@pytest.mark.browser
def test_item_page_in_headless_chromium_keeps_the_picture_sized(catalog: Catalog, tmp_path) -> None:
    page = tmp_path / "item.html"
    page.write_bytes(Pages(catalog).item(item(SPAN)))
    with chromium(tmp_path) as browser:
        dom = lxml.html.fromstring(browser.dom(page.as_uri()).encode("utf-8"))
    (img,) = dom.xpath("//article/figure/img")
    assert (img.get("width"), img.get("height")) == ("1200", "800")
    assert dom.xpath("//head/meta[@property='og:image']/@content") == [SPAN.url]
    assert SPAN.credit in dom.xpath("string(//article/figure/figcaption)")


# -- through the store ---------------------------------------------------------------------


def ingest_pictures(store, catalog: Catalog) -> None:
    document = Document("pictures.jsonl", (DATA / "pictures.jsonl").read_bytes(), "jsonl")
    assert ingest_document(store, catalog, document).new == 4


def test_pictures_sent_in_json_lines_reach_every_feed(store, catalog: Catalog) -> None:
    ingest_pictures(store, catalog)
    feed = load_feed(store, catalog, catalog.topic("world"))
    rss = feedparser.parse(render_feed(feed, "rss"))
    bridge = next(e for e in rss.entries if e.title.startswith("Harbour cranes"))
    assert bridge.media_content[0]["url"] == SPAN.url
    assert [e.href for e in bridge.enclosures] == [SPAN.url]
    atom = feedparser.parse(render_feed(feed, "atom"))
    (bridge,) = [e for e in atom.entries if e.title.startswith("Harbour cranes")]
    assert [e.href for e in bridge.enclosures] == [SPAN.url, CROWD.url]
    items = json.loads(render_feed(feed, "json"))["items"]
    (bridge,) = [i for i in items if i["title"].startswith("Harbour cranes")]
    assert bridge["image"] == SPAN.url


def test_pictures_sent_in_json_lines_reach_the_item_page(store, catalog: Catalog) -> None:
    ingest_pictures(store, catalog)
    (bridge,) = [i for i in store.newest("world", 10) if i.id == "pic-0001"]
    page = lxml.html.fromstring(Pages(catalog).item(bridge))
    assert page.xpath("//meta[@property='og:image']/@content") == [SPAN.url]
