"""`feedsvc serve` against nginx serving the same bytes (the static build), and against a bare
WSGI callable under the same granian settings answering the same bytes and headers, under wrk.

    python -m bench.serve [--quick] [--seconds S] [--rounds N] [--cache DIR]

Needs wrk, nginx and taskset: `apt-get install -y wrk nginx-light util-linux`. Each server is
pinned to CPU 0 and wrk to CPU 1 (`taskset`). Stores of 1k and 1M generated items; the 1M store
takes a while to make: with --cache DIR (or FEEDSVC_BENCH_CACHE=DIR) it is kept in DIR and
reused by later runs. --quick: short loads, one round, no 1M store. The loads of a round are
interleaved (each measure on every server in turn, the order rotating by round), and the ratios
to the bare callable are taken per round, their median reported.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from feedsvc.catalog import load_catalog
from feedsvc.cli import granian_command
from feedsvc.ingest import ingest_document, open_filed_store

from .gen import copy_feeds, documents

FEEDSVC = str(Path(sys.executable).with_name("feedsvc"))
FEED = "/feeds/all.rss"
BASE_URL = "http://127.0.0.1:8000/"  # the shipped site.toml has none: both servers use this
ENTRIES = 100
SERVER_CPU, CLIENT_CPU = "0", "1"
TICK = os.sysconf("SC_CLK_TCK")
INSTALL = "apt-get install -y wrk nginx-light util-linux"

NGINX_CONF = """\
{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {access_log};
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000000;
    default_type application/octet-stream;
    types {{
        text/html html;
        application/rss+xml rss;
        application/atom+xml atom;
        application/feed+json json;
        text/x-opml opml;
    }}
    charset utf-8;
    charset_types application/rss+xml application/atom+xml application/feed+json text/x-opml;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        gzip_static on;
        etag on;
        location /feeds/ {{ add_header Cache-Control "public, max-age=300"; }}
    }}
}}
"""

# -- processes ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()  # fields from 3 (state) on


def tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields:
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def cpu_seconds(root: int) -> float:
    """User + system CPU of a process tree (utime + stime of each live process)."""
    total = 0
    for pid in tree(root):
        fields = _stat(pid)
        if fields:
            total += int(fields[11]) + int(fields[12])
    return total / TICK


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path
    feedsvc: bool

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return [pid for pid in tree(self.process.pid) if pid != self.process.pid]


SERVERS: list[Server] = []


def start(
    name: str, command: list[str], env: dict[str, str], log: Path, feedsvc: bool, port: int
) -> Server:
    command = [arg.replace("{port}", str(port)) for arg in command]
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["taskset", "-c", SERVER_CPU, *command],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopped as one
        )
    server = Server(name, port, process, log, feedsvc)
    SERVERS.append(server)
    probe = "/healthz" if feedsvc else FEED
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited ({process.returncode}):\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(server.url + probe, timeout=2) as response:
                if response.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{name} did not answer within 120 s:\n{log.read_text()[-2000:]}")


def stop(server: Server) -> None:
    process = server.process
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Workers that outlived their parent are still in the group.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


# -- HTTP -----------------------------------------------------------------------------------


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, _lower(error.headers), error.read()


def _lower(headers) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def wire_headers(url: str, header: dict[str, str]) -> list[tuple[str, str]]:
    """The headers of an answer as sent, less those granian adds itself."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", FEED, headers=header)
        response = connection.getresponse()
        response.read()
        return [(k, v) for k, v in response.getheaders() if k.lower() not in ("date", "server")]
    finally:
        connection.close()


def start_bare(tmp: Path, env: dict[str, str], feedsvc: Server) -> Server:
    """The bare callable, answering what `feedsvc` answers to wrk (no Accept-Encoding)."""
    status, _, body = get(feedsvc.url + FEED, {"Accept-Encoding": "identity"})
    assert status == 200
    (tmp / "bare-body").write_bytes(body)
    headers = wire_headers(feedsvc.url, {})
    etag = dict((k.lower(), v) for k, v in headers)["etag"]
    answer = {
        "body": str(tmp / "bare-body"),
        "headers": headers,
        "not_modified": wire_headers(feedsvc.url, {"If-None-Match": etag}),
    }
    (tmp / "bare.json").write_text(json.dumps(answer))
    port = free_port()
    command = [sys.executable, *granian_command("127.0.0.1", port, 1, 1, "bench.bare:create_app")]
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(env, FEEDSVC_BENCH_BARE=str(tmp / "bare.json"), PYTHONPATH=root)
    return start("bare", command, env, tmp / "bare.log", False, port)


def renders(server: Server) -> int:
    return json.loads(get(server.url + "/healthz")[2])["renders"]


@dataclass
class Load:
    requests: int
    rate: float
    p50_us: float
    cpu_us: float  # server CPU per request
    errors: str = ""


UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def wrk(server: Server, connections: int, seconds: float, header: str | None = None) -> Load:
    command = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}"]
    command += [f"-d{seconds:g}s", "--latency"]
    if header:
        command += ["-H", header]
    before = cpu_seconds(server.process.pid)
    out = subprocess.run(
        [*command, server.url + FEED], capture_output=True, text=True, check=True
    ).stdout
    used = cpu_seconds(server.process.pid) - before
    requests = int(re.search(r"(\d+) requests in", out)[1])  # type: ignore[index]
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    p50 = re.search(r"50%\s+([\d.]+)(us|ms|s)\b", out)
    errors = " ".join(
        line.strip() for line in out.splitlines() if "errors" in line or "Non-2xx" in line
    )
    return Load(requests, rate, float(p50[1]) * UNITS[p50[2]], used / requests * 1e6, errors)  # type: ignore[index]


# -- stores ---------------------------------------------------------------------------------


def make_store(path: Path, feeds: Path, items: int) -> None:
    """Generate and ingest `items` items into a new store at `path` (written under a temporary
    name, so an interrupted run never leaves a half store in the cache)."""
    partial = path.with_name(path.name + ".partial")
    for leftover in path.parent.glob(partial.name + "*"):
        leftover.unlink()
    catalog = load_catalog(feeds)
    store = open_filed_store(partial, catalog, create=True)
    start, done = time.perf_counter(), 0
    per_doc = 1000 if items >= 100_000 else 100
    for document in documents(items, per_doc, seed=7, feeds_dir=feeds):
        done += ingest_document(store, catalog, document).new
        if items >= 100_000 and done % 100_000 == 0:
            print(f"  {done:,} items, {time.perf_counter() - start:.0f} s", flush=True)
    store.close()
    partial.rename(path)
    print(f"store of {items:,} items made in {time.perf_counter() - start:.1f} s")


def build(db: Path, feeds: Path, outdir: Path) -> None:
    env = dict(os.environ, FEEDSVC_DB=str(db), FEEDSVC_FEEDS=str(feeds), FEEDSVC_BASE_URL=BASE_URL)
    subprocess.run([FEEDSVC, "build", str(outdir)], env=env, check=True, capture_output=True)


# -- the benchmark --------------------------------------------------------------------------


