"""Rendered feeds and pages with their gzip form, ETag and Last-Modified, kept per store
generation: rendered once per change of the store, never once per request."""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar
from urllib.parse import parse_qsl

from werkzeug.http import http_date

from .catalog import ALL, Catalog
from .errors import QueryError
from .headers import Answers, answers_for
from .query import FeedParameters, cut_off, parse_feed_parameters
from .site import Producer, SiteMap
from .store import Store, open_store, utc_now
from .store.location import Location
from .websub import Pinger

RECENT_CACHED = 1024  # item pages and ?limit= feeds kept (a few kB each, twice with gzip)
SEARCHES_CACHED = 256  # search feeds and pages kept (up to some 100 kB each, twice with gzip)
LOCK_STRIPES = 64
GZIP_LEVEL = 6  # also the static build's .gz files (directory.py): the same bytes
# A search is rendered for one asker more often than a topic feed for thousands: level 1 is
# several times faster than 6 (ms of an uncached search feed) for about a tenth more bytes.
SEARCH_GZIP_LEVEL = 1
MAX_FIELDS = 8  # parameters in a query string: more is refused before any is read
QUERIES_KEPT = 1024  # query strings read, kept so a poll of a cached search reads nothing
Kept = TypeVar("Kept")


@dataclass(frozen=True, slots=True)
class Resource:
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
    http: Answers = field(repr=False, compare=False)  # every answer it can get, formatted
    cache_control: str = ""  # "": the site's max-age; archive pages: long and immutable
    links: tuple[str, ...] = ()  # Link header values (WebSub hub and self)
    status: int = 200  # 410 for a withdrawn item's page


def make_resource(
    body: bytes,
    content_type: str,
    last_modified: datetime,
    generation: int,
    cache_control: str = "",
    links: tuple[str, ...] = (),
    status: int = 200,
    max_age: int = 300,
    level: int = GZIP_LEVEL,
) -> Resource:
    etag = hashlib.blake2b(body, digest_size=12).hexdigest()
    gzipped = gzip.compress(body, compresslevel=level, mtime=0)
    date = http_date(last_modified)
    answers = answers_for(
        body,
        gzipped,
        (etag, etag + "-gz"),
        last_modified,
        date,
        content_type,
        cache_control or f"public, max-age={max_age}",
        links,
        status,
    )
    return Resource(
        body=body,
        gzip=gzipped,
        etag=etag,
        last_modified=last_modified,
        content_type=content_type,
        generation=generation,
        gzip_etag=etag + "-gz",
        http_date=date,
        http=answers,
        cache_control=cache_control,
        links=links,
        status=status,
    )


def query_pairs(query_string: str) -> list[tuple[str, str]]:
    """The (name, value) pairs of a WSGI QUERY_STRING (the raw bytes as latin-1 text, PEP
    3333), read as UTF-8 as Werkzeug reads them; the fast path and Flask both read a query
    string here, so they cannot disagree about it. `QueryError` for too many fields."""
    text = query_string.encode("latin-1", "replace").decode("utf-8", "replace")
    try:
        return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        raise QueryError(f"more than {MAX_FIELDS} parameters") from None


