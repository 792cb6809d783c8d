"""The one list of what the site contains: every path, and how to produce its bytes from the
store. The live app (publish.py), the static build (static.py) and the tests all read it, so
they cannot disagree about which paths exist or what they hold. A few resources are the live
app's only (search: a static file cannot answer a query); the static build never sees them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime

from .catalog import ALL, Catalog
from .jsonlines import ID_PATTERN
from .model import Item, Topic
from .pages import OPENSEARCH, SCRIPT, Pages
from .query import FeedParameters
from .render import (
    EPOCH,
    FORMATS,
    PLAIN,
    feed_path,
    feed_updated,
    item_path,
    load_feed,
    render_feed,
    topic_path,
)
from .store import Store

INDEX = "index.html"
OPML = "feeds.opml"
LATEST_ON_PAGE = 30  # items listed on the index and on a topic's page
HTML_TYPE = "text/html; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"
SCRIPT_TYPE = "text/javascript; charset=utf-8"
OPENSEARCH_TYPE = "application/opensearchdescription+xml; charset=utf-8"
ITEMS_PREFIX, ITEMS_SUFFIX = item_path("\0").split("\0")  # "items/", ".html"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A resource's bytes, with what HTTP says about them."""

    body: bytes
    content_type: str
    last_modified: datetime


# Produces a resource from the store (inside one snapshot); None: it does not exist (an item
# that is not stored). The fixed resources always exist.
Producer = Callable[[Store], Rendered | None]
FixedProducer = Callable[[Store], Rendered]


def newest_change(store: Store) -> datetime:
    """The store's newest `updated` (the epoch when empty): the date of the pages and lists that
    change with any item. Computed here only, so live and static agree."""
    return store.last_updated() or EPOCH


class SiteMap:
    """The site's resources for one catalogue: paths relative to the base URL."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.pages = Pages(catalog)
        fixed: dict[str, FixedProducer] = {}
        self._feeds: dict[str, tuple[Topic, str]] = {}
        for topic in catalog.feeds:
            for extension in FORMATS:
                path = feed_path(topic.slug, extension)
                fixed[path] = self._feed(topic, extension)
                self._feeds[path] = (topic, extension)
        for topic in catalog.feeds:
            fixed[topic_path(topic.slug)] = self._topic_page(topic)
        fixed[INDEX] = self._index
        fixed[OPML] = self._opml
        fixed[SCRIPT] = self._script
        self._fixed = fixed
        self._live: dict[str, FixedProducer] = {OPENSEARCH: self._opensearch}

    def fixed(self) -> Iterator[tuple[str, FixedProducer]]:
        """The resources that exist whatever the store holds (feeds, topic pages, index, OPML,
        the pages' script), with their producers; every other path is an item's page."""
        yield from self._fixed.items()

    def fixed_paths(self) -> list[str]:
        return list(self._fixed)

    def live_paths(self) -> list[str]:
        """Fixed resources of the live app only (search); not in `fixed` nor `paths`."""
        return list(self._live)

    def is_fixed(self, path: str) -> bool:
        return path in self._fixed or path in self._live

    def item_paths(self, store: Store) -> Iterator[str]:
        return (item_path(item_id) for item_id in store.item_ids())

    def paths(self, store: Store) -> Iterator[str]:
        """Every path of the site as the store holds it now."""
        yield from self._fixed
        yield from self.item_paths(store)

    def producer(self, path: str) -> Producer | None:
        """How to produce `path`, or None when no store could make it a path of the site."""
        fixed = self._fixed.get(path) or self._live.get(path)
        if fixed is not None:
            return fixed
        if path.startswith(ITEMS_PREFIX) and path.endswith(ITEMS_SUFFIX):
            item_id = path[len(ITEMS_PREFIX) : -len(ITEMS_SUFFIX)]
            if ID_PATTERN.fullmatch(item_id):
                return lambda store: self._item(store, item_id)
        return None

    def render(self, store: Store, path: str) -> Rendered | None:
        """The resource at `path` as the store holds it now; None if the site has none."""
        producer = self.producer(path)
        return producer(store) if producer else None

    def is_feed(self, path: str) -> bool:
        return path in self._feeds

    def feed(
        self, path: str, parameters: FeedParameters, since: datetime | None = None
    ) -> FixedProducer | None:
        """The feed at `path` for a live URL's parameters (`since`: the `filter_time` cut-off)."""
        if path not in self._feeds:
            return None
        return self._feed(*self._feeds[path], parameters, since)

    def search_page(
        self, slug: str, parameters: FeedParameters, since: datetime | None = None
    ) -> FixedProducer | None:
        """The live search page of a topic (`all`: every item); without `q`, its form only."""
        topic = self.catalog.topic(slug)
        if topic is None:
            return None

        def produce(store: Store) -> Rendered:
            if parameters.query is None:
                return Rendered(self.pages.search(topic), HTML_TYPE, newest_change(store))
            limit = parameters.limit or self.catalog.site.entries_per_feed
            found = store.search(topic.slug, parameters, limit, since)
            body = self.pages.search(topic, parameters, found)
            return Rendered(body, HTML_TYPE, feed_updated(store, found))

        return produce

    def item_page(self, item: Item) -> Rendered:
        return Rendered(self.pages.item(item), HTML_TYPE, item.updated or EPOCH)

    # -- producers --------------------------------------------------------------------------

    def _feed(
        self,
        topic: Topic,
        extension: str,
        parameters: FeedParameters = PLAIN,
        since: datetime | None = None,
    ) -> FixedProducer:
        content_type = FORMATS[extension].content_type

        def produce(store: Store) -> Rendered:
            feed = load_feed(store, self.catalog, topic, parameters=parameters, since=since)
            return Rendered(render_feed(feed, extension), content_type, feed.updated)

        return produce

    def _topic_page(self, topic: Topic) -> FixedProducer:
        def produce(store: Store) -> Rendered:
            latest = store.newest(topic.slug, LATEST_ON_PAGE)
            body = self.pages.topic(topic, latest)
            return Rendered(body, HTML_TYPE, feed_updated(store, latest))

        return produce

    def _index(self, store: Store) -> Rendered:
        latest = store.newest(ALL, LATEST_ON_PAGE)
        body = self.pages.index(latest, store.counts())
        return Rendered(body, HTML_TYPE, newest_change(store))

    def _opml(self, store: Store) -> Rendered:
        updated = newest_change(store)
        return Rendered(self.pages.opml(updated), OPML_TYPE, updated)

    def _script(self, store: Store) -> Rendered:
        return Rendered(self.pages.script(), SCRIPT_TYPE, newest_change(store))

    def _opensearch(self, store: Store) -> Rendered:
        return Rendered(self.pages.opensearch(), OPENSEARCH_TYPE, newest_change(store))

    def _item(self, store: Store, item_id: str) -> Rendered | None:
        item = store.item(item_id)
        return self.item_page(item) if item else None
