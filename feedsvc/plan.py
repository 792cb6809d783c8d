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
from .model import CANCELED, USABLE, WITHHELD, Image, Item, normalise_title
from .query import indexed_text

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
    held: int = 0  # under embargo (or withheld): stored, published when their time comes
    killed: int = 0  # withdrawn earlier: stored nowhere until `feedsvc unkill`
    stale: int = 0  # a version no newer than the stored one: nothing changed
    canceled: int = 0  # canceled by their provider: withdrawn as `feedsvc kill` does

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(a + b for a, b in zip(self.as_tuple(), other.as_tuple(), strict=True)))

    def as_tuple(self) -> tuple[int, ...]:
        return (
            self.new,
            self.updated,
            self.unchanged,
            self.held,
            self.killed,
            self.stale,
            self.canceled,
        )

    def __str__(self) -> str:
        text = f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged"
        if self.held:
            text += f", {self.held} held (embargo)"
        if self.killed:
            text += f", {self.killed} killed (not republished)"
        if self.canceled:
            text += f", {self.canceled} canceled (killed)"
        if self.stale:
            text += f", {self.stale} older versions ignored"
        return text


LIVE, HELD, KILLED = "live", "held", "killed"  # where a stored item is
# The lift time of a withheld item: never by time, only by a later usable version (any real
# date is smaller; `next_lift` and `lift_due` look below it).
NEVER = 2**62
CANCEL_REASON = "canceled by the provider"  # a canceled document's reason without a note


@dataclass(frozen=True, slots=True)
class Stored:
    """What planning needs to know of an item already in the store."""

    seq: int
    digest: str
    has_content: bool
    published: int  # microseconds
    updated: int
    state: str = LIVE  # LIVE (in feeds), HELD (embargoed or withheld) or KILLED (withdrawn)
    version: int | None = None  # the provider's version (newsroom formats)
    withheld: bool = False  # HELD until a usable version arrives, not by time


# Not frozen: a frozen class's __init__ makes a setattr call per field, and an ingest makes a
# Row per item (22 fields); nothing changes a Row once made (`dataclasses.replace` copies).
@dataclass(slots=True)
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
    # The newsroom formats' fields (schema 5; None in rows stored before, and for wire and
    # JSON Lines items). subjects: codes comma-joined; images: JSON, sorted keys (`images_json`).
    guid: str | None = None
    version: int | None = None
    status: str | None = None  # None: usable
    embargo: int | None = None  # microseconds
    language: str | None = None
    subjects: str | None = None
    images: str | None = None
    ednote: str | None = None
    correction: str | None = None
    dateline: str | None = None

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
            guid=self.guid,
            version=self.version,
            status=self.status or USABLE,
            embargo=from_micros(self.embargo) if self.embargo is not None else None,
            language=self.language,
            subjects=tuple(self.subjects.split(",")) if self.subjects else (),
            images=tuple(Image(**fields) for fields in json.loads(self.images or "[]")),
            ednote=self.ednote,
            correction=self.correction,
            dateline=self.dateline,
        )


