"""The `feedsvc` command: turns user errors into one line on stderr and exit code 1."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import click

from .catalog import Catalog, load_catalog
from .config import Settings
from .errors import FeedsvcError
from .filing import Explanation
from .ingest import ingest_document, open_store
from .model import Item
from .render import FORMATS, feed_path
from .sources import Document, parse_document, read_documents
from .static import build_site, count_files
from .store import Counts, Store

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
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FEEDSVC_DB",
    help="SQLite store [env FEEDSVC_DB; default: feedsvc.sqlite3 in the instance folder]",
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
def main(context: click.Context, db: Path | None, feeds_dir: Path | None) -> None:
    """Publish news documents as per-topic RSS 2.0, Atom 1.0 and JSON Feed 1.1 feeds."""
    settings = Settings.from_env()
    if db is not None:
        settings = replace(settings, db_path=db)
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


def store_of(settings: Settings, catalog: Catalog) -> Store:
    try:
        return open_store(settings.store_path(), catalog)
    except FeedsvcError as error:
        raise fail(error) from None


@main.command()
@FILES
@STDIN_FORMAT
@pass_settings
def ingest(settings: Settings, files: tuple[str, ...], stdin_format: str) -> None:
    """Parse FILES and store their items (wire text, *.jsonl; a directory; '-' for stdin).

    Each document is stored whole or not at all; storing the same document again changes
    nothing. Exits 1 if any document was rejected (the others are still stored).
    """
    catalog = catalog_of(settings)
    store = store_of(settings, catalog)
    total, failures = Counts(), 0
    for document in documents(files, stdin_format):
        try:
            if isinstance(document, FeedsvcError):
                raise document
            counts = ingest_document(store, catalog, document)
        except FeedsvcError as error:
            failures += 1
            UserError(str(error)).show()
            continue
        total += counts
        click.echo(f"{document.name}: {_counts(counts)}")
    click.echo(f"total: {_counts(total)}" + (f"; {failures} rejected" if failures else ""))
    if failures:
        sys.exit(1)


def _counts(counts: Counts) -> str:
    return f"{counts.new} new, {counts.updated} updated, {counts.unchanged} unchanged"


@main.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@pass_settings
def build(settings: Settings, outdir: Path) -> None:
    """Write the static site to OUTDIR: feeds, pages, OPML, and a .gz beside each file.

    Files are replaced atomically and only when their bytes change; files the site no longer
    has are removed. Serve OUTDIR with any web server (see README for nginx).
    """
    catalog = catalog_of(settings)
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
    """List each topic with its item count and its feed URLs."""
    catalog = catalog_of(settings)
    store = store_of(settings, catalog)
    counts = store.counts()
    for topic in catalog.feeds:
        click.echo(f"{topic.slug:<12} {counts.get(topic.slug, 0):>7} items  {topic.title}")
        for extension in FORMATS:
            click.echo(f"    {catalog.site.url(feed_path(topic.slug, extension))}")


@main.command()
@pass_settings
def refile(settings: Settings) -> None:
    """File every stored item again under the topics' current rules.

    Other commands do this by themselves when feeds/topics/*.toml changed.
    """
    catalog = catalog_of(settings)
    try:
        store = Store.open(settings.store_path())
        moved = store.sync_catalog(catalog)
    except FeedsvcError as error:
        raise fail(error) from None
    click.echo(f"{moved} items re-filed")


@main.command()
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def backup(settings: Settings, target: Path) -> None:
    """Copy the store to TARGET safely, even while the server and ingests run."""
    if target.exists():
        raise UserError(f"{target}: already exists; choose a new file")
    try:
        store = Store.open(settings.store_path())
        store.backup(target)
    except FeedsvcError as error:
        raise fail(error) from None
    except OSError as error:
        raise UserError(f"{target}: {error.strerror}") from None
    click.echo(f"backed up {settings.store_path()} to {target}")


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

    The app is plain WSGI (feedsvc.web:create_app()); the access log goes to stdout.
    """
    catalog = catalog_of(settings)
    store_of(settings, catalog).close()  # fail here, in one line, not in every worker
    workers = workers or os.cpu_count() or 1
    env = dict(
        os.environ,
        FEEDSVC_DB=str(settings.store_path().resolve()),
        FEEDSVC_FEEDS=str(settings.feeds_dir.resolve()),
        FEEDSVC_ACCESS_LOG="1" if access_log else "0",  # feedsvc's own log: the servers' cost more
    )
    base = f"http://{host}:{port}/"
    click.echo(f"feedsvc: serving on {base} ({server}, {workers} workers)")
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


def _row(item: Item) -> str:
    width = shutil.get_terminal_size((100, 20)).columns
    kind = "article " if item.content else "headline"
    topics = ",".join(item.topics) or "-"
    row = f"{item.id}  {kind}  {topics:<18}  {item.title}"
    return row if len(row) <= width else row[: width - 1] + "…"
