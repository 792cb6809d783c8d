"""A real feed reader against a real server: newsboat subscribes to the OPML list and must show
every item of each topic under that topic (it keys entries by guid across all its feeds).

Needs Debian's `newsboat`. Without it the test is skipped with that reason, except under
FEEDSVC_CI=1 (as .ci/run sets), where it fails instead.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import feedparser
import pytest

from .conftest import FEEDS
from .server import Server, environment, run_cli, snapshot_feeds


def newsboat_binary() -> str:
    found = shutil.which("newsboat")
    if not found:
        reason = "the reader test needs newsboat: apt-get install -y newsboat"
        if os.environ.get("FEEDSVC_CI"):
            pytest.fail(f"{reason}; FEEDSVC_CI is set, so it may not be skipped")
        pytest.skip(reason)
    return found


def newsboat(binary: str, home: Path, *args: str) -> None:
    """Run newsboat non-interactively with its files in `home` (never the user's own)."""
    command = [binary, "-u", str(home / "urls"), "-c", str(home / "cache.db"), "-C", os.devnull]
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8"}
    done = subprocess.run(
        [*command, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, (args, done.stdout, done.stderr)


def test_newsboat_subscribed_to_the_opml_shows_every_item_of_each_topic(tmp_path) -> None:
    binary = newsboat_binary()
    env = environment(tmp_path / "store.db", snapshot_feeds(tmp_path / "feeds"))
    ingested = run_cli(["ingest", str(FEEDS / "samples")], env)
    assert ingested.returncode == 0, ingested.stderr
    server = Server(env, tmp_path, workers=1).start()
    try:
        status, _, opml = server.request("GET", "/feeds.opml")
        assert status == 200
        (tmp_path / "subscriptions.opml").write_bytes(opml)
        newsboat(binary, tmp_path, "-i", str(tmp_path / "subscriptions.opml"))
        urls = (tmp_path / "urls").read_text().split()
        assert urls and all("/feeds/all." not in url for url in urls)
        newsboat(binary, tmp_path, "-x", "reload")
        # What each feed holds, as a reader library sees it, against what newsboat shows.
        expected: dict[str, set[str]] = {}
        for url in urls:
            status, _, body = server.request("GET", url.split(str(server.port), 1)[1])
            assert status == 200, url
            expected[url] = {entry.id for entry in feedparser.parse(body).entries}
    finally:
        server.stop()
    with sqlite3.connect(tmp_path / "cache.db") as cache:
        rows = cache.execute("SELECT feedurl, guid FROM rss_item").fetchall()
    shown: dict[str, set[str]] = {url: set() for url in urls}
    for feed_url, guid in rows:
        shown[feed_url].add(guid)
    assert shown == expected
    # The samples file some items under two topics: the case that guids shared across feeds
    # would scatter (newsboat moves such an item to whichever feed it reloaded last).
    status_all = run_cli(["topics"], env)
    total = int(
        next(line.split()[1] for line in status_all.stdout.splitlines() if line.startswith("all "))
    )
    assert sum(len(ids) for ids in expected.values()) > total