class _Recent(Generic[Kept]):
    """A bounded cache, least recently used out: item pages, `?limit=` feeds, searches, whose
    number grows with the store and with what clients ask for."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, Kept] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Kept | None:
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def __setitem__(self, key: Hashable, value: Kept) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)


class ResourceCache:
    """The app's cache of the site's rendered resources, and its per-thread store connections.
    The resources are the site map's: feeds, pages and lists are kept for the generation they
    were rendered at (one entry each, a number fixed by the catalogue); item pages and
    `?limit=` variants in a bounded LRU, searches (feeds and pages) in another."""

    def __init__(
        self,
        location: Location,
        catalog: Catalog,
        clock: Callable[[], datetime] = utc_now,
        recent: int = RECENT_CACHED,
        recheck: float = 0.0,
        searches: int = SEARCHES_CACHED,
    ) -> None:
        self.location = location
        # Seconds a thread trusts the generation it last read before asking the store again
        # (0: every request asks). A feed behind a max-age of minutes loses nothing by a change
        # showing a few ms later, and the question is a SQLite round trip per poll.
        self.recheck = recheck
        self.catalog = catalog
        self.clock = clock
        self.site = SiteMap(catalog)
        self.renders = 0
        self._fixed: dict[Hashable, Resource] = {}
        self._recent: _Recent[Resource] = _Recent(recent)
        self._searches: _Recent[Resource] = _Recent(searches)
        self._queries: _Recent[tuple[FeedParameters, str]] = _Recent(QUERIES_KEPT)
        self._health = (0, -1)
        # Striped: one lock per key would grow with every item ever asked for.
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]
        self._local = threading.local()
        self.pinger = Pinger(catalog.site.hubs)

    def announce(self, slugs: Iterable[str]) -> None:
        """Tell the WebSub hubs, in the background, that these topics' feeds changed."""
        if self.catalog.site.hubs and self.catalog.site.base_url:
            self.pinger.ping_in_background(self.site.feed_urls(slugs))

    def store(self) -> Store:
        """This thread's store (a connection per request would cost more than the request)."""
        store = getattr(self._local, "store", None)
        if store is None:
            store = self._local.store = open_store(self.location, self.clock)
            store.lift_listener = self.announce  # an embargo lifted by this worker: tell hubs
            self._local.until = -1.0
        return store

    def generation(self) -> int:
        """The store's generation, asked at most every `recheck` seconds by a thread (an
        embargo lift or another process's commit shows at most that much later)."""
        local = self._local
        if self.recheck:
            now = time.monotonic()
            if now < getattr(local, "until", -1.0):
                return local.generation
            local.generation = self.store().generation()
            local.until = now + self.recheck
            return local.generation
        return self.store().generation()

    def forget_generation(self) -> None:
        """This thread wrote the store: ask again at the next request (read your writes)."""
        self._local.until = -1.0

    def get(self, path: str) -> Resource | None:
        """The resource at a site path (`feeds/all.rss`, `items/<id>.html`), or None when the
        site has no such path."""
        cached = self._fixed.get(path)
        if cached is not None and cached.generation == self.generation():
            return cached  # the hot path: a feed poll
        producer = self.site.producer(path)
        if producer is None:
            return None
        cache = self._fixed if self.site.is_fixed(path) else self._recent
        return self._get(path, producer, cache)

    def feed(self, path: str, parameters: FeedParameters) -> Resource | None:
        """The feed at `path` for a live URL's parameters, or None if there is no feed."""
        return self._feed(path, parameters, parameters.query_string())

    def feed_query(self, path: str, query_string: str) -> Resource | None:
        """The feed at `path` for a URL's raw query string; `QueryError` for a bad one."""
        return self._feed(path, *self._read_query(query_string))

    def _feed(self, path: str, parameters: FeedParameters, canonical: str) -> Resource | None:
        """Kept under the canonical query string, and the `filter_time` cut-off, which moves
        with the clock a step of max_age at a time."""
        if not canonical:
            return self.get(path)
        since = self._cut_off(parameters)
        producer = self.site.feed(path, parameters, since)
        if producer is None:
            return None
        cache = self._searches if parameters.filters() else self._recent
        return self._get((path, canonical, since), producer, cache)

    def _read_query(self, query_string: str) -> tuple[FeedParameters, str]:
        """A feed's parameters and their canonical query string, read once per query string."""
        found = self._queries.get(query_string)
        if found is None:
            pairs = query_pairs(query_string)
            parameters = parse_feed_parameters(pairs, self.catalog.site.entries_per_feed)
            found = self._queries[query_string] = (parameters, parameters.query_string())
        return found

    def search_page(self, query_string: str) -> Resource | None:
        """The search page for a URL's raw query string: feed parameters, and `topic` (a slug;
        `all` when not given); without `q` (or with a blank one), the form alone. `QueryError`
        for a bad parameter or an unknown topic."""
        slug, parameters = self.search_parameters(query_string)
        since = self._cut_off(parameters)
        producer = self.site.search_page(slug, parameters, since)
        if producer is None:
            return None
        key = ("search", slug, parameters.query_string(), since)
        return self._get(key, producer, self._searches)

    def search_parameters(self, query_string: str) -> tuple[str, FeedParameters]:
        """A search page's topic and feed parameters; `QueryError` for bad ones."""
        pairs = query_pairs(query_string)
        topics = [value for name, value in pairs if name == "topic"]
        if len(topics) > 1:
            raise QueryError("topic is given twice")
        slug = topics[0] if topics else ALL
        if self.catalog.topic(slug) is None and not self.site.is_byline(slug):
            raise QueryError("no such topic")
        # A blank box sent as it is: the form again, not an error.
        wanted = [(n, v) for n, v in pairs if n != "topic" and not (n == "q" and not v.strip())]
        if wanted and all(name != "q" for name, _ in wanted):
            raise QueryError("give q, the words to search for")
        return slug, parse_feed_parameters(wanted, self.catalog.site.entries_per_feed)

    def _cut_off(self, parameters: FeedParameters) -> datetime | None:
        if parameters.filter_time is None:
            return None
        return cut_off(self.clock(), parameters.filter_time, self.catalog.site.max_age)

    def health(self) -> tuple[int, int]:
        """Item count and generation (counted once per generation: a count of a million rows
        is a scan), or a `StoreError` if the store cannot be read."""
        store = self.store()
        if self._health[1] != store.generation():
            self._health = store.health()
        return self._health

    def _get(
        self,
        key: Hashable,
        producer: Producer,
        cache: dict[Hashable, Resource] | _Recent[Resource],
    ) -> Resource | None:
        level = SEARCH_GZIP_LEVEL if cache is self._searches else GZIP_LEVEL
        store = self.store()
        cached = cache.get(key)
        if cached is not None and cached.generation == store.generation():
            return cached
        # Concurrent requests after a change render once.
        with self._locks[hash(key) % LOCK_STRIPES]:
            cached = cache.get(key)
            if cached is not None and cached.generation == store.generation():
                return cached
            with store.snapshot():
                generation = store.generation()
                rendered = producer(store)
            if rendered is None:
                return None
            self.renders += 1
            published = make_resource(
                rendered.body,
                rendered.content_type,
                rendered.last_modified,
                generation,
                rendered.cache_control,
                rendered.links,
                rendered.status,
                self.catalog.site.max_age,
                level,
            )
            cache[key] = published
            return published
