"""The `feedsvc` command. User errors (`FeedsvcError`) become one line on stderr and exit
status 1 in one place, `FeedsvcGroup.invoke`; commands just raise them."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import click

# Each command imports the modules only it needs (the site, templates and feedgen, boto3,
# the watcher) when it runs: `feedsvc ingest` from cron or a drop folder starts in a third of
# the time. Type names alone come from TYPE_CHECKING.
from .catalog import Catalog, load_catalog
from .classifier import LEARNED, write_atomically
from .classifier import learn as learn_model
from .config import Settings
from .errors import FeedsvcError, StoreError
from .filing import Explanation
from .ingest import changed_topics, filed_items, open_filed_store, prepare_all, read_all, store_all
from .model import NO_BASE_URL, Item
from .query import parse_feed_parameters
from .sources import DOCUMENT_PATTERNS, STDIN
from .store import Counts, Store
from .store import open_store as open_engine
from .store.location import Location, location_of, parse_location

if TYPE_CHECKING:
    from .watch import Options

RECHECK_MS = 5  # a change shows in every worker within this (plus a render)
BACKPRESSURE = 64  # requests a granian worker takes at once; the rest queue in the server


class UserError(click.ClickException):
    """A `FeedsvcError` as the CLI shows it: `feedsvc: error: FILE:LINE: what is wrong`."""

    def show(self, file=None) -> None:  # type: ignore[override]
        click.echo(f"feedsvc: error: {self.message}", err=True)


class Session:
    """What one `feedsvc` invocation works on: its settings, and the catalogue and the stores,
    each opened once when a command first needs it and closed when the command ends."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._catalog: Catalog | None = None
        self._store: Store | None = None
        self._opened: list[Store] = []

    def set_base_url(self, base_url: str) -> None:
        """`build --base-url`: before the catalogue is read, which takes it."""
        assert self._catalog is None
        self.settings = self.settings.with_options(base_url=base_url)

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = load_catalog(self.settings.feeds_dir, self.settings.base_url)
        return self._catalog

    def store(self, create: bool = False) -> Store:
        """The store the settings name, re-filed if the topic rules changed; only `create`
        (init, ingest) makes a new one."""
        if self._store is None:
            location = store_location(self.settings)
            self._store = self._keep(open_filed_store(location, self.catalog, create=create))
        return self._store

    def engine(self, location: Location | None = None, create: bool = False) -> Store:
        """A store as it is (not re-filed): the settings' one, or the one at `location`."""
        return self._keep(open_engine(location or store_location(self.settings), create=create))

    def _keep(self, store: Store) -> Store:
        self._opened.append(store)
        return store

    def close(self) -> None:
        while self._opened:
            self._opened.pop().close()
        self._store = None


def store_location(settings: Settings) -> Location:
    """Where the settings' store is: `--db`, else the default one in the instance folder."""
    if settings.db:
        return parse_location(settings.db)
    from flask import Flask  # deferred: only the default store needs Flask's instance folder

    return location_of(None, Path(Flask("feedsvc").instance_path))


class FeedsvcGroup(click.Group):
    """The one place a `FeedsvcError` becomes `feedsvc: error: ...` and exit status 1, whatever
    command (or the group's own options) raised it; the session is closed either way."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            try:
                return super().invoke(ctx)
            finally:
                if isinstance(ctx.obj, Session):
                    ctx.obj.close()
        except FeedsvcError as error:
            raise UserError(str(error)) from None


def show_error(error: FeedsvcError) -> None:
    """A rejected document's line, for commands that go on with the next one."""
    UserError(str(error)).show()


pass_session = click.make_pass_decorator(Session)


