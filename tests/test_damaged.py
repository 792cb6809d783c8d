"""A damaged store (a table dropped, an SQLite file truncated or overwritten, a PostgreSQL server
stopped mid-run) through every command and every live route: one line on stderr and exit 1, or
a plain 503; never a traceback, and nothing written (the store, a build directory)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from feedsvc.catalog import load_catalog
from feedsvc.cli import main
from feedsvc.config import Settings
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.sources import Document
from feedsvc.web import create_app

from .conftest import BASE_URL, FEEDS, SAMPLES, TOKEN
from .pg import PostgresServer, binaries

NEW_DOCUMENT = "-\nA headline that must not be stored in a damaged store\n"


def fill(db: str, clock) -> str:
    """Every sample document stored at `db`; the id of one stored item."""
    catalog = load_catalog(FEEDS, BASE_URL)
    store = open_filed_store(db, catalog, clock, create=True)
    try:
        for path in sorted(SAMPLES.glob("*.txt")):
            ingest_document(store, catalog, Document(path.name, path.read_bytes(), "wire"))
            clock.advance(hours=1)
        return store.newest("all", 1)[0].id
    finally:
        store.close()


def drop_table(db: str) -> None:
    if db.startswith("postgresql://"):
        with psycopg.connect(db, autocommit=True) as connection:
            connection.execute("DROP TABLE feedsvc.items CASCADE")
        return
    with sqlite3.connect(db) as connection:
        connection.execute("DROP TABLE items")
    connection.close()


def truncate(db: str) -> None:
    path = Path(db)
    checkpoint(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def overwrite(db: str) -> None:
    path = Path(db)
    checkpoint(path)
    path.write_bytes(b"these bytes are not a database at all " * 300)


def checkpoint(path: Path) -> None:
    """Everything into the main file, no WAL left beside it (the damage is to the file)."""
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("PRAGMA journal_mode=DELETE")
    connection.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


SQLITE_DAMAGE: dict[str, Callable[[str], None]] = {
    "dropped-table": drop_table,
    "truncated-file": truncate,
    "garbage-file": overwrite,
}


def state(db: str) -> object:
    """What the store holds, to see that a failed command wrote nothing."""
    if db.startswith("postgresql://"):
        try:
            with psycopg.connect(db) as connection:
                return connection.execute("SELECT * FROM feedsvc.meta ORDER BY 1").fetchall()
        except psycopg.OperationalError:
            return "server down"
    return {
        suffix: hashlib.sha256(Path(f"{db}{suffix}").read_bytes()).hexdigest()
        for suffix in ("", "-wal")
        if Path(f"{db}{suffix}").exists() and Path(f"{db}{suffix}").stat().st_size
    }


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def commands(tmp_path: Path, item_id: str) -> dict[str, list[str]]:
    document = tmp_path / "new.txt"
    document.write_text(NEW_DOCUMENT)
    return {
        "init": ["init"],
        "ingest": ["ingest", str(document)],
        "build": ["build", str(tmp_path / "site")],
        "topics": ["topics"],
        "refile": ["refile"],
        "search": ["search", "court"],
        "backup": ["backup", str(tmp_path / "backup.sqlite3")],
        "copy": ["copy", "DB", str(tmp_path / "copy.sqlite3")],
        "kill": ["kill", item_id],
        "unkill": ["unkill", item_id],
        "log": ["log"],
    }


# Commands that never read the dropped table may still work (a backup of a damaged store is
# worth having); the others must fail. None may leave a traceback or write.
MAY_WORK = {"log", "refile", "backup"}


def one_line_problem(name: str, result: Result) -> str | None:
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        kind = type(result.exception).__name__
        return f"{name}: raised {kind}: {result.exception}"
    if result.exit_code == 0 and name in MAY_WORK and not result.stderr:
        return None
    if result.exit_code != 1:
        return f"{name}: exit {result.exit_code}: {result.output!r}"
    if not result.stderr.startswith("feedsvc: error: ") or result.stderr.count("\n") != 1:
        return f"{name}: not one line: {result.stderr!r}"
    return None


def run_every_command(db: str, tmp_path: Path, item_id: str) -> list[str]:
    """Each command on the damaged store `db`: the problems seen (none is the contract)."""
    runner = CliRunner(
        env={"FEEDSVC_DB": db, "FEEDSVC_FEEDS": str(FEEDS), "FEEDSVC_BASE_URL": BASE_URL}
    )
    site = tmp_path / "site"
    built = tree(site)
    problems = []
    parsed = runner.invoke(main, ["parse", str(sorted(SAMPLES.glob("*.txt"))[0])])
    if parsed.exit_code != 0:  # parse needs no store
        problems.append(f"parse: exit {parsed.exit_code}: {parsed.output!r}")
    for name, args in commands(tmp_path, item_id).items():
        before = state(db)
        result = runner.invoke(main, [db if arg == "DB" else arg for arg in args])
        problem = one_line_problem(name, result)
        if problem:
            problems.append(problem)
        if state(db) != before:
            problems.append(f"{name}: the store changed")
    if tree(site) != built:
        problems.append("build: the build directory changed")
    if (tmp_path / "copy.sqlite3").exists():
        problems.append("copy: DST was made from a store that cannot be read")
    return problems


def build_before(db: str, tmp_path: Path) -> None:
    """A site built while the store was whole: a failed build must leave it as it is."""
    runner = CliRunner(env={"FEEDSVC_DB": db, "FEEDSVC_FEEDS": str(FEEDS)})
    result = runner.invoke(main, ["build", str(tmp_path / "site"), "--base-url", BASE_URL])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("damage", SQLITE_DAMAGE)
def test_every_command_on_a_damaged_sqlite_store_is_one_line(damage, tmp_path, clock) -> None:
    db = str(tmp_path / "store.sqlite3")
    item_id = fill(db, clock)
    build_before(db, tmp_path)
    SQLITE_DAMAGE[damage](db)
    problems = run_every_command(db, tmp_path, item_id)
    assert not problems, "\n".join(problems)


def test_every_command_on_a_postgresql_store_without_its_table_is_one_line(
    postgres, tmp_path, clock
) -> None:
    db = postgres.database()
    try:
        item_id = fill(db, clock)
        build_before(db, tmp_path)
        drop_table(db)
        problems = run_every_command(db, tmp_path, item_id)
    finally:
        postgres.drop(db)
    assert not problems, "\n".join(problems)


@pytest.fixture
def own_postgres():
    """A PostgreSQL server of the test's own, which it may stop."""
    bin_dir = binaries()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found (apt-get install postgresql)")
    server = PostgresServer(bin_dir).start()
    yield server
    server.stop()


