"""Checks the test suite runs on the feeds feedsvc writes (no tests in here).

Atom 1.0: the RELAX NG schema of RFC 4287 Appendix B (tests/data/atom.rng), plus the two
Schematron rules that appendix embeds as annotations, which RELAX NG validators skip.

JSON Feed 1.1: the rules of https://jsonfeed.org/version/1.1, kept a little stricter than the
spec where noted (the 1.0 `author` field and keys the spec does not define are errors here).
"""

from __future__ import annotations

import functools
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lxml import etree

ATOM_SCHEMA_PATH = Path(__file__).parent / "data" / "atom.rng"
ATOM_NS = "http://www.w3.org/2005/Atom"
SCHEMATRON_NS = "http://www.ascc.net/xml/schematron"  # the RFC's (pre-ISO) Schematron 1.5
JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"

_MAX_LOG_LINES = 5


# Atom 1.0


@functools.cache
def atom_schema() -> etree.RelaxNG:
    """RFC 4287 Appendix B, compiled once per test run."""
    return etree.RelaxNG(etree.parse(str(ATOM_SCHEMA_PATH)))


@functools.cache
def _atom_schematron_rules() -> tuple[tuple[str, str, str], ...]:
    """(context, test, message) of each s:rule/s:assert annotation in the schema."""
    schema = etree.parse(str(ATOM_SCHEMA_PATH))
    rules = []
    for rule in schema.iter(f"{{{SCHEMATRON_NS}}}rule"):
        for assertion in rule.iter(f"{{{SCHEMATRON_NS}}}assert"):
            message = " ".join((assertion.text or "").split())
            rules.append((rule.get("context", ""), assertion.get("test", ""), message))
    return tuple(rules)


def _parse_xml(data: bytes) -> etree._ElementTree:
    """Parse strictly: no recovery, no DTD loading, no entity expansion, no network."""
    parser = etree.XMLParser(
        recover=False, resolve_entities=False, load_dtd=False, no_network=True, huge_tree=False
    )
    return etree.ElementTree(etree.fromstring(data, parser))


def atom_errors(data: bytes) -> list[str]:
    """Why `data` is not a valid Atom Feed or Entry Document (empty when it is)."""
    try:
        document = _parse_xml(data)
    except etree.XMLSyntaxError as error:
        return [f"not well-formed XML: {error}"]
    schema = atom_schema()
    if not schema.validate(document):
        return [f"line {entry.line}: {entry.message}" for entry in schema.error_log]
    namespaces = {"atom": ATOM_NS}
    errors = []
    for context, test, message in _atom_schematron_rules():
        for node in document.xpath(f"//{context}", namespaces=namespaces):
            if not node.xpath(f"boolean({test})", namespaces=namespaces):
                errors.append(f"line {node.sourceline}: {message}")
    return errors


def assert_valid_atom(data: bytes) -> None:
    """Fail with the first few validation errors unless `data` is valid Atom 1.0."""
    errors = atom_errors(data)
    if errors:
        shown = "\n".join(errors[:_MAX_LOG_LINES])
        hidden = len(errors) - _MAX_LOG_LINES
        more = f"\n... and {hidden} more" if hidden > 0 else ""
        raise AssertionError(f"invalid Atom (RFC 4287):\n{shown}{more}")


# JSON Feed 1.1

_FEED_KEYS = frozenset(
    {
        "version",
        "title",
        "home_page_url",
        "feed_url",
        "description",
        "user_comment",
        "next_url",
        "icon",
        "favicon",
        "authors",
        "language",
        "expired",
        "hubs",
        "items",
    }
)
_ITEM_KEYS = frozenset(
    {
        "id",
        "url",
        "external_url",
        "title",
        "content_html",
        "content_text",
        "summary",
        "image",
        "banner_image",
        "date_published",
        "date_modified",
        "authors",
        "tags",
        "language",
        "attachments",
    }
)
_AUTHOR_KEYS = frozenset({"name", "url", "avatar"})
_ATTACHMENT_KEYS = frozenset({"url", "mime_type", "title", "size_in_bytes", "duration_in_seconds"})
_HUB_KEYS = frozenset({"type", "url"})

