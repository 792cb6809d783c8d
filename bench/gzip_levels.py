"""gzip level for the static site's `.gz` files: size and time at each level, on a built site.

    python -m bench.gzip_levels SITE [--files 1500] [--repeat 5]

Takes a sample of SITE's item pages and archive pages (the two kinds a large build writes by
the thousand), compresses each at levels 1-9 as the build does (`gzip.compress`, mtime 0), and
prints per kind: the compressed size as a share of the plain bytes, beside level 9's, and the
CPU time per file (best of `--repeat` passes over the sample; CPU time, not wall time, so
that other processes on a shared machine disturb it less).
"""

from __future__ import annotations

import argparse
import gzip
import random
import time
from pathlib import Path


def sample(site: Path, pattern: str, count: int) -> list[bytes]:
    paths = sorted(p for p in site.glob(pattern) if p.suffix != ".gz")
    random.Random(1).shuffle(paths)
    return [p.read_bytes() for p in paths[:count]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("site", type=Path)
    parser.add_argument("--files", type=int, default=1500, help="files per kind [1500]")
    parser.add_argument("--repeat", type=int, default=5, help="passes, the best kept [5]")
    args = parser.parse_args(argv)
    kinds = {
        "item pages": sample(args.site, "items/*.html", args.files),
        "archive pages": sample(args.site, "feeds/*/archive/*.*", args.files),
    }
    print("| kind | level | size (% of plain) | vs level 9 | CPU µs per file |")
    print("| --- | --- | --- | --- | --- |")
    for kind, files in kinds.items():
        if not files:
            continue
        plain = sum(map(len, files))
        sizes: dict[int, int] = {}
        times: dict[int, float] = {}
        for level in range(1, 10):
            best = float("inf")
            for _ in range(args.repeat):
                start = time.process_time()
                out = [gzip.compress(data, compresslevel=level, mtime=0) for data in files]
                best = min(best, time.process_time() - start)
            sizes[level], times[level] = sum(map(len, out)), best / len(files) * 1e6
        for level in range(1, 10):
            print(
                f"| {kind} ({plain // len(files):,} B) | {level} | {sizes[level] / plain:.2%} | "
                f"{sizes[level] / sizes[9] - 1:+.2%} | {times[level]:,.0f} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
