"""Content-addressed object store for attachments, form media and exports.

Two implementations share one interface (:class:`BlobStore`):

* :class:`LocalBlobStore` - a folder on disk; writes are atomic (temporary
  file in the same folder, ``fsync``, ``os.replace``, ``fsync`` of the folder).
* :class:`S3BlobStore` - any S3-compatible server (MinIO, SeaweedFS, AWS)
  through the MinIO SDK; uploads and downloads are streamed.

Keys are relative, ``/``-separated paths such as the one returned by
:func:`blob_key`.  Errors of the store itself (unreachable server, disk
failure, access denied) are raised as :class:`BlobStoreError`, which the HTTP
layer maps to ``503``; a missing object is a :class:`KeyError` for the read
operations.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable
from urllib.parse import quote, urlsplit

__all__ = [
    "BlobInfo",
    "BlobStore",
    "BlobStoreError",
    "LocalBlobStore",
    "S3BlobStore",
    "blob_key",
    "open_blob_store",
]

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
_COPY_BUFFER = 1024 * 1024
_TMP_PREFIX = ".tmp-"


def blob_key(sha256: str) -> str:
    """Key of a blob with the given SHA-256 (64 lowercase hex digits)."""
    if not isinstance(sha256, str) or not _SHA256_RE.fullmatch(sha256):
        raise ValueError(f"not a lowercase hex SHA-256 digest: {sha256!r}")
    return f"blobs/sha256/{sha256[0:2]}/{sha256[2:4]}/{sha256}"


class BlobStoreError(Exception):
    """The object store is unreachable or failed (HTTP 503 upstream)."""


@dataclass(frozen=True)
class BlobInfo:
    """One stored object as a listing sees it (`jebol gc` needs its age)."""

    key: str
    size: int
    modified: datetime  # UTC


@runtime_checkable
class BlobStore(Protocol):
    def ensure_ready(self) -> None: ...

    def check(self) -> None: ...

    def put_file(
        self, key: str, path: Path, content_type: str = "application/octet-stream"
    ) -> None: ...

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None: ...

    def exists(self, key: str) -> bool: ...

    def size(self, key: str) -> int | None: ...

    def iter_chunks(self, key: str, chunk_size: int = 256 * 1024) -> Iterator[bytes]: ...

    def read_bytes(self, key: str) -> bytes: ...

    def delete(self, key: str) -> None: ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]: ...

    def iter_info(self, prefix: str = "") -> Iterator[BlobInfo]: ...

    def presigned_get_url(
        self,
        key: str,
        filename: str | None = None,
        content_type: str | None = None,
        expires_seconds: int = 300,
    ) -> str | None: ...


def _check_key(key: str) -> str:
    """Validate a key: relative, '/'-separated, no '.'/'..'/empty segments."""
    if not isinstance(key, str) or not key:
        raise ValueError("blob key must be a non-empty string")
    if "\x00" in key or "\\" in key:
        raise ValueError(f"invalid character in blob key: {key!r}")
    if key.startswith("/"):
        raise ValueError(f"blob key must be relative: {key!r}")
    for part in key.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"invalid segment in blob key: {key!r}")
        if part.startswith(_TMP_PREFIX):
            raise ValueError(f"reserved name in blob key: {key!r}")
    return key


def _check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str):
        raise ValueError("prefix must be a string")
    if prefix and ("\x00" in prefix or "\\" in prefix or prefix.startswith("/")):
        raise ValueError(f"invalid prefix: {prefix!r}")
    if ".." in prefix.split("/"):
        raise ValueError(f"invalid prefix: {prefix!r}")
    return prefix


def _content_disposition(filename: str) -> str:
    """``attachment`` header value with an ASCII fallback and RFC 5987 name."""
    fallback = (
        "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in filename) or "download"
    )
    value = f'attachment; filename="{fallback}"'
    if fallback != filename:
        value += f"; filename*=UTF-8''{quote(filename, safe='')}"
    return value


# --------------------------------------------------------------------------
# Local folder
# --------------------------------------------------------------------------


def _current_umask() -> int:
    """The process umask, read without changing it (Linux), else 0o022."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


