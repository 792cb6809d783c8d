"""A kill while `feedsvc build` runs: the site on disk is always the old site, the new one, or
a mix in which no feed, topic page or index links a page that is gone or already says the item
was withdrawn; the build ends on the old or the new site, and the next build on the new one.

A `LinkCheck` looks at the output directory as a reader meets it: from the index, the topic
pages and the topic feeds it follows every site link of every feed reached (RSS and Atom
through feedparser, JSON Feed through json; archive pages through the feeds' links) and of the
pages. It runs after every single file an in-process build writes (every intermediate state),
and over and over while real `feedsvc build` processes run and the test kills an item."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urljoin

import feedparser
import pytest

from feedsvc.catalog import Catalog, load_catalog
from feedsvc.directory import Directory
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.render import item_path
from feedsvc.site import Rendered
from feedsvc.sources import Document
from feedsvc.static import build_site
from feedsvc.store import Store

from .conftest import SAMPLES, Clock
from .pg import PostgresServer
from .server import environment, feedsvc_command, snapshot_feeds, stop_group
from .test_crash import big_document

BASE = "https://feeds.example.org/"
WITHDRAWN = b"<h2>This item was withdrawn</h2>"  # templates/withdrawn.html
PAGE_SIZE = 50  # archive_page_size (the default)
ITEMS = 150  # items of the big document: a page each, and archive pages to write


def entries(folder: Path) -> int:
    try:
        return len(os.listdir(folder))
    except FileNotFoundError:
        return 0


def more_than(folder: Path, added: int) -> Callable[[], bool]:
    """True once `folder` holds more than `added` entries more than now."""
    before = entries(folder)
    return lambda: entries(folder) > before + added


def replaced(path: Path) -> Callable[[], bool]:
    """True once `path` is no longer the file it is now."""
    before = key_of(path)
    return lambda: key_of(path) != before


# When the kill lands: a moment of the build, told by what is in the output directory. Each
# is made before the build starts (from the old site) and asked before each look at the site.
MOMENTS: dict[str, Callable[[Path], Callable[[], bool]]] = {
    "before the build reads the store": lambda site: lambda: True,
    "at its first new item page": lambda site: more_than(site / "items", 0),
    "halfway through the item pages": lambda site: more_than(site / "items", ITEMS),  # and .gz
    "at its first archive page of other": lambda site: (
        lambda: (site / "feeds/other/archive/0.rss").exists()
    ),
    "as it replaces the topic pages": lambda site: replaced(site / "topics/all.html"),
    "as it replaces the feeds": lambda site: replaced(site / "feeds/all.rss"),
}
FEED = re.compile(r"feeds/[a-z0-9-]+(/archive/[0-9]+)?\.(rss|atom|json)")
PAGE = re.compile(r"index\.html|topics/[a-z0-9-]+\.html")
LOOK_BUDGET = 0.03  # seconds of parsing at most per look at a running build's site
HREF = re.compile(rb'href="([^"]+)"')

Key = tuple[int, int, int]  # inode, mtime, size: a file replaced by rename has a new one


def key_of(path: Path) -> Key | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def feed_links(relative: str, data: bytes) -> set[str]:
    """Every URL a feed links: its own, its page, its archive neighbours, each entry's."""
    if relative.endswith(".json"):
        document = json.loads(data)
        urls = {document.get(name) for name in ("home_page_url", "feed_url", "next_url")}
        for item in document["items"]:
            urls.update((item.get("url"), item.get("external_url")))
        return {url for url in urls if url}
    parsed = feedparser.parse(data)
    assert not parsed.bozo, f"{relative}: {parsed.bozo_exception}"
    urls = {link.href for link in parsed.feed.get("links", [])}
    for entry in parsed.entries:
        urls.update(link.href for link in entry.get("links", []))
        urls.add(entry.get("link"))
    return {url for url in urls if url}


def page_links(relative: str, data: bytes) -> set[str]:
    """The site links of an HTML page (relative ones resolved against its address)."""
    return {urljoin(BASE + relative, href.decode()) for href in HREF.findall(data)}


