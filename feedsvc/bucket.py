"""The static build's S3 destination (`feedsvc build s3://BUCKET/PREFIX`): every resource an
object with its Content-Type and Cache-Control, put only when its bytes or headers changed;
a manifest of digests and ETags under the prefix says what earlier builds wrote, and journal
objects what builds killed before their manifest may have written. boto3 is the optional
extra `feedsvc[s3]`, imported only here; endpoint, region and credentials come the standard
boto3 way (AWS_ENDPOINT_URL, AWS_PROFILE, ~/.aws/...)."""

from __future__ import annotations

import collections
import hashlib
import json
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .destination import MANIFEST, BuildError, BuildReport, Manifest, is_site_path
from .site import Rendered

SCHEME = "s3://"
# + N: the paths a build was about to put and did not own, written before it puts them; the
# manifest covers them once written, and the journals go. Never served, like the manifest.
JOURNAL = ".feedsvc-build.journal."
PAGE_MAX_AGE = 60  # pages and lists: short, so a new item shows soon after its feed
PUT_THREADS = 16  # puts in flight at once (`put_unordered`)


def is_bucket_url(target: str) -> bool:
    return target.startswith(SCHEME)


class Bucket:
    """Objects under `s3://BUCKET/PREFIX/`, named by site path."""

    def __init__(self, url: str, feed_max_age: int, is_feed: Any, overwrite: bool = False) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise BuildError("needs boto3: pip install 'feedsvc[s3]'", url) from None
        bucket, _, prefix = url.removeprefix(SCHEME).partition("/")
        if not bucket:
            raise BuildError("no bucket name (s3://BUCKET/PREFIX)", url)
        self.url, self.bucket = url, bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.feed_max_age, self.is_feed = feed_max_age, is_feed
        self.overwrite = overwrite  # replace objects of someone else's where the build writes
        self.report = BuildReport()
        # Short timeouts and few retries: an unreachable endpoint is one line within seconds.
        config = Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            max_pool_connections=PUT_THREADS,
        )
        self.client = self._call(lambda: boto3.session.Session().client("s3", config=config))
        self.old = Manifest()
        self.listed: dict[str, str] = {}  # every object under the prefix, with its ETag, at start
        self.owned: set[str] = set()  # paths a build wrote: the manifest's, and killed builds'
        self.journals: list[str] = []  # journals of killed builds, then this build's own
        self.digests: dict[str, str] = {}  # what this build leaves at each path, for its manifest
        self.etags: dict[str, str] = {}

    def key(self, path: str) -> str:
        return self.prefix + path

    def read_manifest(self) -> Manifest:
        self.listed = self._list()
        data = self._read_json(MANIFEST) if MANIFEST in self.listed else {}
        files, etags = data.get("files"), data.get("etags")
        digests = _strings(files)
        generation, signature = data.get("generation"), data.get("signature")
        self.old = Manifest(
            generation if isinstance(generation, int) else 0,
            signature if isinstance(signature, str) else "",
            frozenset(digests),
            digests,
            _strings(etags),
        )
        self.owned = {path for path in digests if is_site_path(path)}
        for path in sorted(self.listed, key=_journal_number):
            if _journal_number(path):
                self.journals.append(path)
                self.owned.update(self._written_since(path))
        return self.old

    def claim(self, paths: set[str]) -> None:
        """Note in a journal object the paths not owned yet, with the ETag each has now (None:
        no object), before putting any: a build killed before its manifest still owns what
        it put, and the next one can tell an object it put from one it never replaced."""
        new = sorted(path for path in paths if path not in self.owned)
        if not new:
            return
        theirs = [path for path in new if path in self.listed]
        if theirs and not self.overwrite:  # someone else's object: never replaced unasked
            raise BuildError(
                f"{theirs[0]}: not written by feedsvc build (not in {MANIFEST}); "
                "move it away, or build with --overwrite to replace it",
                self.url,
            )
        number = max(map(_journal_number, self.journals), default=0) + 1
        journal = f"{JOURNAL}{number}"
        self._put_private(journal, {"before": {path: self.listed.get(path) for path in new}})
        self.journals.append(journal)
        self.owned.update(new)

    def existing(self) -> set[str]:
        """Paths the last finished build put that still hold what it put: their ETag now is the
        one the bucket gave that put. Deleted or replaced by hand, they are put again."""
        return {path for path, etag in self.old.etags.items() if self.listed.get(path) == etag}

    def cache_control(self, path: str, rendered: Rendered) -> str:
        if rendered.cache_control:  # full archive pages: immutable
            return rendered.cache_control
        age = self.feed_max_age if self.is_feed(path) else min(PAGE_MAX_AGE, self.feed_max_age)
        return f"public, max-age={age}"

    def put(self, path: str, rendered: Rendered) -> None:
        upload = self._upload(path, rendered)
        if upload is not None:
            self._done(path, self._call(upload))

    def put_unordered(self, resources: Iterable[tuple[str, Rendered]]) -> None:
        """Put each like `put`, `PUT_THREADS` at a time: a put is a round trip of tens of
        milliseconds, and a first build puts an object per item. The checks and the
        bookkeeping stay on this thread; only the requests run on others."""
        window: collections.deque[tuple[str, Future[Any]]] = collections.deque()
        with ThreadPoolExecutor(PUT_THREADS, thread_name_prefix="feedsvc-put") as pool:
            try:
                for path, rendered in resources:
                    upload = self._upload(path, rendered)
                    if upload is not None:
                        window.append((path, pool.submit(self._call, upload)))
                    if len(window) >= 2 * PUT_THREADS:  # bounds the bodies held in memory
                        self._done(*_result(window.popleft()))
                while window:
                    self._done(*_result(window.popleft()))
            except BaseException:
                for _, future in window:  # the first failure stops the build: no more puts
                    future.cancel()
                raise

    def _upload(self, path: str, rendered: Rendered) -> Callable[[], Any] | None:
        """The put of `path` to make, or None if the object already holds these bytes and
        headers (counted as unchanged)."""
        cache_control = self.cache_control(path, rendered)
        digest = hashlib.sha256(
            b"\0".join([rendered.body, rendered.content_type.encode(), cache_control.encode()])
        ).hexdigest()
        self.digests[path] = digest
        # A manifest from before ETags were kept: a single-part put's ETag is its bytes' MD5.
        etag = self.old.etags.get(path) or f'"{hashlib.md5(rendered.body).hexdigest()}"'
        if self.old.digests.get(path) == digest and self.listed.get(path) == etag:
            self.etags[path] = etag
            self.report.unchanged += 1
            return None
        if path not in self.owned:  # not claimed ahead: claim it alone
            self.claim({path})
        return lambda: self.client.put_object(
            Bucket=self.bucket,
            Key=self.key(path),
            Body=rendered.body,
            ContentType=rendered.content_type,
            CacheControl=cache_control,
        )

    def _done(self, path: str, answer: dict[str, Any]) -> None:
        self.etags[path] = answer["ETag"]
        self.report.written += 1
        self.report.paths.append(path)

    def remove_others(self, expected: set[str]) -> None:
        """Delete the objects builds wrote (the manifest's, and those a killed build put) that
        the site no longer has; keep in the manifest those it has and this build did not need
        to render."""
        unchanged = self.existing()
        for path in sorted(self.owned - self.digests.keys()):
            if path in expected:
                if path in unchanged:
                    self.digests[path] = self.old.digests[path]
                    self.etags[path] = self.old.etags[path]
            elif path in self.listed:
                self._call(
                    lambda p=path: self.client.delete_object(Bucket=self.bucket, Key=self.key(p))
                )
                self.report.removed += 1

    def write_manifest(self, manifest: Manifest) -> None:
        """Write the manifest, then drop the journals it now covers."""
        body = {
            "generation": manifest.generation,
            "signature": manifest.signature,
            "files": dict(sorted(self.digests.items())),
            "etags": dict(sorted(self.etags.items())),
        }
        self._put_private(MANIFEST, body)
        for journal in self.journals:
            self._call(
                lambda j=journal: self.client.delete_object(Bucket=self.bucket, Key=self.key(j))
            )

    def close(self) -> None:
        pass

    def _list(self) -> dict[str, str]:
        """Every object under the prefix with its ETag. A listing gives 1,000 keys and their
        ETags a request (10 requests for 10,000 objects, where a HeadObject each would be
        10,000; metadata of our own would need those HeadObjects). The ETag is compared with
        the one the bucket gave our put, never with an MD5 we compute: an encrypted (SSE-KMS)
        or multipart object's ETag is not its MD5, but it changes when the object is replaced."""

        def pages() -> dict[str, str]:
            listed = {}
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
                for entry in page.get("Contents", ()):
                    listed[entry["Key"][len(self.prefix) :]] = entry["ETag"]
            return listed

        return self._call(pages)

    def _written_since(self, journal: str) -> set[str]:
        """The paths a killed build claimed that hold another object now than when it claimed
        them: it put them (or a later killed build did). One it never replaced is not ours."""
        before = self._read_json(journal).get("before")
        if not isinstance(before, dict):
            return set()
        return {
            path
            for path, etag in before.items()
            if is_site_path(path) and path in self.listed and self.listed[path] != etag
        }

    def _read_json(self, path: str) -> dict[str, Any]:
        try:
            answer = self._call(
                lambda: self.client.get_object(Bucket=self.bucket, Key=self.key(path))
            )
            data = json.loads(answer["Body"].read())
        except (_Missing, ValueError):  # gone since the listing, or not ours to read
            return {}
        return data if isinstance(data, dict) else {}

    def _put_private(self, path: str, body: dict[str, Any]) -> None:
        """The build's own records: never served (README: deny `.feedsvc-*` at the CDN)."""
        self._call(
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(path),
                Body=json.dumps(body, separators=(",", ":")).encode(),
                ContentType="application/json",
                CacheControl="private, no-store",
            )
        )

    def _call(self, action: Any) -> Any:
        """Run one S3 call; its failure is one line naming the bucket."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            EndpointConnectionError,
            NoCredentialsError,
        )

        try:
            return action()
        except NoCredentialsError:
            raise BuildError(
                "no credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)",
                self.url,
            ) from None
        except EndpointConnectionError as error:
            raise BuildError(
                f"cannot reach the endpoint {error.kwargs.get('endpoint_url')}", self.url
            ) from None
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code in ("NoSuchKey",):
                raise _Missing from None
            if code in ("NoSuchBucket",) or (
                code == "404" and error.operation_name == "HeadBucket"
            ):
                raise BuildError(f"no such bucket: {self.bucket}", self.url) from None
            if code in ("AccessDenied", "403") or status == 403:
                raise BuildError(f"access denied ({error.operation_name})", self.url) from None
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch"):
                raise BuildError(f"credentials refused ({code})", self.url) from None
            message = error.response.get("Error", {}).get("Message") or code
            raise BuildError(f"{error.operation_name}: {message}", self.url) from None
        except BotoCoreError as error:  # timeouts, a bad endpoint URL...
            raise BuildError(str(error), self.url) from None


def _result(pending: tuple[str, Future[Any]]) -> tuple[str, Any]:
    path, future = pending
    return path, future.result()


def _strings(mapping: object) -> dict[str, str]:
    """The str -> str entries of a JSON object read back (a hand-edited manifest: the rest)."""
    if not isinstance(mapping, dict):
        return {}
    return {k: v for k, v in mapping.items() if isinstance(k, str) and isinstance(v, str)}


def _journal_number(path: str) -> int:
    """N for a journal `.feedsvc-build.journal.N`, else 0."""
    number = path.removeprefix(JOURNAL)
    return int(number) if path.startswith(JOURNAL) and number.isdecimal() else 0


class _Missing(Exception):
    """An object that is not there (the manifest before a first build)."""
