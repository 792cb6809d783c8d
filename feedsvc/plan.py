"""Pure ingest planning: incoming items and the stored rows they touch become inserts, updates
and a count of unchanged items. The rules that do not depend on the store engine live here
(merging duplicates, digests, "a headline never overwrites its article", dates, filing), so
every backend applies the same plan and none of them decides anything. No SQL, no I/O."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from .errors import DocumentError
from .model import Item, normalise_title

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Filer = Callable[[Item], tuple[str, ...]]  # an item's topics (the catalogue's `topics_for`)


def to_micros(moment: datetime) -> int:
    """Microseconds since the epoch, UTC: the smallest step Atom and JSON Feed dates keep."""
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(micros: int) -> datetime:
    return datetime.fromtimestamp(micros // 1_000_000, UTC).replace(microsecond=micros % 1_000_000)


@dataclass(frozen=True, slots=True)
class Counts:
    """What an ingest did to the store."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    held: int = 0  # under embargo: stored, published when their time comes
    killed: int = 0  # withdrawn earlier: stored nowhere until `feedsvc unkill`

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, int, int, int, int]:
        return (self.new, self.updated, self.unchanged, self.held, self.killed)

    def __str__(self) -> str:
        text = f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged"
        if self.held:
            text += f", {self.held} held (embargo)"
        if self.killed:
            text += f", {self.killed} killed (not republished)"
        return text


LIVE, HELD, KILLED = "live", "held", "killed"  # where a stored item is


@dataclass(frozen=True, slots=True)
class Stored:
    """What planning needs to know of an item already in the store."""

    seq: int
    digest: str
    has_content: bool
    published: int  # microseconds
    updated: int
    state: str = LIVE  # LIVE (in feeds), HELD (embargoed) or KILLED (withdrawn)


@dataclass(frozen=True, slots=True)
class Row:
    """An item as every backend stores it: dates in microseconds, topics as filed."""

    id: str
    title: str
    content: str | None
    summary: str | None
    author: str | None
    source: str | None
    link: str | None
    published: int
    updated: int
    pinned: str | None  # topics the source gave (JSON Lines), comma-separated; None: the rules
    topics: tuple[str, ...]
    digest: str

    def item(self) -> Item:
        return Item(
            id=self.id,
            title=self.title,
            content=self.content,
            summary=self.summary,
            author=self.author,
            source=self.source,
            link=self.link,
            published=from_micros(self.published),
            updated=from_micros(self.updated),
            topics=self.topics,
        )


@dataclass(frozen=True, slots=True)
class IngestPlan:
    """What one document does to the store."""

    inserts: tuple[Row, ...]  # oldest first: each takes the next sequence number
    updates: tuple[tuple[int, Row], ...]  # (seq, new row)
    unchanged: int
    holds: tuple[Row, ...] = ()  # embargoed until `published`: stored, not yet published
    killed: int = 0  # withdrawn items sent again: not stored

    @property
    def changes(self) -> bool:
        return bool(self.inserts or self.updates or self.holds)

    def counts(self) -> Counts:
        return Counts(
            len(self.inserts), len(self.updates), self.unchanged, len(self.holds), self.killed
        )


def digest(item: Item) -> str:
    """A hash of what the source said of an item (its pinned topics included, the rules' filing
    not): `updated` moves only when this changes. The title counts in its normalised form, so
    the same headline re-sent in other capitals or spacing is not news."""
    fields = (
        normalise_title(item.title),
        item.content,
        item.summary,
        item.author,
        item.source,
        item.link,
    )
    # \x1f cannot occur in stored text (clean_text removes it), so fields cannot run together.
    text = "\x1f".join("\x1e" if value is None else value for value in fields)
    text += "\x1f" + ",".join(item.topics)
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def merge_duplicates(items: Sequence[Item]) -> list[Item]:
    """One item per id, at its first position; a later article replaces an earlier headline,
    but a headline never replaces an article."""
    merged: dict[str, Item] = {}
    for item in items:
        earlier = merged.get(item.id)
        if earlier is None or item.content or not earlier.content:
            merged[item.id] = item
    return list(merged.values())


def to_row(item: Item, topics: tuple[str, ...], published: int, updated: int) -> Row:
    """The row for `item`; `item.topics` are the ones its source pinned, `topics` the filed."""
    return Row(
        id=item.id,
        title=item.title,
        content=item.content,
        summary=item.summary,
        author=item.author,
        source=item.source,
        link=item.link,
        published=published,
        updated=max(updated, published),
        pinned=",".join(item.topics) if item.topics else None,
        topics=topics,
        digest=digest(item),
    )


