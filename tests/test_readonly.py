"""A store on a read-only file system: read commands work, writes say why they cannot.

The file system is made read-only for real: a read-only bind mount in a private mount
namespace (`unshare -m`, root only), around the `feedsvc` process under test.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest

from .conftest import SAMPLES
from .server import environment, feedsvc_command, run_cli, snapshot_feeds

READ_ONLY = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" && exec "$@"'


def can_mount() -> bool:
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not can_mount() and not os.environ.get("FEEDSVC_CI"),  # CI: run, never skip
    reason="a read-only bind mount needs root and unshare (CI runs this)",
)


def run_read_only(directory: Path, args: list[str], env: dict) -> subprocess.CompletedProcess:
    command = ["unshare", "-m", "sh", "-c", READ_ONLY, str(directory), *feedsvc_command(), *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=False, timeout=60)


@pytest.fixture
def read_only_store(tmp_path: Path) -> tuple[Path, dict]:
    data = tmp_path / "data"
    data.mkdir()
    env = environment(data / "store.sqlite3", snapshot_feeds(tmp_path / "feeds"))
    env["FEEDSVC_BASE_URL"] = "http://feeds.example.org/"
    result = run_cli(["ingest", str(SAMPLES)], env)
    assert result.returncode == 0, result.stderr
    return data, env


def test_read_commands_work_on_a_read_only_store(read_only_store, tmp_path) -> None:
    data, env = read_only_store
    topics = run_read_only(data, ["topics"], env)
    assert topics.returncode == 0, topics.stderr
    assert "world" in topics.stdout
    build = run_read_only(data, ["build", str(tmp_path / "site")], env)
    assert build.returncode == 0, build.stderr
    assert (tmp_path / "site" / "feeds" / "all.atom").is_file()
    backup = run_read_only(data, ["backup", str(tmp_path / "copy.sqlite3")], env)
    assert backup.returncode == 0, backup.stderr


def test_writes_to_a_read_only_store_say_why(read_only_store, tmp_path) -> None:
    data, env = read_only_store
    (tmp_path / "new.txt").write_text("-\nA headline for a read-only store\n")
    ingest = run_read_only(data, ["ingest", str(tmp_path / "new.txt")], env)
    assert ingest.returncode == 1
    assert "read-only file system" in ingest.stderr and ingest.stderr.count("\n") <= 2
    assert "Traceback" not in ingest.stderr
    fresh = run_read_only(data, ["--db", str(data / "other.sqlite3"), "init"], env)
    assert fresh.returncode == 1
    assert "read-only file system" in fresh.stderr and "Traceback" not in fresh.stderr


def test_search_works_on_a_read_only_store_unless_its_index_is_stale(read_only_store) -> None:
    data, env = read_only_store
    found = run_read_only(data, ["search", "court", "--json"], env)
    assert found.returncode == 0, found.stderr
    assert found.stdout.count("\n") >= 2 and "court" in found.stdout.lower()
    # As another feedsvc's folding rules would leave it: a read-only store cannot rebuild.
    db = sqlite3.connect(data / "store.sqlite3")
    with db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'fold'")
    db.close()  # the last connection out folds the WAL into the file a read-only open reads
    stale = run_read_only(data, ["search", "court"], env)
    assert stale.returncode == 1 and stale.stderr.count("\n") == 1
    assert "search index was made by another version of feedsvc" in stale.stderr
