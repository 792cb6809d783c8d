"""Fixtures: a temp store on the repository's catalogue, an app on it, a client and a CLI runner."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.catalog import Catalog, load_catalog
from feedsvc.config import Settings
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.sources import Document
from feedsvc.store import Store
from feedsvc.web import create_app

from .pg import PostgresServer, binaries

ROOT = Path(__file__).resolve().parent.parent
FEEDS = ROOT / "feeds"
SAMPLES = FEEDS / "samples"
DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent / "golden"
TOKEN = "test-token-5f2c"
BASE_URL = "http://127.0.0.1:8000/"  # feeds/site.toml sets none: tests give one
ENGINES = ["sqlite", "postgresql"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: SQLite-file specific (WAL, integrity_check, paths, backup)"
    )
    config.addinivalue_line(
        "markers", "system: real processes, signals, kill -9 (leave out with -m 'not system')"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked sqlite_only are not collected on PostgreSQL (rather than skipped)."""
    keep, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_postgres = params.get("engine") == "postgresql"
        (dropped if on_postgres and item.get_closest_marker("sqlite_only") else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


class Clock:
    """A first-seen clock the test moves by hand, so dates in output are fixed."""

    def __init__(self, start: datetime = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def catalog() -> Catalog:
    return load_catalog(FEEDS, BASE_URL)


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session, started the first time a test needs it."""
    bin_dir = binaries()
    if bin_dir is None:
        reason = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("FEEDSVC_CI"):
            pytest.fail(f"{reason}; FEEDSVC_CI is set, so PostgreSQL may not be skipped")
        pytest.skip(reason)
    server = PostgresServer(bin_dir).start()
    yield server
    server.stop()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db(engine: str, tmp_path: Path, request: pytest.FixtureRequest):
    """Where a new, empty store goes: an SQLite file, or a new PostgreSQL database's URL."""
    if engine == "sqlite":
        yield str(tmp_path / "store.sqlite3")
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.database()
    yield url
    server.drop(url)


@pytest.fixture
def settings(db: str) -> Settings:
    return Settings(db=db, feeds_dir=FEEDS, base_url=BASE_URL, token=TOKEN)


@pytest.fixture
def store(settings: Settings, catalog: Catalog, clock: Clock) -> Store:
    store = open_filed_store(settings.db, catalog, clock, create=True)
    yield store
    store.close()


@pytest.fixture
def filled(store: Store, catalog: Catalog, clock: Clock) -> Store:
    """The store with every sample document, an hour apart, oldest first."""
    for path in sorted(SAMPLES.glob("*.txt")):
        ingest_document(store, catalog, Document(path.name, path.read_bytes(), "wire"))
        clock.advance(hours=1)
    return store


@pytest.fixture(params=["fastpath", "flask"])
def app(request: pytest.FixtureRequest, settings: Settings, clock: Clock):
    """The app twice: with the WSGI fast path in front, and Flask alone (on a new empty store)."""
    open_filed_store(settings.db, load_catalog(FEEDS), clock, create=True).close()
    return create_app(
        {
            "SETTINGS": settings,
            "CLOCK": clock,
            "TESTING": True,
            "FASTPATH": request.param == "fastpath",
        }
    )


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(settings: Settings) -> CliRunner:
    return CliRunner(
        env={
            "FEEDSVC_DB": settings.db,
            "FEEDSVC_FEEDS": str(FEEDS),
            "FEEDSVC_TOKEN": "",
            "FEEDSVC_BASE_URL": "",
        }
    )


@pytest.fixture
def spawn(request):
    """Starts `feedsvc ARGS...` in its own process group; any still running at the end of the
    test (a failed one too) is killed by its group."""
    from .server import feedsvc_command, stop_group  # server imports this module

    started: list[subprocess.Popen] = []

    def start(args: list[str], env: dict[str, str]) -> subprocess.Popen:
        process = subprocess.Popen(
            [*feedsvc_command(), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        started.append(process)
        return process

    def stop_all() -> None:
        for process in started:
            stop_group(process, grace=1)
            if process.stderr:
                process.stderr.close()

    request.addfinalizer(stop_all)
    return start
