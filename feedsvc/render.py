"""The converter: a topic's items and the site become RSS 2.0 and Atom 1.0 (with feedgen) and
JSON Feed 1.1. The feed's data is kept apart from the writers, which are chosen by one table."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from feedgen.ext.base import BaseEntryExtension, BaseExtension
from feedgen.feed import FeedGenerator
from lxml.etree import Element, SubElement

from . import __version__
from .bylines import is_topic
from .catalog import ALL, Catalog
from .model import Image, Item, Site, Topic
from .plan import EPOCH
from .query import FeedParameters
from .store import Store

GENERATOR = "feedsvc"
GENERATOR_URI = "https://pypi.org/project/feedsvc/"
RSS_DOCS = "https://www.rssboard.org/rss-specification"
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_NS = "{http://www.w3.org/2005/Atom}"
SYNDICATION_NS = "http://purl.org/rss/1.0/modules/syndication/"
HISTORY_NS = "http://purl.org/syndication/history/1.0"  # RFC 5005 fh:archive
TOMBSTONES_NS = "http://purl.org/atompub/tombstones/1.0"  # RFC 6721 at:deleted-entry
MEDIA_NS = "http://search.yahoo.com/mrss/"  # Media RSS: the pictures readers show
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
# A picture's media type when the sender gave none, by its URL's ending (a fixed table, not the
# system's mimetypes: output must not depend on the machine that renders it).
IMAGE_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml",
}
# sy:updatePeriod values by length: the shortest period that holds at least one poll.
UPDATE_PERIODS = (("hourly", 3600), ("daily", 86_400), ("weekly", 604_800))
PLAIN = FeedParameters()  # a topic's own feed: no search, no filter, the site's length
SEARCH = "search"  # the live search page's path

# feedgen formats RSS dates with locale.setlocale, which is process-wide: one RSS render at a time.
_SETLOCALE_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Tombstone:
    """An entry withdrawn from a feed (RFC 6721), told to readers that fetched it."""

    ref: str  # the entry's id
    when: datetime
    comment: str | None


@dataclass(frozen=True, slots=True)
class Feed:
    """What a feed says, whatever its format: the questions a writer asks, answered."""

    site: Site
    topic: Topic
    items: Sequence[Item]  # newest first
    updated: datetime  # the newest `updated` of the items: never "now", so output is stable
    pages: int = 0  # full archive pages of the topic (RFC 5005)
    archive: int | None = None  # this document's archive page; None: the topic's feed
    tombstones: tuple[Tombstone, ...] = ()  # Atom only
    parameters: FeedParameters = PLAIN  # live `?q=`, filters and `limit`

    def url(self, extension: str) -> str:
        """The feed's own URL (rel=self): an archive page's, or with parameters their
        canonical form."""
        if self.archive is not None:
            return self.site.url(archive_path(self.topic.slug, self.archive, extension))
        return feed_url(self.site, self.topic.slug, extension, self.parameters)

    def history(self, extension: str) -> dict[str, str]:
        """RFC 5005 links by relation: the feed points to its newest archive page; each page to
        the feed (current) and to its neighbours."""
        slug, links = self.topic.slug, {}
        older = self.pages - 1 if self.archive is None else self.archive - 1
        if older >= 0:
            links["prev-archive"] = self.site.url(archive_path(slug, older, extension))
        if self.archive is not None:
            links["current"] = self.site.url(feed_path(slug, extension))
            if self.archive + 1 < self.pages:
                links["next-archive"] = self.site.url(
                    archive_path(slug, self.archive + 1, extension)
                )
        return links

    @property
    def page_url(self) -> str:
        """The feed's page for people (the topic page; for a search, its results page): its
        HTML alternate."""
        if self.parameters.query is not None:
            return self.site.url(search_path(self.topic.slug, self.parameters))
        return self.site.url(topic_path(self.topic.slug))

    @property
    def title(self) -> str:
        """A topic's feed says whose it is: "Sport" alone is lost in a reader's list; a search
        feed says what it searches, an archive page which page it is."""
        title = (
            self.topic.title if self.topic.slug == ALL else f"{self.site.title}: {self.topic.title}"
        )
        if self.archive is not None:
            return f"{title} (archive page {self.archive + 1})"
        chosen = self.parameters.describe()
        return f"{title} ({chosen})" if chosen else title

    @property
    def feed_id(self) -> str:
        """Names the items the feed chooses (topic, search, filters), whatever its length."""
        path = _with_query(f"feeds/{self.topic.slug}", replace(self.parameters, limit=None))
        return f"{self.site.tag_prefix}{path}"

    def entry_id(self, item: Item) -> str:
        return entry_id(self.site, item.id, self.topic.slug)

    @property
    def language(self) -> str | None:
        """The one language of every item (an item without one is in the site's); None for a
        feed of several. An empty feed is in the site's language."""
        languages = {item_language(self.site, item).lower(): item for item in self.items}
        if len(languages) > 1:
            return None
        if not languages or self.site.language.lower() in languages:
            return self.site.language  # as the site spells it, however an item did
        return item_language(self.site, next(iter(languages.values())))

    def entry_link(self, item: Item) -> str:
        return item.link or self.site.url(item_path(item.id))


def feed_path(slug: str, extension: str) -> str:
    return f"feeds/{slug}.{extension}"


def topic_slugs(item: Item) -> list[str]:
    """The item's topics, as its entries' categories: not the author and source feeds it is
    filed under (the entry names those itself)."""
    return [slug for slug in item.topics if is_topic(slug)]


def item_path(item_id: str) -> str:
    return f"items/{item_id}.html"


def topic_path(slug: str) -> str:
    """A feed's page: `topics/<slug>.html`; an author's or a source's at `authors/<slug>.html`,
    `sources/<slug>.html` (its key already names its kind)."""
    return f"topics/{slug}.html" if is_topic(slug) else f"{slug}.html"


def archive_path(slug: str, page: int, extension: str) -> str:
    return f"feeds/{slug}/archive/{page}.{extension}"


def feed_url(site: Site, slug: str, extension: str, parameters: FeedParameters = PLAIN) -> str:
    """A feed's URL: with parameters, their canonical form (the feed's rel=self)."""
    return site.url(_with_query(feed_path(slug, extension), parameters))


def search_path(slug: str, parameters: FeedParameters) -> str:
    """The live search page for a search of a topic (`all`: every item)."""
    topic = "" if slug == ALL else f"&topic={slug}"  # sorts after every feed parameter
    return f"{SEARCH}?{parameters.query_string()}{topic}"


def _with_query(path: str, parameters: FeedParameters) -> str:
    query_string = parameters.query_string()
    return f"{path}?{query_string}" if query_string else path


def item_language(site: Site, item: Item) -> str:
    return item.language or site.language


def own_language(site: Site, item: Item, document: str) -> str | None:
    """An entry's language where it differs from its document's (`document`), else None: the
    document's language says it. An Atom feed is in the site's language (its title and
    subtitle are the site's words); a JSON Feed in its items' one language."""
    language = item_language(site, item)
    return None if language.lower() == document.lower() else language


def image_type(image: Image) -> str | None:
    """The picture's media type: as sent, else by its URL's ending, else unknown."""
    if image.type:
        return image.type
    path = image.url.split("?", 1)[0].split("#", 1)[0].lower()
    return next((kind for end, kind in IMAGE_TYPES.items() if path.endswith(end)), None)


def entry_text(item: Item) -> str:
    """An entry's plain text: its summary, or for a headline the headline itself (readers show
    an empty body, and mail just a URL, for an entry without one)."""
    return item.summary or item.title


def update_schedule(max_age: int) -> tuple[int, str, int] | None:
    """RSS `ttl` (minutes) and `sy:updatePeriod` / `sy:updateFrequency` that tell pollers what
    `Cache-Control: max-age` tells caches; None when every request revalidates (max_age 0)."""
    if max_age <= 0:
        return None
    period, seconds = next((p for p in UPDATE_PERIODS if max_age <= p[1]), UPDATE_PERIODS[-1])
    return max(1, max_age // 60), period, max(1, seconds // max_age)


def entry_id(site: Site, item_id: str, slug: str = ALL) -> str:
    """A tag URI (RFC 4151): it never changes, even when base_url does. A topic's feeds give
    the item an id of their own: readers that key entries by id across all their feeds
    (newsboat) would otherwise show an item filed under two topics in only one of them."""
    if slug == ALL:
        return f"{site.tag_prefix}items/{item_id}"
    return f"{site.tag_prefix}feeds/{slug}/items/{item_id}"


class _EntryExtras(BaseEntryExtension):
    """What feedgen cannot write on an entry: rel and type on Atom entry links (feedgen 1.0
    drops them), an Atom entry's xml:lang, and its pictures. feedgen's own media extension
    writes neither media:description nor media:credit, and no enclosure in Atom."""

    def __init__(self) -> None:
        self.links: list[dict[str, str]] = []
        self.language: str | None = None
        self.images: tuple[Image, ...] = ()

    def extend_atom(self, entry):
        elements = [e for e in entry if e.tag in ("link", f"{ATOM_NS}link")]
        for element, link in zip(elements, self.links, strict=True):
            element.attrib.update(link)
        if self.language:
            entry.set(XML_LANG, self.language)
        for image in self.images:
            # Unqualified like feedgen's own Atom elements (the default namespace is Atom's).
            entry.append(Element("link", _enclosure(image, "href")))
        _media(entry, self.images)
        return entry

    def extend_rss(self, item):
        # RSS allows one enclosure an item, and requires its length: the first picture whose
        # byte length is known, if any.
        known = next((i for i in self.images if i.length and image_type(i)), None)
        if known:
            SubElement(item, "enclosure", _enclosure(known, "url"))
        _media(item, self.images)
        return item


def _enclosure(image: Image, href: str) -> dict[str, str]:
    attributes = {href: image.url}
    if href == "href":
        attributes["rel"] = "enclosure"
    kind = image_type(image)
    if kind:
        attributes["type"] = kind
    if image.length:
        attributes["length"] = str(image.length)
    return attributes


def _media(parent, images: Sequence[Image]) -> None:
    """Media RSS: every picture as media:content (medium image, its type and size, caption and
    credit), the first also as media:thumbnail, which Feedly, Inoreader and Flipboard show."""
    for image in images:
        attributes = {"url": image.url, "medium": "image"}
        kind = image_type(image)
        if kind:
            attributes["type"] = kind
        if image.length:
            attributes["fileSize"] = str(image.length)
        attributes |= _size(image)
        content = SubElement(parent, f"{{{MEDIA_NS}}}content", attributes)
        if image.caption:
            description = SubElement(content, f"{{{MEDIA_NS}}}description", type="plain")
            description.text = image.caption
        if image.credit:
            SubElement(content, f"{{{MEDIA_NS}}}credit").text = image.credit
    if images:
        SubElement(parent, f"{{{MEDIA_NS}}}thumbnail", {"url": images[0].url} | _size(images[0]))


def _size(image: Image) -> dict[str, str]:
    size = {"width": image.width, "height": image.height}
    return {key: str(value) for key, value in size.items() if value}


class _Media(BaseExtension):
    """Declares the Media RSS namespace, only on a feed with pictures."""

    def __init__(self) -> None:
        self.used = False

    def extend_ns(self) -> dict[str, str]:
        return {"media": MEDIA_NS} if self.used else {}


class _Syndication(BaseExtension):
    """RSS 1.0 Syndication module, spelled as its spec does (`updatePeriod`): feedgen's own
    extension writes `UpdatePeriod`, which readers and the W3C validator do not know."""

    def __init__(self) -> None:
        self.period: str | None = None
        self.frequency = 0

    def extend_ns(self) -> dict[str, str]:
        return {"sy": SYNDICATION_NS}

    def _extend(self, parent):
        if self.period:
            SubElement(parent, f"{{{SYNDICATION_NS}}}updatePeriod").text = self.period
            SubElement(parent, f"{{{SYNDICATION_NS}}}updateFrequency").text = str(self.frequency)
        return parent

    def extend_rss(self, feed):
        self._extend(feed[0])  # the channel
        return feed

    def extend_atom(self, feed):
        return self._extend(feed)


class _History(BaseExtension):
    """Feed-level elements feedgen cannot write: WebSub hub and RFC 5005 archive links (feedgen
    keeps only self/alternate links in RSS), fh:archive, and RFC 6721 tombstones in Atom."""

    def __init__(self) -> None:
        self.links: list[tuple[str, str]] = []  # (rel, href)
        self.archive = False
        self.tombstones: tuple[Tombstone, ...] = ()

    def extend_ns(self) -> dict[str, str]:
        # Only what the document uses: validators warn of namespaces they do not know.
        used = {"fh": HISTORY_NS} if self.archive else {}
        return used | ({"at": TOMBSTONES_NS} if self.tombstones else {})

    def _elements(self, atom: bool) -> list:
        elements = []
        # feedgen writes Atom's own elements unqualified under a default namespace, and RSS's
        # atom:link qualified; these follow suit.
        tag = "link" if atom else f"{ATOM_NS}link"
        elements.extend(Element(tag, rel=rel, href=href) for rel, href in self.links)
        if self.archive:
            elements.append(Element(f"{{{HISTORY_NS}}}archive"))
        for stone in self.tombstones if atom else ():
            element = Element(
                f"{{{TOMBSTONES_NS}}}deleted-entry", ref=stone.ref, when=stone.when.isoformat()
            )
            if stone.comment:
                SubElement(element, f"{{{TOMBSTONES_NS}}}comment").text = stone.comment
            elements.append(element)
        return elements

    def _insert(self, parent, atom: bool) -> None:
        # Before the first entry: RFC 4287 puts a feed's own elements ahead of its entries.
        tags = ("entry", f"{ATOM_NS}entry") if atom else ("item",)
        position = next((i for i, child in enumerate(parent) if child.tag in tags), len(parent))
        for offset, element in enumerate(self._elements(atom)):
            parent.insert(position + offset, element)

    def extend_rss(self, feed):
        self._insert(feed[0], atom=False)  # the channel
        return feed

    def extend_atom(self, feed):
        self._insert(feed, atom=True)
        return feed


def _feedgen(feed: Feed, self_extension: str) -> FeedGenerator:
    site, generator = feed.site, FeedGenerator()
    generator.load_extension("dc", atom=False, rss=True)  # RSS <author> needs an email: dc:creator
    generator.register_extension("sy", _Syndication, atom=True, rss=True)
    generator.id(feed.feed_id)
    generator.title(feed.title)
    generator.description(feed.topic.description)  # RSS description and Atom subtitle
    generator.author({"name": site.author})
    # The RSS channel <link> is the last link added: rel=self first, the alternate last.
    generator.link(
        href=feed.url(self_extension), rel="self", type=FORMATS[self_extension].media_type
    )
    generator.link(href=feed.page_url, rel="alternate", type="text/html")
    language = feed.language  # None: the items are in several
    if self_extension == "atom":
        generator.language(site.language)  # xml:lang; an entry in another language says so
    elif language:
        # RSS has only the channel's language (optional): a feed of several says none, and
        # each item says its own in dc:language.
        generator.language(language)
    generator.generator(GENERATOR, version=__version__, uri=GENERATOR_URI)
    generator.docs(RSS_DOCS)
    generator.updated(feed.updated)  # also lastBuildDate; feedgen's default is "now"
    schedule = update_schedule(site.max_age)
    if schedule and feed.archive is None:  # an archive page does not change: nothing to poll
        generator.ttl(schedule[0])
        generator.sy.period, generator.sy.frequency = schedule[1:]
    generator.register_extension("history", _History, atom=True, rss=True)
    history = generator.history
    history.links = [("hub", hub) for hub in site.hubs]
    history.links += sorted(feed.history(self_extension).items())
    history.archive = feed.archive is not None
    history.tombstones = feed.tombstones if self_extension == "atom" else ()  # RSS drops them
    generator.register_extension("media", _Media, atom=True, rss=True)
    generator.media.used = any(item.images for item in feed.items)
    for item in feed.items:
        _entry(generator, feed, item, self_extension == "rss", language)
    return generator


def _entry(
    generator: FeedGenerator, feed: Feed, item: Item, rss: bool, language: str | None
) -> None:
    entry = generator.add_entry(order="append")  # feedgen prepends by default
    entry.register_extension("extras", _EntryExtras, atom=True, rss=True)
    entry.id(feed.entry_id(item))
    entry.guid(feed.entry_id(item), permalink=False)  # a tag URI is not a URL to open
    entry.title(item.title)
    link = {"href": feed.entry_link(item), "rel": "alternate", "type": "text/html"}
    entry.link(**link)
    entry.extras.links = [link]
    entry.extras.language = None if rss else own_language(feed.site, item, feed.site.language)
    entry.extras.images = item.images
    entry.published(item.published)
    entry.updated(item.updated)
    if item.author:
        entry.author({"name": item.author})
        entry.dc.dc_creator(item.author)
    if rss and language is None:  # no channel language: each item says its own
        entry.dc.dc_language(item_language(feed.site, item))
    # Atom summary is type="text"; RSS description is read as HTML by readers (RSS Best
    # Practices Profile), so there the plain text goes in escaped: "<b>" shows as "<b>".
    text = entry_text(item)
    entry.summary(html.escape(text, quote=False) if rss else text)
    if item.content:
        # Atom: content type="html"; RSS: content:encoded beside the plain description, the
        # field Feedly, NetNewsWire, Miniflux and Thunderbird show as the full story.
        entry.content(item.content, type="html")
    for slug in topic_slugs(item):
        entry.category(term=slug)


def write_rss(feed: Feed) -> bytes:
    generator = _feedgen(feed, "rss")
    with _SETLOCALE_LOCK:
        return plain_text_references(generator.rss_str(pretty=True))


# lxml escapes & and < as &amp; and &lt;. The RSS Best Practices Profile, and the W3C
# validator's advice (its CharacterData and "contains HTML" messages), want plain-text elements
# to use hexadecimal references, which no reader mistakes for HTML: a title "Yields<Bunds" or
# "R&amp;D" as words stays text. An XML parser reads both forms as the same character. Elements
# holding escaped HTML (RSS description and content:encoded, Atom content) keep lxml's form.
# An element holding only text, with an `&` in it (the only ones to rewrite: `<` in text is
# always written `&lt;`); matching the `&` early keeps the pass quick on feeds without any.
_TEXT_ELEMENT = re.compile(rb"<([\w:.-]+)((?:\s[^>]*)?)>([^<&]*&[^<]*)</\1>")
_HTML_ELEMENTS = frozenset((b"description", b"content:encoded", b"content"))
_ESCAPE = re.compile(rb"&amp;|&lt;")
_REFERENCES = {b"&amp;": b"&#x26;", b"&lt;": b"&#x3C;"}


def plain_text_references(document: bytes) -> bytes:
    """`document` with `&amp;` and `&lt;` in plain-text elements as `&#x26;` and `&#x3C;`."""
    return _TEXT_ELEMENT.sub(_text_references, document)


def _text_references(match: re.Match[bytes]) -> bytes:
    tag, attributes, text = match.groups()
    if tag in _HTML_ELEMENTS:
        return match.group()
    text = _ESCAPE.sub(lambda m: _REFERENCES[m.group()], text)
    return b"<%s%s>%s</%s>" % (tag, attributes, text, tag)


def write_atom(feed: Feed) -> bytes:
    return plain_text_references(_feedgen(feed, "atom").atom_str(pretty=True))


def write_json(feed: Feed) -> bytes:
    """JSON Feed 1.1 (feedgen has no writer for it)."""
    site = feed.site
    language = feed.language or site.language  # an item in another says its own
    document: dict[str, object] = {
        "version": JSON_FEED_VERSION,
        "title": feed.title,
        "home_page_url": feed.page_url,
        "feed_url": feed.url("json"),
        "description": feed.topic.description,
        "language": language,
        "authors": [{"name": site.author}],
    }
    older = feed.history("json").get("prev-archive")
    if older:
        document["next_url"] = older  # JSON Feed pages towards older items
    if site.hubs:
        document["hubs"] = [{"type": "WebSub", "url": hub} for hub in site.hubs]
    document["items"] = [_json_item(feed, item, language) for item in feed.items]
    return (pretty_json(document) + "\n").encode("utf-8")


_STRING = json.encoder.encode_basestring  # ensure_ascii=False's, in C


def pretty_json(value: object) -> str:
    """`json.dumps(value, ensure_ascii=False, indent=2)`, the same text, several times faster:
    with an indent, json's encoder is pure Python (most of a JSON Feed's render time)."""
    parts: list[str] = []
    _pretty(value, "\n", parts)
    return "".join(parts)


def _pretty(value: object, newline: str, parts: list[str]) -> None:
    """Appends `value` at the depth `newline` indents to (a newline, 2 spaces a level)."""
    if isinstance(value, str):
        parts.append(_STRING(value))
    elif isinstance(value, dict) and value:
        inner = newline + "  "
        separator = "{" + inner
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"keys must be str, not {type(key).__name__}")
            parts.append(separator + _STRING(key) + ": ")
            _pretty(item, inner, parts)
            separator = "," + inner
        parts.append(newline + "}")
    elif isinstance(value, list | tuple) and value:
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            parts.append(separator)
            _pretty(item, inner, parts)
            separator = "," + inner
        parts.append(newline + "]")
    else:  # numbers, true, false, null, empty ones
        parts.append(json.dumps(value, ensure_ascii=False))


def _json_item(feed: Feed, item: Item, language: str) -> dict[str, object]:
    entry: dict[str, object] = {
        "id": feed.entry_id(item),
        "url": feed.entry_link(item),
        "title": item.title,
    }
    if item.content:
        entry["content_html"] = item.content
    else:
        entry["content_text"] = entry_text(item)  # 1.1: one of the two is required
    if item.summary:
        entry["summary"] = item.summary
    entry["date_published"] = item.published.isoformat() if item.published else None
    entry["date_modified"] = item.updated.isoformat() if item.updated else None
    if item.author:
        entry["authors"] = [{"name": item.author}]
    if topic_slugs(item):
        entry["tags"] = topic_slugs(item)
    entry["language"] = own_language(feed.site, item, language)
    if item.images:
        entry["image"] = item.images[0].url
        # JSON Feed requires an attachment's mime_type: a picture of unknown type has none.
        entry["attachments"] = [_attachment(i) for i in item.images if image_type(i)] or None
    return {key: value for key, value in entry.items() if value is not None}


def _attachment(image: Image) -> dict[str, object]:
    attachment: dict[str, object] = {"url": image.url, "mime_type": image_type(image)}
    if image.caption:
        attachment["title"] = image.caption
    if image.length:
        attachment["size_in_bytes"] = image.length
    return attachment


@dataclass(frozen=True, slots=True)
class Format:
    """One feed format: its file extension, media type and writer."""

    extension: str
    media_type: str
    write: Callable[[Feed], bytes]
    label: str

    @property
    def content_type(self) -> str:
        return f"{self.media_type}; charset=utf-8"


FORMATS: dict[str, Format] = {
    "rss": Format("rss", "application/rss+xml", write_rss, "RSS"),
    "atom": Format("atom", "application/atom+xml", write_atom, "Atom"),
    "json": Format("json", "application/feed+json", write_json, "JSON Feed"),
}


def render_feed(feed: Feed, extension: str) -> bytes:
    return FORMATS[extension].write(feed)


def load_feed(
    store: Store,
    catalog: Catalog,
    topic: Topic,
    limit: int | None = None,
    parameters: FeedParameters = PLAIN,
    since: datetime | None = None,
) -> Feed:
    """A topic's feed as the store holds it now: its newest `limit` items (else the
    parameters' limit, else the site's), those of a search or filters when `parameters` has
    them (`since`: the `filter_time` cut-off, `query.cut_off`). The topic's own feed links its
    archive and carries the tombstones of items withdrawn lately; a search feed has neither."""
    site = catalog.site
    size = limit or parameters.limit or site.entries_per_feed
    if parameters.filters():
        items = store.search(topic.slug, parameters, size, since)
        return Feed(site, topic, items, feed_updated(store, items), parameters=parameters)
    items = store.newest(topic.slug, size)
    stones = tombstones(store, site, topic.slug)
    updated = max([feed_updated(store, items), *(stone.when for stone in stones)])
    pages = store.archive_pages(topic.slug, site.page_size)
    return Feed(site, topic, items, updated, pages, tombstones=stones, parameters=parameters)


def load_archive(store: Store, catalog: Catalog, topic: Topic, page: int) -> Feed | None:
    """Archive page `page` of a topic (None if it is not a full page yet)."""
    size = catalog.site.page_size
    pages = store.archive_pages(topic.slug, size)
    if not 0 <= page < pages:
        return None
    items = store.archive_page(topic.slug, page, size)
    return Feed(catalog.site, topic, items, feed_updated(store, items), pages, archive=page)


def tombstones(store: Store, site: Site, slug: str) -> tuple[Tombstone, ...]:
    """Items of this topic withdrawn within `tombstone_days` of the store's newest change (not
    of "now": the same store gives the same feed)."""
    kills = store.killed() if site.tombstone_days else []
    if not kills:
        return ()
    newest = max(kills[0][1], store.last_updated() or EPOCH)
    cutoff = newest - timedelta(days=site.tombstone_days)
    return tuple(
        Tombstone(entry_id(site, item_id, slug), when, reason)
        for item_id, when, reason, topics in kills
        if when >= cutoff and (slug == ALL or slug in topics)
    )


def feed_updated(store: Store, items: Sequence[Item]) -> datetime:
    """The newest `updated` among the items; for an empty feed, the store's newest change (or
    the epoch for an empty store), so even an empty feed has a stable date."""
    dates = [item.updated for item in items if item.updated]
    if dates:
        return max(dates)
    return store.last_updated() or EPOCH
