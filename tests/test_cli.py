"""The `feedsvc` command line, through click's CliRunner."""

from __future__ import annotations

import json

import feedparser
import pytest

from feedsvc.cli import main
from feedsvc.sources import DOCUMENT_PATTERNS
from feedsvc.store import open_store as open_engine
from feedsvc.web import create_app

from .conftest import BASE_URL, DATA, FEEDS, SAMPLES
from .server import HOST, Server, environment, run_cli, snapshot_feeds


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
            # the newsroom formats' fields: wire items have none of them
            "format",
            "guid",
            "version",
            "status",
            "embargo",
            "language",
            "subjects",
            "images",
            "ednote",
            "correction",
            "dateline",
        }
        assert isinstance(o["topics"], list)
        assert o["format"] == "wire" and o["status"] == "usable" and o["guid"] is None
        assert o["subjects"] == [] and o["images"] == []
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
    for command in ("parse", "ingest", "build", "topics", "refile", "backup", "serve", "search"):
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
    result = runner.invoke(
        main, ["build", str(tmp_path / "site"), "--base-url", "https://feeds.example.org/news"]
    )
    assert result.exit_code == 0, result.output
    assert "written" in result.output
    parsed = feedparser.parse((tmp_path / "site/feeds/all.atom").read_bytes())
    assert not parsed.bozo
    assert parsed.feed.links[0].href == "https://feeds.example.org/news/feeds/all.atom"
    topics = runner.invoke(main, ["topics"])
    assert topics.exit_code == 0
    assert "feeds/world.rss" in topics.output and "feeds/all.json" in topics.output


def test_build_without_a_base_url_is_one_line_saying_how_to_give_one(runner, tmp_path) -> None:
    runner.invoke(main, ["ingest", str(SAMPLES)])
    result = runner.invoke(main, ["build", str(tmp_path / "site")])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"feedsvc: error: {FEEDS / 'site.toml'}: no base URL")
    assert "--base-url" in result.stderr and "FEEDSVC_BASE_URL" in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "site").exists()
    env_given = runner.invoke(
        main, ["build", str(tmp_path / "site")], env={"FEEDSVC_BASE_URL": "https://x.example/"}
    )
    assert env_given.exit_code == 0, env_given.output
    assert b"https://x.example/feeds/all.rss" in (tmp_path / "site/feeds/all.rss").read_bytes()


