"""The topic catalogue in `feeds/`: site settings, topics, and the rules that file items."""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from .bylines import AUTHORS, SOURCES, author_names, feed_key, name_slug
from .classifier import LazyModel, find_model, log_odds
from .errors import CatalogError, DocumentError
from .filing import (
    RULE_KINDS,
    SOURCE,
    CompiledRules,
    Explanation,
    LazyRules,
    ModelVote,
    Rule,
    plural_forms,
    rule_words,
)
from .model import Item, Site, Topic
from .subjects import CODE, lineage

ALL = "all"  # built in: every item
OTHER = "other"  # built in: the items no topic's rules matched
OTHER_TITLE = "Other news"
OTHER_DESCRIPTION = "Items that match no topic."
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
    "author_feeds": bool,
    "source_feeds": bool,
    "model": bool,  # false: the rules alone file items (no statistical model)
}
SITE_REQUIRED = ("title", "description", "author")  # base_url: only `build` needs one
TOPIC_KEYS = {"title": str, "description": str, "rules": dict, "subjects": list}
SOURCES_FILE = "sources.toml"
SOURCES_KEYS = {"names": list}
TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    list: "a list",
    dict: "a table",
    bool: "true or false",
}
# The rules and the model (README, "How filing works"), as probabilities the model gives:
# the first topic the rules find in the title stands unless the model is sure it is not the
# story (under `stands`: a word read out of its sense, "race" in an election); another topic
# they find in the title, or one they find only in the body, needs more (`second`, `in_body`,
# `second_body`: a second topic wrongly filed is the commonest error of the rules); the model
# adds a topic it finds likely (`adds`), and where no rule stands it decides with its
# likeliest topic (`decides`). All chosen by `python -m bench.topics_cv --sweep`: the best
# micro-F1 of its cross-validation with a second-topic precision of 0.82 or more.
MODEL_SHOWN = 3  # --explain lists the model's likeliest topics


@dataclass(frozen=True, slots=True)
class Bars:
    """The bars of `Catalog._combine`, as probabilities (bench.topics_cv tries others)."""

    stands: float = 0.05  # the first topic, found by the rules in the title
    second: float = 0.2  # another topic found in the title
    in_body: float = 0.2  # the first topic, found by the rules only in the body
    second_body: float = 0.4  # another topic found only in the body
    adds: float = 0.9  # a topic the rules did not find
    decides: float = 0.3  # the likeliest topic, where no rule stands
    margin: float = math.inf  # log-odds: a second topic this far below the first is left out

    def log_odds(self) -> _LogOdds:
        """The bars as scores (log-odds), so comparing them costs no exponential."""
        return _LogOdds(
            *(_odds(p) for p in (self.stands, self.second, self.in_body, self.second_body)),
            _odds(self.adds),
            _odds(self.decides),
            self.margin,
        )


@dataclass(frozen=True, slots=True)
class _LogOdds:
    stands: float
    second: float
    in_body: float
    second_body: float
    adds: float
    decides: float
    margin: float

    @property
    def confirmed(self) -> float:
        """A rule's topic this likely stands, wherever found."""
        return max(self.stands, self.second, self.in_body, self.second_body)


def _odds(probability: float) -> float:
    """`log_odds`, with a bar of 0 passed by every topic and one of 1 by none."""
    if probability <= 0 or probability >= 1:
        return -math.inf if probability <= 0 else math.inf
    return log_odds(probability)


BARS = Bars()  # an item with a body (the tuning half's cross-validation)
# A headline alone: a few words, and the rules were written for headlines. The model has
# little to read: on topics_labelled.tsv's cross-validation every override of a title rule
# and every addition cost more than it gained. It keeps out a second title topic it finds
# unlikely, and decides where no rule speaks only when sure (0.6: 0.002 of micro-F1 below
# never deciding, and an editor's corrections can still file a headline no rule knows).
BARS_HEADLINE = Bars(stands=0.0, second=0.2, adds=1.0, decides=0.6)
_BARS, _BARS_HEADLINE = BARS.log_odds(), BARS_HEADLINE.log_odds()
# Part of the digest: a change to how rules are applied re-files stored items like a change
# to the rules does (2: unmatched items go under `other`; 3: weak, fallback and source rules;
# 4: the model's bars for a headline alone).
FILING_VERSION = b"4"
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)$")


