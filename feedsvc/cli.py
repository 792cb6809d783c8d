"""The `feedsvc` command: turns user errors into one line on stderr and exit code 1."""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import click

from .catalog import Catalog, load_catalog
from .config import Settings
from .errors import FeedsvcError
from .model import Item
from .sources import Document, parse_document, read_documents


class UserError(click.ClickException):
    """A `FeedsvcError` as the CLI shows it: `feedsvc: error: FILE:LINE: what is wrong`."""

    def show(self, file=None) -> None:  # type: ignore[override]
        click.echo(f"feedsvc: error: {self.message}", err=True)


def fail(error: FeedsvcError) -> UserError:
    return UserError(str(error))


pass_settings = click.make_pass_decorator(Settings)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), envvar="FEEDSVC_DB",
              help="SQLite store [env FEEDSVC_DB; default: feedsvc.sqlite3 in the instance folder]")
@click.option("--feeds", "feeds_dir", type=click.Path(file_okay=False, path_type=Path),
              envvar="FEEDSVC_FEEDS", help="Topic catalogue directory [env FEEDSVC_FEEDS; "
              "default: ./feeds]")
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
STDIN_FORMAT = click.option("--stdin-format", type=click.Choice(["wire", "jsonl"]),
                            default="wire", show_default=True,
                            help="Format of standard input ('-').")


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


def _filed(catalog: Catalog, document: Document | FeedsvcError) -> list[Item]:
    if isinstance(document, FeedsvcError):
        raise document
    items = parse_document(document)
    try:
        return [replace(item, topics=catalog.topics_for(item)) for item in items]
    except FeedsvcError as error:
        raise FeedsvcError(error.message, document.name) from None


def _row(item: Item) -> str:
    width = shutil.get_terminal_size((100, 20)).columns
    kind = "article " if item.content else "headline"
    topics = ",".join(item.topics) or "-"
    row = f"{item.id}  {kind}  {topics:<18}  {item.title}"
    return row if len(row) <= width else row[: width - 1] + "…"