@click.group(cls=FeedsvcGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    context.obj = Session(Settings.from_env().with_options(db=db, feeds_dir=feeds_dir))


def documents(paths: tuple[str, ...], stdin_kind: str):
    """Each document named on the command line, or the error that stopped it being read."""
    stdin = sys.stdin.buffer.read() if STDIN in paths else None
    return read_all(paths, stdin, stdin_kind, on_empty=_say_empty)


def _say_empty(path: str) -> None:  # an empty drop folder: said, not an error
    click.echo(f"{path}: no documents ({DOCUMENT_PATTERNS})", err=True)


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
@click.option(
    "--explain", is_flag=True, help="Show each topic's score and the rules found, per item."
)
@STDIN_FORMAT
@pass_session
def parse(
    session: Session, files: tuple[str, ...], as_json: bool, explain: bool, stdin_format: str
) -> None:
    """Print the items of FILES (wire, *.jsonl, NewsML-G2, NITF, ninjs; a dir; '-' for stdin).

    Items come in document order with the topics the catalogue files them under (the built-in
    'all' topic, which holds every item, is not listed). Nothing is stored. With --explain,
    each item is followed by the topics whose rules it matched: the score, and each rule found
    ('+' counted, '-' did not, and why), so an editor can see why and fix a rule; with --json
    the same is in an 'explain' field.
    """
    catalog = session.catalog
    failures = 0
    for document in documents(files, stdin_format):
        filed = filed_items(document, catalog, explain)
        if isinstance(filed, FeedsvcError):
            failures += 1
            show_error(filed)
            continue
        form, items = filed
        for item, explanation in items:
            if as_json:
                fields = {**item.as_dict(), "format": form, **item.newsroom_dict()}
                if explanation:
                    fields["explain"] = explanation.as_dict()
                click.echo(json.dumps(fields, ensure_ascii=False))
            else:
                click.echo(_row(item))
                if explanation:
                    click.echo(_explained(explanation))
    if failures:
        sys.exit(1)


@main.command()
@pass_session
def init(session: Session) -> None:
    """Create an empty store (where --db / FEEDSVC_DB says); an existing store is kept as is."""
    store = session.store(create=True)
    items = store.counts()["all"]
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
@pass_session
def ingest(session: Session, files: tuple[str, ...], stdin_format: str, jobs: int | None) -> None:
    """Store the items of FILES (wire, *.jsonl, NewsML-G2, NITF, ninjs; a dir; '-' for stdin).

    Each document is stored whole or not at all; storing the same document again changes
    nothing. Exits 1 if any document was rejected (the others are still stored).
    """
    catalog = session.catalog
    store = session.store(create=True)
    total, failures = Counts(), 0
    jobs = jobs or os.cpu_count() or 1
    before = store.generation()
    prepared = prepare_all(documents(files, stdin_format), catalog, jobs)
    for outcome, counts in store_all(store, prepared):
        if isinstance(counts, FeedsvcError):
            failures += 1
            show_error(counts)
            continue
        assert not isinstance(outcome, FeedsvcError)
        total += counts
        click.echo(f"{outcome.name}: {_counts(counts)}")
    click.echo(f"total: {_counts(total)}" + (f"; {failures} rejected" if failures else ""))
    if (
        total.new or total.updated or total.canceled
    ) and catalog.site.hubs:  # else no need to read them back
        _announce(catalog, changed_topics(store, before))
    if failures:
        sys.exit(1)


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--settle",
    type=click.FloatRange(0, 3600),
    default=1.0,
    show_default=True,
    metavar="SECONDS",
    help="Take a file once its size and time have not changed for this long (0: at once, "
    "when uploaders write elsewhere and rename into DIR).",
)
@click.option(
    "--poll",
    type=click.FloatRange(0.05, 3600),
    default=None,
    metavar="SECONDS",
    help="Look at DIR every SECONDS instead of being told of changes (inotify): for a "
    "folder on NFS or SMB, where changes made by other hosts are not reported.",
)
@click.option(
    "--retry",
    type=click.FloatRange(0.1, 3600),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="When the store refuses a write (locked, unreachable), try again after this long.",
)
@click.option("--once", is_flag=True, help="Store what is complete in DIR now, then exit.")
@pass_session
def watch(
    session: Session,
    directory: Path,
    settle: float,
    poll: float | None,
    retry: float,
    once: bool,
) -> None:
    """Store every document that appears in DIR (a drop folder), until stopped (Ctrl-C,
    SIGTERM).

    Each file is read as `feedsvc ingest FILE` reads it, then moved to DIR/done/, or to
    DIR/failed/ with its one-line reason in NAME.error beside it; a name already taken gets a
    number (NAME.1.txt). Dot-files and partial uploads (*.part, *.tmp...) are left alone.
    A store that refuses a write is not the document's fault: it stays in DIR and is tried
    again. Creates the store if there is none, as ingest does. With --once, exits 1 if a
    document was rejected or left waiting.
    """
    from .watch import Options, watch_folder

    catalog = session.catalog
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):  # finish the batch, move it, then exit 0
        signal.signal(signum, lambda *_: stop.set())
    options = Options(settle, poll, retry, once)
    summary = watch_folder(
        directory,
        lambda: session.store(create=True),
        catalog,
        options,
        _WatchReport(options),
        stop,
    )
    if once and (summary.rejected or summary.waiting):
        sys.exit(1)


