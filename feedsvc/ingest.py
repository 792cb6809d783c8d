"""Reading documents, opening the store for a catalogue, and storing documents: shared by the
CLI and the web app. Errors come back as values (`Document | FeedsvcError`, `Outcome`), so a run
of many documents reports each rejected one and goes on.

Storing a document is two steps: `prepare` (parse, merge duplicates, file under topics: pure
CPU work, the larger part of an ingest) and `store_prepared` (one store transaction). An ingest
of many documents prepares them in worker processes while this one writes, so both cores work.
"""

from __future__ import annotations

import collections
import itertools
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from .catalog import Catalog
from .errors import FeedsvcError
from .filing import Explanation
from .model import Item
from .plan import Incoming, incoming
from .sources import STDIN, Document, parse_document, read_document, read_documents
from .store import Counts, Location, Store, utc_now
from .store import open_store as open_engine

AHEAD = 4  # documents prepared ahead of the writer, per worker: bounds memory
BATCH_ITEMS = 5_000  # items written per transaction at most (`store_all`)
BATCH_SECONDS = 1.0  # ... and how long a transaction takes in new documents at most


def open_filed_store(
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


def read_all(
    paths: Iterable[str],
    stdin: bytes | None,
    stdin_kind: str = "wire",
    on_empty: Callable[[str], None] | None = None,
) -> Iterator[Document | FeedsvcError]:
    """Each document the paths name (`-`: `stdin`, read as `stdin_kind`), or the error that
    stopped one path being read (the next path is still read). A directory holding no document
    is no error: `on_empty` is told its path (an empty drop folder)."""
    for path in paths:
        found = 0
        try:
            for document in read_documents([path], stdin):
                found += 1
                yield replace(document, kind=stdin_kind) if path == STDIN else document
        except FeedsvcError as error:
            yield error
            continue
        if not found and path != STDIN and on_empty is not None:
            on_empty(path)


def filed_items(
    document: Document | FeedsvcError, catalog: Catalog, explain: bool = False
) -> tuple[str, list[tuple[Item, Explanation | None]]] | FeedsvcError:
    """A document's format and items with their topics, and why they got them when asked
    (`feedsvc parse`); or the error that rejected the document, naming it."""
    if isinstance(document, FeedsvcError):
        return document
    try:
        parsed = read_document(document)
    except FeedsvcError as error:
        return error
    try:
        return parsed.format, [
            (
                replace(item, topics=catalog.topics_for(item)),
                catalog.explain(item) if explain else None,
            )
            for item in parsed.items
        ]
    except FeedsvcError as error:  # a pinned topic the catalogue lacks: the document is named
        return FeedsvcError(error.message, document.name)


@dataclass(frozen=True, slots=True)
class Prepared:
    """A document's items, merged, filed, digested and folded, ready for one store
    transaction."""

    name: str
    ready: Incoming


def prepare(document: Document, catalog: Catalog) -> Prepared:
    """Parse and file one document; errors name it."""
    try:
        return Prepared(document.name, incoming(parse_document(document), catalog.topics_for))
    except FeedsvcError as error:
        if error.where is None:
            error.where = document.name
        raise


def store_prepared(store: Store, prepared: Prepared, who: str = "cli") -> Counts:
    """Store a prepared document, all or nothing."""
    try:
        return store.ingest_incoming(prepared.ready, who)
    except FeedsvcError as error:
        if error.where is None:
            error.where = prepared.name
        raise


def store_all(
    store: Store, outcomes: Iterable[Outcome], who: str = "cli"
) -> Iterator[tuple[Outcome, Counts | FeedsvcError]]:
    """Store prepared documents in order, each all or nothing, a batch of them per transaction
    (`Store.batch`: a commit costs more than writing a document of 200 items). Each outcome
    comes back with its counts, or the error that rejected it, once its batch is committed:
    what a caller reports as stored is stored. A batch ends after `BATCH_ITEMS` items or
    `BATCH_SECONDS`, so other writers wait little and readers see a long run as it goes. A
    document that fails leaves the rest of its batch; a batch the store could not keep at all
    is written again a document at a time."""
    outcomes = iter(outcomes)
    more = True
    while more:
        batch: list[Outcome] = []
        results: list[Counts | FeedsvcError] = []
        started, items = time.monotonic(), 0
        try:
            with store.batch():
                for outcome in outcomes:
                    batch.append(outcome)
                    results.append(_store_one(store, outcome, who))
                    if not isinstance(outcome, FeedsvcError):
                        items += len(outcome.ready.items)
                    if items >= BATCH_ITEMS or time.monotonic() - started >= BATCH_SECONDS:
                        break
                else:
                    more = False
        except FeedsvcError:  # the batch's transaction failed, or never began: nothing stored
            if not batch:  # the next document alone, so it is reported and the run goes on
                batch = list(itertools.islice(outcomes, 1))
                more = bool(batch)
            results = [_store_one(store, outcome, who) for outcome in batch]
        yield from zip(batch, results, strict=True)


def _store_one(store: Store, outcome: Outcome, who: str) -> Counts | FeedsvcError:
    """A prepared document's counts once stored, or the error that rejected it."""
    if isinstance(outcome, FeedsvcError):
        return outcome
    try:
        return store_prepared(store, outcome, who)
    except FeedsvcError as error:
        return error


def ingest_document(store: Store, catalog: Catalog, document: Document, who: str = "cli") -> Counts:
    """Parse and store one document, all or nothing; errors name the document."""
    return store_prepared(store, prepare(document, catalog), who)


def changed_topics(store: Store, since: int) -> set[str]:
    """The topics of items added or changed after generation `since`."""
    return {slug for item in store.changed_since(since) for slug in item.topics}


Outcome = Prepared | FeedsvcError


def prepare_all(
    documents: Iterable[Document | FeedsvcError], catalog: Catalog, jobs: int
) -> Iterator[Outcome]:
    """Each document prepared (or the error that stopped it), in order; with `jobs` > 1, in that
    many worker processes, a bounded number of documents ahead."""
    documents = iter(documents)
    first = next(documents, None)
    second = next(documents, None) if first is not None else None
    if second is None or jobs <= 1:  # one document: workers would only add copying
        for document in (first, second):
            if document is not None:
                yield _outcome(document, catalog)
        yield from (_outcome(document, catalog) for document in documents)
        return
    documents = itertools.chain((first, second), documents)
    catalog.file("")  # the rules are built on first use: once here, not in every worker
    # fork: the workers inherit the loaded catalogue instead of unpickling its rules per task.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(jobs, context, initializer=_set_catalog, initargs=(catalog,)) as pool:
        window: collections.deque[Future[Outcome]] = collections.deque()
        for document in documents:
            window.append(pool.submit(_prepare_in_worker, document))
            if len(window) >= jobs * AHEAD:
                yield window.popleft().result()
        while window:
            yield window.popleft().result()


def _outcome(document: Document | FeedsvcError, catalog: Catalog) -> Outcome:
    if isinstance(document, FeedsvcError):
        return document
    try:
        return prepare(document, catalog)
    except FeedsvcError as error:
        return error


class _Worker:
    """The catalogue of a worker process (set once when it starts)."""

    catalog: Catalog | None = None


def _set_catalog(catalog: Catalog) -> None:
    _Worker.catalog = catalog


def _prepare_in_worker(document: Document | FeedsvcError) -> Outcome:
    assert _Worker.catalog is not None
    return _outcome(document, _Worker.catalog)
