"""Store and build figures: ingest rate, render time, build vs rebuild, ingest peak memory.

    python -m bench.store_build [--items N] [--per-doc N] [--runs N] [--keep]

Everything happens in a temporary directory (removed at the end unless --keep), with a
snapshot of feeds/ so concurrent edits to the topic files do not disturb a run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from feedsvc.catalog import ALL, Catalog, load_catalog
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.model import Item
from feedsvc.render import FORMATS, load_feed, render_feed
from feedsvc.sources import parse_document, read_documents

from .gen import copy_feeds, documents, write_documents

FEEDSVC = str(Path(sys.executable).with_name("feedsvc"))
BASE_URL = "http://127.0.0.1:8000/"  # the shipped site.toml has none: builds need one


@dataclass
class Row:
    measure: str
    figure: str
    target: str
    met: bool | None  # None: no target

    def cells(self) -> list[str]:
        met = "-" if self.met is None else "yes" if self.met else "NO"
        return [self.measure, self.figure, self.target, met]


def table(rows: list[Row]) -> str:
    header = ["measure", "figure", "target", "met"]
    cells = [header] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(4)]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    rule = "| " + " | ".join("-" * w for w in widths) + " |"
    return "\n".join([line(header), rule, *(line(c) for c in cells[1:])])


class TimedCatalog:
    """Delegates `topics_for` to a catalogue and adds up the time spent filing."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.seconds = 0.0

    def topics_for(self, item: Item) -> tuple[str, ...]:
        start = time.perf_counter()
        topics = self.catalog.topics_for(item)
        self.seconds += time.perf_counter() - start
        return topics


