"""Search figures: folding cost, FTS5 index build and size, and query latency over N items.

    python -m bench.search [--items N] [--runs N] [--keep]

Items are generated (bench.gen's vocabulary: headlines, about 10% full articles, one in ten
with an accented name) into a temporary SQLite file holding the store's columns and indexes
that search uses (`items` seq, published, title, body and `items_newest`; `filed` with one of
seven topics an item) and the search index of feedsvc/store/sqlite_search.py. One item in
fifty carries a source date up to 30 days before its arrival, so dates are out of step with
seq. Each query
asks for the newest 50 matches two ways: "all matches" reads every match and sorts
(`search_condition` + `ORDER BY published DESC, seq DESC LIMIT 50`), "newest" is
`newest_matches`; the script stops if they disagree.

    python -m bench.search --app [--items N] [--runs N] [--cache DIR]

The query feed through the app instead: a real store of N generated items (bench.serve's
`make_store`: generated wire documents through `feedsvc.ingest`, so the index is made as an
ingest makes it), then GET requests straight into the WSGI app (`create_app`, fast path on,
no network): each query's Atom feed uncached (an app whose search cache holds nothing, so
every request renders) and cached, beside the plain `all` feed; then the time the schema 4
migration takes to index the store anew. `--cache DIR` keeps the store for later runs.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from feedsvc.config import Settings
from feedsvc.query import FeedParameters, parse, parse_filterout, tokens
from feedsvc.store import open_store
from feedsvc.store.sqlite_search import (
    CREATE_TABLE,
    INSERT_ROW,
    newest_matches,
    to_fts5,
)
from tests.fts_reference import index_row, search_condition

from .gen import WireGenerator, copy_feeds

ACCENTED = ["Nguyễn", "Mbappé", "Ørsted", "Łukasz", "Müller", "Sánchez", "Đặng", "Çelik"]
QUERIES = {
    "rare word": "Nguyen",
    "common word": "says",
    "two words": "council budget",
    "phrase": '"prime minister"',
    "OR": "Madrid OR Lisbon",
    "exclusion": "council -budget",
    "accented, 3 terms": "Mbappé Paris -strike",
}
SCHEMA = """
CREATE TABLE items (seq INTEGER PRIMARY KEY, published INTEGER NOT NULL, title TEXT, body TEXT);
CREATE INDEX items_newest ON items (published, seq);
CREATE TABLE filed (
    topic TEXT NOT NULL, published INTEGER NOT NULL, seq INTEGER NOT NULL,
    PRIMARY KEY (topic, published, seq)
) WITHOUT ROWID;
CREATE INDEX filed_seq ON filed (seq);
"""


def generate(count: int, seed: int = 7) -> list[tuple[str, str]]:
    gen = WireGenerator(seed)
    rnd = gen.random
    items = []
    for _ in range(count):
        title = gen.headline()
        if rnd.random() < 0.1:
            title += " " + rnd.choice(ACCENTED)
        body = title
        if rnd.random() < 0.1:
            body = "\n".join(gen.paragraph() for _ in range(rnd.randint(3, 6)))
        items.append((title, body))
    return items


def per_item_us(texts: list[str], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for text in texts:
            tokens(text)
        best = min(best, time.perf_counter() - start)
    return best / len(texts) * 1e6


def build(path: Path, items: list[tuple[str, str]]) -> tuple[sqlite3.Connection, float, float]:
    """The database; seconds to write items alone, and seconds for items plus the index."""
    timings = []
    for with_index in (False, True):
        path.unlink(missing_ok=True)
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript(SCHEMA)
        db.execute(CREATE_TABLE)
        start = time.perf_counter()
        db.execute("BEGIN")
        for seq, (title, body) in enumerate(items, start=1):
            # A second between arrivals; one item in fifty dated by its source, days before.
            published = seq * 1_000_000
            if seq % 50 == 0:
                published -= (seq * 7919 % 30) * 86_400_000_000
            db.execute("INSERT INTO items VALUES (?, ?, ?, ?)", (seq, published, title, body))
            db.execute("INSERT INTO filed VALUES (?, ?, ?)", (f"t{seq % 7}", published, seq))
            if with_index:
                db.execute(INSERT_ROW, index_row(seq, title, body))
        db.execute("COMMIT")
        timings.append(time.perf_counter() - start)
        if not with_index:
            db.close()
    return db, timings[0], timings[1]


def table_bytes(db: sqlite3.Connection, prefix: str) -> int:
    rows = db.execute("SELECT sum(pgsize) FROM dbstat WHERE name LIKE ?", (prefix + "%",))
    return rows.fetchone()[0] or 0


def median_ms(run: Callable[[], list[int]], runs: int) -> tuple[float, list[int]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def compare(
    db: sqlite3.Connection, parameters: FeedParameters, topic: str | None, runs: int
) -> tuple[float, float, int]:
    """(all matches ms, newest ms, matches): the plain way and `newest_matches`."""
    condition, values = search_condition(parameters)
    if topic is not None:
        condition += " AND items.seq IN (SELECT seq FROM filed WHERE topic = ?)"
        values.append(topic)
    sql = f"SELECT seq FROM items WHERE {condition} ORDER BY published DESC, seq DESC LIMIT 50"
    plain, expected = median_ms(lambda: [seq for (seq,) in db.execute(sql, values)], runs)
    fast, got = median_ms(lambda: newest_matches(db, parameters, 50, topic), runs)
    if got != expected:
        raise SystemExit(f"newest_matches disagrees for {parameters}")
    matches = db.execute(f"SELECT count(*) FROM items WHERE {condition}", values).fetchone()[0]
    return plain, fast, matches


# -- through the app ---------------------------------------------------------------------------

APP_TARGET_MS = 20.0  # uncached query feed, p50


def request(app: Callable, path: str, query: str = "") -> tuple[str, bytes]:
    """One GET straight into the WSGI app: (status, body)."""
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    status = []
    body = b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
    return status[0], body


def timed(app: Callable, feeds: dict[str, tuple[str, str]], runs: int) -> dict[str, list[float]]:
    """Seconds of each of `runs` GETs of each feed (name: path, query), taken in turns (one of
    each, then again), so a burst of load elsewhere on the machine weighs on all alike."""
    times: dict[str, list[float]] = {name: [] for name in feeds}
    for _ in range(runs):
        for name, (path, query) in feeds.items():
            start = time.perf_counter()
            status, _ = request(app, path, query)
            times[name].append(time.perf_counter() - start)
            if not status.startswith("200"):
                raise SystemExit(f"{path}?{query}: {status}")
    return times


def figures(times: list[float]) -> tuple[float, float]:
    """(p50 ms, requests per second)."""
    return statistics.median(times) * 1000, len(times) / sum(times)


def app_figures(args: argparse.Namespace, workdir: Path) -> None:
    from feedsvc.web import create_app

    from .serve import make_store

    home = args.cache.resolve() if args.cache else workdir
    home.mkdir(parents=True, exist_ok=True)
    feeds = home / "feeds"
    if not (feeds / "site.toml").is_file():
        copy_feeds(feeds)
    db = home / f"store-{args.items}.sqlite3"
    if not db.exists():
        make_store(db, feeds, args.items)
    settings = Settings(db=str(db), feeds_dir=feeds, base_url="http://127.0.0.1:8000/")
    uncached = create_app({"SETTINGS": settings, "SEARCHES_CACHED": 0})
    cached = create_app({"SETTINGS": settings})
    searches = {name: ("/feeds/all.atom", "q=" + text) for name, text in QUERIES.items()}
    searches["filterout only"] = ("/feeds/all.atom", "filterout=says%7Ccouncil")
    searches["one topic, common word"] = ("/feeds/world.atom", "q=says")
    entries = {}
    for name, (path, query) in searches.items():
        request(uncached, path, query)  # the store's pages in the OS cache, as a server's are
        entries[name] = request(cached, path, query)[1].count(b"<entry>")
    request(cached, "/feeds/all.atom")
    cold = timed(uncached, searches, args.runs)
    warm = timed(
        cached, {**searches, "the all feed (no query)": ("/feeds/all.atom", "")}, args.runs * 20
    )
    print(
        f"\nAtom feed, newest 50, through the app ({args.items:,} items; "
        f"{args.runs} GETs uncached, {args.runs * 20} cached)"
    )
    print(
        f"{'feed (entries)':<34} {'uncached p50 ms':>15} {'req/s':>7} "
        f"{'cached p50 ms':>13} {'req/s':>7}"
    )
    worst = 0.0
    for name in searches:
        cold_ms, cold_rate = figures(cold[name])
        warm_ms, warm_rate = figures(warm[name])
        worst = max(worst, cold_ms)
        label = f"{name} ({entries[name]})"
        print(f"{label:<34} {cold_ms:15.2f} {cold_rate:7.0f} {warm_ms:13.3f} {warm_rate:7.0f}")
    plain_ms, plain_rate = figures(warm["the all feed (no query)"])
    print(f"{'the all feed (no query)':<34} {'':>15} {'':>7} {plain_ms:13.3f} {plain_rate:7.0f}")
    met = "yes" if worst <= APP_TARGET_MS else "NO"
    print(f"slowest uncached p50: {worst:.2f} ms (target <= {APP_TARGET_MS:.0f} ms: {met})")

    # The migration that adds the index, as an existing store meets it.
    copy = workdir / "migrate.sqlite3"
    shutil.copyfile(db, copy)
    with sqlite3.connect(copy) as old:
        old.executescript(
            "DROP TABLE items_search; DELETE FROM meta WHERE key = 'fold'; PRAGMA user_version = 3;"
        )
    old.close()
    start = time.perf_counter()
    open_store(copy).close()
    print(f"schema 3 -> 4 (index {args.items:,} items): {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--app", action="store_true", help="the query feed through the app")
    parser.add_argument("--cache", type=Path, help="--app: keep the store here for later runs")
    args = parser.parse_args()
    if args.app:
        workdir = Path(tempfile.mkdtemp(prefix="feedsvc-bench-search-app-"))
        try:
            app_figures(args, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    workdir = Path(tempfile.mkdtemp(prefix="feedsvc-bench-search-"))
    try:
        started = time.perf_counter()
        items = generate(args.items)
        print(f"{args.items} items generated in {time.perf_counter() - started:.1f} s")
        sample = items[:20_000]
        ascii_titles = [title for title, _ in sample if title.isascii()]
        accented_titles = [title for title, _ in sample if not title.isascii()]
        articles = [body for title, body in sample if body != title]
        print(f"fold, ASCII title:        {per_item_us(ascii_titles):7.2f} µs")
        print(f"fold, accented title:     {per_item_us(accented_titles):7.2f} µs")
        print(f"fold, article body:       {per_item_us(articles):7.2f} µs")
        start = time.perf_counter()
        for _ in range(1000):
            to_fts5(parse('Mbappé "Real Madrid" OR psg -transfer'))
        print(f"parse + to_fts5, 4 terms: {(time.perf_counter() - start) * 1000:7.2f} µs")

        db, plain, indexed = build(workdir / "search.sqlite3", items)
        print(f"write items:              {plain:7.2f} s")
        print(f"write items + index:      {indexed:7.2f} s  ({args.items / indexed:,.0f} items/s)")
        index_mb = table_bytes(db, "items_search") / 1e6
        items_mb = table_bytes(db, "items") / 1e6 - index_mb
        print(f"size: items {items_mb:.1f} MB, search index {index_mb:.1f} MB")

        print(f"\nnewest 50 matches, median of {args.runs} runs ({args.items} items):")
        print(f"{'query':<30} {'all matches ms':>14} {'newest ms':>10} {'matches':>8}")
        cases = [(name, FeedParameters(query=parse(text))) for name, text in QUERIES.items()]
        cases.append(("filterout only", FeedParameters(filterout=parse_filterout("says|council"))))
        for topic in (None, "t3"):
            for name, parameters in cases:
                label = name if topic is None else f"{name}, one topic"
                plain_ms, fast_ms, matches = compare(db, parameters, topic, args.runs)
                print(f"{label:<30} {plain_ms:14.2f} {fast_ms:10.2f} {matches:8d}")
        db.close()
    finally:
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"cpus: {os.cpu_count()}")


if __name__ == "__main__":
    main()
