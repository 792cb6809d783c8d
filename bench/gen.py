"""Generated wire documents for the benchmarks: varied, distinct headlines and full articles.

Headlines are random words from a vocabulary that holds the catalogue's rule words, so filing
does real work (most items land under one or two topics, some under none). Deterministic for
a seed. Used by `bench.store_build` and `bench.serve`; also runnable:

    python -m bench.gen OUTDIR [--items N] [--per-doc N] [--feeds DIR]
"""

from __future__ import annotations

import argparse
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

from feedsvc.catalog import load_catalog
from feedsvc.sources import Document

ROOT = Path(__file__).resolve().parent.parent
FEEDS = ROOT / "feeds"


def _words(text: str) -> list[str]:
    return text.split()


COMMON = _words("""
says after over amid new plans first report talks deal record year week day city state
government council leaders officials workers residents families company group firm board
chief head former local national regional northern southern eastern western coastal rural
rises falls drops climbs jumps slips surges slows stalls resumes opens closes wins loses
backs rejects warns urges delays approves blocks faces seeks calls cuts raises hits ends
starts launches unveils reveals confirms denies admits names hires sues signs joins leaves
review plan budget bill law rules reform fund project programme scheme inquiry probe case
vote victory defeat crisis row dispute fight strike shortage boost fall rise surge slump
record warning threat fears hopes doubts concerns questions pressure support demand supply
housing energy water power fuel food transport rail road port airport bridge school
university village town region province county district capital border coast river valley
island mountain harbour north south east west centre
morning evening night weekend spring summer autumn winter season decade century
two three four five six seven ten dozen hundred thousand million billion percent
big small major minor long short early late final last next top key rare
cheap costly quiet busy strong weak record-breaking surprise sudden slow rapid
""")

PLACES = _words("""
Paris Berlin Madrid Rome Lisbon Vienna Prague Warsaw Oslo Helsinki Dublin Athens Ankara
Cairo Nairobi Lagos Accra Delhi Mumbai Dhaka Jakarta Manila Tokyo Seoul Sydney Auckland
Lima Quito Bogota Santiago Toronto Chicago Denver Boston Texas Ohio Quebec Bavaria Andalusia
Rotterdam Hamburg Lyon Milan Naples Porto Krakow Geneva Zurich Brussels Antwerp Glasgow
""")

SURNAMES = _words("""
Adeyemi Ferrante Lindqvist Baird Okafor Nakamura Kowalski Haddad Moreau Silva Jensen
Novak Petrov Duarte Mensah Tanaka Schmidt Rossi Dubois Kaur Chen Walsh Murphy Costa
""")

# Words that carry no topic, for paragraphs.
FILLER = _words("""
the a an of in on at to for with by from as and but or that this these which while when
where because although since until before after during about around against between
""")


def topic_words(feeds_dir: Path = FEEDS) -> list[str]:
    """The catalogue's match rules (phrases kept whole)."""
    catalog = load_catalog(feeds_dir)
    return [rule for topic in catalog.topics for rule in topic.match]


