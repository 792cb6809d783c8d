"""Read documents (files, directories, standard input) into items, with file:line errors."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import DocumentError
from .jsonlines import parse_jsonl
from .model import LINE_END, Item
from .wire import parse_wire

WIRE_SUFFIXES = (".txt", ".wire")
JSONL_SUFFIXES = (".jsonl", ".ndjson")
DOCUMENT_PATTERNS = ", ".join(f"*{suffix}" for suffix in WIRE_SUFFIXES + JSONL_SUFFIXES)
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
    kind: str  # "wire" or "jsonl"


def kind_of(name: str) -> str:
    """The format a file name implies: JSON Lines by extension, wire text otherwise."""
    return "jsonl" if name.lower().endswith(JSONL_SUFFIXES) else "wire"


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
    text = decode(document)
    if document.kind == "jsonl":
        return parse_jsonl(text, document.name)
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
            yield Document(STDIN_NAME, stdin or b"", "wire")
            continue
        target = Path(path)
        if target.is_dir():
            for child in sorted(target.iterdir()):
                if child.is_file() and child.name.lower().endswith(WIRE_SUFFIXES + JSONL_SUFFIXES):
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
