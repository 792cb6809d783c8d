"""Smoke test of an installed feedsvc: ingest, build, serve one feed, 200 then 304.

    VENV/bin/python tests/smoke.py --feeds feeds --document tests/data/wire_basic.txt ...

`.ci/run` runs it with the python of a fresh venv that has only the wheel installed, from a
directory outside the checkout, so a file missing from the wheel (a template) fails it. It
uses nothing but the standard library and the venv's `feedsvc` command, works in a temporary
directory on copies of the files it is given, and stops the server it starts. Not collected
by pytest (the name does not start with test_).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = "127.0.0.1"
FEED = "/feeds/all.atom"
BASE_URL = "https://feeds.example.org/"


class SmokeFailure(Exception):
    """A step that did not do what it should."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=Path, required=True, help="a topic catalogue to copy")
    parser.add_argument(
        "--document", type=Path, action="append", required=True, help="a document to ingest"
    )
    args = parser.parse_args()
    feedsvc = Path(sys.executable).with_name("feedsvc")
    with tempfile.TemporaryDirectory(prefix="feedsvc-smoke-") as name:
        work = Path(name)
        try:
            smoke(feedsvc, work, args.feeds.resolve(), [p.resolve() for p in args.document])
        except SmokeFailure as failure:
            print(f"smoke: FAILED: {failure}", file=sys.stderr)
            return 1
    return 0


def smoke(feedsvc: Path, work: Path, feeds: Path, documents: list[Path]) -> None:
    catalogue = shutil.copytree(feeds, work / "feeds", ignore=shutil.ignore_patterns("samples"))
    copies = [str(shutil.copy(document, work / document.name)) for document in documents]
    env = {key: value for key, value in os.environ.items() if not key.startswith("FEEDSVC_")}
    env.update(
        FEEDSVC_DB=str(work / "store.sqlite3"),
        FEEDSVC_FEEDS=str(catalogue),
        FEEDSVC_BASE_URL=BASE_URL,  # a build needs the site's address; the server links to it
    )
    env.pop("PYTHONPATH", None)

    def run(*args: str) -> str:
        result = subprocess.run(
            [str(feedsvc), *args], cwd=work, env=env, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr)[-3000:]
            raise SmokeFailure(f"feedsvc {' '.join(args)}: exit {result.returncode}\n{output}")
        return result.stdout

    installed_from(work, env)
    ingested = run("ingest", *copies)
    print(f"smoke: ingest: {ingested.splitlines()[-1]}")
    if " 0 new" in ingested.splitlines()[-1]:
        raise SmokeFailure(f"nothing stored: {ingested}")
    print(f"smoke: build: {run('build', str(work / 'site')).strip()}")
    for built in ("index.html", "feeds.opml", "feeds/all.rss", "feeds/all.atom", "feeds/all.json"):
        if not (work / "site" / built).is_file():
            raise SmokeFailure(f"the build wrote no {built}")
    serve_one_feed(feedsvc, work, env, (work / "site" / FEED.lstrip("/")).read_bytes())


def installed_from(work: Path, env: dict[str, str]) -> None:
    """The feedsvc this python imports is the installed one, not a checkout's."""
    where = subprocess.run(
        [sys.executable, "-c", "import feedsvc; print(feedsvc.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not Path(where).is_relative_to(Path(sys.prefix).resolve()):
        raise SmokeFailure(f"feedsvc is imported from {where}, not from the venv {sys.prefix}")
    print(f"smoke: feedsvc from {where}")


def serve_one_feed(feedsvc: Path, work: Path, env: dict[str, str], built: bytes) -> None:
    port = free_port()
    log = work / "serve.log"
    with open(log, "wb") as output:
        server = subprocess.Popen(
            [str(feedsvc), "serve", "--host", HOST, "--port", str(port), "--workers", "1"],
            cwd=work,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped with its worker
        )
    try:
        wait_until_serving(server, port, log)
        status, headers, body = get(port, FEED)
        if status != 200 or body != built:
            raise SmokeFailure(f"GET {FEED}: {status}, {len(body)} bytes, not the built file")
        etag = headers["ETag"]
        status, _, body = get(port, FEED, {"If-None-Match": etag})
        if status != 304 or body:
            raise SmokeFailure(f"GET {FEED} with If-None-Match: {etag}: {status}, not 304")
        print(f"smoke: serve: {FEED} 200 ({len(built)} bytes, the built file), then 304")
    finally:
        stop(server)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def get(port: int, path: str, headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def wait_until_serving(server: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SmokeFailure(f"feedsvc serve exited with {server.returncode}:\n{log.read_text()}")
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            status, _, body = get(port, "/healthz")
            if status == 200 and json.loads(body)["status"] == "ok":
                return
        time.sleep(0.2)
    raise SmokeFailure(f"feedsvc serve did not answer /healthz in 60 s:\n{log.read_text()}")


def stop(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, then SIGKILL to anything left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.wait(10)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(10)


if __name__ == "__main__":
    sys.exit(main())
