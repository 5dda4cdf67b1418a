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
from sqlmodel import Session, col, select

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
    #: The object was in the store already and no committed row named it: it may be an old
    #: orphan `jebol gc` is removing right now, so the caller checks again after its commit
    #: (storage/gc.py). An object written now, or one a row names, needs no second look.
    check_after_commit: bool = False


def put_path(
    blobs: BlobStore,
    path: Path,
    *,
    sha256: str,
    size: int,
    content_type: str,
    md5: str | None = None,
    recorded: bool = False,
) -> StoredBlob:
    """Store a file whose digest the caller computed while receiving it. `recorded`: a
    committed `blob` row names the digest (`recorded_digests`), so the object is there for good
    (rows are never deleted and gc removes only objects no row names): the store is not asked
    at all. Otherwise one existence check, and the upload when it is absent."""
    key = blob_key(sha256)
    if recorded:
        return StoredBlob(sha256, size, content_type, md5)
    try:
        found = blobs.exists(key)
        if not found:
            blobs.put_file(key, path, content_type)
    except BlobStoreError as error:
        raise BlobUnavailable(f"The file store is unavailable: {error}") from error
    return StoredBlob(sha256, size, content_type, md5, check_after_commit=found)


def recorded_digests(tx: Session, digests: set[str]) -> set[str]:
    """Those of `digests` a committed `blob` row names."""
    if not digests:
        return set()
    return set(tx.exec(select(Blob.sha256).where(col(Blob.sha256).in_(sorted(digests)))).all())


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
