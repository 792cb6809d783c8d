"""Helpers for the newsroom-format tests: the corpus, and `feedsvc parse --json` on a file."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from feedsvc.cli import main

from .conftest import DATA, FEEDS

CORPUS = DATA / "newsroom"


def cli(*args: str, stdin: bytes | None = None) -> Result:
    """`feedsvc ARGS` on the repository's catalogue, with no store (parse needs none)."""
    runner = CliRunner(env={"FEEDSVC_FEEDS": str(FEEDS), "FEEDSVC_TOKEN": "", "FEEDSVC_DB": ""})
    return runner.invoke(main, list(args), input=stdin)


def parsed(path: Path | str, *options: str) -> list[dict]:
    """The items `feedsvc parse --json` prints for `path`; the command must succeed."""
    result = cli("parse", "--json", *options, str(path))
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def one(path: Path | str) -> dict:
    (item,) = parsed(path)
    return item


def rejected(path: Path | str) -> str:
    """The one error line `feedsvc parse` prints for a document it refuses."""
    result = cli("parse", "--json", str(path))
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
