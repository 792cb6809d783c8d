"""Pictures as a reader sees them: headless Chromium opens the live item and topic pages of an
item with pictures, fetches each picture from a real image server on loopback (feedsvc only
links pictures), and the page holds them with their size, caption and credit.

Needs Debian's `chromium`; see tests/test_browser.py for when it is skipped or fails.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from feedsvc.catalog import Catalog
from feedsvc.ingest import ingest_document
from feedsvc.sources import Document
from feedsvc.store import Store
from feedsvc.web import create_app

from .browser import chromium
from .test_browser import QuietHandler, parse_dom, serving, static_server

# One engine: the pages are the same bytes on both (tests/test_engines.py).
pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only]


def png(width: int, height: int) -> bytes:
    """A real PNG of one grey colour, so the browser decodes a picture of the stated size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale
    rows = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))


class Recording(QuietHandler):
    """Serves the files of a folder and remembers every path asked for."""

    requested: list[str]

    def do_GET(self) -> None:
        self.requested.append(self.path)
        super().do_GET()


def test_item_and_topic_pages_show_the_pictures(
    tmp_path: Path, store: Store, catalog: Catalog, settings, clock
) -> None:
    folder = tmp_path / "pictures" / "pics"
    folder.mkdir(parents=True)
    for name in ("quay.png", "map.png"):
        (folder / name).write_bytes(png(120, 80))
    requested: list[str] = []
    handler = type("Handler", (Recording,), {"requested": requested})
    with static_server(folder.parent, handler) as pics:
        images = [
            {
                "url": f"{pics}pics/quay.png",
                "type": "image/png",
                "width": 120,
                "height": 80,
                "caption": "Ferries tied up at the east quay at dusk.",
                "credit": "R. Anand/Harbour Desk",
            },
            {"url": f"{pics}pics/map.png", "caption": "The route of the new line."},
        ]
        record = {
            "id": "pics-browser-1",
            "title": "Ferry line to the islands reopens after a winter refit",
            "summary": "Two boats return to the crossing from Monday.",
            "author": "R. Anand",
            "published": "2026-11-21T09:00:00Z",
            "topics": ["world"],
            "images": images,
        }
        document = Document("pics.jsonl", (json.dumps(record) + "\n").encode(), "jsonl")
        assert ingest_document(store, catalog, document).new == 1
        app = create_app({"SETTINGS": settings, "CLOCK": clock})
        with serving(make_server("127.0.0.1", 0, app, threaded=True)) as live:
            item_url = f"{live}items/pics-browser-1.html"
            topic_url = f"{live}topics/world.html"
            with chromium(tmp_path / "chromium") as browser:
                doms = browser.doms([item_url, topic_url])

    # The browser fetched both pictures of the item page (the topic page shows the first).
    assert "/pics/quay.png" in requested and "/pics/map.png" in requested, requested

    page = parse_dom(doms[item_url])
    figures = page.xpath("//article//figure[@class='picture']")
    assert len(figures) == 2, doms[item_url]
    first, second = figures
    (img,) = first.xpath("img")
    assert img.get("src") == images[0]["url"]
    # Its size is in the markup, so the page does not move when the picture arrives.
    assert (img.get("width"), img.get("height")) == ("120", "80")
    assert img.get("alt") == images[0]["caption"]
    caption = first.xpath("string(figcaption)")
    assert images[0]["caption"] in caption and images[0]["credit"] in caption
    (lazy,) = second.xpath("img")
    assert lazy.get("src") == images[1]["url"] and lazy.get("width") is None
    assert lazy.get("loading") == "lazy"
    # Shared links show the first picture.
    meta = {m.get("property"): m.get("content") for m in page.xpath("//head/meta[@property]")}
    assert meta["og:image"] == images[0]["url"]
    assert (meta["og:image:width"], meta["og:image:height"]) == ("120", "80")

    topic = parse_dom(doms[topic_url])
    shown = topic.xpath("//figure[@class='picture']/img/@src")
    assert shown == [images[0]["url"]], doms[topic_url]
