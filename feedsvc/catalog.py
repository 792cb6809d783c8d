"""The topic catalogue in `feeds/`: site settings, topics, and the rules that file items."""

from __future__ import annotations

import hashlib
import itertools
import re
import tomllib
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import CatalogError, DocumentError
from .model import Item, Site, Topic

ALL = "all"  # built in: every item
OTHER = "other"  # built in: the items no topic's rules matched
OTHER_TITLE = "Other news"
OTHER_DESCRIPTION = "Items that match no topic."
# Bumped when filing itself changes, so stores re-file their items (2: unmatched items go
# under `other`).
FILING_VERSION = b"2"
SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,39}")
TAG_PREFIX = re.compile(r"tag:[A-Za-z0-9.@-]+,\d{4}(?:-\d{2}(?:-\d{2})?)?:\S*")
SITE_KEYS = {
    "title": str,
    "description": str,
    "base_url": str,
    "author": str,
    "language": str,
    "entries_per_feed": int,
    "max_age": int,
    "tag_prefix": str,
    "topic_order": list,
    "archive_page_size": int,
    "hubs": list,
    "tombstone_days": int,
}
SITE_REQUIRED = ("title", "description", "author")  # base_url: only `build` needs one
TOPIC_KEYS = {"title": str, "description": str, "rules": dict}
RULE_KEYS = ("match", "exclude")
TYPE_NAMES = {str: "a string", int: "an integer", list: "a list", dict: "a table"}

# Filing: a rule found in the title weighs more than one found only in the body; an item goes
# under its best topic, and under a second one only when that one scores nearly as well.
TITLE_WEIGHT = 3
BODY_WEIGHT = 1
MIN_SCORE = 2
SECOND_RATIO = 0.67
BODY_CHARS = 3000  # the lead decides the beat; a passing mention deep in the text should not

_WORD = re.compile(r"\w+")
# For ASCII text, the same words as _WORD, about twice as fast: every ASCII character that is
# not a word character becomes a space, then split.
_ASCII_NON_WORD = bytes(c for c in range(128) if not (chr(c).isalnum() or c == ord("_")))
_ASCII_SPACES = bytes.maketrans(_ASCII_NON_WORD, b" " * len(_ASCII_NON_WORD))


