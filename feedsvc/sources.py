"""Read documents (files, directories, standard input) into items, with file:line errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from . import newsml, ninjs, nitf
from .errors import DocumentError
from .jsonlines import parse_jsonl
from .model import LINE_END, Item
from .wire import parse_wire
from .xmlsafe import local, parse_xml

WIRE_SUFFIXES = (".txt", ".wire")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
XML_SUFFIXES = (".xml",)  # NewsML-G2 or NITF: the root element tells which
JSON_SUFFIXES = (".json",)  # one JSON document (ninjs), where JSON Lines has one a line
SUFFIXES = WIRE_SUFFIXES + JSONL_SUFFIXES + XML_SUFFIXES + JSON_SUFFIXES
DOCUMENT_PATTERNS = ", ".join(f"*{suffix}" for suffix in SUFFIXES)
# Document kinds: how to read the bytes. "wire" documents are sniffed for XML and ninjs first
# (standard input, text/plain posts); the API names the newsroom format by its media type.
WIRE, JSONL, XML, JSON, NEWSML, NITF, NINJS = (
    "wire",
    "jsonl",
    "xml",
    "json",
    "newsml",
    "nitf",
    "ninjs",
)
EXPECTED_ROOT = {NEWSML: "a NewsML-G2 newsItem or newsMessage", NITF: "an NITF document"}
# A wire document is XML only if it says so: a declaration, a DOCTYPE, or a newsroom root.
_XML_START = re.compile(rb"<\?xml[\s?]|<!DOCTYPE\s|<(?:\w+:)?(?:newsItem|newsMessage|nitf)[\s>/]")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")
STDIN = "-"
STDIN_NAME = "<stdin>"
API_BODY_NAME = "request body"  # a document posted to /api/items
# JSON Lines sent as wire text would be stored as items titled '{"id": ...}': say how to send it.
_JSONL_HINTS = {
    STDIN_NAME: "read it with --stdin-format jsonl",
    API_BODY_NAME: "send it as application/x-ndjson",
}
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class Document:
    """A document's name (for messages) and its raw bytes."""

    name: str
    data: bytes
    kind: str  # WIRE, JSONL, XML, JSON, or (posted with its media type) NEWSML, NITF, NINJS


@dataclass(frozen=True, slots=True)
class Parsed:
    """A document's format (wire, jsonl, newsml-g2, nitf, ninjs-1/2/3) and its items."""

    format: str
    items: list[Item]


def kind_of(name: str) -> str:
    """How a file name says to read it: JSON Lines, one JSON document or XML by extension,
    wire text (sniffed for XML and ninjs) otherwise."""
    lower = name.lower()
    for suffixes, kind in ((JSONL_SUFFIXES, JSONL), (JSON_SUFFIXES, JSON), (XML_SUFFIXES, XML)):
        if lower.endswith(suffixes):
            return kind
    return WIRE


def decode(document: Document) -> str:
    """The document's text; anything but UTF-8 text is rejected whole."""
    data = document.data
    # UTF-16 without a BOM is valid UTF-8 byte for byte, but full of NULs; a stray NUL is not.
    if data.count(b"\x00") * 8 > len(data):
        line = len(_LINE_ENDS.findall(data[: data.index(b"\x00")])) + 1
        raise DocumentError("not UTF-8 text (NUL bytes: UTF-16 or binary?)", document.name, line)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = len(_LINE_ENDS.findall(data[: error.start])) + 1
        raise DocumentError(
            f"not valid UTF-8 (byte 0x{data[error.start]:02x}); the document was not read",
            document.name,
            line,
        ) from None


def parse_document(document: Document) -> list[Item]:
    """All items of one document, or a `DocumentError` and none of them."""
    return read_document(document).items


def read_document(document: Document) -> Parsed:
    """A document's format and items, or a `DocumentError` and none of them."""
    kind = document.kind
    if kind in (XML, NEWSML, NITF) or (kind == WIRE and _looks_like_xml(document.data)):
        return _read_xml(document, kind)
    text = decode(document)
    if kind == JSONL:
        return Parsed(JSONL, parse_jsonl(text, document.name))
    if kind in (JSON, NINJS) or (kind == WIRE and _is_ninjs(text)):
        record = ninjs.load(text, document.name)
        version = ninjs.ninjs_version(record)
        return Parsed(f"{ninjs.FORMAT}-{version}", ninjs.parse_record(record, document.name))
    return Parsed(WIRE, _parse_wire(text, document))


def _looks_like_xml(data: bytes) -> bool:
    head = data[:1024]
    for bom in _BOMS:
        head = head.removeprefix(bom)
    return bool(_XML_START.match(head.lstrip()))


def _is_ninjs(text: str) -> bool:
    """Whether a wire document is one JSON object with a `uri` (ninjs sent as text)."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if not stripped.startswith("{"):
        return False
    try:
        return ninjs.is_ninjs(json.loads(stripped))
    except (ValueError, RecursionError):
        return False


def _read_xml(document: Document, kind: str) -> Parsed:
    root = parse_xml(document.data, document.name)
    if newsml.is_newsml(root) and kind in (XML, WIRE, NEWSML):
        return Parsed(newsml.FORMAT, newsml.parse_newsml(root, document.name))
    if nitf.is_nitf(root) and kind in (XML, WIRE, NITF):
        return Parsed(nitf.FORMAT, nitf.parse_nitf(root, document.name))
    expected = EXPECTED_ROOT.get(kind, "NewsML-G2 (newsItem, newsMessage) or NITF")
    raise DocumentError(
        f"the root element <{local(root)}> is not {expected}", document.name, root.sourceline
    )


def _parse_wire(text: str, document: Document) -> list[Item]:
    if _is_json_lines(text):
        hint = _JSONL_HINTS.get(document.name, "give the file a .jsonl name")
        raise DocumentError(
            f"every line is a JSON object: this is JSON Lines, not wire text ({hint})",
            document.name,
        )
    return parse_wire(text)


def _is_json_lines(text: str) -> bool:
    """Whether every non-blank line holds a JSON object (and there is one)."""
    if not text.lstrip("\ufeff \t\r\n").startswith("{"):  # the common case: decided at once
        return False
    lines = (line.strip() for line in LINE_END.split(text.removeprefix("\ufeff")))
    return all(_is_json_object(line) for line in lines if line)


def _is_json_object(line: str) -> bool:
    try:
        return line.startswith("{") and isinstance(json.loads(line), dict)
    except ValueError:  # JSONDecodeError, or a number too long to convert
        return False


def read_documents(paths: list[str], stdin: bytes | None = None) -> Iterator[Document]:
    """Documents named by files, directories (their wire and JSON Lines files, sorted) or `-`."""
    for path in paths:
        if path == STDIN:
            yield Document(STDIN_NAME, stdin or b"", WIRE)
            continue
        target = Path(path)
        if target.is_dir():
            for child in sorted(target.iterdir()):
                if child.is_file() and child.name.lower().endswith(SUFFIXES):
                    yield _read(child)
        else:
            yield _read(target)


def _read(path: Path) -> Document:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DocumentError("no such file", str(path)) from None
    except OSError as error:
        raise DocumentError(f"cannot read: {error.strerror}", str(path)) from None
    return Document(str(path), data, kind_of(path.name))