class _WatchReport:
    """`feedsvc watch`'s lines: as `feedsvc ingest` prints them, one per document."""

    def __init__(self, options: Options) -> None:
        self.options = options

    def watching(self, directory: str) -> None:
        options = self.options
        how = "once" if options.once else f"every {options.poll:g} s" if options.poll else "inotify"
        click.echo(f"feedsvc: watching {directory} ({how}, settle {options.settle:g} s)", err=True)

    def stored(self, name: str, counts: Counts) -> None:
        click.echo(f"{name}: {_counts(counts)}")

    def rejected(self, error: FeedsvcError) -> None:
        UserError(str(error)).show()

    def waiting(self, name: str, error: FeedsvcError, seconds: float) -> None:
        click.echo(
            f"feedsvc: error: {error} (not the document's fault: {name} stays, "
            f"tried again in {seconds:g} s)",
            err=True,
        )

    def vanished(self, name: str) -> None:
        click.echo(f"feedsvc: {name}: gone before it was read", err=True)


def _counts(counts: Counts) -> str:
    return str(counts)


def _announce(catalog: Catalog, slugs: Iterable[str]) -> None:
    """WebSub: tell the site's hubs which feeds changed (a hub that fails costs a line on
    stderr, never the command's success)."""
    site = catalog.site
    if not site.hubs or not site.base_url:
        return
    from .site import SiteMap
    from .websub import Pinger

    pinger = Pinger(site.hubs, report=lambda line: click.echo(f"feedsvc: {line}", err=True))
    pinger.ping(SiteMap(catalog).feed_urls(slugs))


