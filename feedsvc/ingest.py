"""Opening the store for a catalogue, and storing documents: shared by the CLI and the web app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .catalog import Catalog
from .errors import FeedsvcError
from .sources import Document, parse_document
from .store import Counts, Location, Store, utc_now
from .store import open_store as open_engine


def open_store(
    location: Location | str | Path,
    catalog: Catalog,
    clock: Callable[[], datetime] = utc_now,
    create: bool = False,
) -> Store:
    """The store at `location`, with its items re-filed if the topic rules changed (a read-only
    store keeps the filing it has)."""
    store = open_engine(location, clock, create)
    try:
        store.sync_catalog(catalog.digest, catalog.topics_for)
    except BaseException:
        store.close()
        raise
    return store


def ingest_document(store: Store, catalog: Catalog, document: Document) -> Counts:
    """Parse and store one document, all or nothing; errors name the document."""
    items = parse_document(document)
    try:
        return store.ingest(items, catalog.topics_for)
    except FeedsvcError as error:
        if error.where is None:
            error.where = document.name
        raise