# Extensions: "_" then a letter, and no "." anywhere in the name.
_EXTENSION_KEY = re.compile(r"_[^\W\d_][^.]*")
# RFC 3339 section 5.6 date-time; "T" and "Z" may be lower case.
_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)
# RFC 5646 language tag, loosely: a primary subtag, then subtags of 1-8 letters or digits.
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(?:-[A-Za-z0-9]{1,8})*")


def _is_absolute_http_url(value: object) -> bool:
    if not isinstance(value, str) or value != value.strip() or any(c.isspace() for c in value):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _rfc3339_error(value: object) -> str | None:
    """Why `value` is not an RFC 3339 date-time with a time zone (None when it is)."""
    if not isinstance(value, str):
        return f"must be a string, not {type(value).__name__}"
    match = _RFC3339.fullmatch(value)
    if match is None:
        return f"{value!r} is not an RFC 3339 date-time with a time zone"
    day, time, fraction, zone = match.groups()
    fraction = f".{fraction[:6]}" if fraction else ""
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        datetime.fromisoformat(f"{day}T{time}{fraction}{zone}")
    except ValueError as error:
        return f"{value!r} is not a real date-time: {error}"
    return None


class _Checker:
    """Collects human-readable errors; `where` is a JSON-path-like location."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, where: str, message: str) -> None:
        self.errors.append(f"{where}: {message}")

    def keys(self, where: str, obj: dict[str, Any], known: frozenset[str]) -> None:
        for key in obj:
            if key in known:
                continue
            if key.startswith("_"):
                if not _EXTENSION_KEY.fullmatch(key):
                    self.error(
                        f"{where}.{key}",
                        "extension names must be '_' then a letter, with no '.'",
                    )
            elif key == "author":
                self.error(
                    f"{where}.author",
                    "'author' is the JSON Feed 1.0 field, deprecated in 1.1: use 'authors'",
                )
            else:
                self.error(
                    f"{where}.{key}", "not a JSON Feed 1.1 field (extensions must start with '_')"
                )

    def string(self, where: str, obj: dict[str, Any], key: str, *, required: bool = False) -> None:
        if key not in obj:
            if required:
                self.error(f"{where}.{key}", "required")
            return
        if not isinstance(obj[key], str):
            self.error(f"{where}.{key}", f"must be a string, not {type(obj[key]).__name__}")

    def url(self, where: str, obj: dict[str, Any], key: str, *, required: bool = False) -> None:
        if key not in obj:
            if required:
                self.error(f"{where}.{key}", "required")
            return
        if not _is_absolute_http_url(obj[key]):
            self.error(f"{where}.{key}", f"must be an absolute http(s) URL, not {obj[key]!r}")

    def date(self, where: str, obj: dict[str, Any], key: str) -> None:
        if key in obj and (problem := _rfc3339_error(obj[key])) is not None:
            self.error(f"{where}.{key}", problem)

    def language(self, where: str, obj: dict[str, Any]) -> None:
        if "language" not in obj:
            return
        value = obj["language"]
        if not isinstance(value, str):
            self.error(f"{where}.language", f"must be a string, not {type(value).__name__}")
        elif not _LANGUAGE_TAG.fullmatch(value):
            self.error(f"{where}.language", f"{value!r} is not an RFC 5646 language tag")

    def objects(self, where: str, obj: dict[str, Any], key: str) -> list[tuple[str, dict]]:
        """The list `obj[key]` as (location, object) pairs, erring on anything else."""
        if key not in obj:
            return []
        value = obj[key]
        if not isinstance(value, list):
            self.error(f"{where}.{key}", f"must be an array, not {type(value).__name__}")
            return []
        found = []
        for index, member in enumerate(value):
            if isinstance(member, dict):
                found.append((f"{where}.{key}[{index}]", member))
            else:
                self.error(f"{where}.{key}[{index}]", "must be an object")
        return found

    def authors(self, where: str, obj: dict[str, Any]) -> None:
        if "authors" in obj and obj["authors"] == []:
            self.error(f"{where}.authors", "must list one or more authors when present")
        for at, author in self.objects(where, obj, "authors"):
            self.keys(at, author, _AUTHOR_KEYS)
            self.string(at, author, "name")
            for key in ("url", "avatar"):
                self.string(at, author, key)
            if not any(isinstance(author.get(k), str) and author[k] for k in _AUTHOR_KEYS):
                self.error(at, "an author needs at least one of name, url, avatar (non-empty)")

    def item(self, where: str, item: dict[str, Any]) -> None:
        self.keys(where, item, _ITEM_KEYS)
        if "id" not in item:
            self.error(f"{where}.id", "required")
        elif not isinstance(item["id"], str):
            self.error(f"{where}.id", f"must be a string, not {type(item['id']).__name__}")
        elif not item["id"].strip():
            self.error(f"{where}.id", "must not be empty")
        for key in ("url", "external_url", "image", "banner_image"):
            self.url(where, item, key)
        for key in ("title", "content_html", "content_text", "summary"):
            self.string(where, item, key)
        if "content_html" not in item and "content_text" not in item:
            self.error(where, "one or both of content_html and content_text must be present")
        for key in ("date_published", "date_modified"):
            self.date(where, item, key)
        self.authors(where, item)
        self.language(where, item)
        if "tags" in item:
            tags = item["tags"]
            if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
                self.error(f"{where}.tags", "must be an array of strings")
        for at, attachment in self.objects(where, item, "attachments"):
            self.keys(at, attachment, _ATTACHMENT_KEYS)
            self.url(at, attachment, "url", required=True)
            self.string(at, attachment, "mime_type", required=True)
            self.string(at, attachment, "title")
            for key in ("size_in_bytes", "duration_in_seconds"):
                value = attachment.get(key, 0)
                if isinstance(value, bool) or not isinstance(value, int | float):
                    self.error(f"{at}.{key}", "must be a number")


def json_feed_errors(document: dict) -> list[str]:
    """Why `document` is not a JSON Feed 1.1 feed (empty when it is)."""
    if not isinstance(document, dict):
        return [f"$: a feed must be a JSON object, not {type(document).__name__}"]
    check, where = _Checker(), "$"
    check.keys(where, document, _FEED_KEYS)
    if "version" not in document:
        check.error(f"{where}.version", "required")
    elif document["version"] != JSON_FEED_VERSION:
        found = document["version"]
        check.error(f"{where}.version", f"must be {JSON_FEED_VERSION!r}, not {found!r}")
    check.string(where, document, "title", required=True)
    for key in ("home_page_url", "feed_url", "next_url", "icon", "favicon"):
        check.url(where, document, key)
    if "next_url" in document and document.get("next_url") == document.get("feed_url"):
        check.error(f"{where}.next_url", "must not be the same as feed_url")
    for key in ("description", "user_comment"):
        check.string(where, document, key)
    check.authors(where, document)
    check.language(where, document)
    if "expired" in document and not isinstance(document["expired"], bool):
        check.error(f"{where}.expired", "must be a boolean")
    for at, hub in check.objects(where, document, "hubs"):
        check.keys(at, hub, _HUB_KEYS)
        check.string(at, hub, "type", required=True)
        check.url(at, hub, "url", required=True)
    if "items" not in document:
        check.error(f"{where}.items", "required")
    elif not isinstance(document["items"], list):
        check.error(f"{where}.items", f"must be an array, not {type(document['items']).__name__}")
    seen: dict[str, str] = {}
    for at, item in check.objects(where, document, "items"):
        check.item(at, item)
        item_id = item.get("id")
        if isinstance(item_id, str):
            if item_id in seen:
                check.error(f"{at}.id", f"{item_id!r} repeats the id of {seen[item_id]}")
            else:
                seen[item_id] = at
    return check.errors


def assert_valid_json_feed(data: bytes) -> dict:
    """Decode `data` as UTF-8 JSON, fail unless it is a valid JSON Feed 1.1, return it."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise AssertionError(f"JSON Feed is not UTF-8: {error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise AssertionError(f"JSON Feed is not valid JSON: {error}") from None
    errors = json_feed_errors(document)
    if errors:
        raise AssertionError("invalid JSON Feed 1.1:\n" + "\n".join(errors))
    return document
