"""The blob store's interface, shared by both backends: keys, errors, the `BlobStore` protocol.

Keys are relative, ``/``-separated paths such as the one returned by :func:`blob_key`; every
backend validates them with :func:`check_key` (and listing prefixes with :func:`check_prefix`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

_SHA256_RE = re.compile(r"[0-9a-f]{64}")
#: Names starting with this are a backend's temporary files, never keys.
TMP_PREFIX = ".tmp-"


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


def check_key(key: str) -> str:
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
        if part.startswith(TMP_PREFIX):
            raise ValueError(f"reserved name in blob key: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    if not isinstance(prefix, str):
        raise ValueError("prefix must be a string")
    if prefix and ("\x00" in prefix or "\\" in prefix or prefix.startswith("/")):
        raise ValueError(f"invalid prefix: {prefix!r}")
    if ".." in prefix.split("/"):
        raise ValueError(f"invalid prefix: {prefix!r}")
    return prefix
