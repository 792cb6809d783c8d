"""Sitemap figures: the time to render each sitemap resource from a store of N items.

    python -m bench.sitemap [--items N] [--runs N]

A SQLite store of N generated wire items (bench.gen, 5,000 a document, all first seen at one
instant), then each resource rendered through `SiteMap.render` inside one snapshot, as the live
app and the static build do: `sitemap.xml` (an index past 50,000 URLs), the pages' file, the
first (full) and the last item file, the news sitemap and robots.txt. Median of `--runs`.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from feedsvc.catalog import load_catalog
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.site import NEWS_SITEMAP, ROBOTS, SITEMAP, SiteMap
from feedsvc.store import utc_now

from .gen import FEEDS, copy_feeds, documents

BASE_URL = "https://news.example.org/"
TARGET_FULL_FILE = 5.0  # seconds for a full file of 50,000 item pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_010)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        feeds = copy_feeds(Path(tmp) / "feeds", source=FEEDS)
        catalog = load_catalog(feeds, BASE_URL)
        store = open_filed_store(str(Path(tmp) / "store.sqlite3"), catalog, utc_now, create=True)
        started = time.perf_counter()
        with store.batch():
            for document in documents(args.items, per_doc=5000):
                ingest_document(store, catalog, document)
        print(f"store: {args.items} items in {time.perf_counter() - started:.1f} s")
        site = SiteMap(catalog)
        files = site.sitemap_paths(store)
        # The index, the pages' file, the first item file (full) and the last one.
        shown = dict.fromkeys([*files[:2], *files[-1:]])
        paths = [SITEMAP, *shown, NEWS_SITEMAP, ROBOTS]
        print(f"{'resource':<24} {'ms':>9} {'bytes':>11}")
        for path in paths:
            times = []
            for _ in range(args.runs):
                with store.snapshot():
                    started = time.perf_counter()
                    rendered = site.render(store, path)
                    times.append(time.perf_counter() - started)
            assert rendered is not None, path
            median = statistics.median(times)
            print(f"{path:<24} {median * 1000:>9.1f} {len(rendered.body):>11,}")
            if path == "sitemaps/0.xml":
                met = "met" if median < TARGET_FULL_FILE else "NOT met"
                print(f"  target: a full file under {TARGET_FULL_FILE:.0f} s: {met}")
        store.close()


if __name__ == "__main__":
    main()
