"""How well the catalogue's rules file news: precision, recall and F1 per topic and overall.

    python -m bench.topics_eval [LABELLED.tsv ...] [--feeds DIR] [--misses]

Each TSV has a header line, then `labels<TAB>headline`, where labels is a comma-separated list
of topic slugs an editor would file the headline under. The rules see only the headline, as a
reader of a headline-only wire would.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from feedsvc.catalog import Catalog, load_catalog

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SETS = (ROOT / "tests/data/topics_labelled.tsv", ROOT / "tests/data/topics_heldout.tsv")


def read_labelled(path: Path) -> list[tuple[frozenset[str], str]]:
    """The (labels, headline) rows of a labelled TSV file, header skipped."""
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        labels, sep, headline = line.partition("\t")
        if not sep or not headline.strip():
            raise ValueError(f"{path}:{number}: expected 'labels<TAB>headline'")
        rows.append((frozenset(s.strip() for s in labels.split(",") if s.strip()), headline))
    return rows


def _scores(tp: int, fp: int, fn: int) -> dict[str, float]:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "fp": fp, "fn": fn}


def evaluate(path: Path, catalog: Catalog | None = None) -> dict:
    """Figures for one labelled file: {"micro": {...}, "topics": {slug: ...}, "misses": [...]}."""
    catalog = catalog or load_catalog(ROOT / "feeds")
    rows = read_labelled(path)
    known = {topic.slug for topic in catalog.topics}
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    misses = []
    for labels, headline in rows:
        unknown = labels - known
        if unknown:
            raise ValueError(f"{path}: unknown topic {sorted(unknown)[0]!r} for {headline!r}")
        got = frozenset(catalog.file(headline))
        for slug in got & labels:
            tp[slug] += 1
        for slug in got - labels:
            fp[slug] += 1
        for slug in labels - got:
            fn[slug] += 1
        if got != labels:
            misses.append((headline, sorted(labels), sorted(got)))
    topics = {slug: _scores(tp[slug], fp[slug], fn[slug]) for slug in sorted(known)}
    micro = _scores(sum(tp.values()), sum(fp.values()), sum(fn.values()))
    micro["headlines"] = len(rows)
    micro["exact"] = len(rows) - len(misses)
    return {"micro": micro, "topics": topics, "misses": misses}


def report(path: Path, figures: dict, show_misses: bool) -> str:
    lines = [f"{path.name}: {figures['micro']['headlines']} headlines"]
    lines.append(
        f"  {'topic':<10} {'prec':>6} {'recall':>6} {'F1':>6}  {'tp':>4} {'fp':>4} {'fn':>4}"
    )
    rows = [*figures["topics"].items(), ("micro", figures["micro"])]
    for slug, s in rows:
        lines.append(
            f"  {slug:<10} {s['precision']:6.3f} {s['recall']:6.3f} {s['f1']:6.3f}"
            f"  {s['tp']:4d} {s['fp']:4d} {s['fn']:4d}"
        )
    exact = figures["micro"]["exact"] / max(figures["micro"]["headlines"], 1)
    lines.append(f"  exact label sets: {exact:.1%}")
    if show_misses:
        for headline, wanted, got in figures["misses"]:
            lines.append(
                f"  want {','.join(wanted) or '-':<16} got {','.join(got) or '-':<16} {headline}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="labelled TSV files")
    parser.add_argument("--feeds", type=Path, default=ROOT / "feeds", help="feeds directory")
    parser.add_argument("--misses", action="store_true", help="list every wrongly filed headline")
    args = parser.parse_args(argv)
    catalog = load_catalog(args.feeds)
    for path in args.files or DEFAULT_SETS:
        print(report(path, evaluate(path, catalog), args.misses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