class LocalBlobStore:
    """Blobs as files under ``root`` (key ``a/b/c`` -> ``root/a/b/c``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # mkstemp makes 0600 files; give blobs the mode a plain open() would.
        self._file_mode = 0o666 & ~_current_umask()

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def ensure_ready(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlobStoreError(f"cannot create blob folder {self.root}: {exc}") from exc

    def check(self) -> None:
        """Readiness probe, cheap: the folder is there and writable (a read-only or missing
        mount fails; nothing is written)."""
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise BlobStoreError(f"blob folder {self.root} is missing or not writable")

    def _write_atomic(self, key: str, write) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=_TMP_PREFIX)
        except OSError as exc:
            raise BlobStoreError(f"cannot write blob {key}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(fd, self._file_mode)
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            if isinstance(exc, OSError):
                raise BlobStoreError(f"cannot write blob {key}: {exc}") from exc
            raise
        try:
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise BlobStoreError(f"cannot sync folder of blob {key}: {exc}") from exc

    def put_file(
        self, key: str, path: Path, content_type: str = "application/octet-stream"
    ) -> None:
        target = self._path(key)  # validate before touching anything
        # A missing source file is the caller's error: let FileNotFoundError out.
        with open(path, "rb") as src:
            if self._link(src, path, target):
                return
            self._write_atomic(key, lambda out: shutil.copyfileobj(src, out, _COPY_BUFFER))

    def _link(self, src, path: Path, target: Path) -> bool:
        """Adopt an upload on the same disk by a hard link instead of a second copy: the file
        is synced, linked under a temporary name beside its target, then renamed into place.
        False when linking is not possible (another file system), so the caller copies."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.fsync(src.fileno())
            tmp_name = target.parent / f"{_TMP_PREFIX}{os.urandom(8).hex()}"
            os.link(path, tmp_name)
        except OSError:
            return False
        try:
            os.chmod(tmp_name, self._file_mode)
            os.replace(tmp_name, target)
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise BlobStoreError(f"cannot store blob {target.name}: {exc}") from exc
        return True

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self._write_atomic(key, lambda out: out.write(data))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise BlobStoreError(f"cannot stat blob {key}: {exc}") from exc
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def _open(self, key: str):
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyError(key) from None
        except OSError as exc:
            raise BlobStoreError(f"cannot read blob {key}: {exc}") from exc

    def iter_chunks(self, key: str, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        fh = self._open(key)  # KeyError now, not at the first next()
        return self._gen_chunks(fh, key, chunk_size)

    @staticmethod
    def _gen_chunks(fh, key: str, chunk_size: int) -> Iterator[bytes]:
        with fh:
            while True:
                try:
                    chunk = fh.read(chunk_size)
                except OSError as exc:
                    raise BlobStoreError(f"cannot read blob {key}: {exc}") from exc
                if not chunk:
                    return
                yield chunk

    def read_bytes(self, key: str) -> bytes:
        with self._open(key) as fh:
            try:
                return fh.read()
            except OSError as exc:
                raise BlobStoreError(f"cannot read blob {key}: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except NotADirectoryError:
            pass
        except OSError as exc:
            raise BlobStoreError(f"cannot delete blob {key}: {exc}") from exc

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix`` (a string prefix, as in S3); order unspecified."""
        _check_prefix(prefix)
        # Walk only the deepest folder the prefix names completely.
        base_rel = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*base_rel.split("/")) if base_rel else self.root
        if not start.is_dir():
            return
        root_str = str(self.root)
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, root_str)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            # Descend only into folders that can hold keys with this prefix.
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(_TMP_PREFIX)
                and ((rel_dir + d + "/").startswith(prefix) or prefix.startswith(rel_dir + d + "/"))
            )
            for name in sorted(filenames):
                if name.startswith(_TMP_PREFIX):
                    continue
                key = rel_dir + name
                if key.startswith(prefix):
                    yield key

    def iter_info(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Like :meth:`iter_keys`, with each file's size and modification time."""
        for key in self.iter_keys(prefix):
            try:
                st = self._path(key).stat()
            except FileNotFoundError:  # deleted since it was listed
                continue
            except OSError as exc:
                raise BlobStoreError(f"cannot stat blob {key}: {exc}") from exc
            yield BlobInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def presigned_get_url(
        self,
        key: str,
        filename: str | None = None,
        content_type: str | None = None,
        expires_seconds: int = 300,
    ) -> str | None:
        return None


# --------------------------------------------------------------------------
# S3 (MinIO SDK)
# --------------------------------------------------------------------------


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
        _check_key(key)
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

        _check_key(key)
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
        _check_key(key)
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
        _check_key(key)
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
        _check_key(key)
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
        _check_prefix(prefix)
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
        _check_key(key)
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


def open_blob_store(
    *,
    blob_dir: Path | None,
    s3_endpoint: str | None,
    s3_access_key: str | None,
    s3_secret_key: str | None,
    s3_bucket: str = "jebol",
    s3_secure: bool = False,
    s3_connect_timeout: float = 5.0,
    s3_read_timeout: float = 10.0,
    s3_retries: int = 1,
) -> BlobStore:
    """S3 store when an endpoint is configured, else a local folder."""
    if s3_endpoint:
        if not s3_access_key or not s3_secret_key:
            raise ValueError("S3 endpoint configured without access key / secret key")
        return S3BlobStore(
            s3_endpoint,
            s3_access_key,
            s3_secret_key,
            bucket=s3_bucket or "jebol",
            secure=s3_secure,
            connect_timeout=s3_connect_timeout,
            read_timeout=s3_read_timeout,
            retries=s3_retries,
        )
    if blob_dir is None:
        raise ValueError("neither a blob folder nor an S3 endpoint is configured")
    return LocalBlobStore(Path(blob_dir))
