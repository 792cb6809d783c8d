"""A run of many documents is written in batches (`ingest.store_all`, `Store.batch`): the same
store as one document at a time, nothing visible or reported before its batch commits, a
document that fails costs only itself, and kill -9 leaves whole documents, in order."""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from feedsvc.catalog import Catalog
from feedsvc.errors import FeedsvcError
from feedsvc.ingest import ingest_document, open_filed_store, prepare, store_all
from feedsvc.sources import Document, parse_document
from feedsvc.static import build_site
from feedsvc.store import Store

from .conftest import SAMPLES
from .server import environment, feedsvc_command, run_cli, snapshot_feeds, stop_group
from .test_crash import SEED, kill


def headlines(name: str, count: int, tag: str) -> Document:
    text = "".join(
        f"-\n{tag} harbour notice {n}: ferry route {n * 7 % 97} changes\n" for n in range(count)
    )
    return Document(name, text.encode(), "wire")


def site_bytes(store: Store, catalog: Catalog, outdir: Path) -> dict[str, bytes]:
    build_site(store, catalog, outdir)
    return {
        path.relative_to(outdir).as_posix(): path.read_bytes()
        for path in sorted(outdir.rglob("*"))
        if path.is_file() and path.name != ".feedsvc-build.json"
    }


def test_batched_documents_make_the_same_store_as_one_at_a_time(
    store, catalog, clock, tmp_path
) -> None:
    documents = [Document(p.name, p.read_bytes(), "wire") for p in sorted(SAMPLES.glob("*.txt"))]
    documents.append(documents[0])  # again: unchanged
    reference = open_filed_store(tmp_path / "one-by-one.sqlite3", catalog, clock, create=True)
    expected = [str(ingest_document(reference, catalog, d)) for d in documents]

    results = list(store_all(store, (prepare(d, catalog) for d in documents)))

    assert [outcome.name for outcome, _ in results] == [d.name for d in documents]
    assert [str(counts) for _, counts in results] == expected
    assert expected[-1].startswith("0 new, 0 updated")
    assert site_bytes(store, catalog, tmp_path / "batched") == site_bytes(
        reference, catalog, tmp_path / "reference"
    )


def test_a_batch_is_seen_by_other_connections_only_once_it_commits(
    tmp_path, catalog, clock
) -> None:
    path = tmp_path / "store.sqlite3"
    writer = open_filed_store(path, catalog, clock, create=True)
    reader = open_filed_store(path, catalog, clock)
    with writer.batch():
        for n in range(3):
            ingest_document(writer, catalog, headlines(f"{n}.txt", 5, f"Pier{n}"))
        assert reader.counts().get("all", 0) == 0
    assert reader.counts()["all"] == 15


def test_an_exception_leaving_a_batch_undoes_all_of_it(tmp_path, catalog, clock) -> None:
    store = open_filed_store(tmp_path / "store.sqlite3", catalog, clock, create=True)
    generation = store.generation()
    with pytest.raises(KeyboardInterrupt), store.batch():
        ingest_document(store, catalog, headlines("a.txt", 5, "Quay"))
        raise KeyboardInterrupt
    assert store.counts().get("all", 0) == 0
    assert store.generation() == generation
    assert ingest_document(store, catalog, headlines("a.txt", 5, "Quay")).new == 5


