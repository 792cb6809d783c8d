"""`feedsvc watch DIR`, a drop folder: real files moved into a real folder while `feedsvc watch`
runs as a real process; waits poll with deadlines. The kill -9 test kills it mid-batch."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from feedsvc.catalog import load_catalog
from feedsvc.ingest import open_filed_store

from .conftest import BASE_URL
from .server import environment, feedsvc_command, run_cli, snapshot_feeds, stop_group

pytestmark = pytest.mark.system

TIMEOUT = 60.0  # seconds any one wait may take on a busy machine


class Watcher:
    """`feedsvc watch DIR ...` in its own process group, its output in files."""

    def __init__(
        self, folder: Path, env: dict[str, str], logs: Path, *args: str, command: list[str]
    ) -> None:
        logs.mkdir(exist_ok=True)
        number = len(list(logs.glob("*.out")))
        self.stdout_path, self.stderr_path = logs / f"{number}.out", logs / f"{number}.err"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [*command, "watch", str(folder), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(encoding="utf-8")

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(encoding="utf-8")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send `signum` and wait for the exit; its code."""
        self.process.send_signal(signum)
        return self.process.wait(TIMEOUT)

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(TIMEOUT)


Setup = tuple[Path, dict[str, str], Callable[..., Watcher]]

# `feedsvc` whose SQLite writes wait BUSY_MS for a lock, not 30 s: the locked-store test
# meets the busy timeout twice and would otherwise wait a minute for it.
BUSY_MS = 300
SHORT_BUSY = [
    sys.executable,
    "-c",
    "import sys; from feedsvc.store.sqlite import SQLiteStore;"
    f" SQLiteStore.BUSY_TIMEOUT_MS = {BUSY_MS}; from feedsvc.cli import main;"
    " sys.exit(main())",
]


def _setup(tmp_path: Path, db: str) -> Iterator[Setup]:
    folder = tmp_path / "drop"
    folder.mkdir()
    env = environment(db, snapshot_feeds(tmp_path / "feeds"))
    started: list[Watcher] = []

    def start(*args: str, command: list[str] | None = None) -> Watcher:
        watcher = Watcher(
            folder, env, tmp_path / "logs", *args, command=command or feedsvc_command()
        )
        started.append(watcher)
        return watcher

    try:
        yield folder, env, start
    finally:
        for watcher in started:
            stop_group(watcher.process, grace=2)


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    """A drop folder, the environment (an SQLite store, a private catalogue), and a watcher
    starter that stops whatever it started when the test ends."""
    yield from _setup(tmp_path, str(tmp_path / "store.sqlite3"))


@pytest.fixture
def engine_setup(tmp_path: Path, db: str) -> Iterator[Setup]:
    """`setup` on each engine: SQLite, and a new PostgreSQL database."""
    yield from _setup(tmp_path, db)


