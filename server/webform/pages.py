"""The officer's web form: pages under /f/{key}/ (the key is the app user's token), the form's
XML and media for the renderer, the service worker at /f/sw.js and the browser files.

Everything a page needs arrives with the page (a JSON island), so a page the service worker
cached works offline as it did online. Submissions go through the browser's outbox to the
OpenRosa submission route of the same key (server/openrosa.py): nothing is submitted here.
The key is part of every URL; nothing here logs it, and pages send no Referer.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import anyio
import segno
from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import Request, Response, get
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Stream

from storage import app_users, entity_lists, roles, users
from storage import forms as form_store
from storage.blobs import blob_key
from storage.db import Database
from storage.errors import Forbidden, NotFound
from storage.models import FormVersion
from storage.tokens import is_well_formed

from ..deps import DB, Blobs, Caller, Config, PathText
from ..guards import PUBLIC, identity_of, keep_identity
from ..openrosa import entity_list_response
from ..settings import Settings
from ..ui import i18n
from ..ui.i18n import gettext
from ..urls import web_form_url
from . import assets, renderer

TEMPLATES = Path(__file__).parent / "templates"
OWN_STATIC = Path(__file__).parent / "static"
WEB_FORMS_TILES = "https://tile.openstreetmap.org"  # the map tiles @getodk/web-forms loads
PAGE_CACHE = "no-cache"  # always revalidated online; the service worker answers offline
# Our own pages and files (server/isolation.py); form.xml and media are the form author's and
# keep the sandbox every foreign response gets.
OWN = {"own": True}
PAGE = {**OWN, "shown_as": "page"}  # its errors are a page of ours too (`key_problem`)

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(_=i18n.gettext, lang=lambda: i18n.current.get())


class KeyProblem(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def texts() -> dict[str, str]:
    """The interface strings the scripts show, in the page's language."""
    messages = {
        "offlineReady": gettext("Available offline"),
        "offlineSaving": gettext("Saving for offline use…"),
        "offlineFailed": gettext("Not yet available offline"),
        "offlineUnsupported": gettext("This browser cannot keep forms offline (it needs HTTPS)."),
        "youAreOffline": gettext("You are offline: finished forms wait on this phone."),
        "queued": gettext("Saved on this phone; it is sent when there is a connection."),
        "statusPending": gettext("Waiting to be sent"),
        "statusSending": gettext("Sending"),
        "statusError": gettext("Failed"),
        "statusSent": gettext("Sent"),
        "statusRetry": gettext("Next try at %(time)s"),
        "duplicate": gettext("Already on the server"),
        "sendNow": gettext("Send now"),
        "downloadZip": gettext("Download ZIP"),
        "remove": gettext("Delete"),
        "confirmRemove": gettext("Delete this record from the phone? It was not sent."),
        "nothingQueued": gettext("Nothing waiting to be sent."),
        "draftSaved": gettext("Draft saved on this phone."),
        "draftOpened": gettext("Draft reopened."),
        "draftMissing": gettext("This draft is no longer on the phone."),
        "draftOldVersion": gettext("This draft was started on an older version of the form."),
        "noDrafts": gettext("No drafts."),
        "storageFailed": gettext("Could not save on this phone: %(error)s"),
        "formLoadFailed": gettext("The form could not be loaded; open the list online first."),
        "networkError": gettext("No connection to the server"),
        "serverError": gettext("Server error %(status)s"),
        "refused": gettext("The server refused this record (%(status)s)"),
        "attempts": gettext("Attempts: %(n)s"),
        "savedAt": gettext("Saved %(time)s"),
        # The form page's own widgets (widgets.js, dates.js)
        "signDraw": gettext("Draw the signature"),
        "signAgain": gettext("Sign again"),
        "signHint": gettext("Sign with a finger inside the box."),
        "signRestart": gettext("Start over"),
        "signUse": gettext("Use this signature"),
        "signEmpty": gettext("Nothing is drawn yet."),
        "cancel": gettext("Cancel"),
        "chooseFile": gettext("Choose file"),
        "replaceFile": gettext("Replace file"),
        "removeFile": gettext("Remove file"),
        "noFile": gettext("No file chosen."),
        "fileTooBig": gettext("%(name)s is %(size)s: larger than the %(max)s a record can carry."),
        "fileWrongType": gettext("%(name)s is not a file this question takes (%(accept)s)."),
        "datePlaceholder": gettext("dd/mm/yyyy"),
        "dateNotUnderstood": gettext(
            "“%(text)s” is not a date; write day/month/year, e.g. %(example)s. The answer was not changed."
        ),
    }
    return messages