class LinkCheck:
    """Watches a site directory as a reader meets it: from the index, the topic pages and the
    topics' feeds, every site link of every feed and page reached (archive pages through the
    feeds' links) must lead to a file that is there, and an item page linked must not be a
    withdrawn page. (A new archive page no reader can reach yet may link a newer one still to
    be written.) Parses a file again only when it was replaced; a problem counts only if every
    file on the way to it still held the same bytes after the target was seen: a build may
    replace them meanwhile, but never puts a file's old bytes back."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.links: dict[str, tuple[Key, frozenset[str]]] = {}
        self.withdrawn: dict[str, tuple[Key, bool]] = {}
        self.problems: list[str] = []
        self.observations = 0
        self.links_followed = 0

    def entry_points(self) -> list[str]:
        """The index, topic pages and topic feeds there now: what readers start from."""
        found = ["index.html"]
        for folder in ("topics", "feeds"):
            try:
                names = sorted(os.listdir(self.root / folder))
            except FileNotFoundError:
                continue
            found += [f"{folder}/{name}" for name in names if is_source(f"{folder}/{name}")]
        return found

    def parse(self, relative: str, may_parse: bool = True) -> tuple[Key, frozenset[str]] | None:
        """The site links of a page or feed as it is now; None if it is gone, was replaced
        while read, or changed and may not be parsed now (then it is not followed this time)."""
        path = self.root / relative
        before = key_of(path)
        cached = self.links.get(relative)
        if cached and cached[0] == before:
            return cached
        if not may_parse or before is None:
            return None
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        if key_of(path) != before:  # replaced while read: next time
            return None
        read = page_links if PAGE.fullmatch(relative) else feed_links
        urls = read(relative, data)
        internal = {url[len(BASE) :].split("#")[0] for url in urls if url.startswith(BASE)}
        self.links[relative] = (before, frozenset(internal))
        return self.links[relative]

    def is_withdrawn(self, relative: str, key: Key) -> bool:
        cached = self.withdrawn.get(relative)
        if cached and cached[0] == key:
            return cached[1]
        try:
            withdrawn = WITHDRAWN in (self.root / relative).read_bytes()
        except FileNotFoundError:
            return False
        self.withdrawn[relative] = (key, withdrawn)
        return withdrawn

    def observe(self, moment: str, budget: float | None = None) -> None:
        """Follow every link a reader can reach now. With a `budget` (seconds), parse at most
        that long (entry points first; the rest at the next look), so that looks come often
        while a build writes many archive pages."""
        self.observations += 1
        deadline = None if budget is None else time.monotonic() + budget
        way: dict[str, str | None] = {source: None for source in self.entry_points()}
        queue = list(way)
        while queue:
            source = queue.pop(0)
            parsed = self.parse(source, deadline is None or time.monotonic() < deadline)
            if parsed is None:
                continue
            for target in sorted(parsed[1]):
                self.links_followed += 1
                key = key_of(self.root / target)
                if key is None:
                    problem = "which is not there"
                elif target.startswith("items/") and self.is_withdrawn(target, key):
                    problem = "which says the item was withdrawn"
                else:
                    if is_source(target) and target not in way:
                        way[target] = source
                        queue.append(target)
                    continue
                if self.unchanged_way(source, way):
                    self.problems.append(f"{moment}: {source} links {target}, {problem}")

    def unchanged_way(self, source: str, way: dict[str, str | None]) -> bool:
        """Whether every file from an entry point to `source` still holds the bytes parsed."""
        step: str | None = source
        while step is not None:
            if key_of(self.root / step) != self.links[step][0]:
                return False
            step = way[step]
        return True


def is_source(relative: str) -> bool:
    """A feed (archive pages too), a topic page or the index: files whose links are followed."""
    return bool(FEED.fullmatch(relative) or PAGE.fullmatch(relative))


class WatchedDirectory(Directory):
    """A build's directory that runs a `LinkCheck` after every file it writes, and after the
    removals: every state a reader could meet while the build runs."""

    def __init__(self, outdir: Path, check: LinkCheck) -> None:
        super().__init__(outdir)
        self.check = check

    def put(self, path: str, rendered: Rendered) -> None:
        super().put(path, rendered)
        self.check.observe(f"after writing {path}")

    def remove_others(self, expected: set[str]) -> None:
        super().remove_others(expected)
        self.check.observe("after the removals")


def site_files(root: Path) -> dict[str, bytes]:
    """The site as a reader sees it (not the build's own .feedsvc-* files)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.name.startswith(".feedsvc-")
    }