def _words(text: str) -> list[str]:
    if text.isascii():
        return text.encode().translate(_ASCII_SPACES).decode().split()
    return _WORD.findall(unicodedata.normalize("NFC", text))


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a topic, as the matcher indexes it."""

    topic: int
    exclude: bool


@dataclass(slots=True)
class _Index:
    """Rules of one case mode: one-word rules by word, two-word rules by word pair, longer ones
    by their first pair. Plural forms are indexed with the rule. A lookup intersects the text's
    words and word pairs with these keys (set operations, in C), whatever the number of rules."""

    words: dict[str, list[int]] = field(default_factory=dict)
    pairs: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    longer: dict[tuple[str, str], list[tuple[tuple[str, ...], frozenset[str], int]]] = field(
        default_factory=dict
    )
    # The keys again, as sets: intersecting a set with the text's words runs in C, while a
    # dict view would first be copied into a set on every lookup.
    word_keys: set[str] = field(default_factory=set)
    pair_keys: set[tuple[str, str]] = field(default_factory=set)
    longer_keys: set[tuple[str, str]] = field(default_factory=set)
    first_words: set[str] = field(default_factory=set)  # of the phrases

    def add(self, words: list[str], rule: int) -> None:
        last = _plurals(words[-1])
        if len(words) == 1:
            for form in last:
                self.words.setdefault(form, []).append(rule)
            self.word_keys.update(last)
        elif len(words) == 2:
            for form in last:
                self.pairs.setdefault((words[0], form), []).append(rule)
                self.pair_keys.add((words[0], form))
            self.first_words.add(words[0])
        else:
            start = (words[0], words[1])
            self.longer.setdefault(start, []).append((tuple(words[2:-1]), last, rule))
            self.longer_keys.add(start)
            self.first_words.add(words[0])

    def find(self, words: list[str], found: set[int]) -> None:
        for word in self.word_keys.intersection(words):
            found.update(self.words[word])
        if len(words) < 2 or self.first_words.isdisjoint(words):
            return
        pairs = set(itertools.pairwise(words))
        for pair in pairs & self.pair_keys:
            found.update(self.pairs[pair])
        for pair in pairs & self.longer_keys:
            for position in range(len(words) - 2):
                if (words[position], words[position + 1]) != pair:
                    continue
                for middle, last, rule in self.longer[pair]:
                    end = position + 2 + len(middle)
                    if (
                        end < len(words)
                        and words[end] in last
                        and tuple(words[position + 2 : end]) == middle
                    ):
                        found.add(rule)

    def __bool__(self) -> bool:
        return bool(self.words or self.pairs or self.longer)


def _plurals(word: str) -> frozenset[str]:
    """A rule's last word and its plurals: a rule `election` finds `elections`, `economy`
    finds `economies`, `NGO` finds `NGOs`."""
    forms = {word}
    if len(word) >= 3 and word[-1].isalpha():
        for s in {"s", "S"} if word.isupper() else {"s"}:
            forms.add(word + s)
            forms.add(word + ("ES" if s == "S" else "es"))
        if word[-1] in "yY":
            forms.add(word[:-1] + ("IES" if word.isupper() else "ies"))
    return frozenset(forms)


@dataclass(slots=True)
class Matcher:
    """Whole-word, case-insensitive phrase lookup (a rule in capitals, such as `US` or `WHO`,
    matches only capitals, so the pronoun "us" is not the country). The cost follows the
    length of the text, not the number of rules."""

    folded: _Index = field(default_factory=_Index)
    exact: _Index = field(default_factory=_Index)
    rules: list[Rule] = field(default_factory=list)

    def add(self, text: str, rule: Rule) -> None:
        words = _WORD.findall(unicodedata.normalize("NFC", text))
        if not words:
            return
        letters = [c for c in text if c.isalpha()]
        capitals = len(letters) >= 2 and all(c.isupper() for c in letters)
        index = self.exact if capitals else self.folded
        index.add(words if capitals else [w.casefold() for w in words], len(self.rules))
        self.rules.append(rule)

    def find(self, text: str) -> set[int]:
        """Indexes of the rules found in `text`."""
        found: set[int] = set()
        words = _words(text)
        # One case fold for all the words (the separator is no word character).
        self.folded.find("\x1f".join(words).casefold().split("\x1f") if words else [], found)
        if self.exact:
            self.exact.find(words, found)
        return found


@dataclass(frozen=True, slots=True)
class Catalog:
    """The site, its topics (in display order, without the built-in `all` and `other`) and the
    filing rules."""

    site: Site
    topics: tuple[Topic, ...]
    digest: str  # changes when any topic file changes, so stored items get re-filed
    matcher: Matcher

    @property
    def all_topic(self) -> Topic:
        return Topic(ALL, f"{self.site.title}: all news", self.site.description)

    @property
    def other_topic(self) -> Topic:
        return Topic(OTHER, OTHER_TITLE, OTHER_DESCRIPTION)

    @property
    def feeds(self) -> tuple[Topic, ...]:
        """Every topic that has feeds: `all` first, then the catalogue's, then `other`."""
        return (self.all_topic, *self.topics, self.other_topic)

    @property
    def subscriptions(self) -> tuple[Topic, ...]:
        """The topics a reader subscribes to from the OPML list: every item is in one of them,
        and `all` is left out, since it would hold each item a second time."""
        return (*self.topics, self.other_topic)

    def topic(self, slug: str) -> Topic | None:
        return next((topic for topic in self.feeds if topic.slug == slug), None)

    def file(self, title: str, body: str = "") -> tuple[str, ...]:
        """The slugs of the topics an item with this title and body belongs under."""
        in_title = self.matcher.find(title)
        in_body = self.matcher.find(body[:BODY_CHARS]) - in_title if body else set()
        if not in_title and not in_body:
            return ()
        scores = [0] * len(self.topics)
        excluded: set[int] = set()
        rules = self.matcher.rules
        for hits, weight in ((in_title, TITLE_WEIGHT), (in_body, BODY_WEIGHT)):
            for index in hits:
                rule = rules[index]
                if rule.exclude:
                    excluded.add(rule.topic)
                else:
                    scores[rule.topic] += weight
        for topic in excluded:
            scores[topic] = 0
        best = max(scores, default=0)
        if best < MIN_SCORE:
            return ()
        floor = max(MIN_SCORE, SECOND_RATIO * best)
        return tuple(t.slug for t, score in zip(self.topics, scores, strict=True) if score >= floor)

    def topics_for(self, item: Item) -> tuple[str, ...]:
        """An item's topics: the ones its source pinned (JSON Lines `topics`), else the rules';
        `other` when neither gives one."""
        if item.topics:
            known = {ALL, OTHER, *(topic.slug for topic in self.topics)}
            unknown = [slug for slug in item.topics if slug not in known]
            if unknown:
                raise DocumentError(f"item {item.id!r}: unknown topic {unknown[0]!r}")
            filed = tuple(slug for slug in item.topics if slug != ALL)
        else:
            filed = self.file(item.title, item.body_text())
        return filed or (OTHER,)


