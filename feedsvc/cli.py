"""The `feedsvc` command: turns user errors into one line on stderr and exit code 1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import click

from .bucket import Bucket, is_bucket_url
from .catalog import Catalog, load_catalog
from .config import Location, Settings, parse_location
from .errors import FeedsvcError, StoreError
from .filing import Explanation
from .ingest import changed_topics, open_store, prepare_all, store_all
from .model import NO_BASE_URL, Item
from .query import parse_feed_parameters
from .render import FORMATS, feed_path, load_feed
from .site import SiteMap
from .sources import DOCUMENT_PATTERNS, Document, parse_document, read_documents
from .static import build_site, count_files
from .store import Counts, Store
from .store import open_store as open_engine
from .websub import Pinger

RECHECK_MS = 5  # a change shows in every worker within this (plus a render)
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
    try:
        settings = Settings.from_env()
    except FeedsvcError as error:
        raise fail(error) from None
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
        found = 0
        try:
            for document in read_documents([path], stdin):
                found += 1
                yield replace(document, kind=stdin_kind) if path == "-" else document
        except FeedsvcError as error:
            yield error
            continue
        if not found and path != "-":  # a directory with none: an empty drop folder, not an error
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
@pass_settings
def parse(
    settings: Settings, files: tuple[str, ...], as_json: bool, explain: bool, stdin_format: str
) -> None:
    """Print the items of FILES (wire text, *.jsonl; a directory; '-' for stdin).

    Items come in document order with the topics the catalogue files them under (the built-in
    'all' topic, which holds every item, is not listed). Nothing is stored. With --explain,
    each item is followed by the topics whose rules it matched: the score, and each rule found
    ('+' counted, '-' did not, and why), so an editor can see why and fix a rule; with --json
    the same is in an 'explain' field.
    """
    catalog = catalog_of(settings)
    failures = 0
    for document in documents(files, stdin_format):
        try:
            items = _filed(catalog, document, explain)
        except FeedsvcError as error:
            failures += 1
            UserError(str(error)).show()
            continue
        for item, explanation in items:
            if as_json:
                fields = item.as_dict()
                if explanation:
                    fields["explain"] = explanation.as_dict()
                click.echo(json.dumps(fields, ensure_ascii=False))
            else:
                click.echo(_row(item))
                if explanation:
                    click.echo(_explained(explanation))
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
    before = store.generation()
    prepared = prepare_all(documents(files, stdin_format), catalog, jobs)
    for outcome, counts in store_all(store, prepared):
        if isinstance(counts, FeedsvcError):
            failures += 1
            UserError(str(counts)).show()
            continue
        assert not isinstance(outcome, FeedsvcError)
        total += counts
        click.echo(f"{outcome.name}: {_counts(counts)}")
    click.echo(f"total: {_counts(total)}" + (f"; {failures} rejected" if failures else ""))
    if (total.new or total.updated) and catalog.site.hubs:  # else no need to read them back
        _announce(catalog, changed_topics(store, before))
    if failures:
        sys.exit(1)


def _counts(counts: Counts) -> str:
    return str(counts)


def _announce(catalog: Catalog, slugs: Iterable[str]) -> None:
    """WebSub: tell the site's hubs which feeds changed (a hub that fails costs a line on
    stderr, never the command's success)."""
    site = catalog.site
    if not site.hubs or not site.base_url:
        return
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
@pass_settings
def build(settings: Settings, outdir: str, base_url: str | None, overwrite: bool) -> None:
    """Write the static site to OUTDIR: feeds, pages, OPML, and a .gz beside each file; or
    to an S3 bucket (s3://BUCKET/PREFIX, with boto3: see README), objects without .gz.

    Files are replaced atomically and only when their bytes change. OUTDIR/.feedsvc-build.json
    lists every file a build wrote: only those are ever removed (when the site no longer has
    them); any other file is left alone, and one where the site needs to write is an error
    unless --overwrite. Serve OUTDIR with any web server (see README for nginx).
    """
    if base_url:
        settings = replace(settings, base_url=base_url)
    catalog = catalog_of(settings)
    store = store_of(settings, catalog)
    if catalog.site.base_url is None:
        raise UserError(f"{settings.feeds_dir / 'site.toml'}: {NO_BASE_URL}")
    try:
        with click.progressbar(
            length=count_files(store, catalog),
            label="building",
            hidden=not sys.stderr.isatty(),
            file=sys.stderr,
        ) as bar:
            target = (
                Bucket(outdir, catalog.site.max_age, SiteMap(catalog).is_feed)
                if is_bucket_url(outdir)
                else Path(outdir)
            )
            report = build_site(store, catalog, target, bar.update, overwrite)
    except FeedsvcError as error:
        raise fail(error) from None
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
        topics = _topics_of(store, ids)
        done = store.kill(list(dict.fromkeys(ids)), reason, "cli")
    except FeedsvcError as error:
        raise fail(error) from None
    if done:
        _announce(catalog, topics)
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
    _announce(catalog, _topics_of(store, ids))
    for item_id in ids:
        click.echo(f"{item_id}: restored")


