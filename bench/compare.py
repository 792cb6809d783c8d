"""Before and after: the same measures of two checkouts in one run, their runs alternating, so
a machine whose speed moves (shared cores) moves both alike.

    python -m bench.compare BEFORE AFTER [--items 100000] [--rounds 2] [--no-postgres]
                            [--big-store PATH] [--big-items 1000000] [--probes 40]
                            [--big-build {both,after}] [--keep]

BEFORE and AFTER are checkouts of feedsvc, each with its own venv (CHECKOUT/.venv, installed
with `pip install -e .`); every measure runs that venv's `feedsvc` or `python`, so the script
measures whatever code the checkouts hold (run it from either). Per round, each checkout in
turn (the order flips every round):

- ingest: `feedsvc ingest DIR` of ITEMS generated wire items (bench.gen, 200 a document) into a
  new SQLite file, and into a new PostgreSQL database (a cluster of its own, fsync on);
- build: `feedsvc build` of that SQLite store into an empty folder; then `feedsvc ingest` of
  one new headline and `feedsvc build` again (the incremental build);
- big store (with --big-store, a SQLite store of BIG_ITEMS items made by bench.gen's
  documents; made there once if missing, by AFTER, and copied for BEFORE): `SiteMap.render`
  of feeds (each topic and format in turn), topic pages, and a search page per word, timed
  one by one in the checkout's python with no cache in front (p50), and that process's RSS
  when done: what a serving worker holds besides its cache; with --big-build, a full build of
  it into an empty folder and the incremental build after one new item (ROUNDS times), by
  both checkouts or by AFTER only.

Prints each figure per round, and a table: before and after (medians of the rounds), ratio
after/before, and the spread of the rounds (max/min - 1) as the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .gen import copy_feeds, write_documents

BASE_URL = "http://127.0.0.1:8000/"

# Run by each checkout's python: uncached renders from the big store, and the RSS after them.
PROBE = r"""
import json, statistics, sys, time
from pathlib import Path
from feedsvc.catalog import load_catalog
from feedsvc.query import FeedParameters, parse
from feedsvc.render import FORMATS, feed_path, topic_path
from feedsvc.site import SiteMap
from feedsvc.store import open_store

db, feeds, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
catalog = load_catalog(Path(feeds), "http://127.0.0.1:8000/")
store = open_store(db)
site = SiteMap(catalog)
slugs = [topic.slug for topic in catalog.feeds]
words = ["energy", "election", "storm", "market", "vaccine", "league", "climate", "court"]

def p50(calls):
    times = []
    for call in calls:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000

def render(path):
    return lambda: site.render(store, path)

def search(slug, word):
    return lambda: site.search_page(slug, FeedParameters(query=parse(word)))(store)