@main.command()
@click.argument("outdir", metavar="OUTDIR|s3://BUCKET/PREFIX")
@click.option(
    "--base-url",
    help="The site's public address, which every link in the feeds starts with "
    "[env FEEDSVC_BASE_URL; default: base_url in site.toml].",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace files of others that stand where the site's files go (e.g. an index.html).",
)
@pass_session
def build(session: Session, outdir: str, base_url: str | None, overwrite: bool) -> None:
    """Write the static site to OUTDIR: feeds, pages, OPML, and a .gz beside each file; or
    to an S3 bucket (s3://BUCKET/PREFIX, with boto3: see README), objects without .gz.

    Files are replaced atomically and only when their bytes change. OUTDIR/.feedsvc-build.json
    lists every file a build wrote: only those are ever removed (when the site no longer has
    them); any other file is left alone, and one where the site needs to write is an error
    unless --overwrite. Serve OUTDIR with any web server (see README for nginx).
    """
    from .bucket import Bucket, is_bucket_url
    from .site import SiteMap
    from .static import build_site, count_files

    if base_url:
        session.set_base_url(base_url)
    catalog = session.catalog
    store = session.store()
    if catalog.site.base_url is None:
        raise FeedsvcError(NO_BASE_URL, str(session.settings.feeds_dir / "site.toml"))
    with click.progressbar(
        length=count_files(store, catalog),
        label="building",
        hidden=not sys.stderr.isatty(),
        file=sys.stderr,
    ) as bar:
        target = (
            Bucket(outdir, catalog.site.max_age, SiteMap(catalog).is_feed, overwrite)
            if is_bucket_url(outdir)
            else Path(outdir)
        )
        report = build_site(store, catalog, target, bar.update, overwrite)
    click.echo(
        f"{outdir}: {report.written} written, {report.unchanged} unchanged, "
        f"{report.removed} removed"
    )
    if report.archives_rewritten:
        click.echo(
            f"{report.archives_rewritten} full archive pages rewritten (an item withdrawn or "
            "re-filed): caches holding them keep the old copy until they expire"
        )
    if report.next_lift:
        click.echo(f"next embargo lifts at {report.next_lift.isoformat()}: build again then")
    feeds = {
        p.split("/")[1].split(".")[0]
        for p in report.paths
        if p.count("/") == 1 and p.startswith("feeds/")
    }
    if feeds:
        _announce(catalog, feeds)


@main.command()
@pass_session
def topics(session: Session) -> None:
    """List each topic with its item count and its feed URLs.

    Items under embargo are counted apart, as held; the next lift time follows the list.
    """
    from .render import FORMATS, feed_path

    catalog = session.catalog
    store = session.store()
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
@pass_session
def search(session: Session, query: str, topic: str, as_json: bool, limit: str | None) -> None:
    """Print the newest items matching QUERY, newest first: the entries of the live feed
    /feeds/TOPIC.atom?q=QUERY.

    QUERY is web search's language: words (all must be there), "a phrase", -word to leave
    items out, a OR b; case and accents do not matter.
    """
    from .render import load_feed

    catalog = session.catalog
    store = session.store()
    chosen = catalog.topic(topic)
    if chosen is None:
        slugs = ", ".join(t.slug for t in catalog.feeds)
        raise FeedsvcError(f"no topic {topic!r} (topics: {slugs})")
    pairs = [("q", query)] + ([("limit", limit)] if limit is not None else [])
    parameters = parse_feed_parameters(pairs, catalog.site.entries_per_feed)
    with store.snapshot():
        items = load_feed(store, catalog, chosen, parameters=parameters).items
    for item in items:
        if as_json:
            click.echo(json.dumps(item.as_dict(), ensure_ascii=False))
        else:
            click.echo(_row(item, f"{item.published:%Y-%m-%d %H:%M}  "))


ITEM_IDS = click.argument("ids", nargs=-1, required=True, metavar="ID...")


@main.command()
@ITEM_IDS
@click.option("--reason", default=None, help="Why (kept in the log and in Atom tombstones).")
@pass_session
def kill(session: Session, ids: tuple[str, ...], reason: str | None) -> None:
    """Withdraw items: gone from every feed, page and search at once (static: at the next
    build); their pages answer 410 Gone. Re-ingesting them does not bring them back."""
    store = session.store()
    topics = _topics_of(store, ids)
    done = store.kill(list(dict.fromkeys(ids)), reason, "cli")
    if done:
        _announce(session.catalog, topics)
    for item_id in ids:
        click.echo(f"{item_id}: {'killed' if item_id in done else 'already killed'}")


@main.command()
@ITEM_IDS
@pass_session
def unkill(session: Session, ids: tuple[str, ...]) -> None:
    """Publish withdrawn items again."""
    store = session.store()
    store.unkill(list(dict.fromkeys(ids)), "cli")
    _announce(session.catalog, _topics_of(store, ids))
    for item_id in ids:
        click.echo(f"{item_id}: restored")


