"""JSON Lines documents: one item object per line, with the `Item` field names."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from dateutil import parser as dateparser

from .errors import DocumentError
from .model import (
    ID_PATTERN,
    LINE_END,
    Image,
    Item,
    clean_text,
    first_paragraph,
    with_correction,
)
from .sanitize import clean_html

FIELDS = frozenset(
    ("id", "title", "content", "summary", "author", "source", "link", "published", "updated")
) | {"topics", "correction", "images", "language"}
TEXT_FIELDS = ("title", "content", "summary", "author", "source", "correction")
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
Fail = Callable[[str], DocumentError]
_NO_DEFAULT = datetime(2000, 1, 1)  # dateutil fills missing parts from this, never from "now"
# Dates every feed format, reader and datetime can carry (in UTC, whatever the offset given).
FIRST_YEAR, LAST_YEAR = 1900, 9998
# Characters RFC 3986 never allows in a URI (spaces, quotes, angle brackets...): a link with one
# would be invalid in every feed format, and is a markup injection attempt as often as not.
_NOT_IN_URI = re.compile(r'[\s"<>\\^`{|}]')
LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")  # BCP 47, loosely
IMAGE_FIELDS = ("url", "type", "width", "height", "caption", "credit", "length")
MAX_IMAGES = 20  # pictures an item links: enough for a gallery, not a flood in every entry
# A media type as RFC 6838 spells one (no parameters): written into attributes and JSON as is.
_MEDIA_NAME = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
_MEDIA_TYPE = re.compile(f"{_MEDIA_NAME}/{_MEDIA_NAME}")
MAX_PIXELS = 100_000  # a side in pixels; beyond it a number is a mistake
MAX_LENGTH = 2**53 - 1  # bytes; JSON numbers are exact up to here


def _shown(value: str, limit: int = 40) -> str:
    """A value quoted in an error message, cut short: errors are one short line."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def parse_jsonl(text: str, name: str) -> list[Item]:
    """Items of a JSON Lines document; any bad line rejects the whole document."""
    items = []
    first_line: dict[str, int] = {}  # id -> the line that gave it
    for number, line in enumerate(LINE_END.split(text.removeprefix("\ufeff")), start=1):
        if line.strip():
            item = _item(line, name, number)
            earlier = first_line.setdefault(item.id, number)
            if earlier != number:  # which one was meant is the sender's call, not ours
                raise DocumentError(
                    f"id {_shown(item.id)} is also on line {earlier}: ids are unique in a document",
                    name,
                    number,
                )
            items.append(item)
    return items


def _item(line: str, name: str, number: int) -> Item:
    def fail(message: str) -> DocumentError:
        return DocumentError(message, name, number)

    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise fail(f"not valid JSON: {error.msg} (column {error.colno})") from None
    if not isinstance(record, dict):
        raise fail("a line must hold a JSON object")
    unknown = sorted(set(record) - FIELDS)
    if unknown:
        raise fail(f"unknown field {unknown[0]!r} (fields: {', '.join(sorted(FIELDS))})")
    for required in ("id", "title"):
        if not isinstance(record.get(required), str) or not record[required].strip():
            raise fail(f"{required!r} is required and must be a non-empty string")
    if not ID_PATTERN.fullmatch(record["id"]):
        raise fail(f"'id' must be 1-128 letters, digits, '.', '_' or '-': {_shown(record['id'])}")
    text = {key: _text(record.get(key), key, fail) for key in TEXT_FIELDS}
    if not text["title"]:
        raise fail("'title' holds nothing printable")
    content = (clean_html(text["content"]) or None) if text["content"] else None
    return Item(
        id=record["id"],
        title=text["title"],
        content=with_correction(content, text["correction"]),
        summary=text["summary"] or (first_paragraph(content) if content else None),
        author=text["author"],
        source=text["source"],
        link=check_link(record.get("link"), fail),
        published=parse_date(record.get("published"), "published", fail),
        updated=parse_date(record.get("updated"), "updated", fail),
        topics=_topics(record.get("topics"), fail),
        images=_images(record.get("images"), fail),
        language=_language(record.get("language"), fail),
    )


