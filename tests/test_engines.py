"""Both engines: the same input and clock give the same bytes; `feedsvc copy` moves a store
between them losslessly; what PostgreSQL adds (opening rules, one-line connection errors,
concurrent first opens, NOTIFY between hosts, reconnecting)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from feedsvc.catalog import Catalog
from feedsvc.cli import main
from feedsvc.errors import StoreError
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.query import FOLD_VERSION, FeedParameters, parse
from feedsvc.sources import Document
from feedsvc.static import build_site
from feedsvc.store import Store, schema
from feedsvc.store import open_store as open_engine
from feedsvc.store import postgres as backend
from feedsvc.store.location import parse_location

from .conftest import DATA, FEEDS, SAMPLES, Clock
from .pg import PostgresServer, free_port

UPDATE = "Central bank holds rates steady\nThe bank kept its main rate at 4%.\nK.Lund--ECO\n"


def fill(store: Store, catalog: Catalog, clock: Clock) -> None:
    """Wire samples an hour apart, JSON Lines with source dates and pinned topics, a headline
    that later becomes an article."""
    for path in sorted(SAMPLES.glob("*.txt")):
        ingest_document(store, catalog, Document(path.name, path.read_bytes(), "wire"))
        clock.advance(hours=1)
    items = (DATA / "items.jsonl").read_bytes()
    ingest_document(store, catalog, Document("items.jsonl", items, "jsonl"))
    ingest_document(
        store, catalog, Document("h.txt", b"-\nCentral bank holds rates steady\n", "wire")
    )
    clock.advance(minutes=20)
    ingest_document(store, catalog, Document("a.txt", UPDATE.encode(), "wire"))


def site(store: Store, catalog: Catalog, outdir: Path) -> dict[str, bytes]:
    build_site(store, catalog, outdir)
    return {
        path.relative_to(outdir).as_posix(): path.read_bytes()
        for path in sorted(outdir.rglob("*"))
        if path.is_file()
    }


def sqlite_rows(path: Path) -> list:
    with sqlite3.connect(path) as db:
        return [
            db.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("items", "filed", "meta")
        ]


def test_same_input_and_clock_give_byte_identical_sites_on_both_engines(
    postgres: PostgresServer, catalog: Catalog, tmp_path: Path
) -> None:
    sites = {}
    for name, location in (("sqlite", tmp_path / "s.sqlite3"), ("pg", postgres.database())):
        clock = Clock()
        store = open_filed_store(location, catalog, clock, create=True)
        fill(store, catalog, clock)
        sites[name] = site(store, catalog, tmp_path / name)
        store.close()
    assert len(sites["sqlite"]) > 100 and "feeds/all.atom" in sites["sqlite"]
    different = [name for name in sites["sqlite"] if sites["sqlite"][name] != sites["pg"].get(name)]
    assert sorted(sites["sqlite"]) == sorted(sites["pg"])
    assert not different, f"{len(different)} files differ, e.g. {different[:5]}"


def copy(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["copy", *args])
    return result.exit_code, result.stdout, result.stderr


def test_copy_sqlite_to_postgresql_and_back_is_lossless(
    postgres: PostgresServer, catalog: Catalog, tmp_path: Path
) -> None:
    original = tmp_path / "original.sqlite3"
    clock = Clock()
    store = open_filed_store(original, catalog, clock, create=True)
    fill(store, catalog, clock)
    count = store.counts()["all"]
    url = postgres.database()
    code, out, err = copy(str(original), url)
    assert code == 0, err
    logged = len(store.log(100_000))
    assert out == (
        f"copied {count} items, 0 held, 0 withdrawn and {logged} log entries "
        f"from {original} to {parse_location(url)}\n"
    )
    back = tmp_path / "back.sqlite3"
    code, _, err = copy(url, f"sqlite:///{back}")
    assert code == 0, err
    # Every column of every row (seq, dates, digests, pinned, filed topics, per-row
    # generations) and the store's generation and catalogue digest came back unchanged.
    assert sqlite_rows(back) == sqlite_rows(original)

    copied = open_engine(url, clock)
    assert site(copied, catalog, tmp_path / "pg") == site(store, catalog, tmp_path / "sqlite")
    # Both copies are searchable and find what the original finds.
    words = FeedParameters(query=parse("the OR court"))
    found = [i.id for i in store.search("all", words, 50)]
    assert found and [i.id for i in copied.search("all", words, 50)] == found
    assert [i.id for i in open_engine(back).search("all", words, 50)] == found
    # Both go on alike: new items take sequence numbers after the copied ones.
    clock.advance(hours=1)
    later = Document(
        "later.txt", b"-\nFerry service resumes\n-\nPier reopens after repairs\n", "wire"
    )
    assert ingest_document(copied, catalog, later) == ingest_document(store, catalog, later)
    assert site(copied, catalog, tmp_path / "pg2") == site(store, catalog, tmp_path / "sqlite2")


def test_copy_refuses_a_destination_that_holds_items(
    postgres: PostgresServer, catalog: Catalog, tmp_path: Path
) -> None:
    source = tmp_path / "source.sqlite3"
    store = open_filed_store(source, catalog, Clock(), create=True)
    ingest_document(store, catalog, Document("a.txt", b"-\nOne headline\n", "wire"))
    url = postgres.database()
    assert copy(str(source), url)[0] == 0
    code, _, err = copy(str(source), url)
    assert code == 1
    assert err.endswith("already holds items; copy into an empty store\n")
    assert err.count("\n") == 1
    assert open_engine(url).counts()["all"] == 1
    code, _, err = copy(url, str(source))
    assert (code, err.count("\n")) == (1, 1) and "already holds items" in err


# -- PostgreSQL: opening ------------------------------------------------------------------------


def test_a_database_without_the_feedsvc_schema_is_no_store_and_is_left_alone(
    postgres: PostgresServer,
) -> None:
    url = postgres.database()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("CREATE TABLE invoices (n integer)")
        connection.execute("INSERT INTO invoices VALUES (7)")
    with pytest.raises(StoreError, match="no store here"):
        open_engine(url)
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT to_regnamespace('feedsvc')").fetchone()[0] is None
    open_engine(url, create=True).close()  # init: its own schema, beside the other tables
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT n FROM public.invoices").fetchall() == [(7,)]


def test_a_newer_schema_refuses_to_open(postgres: PostgresServer) -> None:
    url = postgres.database()
    open_engine(url, create=True).close()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(
            "UPDATE feedsvc.meta SET value = %s WHERE key = 'schema_version'",
            (str(schema.VERSION + 1),),
        )
    with pytest.raises(StoreError, match="newer than this feedsvc"):
        open_engine(url)


def test_concurrent_first_opens_make_the_schema_once(postgres: PostgresServer) -> None:
    url = postgres.database()
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def first_open() -> None:
        start.wait()
        try:
            open_engine(url, create=True).close()
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=first_open) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT key, value FROM feedsvc.meta ORDER BY key").fetchall()
        assert rows == [
            ("catalog", ""),
            ("fold", str(FOLD_VERSION)),
            ("generation", "0"),
            ("schema_version", str(schema.VERSION)),
        ]


@pytest.mark.parametrize("problem", ["wrong password", "no such database", "nothing listening"])
def test_connection_failures_are_one_line_without_the_password(
    postgres: PostgresServer, problem: str
) -> None:
    url = {
        "wrong password": postgres.url("postgres", password="not-the-password"),
        "no such database": postgres.url("no_such_db"),
        "nothing listening": f"postgresql://feedsvc:pw-xyz@127.0.0.1:{free_port()}/db",
    }[problem]
    expected = {
        "wrong password": 'password authentication failed for user "feedsvc"',
        "no such database": 'database "no_such_db" does not exist',
        "nothing listening": "Connection refused",
    }[problem]
    env = {"FEEDSVC_DB": url, "FEEDSVC_FEEDS": str(FEEDS)}
    for command in (["topics"], ["init"], ["ingest", str(SAMPLES)]):
        result = CliRunner(env=env).invoke(main, command)
        assert result.exit_code == 1, result.output
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("feedsvc: error: postgresql://feedsvc:***@127.0.0.1:")
        assert expected in result.stderr
        assert "not-the-password" not in result.stderr and "pw-xyz" not in result.stderr
        assert postgres.url("x").split(":")[2].split("@")[0] not in result.stderr


def test_backup_of_a_postgresql_store_says_to_use_pg_dump(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    url = postgres.database()
    open_engine(url, create=True).close()
    env = {"FEEDSVC_DB": url, "FEEDSVC_FEEDS": str(FEEDS)}
    result = CliRunner(env=env).invoke(main, ["backup", str(tmp_path / "b.dump")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "pg_dump -Fc" in result.stderr and "***" in result.stderr
    assert not (tmp_path / "b.dump").exists()


# -- PostgreSQL: generations between hosts ------------------------------------------------------


def wait_for(store: Store, generation: int, timeout: float) -> float:
    """Seconds until `store` reports `generation` (polled as requests would, every 1 ms)."""
    started = time.monotonic()
    while store.generation() != generation:
        assert time.monotonic() - started < timeout, f"still {store.generation()}"
        time.sleep(0.001)
    return time.monotonic() - started


def test_another_connection_learns_of_a_commit_by_notify(
    postgres: PostgresServer, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "RECHECK_SECONDS", 3600.0)  # NOTIFY alone
    url = postgres.database()
    writer, reader = open_engine(url, create=True), open_engine(url)
    start = reader.generation()
    delays = []
    for number in range(5):
        ingest_document(
            writer, catalog, Document("n.txt", f"-\nNotice {number}\n".encode(), "wire")
        )
        delays.append(wait_for(reader, start + number + 1, timeout=2.0))
    print(f"\nNOTIFY delays: {', '.join(f'{d * 1000:.1f} ms' for d in delays)}")


def test_a_lost_notification_is_made_up_by_reading_the_counter_again(
    postgres: PostgresServer, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "RECHECK_SECONDS", 0.2)
    url = postgres.database()
    writer, reader = open_engine(url, create=True), open_engine(url)
    start = reader.generation()
    reader.db.execute("UNLISTEN *")  # as if the notification were lost
    ingest_document(writer, catalog, Document("n.txt", b"-\nUnheard notice\n", "wire"))
    assert wait_for(reader, start + 1, timeout=2.0) >= 0.0


def test_a_reader_whose_connection_dropped_reconnects_and_reads_the_counter(
    postgres: PostgresServer, catalog: Catalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backend, "RECHECK_SECONDS", 3600.0)
    url = postgres.database()
    writer, reader = open_engine(url, create=True), open_engine(url)
    start = reader.generation()
    pid = reader.db.info.backend_pid
    with postgres.admin() as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    ingest_document(writer, catalog, Document("n.txt", b"-\nSaid while away\n", "wire"))
    assert reader.generation() == start + 1  # no NOTIFY reached it: it read the counter
    assert reader.db.info.backend_pid != pid
    assert reader.newest("all", 1)[0].title == "Said while away"


def test_a_postgresql_url_without_the_driver_is_one_line(tmp_path, monkeypatch) -> None:
    """`pip install feedsvc` without the postgres extra: a clear error, not an ImportError."""
    import sys

    monkeypatch.setitem(sys.modules, "psycopg", None)  # what a missing package looks like
    monkeypatch.delitem(sys.modules, "feedsvc.store.postgres", raising=False)
    with pytest.raises(StoreError, match=r"pip install 'feedsvc\[postgres\]'"):
        open_engine("postgresql://user@127.0.0.1:1/none")
