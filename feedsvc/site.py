"""The one list of what the site contains: every path, and how to produce its bytes from the
store. The live app (publish.py), the static build (static.py) and the tests all read it, so
they cannot disagree about which paths exist or what they hold. A few resources are the live
app's only (search: a static file cannot answer a query); the static build never sees them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from .bylines import AUTHORS, KEY, SOURCES, author_names, name_slug
from .catalog import ALL, Catalog
from .model import ID_PATTERN, Item, Topic
from .pages import OPENSEARCH, SCRIPT, Pages
from .query import FeedParameters
from .render import (
    EPOCH,
    FORMATS,
    PLAIN,
    Feed,
    archive_path,
    feed_path,
    feed_updated,
    item_path,
    load_archive,
    load_feed,
    render_feed,
    topic_path,
)
from .sitemap import (
    MAX_NEWS,
    ROBOTS_TYPE,
    XML_TYPE,
    Article,
    Entry,
    news_sitemap,
    news_window,
    robots,
    sitemap_index,
    urls_per_file,
    urlset,
)
from .store import Store

INDEX = "index.html"
OPML = "feeds.opml"
LATEST_ON_PAGE = 30  # items listed on the index and on a topic's page
HTML_TYPE = "text/html; charset=utf-8"
OPML_TYPE = "text/x-opml; charset=utf-8"
SCRIPT_TYPE = "text/javascript; charset=utf-8"
# A full archive page keeps its bytes (RFC 5005) once a newer one links it: caches may keep it a
# year. (A kill rewrites it: the one exception, which the build reports.)
IMMUTABLE = "public, max-age=31536000, immutable"
# A topic's archive page, or an author's or a source's (`feeds/authors/<slug>/archive/...`).
ARCHIVE = re.compile(
    rf"feeds/([a-z0-9][a-z0-9-]{{0,39}}|{KEY})/archive/(0|[1-9][0-9]{{0,8}})\.([a-z]+)"
)
BYLINE_KEY = re.compile(KEY)
BYLINE_FEED = re.compile(rf"feeds/({KEY})\.([a-z]+)")
BYLINE_PAGE = re.compile(rf"({KEY})\.html")
OPENSEARCH_TYPE = "application/opensearchdescription+xml; charset=utf-8"
ITEMS_PREFIX, ITEMS_SUFFIX = item_path("\0").split("\0")  # "items/", ".html"
ITEM_PATH = item_path("{}")  # item_path's, for str.format
SITEMAP = "sitemap.xml"  # a URL set, or past one file's limits an index of the two below
NEWS_SITEMAP = "sitemap-news.xml"
ROBOTS = "robots.txt"
SITEMAP_PAGES = "sitemaps/pages.xml"  # split: the home page and the topic pages
SITEMAP_PART = re.compile(r"sitemaps/(0|[1-9][0-9]{0,8})\.xml")  # split: item pages
LONGEST_ID = 128  # model.ID_PATTERN's limit: the longest item URL


def sitemap_part(part: int) -> str:
    return f"sitemaps/{part}.xml"


@dataclass(frozen=True, slots=True)
class Rendered:
    """A resource's bytes, with what HTTP says about them."""

    body: bytes
    content_type: str
    last_modified: datetime
    cache_control: str = ""  # "": the site's max-age
    links: tuple[str, ...] = ()  # HTTP Link header values
    status: int = 200  # 410: a withdrawn item's page (the same bytes static hosts serve)


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
        fixed[SITEMAP] = self._sitemap
        fixed[NEWS_SITEMAP] = self._news_sitemap
        fixed[ROBOTS] = self._robots
        self._fixed = fixed
        # Item pages per sitemap file; they go by archive place in `all` (first-seen order),
        # so a file's list changes only when one of its items changes or is withdrawn.
        longest = len(catalog.site.base_url or "") + len(item_path("x" * LONGEST_ID))
        self.sitemap_size = urls_per_file(longest)
        self._live: dict[str, FixedProducer] = {OPENSEARCH: self._opensearch}
        site = catalog.site
        self.byline_kinds = tuple(
            kind for kind, on in ((AUTHORS, site.author_feeds), (SOURCES, site.source_feeds)) if on
        )

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

    def archive_paths(self, store: Store) -> Iterator[tuple[str, str, int]]:
        """(path, topic, page) of every archive document (RFC 5005), oldest page first."""
        size = self.catalog.site.page_size
        slugs = [topic.slug for topic in self.catalog.feeds] + self.byline_keys(store)
        for slug in slugs:
            for page in range(store.archive_pages(slug, size)):
                for extension in FORMATS:
                    yield archive_path(slug, page, extension), slug, page

    def byline_keys(self, store: Store) -> list[str]:
        """The author and source feeds the site has (`authors/<slug>`, ...): those of the kinds
        site.toml turns on that hold a published item."""
        if not self.byline_kinds:
            return []
        return sorted(key for key in store.counts() if self.is_byline(key))

    def bylines(self, store: Store, keys: set[str] | None = None) -> list[tuple[str, Producer]]:
        """The pages and feeds of every author and source (or of those of `keys` the site has),
        with their producers."""
        found: list[tuple[str, Producer]] = []
        for key in self.byline_keys(store):
            if keys is None or key in keys:
                found.append((topic_path(key), self._byline_page(key)))
                found += [(feed_path(key, ext), self._byline_feed(key, ext)) for ext in FORMATS]
        return found

    def byline_changes(self, store: Store, since: int) -> set[str] | None:
        """The authors and sources whose pages, feeds and archives may differ from generation
        `since`'s; None: any may. Theirs are those of the items changed since (where they are
        filed now) and of every withdrawn item (a tombstone leaves a feed as newer items come).
        An item that left one (a corrected byline) says nothing of where it was: so unless every
        change since is a new item (the newest by first-seen order, never updated), any may."""
        if not since:
            return None
        changed = [(item.id, item.published == item.updated) for item in store.changed_since(since)]
        newest = store.newest_ids(len(changed))  # in first-seen order
        if not all(new for _, new in changed) or newest != [i for i, _ in changed]:
            return None
        places = store.archive_changes(since, self.catalog.site.page_size)
        keys = {key for key, _ in places}
        keys.update(key for _, _, _, topics in store.killed() for key in topics)
        return {key for key in keys if self.is_byline(key)}

    def paths(self, store: Store) -> Iterator[str]:
        """Every path of the site as the store holds it now (withdrawn items' pages too)."""
        yield from self._fixed
        yield from (path for path, _ in self.bylines(store))
        yield from (path for path, _, _ in self.archive_paths(store))
        yield from self.item_paths(store)
        yield from (item_path(item_id) for item_id in store.killed_ids())
        yield from self.sitemap_paths(store)

    def path_set(self, store: Store) -> set[str]:
        """`set(paths(store))`, the item pages' paths made in C (a million of them)."""
        found = set(self._fixed)
        found.update(path for path, _ in self.bylines(store))
        found.update(path for path, _, _ in self.archive_paths(store))
        found.update(map(ITEM_PATH.format, store.item_ids()))
        found.update(map(ITEM_PATH.format, store.killed_ids()))
        found.update(self.sitemap_paths(store))
        return found

    def sitemap_parts(self, store: Store) -> int:
        """How many files of item pages `sitemap.xml` indexes; 0: it lists every page itself.
        It splits when the item places given in `all` (a withdrawn item's too: its place is
        never reused) and the site's other pages would not fit one file."""
        places = store.archive_pages(ALL, 1)  # pages of one place: every place given
        pages = 1 + len(self.catalog.feeds) + len(self.byline_keys(store))
        if places + pages <= self.sitemap_size:
            return 0
        return -(-places // self.sitemap_size)

    def sitemap_paths(self, store: Store) -> list[str]:
        """The files a split `sitemap.xml` indexes (none when it is one file)."""
        parts = self.sitemap_parts(store)
        return [SITEMAP_PAGES, *(sitemap_part(part) for part in range(parts))] if parts else []

    def sitemap_changes(self, store: Store, since: int) -> list[str]:
        """The files of a split sitemap that may differ from generation `since`'s: the pages'
        list, and the item files whose items changed or were withdrawn since."""
        if not self.sitemap_parts(store):
            return []
        changed = store.archive_changes(since, self.sitemap_size)
        parts = sorted(part for topic, part in changed if topic == ALL)
        return [SITEMAP_PAGES, *(sitemap_part(part) for part in parts)]

    def producer(self, path: str) -> Producer | None:
        """How to produce `path`, or None when no store could make it a path of the site."""
        fixed = self._fixed.get(path) or self._live.get(path)
        if fixed is not None:
            return fixed
        if path == SITEMAP_PAGES:
            return self._sitemap_pages
        part = SITEMAP_PART.fullmatch(path)
        if part:
            return lambda store: self._sitemap_part(store, int(part[1]))
        archive = ARCHIVE.fullmatch(path)
        if archive:
            topic = self.catalog.topic(archive[1])
            page, extension = int(archive[2]), archive[3]
            if extension not in FORMATS:
                return None
            if topic is not None:
                return lambda store: self._archive(store, topic, page, extension)
            if self.is_byline(archive[1]):
                return lambda store: self._byline_archive(store, archive[1], page, extension)
            return None
        byline = BYLINE_FEED.fullmatch(path)
        if byline:
            if self.is_byline(byline[1]) and byline[2] in FORMATS:
                return self._byline_feed(byline[1], byline[2])
            return None
        byline = BYLINE_PAGE.fullmatch(path)
        if byline:
            return self._byline_page(byline[1]) if self.is_byline(byline[1]) else None
        if path.startswith(ITEMS_PREFIX) and path.endswith(ITEMS_SUFFIX):
            item_id = path[len(ITEMS_PREFIX) : -len(ITEMS_SUFFIX)]
            if ID_PATTERN.fullmatch(item_id):
                return lambda store: self._item(store, item_id)
        return None

    def render(self, store: Store, path: str) -> Rendered | None:
        """The resource at `path` as the store holds it now; None if the site has none."""
        producer = self.producer(path)
        return producer(store) if producer else None

    def feed_urls(self, slugs: Iterable[str]) -> list[str]:
        """The URLs of every format of these topics' feeds and of `all` (what a change to items
        filed under them changes), for WebSub pings."""
        site = self.catalog.site
        topics = [ALL, *sorted(set(slugs) - {ALL})]
        return [site.url(feed_path(slug, ext)) for slug in topics for ext in FORMATS]

    def is_feed(self, path: str) -> bool:
        """A topic's feed, or an author's or a source's (whether or not the store has it)."""
        return path in self._feeds or (
            bool(self.byline_kinds) and BYLINE_FEED.fullmatch(path) is not None
        )

    def feed(
        self, path: str, parameters: FeedParameters, since: datetime | None = None
    ) -> Producer | None:
        """The feed at `path` for a live URL's parameters (`since`: the `filter_time` cut-off)."""
        if path in self._feeds:
            return self._feed(*self._feeds[path], parameters, since)
        byline = BYLINE_FEED.fullmatch(path)
        if byline and self.is_byline(byline[1]) and byline[2] in FORMATS:
            return self._byline_feed(byline[1], byline[2], parameters, since)
        return None

    def search_page(
        self, slug: str, parameters: FeedParameters, since: datetime | None = None
    ) -> Producer | None:
        """The live search page of a topic (`all`: every item), or of an author or a source;
        without `q`, its form only."""
        known = self.catalog.topic(slug)
        if known is None and not self.is_byline(slug):
            return None

        def produce(store: Store) -> Rendered | None:
            topic = known or self.byline_topic(store, slug)
            if topic is None:
                return None
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

    def is_byline(self, key: str) -> bool:
        """Whether `key` names an author or a source of a kind the site has (stored or not)."""
        return bool(BYLINE_KEY.fullmatch(key)) and key.partition("/")[0] in self.byline_kinds

    def byline_topic(self, store: Store, key: str) -> Topic | None:
        """An author's or a source's feed as a topic, named as its newest item spells it; None
        when no published item is filed there (its feed and page do not exist)."""
        newest = store.newest(key, 1)
        if not self.is_byline(key) or not newest:
            return None
        kind, _, slug = key.partition("/")
        item, site = newest[0], self.catalog.site.title
        # The description names no byline: RSS readers take a channel's as HTML, and a byline
        # is the source's text (the title, plain text everywhere, carries the name).
        if kind == AUTHORS:
            names = [name for name in author_names(item.author) if name_slug(name) == slug]
            name = names[0] if names else slug
            return Topic(key, name, f"The latest stories by this author on {site}.")
        name = " ".join((item.source or slug).split())
        return Topic(key, name, f"The latest stories from this source on {site}.")

    def _byline_feed(
        self,
        key: str,
        extension: str,
        parameters: FeedParameters = PLAIN,
        since: datetime | None = None,
    ) -> Producer:
        def produce(store: Store) -> Rendered | None:
            topic = self.byline_topic(store, key)
            return None if topic is None else self._feed(topic, extension, parameters, since)(store)

        return produce

    def _byline_page(self, key: str) -> Producer:
        def produce(store: Store) -> Rendered | None:
            topic = self.byline_topic(store, key)
            return None if topic is None else self._topic_page(topic)(store)

        return produce

    def _byline_archive(self, store: Store, key: str, page: int, extension: str) -> Rendered | None:
        topic = self.byline_topic(store, key)
        return None if topic is None else self._archive(store, topic, page, extension)

    def _feed(
        self,
        topic: Topic,
        extension: str,
        parameters: FeedParameters = PLAIN,
        since: datetime | None = None,
    ) -> FixedProducer:
        def produce(store: Store) -> Rendered:
            feed = load_feed(store, self.catalog, topic, parameters=parameters, since=since)
            return self._rendered(feed, extension)

        return produce

    def _archive(self, store: Store, topic: Topic, page: int, extension: str) -> Rendered | None:
        feed = load_archive(store, self.catalog, topic, page)
        return None if feed is None else self.archive_rendered(feed, extension)

    def archive_feed(self, store: Store, slug: str, page: int) -> Feed | None:
        """An archive page's items, to render in each format (`archive_rendered`): a parallel
        build reads the store here and renders elsewhere."""
        topic = self.catalog.topic(slug)
        if topic is None and self.is_byline(slug):
            topic = self.byline_topic(store, slug)
        return None if topic is None else load_archive(store, self.catalog, topic, page)

    def archive_rendered(self, feed: Feed, extension: str) -> Rendered:
        # The newest page gains a next-archive link when the next one fills: it may not be
        # cached for a year. The older ones are done.
        newest = feed.archive is not None and feed.archive + 1 == feed.pages
        cache = f"public, max-age={self.catalog.site.max_age}" if newest else IMMUTABLE
        return self._rendered(feed, extension, cache)

    def _rendered(self, feed: Feed, extension: str, cache_control: str = "") -> Rendered:
        """A feed's bytes; with WebSub hubs, Link headers name them and the feed's own URL."""
        hubs = self.catalog.site.hubs
        links = (*(f'<{hub}>; rel="hub"' for hub in hubs), f'<{feed.url(extension)}>; rel="self"')
        return Rendered(
            render_feed(feed, extension),
            FORMATS[extension].content_type,
            feed.updated,
            cache_control,
            links if hubs else (),
        )

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

    def _page_entries(self, store: Store) -> list[Entry]:
        """The home page and every topic's page (and author's and source's, where the site has
        them), dated as their Last-Modified."""
        site = self.catalog.site
        entries = [Entry(site.url(""), newest_change(store))]
        for slug in [topic.slug for topic in self.catalog.feeds] + self.byline_keys(store):
            latest = store.newest(slug, LATEST_ON_PAGE)
            entries.append(Entry(site.url(topic_path(slug)), feed_updated(store, latest)))
        return entries

    def _item_entries(self, store: Store, part: int) -> tuple[list[Entry], datetime]:
        """The item pages of one sitemap file, newest first, and the newest `updated`."""
        dates = store.archive_dates(part, self.sitemap_size)
        url = self.catalog.site.url
        entries = [Entry(url(item_path(item_id)), updated or EPOCH) for item_id, updated in dates]
        # feed_updated's date, without whole items
        known = [updated for _, updated in dates if updated]
        return entries, max(known) if known else store.last_updated() or EPOCH

    def _sitemap(self, store: Store) -> Rendered:
        parts = self.sitemap_parts(store)
        if not parts:
            items, _ = self._item_entries(store, 0)
            body = urlset([*self._page_entries(store), *items])
        else:
            # No lastmod per file: it would take reading every item of the store at each change.
            url = self.catalog.site.url
            files = [SITEMAP_PAGES, *(sitemap_part(part) for part in range(parts))]
            body = sitemap_index(Entry(url(path), None) for path in files)
        return Rendered(body, XML_TYPE, newest_change(store))

    def _sitemap_pages(self, store: Store) -> Rendered | None:
        if not self.sitemap_parts(store):
            return None
        return Rendered(urlset(self._page_entries(store)), XML_TYPE, newest_change(store))

    def _sitemap_part(self, store: Store, part: int) -> Rendered | None:
        if part >= self.sitemap_parts(store):
            return None
        entries, updated = self._item_entries(store, part)
        return Rendered(urlset(entries), XML_TYPE, updated)

    def _news_sitemap(self, store: Store) -> Rendered:
        # Live items only (`newest` never gives a held or withdrawn one), newest first.
        latest = store.newest(ALL, MAX_NEWS)
        url = self.catalog.site.url
        articles = news_window(
            [Article(url(item_path(i.id)), i.title, i.published or EPOCH) for i in latest]
        )
        site = self.catalog.site
        if not articles:  # a URL set needs one URL (the schema's minimum): the home page
            body = urlset([Entry(url(""), newest_change(store))])
        else:
            body = news_sitemap(articles, site.title, site.language)
        return Rendered(body, XML_TYPE, feed_updated(store, latest))

    def _robots(self, store: Store) -> Rendered:
        url = self.catalog.site.url
        body = robots([url(SITEMAP), url(NEWS_SITEMAP)])
        return Rendered(body, ROBOTS_TYPE, newest_change(store))

    def _item(self, store: Store, item_id: str) -> Rendered | None:
        item = store.item(item_id)
        if item is not None:
            return self.item_page(item)
        when = store.killed_at(item_id)
        if when is None:
            return None
        return Rendered(self.pages.withdrawn(when), HTML_TYPE, when, status=410)
