"""The plain data passed between layers (`Item`, `Topic`, `Site`) and the text rules; no I/O."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from .errors import CatalogError

# XML 1.0 allows tab, LF, CR and everything from U+0020 except surrogates and U+FFFE/U+FFFF.
# C1 controls (U+0080-U+009F) are allowed by XML but are control characters: dropped too.
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
LINE_END = re.compile(r"\r\n|\r|\n")  # not str.splitlines: U+2028 is not a line end
_WHITESPACE = re.compile(r"\s+")
_TAG = re.compile(r"<[^>]*>")
_BLOCK_END = re.compile(r"</(?:p|div|li|h[1-6]|blockquote|pre)\s*>|<br\s*/?>", re.IGNORECASE)

NO_BASE_URL = (
    "no base URL: feeds link with absolute URLs, so give the site's public address "
    "(--base-url URL, FEEDSVC_BASE_URL, or base_url in site.toml)"
)
ID_LENGTH = 16  # hex digits: 64 bits; lowercase, so ids are safe as file names on any disk
# Any item id (wire ids and the ids JSON Lines give): they end up in URLs and file names
# (/items/<id>.html), so they keep to a safe alphabet.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def clean_text(text: str) -> str:
    """Remove the characters XML 1.0 cannot carry, so every feed serialises."""
    return _NOT_XML_CHARS.sub("", text)


def normalise_title(title: str) -> str:
    """The form of a title that decides identity: NFC, case-folded, inner spaces collapsed."""
    folded = unicodedata.normalize("NFC", title).casefold()
    return " ".join(unicodedata.normalize("NFC", folded).split())


def item_id(title: str) -> str:
    """A short, URL-safe, opaque id: the same headline gives the same id everywhere."""
    return hashlib.sha256(normalise_title(title).encode("utf-8")).hexdigest()[:ID_LENGTH]


GUID_ID_PREFIX = "guid\0"  # keeps guid ids apart from title ids, whatever a headline says


def guid_id(guid: str) -> str:
    """The feedsvc id of a provider's item: its guid hashed (guids are URIs, often long, with
    characters ids may not hold); one guid gives one id everywhere, whatever its versions."""
    return hashlib.sha256((GUID_ID_PREFIX + guid).encode("utf-8")).hexdigest()[:ID_LENGTH]


def paragraphs_html(paragraphs: list[str]) -> str:
    """One escaped `<p>` per paragraph."""
    return "\n".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)


CORRECTION_LABEL = "Correction:"


def with_correction(content: str | None, note: str | None) -> str | None:
    """An item's content with a visible correction note after it (item pages and feed entries
    show the content, so readers see what was corrected)."""
    if not note:
        return content
    text = html.escape(note.removeprefix(CORRECTION_LABEL).strip(), quote=False)
    corrected = f'<p class="correction"><strong>{CORRECTION_LABEL}</strong> {text}</p>'
    return f"{content}\n{corrected}" if content else corrected


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment, for topic filing and summaries."""
    spaced = _BLOCK_END.sub("\n", fragment)
    return html.unescape(_TAG.sub("", spaced))


def body_text(content: str | None, summary: str | None) -> str:
    """An item's text besides its title: the content as plain text, else the summary."""
    return html_to_text(content) if content else summary or ""


def first_paragraph(fragment: str) -> str | None:
    """The first non-empty paragraph of an HTML fragment, as plain text."""
    for line in html_to_text(fragment).split("\n"):
        text = _WHITESPACE.sub(" ", line).strip()
        if text:
            return text
    return None


USABLE, WITHHELD, CANCELED = "usable", "withheld", "canceled"  # IPTC publication status
STATUSES = (USABLE, WITHHELD, CANCELED)


@dataclass(frozen=True, slots=True)
class Image:
    """A picture a text item links to (linked, never fetched)."""

    url: str
    type: str | None = None  # media type, e.g. image/jpeg
    width: int | None = None
    height: int | None = None
    caption: str | None = None
    credit: str | None = None
    length: int | None = None  # bytes: an RSS enclosure needs it, so only then is there one

    def as_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "type": self.type,
            "width": self.width,
            "height": self.height,
            "caption": self.caption,
            "credit": self.credit,
            "length": self.length,
        }