def test_build_into_a_file_is_exit_1(runner, store, tmp_path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    result = runner.invoke(main, ["build", str(target), "--base-url", "https://x.example/"])
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


@pytest.mark.sqlite_only
def test_backup_copies_the_store(runner, tmp_path) -> None:
    runner.invoke(main, ["ingest", str(SAMPLES)])
    result = runner.invoke(main, ["backup", str(tmp_path / "copy.sqlite3")])
    assert result.exit_code == 0, result.output
    again = runner.invoke(main, ["backup", str(tmp_path / "copy.sqlite3")])
    assert again.exit_code == 1 and "already exists" in again.stderr


# -- a mistyped store is an error, never a new empty store ------------------------------------

NO_STORE_COMMANDS = [
    ["build", "SITE", "--base-url", "https://feeds.example.org/"],
    ["topics"],
    ["refile"],
    ["backup", "COPY"],
    ["serve"],
    ["search", "court"],
]


def test_every_command_but_init_and_ingest_refuses_a_path_with_no_store(runner, tmp_path) -> None:
    typo = tmp_path / "typo.db"
    site = tmp_path / "site"
    for command in NO_STORE_COMMANDS:
        args = [
            str(site) if a == "SITE" else str(tmp_path / "c.db") if a == "COPY" else a
            for a in command
        ]
        result = runner.invoke(main, ["--db", str(typo), *args])
        assert result.exit_code == 1, (command, result.output)
        assert result.stderr == (
            f"feedsvc: error: {typo}: no store here "
            "(create one with feedsvc init or feedsvc ingest)\n"
        ), command
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written anywhere


def test_init_creates_an_empty_store_once(runner, tmp_path) -> None:
    path = tmp_path / "new.db"
    first = runner.invoke(main, ["--db", str(path), "init"])
    assert first.exit_code == 0, first.output
    assert "0 items" in first.output and path.is_file()
    assert runner.invoke(main, ["--db", str(path), "topics"]).exit_code == 0
    missing = runner.invoke(main, ["--db", str(tmp_path / "no" / "dir" / "x.db"), "init"])
    assert missing.exit_code == 1 and "no such directory" in missing.stderr
    assert not (tmp_path / "no").exists()


@pytest.mark.sqlite_only
def test_backup_into_a_missing_directory_is_one_line(runner, store, tmp_path) -> None:
    result = runner.invoke(main, ["backup", str(tmp_path / "none" / "b.sqlite3")])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "no such directory" in result.stderr


def test_ingest_in_worker_processes_stores_the_same_items_and_names_bad_files(
    runner, tmp_path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(6):
        lines = [f"-\nDocument {n} headline {k} about the football league\n" for k in range(5)]
        (docs / f"{n}.txt").write_text("".join(lines))
    (docs / "3b.txt").write_bytes(b"-\nfine line\n-\nbad \xff byte\n")
    stores = {}
    for jobs in ("1", "3"):
        db = tmp_path / f"jobs{jobs}.db"
        result = runner.invoke(main, ["--db", str(db), "ingest", "--jobs", jobs, str(docs)])
        assert result.exit_code == 1, result.output
        assert f"{docs / '3b.txt'}:4: not valid UTF-8" in result.stderr
        assert "total: 30 new, 0 updated, 0 unchanged; 1 rejected" in result.output
        store = open_engine(db)
        stores[jobs] = [(i.id, i.title, i.topics) for i in store.newest("all", 100)]
        store.close()
    assert stores["1"] == stores["3"] and len(stores["1"]) == 30


@pytest.mark.system
def test_serve_without_a_base_url_links_to_the_address_it_serves(tmp_path, request) -> None:
    feeds = snapshot_feeds(tmp_path / "feeds")  # the shipped site.toml: no base_url
    env = environment(tmp_path / "store.sqlite3", feeds)
    assert run_cli(["ingest", str(SAMPLES)], env).returncode == 0
    server = Server(env, tmp_path, workers=1)
    request.addfinalizer(server.stop)
    server.start()
    here = f"http://{HOST}:{server.port}/"
    first_line = server.stdout_path.read_text().splitlines()[0]
    assert first_line.startswith(f"feedsvc: serving on {here} ")
    assert first_line.endswith(f"links point to {here} (no base_url set)")
    status, _, body = server.request("GET", "/feeds/all.atom")
    parsed = feedparser.parse(body)
    assert status == 200 and not parsed.bozo
    assert parsed.feed.links[0].href == f"{here}feeds/all.atom"
    assert all(entry.link.startswith(here) for entry in parsed.entries)
    _, _, opml = server.request("GET", "/feeds.opml")
    assert f'xmlUrl="{here}feeds/world.rss"'.encode() in opml


def test_directory_without_documents_says_so_and_exits_0(runner, tmp_path) -> None:
    empty, other = tmp_path / "empty", tmp_path / "other"
    empty.mkdir()
    other.mkdir()
    (other / "notes.md").write_text("-\nNot a document\n")
    (other / "items.csv").write_text("id,title\na,t\n")
    assert DOCUMENT_PATTERNS.endswith("*.jsonl, *.ndjson, *.xml, *.json")  # newsroom formats
    for command in ("parse", "ingest"):
        result = runner.invoke(main, [command, str(empty), str(other)])
        assert result.exit_code == 0, result.output
        assert result.stderr == (
            f"{empty}: no documents ({DOCUMENT_PATTERNS})\n"
            f"{other}: no documents ({DOCUMENT_PATTERNS})\n"
        )
    (other / "one.txt").write_text("-\nNow there is one\n")
    result = runner.invoke(main, ["parse", str(other)])
    assert result.exit_code == 0 and result.stderr == "" and "Now there is one" in result.stdout


def test_json_lines_on_stdin_without_stdin_format_is_an_error(runner) -> None:
    lines = '{"id": "s1", "title": "From a pipe"}\n{"id": "s2", "title": "Another"}\n'
    for command in ("parse", "ingest"):
        result = runner.invoke(main, [command, "-"], input=lines)
        assert result.exit_code == 1
        assert result.stderr == (
            "feedsvc: error: <stdin>: every line is a JSON object: this is JSON Lines, "
            "not wire text (read it with --stdin-format jsonl)\n"
        )
    assert runner.invoke(main, ["topics"]).output.split()[1] == "0"  # nothing stored
    stored = runner.invoke(main, ["ingest", "--stdin-format", "jsonl", "-"], input=lines)
    assert stored.exit_code == 0 and "2 new" in stored.stdout


def test_same_id_twice_in_json_lines_rejects_the_document(runner, tmp_path) -> None:
    document = tmp_path / "desk.jsonl"
    document.write_text(
        '{"id": "d1", "title": "First telling"}\n'
        '{"id": "d2", "title": "Another story"}\n'
        '{"id": "d1", "title": "Second telling"}\n'
    )
    result = runner.invoke(main, ["ingest", str(document)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"feedsvc: error: {document}:3: id 'd1' is also on line 1: ids are unique in a document\n"
    )
    assert runner.invoke(main, ["topics"]).output.split()[1] == "0"  # not even d2


def test_build_over_a_file_of_others_is_one_line_until_overwrite(runner, tmp_path) -> None:
    runner.invoke(main, ["ingest", str(SAMPLES)])
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<h1>Ours, by hand</h1>")
    (site / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    refused = runner.invoke(main, ["build", str(site), "--base-url", BASE_URL])
    assert refused.exit_code == 1
    assert refused.stderr == (
        f"feedsvc: error: {site / 'index.html'}: not written by feedsvc build "
        "(not in .feedsvc-build.json); move it away, or build with --overwrite to replace it\n"
    )
    assert (site / "index.html").read_text() == "<h1>Ours, by hand</h1>"
    taken = runner.invoke(main, ["build", "--overwrite", str(site), "--base-url", BASE_URL])
    assert taken.exit_code == 0, taken.output
    assert taken.stdout.endswith(" unchanged, 0 removed\n")
    assert (site / "index.html").read_text().startswith("<!doctype html>")
    assert (site / "photo.jpg").read_bytes() == b"\xff\xd8\xff"


def test_search_prints_the_entries_of_the_live_query_feed(runner, settings) -> None:
    runner.invoke(main, ["ingest", str(SAMPLES)])
    result = runner.invoke(main, ["search", "Court OR bank", "--topic", "world", "--json"])
    assert result.exit_code == 0, result.output
    found = [json.loads(line) for line in result.stdout.splitlines()]
    client = create_app({"SETTINGS": settings, "TESTING": True}).test_client()
    feed = client.get("/feeds/world.json?q=court+OR+bank").json
    assert len(found) >= 2
    assert [f"feeds/world/items/{item['id']}" for item in found] == [
        entry["id"].rsplit(":", 1)[1] for entry in feed["items"]
    ]
    assert all("world" in item["topics"] for item in found)
    table = runner.invoke(main, ["search", "court OR bank", "--topic", "world", "--limit", "1"])
    assert table.exit_code == 0 and len(table.stdout.splitlines()) == 1
    assert found[0]["id"] in table.stdout and found[0]["published"][:10] in table.stdout
    nothing = runner.invoke(main, ["search", "zzyzx"])
    assert nothing.exit_code == 0 and nothing.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["***"], "the query has no word to look for"),
        (["--", "-court"], "the query only excludes: add a word to look for"),
        (["x" * 300], "the query is longer than 200 characters"),
        (["court", "--limit", "0"], "limit must be a whole number from 1 to 50"),
        (["court", "--topic", "nope"], "no topic 'nope' (topics: all, "),
    ],
)
def test_a_bad_search_is_one_line_and_exit_1(runner, args, message) -> None:
    runner.invoke(main, ["ingest", str(SAMPLES)])
    result = runner.invoke(main, ["search", *args])
    assert result.exit_code == 1
    assert result.stderr.startswith(f"feedsvc: error: {message}")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
