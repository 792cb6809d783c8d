"""Filing: the topic rules as an index of words, and the scores that decide an item's topics.

The kinds of rule (README, "Topics", says the same for editors):

- `match`: a word or phrase that counts for its topic on its own.
- `weak`: counts only next to another rule of its topic ("treatment" with "cancer").
- `fallback`: place names. They support the weak rules of their topic ("Russian drones") and
  count themselves next to a `match` rule of it ("Russian troops"). When no topic files an
  item on its own rules, they lend support to the weak rules of every topic ("France hold
  Ireland to a draw": `draw` is sport's); if that files it nowhere either, two or more of
  them file it under their own topic.
- `exclude`: a phrase whose words count for no rule of its topic ("Amazon rainforest" keeps
  `Amazon` out of tech, while another mention of Amazon still counts).
- source names (`feeds/sources.toml`): a credit ("...: BBC", "(Reuters)", "told the BBC")
  counts for no topic; a mention that is the news ("BBC names new chair") still does.

Matching is whole-word, case-insensitive (a rule in capitals matches only capitals) and
accent-insensitive. A rule found in the title weighs more than one found only in the body.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from types import MappingProxyType

MATCH, WEAK, FALLBACK, EXCLUDE, SOURCE = "match", "weak", "fallback", "exclude", "source"
RULE_KINDS = (MATCH, WEAK, FALLBACK, EXCLUDE)

# A rule found in the title weighs more than one found only in the body; an item goes under
# its best topic, and under a second one only when that one scores nearly as well.
TITLE_WEIGHT = 3
BODY_WEIGHT = 1
MIN_SCORE = 2
SECOND_RATIO = Fraction(2, 3)  # exact: a second topic at two thirds of the best is filed
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
_GAP = "\x00"  # stands in for a masked word: matches no rule and breaks phrases

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


def _casefold_all(words: list[str]) -> list[str]:
    # One case fold for all the words (the separator is no word character).
    return "\x1f".join(words).casefold().split("\x1f") if words else []


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


def is_capitals(text: str) -> bool:
    """A rule written in capitals (`US`, `WHO`) matches only capitals."""
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 2 and all(c.isupper() for c in letters)


def rule_words(text: str) -> list[str]:
    """The words a rule looks for, as the index keeps them."""
    words = _WORD.findall(fold_accents(unicodedata.normalize("NFC", text)))
    return words if is_capitals(text) else [w.casefold() for w in words]


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


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as written in a topic file (or a source name, topic -1)."""

    topic: int
    kind: str
    text: str


@dataclass(slots=True)
class Matcher:
    """Whole-word, case- and accent-insensitive phrase lookup (a rule in capitals, such as `US`
    or `WHO`, matches only capitals, so the pronoun "us" is not the country). The cost follows
    the length of the text, not the number of rules."""

    folded: _Index = field(default_factory=_Index)
    exact: _Index = field(default_factory=_Index)
    rules: list[Rule] = field(default_factory=list)
    # Each rule's words, case folded, with the plural forms the index finds for them: to
    # tell when two rules found the same words ("Supreme Court" and "court", "win" and "wins").
    forms: list[tuple[frozenset[str], ...]] = field(default_factory=list)

    def add(self, rule: Rule) -> None:
        words = rule_words(rule.text)
        if not words:
            return
        index = self.exact if is_capitals(rule.text) else self.folded
        index.add(words, len(self.rules))
        self.rules.append(rule)
        self.forms.append(tuple(_plurals(word.casefold()) for word in words))

    def find(self, text: str) -> set[int]:
        """Indexes of the rules found in `text`."""
        return self.find_words(words_of(text))

    def find_words(self, words: list[str]) -> set[int]:
        found: set[int] = set()
        self.folded.find(_casefold_all(words), found)
        if self.exact:
            self.exact.find(words, found)
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
class Explanation:
    """Why an item went where it went: each topic with a rule found, its score and rules."""

    topics: tuple[str, ...]
    scores: tuple[TopicScore, ...]
    credits: tuple[str, ...] = ()  # source names read as credits, counted for no topic
    pinned: bool = False  # the source named the topics (JSON Lines `topics`)

    def as_dict(self) -> dict[str, object]:
        return {
            "pinned": self.pinned,
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
        }


