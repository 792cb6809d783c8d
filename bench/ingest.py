"""`feedsvc ingest DIR` of generated wire items, on SQLite and PostgreSQL, for one or more
checkouts in the same run: each a venv (or its python) whose `feedsvc` is run.

    python -m bench.ingest [--items 100000] [--per-doc 200] [--rounds 3] [--engine NAME]
                           [--version LABEL=VENV ...]

Without `--version`, this checkout's `.venv` alone. With `--version before=/work/base/.venv
--version after=.venv`, the versions take turns within each round (and the engines within
each version), so a busy machine slows both alike; a fresh store each run (a new SQLite file,
a new PostgreSQL database on one server this script starts, durable: fsync on). Each run's
rate is items / wall seconds of the whole command (start-up included); the table gives the
median of the rounds, the spread (min-max), and each version's median over the first one's;
beside it the CPU seconds of the command and its workers (user + system; on PostgreSQL with
the server's: what a busy, shared machine distorts least), and the first version's CPU over
each one's.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.pg import PostgresServer, binaries

from .gen import copy_feeds, write_documents
from .store_build import Row, table

ENGINES = ("SQLite", "PostgreSQL")


def feedsvc_of(venv: str) -> Path:
    """The `feedsvc` script of a venv, given the venv or its python."""
    path = Path(venv)
    script = path / "bin" / "feedsvc" if path.is_dir() else path.with_name("feedsvc")
    if not script.exists():
        raise SystemExit(f"no feedsvc at {script}")
    return script


def timed_ingest(feedsvc: Path, db: str, docs: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, with its worker processes) of `feedsvc
    --db DB ingest DOCS`; stops the bench if it fails."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        args = [str(feedsvc), "--db", db, "ingest", str(docs)]
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=errors)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise SystemExit(f"{feedsvc} ingest failed:\n{errors.read().decode()[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime


def server_cpu(server: PostgresServer | None) -> float:
    """CPU seconds the PostgreSQL server has used (its postmaster, with the backends it has
    reaped: a run's connection has ended when its command has)."""
    if server is None:
        return 0.0
    pid = (server.data / "postmaster.pid").read_text().split()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def run(args: argparse.Namespace, tmp: Path, server: PostgresServer | None) -> list[Row]:
    versions = dict(v.split("=", 1) for v in args.version) or {"this": ".venv"}
    scripts = {label: feedsvc_of(venv) for label, venv in versions.items()}
    feeds = copy_feeds(tmp / "feeds")
    env = dict(os.environ, FEEDSVC_FEEDS=str(feeds))
    env.pop("FEEDSVC_DB", None)
    files = write_documents(tmp / "docs", args.items, args.per_doc, seed=1, feeds_dir=feeds)
    print(f"generated {args.items} items in {files} documents", flush=True)
    engines = [e for e in ENGINES if args.engine in (None, e.lower())]
    rates: dict[tuple[str, str], list[float]] = {(v, e): [] for v in scripts for e in engines}
    cpu: dict[tuple[str, str], list[float]] = {(v, e): [] for v in scripts for e in engines}
    for round_number in range(args.rounds):
        order = list(scripts) if round_number % 2 == 0 else list(reversed(scripts))
        for label in order:
            for engine in engines:
                if engine == "SQLite":
                    db = str(tmp / f"{label}-{round_number}.sqlite3")
                else:
                    assert server is not None
                    db = server.database()
                before = server_cpu(server if engine == "PostgreSQL" else None)
                seconds, used = timed_ingest(scripts[label], db, tmp / "docs", env)
                used += server_cpu(server if engine == "PostgreSQL" else None) - before
                rates[label, engine].append(args.items / seconds)
                cpu[label, engine].append(used)
                print(
                    f"round {round_number + 1}, {label}, {engine}: {seconds:.2f} s, "
                    f"CPU {used:.2f} s (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
                if engine == "SQLite":
                    for path in tmp.glob(f"{label}-{round_number}.sqlite3*"):
                        path.unlink()
                else:
                    server.drop(db)  # type: ignore[union-attr]
    rows = []
    first = next(iter(scripts))
    for engine in engines:
        base = statistics.median(rates[first, engine])
        base_cpu = statistics.median(cpu[first, engine])
        for label in scripts:
            found, used = rates[label, engine], statistics.median(cpu[label, engine])
            median = statistics.median(found)
            ratio = f"{median / base:.2f}x, CPU {base_cpu / used:.2f}x" if label != first else ""
            rows.append(
                Row(
                    f"ingest {args.items} items, {engine}, {label}",
                    f"{median:,.0f} items/s ({min(found):,.0f}-{max(found):,.0f}), "
                    f"CPU {used:.1f} s",
                    ratio,
                    None,
                )
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000, help="items [100000]")
    parser.add_argument("--per-doc", type=int, default=200, help="items per document [200]")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each version [3]")
    parser.add_argument("--engine", choices=[e.lower() for e in ENGINES], default=None)
    parser.add_argument(
        "--version",
        action="append",
        default=[],
        metavar="LABEL=VENV",
        help="a checkout's venv (or its python) to measure; repeat to compare, first = base",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="feedsvc-bench-ingest-"))
    server = None
    if args.engine != "sqlite":
        bin_dir = binaries()
        if bin_dir is None:
            raise SystemExit("PostgreSQL server binaries not found (apt-get install postgresql)")
        # Durable, as in production (the tests' cluster turns fsync off).
        server = PostgresServer(bin_dir, fsync="on", full_page_writes="on", shared_buffers="128MB")
        server.start()
    try:
        rows = run(args, tmp, server)
        print()
        print(
            f"bench.ingest: {args.items} items, {args.per_doc} a document, {args.rounds} rounds; "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}; "
            f"load average {os.getloadavg()[0]:.1f} at the end"
        )
        print(table(rows), flush=True)
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
