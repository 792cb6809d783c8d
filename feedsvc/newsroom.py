"""What the newsroom formats (NewsML-G2, NITF, ninjs) share: each parser gathers a `Story` of
raw strings, and `to_item` applies the rules once (identity from the guid, version, status,
dates, language, IPTC subject codes, sanitised body, correction note, pictures)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .errors import DocumentError
from .jsonlines import FIRST_YEAR, LAST_YEAR, Fail, check_link, parse_date
from .model import (
    CANCELED,
    STATUSES,
    USABLE,
    Image,
    Item,
    clean_text,
    first_paragraph,
    guid_id,
    paragraphs_html,
    with_correction,
)
from .sanitize import clean_html

MEDTOP, SUBJ = "medtop", "subj"
_CODE = re.compile(r"(medtop|subj):(\d{8})")
# IPTC's vocabularies as URIs (ninjs), reduced to the qcode form: .../mediatopic/04000000.
_CODE_URI = re.compile(
    r"https?://cv\.iptc\.org/newscodes/(mediatopic|subjectcode)/(\d{8})/?", re.IGNORECASE
)
_SCHEMES = {"mediatopic": MEDTOP, "subjectcode": SUBJ}
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
_SPACES = re.compile(r"\s+")
# `stat:canceled`, and the spellings seen in the wild (NITF's management-status, ninjs 1.0).
_STATUS_ALIASES = {"cancelled": CANCELED, "embargoed": USABLE}
MAX_VERSION = 2**62  # stored as a 64-bit integer later


@dataclass(slots=True)
class Story:
    """One item as a format states it: strings as found (None when absent), `where` the line
    that gave it (for errors)."""

    guid: str | None = None
    line: int | None = None
    version: str | None = None
    title: str | None = None
    body_html: str | None = None  # markup, cleaned here
    body_text: str | None = None  # plain text: one paragraph per blank-line-separated block
    summary: str | None = None
    author: str | None = None
    source: str | None = None
    dateline: str | None = None
    link: str | None = None
    published: str | None = None
    updated: str | None = None
    embargo: str | None = None
    status: str | None = None
    language: str | None = None
    subjects: list[str] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    ednotes: list[str] = field(default_factory=list)
    corrected: bool = False
    correction_note: str | None = None


def subject_code(value: str | None) -> str | None:
    """`medtop:NNNNNNNN` or `subj:NNNNNNNN` from a qcode or an IPTC URI; None for any other
    vocabulary (people, places, a provider's own codes are not filed on)."""
    if not value:
        return None
    value = value.strip()
    found = _CODE.fullmatch(value)
    if found:
        return value
    found = _CODE_URI.fullmatch(value)
    if found:
        return f"{_SCHEMES[found[1].lower()]}:{found[2]}"
    return None


def text(value: str | None) -> str | None:
    """A plain-text field: control characters removed, spaces collapsed."""
    if value is None:
        return None
    cleaned = _SPACES.sub(" ", clean_text(value)).strip()
    return cleaned or None


def plain_paragraphs(value: str) -> str | None:
    """Plain text as HTML: blank lines separate paragraphs (single line ends join lines)."""
    blocks = [text(block) for block in re.split(r"\n\s*\n", clean_text(value))]
    kept = [block for block in blocks if block]
    return paragraphs_html(kept) if kept else None


def to_item(story: Story, name: str) -> Item:
    """The `Item` a story makes, or a one-line `DocumentError` naming `name` and the line."""

    def fail(message: str) -> DocumentError:
        return DocumentError(message, name, story.line)

    guid = text(story.guid)
    if not guid:
        raise fail("no guid: a newsroom item needs its provider's identifier")
    title = text(story.title)
    if not title:
        raise fail(f"item {guid!r} has no headline")
    content = None
    if story.body_html:
        content = clean_html(story.body_html).strip() or None
    if content is None and story.body_text:
        content = plain_paragraphs(story.body_text)
    correction = None
    if story.corrected or story.correction_note:
        correction = text(story.correction_note) or ""
    summary = text(story.summary) or (first_paragraph(content) if content else None)
    return Item(
        id=guid_id(guid),
        title=title,
        content=with_correction(content, correction),
        summary=summary,
        author=text(story.author),
        source=text(story.source),
        link=check_link(text(story.link), fail),
        published=_date(story.published, "first created", fail),
        updated=_date(story.updated, "version created", fail),
        guid=guid,
        version=_version(story.version, fail),
        status=_status(story.status, fail),
        embargo=_date(story.embargo, "embargo", fail),
        language=_language(story.language, fail),
        subjects=tuple(dict.fromkeys(c for c in map(subject_code, story.subjects) if c)),
        images=tuple(_images(story.images, fail)),
        ednote=text(" ".join(note for note in map(text, story.ednotes) if note)),
        correction=correction,
        dateline=text(story.dateline),
    )


def _date(value: str | None, key: str, fail: Fail) -> datetime | None:
    """An ISO 8601 date with its offset; the common form is read without dateutil (ten times
    faster), any other goes through the JSON Lines rules and their messages."""
    value = text(value)
    try:
        parsed = datetime.fromisoformat(value) if value else None
    except ValueError:
        parsed = None
    zoned = parsed is not None and parsed.utcoffset() is not None
    if zoned and FIRST_YEAR <= parsed.astimezone(UTC).year <= LAST_YEAR:
        return parsed
    return parse_date(value, key, fail)


def _version(value: str | None, fail: Fail) -> int | None:
    value = text(value)
    if value is None:
        return None
    if not value.isdigit() or not 0 <= int(value) < MAX_VERSION:
        raise fail(f"version must be a whole number: {value[:40]!r}")
    return int(value)


def _status(value: str | None, fail: Fail) -> str:
    value = (text(value) or USABLE).lower().removeprefix("stat:")
    value = _STATUS_ALIASES.get(value, value)
    if value not in STATUSES:
        raise fail(f"unknown publication status {value[:40]!r} (known: {', '.join(STATUSES)})")
    return value


def _language(value: str | None, fail: Fail) -> str | None:
    value = text(value)
    if value is None:
        return None
    if not _LANGUAGE.fullmatch(value):
        raise fail(f"language must be a BCP 47 tag such as en or en-GB: {value[:40]!r}")
    return value


def _images(images: list[Image], fail: Fail) -> list[Image]:
    kept: dict[str, Image] = {}
    for image in images:
        url = check_link(text(image.url), fail)
        if url and url not in kept:
            kept[url] = Image(
                url,
                text(image.type),
                image.width,
                image.height,
                text(image.caption),
                text(image.credit),
                image.length,
            )
    return list(kept.values())
