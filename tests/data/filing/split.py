"""Split the independent labelled sets, once, into a tuning half and a frozen half.

    python tests/data/filing/split.py w1.jsonl w2.jsonl w3.jsonl

Each input is one writer's file (JSON Lines: {"labels": [...], "headline": ..., "article": ...},
labels [] for an item of no topic), written by people who never saw the rules. Every item goes
to `tuning.jsonl` or `frozen.jsonl` here by a hash of its normalised headline (so the same
headline from two writers lands on the same side), with its writer (the input's stem) kept.
The model trains on the tuning half and its misses may be read; the frozen half is only ever
scored (`python -m bench.topics_eval`). This prints counts only, never an item.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOPICS = {"world", "business", "sport", "tech", "science", "health", "culture"}


def side(headline: str) -> str:
    key = " ".join(headline.casefold().split()).encode()
    return "tuning" if hashlib.sha256(key).digest()[0] % 2 == 0 else "frozen"


def main(paths: list[str]) -> int:
    halves: dict[str, list[str]] = {"tuning": [], "frozen": []}
    for name in paths:
        path = Path(name)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            labels = [str(label) for label in row["labels"]]
            unknown = set(labels) - TOPICS
            if unknown or not str(row["headline"]).strip():
                sys.exit(f"{path}:{number}: unknown label {sorted(unknown)} or no headline")
            item = {
                "writer": path.stem,
                "labels": labels,
                "headline": row["headline"],
                "article": row.get("article") or "",
            }
            halves[side(row["headline"])].append(json.dumps(item, ensure_ascii=False) + "\n")
    for half, lines in halves.items():
        (HERE / f"{half}.jsonl").write_text("".join(lines), encoding="utf-8")
        print(f"{half}.jsonl: {len(lines)} items")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