def file_items(items: Sequence[Item], topics_for: Filer) -> list[tuple[str, ...]]:
    """Each item's topics; done before a backend takes its write lock (filing is the slow part)."""
    return [topics_for(item) for item in items]


def plan_ingest(
    items: Sequence[Item],
    filed: Sequence[tuple[str, ...]],
    existing: Mapping[str, Stored],
    now: int,
) -> IngestPlan:
    """The plan for one document's merged items (document order: the first is the newest).

    Items the source gave no date get the time the document was first seen, the first item
    exactly `now` and each later one a microsecond earlier, so readers that sort by date keep
    the document's order. A changed item keeps `published`; its `updated` moves forward.
    """
    inserts: list[Row] = []
    updates: list[tuple[int, Row]] = []
    holds: list[Row] = []
    killed = 0
    for position, (item, topics) in enumerate(zip(items, filed, strict=True)):
        seen = now - position
        old = existing.get(item.id)
        if old is not None and old.state == KILLED:
            killed += 1  # stays withdrawn until an editor says otherwise
            continue
        if old is None or old.state == HELD:
            published = to_micros(item.published) if item.published else seen
            updated = to_micros(item.updated) if item.updated else published
            row = to_row(item, topics, published, updated)
            if published > now:
                if old is None or old.digest != row.digest:
                    holds.append(row)  # an embargo: published nowhere before its time
            elif old is None:
                inserts.append(row)
            else:
                holds.append(row)  # moved earlier than now: `lift_due` publishes it
            continue
        if (old.has_content and not item.content) or digest(item) == old.digest:
            continue  # a headline never overwrites its article; the same text is no news
        updated = to_micros(item.updated) if item.updated else max(seen, old.updated + 1)
        updates.append((old.seq, to_row(item, topics, old.published, updated)))
    inserts.reverse()
    unchanged = len(items) - len(inserts) - len(updates) - len(holds) - killed
    return IngestPlan(tuple(inserts), tuple(updates), unchanged, tuple(holds), killed)


def row_to_json(row: Row) -> str:
    """A row as text, for the tables that keep whole items aside (held, killed)."""
    return json.dumps(
        [getattr(row, name) for name in Row.__slots__], ensure_ascii=False, separators=(",", ":")
    )


def row_from_json(text: str) -> Row:
    values = json.loads(text)
    fields = dict(zip(Row.__slots__, values, strict=True))
    fields["topics"] = tuple(fields["topics"])
    return Row(**fields)


def plan_refile(rows: Iterable[tuple[int, Row]], topics_for: Filer) -> list[tuple[int, Row]]:
    """The stored rows whose topics change under the current rules, with their new topics."""
    moves = []
    for seq, row in rows:
        pinned = tuple(row.pinned.split(",")) if row.pinned else ()
        item = replace(row.item(), topics=pinned)
        try:
            topics = topics_for(item)
        except DocumentError:  # a pinned topic left the catalogue: the rules decide now
            topics = topics_for(replace(item, topics=()))
        if topics != row.topics:
            moves.append((seq, replace(row, topics=topics)))
    return moves


@dataclass(frozen=True, slots=True)
class KillPlan:
    """What a kill does: the ids it withdraws, from the feeds (by seq) or from the held."""

    unknown: str | None  # an id the store does not know: the kill is refused
    withdrawn: tuple[str, ...] = ()  # published or held (killed ones stay as they are)
    live: tuple[int, ...] = ()  # seqs of the published ones
    held: tuple[str, ...] = ()


def plan_kill(ids: Sequence[str], existing: Mapping[str, Stored]) -> KillPlan:
    unknown = next((item_id for item_id in ids if item_id not in existing), None)
    if unknown is not None:
        return KillPlan(unknown)
    withdrawn = [item_id for item_id in dict.fromkeys(ids) if existing[item_id].state != KILLED]
    return KillPlan(
        None,
        tuple(withdrawn),
        tuple(existing[i].seq for i in withdrawn if existing[i].state == LIVE),
        tuple(i for i in withdrawn if existing[i].state == HELD),
    )


def plan_unkill(rows: Sequence[Row], now: int) -> IngestPlan:
    """Withdrawn rows back: published (oldest first) if their time has come, else held."""
    live = sorted((row for row in rows if row.published <= now), key=lambda row: row.published)
    return IngestPlan(tuple(live), (), 0, tuple(row for row in rows if row.published > now))
