"""The store's schema and its failures, on both engines: the live tables, columns and indexes
are those of `store/schema.py` (for a new store and for one migrated from an old version),
and a damaged store (a table gone, a truncated file, the server gone, a connection cut in the
middle of a write) answers reads and writes with a one-line `StoreError`, writing nothing."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from feedsvc.errors import StoreError
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.query import FeedParameters, parse
from feedsvc.sources import Document
from feedsvc.store import open_store as open_engine
from feedsvc.store.schema import TABLES, TEXT, VERSION

from .pg import PostgresServer, binaries

SEARCH = ("items_search", "search")  # each engine's own index, outside the description


def expected() -> dict[str, tuple]:
    """What `schema.TABLES` says: per table its columns (name, text or int, nullable), its
    key, its named indexes and its unique columns."""
    return {
        t.name: (
            [(c.name, "text" if c.kind == TEXT else "int", c.null) for c in t.columns],
            t.key,
            {i.name: i.columns for i in t.indexes},
            {c.name for c in t.columns if c.unique},
        )
        for t in TABLES
    }


def live_sqlite(path: str) -> dict[str, tuple]:
    with sqlite3.connect(path) as db:
        found = {}
        tables = db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE 'items_search%'"
        ).fetchall()
        for (table,) in tables:
            info = db.execute(f"PRAGMA table_info({table})").fetchall()
            columns = [
                (n, "int" if t == "INTEGER" else t.lower(), not (nn or pk))
                for _, n, t, nn, _, pk in info
            ]
            key = tuple(n for *_, n in sorted((pk, n) for _, n, _, _, _, pk in info if pk))
            indexes, unique = {}, set()
            for _, name, _, origin, _ in db.execute(f"PRAGMA index_list({table})"):
                names = tuple(r[2] for r in db.execute(f"PRAGMA index_info({name})"))
                if origin == "c":
                    indexes[name] = names
                elif origin == "u":
                    unique.update(names)
            found[table] = (columns, key, indexes, unique)
        return found


def live_postgres(url: str) -> dict[str, tuple]:
    with psycopg.connect(url) as db:
        found = {}
        rows = db.execute(
            "SELECT table_name, column_name, data_type, is_nullable "
            "FROM information_schema.columns WHERE table_schema = 'feedsvc' "
            "ORDER BY table_name, ordinal_position"
        ).fetchall()
        for table, name, kind, nullable in rows:
            if name in SEARCH:
                continue
            column = (name, "int" if kind == "bigint" else kind, nullable == "YES")
            found.setdefault(table, ([], (), {}, set()))[0].append(column)
        constraints = db.execute(
            "SELECT c.table_name, c.constraint_type, k.column_name FROM "
            "information_schema.table_constraints c JOIN information_schema.key_column_usage k "
            "USING (constraint_schema, constraint_name) WHERE c.table_schema = 'feedsvc' "
            "ORDER BY k.ordinal_position"
        ).fetchall()
        for table, kind, column in constraints:
            columns, key, indexes, unique = found[table]
            if kind == "PRIMARY KEY":
                found[table] = (columns, (*key, column), indexes, unique)
            elif kind == "UNIQUE":
                unique.add(column)
        for table, name, definition in db.execute(
            "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'feedsvc' "
            "AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'"
        ):
            if name not in SEARCH:
                columns = definition.rsplit("(", 1)[1].rstrip(")").split(", ")
                found[table][2][name] = tuple(columns)
        return found


def live(db: str) -> dict[str, tuple]:
    return live_postgres(db) if db.startswith("postgresql://") else live_sqlite(db)


def columns_after(version: int) -> list[str]:
    """Statements that drop the columns later versions added to older tables (the first
    steps of making a store as an old feedsvc left it)."""
    return [
        f"ALTER TABLE {t.name} DROP COLUMN {c.name}"
        for t in TABLES
        for c in t.columns
        if c.since > max(version, t.since, 3)  # 3's ordinals: the tests drop them themselves
    ]


def run_sql(db: str, script: list[str]) -> None:
    """Statements on the store's tables from outside feedsvc (as another program would)."""
    if db.startswith("postgresql://"):
        with psycopg.connect(db, autocommit=True) as connection:
            connection.execute("SET search_path TO feedsvc")
            for statement in script:
                connection.execute(statement)
        return
    with sqlite3.connect(db, isolation_level=None) as connection:
        for statement in script:
            connection.execute(statement)