def run_cli(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Run `feedsvc ARGS`; wall seconds, max RSS in KiB (this child alone), stdout."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([FEEDSVC, *args], env=env, stdout=out, stderr=out)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        text = out.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise SystemExit(f"feedsvc {' '.join(args)} failed ({process.returncode}):\n{text}")
    return seconds, usage.ru_maxrss, text


def ingest_api(db: Path, catalog: Catalog, docs_dir: Path) -> dict[str, float]:
    """In-process ingest of every document in `docs_dir`, timed by phase."""
    timed = TimedCatalog(catalog)
    parse = store_time = 0.0
    items = 0
    start = time.perf_counter()
    store = open_filed_store(db, catalog, create=True)
    for document in read_documents([str(docs_dir)]):
        t0 = time.perf_counter()
        parsed = parse_document(document)
        t1 = time.perf_counter()
        store.ingest(parsed, timed.topics_for)
        store_time += time.perf_counter() - t1
        parse += t1 - t0
        items += len(parsed)
    store.close()
    total = time.perf_counter() - start
    return {
        "items": items,
        "total": total,
        "parse": parse,
        "file": timed.seconds,
        "store": store_time - timed.seconds,
    }


def render_times(db: Path, catalog: Catalog, runs: int) -> dict[str, tuple[float, float]]:
    """Median seconds per format: (load from the store + render, render alone)."""
    store = open_filed_store(db, catalog)
    topic = catalog.topic(ALL)
    assert topic is not None
    results = {}
    for extension in FORMATS:
        with_load, alone = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            feed = load_feed(store, catalog, topic, 50)
            t1 = time.perf_counter()
            render_feed(feed, extension)
            t2 = time.perf_counter()
            with_load.append(t2 - t0)
            alone.append(t2 - t1)
        assert len(feed.items) == 50 and all(item.content for item in feed.items)
        results[extension] = (statistics.median(with_load), statistics.median(alone))
    store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items to ingest [100000]")
    parser.add_argument("--per-doc", type=int, default=200, help="items per document [200]")
    parser.add_argument("--runs", type=int, default=200, help="renders per format [200]")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="feedsvc-bench-"))
    try:
        rows = measure(tmp, args)
        print()
        print(
            f"bench.store_build: {args.items} items, {args.per_doc} a document; "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}"
        )
        print(table(rows), flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            print(f"removing {tmp} ...", flush=True)
            shutil.rmtree(tmp, ignore_errors=True)


def cli_ingest(docs: Path, db: Path, n: int, label: str, env: dict[str, str]) -> list[Row]:
    """`feedsvc ingest DOCS` in a child process: its rate and its peak memory."""
    seconds, maxrss, _ = run_cli(["--db", str(db), "ingest", str(docs)], env)
    rate = n / seconds
    print(f"ingest (CLI, {label}): {seconds:.2f} s, max RSS {maxrss / 1024:.0f} MiB")
    return [
        Row(f"ingest {n} items, {label}", f"{rate:,.0f} items/s", "≥ 60k", rate >= 60_000),
        Row(
            f"peak memory of `feedsvc ingest`, {n} items, {label}",
            f"{maxrss / 1024:.0f} MiB",
            "≤ 200 MB",
            maxrss * 1024 <= 200_000_000,
        ),
    ]


def measure(tmp: Path, args: argparse.Namespace) -> list[Row]:
    n = args.items
    feeds = copy_feeds(tmp / "feeds")
    catalog = load_catalog(feeds, BASE_URL)
    env = dict(os.environ, FEEDSVC_FEEDS=str(feeds), FEEDSVC_BASE_URL=BASE_URL)
    env.pop("FEEDSVC_DB", None)
    rows: list[Row] = []

    start = time.perf_counter()
    files = write_documents(tmp / "docs", n, args.per_doc, seed=1, feeds_dir=feeds)
    print(f"generated {n} items in {files} documents: {time.perf_counter() - start:.1f} s")

    # Ingest, in-process, by phase.
    phases = ingest_api(tmp / "api.sqlite3", catalog, tmp / "docs")
    rate = phases["items"] / phases["total"]
    print(
        f"ingest (API): {phases['total']:.2f} s; parse {phases['parse']:.2f} s, "
        f"file {phases['file']:.2f} s, store {phases['store']:.2f} s"
    )
    rows.append(Row(f"ingest {n} items, API in-process", f"{rate:,.0f} items/s", "≥ 60k", None))
    rows[-1].met = rate >= 60_000
    for phase in ("parse", "file", "store"):
        share = phases[phase] / phases["total"]
        per_s = phases["items"] / phases[phase]
        rows.append(Row(f"  of which {phase}", f"{share:.0%} ({per_s:,.0f} items/s)", "", None))

    # Ingest with the CLI: rate with process start-up, and peak memory of that process; then
    # the same items as one document (one transaction: the per-document commit drops out).
    db = tmp / "cli.sqlite3"  # also the store the build below publishes
    rows += cli_ingest(tmp / "docs", db, n, "`feedsvc ingest DIR`", env)
    write_documents(tmp / "onedoc", n, n, seed=1, feeds_dir=feeds)
    rows += cli_ingest(tmp / "onedoc", tmp / "one.sqlite3", n, "one document", env)

    # Render: a 50-entry feed of full articles.
    rdb = tmp / "render.sqlite3"
    store = open_filed_store(rdb, catalog, create=True)
    for document in documents(200, per_doc=1, seed=2, feeds_dir=feeds, article_share=1.0):
        ingest_document(store, catalog, document)
    store.close()
    for extension, (with_load, alone) in render_times(rdb, catalog, args.runs).items():
        rows.append(
            Row(
                f"render 50-entry {extension} feed (load + render, median)",
                f"{with_load * 1000:.2f} ms (render {alone * 1000:.2f})",
                "≤ 5 ms",
                with_load <= 0.005,
            )
        )

    # Build: full into an empty OUTDIR, then a rebuild after one new item.
    site = tmp / "site"
    full, _, out = run_cli(["--db", str(db), "build", str(site)], env)
    print(f"build (full): {full:.2f} s: {out.strip()}")
    one = tmp / "one.txt"
    one.write_text("-\nBench rebuild probe: one new headline about the football league\n")
    run_cli(["--db", str(db), "ingest", str(one)], env)
    again, _, out = run_cli(["--db", str(db), "build", str(site)], env)
    print(f"build (after one new item): {again:.2f} s: {out.strip()}")
    idle, _, _ = run_cli(["--version"], env)
    rows.append(Row(f"full `feedsvc build` of {n} items", f"{full:.1f} s", "", None))
    rows.append(
        Row(
            "rebuild after 1 new item",
            f"{again:.2f} s ({again / full:.1%} of full)",
            "≤ 5% of full",
            again <= 0.05 * full,
        )
    )
    rows.append(Row("  (`feedsvc --version` start-up, for scale)", f"{idle:.2f} s", "", None))
    return rows


if __name__ == "__main__":
    main()
