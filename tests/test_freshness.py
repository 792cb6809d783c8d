"""`feedsvc serve --workers 2` for real: a worker re-reads the store generation only every few
ms (FEEDSVC_RECHECK_MS), yet a change another process commits reaches every worker within
50 ms; the access log, buffered, loses no line when the server stops."""

from __future__ import annotations

import contextlib
import http.client
import re
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import SAMPLES
from .server import Server, environment, run_cli, snapshot_feeds

FRESHNESS = 0.05  # seconds: the promise to pollers, render included
CONNECTIONS = 12  # persistent, opened at once: spread over both workers


def start(tmp_path: Path, request: pytest.FixtureRequest, **extra: str) -> Server:
    env = environment(tmp_path / "store.sqlite3", snapshot_feeds(tmp_path / "feeds"), **extra)
    result = run_cli(["ingest", str(SAMPLES)], env)
    assert result.returncode == 0, result.stderr
    server = Server(env, tmp_path, workers=2)
    request.addfinalizer(server.stop)
    return server.start()


def get(connection: http.client.HTTPConnection, path: str) -> tuple[int, bytes]:
    connection.request("GET", path)
    response = connection.getresponse()
    return response.status, response.read()


@contextlib.contextmanager
def polling(server: Server) -> Iterator[None]:
    """Pollers on persistent connections asking for the feed until the block ends."""
    stop = threading.Event()

    def poll() -> None:
        connection = server.connection(timeout=10)
        try:
            while not stop.is_set():
                assert get(connection, "/feeds/all.rss")[0] == 200
        finally:
            connection.close()

    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for poller in pollers:
        poller.start()
    try:
        yield
    finally:
        stop.set()
        for poller in pollers:
            poller.join()


@pytest.mark.solo  # asserts a latency in ms: run alone, after the rest (-m solo)
def test_every_worker_serves_an_ingest_within_50_ms(tmp_path, request) -> None:
    server = start(tmp_path, request)
    connections = [server.connection(timeout=10) for _ in range(CONNECTIONS)]
    for connection in connections:
        connection.connect()
    late = []
    for number in range(5):
        title = f"Harbour notice {number} {uuid.uuid4().hex[:8]}"
        document = tmp_path / f"notice-{number}.txt"
        document.write_text(f"-\n{title}\n")
        with polling(server):  # the workers keep checking the store up to the commit
            result = run_cli(["ingest", str(document)], server.env)  # committed when it returns
        assert result.returncode == 0, result.stderr
        time.sleep(FRESHNESS)
        for index, connection in enumerate(connections):
            status, body = get(connection, "/feeds/all.rss")
            if status != 200 or title.encode() not in body:
                late.append((number, index, status))
    for connection in connections:
        connection.close()
    assert not late, f"stale answers {FRESHNESS * 1000:.0f} ms after an ingest: {late}"


def test_access_log_keeps_every_line_when_the_server_stops(tmp_path, request) -> None:
    server = start(tmp_path, request)
    connections = [server.connection(timeout=10) for _ in range(4)]
    asked = 0
    for _ in range(50):
        for number, connection in enumerate(connections):
            path = "/feeds/all.atom" if number % 2 else f"/feeds/all.rss?limit={number + 1}"
            assert get(connection, path)[0] == 200
            asked += 1
    server.stop()  # at once: the last lines are still in the workers' buffers
    text = server.stdout_path.read_text()
    request = r'"GET /feeds/all\.(rss\?limit=\d|atom) HTTP/1\.1"'
    line = re.compile(r"127\.0\.0\.1 - - \[[^]]+\] " + request + r" 200 \d+")
    logged = [row for row in text.splitlines() if row.startswith("127.0.0.1") and "/feeds/" in row]
    assert len(logged) == asked, server.logs()
    assert all(line.fullmatch(row) for row in logged), logged[:5]
