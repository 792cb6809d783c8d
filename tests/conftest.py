"""Fixtures: a temp store on the repository's catalogue, an app on it, a client and a CLI runner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from feedsvc.catalog import Catalog, load_catalog
from feedsvc.config import Settings
from feedsvc.ingest import ingest_document, open_store
from feedsvc.sources import Document
from feedsvc.store import Store
from feedsvc.web import create_app

ROOT = Path(__file__).resolve().parent.parent
FEEDS = ROOT / "feeds"
SAMPLES = FEEDS / "samples"
DATA = Path(__file__).resolve().parent / "data"
GOLDEN = Path(__file__).resolve().parent / "golden"
TOKEN = "test-token-5f2c"
BASE_URL = "http://127.0.0.1:8000/"  # feeds/site.toml sets none: tests give one


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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        db=str(tmp_path / "store.sqlite3"), feeds_dir=FEEDS, base_url=BASE_URL, token=TOKEN
    )


@pytest.fixture
def store(settings: Settings, catalog: Catalog, clock: Clock) -> Store:
    store = open_store(settings.store_location(), catalog, clock, create=True)
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
    open_store(settings.store_location(), load_catalog(FEEDS), clock, create=True).close()
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
