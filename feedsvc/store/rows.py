"""Rows as both store engines keep them (the items table's columns after `seq`, the held and
killed tables' columns), and the archive-place counter: shared, so the engines cannot disagree
on a column's meaning."""

from __future__ import annotations

from ..model import Item
from ..plan import Row, row_to_json
from . import Withdrawn


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
        topics=topics_of(row[11]),
        digest=row[12],
    )


def topics_of(text: str | None) -> tuple[str, ...]:
    """Slugs as a column keeps them, comma-separated ("" or NULL: none)."""
    return tuple(text.split(",")) if text else ()


def held_values(row: Row) -> tuple[str, int, str]:
    """A `held` row: id, the moment its embargo lifts, the whole row."""
    return row.id, row.published, row_to_json(row)


def killed_values(withdrawn: Withdrawn) -> tuple[str, int, str | None, str, str, int]:
    """A `killed` row: id, when, reason, the topics it was filed under, the whole row, the
    generation of the kill."""
    return (
        withdrawn.row.id,
        withdrawn.killed_at,
        withdrawn.reason,
        ",".join(withdrawn.topics),
        row_to_json(withdrawn.row),
        withdrawn.generation,
    )


def item_of(row: tuple) -> Item:
    return row_of(row).item()


def take_place(ordinals: dict[str, int], topic: str) -> int:
    """The next archive place of `topic`, counted on."""
    place = ordinals.get(topic, 0)
    ordinals[topic] = place + 1
    return place