def _topics_of(store: Store, ids: Iterable[str]) -> set[str]:
    """The topics the live ones of these items are filed under (one read an item)."""
    items = (store.item(item_id) for item_id in ids)
    return {slug for item in items if item is not None for slug in item.topics}


@main.command()
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@pass_session
def log(session: Session, limit: int) -> None:
    """The store's operations, newest first: when, who (cli, api, server, build), what."""
    for when, who, what, detail in session.store().log(limit):
        click.echo(f"{when.isoformat(timespec='seconds')}  {who:<6}  {what:<7} {detail}")


@main.command("file")
@click.argument("item_id", metavar="ID")
@click.option(
    "--topics", required=True, help="Comma-separated topic slugs ('other': the item has none)."
)
@pass_session
def file_item(session: Session, item_id: str, topics: str) -> None:
    """Pin a stored item's topics (an editor's correction): it stays under them whatever the
    rules and the model say, and `feedsvc learn` learns from it."""
    catalog = session.catalog
    slugs = catalog.check_topics(topics.split(","))
    old = session.store().pin(item_id, slugs, "cli")
    _announce(catalog, {*old, *slugs})
    click.echo(f"{item_id}: {','.join(slugs)} (was {','.join(old) or '-'})")


@main.command()
@pass_session
def learn(session: Session) -> None:
    """Train the topic model again: the labelled items shipped with feedsvc plus the stored
    items whose topics an editor or their source pinned. It is written to the catalogue
    (topics_model.json, beside site.toml); `feedsvc refile` then files stored items with it
    (other commands do so by themselves). Delete that file to go back to the shipped model."""
    catalog = session.catalog
    pinned = [(item.topics, item.title, item.body_text()) for item in session.engine().pinned()]
    model = learn_model([topic.slug for topic in catalog.topics], pinned)
    target = session.settings.feeds_dir / LEARNED
    write_atomically(target, model.to_json())
    click.echo(f"learned from the shipped examples and {len(pinned)} pinned items: {target}")
    if catalog.model is None:
        click.echo("note: site.toml says model = false, so the rules alone file items")


@main.command()
@pass_session
def refile(session: Session) -> None:
    """File every stored item again under the topics' current rules.

    Other commands do this by themselves when feeds/topics/*.toml changed.
    """
    catalog = session.catalog
    store = session.engine()
    if store.read_only:
        raise FeedsvcError("the store is read-only: cannot re-file", store.location)
    moved = store.sync_catalog(catalog.digest, catalog.topics_for)
    click.echo(f"{moved} items re-filed")


@main.command()
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@pass_session
def backup(session: Session, target: Path) -> None:
    """Copy the store to TARGET safely, even while the server and ingests run."""
    store = session.engine()
    if not store.features.backup:
        advice = store.features.backup_advice.format(location=store.location, target=target)
        raise StoreError(advice, store.location)
    click.echo(store.backup(target))