def images_json(images: Sequence[Image]) -> str | None:
    """Pictures as a column keeps them: JSON with sorted keys, one form for one list."""
    if not images:
        return None
    dicts = [image.as_dict() for image in images]
    return json.dumps(dicts, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class IngestPlan:
    """What one document does to the store."""

    inserts: tuple[Row, ...]  # oldest first: each takes the next sequence number
    updates: tuple[tuple[int, Row], ...]  # (seq, new row)
    unchanged: int
    holds: tuple[Row, ...] = ()  # embargoed until `published` (withheld: NEVER)
    killed: int = 0  # withdrawn items sent again: not stored
    stale: int = 0  # versions no newer than the stored ones: nothing changed
    # Canceled by the provider: withdrawn as a kill does, each with its reason; the rows of
    # items never seen before, stored withdrawn at once (an older version never publishes).
    cancels: tuple[tuple[str, str], ...] = ()
    canceled_new: tuple[Row, ...] = ()
    # Withheld versions of published items: taken out of the feeds, held until usable again.
    withholds: tuple[tuple[int, Row], ...] = ()  # (seq, the withheld version)

    def cancel_groups(self) -> list[tuple[str, list[str]]]:
        """The canceled ids by reason (reasons sorted): each a kill of its own, with its reason."""
        reasons = sorted({reason for _, reason in self.cancels})
        return [(r, [item_id for item_id, why in self.cancels if why == r]) for r in reasons]

    @property
    def changes(self) -> bool:
        return bool(self.inserts or self.updates or self.holds or self.cancels or self.withholds)

    def counts(self) -> Counts:
        return Counts(
            len(self.inserts),
            len(self.updates),
            self.unchanged,
            len(self.holds) + len(self.withholds),
            self.killed,
            self.stale,
            len(self.cancels),
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
    # What readers see besides (pictures, language): only when given, so an item without
    # them keeps the digest stores made before these fields existed (no spurious update).
    if item.images or item.language:
        text += "\x1f" + (images_json(item.images) or "") + "\x1f" + (item.language or "")
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


@dataclass(frozen=True, slots=True)
class Incoming:
    """A document's items as a store takes them: merged (`merge_duplicates`), each with its
    topics, its digest and its search words (`query.indexed_text`). Made before the write
    lock, in ingest's worker processes where there are some: most of an item's CPU."""

    items: list[Item]
    filed: list[tuple[str, ...]]
    digests: list[str]
    words: list[tuple[str, str]]


def incoming(items: Sequence[Item], topics_for: Filer) -> Incoming:
    merged = merge_duplicates(items)
    return Incoming(
        merged,
        [topics_for(item) for item in merged],
        [digest(item) for item in merged],
        [indexed_text(item.title, item.content, item.summary) for item in merged],
    )


def to_row(
    item: Item, topics: tuple[str, ...], published: int, updated: int, hashed: str | None = None
) -> Row:
    """The row for `item`; `item.topics` are the ones its source pinned, `topics` the filed;
    `hashed`: its `digest`, if known."""
    # Positional, in Row's order: an ingest makes one per item.
    return Row(
        item.id,
        item.title,
        item.content,
        item.summary,
        item.author,
        item.source,
        item.link,
        published,
        max(updated, published),
        ",".join(item.topics) if item.topics else None,
        topics,
        hashed or digest(item),
        item.guid,
        item.version,
        None if item.status == USABLE else item.status,
        to_micros(item.embargo) if item.embargo else None,
        item.language,
        ",".join(item.subjects) if item.subjects else None,
        images_json(item.images) if item.images else None,
        item.ednote,
        item.correction,
        item.dateline,
    )


def hold_until(row: Row) -> int:
    """When a held row is published: its time (an embargo's end), or NEVER if withheld."""
    return NEVER if row.status == WITHHELD else row.published


def plan_ingest(
    items: Sequence[Item],
    filed: Sequence[tuple[str, ...]],
    existing: Mapping[str, Stored],
    now: int,
    digests: Sequence[str] | None = None,
) -> IngestPlan:
    """The plan for one document's merged items (document order: the first is the newest).

    Items the source gave no date get the time the document was first seen, the first item
    exactly `now` and each later one a microsecond earlier, so readers that sort by date keep
    the document's order. A changed item keeps `published`; its `updated` moves forward.

    The newsroom formats' rules: a version no newer than the stored one changes nothing
    (`stale`); a higher one replaces the item. `canceled` withdraws the item as a kill does,
    whatever its version (a kill notice is never lost to a resend's numbering), and one never
    seen is stored withdrawn, so an older version arriving later never publishes it; a
    withdrawn item stays so, whatever arrives, until `feedsvc unkill`. An embargo holds the
    item until then (it is published at its embargo); `withheld` holds it until a usable
    version arrives (a published item is taken out of the feeds meanwhile). `digests`: the
    items' digests, if known (`Incoming`).
    """
    inserts: list[Row] = []
    updates: list[tuple[int, Row]] = []
    holds: list[Row] = []
    cancels: list[tuple[str, str]] = []
    canceled_new: list[Row] = []
    withholds: list[tuple[int, Row]] = []
    killed = stale = 0
    for position, (item, topics) in enumerate(zip(items, filed, strict=True)):
        seen = now - position
        hashed = digests[position] if digests is not None else digest(item)
        old = existing.get(item.id)
        if old is not None and old.state == KILLED:
            killed += 1  # stays withdrawn until an editor says otherwise
            continue
        if item.status == CANCELED:
            cancels.append((item.id, item.ednote or CANCEL_REASON))
            if old is None:
                canceled_new.append(first_row(item, topics, seen, hashed))
            continue
        versions = (item.version, None if old is None else old.version)
        if None not in versions and versions[0] <= versions[1]:  # type: ignore[operator]
            stale += 1  # a resend, or a folder read out of order
            continue
        if old is None or old.state == HELD:
            row = first_row(item, topics, seen, hashed)
            if item.status == WITHHELD or row.published > now:
                changed = old is None or (old.digest, old.version) != (row.digest, row.version)
                if changed or old.withheld != (item.status == WITHHELD):
                    holds.append(row)  # an embargo: published nowhere before its time
            elif old is None:
                inserts.append(row)
            else:
                holds.append(row)  # moved earlier than now: `lift_due` publishes it
            continue
        updated = to_micros(item.updated) if item.updated else max(seen, old.updated + 1)
        if item.status == WITHHELD:
            withholds.append((old.seq, to_row(item, topics, old.published, updated, hashed)))
            continue
        newer = None not in versions  # higher: an older one was stale above
        if not newer and old.has_content and not item.content:
            continue  # a headline never overwrites its article
        if hashed == old.digest:
            if not newer:
                continue  # the same text is no news
            updated = old.updated  # a new version that readers see no change in
        updates.append((old.seq, to_row(item, topics, old.published, updated, hashed)))
    inserts.reverse()
    unchanged = len(items) - len(inserts) - len(updates) - len(holds) - killed - stale
    unchanged -= len(cancels) + len(withholds)
    return IngestPlan(
        tuple(inserts),
        tuple(updates),
        unchanged,
        tuple(holds),
        killed,
        stale,
        tuple(cancels),
        tuple(canceled_new),
        tuple(withholds),
    )


def first_row(item: Item, topics: tuple[str, ...], seen: int, hashed: str | None = None) -> Row:
    """The row of an item not yet published: dated by its source (else when first seen), and
    no earlier than its embargo (it is published when the embargo ends)."""
    published = to_micros(item.published) if item.published else seen
    if item.embargo is not None:
        published = max(published, to_micros(item.embargo))
    updated = to_micros(item.updated) if item.updated else published
    return to_row(item, topics, published, updated, hashed)


def row_to_json(row: Row) -> str:
    """A row as text, for the tables that keep whole items aside (held, killed)."""
    return json.dumps(
        [getattr(row, name) for name in Row.__slots__], ensure_ascii=False, separators=(",", ":")
    )


def row_from_json(text: str) -> Row:
    values = json.loads(text)
    # Rows kept before schema 5 lack the newsroom fields at the end: they take Row's defaults.
    fields = dict(zip(Row.__slots__[: len(values)], values, strict=True))
    fields["topics"] = tuple(fields["topics"])
    return Row(**fields)


def stored_aside(row: Row, state: str) -> Stored:
    """What planning knows of a row a store keeps aside whole (HELD or KILLED)."""
    has_content = row.content is not None  # as the items table says it (IS NOT NULL)
    withheld = row.status == WITHHELD
    return Stored(
        0, row.digest, has_content, row.published, row.updated, state, row.version, withheld
    )


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
    withdrawn: tuple[str, ...] = ()  # published, held or new (killed ones stay as they are)
    live: tuple[int, ...] = ()  # seqs of the published ones
    held: tuple[str, ...] = ()
    new: tuple[Row, ...] = ()  # never stored: kept withdrawn at once


def plan_kill(
    ids: Sequence[str], existing: Mapping[str, Stored], unseen: Sequence[Row] = ()
) -> KillPlan:
    """`unseen`: rows of canceled items the store never had (the ingest of a cancel); those
    among `ids` are stored withdrawn at once, so no older version arriving later publishes."""
    new = {row.id: row for row in unseen if row.id in ids}
    stored = [item_id for item_id in ids if item_id not in new]
    unknown = next((item_id for item_id in stored if item_id not in existing), None)
    if unknown is not None:
        return KillPlan(unknown)
    withdrawn = [i for i in dict.fromkeys(stored) if existing[i].state != KILLED]
    return KillPlan(
        None,
        (*withdrawn, *new),
        tuple(existing[i].seq for i in withdrawn if existing[i].state == LIVE),
        tuple(i for i in withdrawn if existing[i].state == HELD),
        tuple(new.values()),
    )


def plan_unkill(rows: Sequence[Row], now: int) -> IngestPlan:
    """Withdrawn rows back: published (oldest first) if their time has come, else held."""
    live = sorted((row for row in rows if row.published <= now), key=lambda row: row.published)
    return IngestPlan(tuple(live), (), 0, tuple(row for row in rows if row.published > now))
