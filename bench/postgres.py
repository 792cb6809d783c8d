"""PostgreSQL figures beside SQLite's: ingest rate, the cost of `generation()`, and the delay
from a commit on one host to the new item in another host's feed.

    python -m bench.postgres [--items N] [--per-doc N] [--posts N] [--keep]

Starts its own PostgreSQL cluster (Debian's binaries, as the tests do, but durable: fsync on)
on a free port of 127.0.0.1, and removes it at the end. Run from the project root.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from feedsvc.catalog import Catalog, load_catalog
from feedsvc.sources import parse_document, read_documents
from feedsvc.store import open_store
from tests.pg import PostgresServer, binaries
from tests.server import Server, environment

from .gen import copy_feeds, write_documents
from .store_build import Row, TimedCatalog, run_cli, table

TOKEN = "bench-token"


def ingest_api(location: str, catalog: Catalog, docs_dir: Path) -> dict[str, float]:
    """In-process ingest of every document in `docs_dir`: total seconds, and the store's part
    (what `Store.ingest` spends besides filing)."""
    timed = TimedCatalog(catalog)
    items, store_time = 0, 0.0
    start = time.perf_counter()
    store = open_store(location, create=True)
    for document in read_documents([str(docs_dir)]):
        parsed = parse_document(document)
        before = time.perf_counter()
        store.ingest(parsed, timed.topics_for)
        store_time += time.perf_counter() - before
        items += len(parsed)
    store.close()
    total = time.perf_counter() - start
    return {"items": items, "total": total, "store": store_time - timed.seconds}


def generation_cost(location: str, calls: int = 100_000) -> float:
    """Microseconds per `generation()` when nothing changes (what every feed request pays)."""
    store = open_store(location)
    store.generation()
    start = time.perf_counter()
    for _ in range(calls):
        store.generation()
    seconds = time.perf_counter() - start
    store.close()
    return seconds / calls * 1e6


def cross_host(db: str, feeds: Path, logs: Path, posts: int) -> list[float]:
    """Two `feedsvc serve --workers 1` on one store: seconds from the answer to a POST on one
    to the first GET of the other whose feed holds the item (polled every millisecond)."""
    env = environment(db, feeds, token=TOKEN)
    hosts = [Server(env, logs, workers=1) for _ in range(2)]
    delays = []
    try:
        for host in hosts:
            host.start(timeout=120)
        for number in range(posts):
            poster, reader = hosts[number % 2], hosts[1 - number % 2]
            reader.request("GET", "/feeds/all.atom")  # its cache holds the feed before
            title = f"Cross-host bench bulletin {number} {time.time_ns()}"
            status, _, _ = poster.request(
                "POST",
                "/api/items",
                f"-\n{title}\n".encode(),
                {"Content-Type": "text/plain", "Authorization": f"Bearer {TOKEN}"},
            )
            assert status == 200, status
            posted = time.perf_counter()
            while title.encode() not in reader.request("GET", "/feeds/all.atom")[2]:
                if time.perf_counter() - posted > 10:
                    raise SystemExit("the other host never served the posted item")
                time.sleep(0.001)
            delays.append(time.perf_counter() - posted)
    finally:
        for host in hosts:
            host.stop()
    return delays


def measure(tmp: Path, args: argparse.Namespace, server: PostgresServer) -> list[Row]:
    n = args.items
    feeds = copy_feeds(tmp / "feeds")
    catalog = load_catalog(feeds)
    env = dict(os.environ, FEEDSVC_FEEDS=str(feeds))
    env.pop("FEEDSVC_DB", None)
    files = write_documents(tmp / "docs", n, args.per_doc, seed=1, feeds_dir=feeds)
    print(f"generated {n} items in {files} documents")
    rows: list[Row] = []
    stores = {"SQLite": str(tmp / "api.sqlite3"), "PostgreSQL": server.database()}
    for engine, location in stores.items():
        phases = ingest_api(location, catalog, tmp / "docs")
        rate = phases["items"] / phases["total"]
        store_rate = phases["items"] / phases["store"]
        print(f"ingest (API, {engine}): {phases['total']:.2f} s, store {phases['store']:.2f} s")
        rows.append(
            Row(f"ingest {n} items, API in-process, {engine}", f"{rate:,.0f} items/s", "", None)
        )
        rows.append(Row(f"  of which store, {engine}", f"{store_rate:,.0f} items/s", "", None))
    for engine, location in (
        ("SQLite", str(tmp / "cli.sqlite3")),
        ("PostgreSQL", server.database()),
    ):
        seconds, _, _ = run_cli(["--db", location, "ingest", str(tmp / "docs")], env)
        rows.append(
            Row(
                f"ingest {n} items, `feedsvc ingest DIR`, {engine}",
                f"{n / seconds:,.0f} items/s",
                "",
                None,
            )
        )
        print(f"ingest (CLI, {engine}): {seconds:.2f} s")
        stores[engine] = location
    for engine, location in stores.items():
        cost = generation_cost(location)
        rows.append(
            Row(
                f"`generation()` when nothing changed, {engine}",
                f"{cost:.2f} µs",
                "no round trip",
                None,
            )
        )
    for engine, location in stores.items():
        delays = sorted(cross_host(location, feeds, tmp, args.posts))
        p95 = delays[max(0, round(len(delays) * 0.95) - 1)]
        rows.append(
            Row(
                f"POST on one host -> item in the other's feed, {engine} ({n} items)",
                f"median {statistics.median(delays) * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms, "
                f"max {delays[-1] * 1000:.1f} ms",
                "≤ 1 s (the re-read)",
                delays[-1] <= 1.0,
            )
        )
        print(rows[-1].cells())
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items to ingest [100000]")
    parser.add_argument("--per-doc", type=int, default=200, help="items per document [200]")
    parser.add_argument("--posts", type=int, default=30, help="cross-host posts [30]")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    bin_dir = binaries()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
    tmp = Path(tempfile.mkdtemp(prefix="feedsvc-bench-pg-"))
    # Durable, as in production (the tests' cluster turns fsync off).
    server = PostgresServer(bin_dir, fsync="on", full_page_writes="on", shared_buffers="128MB")
    server.start()
    try:
        rows = measure(tmp, args, server)
        print()
        print(
            f"bench.postgres: {args.items} items, {args.per_doc} a document; "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(table(rows), flush=True)
    finally:
        server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