def _key_identity(db: Database, key: str) -> users.Identity:
    if not is_well_formed(key):
        raise KeyProblem(404, gettext("This link is not valid; ask your supervisor for a new one."))
    revoked = gettext("This link was revoked; ask your supervisor for a new one.")
    try:
        identity = app_users.identity_for_key(db, key)
    except Forbidden:
        raise KeyProblem(403, revoked) from None
    if identity.project_id is None:
        raise KeyProblem(403, revoked)
    return identity


def _form_version(db: Database, officer: users.Identity, xml_form_id: str) -> FormVersion:
    """The form's current version, if it is open and assigned to the key's app user."""
    rows = form_store.list_forms(
        db, officer.project_id or 0, for_phones=True, xml_form_id=xml_form_id
    )
    if not rows:
        raise KeyProblem(404, gettext("This form is not open for filling."))
    form, version = rows[0]
    if form.id not in (roles.assigned_form_ids(db, officer) or ()):
        # Not assigned to this app user: 403, with the message a phone already knows.
        raise KeyProblem(403, gettext("This form is not open for filling."))
    return version


Officer = Caller  # the app user whose key is in the path (`officer`, found by `key_holder`)


async def key_holder(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The guard of every /f/{key}/… route: the key in the path names a live app user, else a
    KeyProblem (rendered by `key_problem`). The identity is kept for the `officer` dependency."""
    db = connection.app.state.services.db
    identity = await anyio.to_thread.run_sync(_key_identity, db, connection.path_params["key"])
    keep_identity(connection, identity)


def officer(request: Request[Any, Any, Any]) -> users.Identity:
    """Dependency: the app user the guard found."""
    return identity_of(request, keys=True)


def key_problem(request: Request[Any, Any, Any], problem: KeyProblem) -> Response[Any]:
    """A bad or revoked link, or a form not open: a page of ours for the pages, the message as
    JSON for the manifest, as text for what scripts fetch."""
    handler = request.scope.get("route_handler")
    shown_as = handler.opt.get("shown_as") if handler is not None else None
    if shown_as == "page":
        return _problem(problem, request.app.state.settings)
    if shown_as == "json":
        return Response({"message": problem.message}, status_code=problem.status)
    return Response(problem.message, status_code=problem.status, media_type="text/plain")


def _q(text: str) -> str:
    return quote(text, safe="")


def _urls(key: str, project_id: int) -> dict[str, str]:
    base = f"/f/{key}"
    return {
        "list": f"{base}/",
        "queue": f"{base}/-/antrian",
        "manifest": f"{base}/-/manifest.webmanifest",
        "submission": f"/v1/key/{key}/projects/{project_id}/submission",
    }


def _form_entry(
    db: Database, key: str, project_id: int, version: FormVersion, xml_form_id: str
) -> dict[str, Any]:
    """What a page needs of a form. Media URLs carry their content's hash (an entity list's
    changes with every entity event), so a new list is a new URL the phone fetches."""
    base = f"/f/{key}/{_q(xml_form_id)}"
    media = {}
    for m, listed in entity_lists.media_of(db, version, project_id):
        digest = listed.hash if listed is not None else m.blob.md5 if m.blob is not None else None
        if digest is not None:
            media[m.attachment.name] = f"{base}/media/{_q(m.attachment.name)}?v={digest}"
    return {
        "id": xml_form_id,
        "title": version.title or xml_form_id,
        "version": version.version,
        "hash": version.md5,
        "page": base,
        "xml": f"{base}/form.xml?v={version.md5}",
        "media": media,
    }


def _csp(import_map: str | None, settings: Settings) -> str:
    tiles = f" {WEB_FORMS_TILES}" if settings.map_tiles else ""
    script = "'self' 'wasm-unsafe-eval'"
    if import_map is not None:
        digest = base64.b64encode(hashlib.sha256(import_map.encode()).digest()).decode()
        script += f" 'sha256-{digest}'"
    return (
        "default-src 'self'; "
        f"script-src {script}; "
        "style-src 'self' 'unsafe-inline'; "
        f"img-src 'self' data: blob:{tiles}; "
        "font-src 'self' data:; worker-src 'self' blob: data:; "
        f"connect-src 'self'{tiles}; "
        "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
        "object-src 'none'"
    )


def _page(
    template: str,
    settings: Settings,
    status: int = 200,
    *,
    import_map: str | None = None,
    **context: Any,
) -> Response[Any]:
    built = assets.current()
    html = _env.get_template(template).render(assets=built, import_map=import_map, **context)
    return Response(
        html,
        status_code=status,
        media_type="text/html",
        headers={
            "Cache-Control": PAGE_CACHE,
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": _csp(import_map, settings),
        },
    )


def _problem(problem: KeyProblem, settings: Settings) -> Response[Any]:
    return _page("wf_error.html", settings, problem.status, message=problem.message)


def _island(data: dict[str, Any]) -> str:
    r"""JSON for a <script type="application/json"> island with no `<` at all (as `\u003c`):
    a form title or name holding `</script>` cannot end the element, nor `<!--<script>` put
    the HTML parser in the state where the island's own `</script>` no longer ends it."""
    return json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")


