"""Filing before and after: `feedsvc parse --json --explain` of two checkouts on the same
generated items, compared item by item.

    python -m bench.filing_same BEFORE AFTER [--items 100000] [--keep]

BEFORE and AFTER are checkouts with their own venvs (as for bench.compare). Every item must
have the same fields, topics and explanation, but for one thing: where a rule lies inside two
found phrases (the same phrase in two topics), the phrase `explain` names ("part of ...") is
compared as "part of" only, since 7d939c2 named whichever a set's order gave (it changed with
the hash seed; tests/test_filing_same.py holds the choice made now). Prints the counts, and the
first differences if any; exits 1 when an item differs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .gen import copy_feeds, write_documents

PART_OF = re.compile(r"^part of .+ \([a-z0-9-]+\)$")


def normalised(line: str) -> dict:
    item = json.loads(line)
    for topic in item.get("explain", {}).get("topics", []):
        for rule in topic["rules"]:
            if PART_OF.match(rule.get("note", "")):
                rule["note"] = "part of"
    return item


def parse(checkout: Path, docs: Path, feeds: Path, out: Path) -> int:
    env = dict(os.environ, FEEDSVC_FEEDS=str(feeds))
    env.pop("FEEDSVC_DB", None)
    feedsvc = str(checkout / ".venv" / "bin" / "feedsvc")
    files = sorted(str(p) for p in docs.iterdir())
    with out.open("wb") as handle:
        result = subprocess.run(
            [feedsvc, "parse", "--json", "--explain", *files], env=env, stdout=handle, check=False
        )
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--items", type=int, default=100_000, help="generated items [100000]")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="feedsvc-filing-"))
    try:
        feeds = copy_feeds(tmp / "feeds")
        docs = tmp / "docs"
        write_documents(docs, args.items, per_doc=1000, seed=27, feeds_dir=feeds)
        outputs = []
        for label, checkout in (("before", args.before), ("after", args.after)):
            out = tmp / f"{label}.jsonl"
            if parse(checkout.resolve(), docs, feeds, out):
                print(f"{label}: feedsvc parse failed")
                return 1
            outputs.append(out.read_text(encoding="utf-8").splitlines())
        before, after = outputs
        differ = [n for n, (a, b) in enumerate(zip(before, after, strict=False)) if a != b]
        real = [n for n in differ if normalised(before[n]) != normalised(after[n])]
        filed = sum(json.loads(line)["topics"] not in ([], ["other"]) for line in after)
        print(
            f"{len(before):,} items before, {len(after):,} after ({filed:,} filed by the rules, "
            f"not under 'other'); lines not byte-identical: {len(differ):,} (the phrase named in "
            f"'part of'); different once that is set aside: {len(real):,}"
        )
        for n in real[:5]:
            print(f"- {before[n]}\n+ {after[n]}")
        return 1 if real or len(before) != len(after) else 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
