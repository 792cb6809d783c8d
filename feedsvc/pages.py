"""HTML pages (index, item) and the OPML list, from templates; escaping is always on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import format_datetime

from jinja2 import Environment, PackageLoader, select_autoescape

from .catalog import Catalog
from .model import Item
from .render import FORMATS, feed_path, item_path


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
        )

    def index(self, latest: Sequence[Item], counts: Mapping[str, int]) -> bytes:
        return self._render("index.html", root="", latest=latest, counts=counts)

    def item(self, item: Item) -> bytes:
        return self._render("item.html", root="../", item=item)

    def opml(self, updated: datetime) -> bytes:
        return self._render("feeds.opml", updated=format_datetime(updated, usegmt=True))

    def _render(self, name: str, **context: object) -> bytes:
        return (self.env.get_template(name).render(**context) + "\n").encode("utf-8")