def _topics_of(store: Store, ids: Iterable[str]) -> set[str]:
    """The topics the live ones of these items are filed under (one read an item)."""
    items = (store.item(item_id) for item_id in ids)
    return {slug for item in items if item is not None for slug in item.topics}


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
        if not store.features.backup:
            advice = store.features.backup_advice.format(location=store.location, target=target)
            raise StoreError(advice, store.location)
        click.echo(store.backup(target))
    except FeedsvcError as error:
        raise fail(error) from None


@main.command()
@click.argument("source", metavar="SRC")
@click.argument("destination", metavar="DST")
def copy(source: str, destination: str) -> None:
    """Copy the store SRC into DST, an empty store (made if missing), between engines.

    SRC and DST are paths or URLs (sqlite:///PATH, postgresql://USER@HOST:PORT/DB). Everything
    is kept: ids, order, dates, digests, pinned and filed topics, archive places, the
    generation, items held until their embargo, withdrawn (killed) items, and the log; DST is
    written in one transaction, from one consistent state of SRC (which may be in use).
    """
    try:
        origin = open_engine(parse_location(source))
        target = open_engine(parse_location(destination), create=True)
        with origin.snapshot():
            copied = target.import_store(origin.export())
    except FeedsvcError as error:
        raise fail(error) from None
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
    with the address served. The app is plain WSGI (feedsvc.web:serving_app()); the access log
    goes to stdout.
    """
    catalog = catalog_of(settings)
    store_of(settings, catalog).close()  # fail here, in one line, not in every worker
    check_address(host, port)
    workers = workers or os.cpu_count() or 1
    env = dict(
        os.environ,
        FEEDSVC_DB=_absolute(settings.store_location()),
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
        raise UserError(f"{shown}: {error.strerror.lower()}") from None
    except OSError as error:  # in use; not an address of this host; a port below 1024...
        raise UserError(f"{shown}: {(error.strerror or str(error)).lower()}") from None


def _filed(
    catalog: Catalog, document: Document | FeedsvcError, explain: bool = False
) -> list[tuple[Item, Explanation | None]]:
    """The document's items with their topics, and why they got them when asked."""
    if isinstance(document, FeedsvcError):
        raise document
    items = parse_document(document)
    try:
        return [
            (
                replace(item, topics=catalog.topics_for(item)),
                catalog.explain(item) if explain else None,
            )
            for item in items
        ]
    except FeedsvcError as error:
        raise FeedsvcError(error.message, document.name) from None


def _explained(explanation: Explanation) -> str:
    lines = []
    if explanation.pinned:
        lines.append(f"    topics pinned by the source: {', '.join(explanation.topics)}")
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
    return "\n".join(lines)


def _row(item: Item, prefix: str = "") -> str:
    width = shutil.get_terminal_size((100, 20)).columns
    kind = "article " if item.content else "headline"
    topics = ",".join(item.topics) or "-"
    row = f"{prefix}{item.id}  {kind}  {topics:<18}  {item.title}"
    return row if len(row) <= width else row[: width - 1] + "…"
