"""Putting files into the blob store and recording them as `blob` rows.

Bytes go to the store first, outside any transaction (content-addressed, so a retry or a
crash between the two steps leaves only an orphan that `gc` can remove); the row is added
inside the caller's transaction.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from .blobs import BlobStore, BlobStoreError, blob_key
from .errors import BlobUnavailable
from .models import Blob

DEFAULT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    content_type: str
    md5: str | None = None


def put_path(
    blobs: BlobStore,
    path: Path,
    *,
    sha256: str,
    size: int,
    content_type: str,
    md5: str | None = None,
) -> StoredBlob:
    """Store a file whose digest the caller computed while receiving it."""
    key = blob_key(sha256)
    try:
        if not blobs.exists(key):
            blobs.put_file(key, path, content_type)
    except BlobStoreError as error:
        raise BlobUnavailable(f"The file store is unavailable: {error}") from error
    return StoredBlob(sha256, size, content_type, md5)


def put_data(blobs: BlobStore, data: bytes, content_type: str = DEFAULT_TYPE) -> StoredBlob:
    sha256 = hashlib.sha256(data).hexdigest()
    key = blob_key(sha256)
    try:
        if not blobs.exists(key):
            blobs.put_bytes(key, data, content_type)
    except BlobStoreError as error:
        raise BlobUnavailable(f"The file store is unavailable: {error}") from error
    return StoredBlob(sha256, len(data), content_type, hashlib.md5(data).hexdigest())


def record(tx: Session, stored: StoredBlob) -> None:
    """Insert the blob row unless it exists (two uploads of one photo race harmlessly)."""
    values = {
        "sha256": stored.sha256,
        "size": stored.size,
        "md5": stored.md5,
        "content_type": stored.content_type,
    }
    dialect = tx.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    tx.execute(insert(Blob).values(**values).on_conflict_do_nothing(index_elements=["sha256"]))
    if stored.md5:
        blob = tx.get(Blob, stored.sha256)
        if blob is not None and blob.md5 is None:
            blob.md5 = stored.md5


def guess_type(name: str, fallback: str | None = None) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    if guessed:
        return guessed
    if fallback and "/" in fallback and len(fallback) < 128 and fallback.isascii():
        return fallback.split(";")[0].strip().lower()
    return DEFAULT_TYPE