def differences(site: dict[str, bytes], other: dict[str, bytes]) -> list[str]:
    names = set(site) | set(other)
    return sorted(name for name in names if site.get(name) != other.get(name))


def fill_samples(store: Store, catalog: Catalog, clock: Clock) -> None:
    for path in sorted(SAMPLES.glob("*.txt")):
        ingest_document(store, catalog, Document(path.name, path.read_bytes(), "wire"))
        clock.advance(hours=1)


@pytest.fixture
def feeds(tmp_path: Path) -> Path:
    return snapshot_feeds(tmp_path / "feeds")


@pytest.fixture
def site_catalog(feeds: Path) -> Catalog:
    return load_catalog(feeds, BASE)


def test_every_file_a_build_writes_after_a_kill_leaves_feeds_linking_live_pages(
    db: str, site_catalog: Catalog, clock: Clock, tmp_path: Path
) -> None:
    catalog = site_catalog
    store = open_filed_store(db, catalog, clock, create=True)
    fill_samples(store, catalog, clock)
    victim = store.newest("sport", 1)[0]
    site = tmp_path / "site"
    build_site(store, catalog, site)
    before = LinkCheck(site)
    before.observe("the first build")
    assert not before.problems, before.problems
    assert item_path(victim.id) in before.links["feeds/sport.atom"][1]
    assert item_path(victim.id) in before.links["topics/sport.html"][1]

    clock.advance(minutes=30)  # new items (two new archive pages of `all`) and a kill, together
    late = big_document(2 * PAGE_SIZE, "Harbour").encode()
    ingest_document(store, catalog, Document("late.txt", late, "wire"))
    store.kill([victim.id], "wrong name", "cli")
    check = LinkCheck(site)
    report = build_site(store, catalog, WatchedDirectory(site, check))
    assert not check.problems, "\n".join(check.problems[:10])
    assert WITHDRAWN in (site / item_path(victim.id)).read_bytes()
    assert item_path(victim.id) in report.paths
    assert check.observations == report.written + report.unchanged + 1  # every file, and after
    assert item_path(victim.id) not in check.links["feeds/sport.atom"][1]
    assert {"feeds/all/archive/1.atom", "feeds/all/archive/2.atom"} <= set(report.paths)
    build_site(store, catalog, tmp_path / "fresh")  # and ends on the site a fresh build makes
    assert differences(site_files(site), site_files(tmp_path / "fresh")) == []

    clock.advance(minutes=30)  # and back: the page is whole before a feed links it again;
    store.unkill([victim.id], "cli")  # with a page's worth of items, so page 2 gets a next one
    more = big_document(PAGE_SIZE, "Quay").encode()
    ingest_document(store, catalog, Document("more.txt", more, "wire"))
    check = LinkCheck(site)
    build_site(store, catalog, WatchedDirectory(site, check))
    assert not check.problems, "\n".join(check.problems[:10])
    assert item_path(victim.id) in check.links["feeds/sport.atom"][1]
    assert "feeds/all/archive/3.rss" in check.links["feeds/all/archive/2.rss"][1]
    assert check.links_followed > 1000
    build_site(store, catalog, tmp_path / "fresh-2")
    assert differences(site_files(site), site_files(tmp_path / "fresh-2")) == []


# -- real processes ---------------------------------------------------------------------------


