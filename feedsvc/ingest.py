"""Opening the store for a catalogue, and storing documents: shared by the CLI and the web app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from .catalog import Catalog
from .errors import FeedsvcError
from .sources import Document, parse_document
from .store import Counts, Store, utc_now


def open_store(path: Path, catalog: Catalog, clock: Callable[[], datetime] = utc_now) -> Store:
    """The store at `path`, with its items re-filed if the topic rules changed."""
    store = Store.open(path, clock)
    store.sync_catalog(catalog)
    return store


def ingest_document(store: Store, catalog: Catalog, document: Document) -> Counts:
    """Parse and store one document, all or nothing; errors name the document."""
    items = parse_document(document)
    try:
        return store.ingest(items, catalog)
    except FeedsvcError as error:
        if error.where is None:
            error.where = document.name
        raise
