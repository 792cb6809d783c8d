"""Helpers for tests that run real `feedsvc` processes: the CLI, and `feedsvc serve` on a free
port of 127.0.0.1, each stopped by its process group (no tests in here)."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import FEEDS

HOST = "127.0.0.1"


def required(found: str | None, reason: str, required_by: str) -> str:
    """`found` (a program's path), or the test is skipped saying `reason`; it fails instead
    when the environment variable `required_by` is 1 (as .ci/run sets: nothing skipped)."""
    if not found:
        if os.environ.get(required_by) == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


def feedsvc_command() -> list[str]:
    """The `feedsvc` console script of this environment (there is no `python -m feedsvc`)."""
    script = Path(sys.executable).parent / "feedsvc"
    if script.exists():
        return [str(script)]
    found = shutil.which("feedsvc")
    assert found, "the feedsvc console script is not installed (pip install -e .)"
    return [found]


def snapshot_feeds(target: Path) -> Path:
    """A private copy of the repository's catalogue (feeds/), so that edits others make to
    feeds/topics/*.toml while a test runs cannot change the catalogue under a running server."""
    shutil.copytree(FEEDS, target, ignore=shutil.ignore_patterns("samples"))
    return target


def environment(
    db: Path | str, feeds: Path, token: str | None = None, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDSVC_")}
    env.update(FEEDSVC_DB=str(db), FEEDSVC_FEEDS=str(feeds), **extra)
    if token:
        env["FEEDSVC_TOKEN"] = token
    return env


def run_cli(
    args: list[str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*feedsvc_command(), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def stop_group(process: subprocess.Popen, grace: float = 5.0) -> None:
    """Stop a process started with `start_new_session=True` and everything in its group."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    # Workers left behind by a server that died, or that ignored SIGTERM.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(grace)


class Server:
    """`feedsvc serve --host 127.0.0.1 --port <free port> --workers N`, with its output in files."""

    def __init__(self, env: dict[str, str], logs: Path, workers: int = 2) -> None:
        self.env = env
        self.workers = workers
        self.port = free_port()
        self.stdout_path = logs / f"serve-{self.port}.out"
        self.stderr_path = logs / f"serve-{self.port}.err"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Server:
        command = [
            *feedsvc_command(),
            "serve",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
        ]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                command,
                env=self.env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: stopped with its workers
            )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(
                    f"feedsvc serve exited with {self.process.returncode}:\n{self.logs()}"
                )
            try:
                status, _, body = self.request("GET", "/healthz", timeout=2)
                if status == 200 and json.loads(body)["status"] == "ok":
                    return
            except (OSError, http.client.HTTPException, ValueError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"feedsvc serve did not answer /healthz:\n{self.logs()}")
            time.sleep(0.1)

    def connection(self, timeout: float = 30) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, http.client.HTTPMessage, bytes]:
        """One request on a new connection: (status, headers, body)."""
        connection = self.connection(timeout)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read()
        finally:
            connection.close()

    def logs(self) -> str:
        out = self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""
        err = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return f"--- stdout ---\n{out[-4000:]}\n--- stderr ---\n{err[-4000:]}"

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process)