@dataclass(frozen=True, slots=True)
class Item:
    """A news item: a headline (no content) or an article."""

    id: str
    title: str
    content: str | None = None
    summary: str | None = None
    author: str | None = None
    source: str | None = None
    link: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    topics: tuple[str, ...] = ()
    # From the newsroom formats (NewsML-G2, NITF, ninjs); wire and JSON Lines items keep these
    # defaults. `correction`: None, not a correction; "" a correction without a note for
    # readers; else that note. `ednote` is for editors only: never published.
    guid: str | None = None
    version: int | None = None
    status: str = USABLE
    embargo: datetime | None = None
    language: str | None = None  # BCP 47
    subjects: tuple[str, ...] = ()  # IPTC codes: medtop:NNNNNNNN, subj:NNNNNNNN
    images: tuple[Image, ...] = ()
    ednote: str | None = None
    correction: str | None = None
    dateline: str | None = None  # "PARIS, Nov 20", the place (and day) the story is filed from

    def __reduce__(self) -> tuple[type[Item], tuple[object, ...]]:
        # Pickled as its fields, not a state dict: ingest workers send every item back.
        return Item, (
            self.id,
            self.title,
            self.content,
            self.summary,
            self.author,
            self.source,
            self.link,
            self.published,
            self.updated,
            self.topics,
            self.guid,
            self.version,
            self.status,
            self.embargo,
            self.language,
            self.subjects,
            self.images,
            self.ednote,
            self.correction,
            self.dateline,
        )

    def body_text(self) -> str:
        """The text that topic rules look at besides the title."""
        return body_text(self.content, self.summary)

    def as_dict(self) -> dict[str, object]:
        """The JSON form: the Item field names, dates in ISO 8601."""
        return {
            "id": self.id,
            "title": self.title,
            "content": self.content,
            "summary": self.summary,
            "author": self.author,
            "source": self.source,
            "link": self.link,
            "published": self.published.isoformat() if self.published else None,
            "updated": self.updated.isoformat() if self.updated else None,
            "topics": list(self.topics),
        }

    def newsroom_dict(self) -> dict[str, object]:
        """The fields the newsroom formats add (`feedsvc parse --json` shows them)."""
        return {
            "guid": self.guid,
            "version": self.version,
            "status": self.status,
            "embargo": self.embargo.isoformat() if self.embargo else None,
            "language": self.language,
            "subjects": list(self.subjects),
            "images": [image.as_dict() for image in self.images],
            "ednote": self.ednote,
            "correction": self.correction,
            "dateline": self.dateline,
        }


@dataclass(frozen=True, slots=True)
class Topic:
    """A feed: a slug, words for people, and the rules that file items under it."""

    slug: str
    title: str
    description: str
    match: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    subjects: tuple[str, ...] = ()  # IPTC codes that file an item here exactly


@dataclass(frozen=True, slots=True)
class Site:
    """Site-wide settings from `feeds/site.toml`."""

    title: str
    description: str
    author: str
    base_url: str | None = None  # absolute, ends in '/'; None: not given (serve supplies one)
    language: str = "en"
    entries_per_feed: int = 50
    max_age: int = 300
    tag_prefix: str = "tag:feedsvc.example,2026:"
    archive_page_size: int = 0  # items per archive page (RFC 5005); 0: entries_per_feed
    hubs: tuple[str, ...] = ()  # WebSub hubs told of every change
    tombstone_days: int = 7  # how long Atom feeds say an item was withdrawn (RFC 6721)
    # A feed and a page per author (feeds/authors/<slug>.*), per source (feeds/sources/...).
    # Out of the repr, which a build's signature holds: the catalogue's digest tells them.
    author_feeds: bool = field(default=False, repr=False)
    source_feeds: bool = field(default=False, repr=False)

    @property
    def page_size(self) -> int:
        """Items per archive page: at most a feed's worth, so the feed holds all the newer."""
        size = self.archive_page_size or self.entries_per_feed
        return max(1, min(size, self.entries_per_feed))

    def url(self, path: str) -> str:
        """An absolute URL for a site path such as `feeds/all.rss`."""
        if self.base_url is None:
            raise CatalogError(NO_BASE_URL)
        return self.base_url + path.lstrip("/")
