"""How well the catalogue files news (its rules and its model): precision, recall and F1 per
topic, overall, the precision of second topics, which topics get confused with which, and what
filing costs per item.

    python -m bench.topics_eval [LABELLED.tsv|LABELLED.jsonl ...] [--feeds DIR] [--misses]

Each TSV has a header line, then `labels<TAB>headline`, where labels is a comma-separated list
of the topic slugs an editor would file the headline under, or `other` for a headline that
belongs to no beat (the rules should file it nowhere). Lines starting with `#` are comments.
Filing sees only the headline, as a reader of a headline-only wire would. A JSON Lines set
holds one `{"labels": [...], "headline": ..., "article": ..., "writer": ...}` a line (labels
`[]`: no topic); filing sees the headline and the article, as an ingested item's.

Second topics: of the items filed under two or more topics, the share of those topics that
are right ("second P"); of the items labelled with two or more, the share filed under all of
them ("second R").

Cost: microseconds per item to file every item of the sets (headline and article), with the
rules alone and with the rules and the model (the best of five runs, in CPU time).
`--against CHECKOUT` times another checkout of feedsvc too (its `.venv` and its `feeds/`, in
the same rounds, the same items through its `Catalog.file`): issue 26 measures against the
filer before the model, `git worktree add ../base 7d939c2` with its own venv. `--cost-only`
skips the scoring.

`other` is scored as an eighth label: a headline the rules file nowhere is "filed under other".
The micro figures are given with it (every decision counts) and over the seven beats alone.

The confusion table counts, for each label an editor gave (rows), the headlines filed under
each topic (columns): the diagonal is right; off the diagonal, a headline filed under a topic
it was not labelled with; the `other` column, a headline the rules filed nowhere. A headline
labelled with two topics counts in both rows, and filing it under its second label is not a
confusion.

The default sets: `topics_labelled.tsv` (the rules were tuned on it), `topics_heldout.tsv`
(written before tuning and never tuned on), and the independent sets written by people who
never saw the rules, split once by `tests/data/filing/split.py`: `filing/tuning.jsonl` (the
model trains on it; its misses may be read to widen the rules) and `filing/frozen.jsonl`
(only ever scored). `--misses` never lists the misses of the held-out or the frozen set.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from feedsvc.catalog import Catalog, load_catalog
from feedsvc.classifier import read_examples

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests/data"
DEFAULT_SETS = (
    DATA / "topics_labelled.tsv",
    DATA / "topics_heldout.tsv",
    DATA / "filing/tuning.jsonl",
    DATA / "filing/frozen.jsonl",
)
SCORED_ONLY = frozenset({"topics_heldout.tsv", "frozen.jsonl"})  # no misses listed, ever
OTHER = "other"
RUNS = 5


def read_set(path: Path) -> list[tuple[frozenset[str], str, str]]:
    """(labels, headline, article) of a labelled TSV or JSON Lines file."""
    if path.suffix != ".jsonl":
        return [(labels, headline, "") for labels, headline in read_labelled(path)]
    return [(e.labels, e.title, e.body) for e in read_examples(path)]


def read_labelled(path: Path) -> list[tuple[frozenset[str], str]]:
    """The (labels, headline) rows of a labelled TSV file; `other` is the empty label set."""
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip() or line.startswith("#"):
            continue
        labels, sep, headline = line.partition("\t")
        if not sep or not headline.strip():
            raise ValueError(f"{path}:{number}: expected 'labels<TAB>headline'")
        slugs = frozenset(s.strip() for s in labels.split(",") if s.strip())
        if OTHER in slugs and len(slugs) > 1:
            raise ValueError(f"{path}:{number}: 'other' cannot go with a topic")
        rows.append((slugs - {OTHER}, headline))
    return rows


def _scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def _or_other(slugs: frozenset[str]) -> frozenset[str]:
    return slugs or frozenset({OTHER})


def evaluate(path: Path, catalog: Catalog | None = None) -> dict:
    """Figures for one labelled file: {"micro": {...}, "beats": {...}, "topics": {slug: ...},
    "confusion": {label: Counter(filed)}, "misses": [(headline, wanted, got)]}."""
    catalog = catalog or load_catalog(ROOT / "feeds")
    rows = read_set(path)
    beats = [topic.slug for topic in catalog.topics]
    for wanted, headline, _ in rows:
        unknown = wanted - set(beats)
        if unknown:
            raise ValueError(f"{path}: unknown topic {sorted(unknown)[0]!r} for {headline!r}")
    filed = [(w, frozenset(catalog.file(h, a)), h) for w, h, a in rows]
    return score(filed, beats)


def score(
    filed: Sequence[tuple[frozenset[str], frozenset[str], str]], beats: Sequence[str]
) -> dict:
    """The figures of `evaluate` for (labels, topics filed, headline) triples."""
    labels = [*beats, OTHER]
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    confusion: dict[str, Counter[str]] = {label: Counter() for label in labels}
    misses = []
    second: Counter[str] = Counter()
    for wanted, got, headline in filed:
        if len(got) > 1:
            second["right"] += len(got & wanted)
            second["filed"] += len(got)
        if len(wanted) > 1:
            second["labelled"] += 1
            second["found"] += wanted <= got
        want, have = _or_other(wanted), _or_other(got)
        for slug in have & want:
            tp[slug] += 1
        for slug in have - want:
            fp[slug] += 1
        for slug in want - have:
            fn[slug] += 1
        for label in want:
            confusion[label].update(slug for slug in have if slug == label or slug not in want)
        if got != wanted:
            misses.append((headline, sorted(want), sorted(have)))
    micro = _scores(*(sum(c[s] for s in labels) for c in (tp, fp, fn)))
    micro["headlines"] = len(filed)
    micro["exact"] = len(filed) - len(misses)
    return {
        "micro": micro,
        "beats": _scores(*(sum(c[s] for s in beats) for c in (tp, fp, fn))),
        "topics": {slug: _scores(tp[slug], fp[slug], fn[slug]) for slug in labels},
        "confusion": confusion,
        "misses": misses,
        "second": second,
    }


def report(path: Path, figures: dict, show_misses: bool) -> str:
    lines = [f"{path.name}: {figures['micro']['headlines']} headlines"]
    lines.append(
        f"  {'topic':<12} {'prec':>6} {'recall':>6} {'F1':>6}  {'tp':>4} {'fp':>4} {'fn':>4}"
    )
    rows = [
        *figures["topics"].items(),
        ("micro", figures["micro"]),
        ("micro beats", figures["beats"]),
    ]
    for slug, s in rows:
        lines.append(
            f"  {slug:<12} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f}"
            f"  {s['tp']:4d} {s['fp']:4d} {s['fn']:4d}"
        )
    exact = figures["micro"]["exact"] / max(figures["micro"]["headlines"], 1)
    lines.append(f"  exact label sets: {exact:.1%}")
    second = figures["second"]
    lines.append(
        f"  second topics: P {second['right'] / max(second['filed'], 1):.3f}"
        f" ({second['right']}/{second['filed']} topics of items filed under two or more),"
        f" R {second['found'] / max(second['labelled'], 1):.3f}"
        f" ({second['found']}/{second['labelled']} items labelled with two or more)"
    )
    lines.extend(confusion_table(figures["confusion"]))
    if show_misses and path.name not in SCORED_ONLY:
        for headline, wanted, got in figures["misses"]:
            lines.append(f"  want {','.join(wanted):<16} got {','.join(got):<16} {headline}")
    return "\n".join(lines)


def confusion_table(confusion: dict[str, Counter[str]]) -> list[str]:
    """Rows: the editor's label; columns: where the rules filed the headline."""
    labels = list(confusion)
    width = max(len(label) for label in labels) + 1
    lines = ["  labelled \\ filed under:"]
    lines.append("  " + " " * width + "".join(f"{label[:8]:>9}" for label in labels))
    for label in labels:
        cells = "".join(f"{confusion[label][filed] or '.':>9}" for filed in labels)
        lines.append(f"  {label:<{width}}{cells}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="labelled TSV files")
    parser.add_argument("--feeds", type=Path, default=ROOT / "feeds", help="feeds directory")
    parser.add_argument("--misses", action="store_true", help="list every wrongly filed headline")
    parser.add_argument(
        "--against",
        type=Path,
        metavar="CHECKOUT",
        help="also time the filer of another checkout of feedsvc (its .venv, its feeds/)",
    )
    parser.add_argument("--cost-only", action="store_true", help="time filing, score nothing")
    args = parser.parse_args(argv)
    catalog = load_catalog(args.feeds)
    sets = [path for path in args.files or DEFAULT_SETS if args.files or path.is_file()]
    for path in sets if not args.cost_only else ():
        print(report(path, evaluate(path, catalog), args.misses))
    rows = [row for path in sets for row in read_set(path)]
    print(cost(catalog, rows, args.against))
    return 0


def cost(
    catalog: Catalog, rows: list[tuple[frozenset[str], str, str]], against: Path | None = None
) -> str:
    """Microseconds per item to file `rows`, by the rules alone and with the model (and by
    the filer of the checkout `against`, timed by its own Python in the same rounds)."""
    filers = {"rules alone": replace(catalog, model=None), "rules+model": catalog}
    best = dict.fromkeys(filers, float("inf"))
    if against is not None:
        best["other checkout"] = float("inf")
        items = Path(tempfile.mkdtemp()) / "items.json"
        items.write_text(json.dumps([[h, a] for _, h, a in rows]), encoding="utf-8")
    for _ in range(RUNS):  # taking turns, in CPU time: a busy machine slows both alike
        for name, filer in filers.items():
            best[name] = min(best[name], _timed(filer, rows))
        if against is not None:
            best["other checkout"] = min(best["other checkout"], _timed_there(against, items))
    if against is not None:
        shutil.rmtree(items.parent)
    figures = [f"{name} {best[name] / max(len(rows), 1) * 1e6:.1f} us/item" for name in best]
    ratio = best["rules+model"] / best["rules alone"]
    text = (
        f"filing cost ({len(rows)} items, best of {RUNS}): "
        + ", ".join(figures)
        + f" ({ratio:.2f}x rules alone)"
    )
    if against is not None:
        text += f"; {best['rules+model'] / best['other checkout']:.2f}x {against}'s"
    return text


def _timed(filer: Catalog, rows: list[tuple[frozenset[str], str, str]]) -> float:
    filer.file("warm up", "")  # the rules and the model are built on first use
    start = time.process_time()
    for _, headline, article in rows:
        filer.file(headline, article)
    return time.process_time() - start


# Run by the other checkout's Python: the same loop as `_timed`, over the same items.
_THERE = """
import json, sys, time
from pathlib import Path
from feedsvc.catalog import load_catalog
catalog = load_catalog(Path(sys.argv[1]) / "feeds")
rows = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
catalog.file("warm up", "")
start = time.process_time()
for headline, article in rows:
    catalog.file(headline, article)
print(time.process_time() - start)
"""


def _timed_there(checkout: Path, items: Path) -> float:
    python = checkout / ".venv/bin/python"
    if not python.is_file():
        raise SystemExit(f"topics_eval: error: {python}: no such file (make its venv first)")
    done = subprocess.run(
        [str(python), "-c", _THERE, str(checkout), str(items)],
        capture_output=True,
        text=True,
        check=False,
        cwd=checkout,
    )
    if done.returncode:
        raise SystemExit(f"topics_eval: error: {checkout}: {done.stderr.strip().splitlines()[-1]}")
    return float(done.stdout)


if __name__ == "__main__":
    sys.exit(main())
