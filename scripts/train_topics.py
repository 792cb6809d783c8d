"""Train the shipped topic model: gather the labelled training items into
feedsvc/data/topics_training.jsonl and write the model trained on them to
feedsvc/data/topics_model.json (both ship in the wheel; `feedsvc learn` starts from the first).

    python scripts/train_topics.py

The training items: tests/data/topics_labelled.tsv (headlines the rules were tuned on) and the
tuning half of the independent sets (tests/data/filing/tuning.jsonl). Never the frozen half
(tests/data/filing/frozen.jsonl) nor tests/data/topics_heldout.tsv: those are only scored.
The same inputs give the same two files, byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedsvc.classifier import SHIPPED, TRAINING, read_examples, train, write_atomically  # noqa: E402

LABELLED = ROOT / "tests/data/topics_labelled.tsv"
TUNING = ROOT / "tests/data/filing/tuning.jsonl"


def tsv_rows(path: Path) -> list[dict]:
    """`labels<TAB>headline` lines (a header first, `#` comments; `other`: no topic)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines()[1:]:
        if not line.strip() or line.startswith("#"):
            continue
        labels, _, headline = line.partition("\t")
        slugs = [s.strip() for s in labels.split(",") if s.strip() and s.strip() != "other"]
        rows.append({"labels": slugs, "headline": headline})
    return rows


def main() -> int:
    rows = tsv_rows(LABELLED)
    if TUNING.is_file():
        for line in TUNING.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            rows.append(
                {"labels": row["labels"], "headline": row["headline"], "article": row["article"]}
            )
    training = Path(SHIPPED).parent.parent / TRAINING
    text = "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows)
    write_atomically(training, text)
    topics = sorted(path.stem for path in (ROOT / "feeds/topics").glob("*.toml"))
    model = train(read_examples(training), topics)
    write_atomically(SHIPPED, model.to_json())
    print(
        f"{len(rows)} labelled items -> {training.name}; {len(model.weights)} features -> "
        f"{SHIPPED.name}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
