"""The blob store as one bucket of an S3-compatible server (MinIO, SeaweedFS, AWS) through the
MinIO SDK; uploads and downloads are streamed, every call bounded in time.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

from .base import BlobInfo, BlobStoreError, check_key, check_prefix


def _content_disposition(filename: str) -> str:
    """``attachment`` header value with an ASCII fallback and RFC 5987 name."""
    fallback = (
        "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    )
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


class S3BlobStore:
    """Blobs as objects of one bucket of an S3-compatible server."""

    #: Multipart part size; also bounds the memory one upload holds per part. The MinIO SDK
    #: holds about (parallel + 2) parts at once: 8 MiB keeps a 500 MB upload's growth near
    #: 32 MB (16 MiB measured +63 MB, at the 64 MB limit).
    PART_SIZE = 8 * 1024 * 1024
    #: Parts uploaded concurrently (each one is held in memory while it is sent).
    PARALLEL_UPLOADS = 2

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str = "jebol",
        secure: bool = False,
        region: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 10.0,
        retries: int = 1,
    ) -> None:
        import certifi
        import urllib3
        from minio import Minio
        from minio.helpers import check_bucket_name

        check_bucket_name(bucket)  # ValueError now rather than at first use

        # Accept "http://host:port" as well as the SDK's bare "host:port".
        if "://" in endpoint:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"invalid S3 endpoint: {endpoint!r}")
            secure = parts.scheme == "https"
            endpoint = parts.netloc
        endpoint = endpoint.rstrip("/")
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        # Bounded, so that an outage answers 503 in seconds: a stopped server refuses at once, a
        # hung one costs read_timeout per attempt, and an S3 503's Retry-After is not slept on.
        # The body of an upload is sent under connect_timeout per write (urllib3), so keep it
        # above a healthy server's longest stall.
        self.connect_timeout, self.read_timeout, self.retries = (
            connect_timeout,
            read_timeout,
            retries,
        )
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            maxsize=10,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
            retries=urllib3.Retry(
                total=retries,
                backoff_factor=0.2,
                backoff_max=1.0,
                status_forcelist=[500, 502, 503, 504],
                respect_retry_after_header=False,
            ),
        )
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=http,
        )

    def __repr__(self) -> str:
        scheme = "https" if self.secure else "http"
        return f"S3BlobStore({scheme}://{self.endpoint}/{self.bucket})"

    @contextlib.contextmanager
    def _errors(self, what: str, key: str | None = None, missing_is_keyerror: bool = False):
        from minio.error import MinioException, S3Error
        from urllib3.exceptions import HTTPError

        try:
            yield
        except S3Error as exc:
            if missing_is_keyerror and key is not None and exc.code in ("NoSuchKey", "NotFound"):
                raise KeyError(key) from None
            raise BlobStoreError(f"S3 {what} failed: {exc.code}: {exc.message}") from exc
        except MinioException as exc:
            raise BlobStoreError(f"S3 {what} failed: {exc}") from exc
        except (HTTPError, OSError) as exc:
            raise BlobStoreError(f"S3 {what} failed ({self.endpoint} unreachable?): {exc}") from exc

    def check(self) -> None:
        """Readiness probe, cheap: one HEAD request on the bucket."""
        with self._errors(f"bucket check of {self.bucket}"):
            exists = self._client.bucket_exists(self.bucket)
        if not exists:
            raise BlobStoreError(f"S3 bucket {self.bucket} does not exist")

    def ensure_ready(self) -> None:
        from minio.error import S3Error

        with self._errors(f"bucket check of {self.bucket}"):
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket)
            except S3Error as exc:
                # Another process created it meanwhile.
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

    def put_file(
        self, key: str, path: Path, content_type: str = "application/octet-stream"
    ) -> None:
        check_key(key)
        # A missing source file is the caller's error: let FileNotFoundError out.
        with open(path, "rb") as fh:
            length = os.fstat(fh.fileno()).st_size
            with self._errors(f"upload of {key}", key):
                self._client.put_object(
                    self.bucket,
                    key,
                    fh,
                    length,
                    content_type=content_type,
                    part_size=self.PART_SIZE,
                    num_parallel_uploads=self.PARALLEL_UPLOADS,
                )

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        import io

        check_key(key)
        with self._errors(f"upload of {key}", key):
            self._client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                part_size=self.PART_SIZE,
                num_parallel_uploads=1,
            )

    def _stat(self, key: str):
        check_key(key)
        try:
            with self._errors(f"stat of {key}", key, missing_is_keyerror=True):
                return self._client.stat_object(self.bucket, key)
        except KeyError:
            return None

    def exists(self, key: str) -> bool:
        return self._stat(key) is not None

    def size(self, key: str) -> int | None:
        st = self._stat(key)
        return None if st is None else int(st.size)

    def _get(self, key: str):
        check_key(key)
        with self._errors(f"download of {key}", key, missing_is_keyerror=True):
            return self._client.get_object(self.bucket, key)

    def iter_chunks(self, key: str, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        resp = self._get(key)  # KeyError now, not at the first next()
        return self._gen_chunks(resp, key, chunk_size)

    def _gen_chunks(self, resp, key: str, chunk_size: int) -> Iterator[bytes]:
        try:
            with self._errors(f"download of {key}", key):
                yield from resp.stream(chunk_size)
        finally:
            # Closing before releasing discards a half-read connection instead
            # of returning it to the pool.
            resp.close()
            resp.release_conn()

    def read_bytes(self, key: str) -> bytes:
        resp = self._get(key)
        try:
            with self._errors(f"download of {key}", key):
                return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            with self._errors(f"delete of {key}", key, missing_is_keyerror=True):
                self._client.remove_object(self.bucket, key)
        except KeyError:
            pass

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix`` (lexicographic order)."""
        for info in self.iter_info(prefix):
            yield info.key

    def iter_info(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Like :meth:`iter_keys`, with each object's size and last-modified time."""
        check_prefix(prefix)
        with self._errors(f"listing of {prefix or '/'}"):
            for obj in self._client.list_objects(
                self.bucket, prefix=prefix or None, recursive=True
            ):
                if obj.is_dir or not obj.object_name or obj.object_name.endswith("/"):
                    continue
                modified = obj.last_modified or datetime.now(UTC)  # unknown: keep it
                yield BlobInfo(obj.object_name, int(obj.size or 0), modified)

    def presigned_get_url(
        self,
        key: str,
        filename: str | None = None,
        content_type: str | None = None,
        expires_seconds: int = 300,
    ) -> str | None:
        check_key(key)
        if not 1 <= expires_seconds <= 7 * 24 * 3600:
            raise ValueError("expires_seconds must be between 1 s and 7 days")
        response_headers: dict[str, str] = {}
        if filename:
            response_headers["response-content-disposition"] = _content_disposition(filename)
        if content_type:
            response_headers["response-content-type"] = content_type
        with self._errors(f"presigning of {key}", key):
            return self._client.presigned_get_object(
                self.bucket,
                key,
                expires=timedelta(seconds=expires_seconds),
                response_headers=response_headers or None,
            )
