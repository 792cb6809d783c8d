"""Bucket build figures: a first `feedsvc build s3://...` of N items against moto's S3 server on
loopback, with one put at a time and with `bucket.PUT_THREADS` at once; then a rebuild with
nothing changed (a listing, no puts).

    python -m bench.bucket [--items 2000]

moto answers from this machine (a put costs its CPU, not a network round trip): against a real
bucket, where a put waits tens of milliseconds on the network, the threads gain more. To see
that here, delay loopback as root (`tc qdisc add dev lo root netem delay 10ms`: 20 ms a round
trip; `tc qdisc del dev lo root` after).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

from feedsvc import bucket as bucket_module
from feedsvc.bucket import Bucket
from feedsvc.catalog import load_catalog
from feedsvc.ingest import ingest_document, open_filed_store
from feedsvc.site import SiteMap
from feedsvc.static import build_site

from .gen import copy_feeds, documents

BASE_URL = "https://feeds.example.org/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000, help="items in the store [2000]")
    args = parser.parse_args()
    port = free_port()
    # Its own process: in this one, its request handling would share our GIL.
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(port)
    os.environ.update(
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        with tempfile.TemporaryDirectory(prefix="feedsvc-bench-") as tmp:
            catalog = load_catalog(copy_feeds(Path(tmp) / "feeds"), BASE_URL)
            store = open_filed_store(Path(tmp) / "store.sqlite3", catalog, create=True)
            for document in documents(args.items, per_doc=200):
                ingest_document(store, catalog, document)
            client = boto3.client("s3")
            rows = []
            for threads in (1, bucket_module.PUT_THREADS):
                name = f"site-{threads}"
                client.create_bucket(Bucket=name)
                bucket_module.PUT_THREADS = threads
                target = Bucket(f"s3://{name}/", catalog.site.max_age, SiteMap(catalog).is_feed)
                started = time.perf_counter()
                report = build_site(store, catalog, target)
                seconds = time.perf_counter() - started
                rows.append((f"first build, {threads} put(s) at a time", report.written, seconds))
            target = Bucket(f"s3://{name}/", catalog.site.max_age, SiteMap(catalog).is_feed)
            started = time.perf_counter()
            report = build_site(store, catalog, target)
            rows.append(("rebuild, nothing changed", report.written, time.perf_counter() - started))
            store.close()
    finally:
        server.terminate()
        server.wait()
    print(f"\nbench.bucket: {args.items} items, moto_server (its own process) on loopback")
    print("| build | objects put | seconds | objects/s |")
    print("| --- | --- | --- | --- |")
    for label, written, seconds in rows:
        rate = f"{written / seconds:,.0f}" if written else "-"
        print(f"| {label} | {written:,} | {seconds:.2f} | {rate} |")


if __name__ == "__main__":
    main()
