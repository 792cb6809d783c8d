"""The README's nginx `server` block, run for real on a built site: it serves the site's files
and never the build's own (its manifest, a journal, unfinished temporary files).

Needs nginx (`apt-get install -y nginx-light`). Without it the test is skipped, with that
reason, unless FEEDSVC_REQUIRE_NGINX=1 (as .ci/run sets) makes it fail instead."""

from __future__ import annotations

import gzip
import http.client
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from feedsvc.sitemap import ROBOTS_TYPE, XML_TYPE
from feedsvc.static import JOURNAL, MANIFEST, build_site

from .conftest import ROOT
from .server import HOST, free_port, required, stop_group

HTTP = """\
{user}worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{server}
}}
"""


def readme_server_block() -> str:
    """The `server { ... }` block README.md gives for the static site, as written there."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Serving the static site") :]
    found = re.search(r"^    server \{\n.*?^    \}\n", section, re.MULTILINE | re.DOTALL)
    assert found, "README.md: no nginx server block under 'Serving the static site'"
    return found.group(0)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    reason = "the nginx test needs nginx: apt-get install -y nginx-light"
    return required(found, reason, "FEEDSVC_REQUIRE_NGINX")


def get(port: int, path: str, headers: dict[str, str] | None = None):
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def test_readme_nginx_block_serves_the_site_but_not_the_build_files(
    filled, catalog, tmp_path
) -> None:
    binary = nginx_binary()
    site = tmp_path / "site"
    build_site(filled, catalog, site)
    (site / JOURNAL).write_text("feeds/all.rss\n")  # as a killed build leaves them
    (site / "feeds/.feedsvc-tmp-x1y2").write_text("half a feed")
    port = free_port()
    server = readme_server_block()
    server = re.sub(r"listen 80;", f"listen {HOST}:{port};", server)
    server = re.sub(r"root \S+;", f"root {site};", server)
    user = "user root;\n" if os.geteuid() == 0 else ""  # workers must read the tmp_path site
    conf = tmp_path / "nginx.conf"
    conf.write_text(HTTP.format(user=user, tmp=tmp_path, server=server))
    process = subprocess.Popen(
        [binary, "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                status, headers, body = get(port, "/feeds/all.rss")
                break
            except OSError:
                assert process.poll() is None, process.stderr.read().decode()
                assert time.monotonic() < deadline, "nginx did not answer"
                time.sleep(0.05)
        assert status == 200 and body == (site / "feeds/all.rss").read_bytes()
        assert headers["Content-Type"] == "application/rss+xml; charset=utf-8"
        zipped = get(port, "/feeds/all.rss", {"Accept-Encoding": "gzip"})
        assert zipped[1]["Content-Encoding"] == "gzip" and gzip.decompress(zipped[2]) == body
        assert get(port, "/index.html")[0] == 200
        # The sitemaps and robots.txt with the media types the live app gives them.
        for path, media in (("/sitemap.xml", XML_TYPE), ("/robots.txt", ROBOTS_TYPE)):
            status, headers, body = get(port, path)
            assert status == 200 and body == (site / path[1:]).read_bytes()
            assert headers["Content-Type"] == media, path
        for path in (f"/{MANIFEST}", f"/{JOURNAL}", "/feeds/.feedsvc-tmp-x1y2"):
            assert get(port, path)[0] == 404, path
    finally:
        stop_group(process)
