"""Serving a stored file: one way for form media, XLSForms and submission attachments."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from litestar import Request, Response
from litestar.response import Redirect, Stream

from storage.blobs import BlobStore, blob_key
from storage.models import Blob


def file_response(
    request: Request[Any, Any, Any], blobs: BlobStore, blob: Blob, filename: str
) -> Response[Any] | Stream | Redirect:
    """A 307 to a presigned URL when the store is S3, else the bytes streamed from the store,
    with the file's type, a safe Content-Disposition and an ETag (md5 if known, else sha256)."""
    etag = f'"{blob.md5 or blob.sha256}"'
    if request.headers.get("if-none-match", "") == etag:
        return Response(b"", status_code=304, headers={"ETag": etag})
    url = blobs.presigned_get_url(
        blob_key(blob.sha256), filename=filename, content_type=blob.content_type
    )
    if url:
        return Redirect(url, status_code=307)
    return Stream(
        blobs.iter_chunks(blob_key(blob.sha256)),
        media_type=blob.content_type,
        headers={
            "ETag": etag,
            "Content-Length": str(blob.size),
            "Content-Disposition": content_disposition(filename),
        },
    )


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the UTF-8 name (RFC 6266); a hostile
    name can neither break the header nor point at a path."""
    plain = (
        "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\/;' else "_" for ch in filename)
        or "file"
    )
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(filename, safe='')}"