def row_counts(db: str) -> list[int]:
    """Items, filed rows, log entries and the generation, read from outside feedsvc."""
    queries = [
        "SELECT count(*) FROM items",
        "SELECT count(*) FROM filed",
        "SELECT count(*) FROM log",
        "SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'",
    ]
    if db.startswith("postgresql://"):
        with psycopg.connect(db) as connection:
            return [
                connection.execute(q.replace(" FROM ", " FROM feedsvc.")).fetchone()[0]
                for q in queries
            ]
    with sqlite3.connect(db) as connection:
        return [connection.execute(q).fetchone()[0] for q in queries]


def wire(text: str) -> Document:
    return Document("doc.txt", text.encode(), "wire")


def test_a_new_store_has_the_described_schema(settings, store) -> None:
    assert live(settings.db) == expected()


def test_a_version_1_store_is_migrated_to_the_described_schema(settings, store, catalog, clock):
    """The oldest schema (items and filing only), as both engines made it, comes forward:
    its items keep their places and are found by search."""
    for n in range(3):
        ingest_document(store, catalog, wire(f"-\nHarbour crane {n} repaired\n"))
        clock.advance(minutes=1)
    store.close()
    on_pg = settings.db.startswith("postgresql://")
    run_sql(
        settings.db,
        [
            *columns_after(1),
            *(f"DROP TABLE {t}" for t in ("held", "killed", "log", "ordinals")),
            "DROP INDEX items_ordinal",
            "DROP INDEX filed_ordinal",
            "ALTER TABLE items DROP COLUMN ordinal",
            "ALTER TABLE filed DROP COLUMN ordinal",
            "DELETE FROM meta WHERE key = 'fold'",
            "ALTER TABLE items DROP COLUMN search" if on_pg else "DROP TABLE items_search",
            "UPDATE meta SET value = '1' WHERE key = 'schema_version'"
            if on_pg
            else "PRAGMA user_version = 1",
        ],
    )
    reopened = open_filed_store(settings.db, catalog, clock)
    assert live(settings.db) == expected()
    assert reopened.archive_pages("all", 1) == 3
    assert [i.title for i in reopened.archive_page("all", 0, 1)] == ["Harbour crane 0 repaired"]
    found = reopened.search("all", FeedParameters(query=parse("crane")), 10)
    assert [i.title for i in found] == [f"Harbour crane {n} repaired" for n in (2, 1, 0)]
    reopened.kill([found[0].id], None, "cli")  # the editorial tables are there too
    assert reopened.log(1)[0][2] == "kill"


def fetch(db: str, sql: str) -> list[tuple]:
    """Rows read from outside feedsvc."""
    if db.startswith("postgresql://"):
        with psycopg.connect(db) as connection:
            connection.execute("SET search_path TO feedsvc")
            return connection.execute(sql).fetchall()
    with sqlite3.connect(db) as connection:
        return connection.execute(sql).fetchall()


def test_a_version_4_store_with_held_and_withdrawn_items_comes_forward(
    settings, store, catalog, clock
) -> None:
    """Schema 4 kept held and withdrawn items as JSON rows of 12 fields: they read as rows
    with no newsroom fields, lift, unkill; the items gain the columns (NULL)."""
    ingest_document(store, catalog, wire("-\nHarbour crane repaired\nDockers back at work.\n"))
    due = clock.now + timedelta(hours=1)
    line = json.dumps({"id": "emb-1", "title": "Regatta results", "published": due.isoformat()})
    ingest_document(store, catalog, Document("d.jsonl", line.encode(), "jsonl"))
    (crane,) = store.newest("all", 1)
    store.kill([crane.id], "wrong quay", "cli")
    store.close()
    old_rows = []
    for table in ("held", "killed"):
        for item_id, text in fetch(settings.db, f"SELECT id, row FROM {table}"):
            old = json.dumps(json.loads(text)[:12]).replace("'", "''")
            old_rows.append(f"UPDATE {table} SET row = '{old}' WHERE id = '{item_id}'")
    on_pg = settings.db.startswith("postgresql://")
    run_sql(
        settings.db,
        [
            *columns_after(4),
            *old_rows,
            "UPDATE meta SET value = '4' WHERE key = 'schema_version'"
            if on_pg
            else "PRAGMA user_version = 4",
        ],
    )
    assert "guid" not in [column[0] for column in live(settings.db)["items"][0]]
    reopened = open_filed_store(settings.db, catalog, clock)
    try:
        assert live(settings.db) == expected()
        assert reopened.held()["all"] == 1 and reopened.killed()[0][2] == "wrong quay"
        reopened.unkill([crane.id], "cli")
        back = reopened.item(crane.id)
        assert back is not None and back.title == crane.title and back.guid is None
        assert back.status == "usable" and back.images == () and back.subjects == ()
        clock.advance(hours=2)
        assert reopened.lift_due() == 1
        assert reopened.item("emb-1").title == "Regatta results"
    finally:
        reopened.close()


