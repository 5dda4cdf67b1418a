"""Nothing a phone, a form author or an upload sent ever runs in this server's origin.

The rule holds by construction, for every response, in one `before_send` hook: a response is
*foreign* unless its route declares otherwise. Foreign bodies (submission and version XML,
XForms, form media, attachments, exports, API JSON, error bodies, unknown paths) are served

- with `Content-Security-Policy: sandbox; default-src 'none'`: opened as a page they get an
  opaque origin with no script, no plugin, no form and no subresource at all;
- with `X-Content-Type-Options: nosniff`: a browser takes the declared type, never a guess;
- as `Content-Disposition: attachment` when the type is one a browser would render as a
  document (HTML, XML, SVG, PDF, anything not known to be inert), so it is saved, not opened.

Machines (ODK Collect, pyodk, the web form's `fetch`) ignore all three.

Two kinds of route opt out, each by a flag on its router or handler:
- `ui`: the supervisor UI's pages (our templates, autoescaped). They get `page_policy`: scripts
  only from this server, no inline script, no framing.
- `own`: other documents whose every byte is ours: the web form's pages (each sets its own
  CSP, as it carries a hashed import map), its service worker and manifest, /static and the
  OpenAPI docs. They get `nosniff`; a CSP only if they set one.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlparse

from litestar.types import Message, Scope

from .settings import Settings

SANDBOX = "sandbox; default-src 'none'; frame-ancestors 'none'; form-action 'none'"

# Types a browser shows as data, never as a document that could hold script.
INERT_TYPES = frozenset(
    {
        "application/json",
        "application/geo+json",
        "application/manifest+json",
        "text/plain",
        "text/csv",
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/avif",
        "application/zip",
        "application/octet-stream",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    }
)


def page_policy(settings: Settings) -> str:
    """The supervisor UI's pages: no MIME sniffing, no framing, scripts only from this server
    (the pages have no inline script). Images may also come from the map tiles' host and, on
    S3, from the object store that photos redirect to."""
    images = " ".join(filter(None, (_origin(settings.map_tiles), _s3_origin(settings))))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: blob: {images}".rstrip()
        + "; "
        "font-src 'self' data:; connect-src 'self'; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


class Isolation:
    """The `before_send` hook: adds the headers above to each response's start message."""

    def __init__(self, settings: Settings) -> None:
        self.page = [
            (b"content-security-policy", page_policy(settings).encode()),
            (b"referrer-policy", b"same-origin"),
        ]

    async def __call__(self, message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = list(message.get("headers") or ())
        kind = route_kind(scope)
        add: list[tuple[bytes, bytes]] = [(b"x-content-type-options", b"nosniff")]
        if kind == "ui":
            add += self.page
        elif kind == "foreign":  # ours wins: a foreign response cannot loosen its policy
            headers = [(n, v) for n, v in headers if n.lower() != b"content-security-policy"]
            add.append((b"content-security-policy", SANDBOX.encode()))
            if _content_type(headers) not in INERT_TYPES:
                add.append((b"content-disposition", b"attachment"))
        present = {name.lower() for name, _ in headers}
        headers += [(name, value) for name, value in add if name not in present]
        message["headers"] = headers  # type: ignore[typeddict-item]


def route_kind(scope: Scope) -> str:
    """`ui`, `own` or `foreign` (the default, also for paths no route matched)."""
    handler = scope.get("route_handler")
    opt: dict[str, Any] = getattr(handler, "opt", None) or {}
    if opt.get("ui"):
        return "ui"
    if opt.get("own"):
        return "own"
    return "foreign"


def _content_type(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


def _origin(url: str) -> str:
    """scheme://host of a URL template; a `{s}` subdomain becomes `*`."""
    parts = urlparse(url)
    return f"{parts.scheme}://{re.sub(r'{[^}]*}', '*', parts.netloc)}" if parts.netloc else ""


def _s3_origin(settings: Settings) -> str:
    endpoint = settings.s3_endpoint
    if not endpoint:
        return ""
    if "://" in endpoint:
        return _origin(endpoint)
    return f"{'https' if settings.s3_secure else 'http'}://{endpoint}"
