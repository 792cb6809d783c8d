"""The static build's S3 destination (`feedsvc build s3://BUCKET/PREFIX`): every resource an
object with its Content-Type and Cache-Control, put only when its bytes or headers changed;
a manifest of digests under the prefix says what earlier builds wrote. boto3 is the optional
extra `feedsvc[s3]`, imported only here; endpoint, region and credentials come the standard
boto3 way (AWS_ENDPOINT_URL, AWS_PROFILE, ~/.aws/...)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .destination import MANIFEST, BuildError, BuildReport, Manifest
from .site import Rendered

SCHEME = "s3://"
PAGE_MAX_AGE = 60  # pages and lists: short, so a new item shows soon after its feed


def is_bucket_url(target: str) -> bool:
    return target.startswith(SCHEME)


class Bucket:
    """Objects under `s3://BUCKET/PREFIX/`, named by site path."""

    def __init__(self, url: str, feed_max_age: int, is_feed: Any) -> None:
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
        self.report = BuildReport()
        # Short timeouts and few retries: an unreachable endpoint is one line within seconds.
        config = Config(
            connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"}
        )
        self.client = self._call(lambda: boto3.session.Session().client("s3", config=config))
        self.old = Manifest()
        self.digests: dict[str, str] = {}

    def key(self, path: str) -> str:
        return self.prefix + path

    def read_manifest(self) -> Manifest:
        self._call(lambda: self.client.head_bucket(Bucket=self.bucket))  # names a missing bucket
        try:
            answer = self._call(
                lambda: self.client.get_object(Bucket=self.bucket, Key=self.key(MANIFEST))
            )
            data = json.loads(answer["Body"].read())
        except _Missing:  # a first build: nothing here is ours
            data = {}
        except ValueError:
            data = {}
        files = data.get("files") if isinstance(data, dict) else None
        digests = {
            path: digest
            for path, digest in (files.items() if isinstance(files, dict) else ())
            if isinstance(path, str) and isinstance(digest, str)
        }
        generation = data.get("generation") if isinstance(data, dict) else 0
        signature = data.get("signature") if isinstance(data, dict) else ""
        self.old = Manifest(
            generation if isinstance(generation, int) else 0,
            signature if isinstance(signature, str) else "",
            frozenset(digests),
            digests,
        )
        return self.old

    def existing(self) -> set[str]:
        # What the last finished build put. Objects a killed build put since are not listed:
        # the next build renders them again and puts them unconditionally.
        return set(self.old.digests)

    def cache_control(self, path: str, rendered: Rendered) -> str:
        if rendered.cache_control:  # full archive pages: immutable
            return rendered.cache_control
        age = self.feed_max_age if self.is_feed(path) else min(PAGE_MAX_AGE, self.feed_max_age)
        return f"public, max-age={age}"

    def put(self, path: str, rendered: Rendered) -> None:
        cache_control = self.cache_control(path, rendered)
        digest = hashlib.sha256(
            b"\0".join([rendered.body, rendered.content_type.encode(), cache_control.encode()])
        ).hexdigest()
        self.digests[path] = digest
        if self.old.digests.get(path) == digest:
            self.report.unchanged += 1
            return
        self._call(
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(path),
                Body=rendered.body,
                ContentType=rendered.content_type,
                CacheControl=cache_control,
            )
        )
        self.report.written += 1
        self.report.paths.append(path)

    def remove_others(self, expected: set[str]) -> None:
        for path in sorted(self.old.digests):
            if path in expected:
                self.digests.setdefault(path, self.old.digests[path])  # not rendered: as it was
            elif path not in self.digests:
                self._call(
                    lambda p=path: self.client.delete_object(Bucket=self.bucket, Key=self.key(p))
                )
                self.report.removed += 1

    def write_manifest(self, manifest: Manifest) -> None:
        body = {
            "generation": manifest.generation,
            "signature": manifest.signature,
            "files": dict(sorted(self.digests.items())),
        }
        self._call(
            lambda: self.client.put_object(
                Bucket=self.bucket,
                Key=self.key(MANIFEST),
                Body=json.dumps(body, separators=(",", ":")).encode(),
                ContentType="application/json",
                CacheControl="private, no-store",  # the build's record, not the site's
            )
        )

    def close(self) -> None:
        pass

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


class _Missing(Exception):
    """An object that is not there (the manifest before a first build)."""
