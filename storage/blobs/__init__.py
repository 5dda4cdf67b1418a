"""Content-addressed object store for attachments, form media and exports.

Two implementations share one interface (:class:`BlobStore`, in ``base.py``):

* :class:`LocalBlobStore` (``local.py``) - a folder on disk; writes are atomic (temporary
  file in the same folder, ``fsync``, ``os.replace``, ``fsync`` of the folder).
* :class:`S3BlobStore` (``s3.py``) - any S3-compatible server (MinIO, SeaweedFS, AWS)
  through the MinIO SDK; uploads and downloads are streamed.

Callers import every name from here (``from storage.blobs import ...``).

Keys are relative, ``/``-separated paths such as the one returned by
:func:`blob_key`.  Errors of the store itself (unreachable server, disk
failure, access denied) are raised as :class:`BlobStoreError`, which the HTTP
layer maps to ``503``; a missing object is a :class:`KeyError` for the read
operations.
"""

from __future__ import annotations

from pathlib import Path

from .base import BlobInfo, BlobStore, BlobStoreError, blob_key
from .local import LocalBlobStore
from .s3 import S3BlobStore

__all__ = [
    "BlobInfo",
    "BlobStore",
    "BlobStoreError",
    "LocalBlobStore",
    "S3BlobStore",
    "blob_key",
    "open_blob_store",
]


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
