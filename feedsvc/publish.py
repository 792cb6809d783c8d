"""Rendered feeds and pages with their gzip form, ETag and Last-Modified, kept per store
generation: rendered once per change of the store, never once per request."""

from __future__ import annotations

import gzip
import hashlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from werkzeug.http import http_date

from .catalog import ALL, Catalog
from .config import Location
from .pages import Pages
from .render import FORMATS, load_feed, render_feed
from .store import Store, open_store, utc_now

LATEST_ON_INDEX = 30


@dataclass(frozen=True, slots=True)
class Published:
    """One rendered resource, ready to send."""

    body: bytes
    gzip: bytes
    etag: str  # strong: a hash of the bytes (unquoted)
    last_modified: datetime
    content_type: str
    generation: int
    # Derived from the two above, but formatted once per render rather than once per request:
    gzip_etag: str  # each encoding is its own representation (RFC 9110 8.8.3)
    http_date: str  # Last-Modified as an HTTP date


def publish(body: bytes, content_type: str, last_modified: datetime, generation: int) -> Published:
    etag = hashlib.blake2b(body, digest_size=12).hexdigest()
    return Published(
        body=body,
        gzip=gzip.compress(body, compresslevel=6, mtime=0),
        etag=etag,
        last_modified=last_modified,
        content_type=content_type,
        generation=generation,
        gzip_etag=etag + "-gz",
        http_date=http_date(last_modified),
    )


Producer = Callable[[Store, int], Published]


class Publisher:
    """The app's cache of rendered resources, and its per-thread store connections."""

    def __init__(
        self, location: Location, catalog: Catalog, clock: Callable[[], datetime] = utc_now
    ) -> None:
        self.location = location
        self.catalog = catalog
        self.clock = clock
        self.pages = Pages(catalog)
        self.renders = 0
        self._cache: dict[tuple, Published] = {}
        self._topics = {topic.slug: topic for topic in catalog.feeds}
        self._health = (0, -1)
        self._locks: dict[tuple, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._local = threading.local()

    def store(self) -> Store:
        """This thread's store (a connection per request would cost more than the request)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.location, self.clock)
        return store

    def feed(self, slug: str, extension: str, limit: int | None = None) -> Published | None:
        """A topic's feed in one format, or None for an unknown topic or format."""
        topic = self._topics.get(slug)
        if topic is None or extension not in FORMATS:
            return None
        limit = limit or self.catalog.site.entries_per_feed

        def produce(store: Store, generation: int) -> Published:
            feed = load_feed(store, self.catalog, topic, limit)
            body = render_feed(feed, extension)
            return publish(body, FORMATS[extension].content_type, feed.updated, generation)

        return self._get(("feed", slug, extension, limit), produce)

    def index(self) -> Published:
        def produce(store: Store, generation: int) -> Published:
            latest = store.newest(ALL, LATEST_ON_INDEX)
            body = self.pages.index(latest, store.counts())
            return publish(body, "text/html; charset=utf-8", self._newest(store), generation)

        return self._get(("index",), produce)

    def opml(self) -> Published:
        def produce(store: Store, generation: int) -> Published:
            updated = self._newest(store)
            body = self.pages.opml(updated)
            return publish(body, "text/x-opml; charset=utf-8", updated, generation)

        return self._get(("opml",), produce)

    def health(self) -> tuple[int, int]:
        """Item count and generation (counted once per generation: a count of a million rows
        is a scan), or a `StoreError` if the store cannot be read."""
        store = self.store()
        if self._health[1] != store.generation():
            self._health = store.health()
        return self._health

    def _newest(self, store: Store) -> datetime:
        return load_feed(store, self.catalog, self.catalog.all_topic, 1).updated

    def _get(self, key: tuple, produce: Producer) -> Published:
        store = self.store()
        cached = self._cache.get(key)
        if cached is not None and cached.generation == store.generation():
            return cached
        with self._lock(key):  # concurrent requests after a change render once
            cached = self._cache.get(key)
            if cached is not None and cached.generation == store.generation():
                return cached
            with store.snapshot():
                published = produce(store, store.generation())
            self.renders += 1
            self._cache[key] = published
            return published

    def _lock(self, key: tuple) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())
