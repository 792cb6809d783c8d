"""HTML pages (index, topic, item; search, live only), the OPML list, the OpenSearch
description and the pages' script, from templates; escaping is always on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime
from importlib import resources
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from .bylines import AUTHORS, SOURCES, author_names, feed_key, name_slug
from .catalog import ALL, Catalog
from .model import Item, Topic
from .query import MAX_QUERY_CHARS, FeedParameters, canonical
from .render import (
    FORMATS,
    SEARCH,
    entry_id,
    feed_path,
    feed_url,
    item_path,
    search_path,
    topic_path,
)

SCRIPT = "feedsvc.js"  # the pages' one script: copy buttons, a topic's latest items, search box
OPENSEARCH = "opensearch.xml"  # live only: what the script looks for to offer a search box
SHORT_NAME_CHARS = 16  # OpenSearch 1.1: ShortName holds at most 16 characters
MORE_ON_ITEM_PAGE = 10  # latest items of its first topic, under an item
# Web readers' "subscribe" addresses, each taking the feed's URL, percent-encoded.
WEB_READERS = (
    ("Feedly", "https://feedly.com/i/subscription/feed%2F{}"),
    ("Inoreader", "https://www.inoreader.com/?add_feed={}"),
    ("NewsBlur", "https://www.newsblur.com/?url={}"),
)


class Pages:
    """Renders the site's pages; build one per app or static build and reuse it."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.env = Environment(
            loader=PackageLoader("feedsvc", "templates"),
            autoescape=select_autoescape(["html", "opml", "xml"]),
            trim_blocks=True,
            lstrip_blocks=True,
            # The templates are the package's: they do not change under a running process,
            # and checking (a stat of each template a page uses, each render) cost ~10%.
            auto_reload=False,
        )
        self.env.globals.update(
            site=catalog.site,
            catalog=catalog,
            formats=FORMATS,
            feed_path=feed_path,
            item_path=item_path,
            topic_path=topic_path,
            script=SCRIPT,
            opensearch=OPENSEARCH,
            search=SEARCH,
            max_query=MAX_QUERY_CHARS,
        )

    def index(self, latest: Sequence[Item], counts: Mapping[str, int]) -> bytes:
        return self._render("index.html", root="", latest=latest, counts=counts)

    def topic(self, topic: Topic, latest: Sequence[Item]) -> bytes:
        site = self.catalog.site
        rss = site.url(feed_path(topic.slug, "rss"))
        readers = [("your feed reader", f"feed:{rss}")]
        readers += [(name, address.format(quote(rss, safe=""))) for name, address in WEB_READERS]
        return self._render("topic.html", root="../", topic=topic, latest=latest, readers=readers)

    def item(self, item: Item) -> bytes:
        topics = [t for t in (self.catalog.topic(slug) for slug in item.topics) if t]
        return self._render(
            "item.html",
            root="../",
            item=item,
            topics=topics,
            authors=_filed(item, AUTHORS, author_names(item.author)),
            sources=_filed(item, SOURCES, [item.source] if item.source else []),
            entry_id=entry_id(self.catalog.site, item.id, topics[0].slug) if topics else "",
            more=MORE_ON_ITEM_PAGE,
        )

    def withdrawn(self, when: datetime) -> bytes:
        """What stands at a withdrawn item's address (static hosts cannot answer 410)."""
        return self._render("withdrawn.html", root="../", when=when)

    def search(
        self,
        topic: Topic,
        parameters: FeedParameters | None = None,
        found: Sequence[Item] = (),
        text: str = "",
        error: str | None = None,
    ) -> bytes:
        """The live search page: a form, and with a query (`parameters.query`) its newest
        matches and its feeds; with `error`, the form holding the `text` that caused it."""
        feeds, hidden, everywhere = [], [], None
        if parameters is not None:
            # The other parameters ride along in the form: a new search keeps the filters.
            hidden = [pair for pair in parameters.pairs() if pair[0] != "q"]
        searched = parameters is not None and parameters.query is not None
        if searched:
            text = canonical(parameters.query)
            site, slug = self.catalog.site, topic.slug
            feeds = [(f, feed_url(site, slug, f.extension, parameters)) for f in FORMATS.values()]
            everywhere = search_path(ALL, parameters) if topic.slug != ALL else None
        return self._render(
            "search.html",
            root="",
            topic=topic,
            searched=searched,
            described=parameters.describe() if searched else "",
            found=found,
            text=text[: MAX_QUERY_CHARS + 1],  # what was sent, if wrong: enough to see why
            error=error,
            feeds=feeds,
            hidden=hidden,
            everywhere=everywhere,
        )

    def opensearch(self) -> bytes:
        site = self.catalog.site
        return self._render(
            OPENSEARCH,
            short_name=site.title[:SHORT_NAME_CHARS],
            description=f"Search {site.title}"[:1024],
        )

    def opml(self, updated: datetime) -> bytes:
        return self._render("feeds.opml", updated=format_datetime(updated, usegmt=True))

    def script(self) -> bytes:
        return resources.files("feedsvc").joinpath("templates", SCRIPT).read_bytes()

    def _render(self, name: str, **context: object) -> bytes:
        return (self.env.get_template(name).render(**context) + "\n").encode("utf-8")


def _filed(item: Item, kind: str, names: Sequence[str]) -> list[tuple[str, str]]:
    """(name, filing key) of the authors or source an item names whose feeds it is filed
    under: on an item page, the "more by" links."""
    keys = [(name, feed_key(kind, name_slug(name) or "")) for name in names]
    return [(name, key) for name, key in keys if key in item.topics]
