"""The `feedsvc` command: turns user errors into one line on stderr and exit code 1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from dataclasses import replace
from pathlib import Path

import click

from .catalog import Catalog, load_catalog
from .config import Location, Settings
from .errors import FeedsvcError
from .ingest import open_store, prepare_all, store_prepared
from .model import NO_BASE_URL, Item
from .query import parse_feed_parameters
from .render import FORMATS, feed_path, load_feed
from .sources import Document, parse_document, read_documents
from .static import build_site, count_files
from .store import Counts, Store
from .store import open_store as open_engine

BACKPRESSURE = 64  # requests a granian worker takes at once; the rest queue in the server


class UserError(click.ClickException):
    """A `FeedsvcError` as the CLI shows it: `feedsvc: error: FILE:LINE: what is wrong`."""

    def show(self, file=None) -> None:  # type: ignore[override]
        click.echo(f"feedsvc: error: {self.message}", err=True)


def fail(error: FeedsvcError) -> UserError:
    return UserError(str(error))


pass_settings = click.make_pass_decorator(Settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--db",
    envvar="FEEDSVC_DB",
    metavar="PATH|URL",
    help="The store: an SQLite file path, sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
    "[env FEEDSVC_DB; default: feedsvc.sqlite3 in the instance folder]",
)
@click.option(
    "--feeds",
    "feeds_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FEEDSVC_FEEDS",
    help="Topic catalogue directory [env FEEDSVC_FEEDS; default: ./feeds]",
)
@click.version_option(package_name="feedsvc")
@click.pass_context
def main(context: click.Context, db: str | None, feeds_dir: Path | None) -> None:
    """Publish news documents as per-topic RSS 2.0, Atom 1.0 and JSON Feed 1.1 feeds."""
    settings = Settings.from_env()
    if db is not None:
        settings = replace(settings, db=db)
    if feeds_dir is not None:
        settings = replace(settings, feeds_dir=feeds_dir)
    context.obj = settings


def catalog_of(settings: Settings) -> Catalog:
    try:
        return load_catalog(settings.feeds_dir, settings.base_url)
    except FeedsvcError as error:
        raise fail(error) from None


def documents(paths: tuple[str, ...], stdin_kind: str):
    """Each document named on the command line, or the error that stopped it being read."""
    stdin = sys.stdin.buffer.read() if "-" in paths else None
    for path in paths:
        try:
            for document in read_documents([path], stdin):
                yield replace(document, kind=stdin_kind) if path == "-" else document
        except FeedsvcError as error:
            yield error


FILES = click.argument("files", nargs=-1, required=True, type=str)
STDIN_FORMAT = click.option(
    "--stdin-format",
    type=click.Choice(["wire", "jsonl"]),
    default="wire",
    show_default=True,
    help="Format of standard input ('-').",
)


@main.command()
@FILES
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item and line.")
@STDIN_FORMAT
@pass_settings
def parse(settings: Settings, files: tuple[str, ...], as_json: bool, stdin_format: str) -> None:
    """Print the items of FILES (wire text, *.jsonl; a directory; '-' for stdin).

    Items come in document order with the topics the catalogue files them under (the built-in
    'all' topic, which holds every item, is not listed). Nothing is stored.
    """
    catalog = catalog_of(settings)
    failures = 0
    for document in documents(files, stdin_format):
        try:
            items = _filed(catalog, document)
        except FeedsvcError as error:
            failures += 1
            UserError(str(error)).show()
            continue
        for item in items:
            click.echo(json.dumps(item.as_dict(), ensure_ascii=False) if as_json else _row(item))
    if failures:
        sys.exit(1)


def store_of(settings: Settings, catalog: Catalog, create: bool = False) -> Store:
    """The store the settings name; only `create` (init, ingest) makes a new one."""
    try:
        return open_store(settings.store_location(), catalog, create=create)
    except FeedsvcError as error:
        raise fail(error) from None


@main.command()
@pass_settings
def init(settings: Settings) -> None:
    """Create an empty store (where --db / FEEDSVC_DB says); an existing store is kept as is."""
    catalog = catalog_of(settings)
    store = store_of(settings, catalog, create=True)
    items = store.counts()["all"]
    store.close()
    click.echo(f"{store.location}: a feedsvc store ({items} items)")


@main.command()
@FILES
@STDIN_FORMAT
@click.option(
    "--jobs",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes that parse and file documents while one writes [default: the CPUs].",
)
@pass_settings
def ingest(settings: Settings, files: tuple[str, ...], stdin_format: str, jobs: int | None) -> None:
    """Parse FILES and store their items (wire text, *.jsonl; a directory; '-' for stdin).

    Each document is stored whole or not at all; storing the same document again changes
    nothing. Exits 1 if any document was rejected (the others are still stored).
    """
    catalog = catalog_of(settings)
    store = store_of(settings, catalog, create=True)
    total, failures = Counts(), 0
    jobs = jobs or os.cpu_count() or 1
    for prepared in prepare_all(documents(files, stdin_format), catalog, jobs):
        try:
            if isinstance(prepared, FeedsvcError):
                raise prepared
            counts = store_prepared(store, prepared)
        except FeedsvcError as error:
            failures += 1
            UserError(str(error)).show()
            continue
        total += counts
        click.echo(f"{prepared.name}: {_counts(counts)}")
    click.echo(f"total: {_counts(total)}" + (f"; {failures} rejected" if failures else ""))
    if failures:
        sys.exit(1)


def _counts(counts: Counts) -> str:
    return f"{counts.new} new, {counts.updated} updated, {counts.unchanged} unchanged"


@main.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option(
    "--base-url",
    help="The site's public address, which every link in the feeds starts with "
    "[env FEEDSVC_BASE_URL; default: base_url in site.toml].",
)
@pass_settings
def build(settings: Settings, outdir: Path, base_url: str | None) -> None:
    """Write the static site to OUTDIR: feeds, pages, OPML, and a .gz beside each file.

    Files are replaced atomically and only when their bytes change; files the site no longer
    has are removed. Serve OUTDIR with any web server (see README for nginx).
    """
    if base_url:
        settings = replace(settings, base_url=base_url)
    catalog = catalog_of(settings)
    if catalog.site.base_url is None:
        raise UserError(f"{settings.feeds_dir / 'site.toml'}: {NO_BASE_URL}")
    store = store_of(settings, catalog)
    try:
        with click.progressbar(
            length=count_files(store, catalog),
            label="building",
            hidden=not sys.stderr.isatty(),
            file=sys.stderr,
        ) as bar:
            report = build_site(store, catalog, outdir, progress=bar.update)
    except FeedsvcError as error:
        raise fail(error) from None
    click.echo(
        f"{outdir}: {report.written} written, {report.unchanged} unchanged, "
        f"{report.removed} removed"
    )


@main.command()
@pass_settings
def topics(settings: Settings) -> None:
    """List each topic with its item count and its feed URLs.

    Items under embargo are counted apart, as held; the next lift time follows the list.
    """
    catalog = catalog_of(settings)
    store = store_of(settings, catalog)
    counts, held = store.counts(), store.held()
    site = catalog.site
    for topic in catalog.feeds:
        waiting = held.get(topic.slug, 0)
        note = f" (+{waiting} held)" if waiting else ""
        click.echo(f"{topic.slug:<12} {counts.get(topic.slug, 0):>7} items{note}  {topic.title}")
        for extension in FORMATS:
            path = feed_path(topic.slug, extension)
            click.echo(f"    {site.url(path) if site.base_url else '/' + path}")
    lift = store.next_lift()
    if lift is not None:
        click.echo(f"next embargo lifts at {lift.isoformat()}")


@main.command()
@click.argument("query")
@click.option("--topic", default="all", show_default=True, help="Search this topic's items only.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per item and line.")
@click.option("--limit", default=None, help="At most this many items [default: entries_per_feed].")
@pass_settings
def search(settings: Settings, query: str, topic: str, as_json: bool, limit: str | None) -> None:
    """Print the newest items matching QUERY, newest first: the entries of the live feed
    /feeds/TOPIC.atom?q=QUERY.

    QUERY is web search's language: words (all must be there), "a phrase", -word to leave
    items out, a OR b; case and accents do not matter.
    """
    catalog = catalog_of(settings)
    store = store_of(settings, catalog)
    chosen = catalog.topic(topic)
    if chosen is None:
        slugs = ", ".join(t.slug for t in catalog.feeds)
        raise UserError(f"no topic {topic!r} (topics: {slugs})")
    pairs = [("q", query)] + ([("limit", limit)] if limit is not None else [])
    try:
        parameters = parse_feed_parameters(pairs, catalog.site.entries_per_feed)
        with store.snapshot():
            items = load_feed(store, catalog, chosen, parameters=parameters).items
    except FeedsvcError as error:
        raise fail(error) from None
    for item in items:
        if as_json:
            click.echo(json.dumps(item.as_dict(), ensure_ascii=False))
        else:
            click.echo(_row(item, f"{item.published:%Y-%m-%d %H:%M}  "))


ITEM_IDS = click.argument("ids", nargs=-1, required=True, metavar="ID...")


@main.command()
@ITEM_IDS
@click.option("--reason", default=None, help="Why (kept in the log and in Atom tombstones).")
@pass_settings
def kill(settings: Settings, ids: tuple[str, ...], reason: str | None) -> None:
    """Withdraw items: gone from every feed, page and search at once (static: at the next
    build); their pages answer 410 Gone. Re-ingesting them does not bring them back."""
    catalog = catalog_of(settings)
    store = store_of(settings, catalog)
    try:
        done = store.kill(list(dict.fromkeys(ids)), reason, "cli")
    except FeedsvcError as error:
        raise fail(error) from None
    for item_id in ids:
        click.echo(f"{item_id}: {'killed' if item_id in done else 'already killed'}")


@main.command()
@ITEM_IDS
@pass_settings
def unkill(settings: Settings, ids: tuple[str, ...]) -> None:
    """Publish withdrawn items again."""
    catalog = catalog_of(settings)
    store = store_of(settings, catalog)
    try:
        store.unkill(list(dict.fromkeys(ids)), "cli")
    except FeedsvcError as error:
        raise fail(error) from None
    for item_id in ids:
        click.echo(f"{item_id}: restored")


@main.command()
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@pass_settings
def log(settings: Settings, limit: int) -> None:
    """The store's operations, newest first: when, who (cli, api, server, build), what."""
    catalog = catalog_of(settings)
    store = store_of(settings, catalog)
    for when, who, what, detail in store.log(limit):
        click.echo(f"{when.isoformat(timespec='seconds')}  {who:<6}  {what:<7} {detail}")


