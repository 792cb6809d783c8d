"""The wire-text format: headlines after `-` markers, and articles with an optional byline."""

from __future__ import annotations

import re
from collections.abc import Iterator

from .model import (
    CORRECTION_LABEL,
    LINE_END,
    Item,
    clean_text,
    item_id,
    paragraphs_html,
    with_correction,
)

MARKER = "-"
PIECE_CHARS = 1 << 20  # text split into lines at a time (`_lines`)
# Anchored at both ends: "2--1 Hull City." and "round--UN-brokered talks" are paragraphs.
BYLINE = re.compile(r"(?P<name>\S(?:.*\S)?)--(?P<code>[A-Z0-9]{1,10})")


def parse_wire(text: str) -> list[Item]:
    """Items of a wire document, in document order (the first is the newest)."""
    items: list[Item] = []
    block: list[str] = []  # the current article: title, then paragraphs
    expect_headline = False
    for line in map(str.strip, _lines(clean_text(text.removeprefix("\ufeff")))):
        if not line:
            continue
        if line == MARKER:
            _close_article(block, items)
            expect_headline = True
        elif expect_headline:
            items.append(Item(id=item_id(line), title=line))
            expect_headline = False
        else:
            block.append(line)
    _close_article(block, items)
    return items


def _lines(text: str) -> Iterator[str]:
    """The lines of `text`, split a piece at a time: a big document's lines are not all held
    at once beside it. Pieces end after a \n, so no \r\n is cut in two; a piece's last
    line end gives an empty line (blank lines mean nothing in wire text)."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + PIECE_CHARS)
        end = len(text) if end < 0 else end + 1
        yield from LINE_END.split(text[start:end])
        start = end


def _close_article(block: list[str], items: list[Item]) -> None:
    if block:
        items.append(article(block[0], block[1:]))
        block.clear()


def article(title: str, lines: list[str]) -> Item:
    """An article from its title and the lines after it (a trailing byline is not a paragraph)."""
    author = source = None
    byline = BYLINE.fullmatch(lines[-1]) if lines else None
    if byline:
        author, source = byline["name"], byline["code"]
        lines = lines[:-1]
    # A paragraph that starts "Correction:" is the desk's correction note, shown apart.
    notes = [line for line in lines if line.startswith(CORRECTION_LABEL)]
    lines = [line for line in lines if not line.startswith(CORRECTION_LABEL)]
    content = paragraphs_html(lines) if lines else None
    return Item(
        id=item_id(title),
        title=title,
        content=with_correction(
            content, " ".join(n.removeprefix(CORRECTION_LABEL).strip() for n in notes)
        ),
        summary=lines[0] if lines else None,
        author=author,
        source=source,
    )