def _import_map(built: assets.Assets) -> str:
    return json.dumps(
        {
            "imports": {
                "vue": built.url("vue/vue.esm-browser.prod.js"),
                "idb-keyval": built.url("idb-keyval/index.js"),
            }
        }
    )


def _common(key: str, project_id: int, settings: Settings) -> dict[str, Any]:
    built = assets.current()
    return {
        "key": key,
        "projectId": project_id,
        "urls": _urls(key, project_id),
        "maxBytes": settings.max_submission_bytes,
        "build": built.build,
        "ready": built.ready,
        "text": texts(),
    }


# ---- pages -------------------------------------------------------------------------------------


@get("/{key:str}", guards=[key_holder], sync_to_thread=True, opt=PAGE)
def form_list_page(key: PathText, db: DB, settings: Config, officer: Officer) -> Response[Any]:
    project_id = officer.project_id or 0
    assigned = roles.assigned_form_ids(db, officer) or frozenset()
    forms = [
        _form_entry(db, key, project_id, version, form.xml_form_id)
        for form, version in form_store.list_forms(db, project_id, for_phones=True)
        if form.id in assigned
    ]
    config = {**_common(key, project_id, settings), "page": "list", "forms": forms}
    built = assets.current()
    return _page(
        "wf_list.html",
        settings,
        import_map=_import_map(built),
        script="list.js",
        forms=forms,
        urls=config["urls"],
        officer=officer.display_name,
        config=_island(config),
    )


@get("/{key:str}/-/antrian", guards=[key_holder], sync_to_thread=True, opt=PAGE)
def queue_page(key: PathText, settings: Config, officer: Officer) -> Response[Any]:
    project_id = officer.project_id or 0
    config = {**_common(key, project_id, settings), "page": "queue"}
    built = assets.current()
    return _page(
        "wf_queue.html",
        settings,
        import_map=_import_map(built),
        script="queue.js",
        urls=config["urls"],
        config=_island(config),
    )


@get("/{key:str}/{xml_form_id:str}", guards=[key_holder], sync_to_thread=True, opt=PAGE)
def form_page(
    key: PathText, xml_form_id: PathText, db: DB, settings: Config, officer: Officer
) -> Response[Any]:
    project_id = officer.project_id or 0
    version = _form_version(db, officer, xml_form_id)
    entry = _form_entry(db, key, project_id, version, xml_form_id)
    config = {
        **_common(key, project_id, settings),
        "page": "form",
        "form": entry,
        "renderer": renderer.config(),
    }
    built = assets.current()
    return _page(
        "wf_form.html",
        settings,
        import_map=_import_map(built),
        script="form.js",
        form=entry,
        urls=config["urls"],
        config=_island(config),
    )


@get(
    "/{key:str}/-/manifest.webmanifest",
    guards=[key_holder],
    sync_to_thread=True,
    opt={**OWN, "shown_as": "json"},
)
def web_manifest(key: PathText) -> Response[Any]:
    built = assets.current()
    icons = [
        {"src": built.url("app/icon-192.png"), "sizes": "192x192", "type": "image/png"},
        {"src": built.url("app/icon-512.png"), "sizes": "512x512", "type": "image/png"},
        {
            "src": built.url("app/icon-maskable-512.png"),
            "sizes": "512x512",
            "type": "image/png",
            "purpose": "maskable",
        },
    ]
    body = {
        "name": "JEBOL SIPERA",
        "short_name": "JEBOL",
        "description": gettext("Fill the visit forms, online or offline."),
        "lang": i18n.current.get(),
        "start_url": f"/f/{key}/",
        "scope": f"/f/{key}/",
        "id": f"/f/{key}/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#ffffff",
        "theme_color": "#0b5d3b",
        "icons": icons,
    }
    return Response(
        json.dumps(body, ensure_ascii=False),
        media_type="application/manifest+json",
        headers={"Cache-Control": PAGE_CACHE},
    )