def _text(value: object, key: str, fail: Fail) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"{key!r} must be a string or null")
    cleaned = clean_text(value).strip()
    return cleaned or None


def check_link(value: object, fail: Fail, key: str = "link") -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"{key!r} must be a string or null")
    try:
        parts = urlsplit(value)
        valid = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        valid = False
    if not valid or clean_text(value) != value or _NOT_IN_URI.search(value):
        raise fail(f"{key!r} must be an absolute http(s) URL: {_shown(value)}")
    return value


def parse_date(value: object, key: str, fail: Fail) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"{key!r} must be a date string or null")
    try:
        parsed = dateparser.parse(value, default=_NO_DEFAULT)
        zoned = parsed.tzinfo is not None and parsed.utcoffset() is not None
        year = parsed.astimezone(UTC).year if zoned else None
    except (ValueError, OverflowError):  # no date, or an offset of a day or more
        raise fail(f"{key!r} is not a date: {_shown(value)}") from None
    if year is None:
        raise fail(f"{key!r} needs a timezone (e.g. 2026-11-25T09:30:00Z): {_shown(value)}")
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise fail(f"{key!r} must be between {FIRST_YEAR} and {LAST_YEAR}: {_shown(value)}")
    return parsed


def _topics(value: object, fail: Fail) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(slug, str) for slug in value):
        raise fail("'topics' must be a list of topic slugs")
    for slug in value:
        if not SLUG_PATTERN.fullmatch(slug):
            raise fail(f"bad topic slug {_shown(slug)}")
    return tuple(dict.fromkeys(value))


def _language(value: object, fail: Fail) -> str | None:
    """`language`: the item's BCP 47 tag (en, de-CH) when it is not the site's."""
    if value is None:
        return None
    if not isinstance(value, str) or not LANGUAGE_TAG.fullmatch(value):
        raise fail(f"'language' must be a BCP 47 tag such as en or de-CH: {_shown(str(value))}")
    return value


def _images(value: object, fail: Fail) -> tuple[Image, ...]:
    """`images`: a list of pictures the item links (never fetched); only `url` is required."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise fail("'images' must be a list of objects with a 'url'")
    if len(value) > MAX_IMAGES:
        raise fail(f"'images' holds {len(value)} pictures: at most {MAX_IMAGES}")
    images: dict[str, Image] = {}  # by URL: the same picture twice is one picture
    for index, record in enumerate(value):
        image = _image(record, f"images[{index}]", fail)
        images.setdefault(image.url, image)
    return tuple(images.values())


def _image(record: object, where: str, fail: Fail) -> Image:
    if not isinstance(record, dict):
        raise fail(f"{where!r} must be an object with a 'url'")
    unknown = sorted(set(record) - set(IMAGE_FIELDS))
    if unknown:
        raise fail(f"unknown field {where}.{unknown[0]} (fields: {', '.join(IMAGE_FIELDS)})")
    if record.get("url") is None:
        raise fail(f"'{where}.url' is required")
    url = check_link(record["url"], fail, f"{where}.url")
    media_type = _text(record.get("type"), f"{where}.type", fail)
    if media_type is not None and not _MEDIA_TYPE.fullmatch(media_type):
        raise fail(f"'{where}.type' must be a media type such as image/jpeg: {_shown(media_type)}")
    return Image(
        url=url or "",
        type=media_type.lower() if media_type else None,
        width=_count(record.get("width"), f"{where}.width", MAX_PIXELS, fail),
        height=_count(record.get("height"), f"{where}.height", MAX_PIXELS, fail),
        caption=_text(record.get("caption"), f"{where}.caption", fail),
        credit=_text(record.get("credit"), f"{where}.credit", fail),
        length=_count(record.get("length"), f"{where}.length", MAX_LENGTH, fail),
    )


def _count(value: object, key: str, most: int, fail: Fail) -> int | None:
    """A positive whole number (pixels, bytes) or null; 1.0 is not taken for 1, nor "1"."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise fail(f"{key!r} must be a whole number from 1 to {most} or null: {_shown(str(value))}")
    return value
