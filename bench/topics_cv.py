"""Cross-validation on the data filing may learn from: how the settings of the model and the
bars that combine it with the rules (`catalog.BARS`) do on items the model did not train on.
Every setting of the model and every bar is chosen here, never on the held-out or frozen sets.

    python -m bench.topics_cv [--folds 5] [--set NAME=VALUE ...] [--sweep]

Two cross-validations, each in `--folds` folds by a hash of the headline (not the hash that
split the independent sets, so the folds mix like the halves do):
- tuning: each fold of `tests/data/filing/tuning.jsonl` (headline and article, independent
  writers) is filed by a model trained on the other folds and `topics_labelled.tsv`;
- labelled: each fold of `topics_labelled.tsv` (headlines only, the rules tuned on them: what
  `topics_heldout.tsv` is like) by a model trained on the other folds and all of tuning.

`--set NAME=VALUE` changes a constant of `feedsvc.classifier` (`--set DECAY=1e-4`) or a bar
(`--set bars.adds=0.6` for items with a body, `--set headline.stands=0` for headlines alone)
for this run. `--sweep` searches bars on the same folds (the models are trained once), one
bar at a time over `GRID` until none improves, for the best micro-F1 with a second-topic
precision of `--second` or more: tuning's choose `catalog.BARS`, labelled's
`catalog.BARS_HEADLINE`.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import pickle
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from feedsvc import classifier
from feedsvc.catalog import BARS, BARS_HEADLINE, Bars, Catalog, load_catalog
from feedsvc.classifier import Example, read_examples, train

from .topics_eval import DATA, ROOT, read_set, score

TUNING = DATA / "filing/tuning.jsonl"
LABELLED = DATA / "topics_labelled.tsv"


@dataclass(frozen=True, slots=True)
class Case:
    """One item filed in cross-validation: what the rules found, and the fold model's scores."""

    wanted: frozenset[str]
    headline: str
    has_body: bool
    by_rules: tuple[str, ...]
    in_title: tuple[str, ...]
    scores: tuple[float, ...]


def fold_of(headline: str, folds: int) -> int:
    key = " ".join(headline.casefold().split()).encode()
    return hashlib.sha256(key).digest()[1] % folds  # byte 0 split tuning from frozen


def examples(path: Path) -> list[Example]:
    if path.suffix == ".jsonl":
        return read_examples(path)
    return [Example(labels, headline, body) for labels, headline, body in read_set(path)]


def cross_validate(
    catalog: Catalog, scored: list[Example], always: list[Example], folds: int
) -> list[Case]:
    """Each fold of `scored` filed by a model trained on the other folds and `always`."""
    slugs = [topic.slug for topic in catalog.topics]
    filer = catalog.filer
    cases = []
    for fold in range(folds):
        held = [e for e in scored if fold_of(e.title, folds) == fold]
        rest = [e for e in scored if fold_of(e.title, folds) != fold]
        model = train(always + rest, sorted(slugs)).only(slugs)
        for example in held:
            by_rules = filer.file(example.title, example.body)
            in_title = filer.file(example.title) if by_rules and example.body else by_rules
            scores = model.scores(example.title, example.body)
            cases.append(
                Case(
                    example.labels,
                    example.title,
                    bool(example.body),
                    by_rules,
                    in_title,
                    tuple(scores),
                )
            )
    return cases


def combined(catalog: Catalog, cases: Sequence[Case], bars: Bars, headline: Bars) -> dict:
    """The figures of `bench.topics_eval` for `cases` filed under `bars` (an item with a
    body) and `headline` (a headline alone)."""
    slugs = [topic.slug for topic in catalog.topics]
    odds = {True: bars.log_odds(), False: headline.log_odds()}
    filed = []
    for case in cases:
        got, _ = catalog._combine(
            case.by_rules, case.in_title, slugs, case.scores, odds[case.has_body]
        )
        filed.append((case.wanted, frozenset(got), case.headline))
    return score(filed, slugs)


def rules_alone(catalog: Catalog, cases: Sequence[Case]) -> dict:
    slugs = [topic.slug for topic in catalog.topics]
    return score([(c.wanted, frozenset(c.by_rules), c.headline) for c in cases], slugs)


def line(name: str, figures: dict) -> str:
    second = figures["second"]
    topics = " ".join(
        f"{slug[:5]} {s['f1']:.3f}" for slug, s in figures["topics"].items() if slug != "other"
    )
    return (
        f"{name:<9} micro-F1 {figures['micro']['f1']:.4f}"
        f"  second P {second['right'] / max(second['filed'], 1):.3f}"
        f" ({second['right']}/{second['filed']})"
        f" R {second['found'] / max(second['labelled'], 1):.3f}  {topics}"
    )