def test_a_document_that_fails_in_the_store_costs_only_itself(tmp_path, catalog, clock) -> None:
    """A real failure: SQLite's page limit is reached by the big document (a full disk)."""
    store = open_filed_store(tmp_path / "store.sqlite3", catalog, clock, create=True)
    pages = store.db.execute("PRAGMA page_count").fetchone()[0]
    store.db.execute(f"PRAGMA max_page_count = {pages + 40}")
    documents = [
        headlines("small.txt", 20, "Alpha"),
        headlines("big.txt", 5_000, "Beta"),
        headlines("after.txt", 20, "Gamma"),
    ]

    results = list(store_all(store, (prepare(d, catalog) for d in documents)))

    assert [str(counts).split(",")[0] for _, counts in results[::2]] == ["20 new", "20 new"]
    error = results[1][1]
    assert isinstance(error, FeedsvcError)
    assert "database or disk is full" in str(error) and "\n" not in str(error)
    assert store.counts()["all"] == 40
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_batch_sqlite_undoes_whole_is_written_again_one_document_at_a_time(
    tmp_path, catalog, clock
) -> None:
    """RAISE(ROLLBACK) in a trigger makes SQLite undo the whole transaction, as a full disk
    can: the batch fails whole, and its documents are stored again one at a time."""
    store = open_filed_store(tmp_path / "store.sqlite3", catalog, clock, create=True)
    store.db.execute(
        "CREATE TEMP TRIGGER poison BEFORE INSERT ON items WHEN NEW.title LIKE 'Poison%' "
        "BEGIN SELECT RAISE(ROLLBACK, 'poisoned item'); END"
    )
    documents = [
        headlines("before.txt", 5, "Alpha"),
        headlines("poison.txt", 5, "Poison"),
        headlines("after.txt", 5, "Gamma"),
    ]

    results = list(store_all(store, (prepare(d, catalog) for d in documents)))

    assert [outcome.name for outcome, _ in results] == [d.name for d in documents]
    assert [str(counts).split(",")[0] for _, counts in results[::2]] == ["5 new", "5 new"]
    error = results[1][1]
    assert isinstance(error, FeedsvcError) and "poisoned item" in str(error)
    assert store.counts()["all"] == 10
    assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_store_another_writer_holds_rejects_each_document_and_the_run_ends(
    tmp_path, catalog, clock
) -> None:
    """A batch that cannot begin (the write lock held past the busy timeout): each document is
    rejected in one line, and the run ends instead of trying the same batch forever."""
    path = tmp_path / "store.sqlite3"
    store = open_filed_store(path, catalog, clock, create=True)
    store.db.execute("PRAGMA busy_timeout = 50")
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    documents = [headlines(f"{n}.txt", 3, f"Lock{n}") for n in range(2)]
    results: list = []
    runner = threading.Thread(
        target=lambda: results.extend(store_all(store, (prepare(d, catalog) for d in documents))),
        daemon=True,
    )
    runner.start()
    runner.join(30)
    holder.execute("ROLLBACK")
    holder.close()
    assert not runner.is_alive(), "store_all never ended"
    assert [outcome.name for outcome, _ in results] == ["0.txt", "1.txt"]
    assert all(
        isinstance(error, FeedsvcError) and "database is locked" in str(error)
        for _, error in results
    )
    assert store.counts().get("all", 0) == 0


# -- kill -9 of a run of many documents ---------------------------------------------------------

DOCUMENTS = 60
PER_DOCUMENT = 300
MIN_KILLS = 8
BUDGET = 60.0


def stored_ids(db: Path) -> set[str]:
    if not db.exists():
        return set()
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
        return (
            {row[0] for row in connection.execute("SELECT id FROM items")}
            if "items" in tables
            else set()
        )
    finally:
        connection.close()


@pytest.mark.system
def test_kill_during_a_run_leaves_whole_documents_in_order_and_every_reported_one(
    tmp_path, request
) -> None:
    feeds = snapshot_feeds(tmp_path / "feeds")
    drop = tmp_path / "drop"
    drop.mkdir()
    ids: dict[str, set[str]] = {}
    for n in range(DOCUMENTS):
        document = headlines(f"{n:03d}.txt", PER_DOCUMENT, f"Dock{n}")
        (drop / document.name).write_bytes(document.data)
        ids[document.name] = {item.id for item in parse_document(document)}
    names = sorted(ids)
    started = time.monotonic()
    whole = run_cli(["ingest", str(drop)], environment(tmp_path / "whole.sqlite3", feeds))
    duration = time.monotonic() - started
    assert whole.returncode == 0, whole.stderr
    assert stored_ids(tmp_path / "whole.sqlite3") == set().union(*ids.values())

    rng = random.Random(SEED)
    kills, rounds, reported_total, partial_runs = 0, 0, 0, 0
    while kills < MIN_KILLS and time.monotonic() - started < max(BUDGET, 20 * duration):
        rounds += 1
        db = tmp_path / f"round-{rounds}.sqlite3"
        out = tmp_path / f"round-{rounds}.out"
        with out.open("wb") as stdout:
            process = subprocess.Popen(
                [*feedsvc_command(), "ingest", str(drop)],
                env=environment(db, feeds, PYTHONUNBUFFERED="1"),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            request.addfinalizer(lambda process=process: stop_group(process, grace=1))
            time.sleep(rng.uniform(0.3, 1.0) * duration)  # most of the run: writing
            if process.poll() is not None:
                continue
            kill(process)
        kills += 1
        reported = {
            Path(line.split(": ")[0]).name
            for line in out.read_text().splitlines()
            if line.startswith(str(drop))
        }
        have = stored_ids(db)
        stored = [name for name in names if ids[name] <= have]
        assert all(ids[name].isdisjoint(have) for name in names if name not in stored), (
            f"kill {kills}: a document is in the store in part"
        )
        assert stored == names[: len(stored)], f"kill {kills}: stored out of order: {stored}"
        assert reported <= set(stored), (
            f"kill {kills}: reported but not stored: {reported - set(stored)}"
        )
        reported_total += len(reported)
        partial_runs += 0 < len(stored) < len(names)
    print(
        f"run of {DOCUMENTS} documents ({duration:.2f}s whole): {kills} kills in {rounds} runs, "
        f"{partial_runs} left part of the run, {reported_total} documents reported in all"
    )
    assert kills >= MIN_KILLS
    assert os.environ.get("FEEDSVC_CI") is None or partial_runs > 0