def stop_server(server: PostgresServer) -> None:
    server._run(["pg_ctl", "-D", str(server.data), "-m", "immediate", "-w", "stop"])


def test_every_command_on_a_stopped_postgresql_server_is_one_line(
    own_postgres, tmp_path, clock
) -> None:
    db = own_postgres.database()
    item_id = fill(db, clock)
    build_before(db, tmp_path)
    stop_server(own_postgres)
    problems = run_every_command(db, tmp_path, item_id)
    assert not problems, "\n".join(problems)


# Every live route: feeds, a feed with a search, pages, the OPML list, the search page.
ROUTES = [
    "/",
    "/feeds/all.rss",
    "/feeds/world.atom",
    "/feeds/all.json?q=court",
    "/topics/world.html",
    "/feeds.opml",
    "/search?q=court",
    "/feeds/all/archive/0.atom",
]


def production_app(db: str, clock, fastpath: bool):
    """Not TESTING: the app answers errors as it does under a real server."""
    settings = Settings(db=db, feeds_dir=FEEDS, base_url=BASE_URL, token=TOKEN)
    return create_app({"SETTINGS": settings, "CLOCK": clock, "FASTPATH": fastpath})


def route_problems(app, item_id: str) -> list[str]:
    """Each route of the app, whose store was damaged after it started: the problems seen."""
    client = app.test_client()
    problems = []
    answers = set()
    for method in ("GET", "HEAD"):
        for path in [*ROUTES, f"/items/{item_id}.html"]:
            try:
                response = client.open(path, method=method)
            except Exception as error:  # a traceback under a real server
                problems.append(f"{method} {path}: raised {type(error).__name__}: {error}")
                continue
            if response.status_code != 503 or response.mimetype != "text/plain":
                problems.append(f"{method} {path}: {response.status_code} {response.mimetype}")
                continue
            headers = tuple(sorted((k, v) for k, v in response.headers.items()))
            answers.add((method, response.data, headers))
    if len(answers) > 2:  # one answer for GET, one for HEAD, whatever route or layer
        problems.append(f"different 503 answers: {sorted(answers)}")
    health = client.get("/healthz")
    if health.status_code != 503 or health.json["status"] != "unavailable":
        problems.append(f"/healthz: {health.status_code} {health.data[:200]!r}")
    posted = client.post(
        "/api/items",
        data=NEW_DOCUMENT.encode(),
        content_type="text/plain",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    if posted.status_code != 503 or posted.data != b"503 Service Unavailable\n":
        problems.append(f"POST /api/items: {posted.status_code} {posted.data[:200]!r}")
    return problems


@pytest.mark.parametrize("fastpath", [True, False], ids=["fastpath", "flask"])
@pytest.mark.parametrize("damage", ["dropped-table", "truncated-file"])
def test_every_route_on_a_damaged_sqlite_store_is_a_plain_503(
    damage, fastpath, tmp_path, clock
) -> None:
    db = str(tmp_path / "store.sqlite3")
    item_id = fill(db, clock)
    app = production_app(db, clock, fastpath)
    SQLITE_DAMAGE[damage](db)
    before = state(db)
    problems = route_problems(app, item_id)
    assert not problems, "\n".join(problems)
    assert state(db) == before


@pytest.mark.parametrize("fastpath", [True, False], ids=["fastpath", "flask"])
def test_every_route_on_a_postgresql_store_without_its_table_is_a_plain_503(
    fastpath, postgres, clock
) -> None:
    db = postgres.database()
    try:
        item_id = fill(db, clock)
        app = production_app(db, clock, fastpath)
        drop_table(db)
        before = state(db)
        problems = route_problems(app, item_id)
        assert state(db) == before
    finally:
        postgres.drop(db)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("fastpath", [True, False], ids=["fastpath", "flask"])
def test_every_route_when_the_postgresql_server_stops_is_a_plain_503(
    fastpath, own_postgres, clock
) -> None:
    db = own_postgres.database()
    item_id = fill(db, clock)
    app = production_app(db, clock, fastpath)
    assert app.test_client().get("/healthz").status_code == 200  # connected, then:
    stop_server(own_postgres)
    problems = route_problems(app, item_id)
    assert not problems, "\n".join(problems)