@main.command()
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
@pass_session
def copy(session: Session, source: str, destination: str) -> None:
    """Copy the store SRC into DST, an empty store (made if missing), between engines.

    SRC and DST are paths or URLs (sqlite:///PATH, postgresql://USER@HOST:PORT/DB). Everything
    is kept: ids, order, dates, digests, pinned and filed topics, archive places, the
    generation, items held until their embargo, withdrawn (killed) items, and the log; DST is
    written in one transaction, from one consistent state of SRC (which may be in use).
    """
    origin = session.engine(parse_location(source))
    with origin.snapshot():
        export = origin.export()  # before DST is made: an unreadable SRC leaves no empty copy
        target = session.engine(parse_location(destination), create=True)
        copied = target.import_store(export)
    click.echo(
        f"copied {copied.items} items, {copied.held} held, {copied.withdrawn} withdrawn and "
        f"{copied.log} log entries from {origin.location} to {target.location}"
    )


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
@pass_session
def serve(
    session: Session,
    host: str,
    port: int,
    workers: int | None,
    server: str,
    threads: int,
    access_log: bool,
) -> None:
    """Serve the feeds live under a production WSGI server (granian by default).

    Links in feeds and pages start with base_url (FEEDSVC_BASE_URL, site.toml), or without one
    with the address served. The app is plain WSGI (feedsvc.web:serving_app()); the access log
    goes to stdout.
    """
    settings, catalog = session.settings, session.catalog
    session.store()  # fail here, in one line, not in every worker
    session.close()  # the workers open their own
    check_address(host, port)
    workers = workers or os.cpu_count() or 1
    env = dict(
        os.environ,
        FEEDSVC_DB=_absolute(store_location(settings)),
        FEEDSVC_FEEDS=str(settings.feeds_dir.resolve()),
        FEEDSVC_ACCESS_LOG="1" if access_log else "0",  # feedsvc's own log: the servers' cost more
        FEEDSVC_RECHECK_MS=os.environ.get("FEEDSVC_RECHECK_MS", str(RECHECK_MS)),
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
        command = granian_command(host, port, workers, threads, "feedsvc.web:serving_app")
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
            "feedsvc.web:serving_app()",
        ]
    # exec: the server takes this process's PID, so a supervisor (or a test) stops it by PID.
    os.execve(sys.executable, [sys.executable, *command], env)


def granian_command(host: str, port: int, workers: int, threads: int, factory: str) -> list[str]:
    """granian's arguments for `feedsvc serve` (bench.serve runs its bare app the same way)."""
    return [
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
        factory,
    ]


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


def check_address(host: str, port: int) -> None:
    """Fail in one line, before the server starts, if it could not listen on host:port.

    The probe binds with SO_REUSEADDR (a restart over connections in TIME_WAIT is fine) and
    without SO_REUSEPORT, so the kernel refuses any address a socket already listens on, even
    one that granian bound with SO_REUSEPORT: a second `feedsvc serve` on the port would
    otherwise start quietly and take half of the connections."""
    shown = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except socket.gaierror as error:
        raise FeedsvcError(error.strerror.lower(), shown) from None
    except OSError as error:  # in use; not an address of this host; a port below 1024...
        raise FeedsvcError((error.strerror or str(error)).lower(), shown) from None


def _explained(explanation: Explanation) -> str:
    lines = []
    if explanation.pinned:
        lines.append(
            f"    topics pinned (by the source or an editor): {', '.join(explanation.topics)}"
        )
    elif explanation.subjects:
        codes = ", ".join(explanation.subjects)
        lines.append(f"    filed by subject codes: {', '.join(explanation.topics)} ({codes})")
    for name in explanation.credits:
        lines.append(f"    credit  {name}  (a source credit: counts for no topic)")
    for topic in explanation.scores:
        filed = "  filed" if topic.filed else ""
        lines.append(f"    {topic.slug:<10} score {topic.score}{filed}")
        for hit in topic.hits:
            note = f"  {hit.note}" if hit.note else ""
            mark = "+" if hit.counts else "-"
            line = f"      {mark} {hit.rule:<24} {hit.where:<5}  {hit.kind:<8}{note}"
            lines.append(line.rstrip())
    if not explanation.scores:
        lines.append("    no rule found")
    if explanation.model:
        likely = "  ".join(f"{vote.slug} {vote.probability:.2f}" for vote in explanation.model)
        lines.append(f"    model      {likely}")
        for vote in explanation.model:
            if vote.note:
                mark = "+" if vote.filed else "-"
                lines.append(f"      {mark} {vote.slug:<24} {vote.note}")
    return "\n".join(lines)


def _row(item: Item, prefix: str = "") -> str:
    width = shutil.get_terminal_size((100, 20)).columns
    kind = "article " if item.content else "headline"
    topics = ",".join(item.topics) or "-"
    row = f"{prefix}{item.id}  {kind}  {topics:<18}  {item.title}"
    return row if len(row) <= width else row[: width - 1] + "…"
