"""Filing: the topic rules as an index of words, and the scores that decide an item's topics.

The kinds of rule (README, "Topics", says the same for editors):

- `match`: a word or phrase that counts for its topic on its own.
- `weak`: counts only next to another rule of its topic ("treatment" with "cancer").
- `fallback`: place names. They support the weak rules of their topic ("Russian drones") and
  count themselves next to a `match` rule of it ("Russian troops"). When no topic files an
  item on its own rules, they lend support to the weak rules of every topic ("France hold
  Ireland to a draw": `draw` is sport's); if that files it nowhere either, two or more of
  them file it under their own topic.
- `exclude`: a phrase whose words count for no rule of its topic where it is found
  ("Amazon rainforest" keeps `Amazon` out of tech; science still counts it).
- source names (`feeds/sources.toml`): a credit ("...: BBC", "(Reuters)", "told the BBC")
  counts for no topic; a mention that is the news ("BBC names new chair") still does.

Matching is whole-word, case-insensitive (a rule in capitals matches only capitals) and
accent-insensitive. A rule found in the title weighs more than one found only in the body.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from .phrases import Phrases, joined

MATCH, WEAK, FALLBACK, EXCLUDE, SOURCE = "match", "weak", "fallback", "exclude", "source"
RULE_KINDS = (MATCH, WEAK, FALLBACK, EXCLUDE)

# A rule found in the title weighs more than one found only in the body; an item goes under
# its best topic, and under a second one only when that one scores nearly as well.
TITLE_WEIGHT = 3
BODY_WEIGHT = 1
MIN_SCORE = 2
SECOND_SHARE = (2, 3)  # a second topic scoring two thirds of the best or more is filed too
PLACES_ALONE = 2  # place names that file an item under their topic with no other rule
BODY_CHARS = 3000  # the lead decides the beat; a passing mention deep in the text should not

_WORD = re.compile(r"\w+")
# For ASCII text, the same words as _WORD, about twice as fast: every ASCII character that is
# not a word character becomes a space, then split.
_ASCII_NON_WORD = bytes(c for c in range(128) if not (chr(c).isalnum() or c == ord("_")))
_ASCII_SPACES = bytes.maketrans(_ASCII_NON_WORD, b" " * len(_ASCII_NON_WORD))
# Accent folding: decompose, drop the combining marks of Latin, Greek and Cyrillic letters
# (the marks of other scripts are part of their letters), then the letters that do not
# decompose. "Mbappé" is "Mbappe", "Ødegaard" is "Odegaard", "Łódź" is "Lodz".
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_LETTERS = MappingProxyType(
    str.maketrans(
        dict(zip("øØłŁđĐðÐ\u0131", "oOlLdDdDi", strict=True))
        | {"æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "þ": "th", "Þ": "TH"}
    )
)

# Source credits: a source name after one of these, at the end of a headline, is a credit.
_CREDIT_SEPARATORS = (":", "-", "\u2013", "\u2014", "|", ",", "/", "(", "[")
# ... and so is one after these words ("told the BBC", "according to Reuters") ...
# fmt: off
_CREDIT_LEAD_INS = frozenset({
    ("told",), ("tells",), ("telling",), ("according", "to"), ("interview", "with"),
    ("speaking", "to"), ("spoke", "to"), ("reported", "by"), ("cited", "by"), ("quoted", "by"),
    ("seen", "by"), ("obtained", "by"), ("confirmed", "to"), ("said", "to"), ("writing", "in"),
    ("wrote", "in"), ("writes", "in"), ("reports",), ("says",), ("said",), ("via",),
})
# fmt: on
# ... or before these ("..., BBC reported", "Reuters has learned").
_CREDIT_FOLLOWERS = frozenset(
    tuple(words.split())
    for words in ("has learned", "has learnt", "understands", "reported", "reports that")
)
_CREDIT_LAST_WORDS = frozenset({"reports", "reported", "says", "said"})


def fold_accents(text: str) -> str:
    """`text` without accents (ASCII text is returned as it is)."""
    if text.isascii():
        return text
    stripped = _MARKS.sub("", unicodedata.normalize("NFKD", text))
    return unicodedata.normalize("NFC", stripped).translate(_LETTERS)


def words_of(text: str) -> list[str]:
    """The words of `text`, accents folded, case kept."""
    if text.isascii():
        return text.encode().translate(_ASCII_SPACES).decode().split()
    return _WORD.findall(fold_accents(text))


def _plurals(word: str) -> frozenset[str]:
    """A rule's last word and its plurals: a rule `election` finds `elections`, `economy`
    finds `economies`, `NGO` finds `NGOs`."""
    if len(word) < 3 or not word[-1].isalpha():
        return frozenset((word,))
    if word.isupper():
        forms = (word, word + "s", word + "es", word + "S", word + "ES")
        return frozenset((*forms, word[:-1] + "IES") if word[-1] == "Y" else forms)
    forms = (word, word + "s", word + "es")
    return frozenset((*forms, word[:-1] + "ies") if word[-1] in "yY" else forms)


def is_capitals(text: str) -> bool:
    """A rule written in capitals (`US`, `WHO`) matches only capitals."""
    if not text.isupper():  # a lowercase letter, or no letter that has a case
        return False
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def rule_words(text: str) -> list[str]:
    """The words a rule looks for, as the index keeps them."""
    words = words_of(text)
    return words if is_capitals(text) else [w.casefold() for w in words]


@dataclass(slots=True)
class _Index:
    """Rules of one case mode, each with its plural forms, as phrases of one automaton
    (phrases.py): a lookup is one scan of the text's words, whatever the number of rules."""

    phrases: Phrases = field(default_factory=Phrases)

    def add(self, words: list[str], rule: int) -> None:
        for form in _plurals(words[-1]):
            self.phrases.add((*words[:-1], form), rule)

    def find(self, text: str, found: set[int]) -> None:
        self.phrases.find(text, found)

    def __bool__(self) -> bool:
        return bool(self.phrases)


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as written in a topic file (or a source name, topic -1)."""

    topic: int
    kind: str
    text: str
    words: tuple[str, ...] = ()  # `rule_words(text)`, when the loader has them already


@dataclass(slots=True)
class Matcher:
    """Whole-word, case- and accent-insensitive phrase lookup (a rule in capitals, such as `US`
    or `WHO`, matches only capitals, so the pronoun "us" is not the country). The cost follows
    the length of the text, not the number of rules."""

    folded: _Index = field(default_factory=_Index)
    exact: _Index = field(default_factory=_Index)
    rules: list[Rule] = field(default_factory=list)
    words: list[tuple[str, ...]] = field(default_factory=list)  # each rule's, case folded

    def add(self, rule: Rule) -> None:
        words = list(rule.words) or rule_words(rule.text)
        if not words:
            return
        index = self.exact if is_capitals(rule.text) else self.folded
        index.add(words, len(self.rules))
        self.rules.append(rule)
        self.words.append(tuple(word.casefold() for word in words))

    def find(self, text: str) -> set[int]:
        """Indexes of the rules found in `text`."""
        return self.find_words(words_of(text))

    def find_words(self, words: list[str]) -> set[int]:
        found: set[int] = set()
        if not words:
            return found
        # Case folding the joined text folds each word: no word character folds to a space.
        text = joined(words)
        self.folded.find(text.casefold(), found)
        if self.exact:
            self.exact.find(text, found)
        return found


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule found in an item, and whether it counted towards its topic's score."""

    rule: str
    kind: str
    where: str  # "title" or "body"
    counts: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class TopicScore:
    slug: str
    score: int
    filed: bool
    hits: tuple[Hit, ...]