@dataclass(frozen=True, slots=True)
class Catalog:
    """The site, its topics (in display order, without the built-in `all` and `other`) and the
    filing rules."""

    site: Site
    topics: tuple[Topic, ...]
    digest: str  # changes when any topic file changes, so stored items get re-filed
    rules: LazyRules
    # IPTC subject code -> the topics that list it (`subjects` in their TOML)
    by_subject: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    model: LazyModel | None = None  # None: the rules alone (`model = false` in site.toml)

    @property
    def filer(self) -> CompiledRules:
        """The rules, ready to file items (built on first use)."""
        return self.rules.get()

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
        """The slugs of the topics an item with this title and body belongs under: the rules',
        and the model's where it is sure enough (`_combine`)."""
        filer = self.filer
        title_rules, body_rules = filer.found(title, body)
        by_rules = filer.choose(title_rules, body_rules)
        if self.model is None:
            return by_rules
        model = self.model.get()
        if not model.topics:  # it knows none of the catalogue's topics
            return by_rules
        scores = model.scores(title, body)
        bars = _BARS if body else _BARS_HEADLINE
        best = max(scores)
        # The usual cases, kept cheap: nothing for the model to decide, add or keep out.
        if not by_rules and best < bars.decides:
            return by_rules
        if by_rules:
            own, others = model.places(by_rules)  # what picks those scores, as tuples
            lowest, highest = (
                min(own(scores), default=bars.confirmed),
                max(others(scores), default=-math.inf),
            )
            if (
                lowest >= bars.confirmed
                and highest < bars.adds
                and (len(by_rules) == 1 or max(own(scores)) - lowest <= bars.margin)
            ):
                return by_rules
        in_title = filer.choose(title_rules, frozenset()) if body_rules else by_rules
        return self._combine(by_rules, in_title, model.topics, scores, bars)[0]

    def _combine(
        self,
        by_rules: tuple[str, ...],
        in_title: tuple[str, ...],
        slugs: Sequence[str],
        scores: Sequence[float],
        bars: _LogOdds = _BARS,
    ) -> tuple[tuple[str, ...], dict[str, str]]:
        """The topics of the rules (`by_rules`; `in_title`: as the title alone files it)
        and the model (`scores`: log-odds, so the bars cost no exponential), and what the
        model did for each topic it added, decided or kept out."""
        likely = dict(zip(slugs, scores, strict=True))
        done: dict[str, str] = {}
        kept = []
        # The story's first topic: the likeliest the rules found in the title (else anywhere).
        first = max(in_title or by_rules, key=lambda slug: likely.get(slug, math.inf), default="")
        for slug in by_rules:
            if slug == first:
                bar = bars.stands if slug in in_title else bars.in_body
            else:
                bar = bars.second if slug in in_title else bars.second_body
            if likely.get(slug, math.inf) >= bar:
                kept.append(slug)
            else:
                done[slug] = "kept out by the model: " + (
                    "it reads the title's rule in another sense"
                    if slug in in_title
                    else "the title alone does not file it, the body is thin evidence"
                )
        best = max(scores, default=bars.adds)
        note = "added by the model" if kept else "decided by the model: no rule stands"
        for slug, score in likely.items():
            if slug not in kept and (
                score >= bars.adds or (not kept and score == best >= bars.decides)
            ):
                done[slug] = note
                kept.append(slug)
        if len(kept) > 1 and bars.margin < math.inf:
            # A second topic far less likely than the first is a passing mention.
            top = max((likely[slug] for slug in kept if slug in likely), default=math.inf)
            for slug in list(kept):
                if likely.get(slug, math.inf) < top - bars.margin:
                    kept.remove(slug)
                    done[slug] = "kept out by the model: far less likely than the first topic"
        if not done:
            return by_rules, done
        return tuple(t.slug for t in self.topics if t.slug in kept), done

    def topics_for(self, item: Item) -> tuple[str, ...]:
        """An item's topics: the ones its source pinned (JSON Lines `topics`), else the ones
        listing its IPTC subject codes, else the word rules'; `other` when none gives one.
        Then, where the site has them, its authors' and its source's feeds (`bylines`)."""
        return self._topics(item) + self.bylines_for(item)

    def _topics(self, item: Item) -> tuple[str, ...]:
        if item.topics:
            return self._pinned(item)
        by_codes, _ = self.subject_topics(item.subjects)
        return by_codes or self.file(item.title, item.body_text()) or (OTHER,)

    def bylines_for(self, item: Item) -> tuple[str, ...]:
        """The author and source feeds an item is filed under (`authors/<slug>`,
        `sources/<slug>`): none unless site.toml turns them on."""
        keys = []
        if self.site.author_feeds:
            names = author_names(item.author)
            keys += [feed_key(AUTHORS, name_slug(name)) for name in names]  # type: ignore[arg-type]
        source = name_slug(item.source) if self.site.source_feeds else None
        if source is not None:
            keys.append(feed_key(SOURCES, source))
        return tuple(keys)

    def subject_topics(self, codes: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The topics that list one of `codes` or a broader code (for each code the nearest
        listed one wins: a topic listing "technology" gets an IT story before one listing
        "science and technology"), and how each code got there."""
        topics: dict[str, None] = {}
        reasons = []
        for code in codes if self.by_subject else ():
            for listed in lineage(code):
                if listed in self.by_subject:
                    topics.update(dict.fromkeys(self.by_subject[listed]))
                    reasons.append(code if listed == code else f"{code} -> {listed}")
                    break
        order = [topic.slug for topic in self.topics]
        return tuple(sorted(topics, key=order.index)), tuple(reasons)

    def explain(self, item: Item) -> Explanation:
        """Why `topics_for` files the item where it does: each topic's score and rules."""
        body = item.body_text()
        explanation = self.filer.explain(item.title, body)
        model = self.model.get() if self.model else None
        scores = model.scores(item.title, body) if model else []
        likely = model.likely(scores) if model else {}
        topics = explanation.topics
        done: dict[str, str] = {}
        if model:
            in_title = self.filer.file(item.title) if topics and body else topics
            bars = _BARS if body else _BARS_HEADLINE
            topics, done = self._combine(topics, in_title, model.topics, scores, bars)
        by_codes, reasons = self.subject_topics(item.subjects)
        if item.topics:
            topics, done = self._pinned(item), {}
            explanation = replace(explanation, pinned=True)
        elif by_codes:
            topics, done = by_codes, {}
            explanation = replace(explanation, subjects=reasons)
        shown = sorted(likely, key=lambda slug: (-likely[slug], slug))[:MODEL_SHOWN]
        shown += [slug for slug in done if slug not in shown]
        votes = tuple(
            ModelVote(slug, likely[slug], slug in topics, done.get(slug, "")) for slug in shown
        )
        return replace(explanation, topics=topics, model=votes)

    def check_topics(self, slugs: Iterable[str]) -> tuple[str, ...]:
        """Topics an editor names (`feedsvc file --topics`, the API), as an item is filed under
        them: `other` alone for none. An unknown slug is a `CatalogError`."""
        known = [topic.slug for topic in self.topics]
        given = [slug.strip() for slug in slugs if slug.strip()]
        for slug in given:
            if slug not in (*known, OTHER):
                raise CatalogError(f"unknown topic {slug!r} (topics: {', '.join(known)}, other)")
        if not given:
            raise CatalogError(f"no topic given (topics: {', '.join(known)}, other)")
        if OTHER in given and len(set(given)) > 1:
            raise CatalogError("'other' is for items of no topic: it goes with no other topic")
        return tuple(slug for slug in (*known, OTHER) if slug in given)

    def _pinned(self, item: Item) -> tuple[str, ...]:
        known = {ALL, OTHER, *(topic.slug for topic in self.topics)}
        unknown = [slug for slug in item.topics if slug not in known]
        if unknown:
            raise DocumentError(f"item {item.id!r}: unknown topic {unknown[0]!r}")
        return tuple(slug for slug in item.topics if slug != ALL) or (OTHER,)


def load_catalog(feeds_dir: Path, base_url: str | None = None) -> Catalog:
    """Read `feeds/site.toml`, `feeds/topics/*.toml` and `feeds/sources.toml` (optional);
    `base_url` overrides the site's. With neither, the site has no base URL: `serve` gives the
    address it serves, `build` refuses."""
    site_file = feeds_dir / "site.toml"
    if not site_file.is_file():
        raise CatalogError(
            "no site.toml here: give the catalogue directory with --feeds DIR or FEEDSVC_FEEDS "
            "(the default, ./feeds, is the one in the project's directory)",
            str(feeds_dir),
        )
    site_data, _ = _read_toml(site_file)
    site = _site(site_data, site_file, base_url)
    digest = hashlib.sha256(FILING_VERSION + b"\0")
    use_model = site_data.get("model", True)
    digest.update(b"model\0")
    topics: list[tuple[Topic, list[tuple[str, str, tuple[str, ...]]]]] = []
    for path in sorted((feeds_dir / "topics").glob("*.toml")):
        data, source = _read_toml(path)
        digest.update(path.name.encode() + b"\0" + source.encode() + b"\0")
        topics.append(_topic(data, _Source(path, source)))
    sources_file = feeds_dir / SOURCES_FILE
    names: list[str] = []
    if sources_file.is_file():
        data, source = _read_toml(sources_file)
        digest.update(SOURCES_FILE.encode() + b"\0" + source.encode() + b"\0")
        names = _source_names(data, _Source(sources_file, source))
    for key in ("author_feeds", "source_feeds"):  # only when on: off, stored items stay put
        if site_data.get(key):
            digest.update(key.encode() + b"\0")
    order = _topic_order(site_data.get("topic_order", []), site_file, [t for t, _ in topics])
    topics.sort(key=lambda t: (order.get(t[0].slug, len(order)), t[0].slug))
    model = find_model(feeds_dir, [t.slug for t, _ in topics]) if use_model else None
    digest.update((model.digest.encode() if model else b"-") + b"\0")
    by_subject: dict[str, tuple[str, ...]] = {}
    for topic, _ in topics:
        for code in topic.subjects:
            by_subject[code] = (*by_subject.get(code, ()), topic.slug)
    return Catalog(
        site,
        tuple(t for t, _ in topics),
        digest.hexdigest()[:16],
        _filer(topics, names),
        MappingProxyType(by_subject),
        model,
    )


@dataclass(frozen=True, slots=True)
class _Source:
    """A catalogue file and its text, to say on which line a bad key or rule is."""

    path: Path
    text: str

    def error(self, message: str, key: str | None = None, item: int | None = None) -> CatalogError:
        line = self.line_of(key, item) if key else None
        return CatalogError(message, str(self.path), line)

    def line_of(self, key: str, item: int | None = None) -> int | None:
        """The line that sets `key` (the last part of a dotted key), or the line where the
        `item`th value (from 1) of the list it holds begins."""
        name = re.escape(key.rpartition(".")[2])
        setting = re.compile(rf"^[ \t]*(?:[\w.]+\.)?[\"']?{name}[\"']?[ \t]*=[ \t]*", re.MULTILINE)
        found = setting.search(self.text)
        if found is None:
            return None
        start = found.end()
        if item is not None:
            start = _list_item(self.text, start, item) or start
        return self.text.count("\n", 0, start) + 1


def _list_item(text: str, start: int, item: int) -> int | None:
    """Where the `item`th value of the TOML list that opens at `start` begins: strings are
    skipped whole, comments to the end of their line."""
    if not text.startswith("[", start):
        return None
    position, depth, count, expecting = start + 1, 1, 0, True
    while position < len(text) and depth:
        char = text[position]
        if char == "#":
            position = text.find("\n", position)
            if position < 0:
                return None
            continue
        if expecting and not char.isspace() and char not in ",]":
            count += 1
            if count == item:
                return position
            expecting = False
        if char in "\"'":
            end = text.find(char, position + 1)
            while char == '"' and end > 0 and text[end - 1] == "\\":
                end = text.find(char, end + 1)
            position = end if end > 0 else len(text)
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        elif char == "," and depth == 1:
            expecting = True
        position += 1
    return None


def _read_toml(path: Path) -> tuple[dict, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise CatalogError("not UTF-8 text", str(path)) from None
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        line = _TOML_LINE.search(message)
        message = _TOML_LINE.sub("", message).strip()
        raise CatalogError(
            f"invalid TOML: {message}", str(path), int(line[1]) if line else None
        ) from None


def _check_keys(
    data: dict, allowed: dict[str, type], path: Path | _Source, prefix: str = ""
) -> None:
    source = path if isinstance(path, _Source) else _Source(path, "")
    for key, value in data.items():
        if key not in allowed:
            raise source.error(f"unknown key '{prefix}{key}' (allowed: {', '.join(allowed)})", key)
        expected = allowed[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise source.error(f"'{prefix}{key}' must be {TYPE_NAMES[expected]}", key)


def _site(data: dict, path: Path, base_url: str | None) -> Site:
    _check_keys(data, SITE_KEYS, path)
    for key in SITE_REQUIRED:
        if not data.get(key):
            raise CatalogError(f"missing key {key!r}", str(path))
    settings = {k: data[k] for k in SITE_KEYS if k in data and k not in ("topic_order", "model")}
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


def _topic(data: dict, source: _Source) -> tuple[Topic, list[tuple[str, str, tuple[str, ...]]]]:
    slug = source.path.stem
    if not SLUG.fullmatch(slug) or slug in (ALL, OTHER):
        raise source.error(
            f"bad topic slug {slug!r}: lowercase letters, digits and '-', not 'all' or 'other'"
        )
    _check_keys(data, TOPIC_KEYS, source)
    for key in ("title", "description"):
        if not data.get(key, "").strip():
            raise source.error(f"missing key {key!r}")
    rules = data.get("rules", {})
    _check_keys(rules, dict.fromkeys(RULE_KINDS, list), source, prefix="rules.")
    found: list[tuple[str, str, tuple[str, ...]]] = []  # kind, rule, its words
    rules_by_words: dict[tuple[str, ...], str] = {}
    found_by: dict[tuple[str, ...], str] = {}  # the words each rule finds, plurals too
    for kind in RULE_KINDS:
        for number, rule in enumerate(rules.get(kind, []), start=1):
            where = f"rules.{kind}[{number}]"
            if not isinstance(rule, str) or not rule.strip():
                raise source.error(f"{where} must be a non-empty string", kind, number)
            words = tuple(rule_words(rule))
            if not words:
                raise source.error(f"{where} {rule!r} has no letters or digits", kind, number)
            finds = plural_forms(words)
            if words in found_by:
                raise source.error(
                    f"{where} {rule!r} is already found by {found_by[words]} (a rule finds its "
                    "plural too; case and accents do not matter)",
                    kind,
                    number,
                )
            plural = next((rules_by_words[f] for f in finds if f in rules_by_words), None)
            if plural:
                raise source.error(
                    f"{where} {rule!r} also finds {plural}: keep only {rule!r}", kind, number
                )
            rules_by_words[words] = f"rules.{kind} {rule!r}"
            found.append((kind, rule, words))
            for form in finds:
                found_by.setdefault(form, f"rules.{kind} {rule!r}")
    topic = Topic(
        slug,
        data["title"].strip(),
        data["description"].strip(),
        match=tuple(rules.get("match", [])),
        exclude=tuple(rules.get("exclude", [])),
        subjects=_subjects(data.get("subjects", []), source),
    )
    return topic, found


def _subjects(codes: list, source: _Source) -> tuple[str, ...]:
    for number, code in enumerate(codes, start=1):
        if not isinstance(code, str) or not CODE.fullmatch(code):
            raise source.error(
                f"subjects[{number}] must be an IPTC code such as 'medtop:15000000' or "
                f"'subj:15000000': {code!r}",
                "subjects",
                number,
            )
    return tuple(dict.fromkeys(codes))


def _source_names(data: dict, source: _Source) -> list[str]:
    _check_keys(data, SOURCES_KEYS, source)
    names = data.get("names", [])
    for number, name in enumerate(names, start=1):
        if not isinstance(name, str) or not rule_words(name):
            raise source.error(f"names[{number}] must be a name with letters", "names", number)
    return names


def _topic_order(order: list, path: Path, topics: Iterable[Topic]) -> dict[str, int]:
    known = {topic.slug for topic in topics}
    for slug in order:
        if slug not in known:
            raise CatalogError(f"'topic_order' names unknown topic {slug!r}", str(path))
    return {slug: position for position, slug in enumerate(order)}


def _filer(
    topics: list[tuple[Topic, list[tuple[str, str, tuple[str, ...]]]]], sources: list[str]
) -> LazyRules:
    rules = [
        Rule(position, kind, text, words)
        for position, (_, topic_rules) in enumerate(topics)
        for kind, text, words in topic_rules
    ]
    rules.extend(Rule(-1, SOURCE, name) for name in sources)
    return LazyRules(tuple(topic.slug for topic, _ in topics), rules)