def wait_for(
    condition: Callable[[], bool],
    what: str,
    watcher: Watcher | None = None,
    timeout: float = TIMEOUT,
    poll: float = 0.02,
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if watcher is not None and watcher.process.poll() is not None:
            pytest.fail(f"feedsvc watch ended ({watcher.process.returncode}): {watcher.stderr}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(poll)


def names(directory: Path) -> set[str]:
    return {path.name for path in directory.iterdir()} if directory.is_dir() else set()


def wire(title: str, body: str = "") -> bytes:
    body = body or f"The harbour office confirmed it: {title.lower()}."
    return f"{title}\n{body}\nM.Rossi--HB\n".encode()


def drop(folder: Path, name: str, data: bytes) -> None:
    """Upload then rename, as FTP servers and rsync do: the file appears in DIR complete."""
    staging = folder.parent / "staging"
    staging.mkdir(exist_ok=True)
    (staging / name).write_bytes(data)
    (staging / name).rename(folder / name)


def stored_titles(env: dict[str, str]) -> collections.Counter[str]:
    catalog = load_catalog(Path(env["FEEDSVC_FEEDS"]), BASE_URL)
    store = open_filed_store(env["FEEDSVC_DB"], catalog)
    try:
        assert store.counts()["all"] == len(store.newest("all", 100_000))
        return collections.Counter(item.title for item in store.newest("all", 100_000))
    finally:
        store.close()


def test_documents_dropped_while_watching_are_stored_and_moved_to_done(engine_setup) -> None:
    folder, env, start = engine_setup
    (folder / "early.txt").write_bytes(wire("Ferry timetable changes from Monday"))
    watcher = start("--settle", "0.2")
    wait_for(lambda: names(folder / "done") == {"early.txt"}, "the file there at start", watcher)
    drop(folder, "late.txt", wire("Harbour crane repaired after storm"))
    drop(folder, "extra.jsonl", b'{"id": "x1", "title": "Pier lights replaced"}\n')
    (folder / ".hidden.txt").write_bytes(wire("Never to be read, a dot-file"))
    (folder / "upload.txt.part").write_bytes(wire("Never to be read, a partial upload"))
    done = {"early.txt", "late.txt", "extra.jsonl"}
    wait_for(lambda: names(folder / "done") == done, "the dropped files", watcher)
    assert watcher.stop() == 0, watcher.stderr
    assert names(folder) == {".hidden.txt", "upload.txt.part", ".feedsvc-watch.lock"} | {
        "done",
        "failed",
    }
    assert names(folder / "failed") == set()
    lines = watcher.stdout.splitlines()
    assert sorted(lines) == sorted(f"{folder / n}: 1 new, 0 updated, 0 unchanged" for n in done)
    assert stored_titles(env) == {
        "Ferry timetable changes from Monday": 1,
        "Harbour crane repaired after storm": 1,
        "Pier lights replaced": 1,
    }


def test_bad_document_lands_in_failed_with_its_reason_and_the_others_go_on(setup) -> None:
    folder, env, start = setup
    watcher = start("--settle", "0")
    drop(folder, "one.txt", wire("Lighthouse keeper retires after forty years"))
    drop(folder, "bad.txt", b"Tug boat contract signed\nwith caf\xe9 owners\n")
    drop(folder, "two.txt", wire("New ferry named after local teacher"))
    wait_for(lambda: "bad.txt.error" in names(folder / "failed"), "the rejection", watcher)
    wait_for(lambda: names(folder / "done") == {"one.txt", "two.txt"}, "the others", watcher)
    drop(folder, "bad.txt", b"\xff\xfeanother bad one\n")  # the same name again: kept apart
    wait_for(lambda: "bad.1.txt.error" in names(folder / "failed"), "the second one", watcher)
    assert watcher.stop(signal.SIGINT) == 0, watcher.stderr
    assert names(folder / "failed") == {"bad.txt", "bad.txt.error", "bad.1.txt", "bad.1.txt.error"}
    assert (folder / "failed" / "bad.txt").read_bytes().startswith(b"Tug boat")
    reason = (folder / "failed" / "bad.txt.error").read_text(encoding="utf-8")
    assert reason.count("\n") == 1 and "not valid UTF-8" in reason
    # The reason is the line `feedsvc ingest` prints for the same file.
    (folder / "bad.txt").write_bytes((folder / "failed" / "bad.txt").read_bytes())
    ingested = run_cli(["ingest", str(folder / "bad.txt")], env)
    assert ingested.returncode == 1
    assert ingested.stderr == f"feedsvc: error: {reason}"
    assert f"feedsvc: error: {reason}" in watcher.stderr
    assert set(stored_titles(env)) == {
        "Lighthouse keeper retires after forty years",
        "New ferry named after local teacher",
    }


def test_a_file_written_slowly_in_place_is_taken_only_when_complete(setup) -> None:
    folder, env, start = setup
    watcher = start("--settle", "0.6")
    wait_for(lambda: "feedsvc: watching" in watcher.stderr, "the watch to start", watcher)
    path = folder / "slow.txt"
    paragraphs = [f"Paragraph {number} of the harbour report." for number in range(12)]
    with path.open("w", encoding="utf-8") as upload:
        upload.write("Harbour report arrives in pieces\n")
        for paragraph in paragraphs:  # a slow writer: a piece every 0.15 s, 1.8 s in all
            upload.flush()
            time.sleep(0.15)
            assert path.exists() and names(folder / "done") == set(), "taken half-written"
            upload.write(paragraph + "\n")
    wait_for(lambda: names(folder / "done") == {"slow.txt"}, "the complete file", watcher)
    assert watcher.stop() == 0, watcher.stderr
    catalog = load_catalog(Path(env["FEEDSVC_FEEDS"]), BASE_URL)
    store = open_filed_store(env["FEEDSVC_DB"], catalog)
    [item] = store.newest("all", 10)
    store.close()
    assert item.title == "Harbour report arrives in pieces"
    assert item.content is not None and all(p in item.content for p in paragraphs)


def test_once_stores_what_is_there_and_exits(setup) -> None:
    folder, env, start = setup
    (folder / "a.txt").write_bytes(wire("Dredging of the outer basin begins"))
    (folder / "b.txt").write_bytes(b"\xc3\x28 broken\n")
    watcher = start("--once", "--settle", "0.1")
    assert watcher.process.wait(TIMEOUT) == 1, watcher.stderr  # one was rejected
    assert names(folder / "done") == {"a.txt"}
    assert names(folder / "failed") == {"b.txt", "b.txt.error"}
    assert set(stored_titles(env)) == {"Dredging of the outer basin begins"}


def test_a_second_watcher_of_the_same_folder_is_refused(setup) -> None:
    folder, _, start = setup
    first = start()
    wait_for(lambda: "feedsvc: watching" in first.stderr, "the first watch", first)
    second = start("--once")
    assert second.process.wait(TIMEOUT) == 1
    assert second.stderr.splitlines()[-1] == (
        f"feedsvc: error: {folder}: another feedsvc watch is watching this folder"
    )
    assert first.stop() == 0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.parametrize("how", [(), ("--poll", "0.1")], ids=["inotify", "poll"])
def test_an_idle_watch_finds_dropped_documents_and_sleeps(setup, how) -> None:
    folder, _, start = setup
    watcher = start(*how, "--settle", "0.2")
    drop(folder, "dropped.txt", wire("Marina fees frozen for a year"))
    wait_for(lambda: names(folder / "done") == {"dropped.txt"}, "the dropped file", watcher)
    before, started = cpu_seconds(watcher.process.pid), time.monotonic()
    time.sleep(1.0)  # a measurement over an interval, not a wait for something
    busy = (cpu_seconds(watcher.process.pid) - before) / (time.monotonic() - started)
    assert busy < 0.1, f"an idle watch used {busy:.0%} of a CPU"
    assert watcher.stop() == 0, watcher.stderr


def test_a_locked_store_leaves_the_document_waiting_not_failed(setup) -> None:
    """A store error is not the document's fault: the file stays in DIR, the watch says so
    and tries again; once the store is free the document is stored. (The watch's busy
    timeout is shortened to BUSY_MS, as SQLite's 30 s would make this test wait a minute.)"""
    folder, env, start = setup
    assert run_cli(["init"], env).returncode == 0
    watcher = start("--settle", "0", "--retry", "0.5", command=SHORT_BUSY)
    wait_for(lambda: "feedsvc: watching" in watcher.stderr, "the watch to start", watcher)
    holder = sqlite3.connect(env["FEEDSVC_DB"], isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held by another process
    try:
        drop(folder, "waits.txt", wire("Quay wall inspection finds no cracks"))
        # The batch waits out the busy timeout, then the document alone does.
        wait_for(lambda: "tried again" in watcher.stderr, "the store error", watcher)
        assert names(folder / "failed") == set()
        assert "waits.txt" in names(folder)
        assert f"not the document's fault: {folder / 'waits.txt'} stays" in watcher.stderr
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    wait_for(lambda: names(folder / "done") == {"waits.txt"}, "the retry", watcher)
    assert watcher.stop() == 0, watcher.stderr
    assert set(stored_titles(env)) == {"Quay wall inspection finds no cracks"}


def test_kill_9_during_a_batch_and_restart_lose_nothing_and_store_nothing_twice(
    engine_setup,
) -> None:
    folder, env, start = engine_setup
    count = 600
    titles = {
        f"Harbour notice {number}: berth {number % 37} closed for works": number
        for number in range(count)
    }
    for title, number in titles.items():
        drop(folder, f"notice-{number:04}.txt", wire(title))
    left = lambda: len(names(folder)) - 3  # noqa: E731 (done/, failed/, the lock file)
    # kill -9 as soon as it runs (reading, writing in an open transaction), while a committed
    # batch is being moved (its first line is out), and as soon as it runs again.
    running: Callable[[Watcher], bool] = lambda watcher: "watching" in watcher.stderr  # noqa: E731
    moments = [running, lambda watcher: watcher.stdout.count("\n") >= 1, running]
    killed_with_work_left = 0
    for moment in moments:
        if left() == 0:
            break
        watcher = start("--settle", "0")
        # Polled often: the moves after a commit take a few ms a hundred, and a test process
        # slowed by a busy machine would see the moment only once they were all done.
        wait_for(lambda w=watcher, m=moment: m(w) or left() == 0, "the moment", watcher, poll=0.002)
        remaining = left()
        watcher.kill()
        killed_with_work_left += remaining > 0
    assert killed_with_work_left >= 2, "the watch was not killed mid-run"
    watcher = start("--settle", "0")
    expected = {f"notice-{number:04}.txt" for number in range(count)}
    wait_for(lambda: names(folder / "done") == expected, "every document in done/", watcher)
    assert watcher.stop() == 0, watcher.stderr
    assert names(folder) == {"done", "failed", ".feedsvc-watch.lock"}  # nothing left, no copies
    assert names(folder / "failed") == set()
    assert stored_titles(env) == collections.Counter(list(titles))  # every item, each once


def test_a_missing_folder_is_one_line_and_makes_no_store(tmp_path) -> None:
    env = environment(tmp_path / "store.sqlite3", snapshot_feeds(tmp_path / "feeds"))
    result = run_cli(["watch", str(tmp_path / "nowhere"), "--once"], env)
    assert result.returncode == 1
    assert result.stderr == f"feedsvc: error: {tmp_path / 'nowhere'}: no such directory\n"
    assert not (tmp_path / "store.sqlite3").exists()


def test_watch_makes_the_store_as_ingest_does(setup) -> None:
    folder, env, start = setup
    (folder / "first.txt").write_bytes(wire("Breakwater extension approved"))
    watcher = start("--once", "--settle", "0")
    assert watcher.process.wait(TIMEOUT) == 0, watcher.stderr
    assert set(stored_titles(env)) == {"Breakwater extension approved"}


def test_a_document_stored_before_a_kill_but_not_moved_is_unchanged_then_moved(setup) -> None:
    """The state a kill between commit and move leaves, made on purpose: the document is in
    the store and still in DIR. The restarted watch stores nothing twice and moves it."""
    folder, env, start = setup
    (folder / "again.txt").write_bytes(wire("Harbour master elected chair"))
    assert run_cli(["ingest", str(folder / "again.txt")], env).returncode == 0
    (folder / "done").mkdir()
    (folder / "done" / "again.txt").write_bytes(b"an earlier document of the same name\n")
    watcher = start("--once", "--settle", "0")
    assert watcher.process.wait(TIMEOUT) == 0, watcher.stderr
    assert watcher.stdout == f"{folder / 'again.txt'}: 0 new, 0 updated, 1 unchanged\n"
    assert names(folder / "done") == {"again.txt", "again.1.txt"}
    assert (folder / "done" / "again.txt").read_bytes().startswith(b"an earlier")
    assert stored_titles(env) == {"Harbour master elected chair": 1}


def test_a_dropped_postgresql_connection_is_not_the_documents_fault(tmp_path, postgres) -> None:
    """The server ends the watch's connection (a restart, a failover): the next document is
    not failed; it is stored once the store answers again."""
    url = postgres.database()
    generator = _setup(tmp_path, url)
    folder, env, start = next(generator)
    try:
        watcher = start("--settle", "0", "--retry", "0.2")
        drop(folder, "before.txt", wire("Cruise terminal opens in spring"))
        wait_for(lambda: names(folder / "done") == {"before.txt"}, "the first", watcher)
        with postgres.admin() as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (url.rsplit("/", 1)[1],),
            )
        drop(folder, "after.txt", wire("Cruise terminal parking doubled"))
        wait_for(lambda: "after.txt" in names(folder / "done"), "the second", watcher)
        assert watcher.stop() == 0, watcher.stderr
        assert names(folder / "failed") == set()
        errors = [line for line in watcher.stderr.splitlines() if "error" in line]
        assert all("not the document's fault" in line for line in errors), errors
        assert set(stored_titles(env)) == {
            "Cruise terminal opens in spring",
            "Cruise terminal parking doubled",
        }
    finally:
        generator.close()
