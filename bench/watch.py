"""The drop folder: documents per second through `feedsvc watch`, a document's delay, idle cost.

    python -m bench.watch [--files 1000] [--keep]

For each way of watching (inotify, --poll) and settle time: a `feedsvc watch` child on an
empty folder and a fresh SQLite store; `--files` single-item wire documents (bench/gen.py) are
moved into the folder at once (written elsewhere first, as an upload is); the rate counts from
the first drop to the last document in done/ (moved only once stored). Then one more document
on the idle watcher: its delay from drop to done/. Then the watcher's CPU over a few idle
seconds. `feedsvc ingest DIR` of the same files is the baseline.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from .gen import copy_feeds, documents
from .store_build import FEEDSVC, Row, table

IDLE_SECONDS = 5.0
TIMEOUT = 300.0


@dataclass(frozen=True)
class Setup:
    name: str
    args: tuple[str, ...]


SETUPS = [
    Setup("inotify, settle 0", ("--settle", "0")),
    Setup("inotify, settle 1 s (default)", ()),
    Setup("poll 0.5 s, settle 1 s", ("--poll", "0.5")),
]


def write_files(staging: Path, count: int, seed: int) -> list[Path]:
    staging.mkdir(parents=True, exist_ok=True)
    paths = []
    for document in documents(count, per_doc=1, seed=seed):
        path = staging / document.name
        path.write_bytes(document.data)
        paths.append(path)
    return paths


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.002)


def done_count(folder: Path) -> int:
    try:
        return len(os.listdir(folder / "done"))
    except FileNotFoundError:
        return 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_watch(root: Path, setup: Setup, count: int, env: dict[str, str]) -> list[Row]:
    folder, logs = root / "drop", root / "watch.err"
    folder.mkdir(parents=True)
    files = write_files(root / "staging", count, seed=7)
    env = dict(env, FEEDSVC_DB=str(root / "store.sqlite3"))
    with logs.open("wb") as err:
        child = subprocess.Popen(
            [FEEDSVC, "watch", str(folder), *setup.args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        wait_until(lambda: (folder / "done").is_dir(), "the watch to start")
        started = time.monotonic()
        for path in files:
            path.rename(folder / path.name)
        dropped = time.monotonic() - started
        wait_until(lambda: done_count(folder) == count, "every document in done/")
        elapsed = time.monotonic() - started
        one = write_files(root / "one", 1, seed=8)[0]
        started = time.monotonic()
        one.rename(folder / one.name)
        wait_until(lambda: done_count(folder) == count + 1, "the last document")
        delay = time.monotonic() - started
        before = cpu_seconds(child.pid)
        time.sleep(IDLE_SECONDS)
        idle = (cpu_seconds(child.pid) - before) / IDLE_SECONDS
    finally:
        child.send_signal(signal.SIGTERM)
        code = child.wait(30)
    if code != 0:
        raise SystemExit(f"feedsvc watch exited {code}: {logs.read_text()}")
    return [
        Row(f"{setup.name}: {count} files", f"{count / elapsed:,.0f} documents/s", "", None),
        Row("  (of which dropping them)", f"{dropped * 1000:.0f} ms", "", None),
        Row("  one document, drop to done/", f"{delay * 1000:.0f} ms", "", None),
        Row("  idle CPU", f"{idle * 100:.2f} %", "", None),
    ]


def run_ingest(root: Path, count: int, env: dict[str, str]) -> Row:
    files = write_files(root / "staging", count, seed=7)
    env = dict(env, FEEDSVC_DB=str(root / "store.sqlite3"))
    started = time.monotonic()
    subprocess.run(
        [FEEDSVC, "ingest", str(files[0].parent)], env=env, check=True, capture_output=True
    )
    elapsed = time.monotonic() - started
    rate = f"{count / elapsed:,.0f} documents/s"
    return Row(f"feedsvc ingest DIR: {count} files", rate, "", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    options = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="feedsvc-bench-watch-"))
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
        env["FEEDSVC_FEEDS"] = str(copy_feeds(base / "feeds"))
        rows = []
        for number, setup in enumerate(SETUPS):
            rows += run_watch(base / f"watch-{number}", setup, options.files, env)
        rows.append(run_ingest(base / "ingest", options.files, env))
        print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        print(table(rows))
    finally:
        if options.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