paths = [feed_path(s, e) for s in slugs for e in FORMATS]
feed = p50([render(paths[i % len(paths)]) for i in range(runs)])
page = p50([render(topic_path(slugs[i % len(slugs)])) for i in range(runs)])
query = p50([search(slugs[i % len(slugs)], words[i % len(words)]) for i in range(runs)])
status = Path("/proc/self/status").read_text().splitlines()
rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024
print(json.dumps({"feed": feed, "page": page, "query": query, "rss": rss}))
"""


class Checkout:
    def __init__(self, label: str, path: Path) -> None:
        self.label, self.path = label, path.resolve()
        self.bin = self.path / ".venv" / "bin"
        if not (self.bin / "feedsvc").exists():
            raise SystemExit(f"{self.bin / 'feedsvc'} not found: make the checkout's venv first")
        self.commit = subprocess.run(
            ["git", "-C", str(self.path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()

    def __str__(self) -> str:
        return f"{self.label} ({self.path}, {self.commit or 'no git'})"


CPU = {"last": 0.0}  # CPU seconds (user + system) of the last `timed` command and its workers


def timed(command: list[str], env: dict[str, str], log: Path) -> float:
    """Seconds `command` takes; its output goes to `log`; a failure stops the run. Its CPU
    time, worker processes included, is left in CPU["last"]: steadier than wall time when
    other processes share the cores."""
    with log.open("ab") as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        result = subprocess.run(command, env=env, stdout=out, stderr=out, check=False)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU["last"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if result.returncode:
        raise SystemExit(f"failed ({result.returncode}): {' '.join(command)}; see {log}")
    return seconds


def spread(values: list[float]) -> str:
    return f"{max(values) / min(values) - 1:.0%}" if len(values) > 1 and min(values) else "-"


class Figures:
    """Each measure's values per checkout, in the order measured."""

    def __init__(self) -> None:
        self.values: dict[str, dict[str, list[float]]] = {}
        self.units: dict[str, tuple[str, bool]] = {}  # unit, and whether lower is better

    def add(self, measure: str, label: str, value: float, unit: str, lower: bool = True) -> None:
        self.values.setdefault(measure, {}).setdefault(label, []).append(value)
        self.units[measure] = (unit, lower)
        print(f"  {measure:<42} {label:<6} {value:12,.2f} {unit}", flush=True)

    def table(self) -> str:
        lines = [
            "| measure | before | after | after/before | spread of rounds (before; after) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for measure, by_label in self.values.items():
            unit, _ = self.units[measure]
            before, after = by_label.get("before", []), by_label.get("after", [])
            b = statistics.median(before) if before else None
            a = statistics.median(after) if after else None
            ratio = f"{a / b:.2f}x" if a is not None and b else "-"
            cells = [f"{v:,.2f} {unit}" if v is not None else "-" for v in (b, a)]
            lines.append(
                f"| {measure} | {cells[0]} | {cells[1]} | {ratio} | "
                f"{spread(before)}; {spread(after)} |"
            )
        return "\n".join(lines)


def make_big_store(checkout: Checkout, path: Path, feeds: Path, items: int, log: Path) -> None:
    """A SQLite store of `items` generated items at `path`, made by `checkout`'s ingest (under a
    temporary name: an interrupted run leaves no half store)."""
    docs = path.with_name(path.name + ".docs")
    shutil.rmtree(docs, ignore_errors=True)
    write_documents(docs, items, per_doc=1000, seed=7, feeds_dir=feeds)
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    env = dict(os.environ, FEEDSVC_FEEDS=str(feeds), FEEDSVC_BASE_URL=BASE_URL)
    env.pop("FEEDSVC_DB", None)
    seconds = timed(
        [str(checkout.bin / "feedsvc"), "--db", str(partial), "ingest", str(docs)], env, log
    )
    partial.rename(path)
    shutil.rmtree(docs, ignore_errors=True)
    print(f"big store of {items:,} items made in {seconds:.0f} s: {path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path, help="checkout measured as 'before'")
    parser.add_argument("after", type=Path, help="checkout measured as 'after'")
    parser.add_argument("--items", type=int, default=100_000, help="items to ingest [100000]")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of each measure [2]")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-build", action="store_true", help="no full/incremental build")
    parser.add_argument("--big-store", type=Path, help="the big SQLite store (made if missing)")
    parser.add_argument("--big-items", type=int, default=1_000_000, help="its items [1000000]")
    parser.add_argument("--probes", type=int, default=40, help="renders per big-store p50 [40]")
    parser.add_argument(
        "--big-build",
        choices=["both", "after"],
        help="also a full build of the big store, then the incremental build after one new item "
        "(by both checkouts, or by 'after' only: a full build of 1M items takes many minutes)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    checkouts = [Checkout("before", args.before), Checkout("after", args.after)]
    for checkout in checkouts:
        print(checkout)
    tmp = Path(tempfile.mkdtemp(prefix="feedsvc-compare-"))
    log = tmp / "commands.log"
    feeds = copy_feeds(tmp / "feeds")
    env = dict(os.environ, FEEDSVC_FEEDS=str(feeds), FEEDSVC_BASE_URL=BASE_URL)
    env.pop("FEEDSVC_DB", None)
    docs = tmp / "docs"
    write_documents(docs, args.items, per_doc=200, seed=1, feeds_dir=feeds)
    one = tmp / "one"
    figures = Figures()
    server = None
    try:
        if not args.no_postgres:
            from tests.pg import PostgresServer, binaries

            bin_dir = binaries()
            if bin_dir is None:
                raise SystemExit("PostgreSQL binaries not found: apt-get install postgresql")
            server = PostgresServer(bin_dir, fsync="on", full_page_writes="on")
            server.start()
        for round_ in range(args.rounds):
            order = checkouts if round_ % 2 == 0 else checkouts[::-1]
            print(f"round {round_ + 1}", flush=True)
            for checkout in order:
                feedsvc = str(checkout.bin / "feedsvc")
                db = tmp / f"{checkout.label}-{round_}.sqlite3"
                seconds = timed([feedsvc, "--db", str(db), "ingest", str(docs)], env, log)
                figures.add("ingest SQLite", checkout.label, args.items / seconds, "items/s", False)
                cpu = CPU["last"] / args.items * 1e6
                figures.add("ingest SQLite CPU time per item", checkout.label, cpu, "µs")
                if server is not None:
                    url = server.database()
                    seconds = timed([feedsvc, "--db", url, "ingest", str(docs)], env, log)
                    figures.add(
                        "ingest PostgreSQL", checkout.label, args.items / seconds, "items/s", False
                    )
                    server.drop(url)
                if not args.no_build:
                    site = tmp / f"site-{checkout.label}-{round_}"
                    seconds = timed([feedsvc, "--db", str(db), "build", str(site)], env, log)
                    figures.add("full build (SQLite)", checkout.label, seconds, "s")
                    figures.add("full build CPU time (SQLite)", checkout.label, CPU["last"], "s")
                    one.mkdir(exist_ok=True)
                    (one / "one.txt").write_text(f"-\nLighthouse keeper {round_} retires\n")
                    timed([feedsvc, "--db", str(db), "ingest", str(one)], env, log)
                    seconds = timed([feedsvc, "--db", str(db), "build", str(site)], env, log)
                    figures.add("incremental build, 1 new item", checkout.label, seconds, "s")
                    if not args.keep:  # (a folder of 200k files: minutes on a disk with discard)
                        shutil.rmtree(site, ignore_errors=True)
                if not args.keep:
                    db.unlink(missing_ok=True)
        if args.big_store:
            big(args, checkouts, feeds, figures, log)
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"bench.compare: {args.items:,} items, {args.rounds} rounds, {os.cpu_count()} CPUs")
    print(figures.table())
    return 0


def big(
    args: argparse.Namespace, checkouts: list[Checkout], feeds: Path, figures: Figures, log: Path
) -> None:
    """The big store's figures, each checkout on its own copy of the store."""
    store: Path = args.big_store
    if not store.exists():
        make_big_store(checkouts[1], store, feeds, args.big_items, log)
    copies = {}
    for checkout in checkouts:
        copy = store.with_name(f"{store.stem}-{checkout.label}{store.suffix}")
        if not copy.exists():
            shutil.copyfile(store, copy)
        copies[checkout.label] = copy
    probe(args, checkouts, copies, feeds, figures)
    if args.big_build:
        env = dict(os.environ, FEEDSVC_FEEDS=str(feeds), FEEDSVC_BASE_URL=BASE_URL)
        env.pop("FEEDSVC_DB", None)
        one = store.with_name(f"{store.stem}-one")
        one.mkdir(exist_ok=True)
        for checkout in checkouts if args.big_build == "both" else checkouts[1:]:
            feedsvc, db = str(checkout.bin / "feedsvc"), str(copies[checkout.label])
            site = store.with_name(f"{store.stem}-site-{checkout.label}")
            shutil.rmtree(site, ignore_errors=True)
            seconds = timed([feedsvc, "--db", db, "build", str(site)], env, log)
            figures.add("big store: full build", checkout.label, seconds, "s")
            for round_ in range(args.rounds):
                (one / "one.txt").write_text(
                    f"-\nHarbour pilot {checkout.label} {round_} retires\n"
                )
                timed([feedsvc, "--db", db, "ingest", str(one)], env, log)
                seconds = timed([feedsvc, "--db", db, "build", str(site)], env, log)
                figures.add(
                    "big store: incremental build, 1 new item", checkout.label, seconds, "s"
                )
            shutil.rmtree(site, ignore_errors=True)


def probe(
    args: argparse.Namespace,
    checkouts: list[Checkout],
    copies: dict[str, Path],
    feeds: Path,
    figures: Figures,
) -> None:
    for round_ in range(args.rounds):
        order = checkouts if round_ % 2 == 0 else checkouts[::-1]
        for checkout in order:
            command = [
                str(checkout.bin / "python"),
                "-c",
                PROBE,
                str(copies[checkout.label]),
                str(feeds),
                str(args.probes),
            ]
            # In the checkout: `python -c` puts the working directory first on sys.path.
            out = subprocess.run(
                command, capture_output=True, text=True, check=False, cwd=checkout.path
            )
            if out.returncode:
                raise SystemExit(f"probe failed: {out.stderr[-2000:]}")
            probe = json.loads(out.stdout.strip().splitlines()[-1])
            label = checkout.label
            figures.add("big store: feed p50 (uncached)", label, probe["feed"], "ms")
            figures.add("big store: topic page p50 (uncached)", label, probe["page"], "ms")
            figures.add("big store: search p50 (uncached)", label, probe["query"], "ms")
            figures.add("big store: RSS after them", label, probe["rss"], "MiB")


if __name__ == "__main__":
    sys.exit(main())
