"""JSON Lines documents: one item object per line, with the `Item` field names."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

from dateutil import parser as dateparser

from .errors import DocumentError
from .model import LINE_END, Item, clean_text, first_paragraph
from .sanitize import clean_html

FIELDS = frozenset(
    ("id", "title", "content", "summary", "author", "source", "link", "published", "updated")
) | {"topics"}
TEXT_FIELDS = ("title", "content", "summary", "author", "source")
# Ids end up in URLs and file names (/items/<id>.html): keep them to a safe alphabet.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
SLUG_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
Fail = Callable[[str], DocumentError]
_NO_DEFAULT = datetime(2000, 1, 1)  # dateutil fills missing parts from this, never from "now"


def parse_jsonl(text: str, name: str) -> list[Item]:
    """Items of a JSON Lines document; any bad line rejects the whole document."""
    items = []
    for number, line in enumerate(LINE_END.split(text.removeprefix("\ufeff")), start=1):
        if line.strip():
            items.append(_item(line, name, number))
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
        raise fail(f"'id' must be 1-128 letters, digits, '.', '_' or '-': {record['id']!r}")
    text = {key: _text(record.get(key), key, fail) for key in TEXT_FIELDS}
    content = clean_html(text["content"]) if text["content"] else None
    return Item(
        id=record["id"],
        title=text["title"] or "",
        content=content,
        summary=text["summary"] or (first_paragraph(content) if content else None),
        author=text["author"],
        source=text["source"],
        link=_link(record.get("link"), fail),
        published=_date(record.get("published"), "published", fail),
        updated=_date(record.get("updated"), "updated", fail),
        topics=_topics(record.get("topics"), fail),
    )


def _text(value: object, key: str, fail: Fail) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"{key!r} must be a string or null")
    cleaned = clean_text(value).strip()
    return cleaned or None


def _link(value: object, fail: Fail) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail("'link' must be a string or null")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or clean_text(value) != value:
        raise fail(f"'link' must be an absolute http(s) URL: {value!r}")
    return value


def _date(value: object, key: str, fail: Fail) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise fail(f"{key!r} must be a date string or null")
    try:
        parsed = dateparser.parse(value, default=_NO_DEFAULT)
    except (ValueError, OverflowError):
        raise fail(f"{key!r} is not a date: {value!r}") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise fail(f"{key!r} needs a timezone (e.g. 2026-11-25T09:30:00Z): {value!r}")
    return parsed


def _topics(value: object, fail: Fail) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(slug, str) for slug in value):
        raise fail("'topics' must be a list of topic slugs")
    for slug in value:
        if not SLUG_PATTERN.fullmatch(slug):
            raise fail(f"bad topic slug {slug!r}")
    return tuple(dict.fromkeys(value))