@dataclass(frozen=True, slots=True)
class ModelVote:
    """The statistical model's view of one topic: how likely, and what that did."""

    slug: str
    probability: float
    filed: bool  # the item went under this topic (by the rules, the model or both)
    note: str = ""  # what the model did: added the topic, or decided where no rule spoke


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why an item went where it went: each topic with a rule found, its score and rules."""

    topics: tuple[str, ...]
    scores: tuple[TopicScore, ...]
    credits: tuple[str, ...] = ()  # source names read as credits, counted for no topic
    pinned: bool = False  # the source or an editor named the topics (JSON Lines `topics`)
    subjects: tuple[str, ...] = ()  # the item's codes that filed it ("code -> listed code")
    model: tuple[ModelVote, ...] = ()  # the model's likeliest topics (none: no model)

    def as_dict(self) -> dict[str, object]:
        return {
            "pinned": self.pinned,
            "subjects": list(self.subjects),
            "credits": list(self.credits),
            "topics": [
                {
                    "topic": score.slug,
                    "score": score.score,
                    "filed": score.filed,
                    "rules": [
                        {"rule": h.rule, "kind": h.kind, "in": h.where, "counts": h.counts}
                        | ({"note": h.note} if h.note else {})
                        for h in score.hits
                    ],
                }
                for score in self.scores
            ],
            "model": [
                {"topic": v.slug, "probability": round(v.probability, 3), "filed": v.filed}
                | ({"note": v.note} if v.note else {})
                for v in self.model
            ],
        }


class _Found(NamedTuple):
    """The rules found in one text (title or body), credits and exclusions applied."""

    rules: AbstractSet[int]
    credits: tuple[str, ...] = ()


_NOTHING = _Found(frozenset())


@dataclass(slots=True)
class CompiledRules:
    """The catalogue's rules, ready to file items: `file` on the ingest path, `explain` for
    editors. Both take the same decisions (`_decide`)."""

    slugs: tuple[str, ...]
    matcher: Matcher = field(default_factory=Matcher)
    credit_patterns: dict[int, re.Pattern[str]] = field(default_factory=dict)
    source_ids: frozenset[int] = frozenset()
    # For each phrase rule, the rules found inside its words (any topic), so that a finding
    # held by a longer one is not counted twice; worked out once, when the rules are loaded.
    contains: dict[int, tuple[int, ...]] = field(default_factory=dict)
    kinds: list[str] = field(default_factory=list)  # of each rule, for the hot loop
    topics: list[int] = field(default_factory=list)
    plain: frozenset[int] = frozenset()  # match rules that hold no other rule: a fast path
    holders: frozenset[int] = frozenset()  # rules that hold others (the keys of `contains`)

    @classmethod
    def build(cls, slugs: tuple[str, ...], rules: Iterable[Rule]) -> CompiledRules:
        filer = cls(slugs)
        for rule in rules:
            filer._add(rule)
        matcher = filer.matcher
        kinds = [rule.kind for rule in matcher.rules]
        filer.source_ids = frozenset(i for i, kind in enumerate(kinds) if kind == SOURCE)
        filer.contains = _containment(matcher.words)
        filer.kinds = kinds
        filer.topics = [rule.topic for rule in matcher.rules]
        filer.holders = frozenset(filer.contains)
        filer.plain = frozenset(
            i for i, kind in enumerate(kinds) if kind == MATCH and i not in filer.contains
        )
        return filer

    def _add(self, rule: Rule) -> None:
        if rule.kind == SOURCE:
            words = [re.escape(w) for w in _WORD.findall(fold_accents(rule.text))]
            flags = 0 if is_capitals(rule.text) else re.IGNORECASE
            pattern = re.compile(r"(?<!\w)" + r"\W+".join(words) + r"(?!\w)", flags)
            self.credit_patterns[len(self.matcher.rules)] = pattern
        self.matcher.add(rule)

    def file(self, title: str, body: str = "") -> tuple[str, ...]:
        """The slugs of the topics an item with this title and body belongs under."""
        return self.choose(*self.found(title, body))

    def found(self, title: str, body: str = "") -> tuple[AbstractSet[int], AbstractSet[int]]:
        """The rules found in the title, and those found only in the body (for `choose`)."""
        in_title = self._rules(title)
        return in_title, self._rules(body[:BODY_CHARS]) - in_title if body else frozenset()

    def choose(self, in_title: AbstractSet[int], in_body: AbstractSet[int]) -> tuple[str, ...]:
        """The topics these rules file an item under (`choose(in_title, frozenset())`: as
        its title alone files it, without finding the title's rules again)."""
        if not in_title and not in_body:
            return ()
        return self._chosen(self._decide(in_title, in_body))

    def explain(self, title: str, body: str = "") -> Explanation:
        in_title = self._find(title)
        in_body = self._find(body[:BODY_CHARS]) if body else _NOTHING
        title_rules, body_rules = in_title.rules, in_body.rules - in_title.rules
        notes: dict[int, tuple[bool, str]] = {}
        scores = self._decide(title_rules, body_rules, notes)
        chosen = self._chosen(scores)
        rules = self.matcher.rules
        by_topic: dict[int, list[Hit]] = {}
        for where, found in (("title", title_rules), ("body", body_rules)):
            for index in sorted(found, key=lambda i: rules[i].text.casefold()):
                rule = rules[index]
                if rule.topic >= 0:
                    counts, note = notes[index]
                    hit = Hit(rule.text, rule.kind, where, counts, note)
                    by_topic.setdefault(rule.topic, []).append(hit)
        return Explanation(
            chosen,
            tuple(
                TopicScore(self.slugs[t], scores[t], self.slugs[t] in chosen, tuple(hits))
                for t, hits in sorted(by_topic.items())
            ),
            tuple(dict.fromkeys(in_title.credits + in_body.credits)),
        )

    def _rules(self, text: str) -> AbstractSet[int]:
        """What `_find` finds, without its account of the credits: for `file`."""
        words = words_of(text)
        found = self.matcher.find_words(words)
        if self.source_ids.isdisjoint(found):
            return found  # no credit to take out
        return self._find(text, words, found).rules

    def _find(
        self, text: str, words: list[str] | None = None, found: set[int] | None = None
    ) -> _Found:
        """The rules found in `text`, credits taken out (given the text's words and what they
        find, when the caller has them already)."""
        if words is None or found is None:
            words = words_of(text)
            found = self.matcher.find_words(words)
        if not found:
            return _NOTHING
        credits: tuple[str, ...] = ()
        if not self.source_ids.isdisjoint(found):
            text, credits = self._uncredited(text, found)
            if credits:
                words = words_of(text)
                found = self.matcher.find_words(words)
        return _Found(found.difference(self.source_ids), credits)

    def _uncredited(self, text: str, found: set[int]) -> tuple[str, tuple[str, ...]]:
        """`text` with its source credits blanked out, and the names credited."""
        text = fold_accents(text)
        credits = []
        for index in sorted(found):
            pattern = self.credit_patterns.get(index)
            if pattern is None:
                continue
            for match in reversed(list(pattern.finditer(text))):
                if _is_credit(text, match.start(), match.end()):
                    text = text[: match.start()] + " " * len(match[0]) + text[match.end() :]
                    credits.append(self.matcher.rules[index].text)
        return text, tuple(dict.fromkeys(credits))

    def _decide(
        self,
        in_title: AbstractSet[int],
        in_body: AbstractSet[int],
        notes: dict[int, tuple[bool, str]] | None = None,
    ) -> list[int]:
        """Each topic's score; given `notes`, it also says for each rule found whether it
        counted, and why not (the scores are the same either way)."""
        kinds, topics = self.kinds, self.topics
        if notes is None and self.plain.issuperset(in_title) and self.plain.issuperset(in_body):
            # Only match rules that hold no other: nothing to support or to find twice.
            scores = [0] * len(self.slugs)
            for index in in_title:
                scores[topics[index]] += TITLE_WEIGHT
            for index in in_body:
                scores[topics[index]] += BODY_WEIGHT
            return scores
        weight = dict.fromkeys(in_title, TITLE_WEIGHT)
        if in_body:
            weight.update(dict.fromkeys(in_body, BODY_WEIGHT))
        parts = self._parts(weight) if not self.holders.isdisjoint(weight) else {}
        # Support within a topic: a weak rule needs another rule of its topic, a place name a
        # match rule of it (a place and a weak word alike are thin evidence).
        found = [0] * len(self.slugs)
        matched = [0] * len(self.slugs)
        for index in weight:
            if index not in parts and kinds[index] != EXCLUDE:
                found[topics[index]] += 1
                matched[topics[index]] += kinds[index] == MATCH
        scores = [0] * len(self.slugs)
        waiting = []  # weak and fallback rules without support from their own topic
        for index, points in weight.items():
            kind, topic = kinds[index], topics[index]
            if index in parts or kind == EXCLUDE:
                continue
            if (
                kind == MATCH
                or (kind == WEAK and found[topic] > 1)
                or (kind == FALLBACK and matched[topic])
            ):
                scores[topic] += points
            else:
                waiting.append(index)
        counted: dict[int, str] = {}  # of the waiting rules: those that count after all, why
        if waiting and max(scores) < MIN_SCORE:
            # No topic files the item on its own rules: place names lend support to the weak
            # rules of every topic; if that files it nowhere either, two or more of them count
            # on their own (one place is where a story happened, two are often what it is about).
            places = [i for i in waiting if kinds[i] == FALLBACK]
            weak = [i for i in waiting if kinds[i] == WEAK]
            lent = list(scores)
            for index in weak if places else ():
                lent[topics[index]] += weight[index]
            if max(lent) >= MIN_SCORE:
                scores = lent
                counted = dict.fromkeys(weak, "weak, supported by a place name")
            elif len(places) >= PLACES_ALONE:
                for index in places:
                    scores[topics[index]] += weight[index]
                counted = dict.fromkeys(places, "a place name, and no other topic files the item")
        if notes is not None:
            self._note(notes, weight, parts, waiting, counted)
        return scores

    def _note(
        self,
        notes: dict[int, tuple[bool, str]],
        weight: dict[int, int],
        parts: dict[int, int],
        waiting: list[int],
        counted: dict[int, str],
    ) -> None:
        rules = self.matcher.rules
        for index in weight:
            if index in parts:
                holder = rules[parts[index]]
                where = "exclude" if holder.kind == EXCLUDE else self.slugs[holder.topic]
                notes[index] = (False, f"part of {holder.text!r} ({where})")
            elif rules[index].kind == EXCLUDE:
                slug = self.slugs[rules[index].topic]
                notes[index] = (False, f"its words count for no {slug} rule")
            elif index in counted:
                notes[index] = (True, counted[index])
            elif index in waiting:
                notes[index] = (False, self._unsupported(rules[index]))
            else:
                notes[index] = (True, "")

    def _parts(self, weight: dict[int, int]) -> dict[int, int]:
        """Rules found inside the words of a longer rule found in the same place (title or
        body), and that rule: a name is one finding. "Supreme Court" is not also "court", and
        "Six Nations" (sport) is not also "nations" (world). An exclude phrase holds only the
        rules of its own topic: "Amazon rainforest" keeps tech's "Amazon" from counting.
        A rule inside several (the same phrase in two topics) is part of one of its own topic if
        there is one, else of the first in the catalogue: `explain` names the same one in every
        process (the order of a set of found rules is not that)."""
        parts: dict[int, int] = {}
        kinds, topics = self.kinds, self.topics
        for index in sorted(self.holders.intersection(weight)):
            points = weight[index]
            own = topics[index] if kinds[index] == EXCLUDE else None
            for inner in self.contains[index]:
                if weight.get(inner) == points and (own is None or topics[inner] == own):
                    held = parts.get(inner)
                    if held is None or (
                        topics[held] != topics[inner] and topics[index] == topics[inner]
                    ):
                        parts[inner] = index
        return parts

    def _unsupported(self, rule: Rule) -> str:
        slug = self.slugs[rule.topic]
        if rule.kind == WEAK:
            return f"weak: counts only next to another {slug} rule"
        return (
            f"a place name: counts next to a {slug} match rule, or with another place name "
            "when no topic files the item"
        )

    def _chosen(self, scores: list[int]) -> tuple[str, ...]:
        best = max(scores, default=0)
        if best < MIN_SCORE:
            return ()
        share, of = SECOND_SHARE
        floor = max(MIN_SCORE, -(-best * share // of))  # the share of the best, rounded up
        slugs = self.slugs
        return tuple([slugs[topic] for topic, score in enumerate(scores) if score >= floor])


def plural_forms(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The word sequences a rule finds: its words, and its last word's plurals."""
    return {(*words[:-1], form) for form in _plurals(words[-1])} if words else set()


def _containment(words: list[tuple[str, ...]]) -> dict[int, tuple[int, ...]]:
    """For each rule of two or more words, the shorter rules that find words inside it."""
    rules: dict[tuple[str, ...], list[int]] = {}
    for index, rule in enumerate(words):
        rules.setdefault(rule, []).append(index)
    contains: dict[int, tuple[int, ...]] = {}
    for index, phrase in enumerate(words):
        inner = set()
        for size in range(1, len(phrase)):
            for start in range(len(phrase) - size + 1):
                *head, last = phrase[start : start + size]
                # the rules whose words these are, or whose plural they are
                for word in _singulars(last):
                    for other in rules.get((*head, word), ()):
                        if last in _plurals(word):
                            inner.add(other)
        if inner:
            contains[index] = tuple(sorted(inner))
    return contains


def _singulars(word: str) -> set[str]:
    """The words whose plurals (`_plurals`) may include `word`, and `word` itself."""
    found = {word}
    if word.endswith("s"):
        found.add(word[:-1])
        if word.endswith("es"):
            found.add(word[:-2])
            if word.endswith("ies"):
                found.add(word[:-3] + "y")
    return found


def _is_credit(text: str, start: int, end: int) -> bool:
    """Whether the source name at text[start:end] credits the story rather than being in it."""
    before = text[:start].rstrip()
    after = text[end:].strip()
    if before.endswith(("(", "[")) and after.startswith((")", "]")):
        return True
    ahead = tuple(w.casefold() for w in _WORD.findall(after[:40]))
    behind = [w.casefold() for w in _WORD.findall(before[-40:])]
    if behind and behind[-1] == "the":
        behind.pop()
    if tuple(behind[-1:]) in _CREDIT_LEAD_INS or tuple(behind[-2:]) in _CREDIT_LEAD_INS:
        return True
    if ahead[:1] in _CREDIT_FOLLOWERS or ahead[:2] in _CREDIT_FOLLOWERS:
        return True
    if not before.endswith(_CREDIT_SEPARATORS):
        return False
    # "...: BBC", "... - Reuters", "..., BBC reports" at the end
    return not ahead or (len(ahead) == 1 and ahead[0] in _CREDIT_LAST_WORDS)


@dataclass(slots=True)
class LazyRules:
    """The rules, built into `CompiledRules` the first time an item is filed: most commands
    (build, serve, topics) load the catalogue but file nothing."""

    slugs: tuple[str, ...]
    rules: list[Rule]
    built: CompiledRules | None = None

    def get(self) -> CompiledRules:
        if self.built is None:
            self.built = CompiledRules.build(self.slugs, self.rules)
        return self.built