class Templates:
    """Copies of one store state for each round: an SQLite file, or a PostgreSQL database made
    from a template database (nobody may be connected to it)."""

    def __init__(self, db: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.db = db
        self.tmp_path = tmp_path
        self.postgres: PostgresServer | None = (
            request.getfixturevalue("postgres") if db.startswith("postgresql:") else None
        )
        self.made: list[str] = []
        self.count = 0

    def copy(self) -> str:
        self.count += 1
        if self.postgres is not None:
            url = self.postgres.database(template=self.db)
            self.made.append(url)
            return url
        target = self.tmp_path / f"round-{self.count}.sqlite3"
        assert not Path(f"{self.db}-wal").exists(), "the template store is still open"
        shutil.copyfile(self.db, target)
        return str(target)

    def drop(self) -> None:
        for url in self.made:
            assert self.postgres is not None
            self.postgres.drop(url)


def watched_build(
    site: Path, env: dict[str, str], check: LinkCheck, during: Callable[[float], None]
) -> float:
    """Run `feedsvc build SITE`, looking at SITE over and over until it ends (calling
    `during(seconds since the start)` before each look); how long it took."""
    process = subprocess.Popen(
        [*feedsvc_command(), "build", str(site)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    started = time.monotonic()
    try:
        while process.poll() is None:
            during(time.monotonic() - started)
            check.observe(f"build running {time.monotonic() - started:.2f}s", LOOK_BUDGET)
        took = time.monotonic() - started
        check.observe("build ended")
        _, err = process.communicate()
    finally:
        stop_group(process, grace=1)
    assert process.returncode == 0, err.decode()
    return took


def test_a_kill_while_a_build_runs_never_leaves_a_feed_linking_a_withdrawn_page(
    db: str, feeds: Path, site_catalog: Catalog, clock: Clock, tmp_path: Path, request
) -> None:
    catalog = site_catalog
    store = open_filed_store(db, catalog, clock, create=True)
    fill_samples(store, catalog, clock)
    victim = store.newest("sport", 1)[0]  # in the sport and all feeds, pages and archives
    old_site = tmp_path / "old-site"
    build_site(store, catalog, old_site)
    clock.advance(hours=1)  # then many new items (filed under `other`): a long build
    document = big_document(ITEMS, "Harbour").encode()
    assert ingest_document(store, catalog, Document("big.txt", document, "wire")).new == ITEMS
    assert victim.id in {item.id for item in store.newest("sport", 50)}
    kill_time = clock.advance(minutes=10)
    store.close()
    templates = Templates(db, tmp_path, request)
    request.addfinalizer(templates.drop)

    def reference(kill: bool) -> dict[str, bytes]:
        """A fresh build of the store before or after the kill."""
        copy = open_filed_store(templates.copy(), catalog, Clock(kill_time))
        if kill:
            copy.kill([victim.id], "legal", "cli")
        outdir = tmp_path / f"fresh-{'after' if kill else 'before'}"
        build_site(copy, catalog, outdir)
        copy.close()
        return site_files(outdir)

    before, after = reference(kill=False), reference(kill=True)
    assert WITHDRAWN in after[item_path(victim.id)] and differences(before, after)

    outcomes: Counter[str] = Counter()
    landed_while_running, observations, rounds = 0, 0, []
    for round_number, (moment, make_signal) in enumerate(MOMENTS.items()):
        location = templates.copy()
        site = tmp_path / f"site-{round_number}"
        shutil.copytree(old_site, site)
        round_store = open_filed_store(location, catalog, Clock(kill_time))
        env = environment(location, feeds, FEEDSVC_BASE_URL=BASE)
        check = LinkCheck(site)
        signal, killed = make_signal(site), []

        def kill_when_due(elapsed: float, store=round_store, signal=signal, killed=killed) -> None:
            if not killed and signal():
                store.kill([victim.id], "legal", "cli")
                killed.append(elapsed)

        watched_build(site, env, check, kill_when_due)
        if killed:
            landed_while_running += 1
        else:
            round_store.kill([victim.id], "legal", "cli")  # the build ended first
        first = site_files(site)
        outcome = "after" if first == after else "before" if first == before else None
        assert outcome, (
            f"kill {moment}: the build left neither site; it differs from the one after the "
            f"kill in {differences(first, after)[:5]}, before in {differences(first, before)[:5]}"
        )
        outcomes[outcome] += 1
        rounds.append(f"{moment}: {f'at {killed[0]:.2f}s' if killed else 'too late'}, {outcome}")
        watched_build(site, env, check, lambda elapsed: None)  # the next build
        assert differences(site_files(site), after) == [], f"round {round_number}"
        round_store.close()
        observations += check.observations
        assert not check.problems, f"kill {moment} ({killed}s): " + "\n".join(check.problems[:10])
    summary = (
        f"{len(MOMENTS)} rounds: {landed_while_running} kills landed while the build ran; "
        f"builds ended on the site {dict(outcomes)} the kill; {observations} looks at the site"
        f" ({'; '.join(rounds)})"
    )
    print(summary)
    assert outcomes["after"] >= 1 and outcomes["before"] >= 1, summary
    assert landed_while_running >= len(MOMENTS) - 1 and observations > 20 * len(MOMENTS), summary
