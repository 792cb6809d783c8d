"""Rows as both store engines keep them (the items table's columns after `seq`), and the
archive-place counter: shared, so the engines cannot disagree on a column's meaning."""

from __future__ import annotations

from ..model import Item
from ..plan import Row


def row_values(row: Row) -> tuple:
    """A row's columns after seq, in COLUMNS order."""
    return (
        row.id,
        row.title,
        row.content,
        row.summary,
        row.author,
        row.source,
        row.link,
        row.published,
        row.updated,
        row.pinned,
        ",".join(row.topics),
        row.digest,
    )


def row_of(row: tuple) -> Row:
    return Row(
        id=row[1],
        title=row[2],
        content=row[3],
        summary=row[4],
        author=row[5],
        source=row[6],
        link=row[7],
        published=row[8],
        updated=row[9],
        pinned=row[10],
        topics=tuple(row[11].split(",")) if row[11] else (),
        digest=row[12],
    )


def item_of(row: tuple) -> Item:
    return row_of(row).item()


def take_place(ordinals: dict[str, int], topic: str) -> int:
    """The next archive place of `topic`, counted on."""
    place = ordinals.get(topic, 0)
    ordinals[topic] = place + 1
    return place