@main.command()
@pass_settings
def refile(settings: Settings) -> None:
    """File every stored item again under the topics' current rules.

    Other commands do this by themselves when feeds/topics/*.toml changed.
    """
    catalog = catalog_of(settings)
    try:
        store = open_engine(settings.store_location())
        if store.read_only:
            raise FeedsvcError("the store is read-only: cannot re-file", store.location)
        moved = store.sync_catalog(catalog.digest, catalog.topics_for)
    except FeedsvcError as error:
        raise fail(error) from None
    click.echo(f"{moved} items re-filed")


@main.command()
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def backup(settings: Settings, target: Path) -> None:
    """Copy the store to TARGET safely, even while the server and ingests run."""
    try:
        store = open_engine(settings.store_location())
        click.echo(store.backup(target))
    except FeedsvcError as error:
        raise fail(error) from None


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=None,
    help="Worker processes [default: the number of CPUs].",
)
@click.option(
    "--server",
    type=click.Choice(["granian", "gunicorn"]),
    default="granian",
    show_default=True,
    help="The production WSGI server to run the app under.",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Python threads per worker (granian). One is fastest: feeds come from memory and "
    "the GIL lets one thread run anyway; more keep a worker answering during long API posts.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="Log one line per request to stdout, in Common Log Format.",
)
@pass_settings
def serve(
    settings: Settings,
    host: str,
    port: int,
    workers: int | None,
    server: str,
    threads: int,
    access_log: bool,
) -> None:
    """Serve the feeds live under a production WSGI server (granian by default).

    Links in feeds and pages start with base_url (FEEDSVC_BASE_URL, site.toml), or without one
    with the address served. The app is plain WSGI (feedsvc.web:create_app()); the access log
    goes to stdout.
    """
    catalog = catalog_of(settings)
    store_of(settings, catalog).close()  # fail here, in one line, not in every worker
    workers = workers or os.cpu_count() or 1
    env = dict(
        os.environ,
        FEEDSVC_DB=_absolute(settings.store_location()),
        FEEDSVC_FEEDS=str(settings.feeds_dir.resolve()),
        FEEDSVC_ACCESS_LOG="1" if access_log else "0",  # feedsvc's own log: the servers' cost more
    )
    base = served_url(host, port)
    links = catalog.site.base_url
    if links is None:  # the app's links go to the address it serves
        links = env["FEEDSVC_BASE_URL"] = served_url(public_host(host), port)
        origin = "no base_url set"
    else:
        origin = "base_url"
    click.echo(
        f"feedsvc: serving on {base} ({server}, {workers} workers); "
        f"links point to {links} ({origin})"
    )
    click.echo(f"  index: {base}")
    click.echo(f"  feed:  {base}feeds/all.atom  (and .rss, .json; per topic: feeds/<topic>.rss)")
    sys.stdout.flush()
    if server == "granian":
        command = [
            "-m",
            "granian",
            "--interface",
            "wsgi",
            "--factory",
            "--host",
            host,
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--no-ws",
            # Feed answers come from memory: one thread per worker keeps the CPU busy (more only
            # add GIL hand-offs), and the backpressure bound queues bursts in the server.
            "--blocking-threads",
            str(threads),
            "--backpressure",
            str(BACKPRESSURE),
            "feedsvc.web:create_app",
        ]
    else:
        command = [
            "-m",
            "gunicorn",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "feedsvc.web:create_app()",
        ]
    # exec: the server takes this process's PID, so a supervisor (or a test) stops it by PID.
    os.execve(sys.executable, [sys.executable, *command], env)


def _absolute(location: Location) -> str:
    """The store's address for the workers, whatever directory they run in."""
    if location.engine == "sqlite":
        return str(Path(location.address).resolve())
    return location.address


def served_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def public_host(host: str) -> str:
    """The name links can use for a listening address: a wildcard address is no place to
    link to, so the machine's name stands for it."""
    return socket.gethostname() if host in ("0.0.0.0", "::", "") else host


def _filed(catalog: Catalog, document: Document | FeedsvcError) -> list[Item]:
    if isinstance(document, FeedsvcError):
        raise document
    items = parse_document(document)
    try:
        return [replace(item, topics=catalog.topics_for(item)) for item in items]
    except FeedsvcError as error:
        raise FeedsvcError(error.message, document.name) from None


def _row(item: Item, prefix: str = "") -> str:
    width = shutil.get_terminal_size((100, 20)).columns
    kind = "article " if item.content else "headline"
    topics = ",".join(item.topics) or "-"
    row = f"{prefix}{item.id}  {kind}  {topics:<18}  {item.title}"
    return row if len(row) <= width else row[: width - 1] + "…"