def test_a_postgresql_store_of_the_old_numbering_opens_as_the_one_version(postgres) -> None:
    """PostgreSQL once said 3 where SQLite said 4 (the same tables): such a store opens with
    nothing to do; one that said 2 gets its search index."""
    url = postgres.database()
    open_engine(url, create=True).close()
    run_sql(url, [*columns_after(4), "UPDATE meta SET value = '3' WHERE key = 'schema_version'"])
    open_engine(url).close()
    run_sql(
        url,
        [
            *columns_after(4),
            "ALTER TABLE items DROP COLUMN search",
            "DELETE FROM meta WHERE key = 'fold'",
            "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
        ],
    )
    open_engine(url).close()
    assert live(url) == expected()
    with psycopg.connect(url) as db:
        version = db.execute("SELECT value FROM feedsvc.meta WHERE key = 'schema_version'")
        assert version.fetchone()[0] == str(VERSION)


# -- a damaged store ----------------------------------------------------------------------------


def one_line(call) -> str:
    with pytest.raises(StoreError) as raised:
        call()
    message = str(raised.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_a_dropped_table_makes_reads_and_writes_store_errors_and_writes_nothing(
    settings, filled, catalog
) -> None:
    item = filled.newest("world", 1)[0]
    run_sql(settings.db, ["DROP TABLE filed"])
    before = row_counts_without_filed(settings.db)
    for call in (
        lambda: filled.newest("world", 5),
        lambda: filled.counts(),
        lambda: filled.archive_page("world", 0, 10),
        lambda: ingest_document(filled, catalog, wire("-\nLighthouse keeper retires\n")),
        lambda: filled.kill([item.id], "wrong", "cli"),
    ):
        assert "filed" in one_line(call)
    assert row_counts_without_filed(settings.db) == before
    assert filled.item(item.id) == item  # what is left still reads


def row_counts_without_filed(db: str) -> list[int]:
    queries = ["items", "log", "killed"]
    if db.startswith("postgresql://"):
        with psycopg.connect(db) as connection:
            return [
                connection.execute(f"SELECT count(*) FROM feedsvc.{t}").fetchone()[0]
                for t in queries
            ]
    with sqlite3.connect(db) as connection:
        return [connection.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in queries]


@pytest.mark.sqlite_only
def test_a_truncated_store_file_is_a_store_error(settings, filled, catalog, clock) -> None:
    filled.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    filled.close()
    path = Path(settings.db)
    os.truncate(path, path.stat().st_size // 3)
    try:
        store = open_filed_store(settings.db, catalog, clock)
    except StoreError as error:  # found at once: fine too
        assert "\n" not in str(error)
        return
    one_line(lambda: [store.newest(topic, 50) for topic in ("all", "world", "sport")])
    one_line(lambda: ingest_document(store, catalog, wire("-\nFerry timetable changes\n")))


def test_a_connection_cut_in_the_middle_of_a_write_writes_nothing(postgres, catalog, clock):
    """The server ends the writer's session while it inserts the filing rows: one line, the
    transaction is gone whole, and the next call works on a new connection."""
    url = postgres.database()
    store = open_filed_store(url, catalog, clock, create=True)
    ingest_document(store, catalog, wire("-\nCanal lock reopens\n"))
    before = row_counts(url)
    run_sql(
        url,
        [
            "CREATE FUNCTION cut() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); RETURN NEW; END $$",
            "CREATE TRIGGER cut BEFORE INSERT ON filed FOR EACH ROW EXECUTE FUNCTION cut()",
        ],
    )
    assert "cannot be reached" in one_line(
        lambda: ingest_document(store, catalog, wire("-\nTram line extended\n"))
    )
    assert row_counts(url) == before
    run_sql(url, ["DROP TRIGGER cut ON filed"])
    assert [i.title for i in store.newest("all", 5)] == ["Canal lock reopens"]
    assert ingest_document(store, catalog, wire("-\nTram line extended\n")).new == 1


def test_a_postgresql_server_stopped_mid_run_is_a_store_error(catalog, clock) -> None:
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found")
    server = PostgresServer(bin_dir).start()
    try:
        store = open_filed_store(server.database(), catalog, clock, create=True)
        ingest_document(store, catalog, wire("-\nBridge survey done\n"))
    finally:
        server.stop()
    for call in (
        lambda: store.generation(),
        lambda: store.newest("all", 5),
        lambda: store.counts(),
        lambda: list(store.changed_since(0)),
        lambda: ingest_document(store, catalog, wire("-\nQuay works begin\n")),
        lambda: store.kill(["x"], None, "cli"),
    ):
        one_line(call)