class WireGenerator:
    """Makes distinct headlines and articles; `document()` joins them into wire text."""

    def __init__(self, seed: int = 1, feeds_dir: Path = FEEDS, article_share: float = 0.1):
        self.random = random.Random(seed)
        self.topic_words = topic_words(feeds_dir)
        self.words = COMMON + PLACES
        self.article_share = article_share
        self.seen: set[int] = set()

    def headline(self) -> str:
        rnd = self.random
        while True:
            count = rnd.randint(5, 11)
            words = rnd.choices(self.words, k=count)
            # Two items in three carry one or two rule words; the rest file under nothing.
            roll = rnd.random()
            for _ in range(2 if roll < 0.2 else 1 if roll < 0.67 else 0):
                words.insert(rnd.randrange(len(words) + 1), rnd.choice(self.topic_words))
            if rnd.random() < 0.5:
                words.insert(0, rnd.choice(PLACES))
            title = " ".join(words)
            title = title[0].upper() + title[1:]
            key = hash(title.casefold())
            if key not in self.seen:
                self.seen.add(key)
                return title

    def paragraph(self) -> str:
        rnd = self.random
        sentences = []
        for _ in range(rnd.randint(2, 4)):
            words = [
                rnd.choice(FILLER) if rnd.random() < 0.35 else rnd.choice(self.words)
                for _ in range(rnd.randint(12, 24))
            ]
            if rnd.random() < 0.3:
                words.insert(rnd.randrange(len(words)), rnd.choice(self.topic_words))
            sentence = " ".join(words)
            sentences.append(sentence[0].upper() + sentence[1:] + ".")
        return " ".join(sentences)

    def byline(self) -> str:
        rnd = self.random
        code = "".join(rnd.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=rnd.randint(2, 3)))
        return f"{rnd.choice('ABCDEFGHJKLMNPRST')}.{rnd.choice(SURNAMES)}--{code}"

    def item_lines(self) -> list[str]:
        """One item as wire lines: `-` and a headline, or an article (title, paragraphs,
        byline) ended by the next marker."""
        if self.random.random() >= self.article_share:
            return ["-", self.headline()]
        lines = [self.headline()]
        lines += [self.paragraph() for _ in range(self.random.randint(3, 6))]
        lines.append(self.byline())
        return lines


def wire_document(gen: WireGenerator, items: int) -> str:
    """Wire text with exactly `items` items: headlines as `-` + line; an article starts right
    after the previous item's last line (after a marker its title would be a headline), so two
    articles never follow each other (the second becomes a headline)."""
    lines: list[str] = []
    previous_article = False
    for _ in range(items):
        item = gen.item_lines()
        if item[0] == "-":
            lines += item
            previous_article = False
        else:
            if previous_article:
                lines += ["-", item[0]]
                previous_article = False
            else:
                lines += item
                previous_article = True
    return "\n".join(lines) + "\n"


def documents(
    total: int,
    per_doc: int = 200,
    seed: int = 1,
    feeds_dir: Path = FEEDS,
    article_share: float = 0.1,
) -> Iterator[Document]:
    """Wire documents holding `total` items, `per_doc` a document; about `article_share` of
    the items are full articles (never two in a row: with per_doc=1, any share works)."""
    gen = WireGenerator(seed, feeds_dir, article_share)
    for number, start in enumerate(range(0, total, per_doc)):
        text = wire_document(gen, min(per_doc, total - start))
        yield Document(f"gen-{seed}-{number:06d}.txt", text.encode("utf-8"), "wire")


def write_documents(
    outdir: Path, total: int, per_doc: int = 200, seed: int = 1, feeds_dir: Path = FEEDS
) -> int:
    """Write the documents as OUTDIR/*.txt; returns the number of files."""
    outdir.mkdir(parents=True, exist_ok=True)
    count = 0
    for document in documents(total, per_doc, seed, feeds_dir):
        (outdir / document.name).write_bytes(document.data)
        count += 1
    return count


def copy_feeds(target: Path, entries_per_feed: int | None = None, source: Path = FEEDS) -> Path:
    """A snapshot of a feeds directory (site.toml, topics/), optionally with another
    entries_per_feed, so a benchmark is not disturbed by edits to the real one."""
    target.mkdir(parents=True, exist_ok=True)
    site = (source / "site.toml").read_text(encoding="utf-8")
    if entries_per_feed is not None:
        lines = [
            f"entries_per_feed = {entries_per_feed}"
            if line.startswith("entries_per_feed")
            else line
            for line in site.splitlines()
        ]
        if not any(line.startswith("entries_per_feed") for line in lines):
            lines.append(f"entries_per_feed = {entries_per_feed}")
        site = "\n".join(lines) + "\n"
    (target / "site.toml").write_text(site, encoding="utf-8")
    shutil.rmtree(target / "topics", ignore_errors=True)
    shutil.copytree(source / "topics", target / "topics")
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("outdir", type=Path)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--per-doc", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--feeds", type=Path, default=FEEDS)
    args = parser.parse_args()
    files = write_documents(args.outdir, args.items, args.per_doc, args.seed, args.feeds)
    print(f"{args.outdir}: {files} documents")


if __name__ == "__main__":
    main()
