"""Whole-word phrase lookup in one pass: every phrase of a set of rules compiled into an
Aho-Corasick automaton (`ahocorasick-rs`, in Rust), run over a text's words joined by spaces.

A phrase is kept as " w1 w2 ... wn " and the text as " t1 t2 ... tm ": since no word holds a
space, a phrase occurs in the text exactly where its words are consecutive words of the text,
so the automaton's overlapping matches are the whole-word findings, all of them, in one scan
in C whatever the number of phrases (filing.py explains what the words are)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from ahocorasick_rs import AhoCorasick, Implementation, MatchKind


@dataclass(slots=True)
class Phrases:
    """Phrases (word sequences), each with the values it stands for; `find` adds the values of
    every phrase found in a text's words."""

    _values: dict[str, list[int]] = field(default_factory=dict)
    _compiled: tuple[AhoCorasick, list[tuple[int, ...]]] | None = None

    def add(self, words: Sequence[str], value: int) -> None:
        if not words or any(not word or " " in word for word in words):
            return  # no text's words could ever hold these
        self._values.setdefault(joined(words), []).append(value)
        self._compiled = None

    def __bool__(self) -> bool:
        return bool(self._values)

    def _compile(self) -> tuple[AhoCorasick, list[tuple[int, ...]]]:
        keys = list(self._values)
        automaton = AhoCorasick(
            keys, matchkind=MatchKind.Standard, implementation=Implementation.DFA
        )
        self._compiled = automaton, [tuple(self._values[key]) for key in keys]
        return self._compiled

    def find(self, text: str, found: set[int]) -> None:
        """Add to `found` the values of the phrases found in `text`: words joined as `joined`
        joins them."""
        if not self._values:
            return
        automaton, values = self._compiled or self._compile()
        for key, _, _ in automaton.find_matches_as_indexes(text, overlapping=True):
            found.update(values[key])


def joined(words: Sequence[str]) -> str:
    """A text's words as `Phrases.find` reads them: each between spaces."""
    return f" {' '.join(words)} "
