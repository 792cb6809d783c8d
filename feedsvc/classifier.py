"""The statistical part of filing: a small logistic regression per topic over an item's words
and word pairs, trained on labelled headlines and articles (`train`), its weights a JSON file
(`feedsvc/data/topics_model.json` ships in the wheel; `feedsvc learn` writes one into the
catalogue). Pure Python: a few dictionary lookups per word, no numerical library.

Deterministic: the same examples give the same file, byte for byte (a fixed visiting order,
weights rounded), and the same file gives the same probabilities everywhere.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, pairwise
from operator import itemgetter
from pathlib import Path

from .errors import CatalogError
from .filing import BODY_CHARS, words_of

FORMAT = 1
# The body's lead: what the story is about (300 characters do as well as 600 by
# cross-validation, bench.topics_cv, at half the cost)
LEAD_CHARS = 300
BODY_VALUE = 0.5  # a word only in the body says less than one in the title
STEM, STEM_CHARS = "~", 5  # a stem feature: "~" (no word holds one) and a word's first 5
BODY_PAIRS = True  # the body lead's word pairs: +0.01 F1 by cross-validation, a third of the cost
# Words too common to say anything alone (their pairs are kept: "to strike", "the pole").
# fmt: off
STOP = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "have", "he", "her",
    "his", "in", "is", "it", "its", "of", "on", "or", "said", "says", "she", "that", "the",
    "their", "they", "this", "to", "was", "were", "will", "with"
})
# fmt: on
EPOCHS = 30
RATE = 2.0
DECAY = 1e-5  # the L2 penalty, applied to the weights an example touches
MIN_COUNT = 2  # a word or pair seen once in the training data is left out
PRUNE = 0.01  # a feature whose weights are all smaller than this is left out of the file
DIGITS = 4  # weights are rounded so the file is the same on every machine
HEADLINE_WEIGHT = 1.0  # an example with no body (a headline alone), against one with a body


Feature = str | tuple[str, str]  # a word, or two words that follow each other
Row = tuple[float, ...]  # a feature's weight for each topic
_Sets = tuple[set[str], set[str], set[tuple[str, str]]]  # words, stems, pairs of a text


def _found(text: str, pairs: bool = True) -> tuple[set[Feature], int]:
    """The features of `text`, and how many it has, repeats counted (what `features` scales
    by: a long text's features say less each)."""
    words = words_of(text.casefold()) if text else []
    # A long word's stem too ("~vacci" for vaccine, vaccines, vaccination): the labelled
    # items are few, and a word seen once in training still says something through it.
    found: set[Feature] = set(pairwise(words)) if pairs else set()
    found.update(words, [STEM + word[:STEM_CHARS] for word in words if len(word) > STEM_CHARS + 1])
    return found, (2 * len(words) - 1 if pairs else len(words)) if words else 0


def _lead(body: str) -> str:
    return body[: min(LEAD_CHARS, BODY_CHARS)]


def _scale(size: int, more: int) -> float:
    """What makes an item's vector of length 1: `size` title features, `more` body ones."""
    total = size + more * BODY_VALUE * BODY_VALUE
    return 1 / math.sqrt(total) if total else 0.0


def feature_sets(title: str, body: str = "") -> tuple[set[Feature], set[Feature], float]:
    """An item's features: its title's words (casefolded, accents folded) and word pairs;
    those found only in the body's lead, which weigh less; and the scale that makes the
    item's vector of length 1, however long."""
    in_title, size = _found(title)
    in_body, more = _found(_lead(body), BODY_PAIRS) if body else (set(), 0)
    return in_title, in_body - in_title, _scale(size, more)


def features(title: str, body: str = "") -> dict[Feature, float]:
    """The features with their values, as training sees them."""
    in_title, in_body, scale = feature_sets(title, body)
    found = dict.fromkeys(in_body, BODY_VALUE * scale)
    found.update(dict.fromkeys(in_title, scale))
    return found


@dataclass(frozen=True, slots=True)
class Example:
    labels: frozenset[str]  # empty: no topic
    title: str
    body: str = ""
    weight: float = 1.0  # an editor's correction may count more than a shipped example


@dataclass(slots=True)
class Model:
    """Weights per topic: `probabilities` says how likely each topic is for an item."""

    topics: tuple[str, ...]
    bias: tuple[float, ...]
    weights: dict[Feature, tuple[float, ...]]
    digest: str = ""  # of the file it was read from: a new model re-files stored items
    # The weights by kind (words; stems, without their mark; pairs), each row packed into
    # one integer (`_pack`: a sum of rows is one `sum` in C); the sets of their keys to
    # intersect a text's with; and how a text's stems are cut (in C too).
    _rows: tuple[dict[str, int], dict[str, int], dict[tuple[str, str], int]] = ({}, {}, {})
    _keys: _Sets = (set(), set(), set())  # sets, not frozensets: intersections are sets
    _cut: tuple[Callable[[str], str], Callable[[str], str]] = (str, str)
    # Topics -> the places of theirs and of the others' in `scores` (a few combinations).
    _places: dict[tuple[str, ...], tuple[Pick, Pick]] = field(default_factory=dict)

    def places(self, topics: tuple[str, ...]) -> tuple[Pick, Pick]:
        """Functions giving these topics' scores, and the other topics', as tuples (cached:
        items come in a few combinations of topics)."""
        found = self._places.get(topics)
        if found is None:
            own = [i for i, slug in enumerate(self.topics) if slug in topics]
            others = [i for i in range(len(self.topics)) if i not in own]
            found = self._places[topics] = (_picker(own), _picker(others))
        return found

    def __post_init__(self) -> None:
        words: dict[str, int] = {}
        stems: dict[str, int] = {}
        pairs: dict[tuple[str, str], int] = {}
        for feature, row in self.weights.items():
            if not isinstance(feature, str):
                pairs[feature] = _pack(row)
            elif feature.startswith(STEM):
                stems[feature[len(STEM) :]] = _pack(row)
            else:
                words[feature] = _pack(row)
        self._rows = (words, stems, pairs)
        self._keys = (set(words), set(stems), set(pairs))
        # A word longer than STEM_CHARS + 1 has a stem: its tail past that is not empty.
        self._cut = (itemgetter(slice(STEM_CHARS + 1, None)), itemgetter(slice(STEM_CHARS)))

    def probabilities(self, title: str, body: str = "") -> dict[str, float]:
        """How likely each topic is, from 0 to 1."""
        return self.likely(self.scores(title, body))

    def likely(self, scores: Sequence[float]) -> dict[str, float]:
        """`scores` as probabilities, by topic."""
        return {slug: _sigmoid(score) for slug, score in zip(self.topics, scores, strict=True)}

    def scores(self, title: str, body: str = "") -> list[float]:
        """Each topic's score (its log-odds: 0 is a probability of one half): the features
        of `feature_sets`, found as `_known` finds them, their rows summed."""
        in_title, size = self._known(title, True)
        scores = self._add(self.bias, in_title, _scale(size, 0)) if not body else self.bias
        if body:
            in_body, more = self._known(_lead(body), BODY_PAIRS)
            for found, known in zip(in_body, in_title, strict=True):
                found.difference_update(known)  # a title's feature counts once, as the title's
            scale = _scale(size, more)
            scores = self._add(self._add(scores, in_title, scale), in_body, scale * BODY_VALUE)
        return list(scores)

    def _add(self, scores: Sequence[float], found: _Sets, value: float) -> Sequence[float]:
        """`scores` plus `value` times the rows of the features `found`."""
        count = len(found[0]) + len(found[1]) + len(found[2])
        if not count:
            return scores
        words, stems, pairs = self._rows
        total = sum(map(words.__getitem__, found[0])) + sum(map(stems.__getitem__, found[1]))
        total += sum(map(pairs.__getitem__, found[2]))
        return _unpacked(scores, total, count, value)

    def _known(self, text: str, pairs: bool) -> tuple[_Sets, int]:
        """The model's words, stems and pairs in `text`, and how many features it has."""
        words = words_of(text.casefold()) if text else []
        if not words:
            return (set(), set(), set()), 0
        known_words, known_stems, known_pairs = self._keys
        tail, stem = self._cut
        found = (
            known_words.intersection(words),
            known_stems.intersection(map(stem, compress(words, map(tail, words)))),
            known_pairs.intersection(pairwise(words)) if pairs else set(),
        )
        return found, 2 * len(words) - 1 if pairs else len(words)

    def only(self, topics: Sequence[str]) -> Model:
        """The model for these topics, in this order (the ones it does not know left out)."""
        kept = [self.topics.index(slug) for slug in topics if slug in self.topics]
        return Model(
            tuple(self.topics[i] for i in kept),
            tuple(self.bias[i] for i in kept),
            {f: tuple(row[i] for i in kept) for f, row in self.weights.items()},
            self.digest,
        )

    def to_json(self) -> str:
        weights = {_key(feature): list(row) for feature, row in self.weights.items()}
        document = {
            "format": FORMAT,
            "topics": list(self.topics),
            "bias": list(self.bias),
            "weights": dict(sorted(weights.items())),
        }
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")) + "\n"


Pick = Callable[[Sequence[float]], tuple[float, ...]]

# A row of weights as one integer: each weight in units of the file's last digit, moved up by
# _OFFSET so that it is not negative, in a field of _BITS bits of its own. Adding such
# integers adds every field at once, exactly, for up to 2 ** (_BITS - 21) rows, far more
# than any text has.
_UNIT = 10**DIGITS
_OFFSET = 1 << 20  # weights under 100 in size: ample (training keeps them under 30)
_BITS = 48
_MASK = (1 << _BITS) - 1


def _pack(row: Sequence[float]) -> int:
    packed = 0
    for place, weight in enumerate(row):
        units = round(weight * _UNIT)
        if not -_OFFSET < units < _OFFSET:
            raise ValueError(f"a weight of {weight} is too large")
        packed |= (units + _OFFSET) << (place * _BITS)
    return packed


def _unpacked(scores: Sequence[float], total: int, count: int, value: float) -> list[float]:
    """`scores` plus `value` times each field of `total`, a sum of `count` packed rows."""
    moved, unit = count * _OFFSET, value / _UNIT
    return [
        score + unit * (((total >> (place * _BITS)) & _MASK) - moved)
        for place, score in enumerate(scores)
    ]


def _picker(places: list[int]) -> Pick:
    """The values at `places` of a sequence, as a tuple (`itemgetter` gives a lone value
    for one place, and fails for none)."""
    if len(places) > 1:
        return itemgetter(*places)
    if places:
        place = places[0]
        return lambda values: (values[place],)
    return lambda values: ()


def _key(feature: Feature) -> str:
    """A feature as the file keeps it: a pair as its two words and a space between."""
    return feature if isinstance(feature, str) else " ".join(feature)


def _feature(key: str) -> Feature:
    first, space, second = key.partition(" ")
    return (first, second) if space else key


def _sigmoid(score: float) -> float:
    if score < -30:
        return 0.0
    return 1 / (1 + math.exp(-score))


def log_odds(probability: float) -> float:
    """The score at which a topic is this likely (the inverse of the sigmoid)."""
    return math.log(probability / (1 - probability))


def train(examples: Sequence[Example], topics: Sequence[str], seed: int = 26) -> Model:
    """One logistic regression per topic (an item may have several topics, or none), by
    stochastic gradient descent in a seeded order: the same examples, the same model."""
    counts: Counter[Feature] = Counter()
    rows = []
    for example in examples:
        found = features(example.title, example.body)
        counts.update(found.keys())
        targets = [1.0 if slug in example.labels else 0.0 for slug in topics]
        weight = example.weight * (HEADLINE_WEIGHT if not example.body else 1.0)
        rows.append((found, targets, weight))
    kept = {f for f, count in counts.items() if count >= MIN_COUNT and f not in STOP}
    width = len(topics)
    weights: dict[Feature, list[float]] = {f: [0.0] * width for f in sorted(kept, key=_key)}
    bias = [0.0] * width
    data = [([(f, v) for f, v in found.items() if f in kept], t, w) for found, t, w in rows]
    order = list(range(len(data)))
    shuffle = random.Random(seed).shuffle
    step = 0
    for _ in range(EPOCHS):
        shuffle(order)
        for index in order:
            found, targets, weight = data[index]
            rate = RATE / (1 + step * 1e-4)
            step += 1
            scores = list(bias)
            for feature, value in found:
                row = weights[feature]
                for topic in range(width):
                    scores[topic] += value * row[topic]
            errors = [
                weight * (_sigmoid(score) - target)
                for score, target in zip(scores, targets, strict=True)
            ]
            for topic in range(width):
                bias[topic] -= rate * errors[topic]
            for feature, value in found:
                row = weights[feature]
                for topic in range(width):
                    row[topic] -= rate * (errors[topic] * value + DECAY * row[topic])
    return Model(
        tuple(topics),
        tuple(round(b, DIGITS) for b in bias),
        {
            feature: tuple(round(w, DIGITS) for w in row)
            for feature, row in weights.items()
            if max(abs(w) for w in row) >= PRUNE
        },
    )


def load_model(path: Path) -> Model:
    """A model file, as `Model.to_json` writes it; a damaged one is a `CatalogError`."""
    try:
        raw = path.read_bytes()
        document = json.loads(raw)
        if document.get("format") != FORMAT:
            raise ValueError(f"format {document.get('format')!r}, expected {FORMAT}")
        topics = tuple(document["topics"])
        width = len(topics)
        bias = tuple(float(b) for b in document["bias"])
        weights = {_feature(f): tuple(map(float, r)) for f, r in document["weights"].items()}
        if len(bias) != width or any(len(row) != width for row in weights.values()):
            raise ValueError("a row of weights does not have one weight per topic")
        return Model(topics, bias, weights, _digest(raw))  # inside: it packs (a weight too big)
    except OSError as error:
        raise CatalogError(f"cannot read the topic model: {error.strerror}", str(path)) from None
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CatalogError(f"not a topic model: {error}", str(path)) from None


def _digest(raw: bytes) -> str:
    """A model file's name in a catalogue's digest (a new model re-files stored items)."""
    return hashlib.sha256(raw).hexdigest()[:16]


def read_examples(path: Path) -> list[Example]:
    """Labelled items of a JSON Lines file: {"labels": [...], "headline": ..., "article": ...}
    a line ("labels": [] for an item of no topic; "article" optional)."""
    examples = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                labels = frozenset(row["labels"])
                example = Example(labels, row["headline"], row.get("article") or "")
            except (ValueError, KeyError, TypeError) as error:
                raise CatalogError(f"not a labelled item: {error}", str(path), number) from None
            examples.append(example)
    return examples


SHIPPED = Path(__file__).parent / "data" / "topics_model.json"
LEARNED = "topics_model.json"  # in the catalogue directory: what `feedsvc learn` wrote


@dataclass(slots=True)
class LazyModel:
    """A model file, read the first time an item is filed (most commands file nothing)."""

    path: Path
    digest: str
    topics: tuple[str, ...] = ()  # the catalogue's, in its order: the model is cut to them
    built: Model | None = None

    def get(self) -> Model:
        if self.built is None:
            self.built = load_model(self.path).only(self.topics)
        return self.built


def find_model(feeds_dir: Path, topics: Sequence[str]) -> LazyModel:
    """The catalogue's model: the one `feedsvc learn` wrote into it, else the shipped one.
    The digest of its bytes is read now: a new model re-files stored items as new rules do."""
    path = feeds_dir / LEARNED
    if not path.is_file():
        path = SHIPPED
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise CatalogError(f"cannot read the topic model: {error.strerror}", str(path)) from None
    return LazyModel(path, _digest(raw), tuple(topics))


TRAINING = "data/topics_training.jsonl"  # the labelled items the shipped model learned from
PINNED_WEIGHT = 3.0  # an editor's correction counts as much as this many shipped examples
NO_TOPIC = "other"


def shipped_examples() -> list[Example]:
    """The labelled items shipped in the package (scripts/train_topics.py writes them)."""
    return read_examples(Path(__file__).parent / TRAINING)


def learn(topics: Sequence[str], pinned: Iterable[tuple[Sequence[str], str, str]]) -> Model:
    """A model trained on the shipped examples plus pinned items (topics, title, body): each
    of these weighs `PINNED_WEIGHT`, so a handful of corrections of a new kind are heard."""
    examples = shipped_examples()
    for labels, title, body in pinned:
        examples.append(Example(frozenset(labels) - {NO_TOPIC}, title, body, weight=PINNED_WEIGHT))
    return train(examples, topics)


def write_atomically(path: Path, text: str) -> None:
    """`text` into `path` whole or not at all (a reader never sees half a model)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise CatalogError(f"cannot write the topic model: {error.strerror}", str(path)) from None