def second_p(figures: dict) -> float:
    second = figures["second"]
    return second["right"] / max(second["filed"], 1)


GRID = {
    "stands": (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2),
    "second": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6),
    "in_body": (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5),
    "second_body": (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7),
    "adds": (0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0),
    "decides": (0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 1.0),
    "margin": (1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, math.inf),
}


def sweep(catalog: Catalog, cases: list[Case], start: Bars, least: float) -> Bars:
    """Better bars for `cases` (with a body, or all headlines alone: one set of bars), by
    coordinate ascent from `start` over `GRID`: micro-F1, less a penalty for a second-topic
    precision under `least`."""

    def value(bars: Bars) -> tuple[float, float, float]:
        figures = combined(catalog, cases, bars, bars)
        f1, second = figures["micro"]["f1"], second_p(figures)
        return f1 - 2 * max(0.0, least - second), f1, second

    best, bars = value(start), start
    print(f"  from {bars}: micro-F1 {best[1]:.4f} second P {best[2]:.3f}")
    for _ in range(4):
        moved = False
        for name, values in GRID.items():
            for tried in values:
                other = replace(bars, **{name: tried})
                found = value(other)
                if found[0] > best[0] + 1e-9:
                    best, bars, moved = found, other, True
        print(f"  to {bars}: micro-F1 {best[1]:.4f} second P {best[2]:.3f}")
        if not moved:
            break
    return bars


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--sweep", action="store_true", help="try a grid of bars")
    parser.add_argument("--second", type=float, default=0.83, help="least second P (--sweep)")
    parser.add_argument("--only", choices=("tuning", "labelled"), help="one of the two CVs")
    parser.add_argument("--misses", action="store_true", help="list the tuning CV's misses")
    parser.add_argument(
        "--cache", type=Path, help="keep the folds' cases in this file, or read them from it"
    )
    args = parser.parse_args(argv)
    bars, headline = BARS, BARS_HEADLINE
    for setting in args.set:
        name, _, value = setting.partition("=")
        if name.startswith("bars."):
            bars = replace(bars, **{name[5:]: float(value)})
        elif name.startswith("headline."):
            headline = replace(headline, **{name[9:]: float(value)})
        elif hasattr(classifier, name):
            kind = type(getattr(classifier, name))
            setattr(classifier, name, kind(value) if kind is not bool else value == "1")
        else:
            parser.error(f"no setting {name!r}")
    catalog = load_catalog(ROOT / "feeds")
    tuning, labelled = examples(TUNING), examples(LABELLED)
    start = time.process_time()
    runs: dict[str, list[Case]] = {}
    if args.cache and args.cache.is_file():
        runs = pickle.loads(args.cache.read_bytes())
    else:
        if args.only != "labelled":
            runs["tuning"] = cross_validate(catalog, tuning, labelled, args.folds)
        if args.only != "tuning":
            runs["labelled"] = cross_validate(catalog, labelled, tuning, args.folds)
        if args.cache:
            args.cache.write_bytes(pickle.dumps(runs))
    for name, cases in runs.items():
        print(line(name, combined(catalog, cases, bars, headline)))
        print(line("  rules", rules_alone(catalog, cases)))
    print(f"({time.process_time() - start:.0f} s CPU; bars {bars}; headline {headline})")
    if args.misses and "tuning" in runs:
        slugs = [topic.slug for topic in catalog.topics]
        for case in runs["tuning"]:
            got, _ = catalog._combine(
                case.by_rules, case.in_title, slugs, case.scores, bars.log_odds()
            )
            if set(got) != case.wanted:
                likely = sorted(zip(case.scores, slugs, strict=True), reverse=True)[:3]
                wanted, filed, rules, title = (
                    ",".join(names) or "-"
                    for names in (sorted(case.wanted), got, case.by_rules, case.in_title)
                )
                print(
                    f"want {wanted:<16} got {filed:<16} rules {rules} (title {title})"
                    f" model {' '.join(f'{s}:{1 / (1 + math.exp(-x)):.2f}' for x, s in likely)}"
                    f"  {case.headline}"
                )
    if args.sweep:
        for name, cases in runs.items():
            print(f"{name}: bars by coordinate ascent (second P of {args.second} or more)")
            sweep(catalog, cases, bars if name == "tuning" else headline, args.second)
    return 0


if __name__ == "__main__":
    sys.exit(main())
