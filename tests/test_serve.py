"""`feedsvc serve` refusing an address it cannot have: real processes and sockets on 127.0.0.1.

Every started process runs in its own process group and is stopped by it, also when a test
fails (a broken check would leave a server running)."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from .conftest import SAMPLES
from .server import HOST, Server, environment, feedsvc_command, run_cli, snapshot_feeds, stop_group


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    env = environment(tmp_path / "store.sqlite3", snapshot_feeds(tmp_path / "feeds"))
    result = run_cli(["ingest", str(SAMPLES)], env)
    assert result.returncode == 0, result.stderr
    return env


def serve_to_the_end(env: dict[str, str], port: int, *options: str) -> tuple[int, str, str]:
    """Run `feedsvc serve` on the port; it must exit by itself within seconds."""
    process = subprocess.Popen(
        [*feedsvc_command(), "serve", "--host", HOST, "--port", str(port), *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        stop_group(process)
        out, err = process.communicate()
        pytest.fail(f"feedsvc serve kept running on a port in use:\n{out}\n{err}")
    finally:
        stop_group(process)
    return process.returncode, out, err


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_port_held_by_another_socket_is_one_line_and_exit_1(env, server) -> None:
    with socket.socket() as held:
        held.bind((HOST, 0))
        held.listen()
        port = held.getsockname()[1]
        status, out, err = serve_to_the_end(env, port, "--server", server, "--workers", "1")
    assert (status, out) == (1, "")  # never said it was serving
    assert err == f"feedsvc: error: {HOST}:{port}: address already in use\n"


def test_port_held_by_another_feedsvc_serve_is_refused(env, tmp_path) -> None:
    # granian listens with SO_REUSEPORT: a second granian could share the port and take half of
    # the connections. The first server keeps answering alone.
    first = Server(env, tmp_path, workers=1)
    try:
        first.start()
        for server in ("granian", "gunicorn"):
            status, out, err = serve_to_the_end(env, first.port, "--server", server)
            assert (status, out) == (1, ""), server
            assert err == f"feedsvc: error: {HOST}:{first.port}: address already in use\n"
        assert first.request("GET", "/feeds/all.rss")[0] == 200
    finally:
        first.stop()


def time_wait_on(port: int) -> bool:
    """Whether a TCP socket of this host with local port `port` is in TIME_WAIT."""
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(
        int(row.split()[1].split(":")[1], 16) == port and row.split()[3] == "06" for row in rows
    )


def test_port_in_time_wait_after_a_stop_can_be_served_again(env, tmp_path) -> None:
    # A server stopped while a reader kept its connection open closes first: its side of that
    # connection waits out TIME_WAIT on the port, and a restart must not be refused for it.
    first = Server(env, tmp_path, workers=1).start()
    reader = first.connection()
    try:
        reader.request("GET", "/feeds/all.rss")
        assert reader.getresponse().read()
    finally:
        first.stop()
        reader.close()
    assert time_wait_on(first.port)
    again = Server(env, tmp_path, workers=1)
    again.port = first.port
    try:
        again.start()
        assert again.request("GET", "/feeds/all.rss")[0] == 200
    finally:
        again.stop()
