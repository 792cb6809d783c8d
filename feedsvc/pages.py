"""HTML pages (index, topic, item), the OPML list and the pages' script, from templates;
escaping is always on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime
from importlib import resources
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape

from .catalog import Catalog
from .model import Item, Topic
from .render import FORMATS, entry_id, feed_path, item_path, topic_path

SCRIPT = "feedsvc.js"  # the pages' one script: copy buttons, a topic's latest items
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
            autoescape=select_autoescape(["html", "opml"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            site=catalog.site,
            catalog=catalog,
            formats=FORMATS,
            feed_path=feed_path,
            item_path=item_path,
            topic_path=topic_path,
            script=SCRIPT,
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
            entry_id=entry_id(self.catalog.site, item),
            more=MORE_ON_ITEM_PAGE,
        )

    def withdrawn(self, when: datetime) -> bytes:
        """What stands at a withdrawn item's address (static hosts cannot answer 410)."""
        return self._render("withdrawn.html", root="../", when=when)

    def opml(self, updated: datetime) -> bytes:
        return self._render("feeds.opml", updated=format_datetime(updated, usegmt=True))

    def script(self) -> bytes:
        return resources.files("feedsvc").joinpath("templates", SCRIPT).read_bytes()

    def _render(self, name: str, **context: object) -> bytes:
        return (self.env.get_template(name).render(**context) + "\n").encode("utf-8")
