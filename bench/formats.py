"""Documents per second for each newsroom format: a 200-item NewsML-G2 newsMessage, and many
single-item files of each format (NewsML-G2 newsItem with an NITF body, NITF, ninjs 1/2/3),
through `feedsvc.sources.read_document` (detection, safe XML, mapping, sanitising) and then
filing under the sample catalogue. The XML parser alone is timed beside the standard library's
expat (what defusedxml wraps), for the choice of parser.

    .venv/bin/python -m bench.formats [--files 1000] [--runs 20]
"""

from __future__ import annotations

import argparse
import json
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from pathlib import Path

from feedsvc.catalog import load_catalog
from feedsvc.sources import Document, kind_of, read_document
from feedsvc.xmlsafe import parse_xml

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests/data/newsroom"
SINGLE = {
    "newsml-g2 newsItem (NITF body)": "g2-01-item-nitf.xml",
    "nitf": "nitf-11-basic.xml",
    "ninjs 1": "ninjs1-16-text.json",
    "ninjs 2": "ninjs2-18-text.json",
    "ninjs 3": "ninjs3-20-text.json",
}
PARAGRAPH = (
    "<p>Harbour officials said the new berth would take ships of up to {n} metres, and that "
    "work on the approach channel would finish before the spring tides.</p>"
)


def news_message(items: int) -> bytes:
    """A newsMessage of `items` text items, each with a three-paragraph NITF body."""
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<newsMessage xmlns="http://iptc.org/std/nar/2006-10-01/"><header>'
        "<sent>2026-11-22T07:00:00Z</sent></header><itemSet>"
    ]
    for n in range(items):
        body = "".join(PARAGRAPH.format(n=n + k) for k in range(3))
        parts.append(
            f'<newsItem guid="urn:newsml:bench.example:2026:{n}" version="1" xml:lang="en">'
            '<itemMeta><itemClass qcode="ninat:text"/>'
            "<versionCreated>2026-11-22T06:50:00Z</versionCreated>"
            '<pubStatus qcode="stat:usable"/></itemMeta>'
            f'<contentMeta><subject qcode="medtop:04000000"/>'
            f"<headline>Harbour berth number {n} opens to larger ships</headline></contentMeta>"
            '<contentSet><inlineXML contenttype="application/nitf+xml">'
            '<nitf xmlns="http://iptc.org/std/NITF/2006-10-18/"><body><body.content>'
            f"{body}</body.content></body></nitf></inlineXML></contentSet></newsItem>"
        )
    parts.append("</itemSet></newsMessage>")
    return "".join(parts).encode()


def rate(work: Callable[[], int], runs: int) -> tuple[float, int]:
    """Runs per second of `work` (best of three batches of `runs`), and the items it gives."""
    items = work()
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(runs):
            work()
        best = min(best, (time.perf_counter() - started) / runs)
    return 1 / best, items


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--files", type=int, default=1000, help="single-item files per format")
    options.add_argument("--runs", type=int, default=20, help="newsMessage parses per batch")
    arguments = options.parse_args()
    catalog = load_catalog(ROOT / "feeds")

    def read(document: Document) -> int:
        items = read_document(document).items
        for item in items:
            catalog.topics_for(item)
        return len(items)

    print(f"{'document':<36} {'docs/s':>9} {'items/s':>9}")
    message = Document("message.xml", news_message(200), "xml")
    per_second, items = rate(lambda: read(message), arguments.runs)
    print(f"{'newsml-g2 newsMessage, 200 items':<36} {per_second:>9.1f} {per_second * items:>9.0f}")
    for label, name in SINGLE.items():
        data = (CORPUS / name).read_bytes()
        documents = [Document(f"{n}-{name}", data, kind_of(name)) for n in range(arguments.files)]
        per_batch, items = rate(lambda docs=documents: sum(read(d) for d in docs), 1)
        per_second = per_batch * len(documents)
        print(f"{label:<36} {per_second:>9.0f} {per_second * items / len(documents):>9.0f}")
    print("\nXML parser alone, the 200-item newsMessage:")
    data = message.data
    for label, parse in (
        ("lxml, safe settings (feedsvc.xmlsafe)", lambda: parse_xml(data, "m") is not None),
        ("stdlib expat (what defusedxml wraps)", lambda: ElementTree.fromstring(data) is not None),
    ):
        per_second, _ = rate(lambda parse=parse: int(parse()), arguments.runs)
        print(f"  {label:<40} {per_second:>8.1f} parses/s ({len(data) / 1e6:.2f} MB)")
    print(json.dumps({"files": arguments.files}))


if __name__ == "__main__":
    main()