def load_catalog(feeds_dir: Path, base_url: str | None = None) -> Catalog:
    """Read `feeds/site.toml` and `feeds/topics/*.toml`; `base_url` overrides the site's. With
    neither, the site has no base URL: `serve` gives the address it serves, `build` refuses."""
    site_file = feeds_dir / "site.toml"
    if not site_file.is_file():
        raise CatalogError(
            "no site.toml here: give the catalogue directory with --feeds DIR or FEEDSVC_FEEDS "
            "(the default, ./feeds, is the one in the project's directory)",
            str(feeds_dir),
        )
    site_data = _read_toml(site_file)
    site = _site(site_data, site_file, base_url)
    topic_files = sorted((feeds_dir / "topics").glob("*.toml"))
    digest = hashlib.sha256(FILING_VERSION + b"\0")
    topics = []
    for path in topic_files:
        data = path.read_bytes()
        digest.update(path.name.encode() + b"\0" + data + b"\0")
        topics.append(_topic(_read_toml(path), path))
    order = _topic_order(site_data.get("topic_order", []), site_file, topics)
    topics.sort(key=lambda t: (order.get(t.slug, len(order)), t.slug))
    return Catalog(site, tuple(topics), digest.hexdigest()[:16], _matcher(topics))


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise CatalogError(f"invalid TOML: {error}", str(path)) from None
    except UnicodeDecodeError:
        raise CatalogError("not UTF-8 text", str(path)) from None


def _check_keys(data: dict, allowed: dict[str, type], path: Path, prefix: str = "") -> None:
    for key, value in data.items():
        if key not in allowed:
            raise CatalogError(
                f"unknown key '{prefix}{key}' (allowed: {', '.join(allowed)})", str(path)
            )
        expected = allowed[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise CatalogError(f"'{prefix}{key}' must be {TYPE_NAMES[expected]}", str(path))


def _site(data: dict, path: Path, base_url: str | None) -> Site:
    _check_keys(data, SITE_KEYS, path)
    for key in SITE_REQUIRED:
        if not data.get(key):
            raise CatalogError(f"missing key {key!r}", str(path))
    settings = {key: data[key] for key in SITE_KEYS if key in data and key != "topic_order"}
    if base_url:  # given on the command line or in the environment, not in this file
        settings["base_url"] = check_base_url(base_url)
    elif data.get("base_url"):
        settings["base_url"] = check_base_url(data["base_url"], str(path))
    for key in ("entries_per_feed", "max_age", "archive_page_size", "tombstone_days"):
        if key in settings and not 0 <= settings[key] <= 100_000:
            raise CatalogError(f"{key!r} must be between 0 and 100000", str(path))
    if "hubs" in settings:
        settings["hubs"] = tuple(_hub(hub, path) for hub in settings["hubs"])
    if "tag_prefix" in settings and not TAG_PREFIX.fullmatch(settings["tag_prefix"]):
        raise CatalogError("'tag_prefix' must look like 'tag:example.org,2026:'", str(path))
    return Site(**settings)


def _hub(url: object, path: Path) -> str:
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise CatalogError(f"'hubs' must list absolute http(s) URLs: {url!r}", str(path))
    return str(url)


def check_base_url(url: str, where: str | None = None) -> str:
    """An absolute http(s) URL, ending in '/'."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise CatalogError(f"'base_url' must be an absolute http(s) URL: {url!r}", where)
    return url if url.endswith("/") else url + "/"


def _topic(data: dict, path: Path) -> Topic:
    slug = path.stem
    if not SLUG.fullmatch(slug) or slug in (ALL, OTHER):
        raise CatalogError(
            f"bad topic slug {slug!r}: lowercase letters, digits and '-', not 'all' or 'other'",
            str(path),
        )
    _check_keys(data, TOPIC_KEYS, path)
    for key in ("title", "description"):
        if not data.get(key, "").strip():
            raise CatalogError(f"missing key {key!r}", str(path))
    rules = data.get("rules", {})
    _check_keys(rules, dict.fromkeys(RULE_KEYS, list), path, prefix="rules.")
    for key in RULE_KEYS:
        for number, rule in enumerate(rules.get(key, []), start=1):
            if not isinstance(rule, str) or not rule.strip():
                raise CatalogError(f"rules.{key}[{number}] must be a non-empty string", str(path))
    return Topic(
        slug,
        data["title"].strip(),
        data["description"].strip(),
        match=tuple(rules.get("match", [])),
        exclude=tuple(rules.get("exclude", [])),
    )


def _topic_order(order: list, path: Path, topics: Iterable[Topic]) -> dict[str, int]:
    known = {topic.slug for topic in topics}
    for slug in order:
        if slug not in known:
            raise CatalogError(f"'topic_order' names unknown topic {slug!r}", str(path))
    return {slug: position for position, slug in enumerate(order)}


def _matcher(topics: list[Topic]) -> Matcher:
    matcher = Matcher()
    for position, topic in enumerate(topics):
        for text in topic.match:
            matcher.add(text, Rule(position, exclude=False))
        for text in topic.exclude:
            matcher.add(text, Rule(position, exclude=True))
    return matcher
