"""Fixtures: a temp store on the repository's catalogue, an app on it, a client and a CLI runner."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import hypothesis
import pytest
from click.testing import CliRunner

from feedsvc.catalog import Catalog, load_catalog
from feedsvc.classifier import LEARNED
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

# Hypothesis: the default profile, for CI and the quick loops, runs each property the number of
# examples its test gives (`examples(n)`), with no deadline (a loaded machine is not a failure);
# HYPOTHESIS_PROFILE=thorough runs ten times as many, after a change to a parser or the
# sanitizer.
hypothesis.settings.register_profile("default", deadline=None)
hypothesis.settings.register_profile("thorough", deadline=None)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or "default")
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


def examples(count: int) -> int:
    """A property's example count: `count`, or ten times it under the thorough profile."""
    return count * 10 if THOROUGH else count


# Whole modules of system tests: real processes killed, servers, browsers, readers, mounts.
SYSTEM_MODULES = {
    "test_browser",
    "test_bucket_crash",
    "test_concurrency",
    "test_crash",
    "test_freshness",
    "test_kill_build",
    "test_nginx",
    "test_readers",
    "test_readonly",
    "test_serve",
}


# Modules by how long they take (a minute or more of kills first), for the order of a run.
LONGEST_FIRST = {
    name: rank
    for rank, name in enumerate(
        [
            "test_crash",
            "test_kill_build",
            "test_bucket_crash",
            "test_browser",
            "test_bucket",
            "test_batch",
            "test_authors",
            "test_watch",
            "test_sitemap",
            "test_damaged",
        ]
    )
}


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "sqlite_only: SQLite-file specific (WAL, integrity_check, paths, backup)",
        "system: runs real processes (serve, kill -9, crash, nginx, readers, Chromium, mounts)",
        "browser: runs headless Chromium (also system)",
        "bucket: builds into an S3 API server (moto's, on loopback; also system)",
        "solo: asserts a latency, or waits for a moment seconds ahead: CI runs these after the "
        "rest, one at a time, with the machine to themselves (-m solo)",
        "postgres: runs on the session's PostgreSQL server (given to every [postgresql] test)",
        "both_paths: runs the web app twice, with the fast path and through Flask alone, where "
        "the two answer differently (HTTP semantics, errors); elsewhere once, as served",
    ):
        config.addinivalue_line("markers", line)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "app" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_paths"):
        metafunc.parametrize("app", ["fastpath", "flask"], indirect=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked sqlite_only are not collected on PostgreSQL (rather than skipped); the
    markers `postgres`, `system` and `browser` are given where they follow from the test."""
    keep, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_postgres = params.get("engine") == "postgresql"
        (dropped if on_postgres and item.get_closest_marker("sqlite_only") else keep).append(item)
        if on_postgres or "postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module is not None else ""
        if module == "test_browser":
            item.add_marker(pytest.mark.browser)
        if module in SYSTEM_MODULES:
            item.add_marker(pytest.mark.system)
        if "endpoint" in getattr(item, "fixturenames", ()):  # the S3 server of test_bucket
            item.add_marker(pytest.mark.bucket)
        if any(item.get_closest_marker(name) for name in ("browser", "bucket")) or "spawn" in (
            getattr(item, "fixturenames", ())
        ):
            item.add_marker(pytest.mark.system)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
    # The longest modules first (module by module, each in its order): under xdist a worker
    # that draws a minute-long kill suite at the end keeps the run waiting with a core idle.
    items.sort(key=lambda item: LONGEST_FIRST.get(item.module.__name__.rsplit(".", 1)[-1], 99))


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


@pytest.fixture(scope="session")
def repo_catalog() -> Catalog:
    """The repository's catalogue, read once: a `Catalog` is frozen, and tests that edit topic
    files edit a copy of feeds/ and load that copy themselves."""
    return load_catalog(FEEDS, BASE_URL)


@pytest.fixture
def catalog(repo_catalog: Catalog) -> Catalog:
    return repo_catalog


def _catalog_files(feeds_dir: Path) -> tuple[tuple[str, bytes], ...]:
    """The bytes `load_catalog` reads: site.toml, topics/*.toml, sources.toml, and the topic
    model `feedsvc learn` writes (an absent file counts as absent: it is left out)."""
    paths = [feeds_dir / "site.toml", *sorted((feeds_dir / "topics").glob("*.toml"))]
    paths += [feeds_dir / "sources.toml", feeds_dir / LEARNED]
    return tuple((str(path), path.read_bytes()) for path in paths if path.is_file())


@pytest.fixture(scope="session", autouse=True)
def cli_catalog_by_content():
    """The CLI in this process (CliRunner) and an app made without a catalogue load the
    catalogue each time (some 85 ms, most of a CLI test's time); here they get the `Catalog`
    (frozen) an earlier call made from the same directory and the same bytes of its files, the
    one the same files would give again. A test that edits a topic file gets a new one; an
    error is raised again each time (never kept). Processes the tests start load their own."""
    import feedsvc.cli
    import feedsvc.web

    made: dict[tuple, Catalog] = {}

    def load(feeds_dir: Path, base_url: str | None = None) -> Catalog:
        try:
            key = (str(Path(feeds_dir).resolve()), base_url, _catalog_files(Path(feeds_dir)))
        except OSError:  # unreadable: let load_catalog say so
            return load_catalog(feeds_dir, base_url)
        if key not in made:
            if len(made) >= 64:
                made.clear()
            made[key] = load_catalog(feeds_dir, base_url)
        return made[key]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(feedsvc.cli, "load_catalog", load)
        patch.setattr(feedsvc.web, "load_catalog", load)
        yield


def app_config(settings: Settings, catalog: Catalog, **config: object) -> dict[str, object]:
    """`create_app`'s test config: the session's catalogue where the settings name feeds/."""
    given: dict[str, object] = {"SETTINGS": settings, **config}
    if settings.feeds_dir == FEEDS and settings.base_url == catalog.site.base_url:
        given["CATALOG"] = catalog
    return given


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session, started the first time a test needs it."""
    bin_dir = binaries()
    if bin_dir is None:
        reason = "PostgreSQL server binaries not found (apt-get install postgresql)"
        if os.environ.get("FEEDSVC_CI"):
            pytest.fail(f"{reason}; FEEDSVC_CI is set, so PostgreSQL may not be skipped")
        pytest.skip(reason)
    # Under xdist each worker starts its own server; a free port found by one may be taken by
    # another before its server binds it: then try another port.
    for attempt in range(3):
        server = PostgresServer(bin_dir)
        try:
            server.start()
            break
        except RuntimeError:
            server.stop()
            if attempt == 2:
                raise
    yield server
    server.stop()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def db(engine: str, tmp_path: Path, request: pytest.FixtureRequest):
    """Where a new, empty store goes: an SQLite file, or an empty PostgreSQL database's URL
    (the session's one, emptied for each test; `postgres.database()` makes a new one)."""
    if engine == "sqlite":
        return str(tmp_path / "store.sqlite3")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.scratch()


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


@pytest.fixture
def app(request: pytest.FixtureRequest, settings: Settings, catalog: Catalog, clock: Clock):
    """The app as served, the WSGI fast path in front of Flask (on a new empty store); under
    `both_paths`, twice: that and Flask alone. test_paths.py checks that the two give the same
    bytes and headers for every resource, so other tests need not run on both."""
    open_filed_store(settings.db, catalog, clock, create=True).close()
    path = getattr(request, "param", "fastpath")
    return create_app(
        app_config(settings, catalog, CLOCK=clock, TESTING=True, FASTPATH=path == "fastpath")
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