@get("/{key:str}/-/qr.svg", guards=[key_holder], sync_to_thread=True, opt=OWN)
def web_form_qr(key: PathText, settings: Config) -> Response[Any]:
    """The web-form link as a QR code, for a supervisor to show an officer's phone."""
    out = io.BytesIO()
    segno.make(web_form_url(settings.public_url, key), micro=False).save(
        out, kind="svg", scale=6, border=2, xmldecl=False
    )
    return Response(
        out.getvalue(),
        media_type="image/svg+xml",
        headers={"Cache-Control": "private, no-cache", "Referrer-Policy": "no-referrer"},
    )


# ---- what the renderer fetches -------------------------------------------------------------------


@get("/{key:str}/{xml_form_id:str}/form.xml", guards=[key_holder], sync_to_thread=True)
def form_xml(key: PathText, xml_form_id: PathText, db: DB, officer: Officer) -> Response[Any]:
    """The current version's XForm (the `v` query, its md5, only names the version in caches)."""
    version = _form_version(db, officer, xml_form_id)
    return Response(
        version.xml,
        media_type="text/xml",
        headers={"ETag": f'"{version.md5}"', "Cache-Control": PAGE_CACHE},
    )


@get("/{key:str}/{xml_form_id:str}/media/{name:str}", guards=[key_holder], sync_to_thread=True)
def form_media(
    request: Request[Any, Any, Any],
    key: PathText,
    xml_form_id: PathText,
    name: PathText,
    db: DB,
    blobs: Blobs,
    officer: Officer,
) -> Response[Any] | Stream:
    """A form media file, always through this server (never a redirect to the object store:
    the service worker caches it, and the store's origin would need CORS); an entity list's
    CSV as phones get it (server/openrosa.py)."""
    version = _form_version(db, officer, xml_form_id)
    listed = entity_lists.list_file(db, version, officer.project_id or 0, name)
    if listed is not None:
        return entity_list_response(request, db, listed, {"Cache-Control": PAGE_CACHE})
    try:
        media = form_store.get_media(db, version, name)
    except NotFound:
        return Response("not found", status_code=404, media_type="text/plain")
    blob = media.blob
    assert blob is not None
    return Stream(
        blobs.iter_chunks(blob_key(blob.sha256)),
        media_type=blob.content_type,
        headers={
            "ETag": f'"{blob.md5 or blob.sha256}"',
            "Content-Length": str(blob.size),
            "Cache-Control": PAGE_CACHE,
        },
    )


# ---- the service worker and the browser files ---------------------------------------------------


@get("/sw.js", sync_to_thread=False, opt={**OWN, **PUBLIC})
def service_worker() -> Response[Any]:
    """The service worker, scope /f/: the shell list and build digest are written in front of
    server/webform/static/sw.js. Never cached by the browser (it checks for updates)."""
    built = assets.current()
    prelude = (
        f"const BUILD = {json.dumps(built.build)};\n"
        f"const SHELL = {json.dumps(built.precache() if built.ready else [])};\n"
    )
    body = prelude + (OWN_STATIC / "sw.js").read_text(encoding="utf-8")
    return Response(
        body,
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/f/"},
    )


@get(
    "/static/webform/{build:str}/{name:path}",
    sync_to_thread=True,
    include_in_schema=False,
    opt={**OWN, **PUBLIC},
)
def static_file(request: Request[Any, Any, Any], build: PathText, name: PathText) -> Response[Any]:
    built = assets.current()
    asset = built.get(name.lstrip("/"))
    if asset is None:
        return Response("not found", status_code=404, media_type="text/plain")
    # The digest in the URL makes it immutable; an old digest still gets the current file,
    # but only briefly cached.
    cache = "public, max-age=31536000, immutable" if build == built.build else "no-cache"
    headers = {"Cache-Control": cache, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if request.headers.get("if-none-match") == asset.etag:
        return Response(b"", status_code=304, headers=headers)
    accepts = request.headers.get("accept-encoding", "")
    if asset.gzipped is not None and "gzip" in accepts:
        return Response(
            asset.gzipped,
            media_type=asset.media_type,
            headers={**headers, "Content-Encoding": "gzip"},
        )
    return Response(asset.body, media_type=asset.media_type, headers=headers)


PAGES = [
    service_worker,
    form_list_page,
    queue_page,
    web_manifest,
    web_form_qr,
    form_page,
    form_xml,
    form_media,
]