@dataclass(frozen=True, slots=True)
class _Found:
    """The rules found in one text (title or body), credits and exclusions applied."""

    rules: frozenset[int]
    credits: tuple[str, ...] = ()
    excluded: frozenset[int] = frozenset()  # exclude rules whose words were masked


@dataclass(slots=True)
class Filer:
    """The catalogue's rules, ready to file items: `file` on the ingest path, `explain` for
    editors. Both take the same decisions (`_decide`)."""

    slugs: tuple[str, ...]
    matcher: Matcher = field(default_factory=Matcher)
    credit_patterns: dict[int, re.Pattern[str]] = field(default_factory=dict)
    has_excludes: bool = False

    def add(self, rule: Rule) -> None:
        if rule.kind == SOURCE:
            words = [re.escape(w) for w in _WORD.findall(fold_accents(rule.text))]
            flags = 0 if is_capitals(rule.text) else re.IGNORECASE
            pattern = re.compile(r"(?<!\w)" + r"\W+".join(words) + r"(?!\w)", flags)
            self.credit_patterns[len(self.matcher.rules)] = pattern
        self.has_excludes = self.has_excludes or rule.kind == EXCLUDE
        self.matcher.add(rule)

    def file(self, title: str, body: str = "") -> tuple[str, ...]:
        """The slugs of the topics an item with this title and body belongs under."""
        in_title = self._find(title)
        in_body = self._find(body[:BODY_CHARS]) if body else _Found(frozenset())
        if not in_title.rules and not in_body.rules:
            return ()
        scores, _ = self._decide(in_title.rules, in_body.rules - in_title.rules)
        return self._chosen(scores)

    def explain(self, title: str, body: str = "") -> Explanation:
        in_title = self._find(title)
        in_body = self._find(body[:BODY_CHARS]) if body else _Found(frozenset())
        title_rules, body_rules = in_title.rules, in_body.rules - in_title.rules
        scores, notes = self._decide(title_rules, body_rules)
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
        for where, found in (("title", in_title), ("body", in_body)):
            for index in sorted(found.excluded):
                rule = rules[index]
                note = f"its words count for no {self.slugs[rule.topic]} rule"
                by_topic.setdefault(rule.topic, []).append(
                    Hit(rule.text, EXCLUDE, where, False, note)
                )
        return Explanation(
            chosen,
            tuple(
                TopicScore(self.slugs[t], scores[t], self.slugs[t] in chosen, tuple(hits))
                for t, hits in sorted(by_topic.items())
            ),
            tuple(dict.fromkeys(in_title.credits + in_body.credits)),
        )

    def _find(self, text: str) -> _Found:
        """The rules found in `text`: credits taken out, then excluded phrases masked."""
        words = words_of(text)
        found = self.matcher.find_words(words)
        if not found:
            return _Found(frozenset())
        rules = self.matcher.rules
        credits: tuple[str, ...] = ()
        if self.credit_patterns and any(rules[i].kind == SOURCE for i in found):
            text, credits = self._uncredited(text, found)
            if credits:
                words = words_of(text)
                found = self.matcher.find_words(words)
        excluded: frozenset[int] = frozenset()
        if self.has_excludes:
            excluded = frozenset(i for i in found if rules[i].kind == EXCLUDE)
            if excluded:
                found = self._masked(words, found, excluded)
        return _Found(frozenset(i for i in found if rules[i].topic >= 0), credits, excluded)

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

    def _masked(self, words: list[str], found: set[int], excluded: frozenset[int]) -> set[int]:
        """The rules found once the words of the excluded phrases no longer count for their
        topics; other topics keep what they found."""
        rules = self.matcher.rules
        for topic in {rules[i].topic for i in excluded}:
            masked = list(words)
            for index in excluded:
                if rules[index].topic == topic:
                    _mask(masked, rules[index].text)
            again = self.matcher.find_words(masked)
            found = {i for i in found if rules[i].topic != topic} | {
                i for i in again if rules[i].topic == topic and rules[i].kind != EXCLUDE
            }
        return found

    def _decide(
        self, in_title: frozenset[int], in_body: frozenset[int]
    ) -> tuple[list[int], dict[int, tuple[bool, str]]]:
        """Each topic's score, and for each rule found whether it counted (and why not)."""
        rules = self.matcher.rules
        weight = dict.fromkeys(in_body, BODY_WEIGHT) | dict.fromkeys(in_title, TITLE_WEIGHT)
        by_topic: dict[int, list[int]] = {}
        for index in weight:
            by_topic.setdefault(rules[index].topic, []).append(index)
        parts = self._parts(weight)
        scores = [0] * len(self.slugs)
        notes: dict[int, tuple[bool, str]] = {}
        waiting = []  # weak and fallback rules without support from their own topic
        for index, points in weight.items():
            rule = rules[index]
            if index in parts:
                holder = rules[parts[index]]
                notes[index] = (False, f"part of {holder.text!r} ({self.slugs[holder.topic]})")
            elif rule.kind == MATCH or self._supported(index, by_topic[rule.topic], parts):
                scores[rule.topic] += points
                notes[index] = (True, "")
            else:
                waiting.append(index)
        if waiting and max(scores) < MIN_SCORE:
            # No topic files the item on its own rules: place names lend support to the weak
            # rules of every topic; if that files it nowhere either, two or more of them count
            # on their own (one place is where a story happened, two are often what it is about).
            places = [i for i in waiting if rules[i].kind == FALLBACK]
            weak = [i for i in waiting if rules[i].kind == WEAK]
            lent = list(scores)
            for index in weak if places else ():
                lent[rules[index].topic] += weight[index]
            if max(lent) >= MIN_SCORE:
                scores = lent
                notes.update(dict.fromkeys(weak, (True, "weak, supported by a place name")))
            elif len(places) >= PLACES_ALONE:
                for index in places:
                    scores[rules[index].topic] += weight[index]
                note = "a place name, and no other topic files the item"
                notes.update(dict.fromkeys(places, (True, note)))
        for index in waiting:
            notes.setdefault(index, (False, self._unsupported(rules[index])))
        return scores, notes

    def _parts(self, weight: dict[int, int]) -> dict[int, int]:
        """Rules found inside the words of a longer rule found in the same place (title or
        body), and that rule: a name is one finding. "Supreme Court" is not also "court", and
        "Six Nations" (sport) is not also "nations" (world). Rules of one topic never find the
        same words (the loader refuses them), so only phrases can hold other findings."""
        rules, forms = self.matcher.rules, self.matcher.forms
        phrases = [index for index in weight if len(forms[index]) > 1]
        parts: dict[int, int] = {}
        for index in weight if phrases else ():
            for other in phrases:
                if (
                    other != index
                    and other not in parts
                    and weight[other] == weight[index]
                    and (
                        len(forms[other]) > len(forms[index])
                        or rules[other].topic == rules[index].topic
                    )
                    and _within(forms[index], forms[other])
                ):
                    parts[index] = other
                    break
        return parts

    def _supported(self, index: int, found: list[int], parts: dict[int, int]) -> bool:
        """Whether another rule of its topic supports a weak rule (any other rule) or a place
        name (a `match` rule: a place and a weak word alike are thin evidence)."""
        rules = self.matcher.rules
        place = rules[index].kind == FALLBACK
        return any(
            other != index and other not in parts and (not place or rules[other].kind == MATCH)
            for other in found
        )

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
        floor = max(MIN_SCORE, SECOND_RATIO * best)
        return tuple(slug for slug, score in zip(self.slugs, scores, strict=True) if score >= floor)


def _within(part: tuple[frozenset[str], ...], whole: tuple[frozenset[str], ...]) -> bool:
    """Whether the words of one rule appear together in another's (a word and its plural are
    the same word)."""
    size = len(part)
    return any(
        all(not part[k].isdisjoint(whole[start + k]) for k in range(size))
        for start in range(len(whole) - size + 1)
    )


def plural_forms(words: tuple[str, ...]) -> set[tuple[str, ...]]:
    """The word sequences a rule finds: its words, and its last word's plurals."""
    return {(*words[:-1], form) for form in _plurals(words[-1])} if words else set()


def _mask(words: list[str], phrase: str) -> None:
    """Replace each occurrence of `phrase` in `words` by gaps."""
    wanted = rule_words(phrase)
    exact = is_capitals(phrase)
    last = _plurals(wanted[-1])
    size = len(wanted)
    for start in range(len(words) - size + 1):
        window = words[start : start + size]
        if not exact:
            window = [w.casefold() for w in window]
        if window[:-1] == wanted[:-1] and window[-1] in last:
            words[start : start + size] = [_GAP] * size


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