@dataclass
class Results:
    loads: dict[str, list[Load]] = field(default_factory=dict)
    renders: list[int] = field(default_factory=list)

    def add(self, key: str, load: Load) -> None:
        self.loads.setdefault(key, []).append(load)
        if load.errors:
            print(f"    note: {key}: {load.errors}")

    def median(self, key: str, attribute: str) -> float:
        return statistics.median(getattr(load, attribute) for load in self.loads[key])

    def ratios(self, a: str, b: str, attribute: str) -> list[float]:
        """a / b per round (the two ran within seconds of each other)."""
        pairs = zip(self.loads[a], self.loads[b], strict=True)
        return [getattr(x, attribute) / getattr(y, attribute) for x, y in pairs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 s loads, 1 round, no 1M store")
    parser.add_argument("--seconds", type=float, help="seconds per load [10; quick: 3]")
    parser.add_argument("--rounds", type=int, help="rounds [3; quick: 1]")
    parser.add_argument("--big", type=int, default=1_000_000, help="items in the big store")
    parser.add_argument("--cache", type=Path, default=os.environ.get("FEEDSVC_BENCH_CACHE"))
    parser.add_argument(
        "--access-log",
        action="store_true",
        help="both servers write their access logs (to files); default: neither does",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for `feedsvc serve` (e.g. GRANIAN_BLOCKING_THREADS=1)",
    )
    args = parser.parse_args()
    missing = [tool for tool in ("wrk", "nginx", "taskset") if not shutil.which(tool)]
    if missing:
        raise SystemExit(f"bench.serve needs {', '.join(missing)}: {INSTALL}")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("bench.serve needs 2 CPUs (server on CPU 0, wrk on CPU 1)")
    seconds = args.seconds or (3 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 3)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the finally below
    tmp = Path(tempfile.mkdtemp(prefix="feedsvc-serve-"))
    try:
        results, notes = run(tmp, args, seconds, rounds)
    finally:
        for server in SERVERS:
            stop(server)
        shutil.rmtree(tmp, ignore_errors=True)
    report(results, notes, seconds, rounds, args)


def run(
    tmp: Path, args: argparse.Namespace, seconds: float, rounds: int
) -> tuple[Results, dict[str, str]]:
    cache = args.cache.resolve() if args.cache else None
    home = cache or tmp
    home.mkdir(parents=True, exist_ok=True)
    feeds = home / "feeds"
    if not (feeds / "site.toml").is_file():  # a cached store keeps the catalogue it was filed by
        copy_feeds(feeds, entries_per_feed=ENTRIES)
    notes: dict[str, str] = {}

    small = tmp / "small.sqlite3"
    make_store(small, feeds, 1000)
    site = tmp / "site"
    build(small, feeds, site)
    big = home / f"store-{args.big}.sqlite3"
    if not args.quick and not big.exists():
        print(f"making the {args.big:,}-item store in {home} (reused with --cache)")
        make_store(big, feeds, args.big)

    nginx_port = free_port()
    (tmp / "nginx.conf").write_text(
        NGINX_CONF.format(
            user="user root;\n" if os.geteuid() == 0 else "",
            tmp=tmp,
            port=nginx_port,
            root=site,
            access_log=f"{tmp}/nginx-access.log" if args.access_log else "off",
        )
    )
    # One base URL for nginx's files and feedsvc's answers, so their bytes can be compared.
    env = dict(os.environ, FEEDSVC_FEEDS=str(feeds), FEEDSVC_BASE_URL=BASE_URL)
    served = dict(env, **dict(pair.split("=", 1) for pair in args.server_env))
    if args.server_env:
        notes["feedsvc serve environment"] = " ".join(args.server_env)
    nginx_cmd = ["nginx", "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "e.log")]
    serve_cmd = [FEEDSVC, "serve", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"]
    if not args.access_log:  # like for like: both servers log, or neither
        serve_cmd.append("--no-access-log")
    notes["access logs"] = "on (both, to files)" if args.access_log else "off (both)"
    servers = {
        "nginx": start("nginx", nginx_cmd, env, tmp / "nginx.log", False, nginx_port),
        "feedsvc": start(
            "feedsvc 1k",
            serve_cmd,
            dict(served, FEEDSVC_DB=str(small)),
            tmp / "fs1k.log",
            True,
            free_port(),
        ),
    }
    if not args.access_log:  # the bare comparison is with the default access log on
        logged = [arg for arg in serve_cmd if arg != "--no-access-log"]
        servers["feedsvc-log"] = start(
            "feedsvc 1k, access log",
            logged,
            dict(served, FEEDSVC_DB=str(small)),
            tmp / "fslog.log",
            True,
            free_port(),
        )
    servers["bare"] = start_bare(tmp, env, servers["feedsvc"])
    if not args.quick:
        servers["feedsvc-1M"] = start(
            "feedsvc 1M",
            serve_cmd,
            dict(served, FEEDSVC_DB=str(big)),
            tmp / "fs1m.log",
            True,
            free_port(),
        )

    # Same bytes? The live feed and the static file must match; the ETags to ask 304 with.
    etags = {}
    bodies = {}
    for key, server in servers.items():
        status, headers, body = get(server.url + FEED)
        assert status == 200, (key, status)
        etags[key], bodies[key] = headers["etag"], body
        notes[f"{key} feed"] = f"{len(body):,} bytes, {body.count(b'<item>')} entries"
    same = bodies["nginx"] == bodies["feedsvc"] == bodies["bare"]
    notes["same bytes"] = "yes (nginx, feedsvc, bare)" if same else "NO"

    notes["load"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    results = Results()
    keys = list(servers)
    for number in range(1, rounds + 1):
        print(f"round {number}/{rounds}", flush=True)
        order = keys[number - 1 :] + keys[: number - 1]  # rotated: no server always first
        for key in order:
            server = servers[key]
            before = renders(server) if server.feedsvc else 0
            results.add(f"{key} get", wrk(server, 16, seconds))
            if server.feedsvc:
                results.renders.append(renders(server) - before)
        for key in order:
            if key != "feedsvc-1M":
                header = f"If-None-Match: {etags[key]}"
                results.add(f"{key} 304", wrk(servers[key], 16, seconds, header))
        for key in order:
            if key != "feedsvc-1M":
                results.add(f"{key} c1", wrk(servers[key], 1, seconds))
        for key in order:
            got = results.loads[f"{key} get"][-1]
            line = f"  {key}: GET {got.rate:,.0f}/s ({got.cpu_us:.1f} µs CPU each)"
            if key != "feedsvc-1M":
                line += (
                    f", 304 {results.loads[f'{key} 304'][-1].rate:,.0f}/s, "
                    f"p50 {results.loads[f'{key} c1'][-1].p50_us:.0f} µs"
                )
            print(line, flush=True)
    notes["load"] += " / " + " ".join(Path("/proc/loadavg").read_text().split()[:3])
    if "feedsvc-1M" in servers:
        workers = servers["feedsvc-1M"].workers()
        notes["rss"] = f"{max(rss_mib(pid) for pid in workers):.1f}"
        notes["rss main"] = f"{rss_mib(servers['feedsvc-1M'].process.pid):.1f}"
    workers = servers["feedsvc"].workers()
    notes["rss 1k"] = f"{max(rss_mib(pid) for pid in workers):.1f}"
    return results, notes


def report(
    results: Results, notes: dict[str, str], seconds: float, rounds: int, args: argparse.Namespace
) -> None:
    rows = []

    def ratio(measure: str, a: float, b: float, unit: str, target: str, ok) -> None:
        value = a / b
        rows.append(
            [
                measure,
                f"{a:,.1f} {unit}",
                f"{b:,.1f} {unit}",
                f"{value:.2f}",
                target,
                "yes" if ok(value) else "NO",
            ]
        )

    m = results.median
    ratio(
        "feed GET req/s, feedsvc / nginx",
        m("feedsvc get", "rate"),
        m("nginx get", "rate"),
        "req/s",
        "≥ 0.5",
        lambda v: v >= 0.5,
    )
    ratio(
        "server CPU per feed GET, feedsvc / nginx",
        m("feedsvc get", "cpu_us"),
        m("nginx get", "cpu_us"),
        "µs",
        "≤ 2.0",
        lambda v: v <= 2.0,
    )
    ratio(
        "304 req/s (If-None-Match), feedsvc / nginx",
        m("feedsvc 304", "rate"),
        m("nginx 304", "rate"),
        "req/s",
        "≥ 0.2",
        lambda v: v >= 0.2,
    )
    ratio(
        "p50 latency at 1 connection, feedsvc / nginx",
        m("feedsvc c1", "p50_us"),
        m("nginx c1", "p50_us"),
        "µs",
        "≤ 2.0",
        lambda v: v <= 2.0,
    )
    logged = "feedsvc-log" if "feedsvc-log get" in results.loads else "feedsvc"
    for measure, key, attribute, target, ok in (
        ("feed GET req/s, feedsvc (access log on) / bare", "get", "rate", "≥ 0.85", 0.85),
        ("304 req/s, feedsvc (access log on) / bare", "304", "rate", "≥ 0.85", 0.85),
        ("304 req/s, feedsvc (no access log) / bare", "304", "rate", "≥ 0.85", 0.85),
        ("p50 at 1 connection, feedsvc (access log on) / bare", "c1", "p50_us", "≤ 1.2", -1.2),
        # Less swayed by other load on the machine than the rates: CPU the server spent.
        ("server CPU per feed GET, bare / feedsvc (log on)", "get", "cpu_us", "≥ 0.85", 0.85),
    ):
        mine = "feedsvc" if "no access log" in measure else logged
        per_round = results.ratios(f"{mine} {key}", f"bare {key}", attribute)
        if attribute == "cpu_us":  # as a speed: higher is better, like the rates
            per_round = [1 / r for r in per_round]
        value = statistics.median(per_round)
        unit = "req/s" if attribute == "rate" else "µs"
        spread = " ".join(f"{r:.2f}" for r in per_round)
        rows.append(
            [
                measure,
                f"{m(f'{mine} {key}', attribute):,.1f} {unit}",
                f"bare {m(f'bare {key}', attribute):,.1f} {unit}",
                f"{value:.2f} ({spread})",
                target,
                "yes" if (value >= ok if ok > 0 else value <= -ok) else "NO",
            ]
        )
    if "feedsvc-1M get" in results.loads:
        ratio(
            f"feedsvc req/s, {args.big:,} items / 1k items",
            m("feedsvc-1M get", "rate"),
            m("feedsvc get", "rate"),
            "req/s",
            "≥ 0.9",
            lambda v: v >= 0.9,
        )
    most = max(results.renders)
    rows.append(
        [
            f"renders during a {seconds:g} s load (max of rounds)",
            str(most),
            "-",
            "-",
            "0",
            "yes" if most == 0 else "NO",
        ]
    )
    if "rss" in notes:
        rss = float(notes["rss"])
        rows.append(
            [
                f"RSS per worker, {args.big:,} items",
                f"{rss:.1f} MiB",
                f"(1k: {notes['rss 1k']} MiB)",
                "-",
                "≤ 80 MB",
                "yes" if rss * 1024 * 1024 <= 80_000_000 else "NO",
            ]
        )

    header = ["measure", "feedsvc", "nginx", "ratio (per round)", "target", "met"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(6)]
    print()
    print(
        f"bench.serve: {FEED} ({ENTRIES} entries), wrk -t1 -c16 -d{seconds:g}s (p50: -c1), "
        f"{rounds} round(s), medians; server on CPU {SERVER_CPU}, wrk on CPU {CLIENT_CPU}; "
        f"load average before and after: {notes.pop('load', '?')}"
    )
    for key, value in notes.items():
        if not key.startswith("rss"):
            print(f"  {key}: {value}")
    if "rss main" in notes:
        print(f"  granian main process RSS (1M): {notes['rss main']} MiB")
    for row in [header, ["-" * w for w in widths], *rows]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


if __name__ == "__main__":
    main()
