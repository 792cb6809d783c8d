"""The `feedsvc` command line, through click's CliRunner."""

from __future__ import annotations

import json

import feedparser

from feedsvc.cli import main

from .conftest import DATA, SAMPLES


def test_parse_json_prints_one_object_per_item(runner) -> None:
    result = runner.invoke(main, ["parse", "--json", str(DATA / "wire_basic.txt")])
    assert result.exit_code == 0, result.output
    objects = [json.loads(line) for line in result.output.splitlines()]
    assert objects[0]["title"] == "Harbour authority approves night ferry trial"
    assert len(objects) == 4
    for o in objects:
        assert set(o) == {
            "id",
            "title",
            "content",
            "summary",
            "author",
            "source",
            "link",
            "published",
            "updated",
            "topics",
        }
        assert isinstance(o["topics"], list)
    assert objects[2]["author"] == "M.Okonkwo" and objects[0]["content"] is None


def test_parse_table_and_stdin(runner) -> None:
    result = runner.invoke(main, ["parse", "-"], input="-\nA headline from stdin\n")
    assert result.exit_code == 0, result.output
    assert "A headline from stdin" in result.output and "headline" in result.output


def test_parse_jsonl_from_stdin(runner) -> None:
    result = runner.invoke(
        main,
        ["parse", "--json", "--stdin-format", "jsonl", "-"],
        input='{"id": "s1", "title": "From a pipe"}\n',
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["id"] == "s1"


def test_parse_bad_document_is_one_line_and_exit_1(runner, tmp_path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes("-\nGood\n-\nBad \xe9\n".encode("latin-1"))
    result = runner.invoke(main, ["parse", "--json", str(bad)])
    assert result.exit_code == 1
    assert result.stdout == ""  # nothing of a rejected document is printed
    assert result.stderr.startswith(f"feedsvc: error: {bad}:4: not valid UTF-8")
    assert result.stderr.count("\n") == 1


def test_parse_missing_file_is_exit_1(runner, tmp_path) -> None:
    result = runner.invoke(main, ["parse", str(tmp_path / "missing.txt")])
    assert result.exit_code == 1 and "no such file" in result.stderr


def test_bad_usage_is_exit_2(runner) -> None:
    assert runner.invoke(main, ["parse"]).exit_code == 2
    assert runner.invoke(main, ["frobnicate"]).exit_code == 2
    assert runner.invoke(main, ["serve", "--port", "nope"]).exit_code == 2


def test_every_command_has_help(runner) -> None:
    for command in ("parse", "ingest", "build", "topics", "refile", "backup", "serve"):
        result = runner.invoke(main, [command, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output, command


def test_ingest_counts_and_idempotence(runner) -> None:
    first = runner.invoke(main, ["ingest", str(SAMPLES)])
    assert first.exit_code == 0, first.output
    assert "total:" in first.output and " new," in first.output
    second = runner.invoke(main, ["ingest", str(SAMPLES)])
    assert second.exit_code == 0
    assert "total: 0 new, 0 updated," in second.output


def test_ingest_rejects_bad_document_but_keeps_the_others(runner, tmp_path) -> None:
    (tmp_path / "a.txt").write_text("-\nGood document headline\n")
    (tmp_path / "b.jsonl").write_text('{"id": "x", "title": "t"}\n{"id": "y"}\n')
    result = runner.invoke(main, ["ingest", str(tmp_path)])
    assert result.exit_code == 1
    assert f"feedsvc: error: {tmp_path / 'b.jsonl'}:2: 'title' is required" in result.stderr
    assert "1 new" in result.stdout and "1 rejected" in result.stdout
    topics = runner.invoke(main, ["topics"])
    assert topics.output.split()[1] == "1"  # the 'all' line: only the good document's item


def test_build_and_topics(runner, tmp_path) -> None:
    runner.invoke(main, ["ingest", str(SAMPLES)])
    result = runner.invoke(main, ["build", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    assert "written" in result.output
    assert not feedparser.parse((tmp_path / "site/feeds/all.atom").read_bytes()).bozo
    topics = runner.invoke(main, ["topics"])
    assert topics.exit_code == 0
    assert "feeds/world.rss" in topics.output and "feeds/all.json" in topics.output


def test_build_into_a_file_is_exit_1(runner, tmp_path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = runner.invoke(main, ["build", str(target)])
    assert result.exit_code == 1
    assert result.stderr == f"feedsvc: error: {target}: not a directory\n"


def test_bad_catalogue_names_file_and_key(runner, tmp_path) -> None:
    feeds = tmp_path / "feeds"
    (feeds / "topics").mkdir(parents=True)
    (feeds / "site.toml").write_text(
        'title = "t"\ndescription = "d"\nbase_url = "https://x.example/"\nauthor = "a"\n'
    )
    (feeds / "topics" / "weather.toml").write_text('title = "W"\ndescription = "d"\ncolour = 1\n')
    result = runner.invoke(main, ["--feeds", str(feeds), "parse", str(DATA / "wire_basic.txt")])
    assert result.exit_code == 1
    assert "weather.toml:3: unknown key 'colour'" in result.stderr


def test_backup_copies_the_store(runner, tmp_path) -> None:
    runner.invoke(main, ["ingest", str(SAMPLES)])
    result = runner.invoke(main, ["backup", str(tmp_path / "copy.sqlite3")])
    assert result.exit_code == 0, result.output
    again = runner.invoke(main, ["backup", str(tmp_path / "copy.sqlite3")])
    assert again.exit_code == 1 and "already exists" in again.stderr
