"""create_app(settings) -> Litestar: the one place where the parts are put together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
from litestar import Litestar, Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.static_files import create_static_files_router

from storage.blobs import BlobStore, open_blob_store
from storage.db import Database
from storage.tokens import TokenBox

from . import errors, health, iid_report, logs, openrosa, ui, webform
from .api import app_users as api_app_users
from .api import audits as api_audits
from .api import datasets as api_datasets
from .api import entities as api_entities
from .api import exports as api_exports
from .api import forms as api_forms
from .api import odata as api_odata
from .api import projects as api_projects
from .api import sessions as api_sessions
from .api import submissions as api_submissions
from .api import users as api_users
from .auth import resolve_caller
from .guards import PUBLIC, roles_of
from .isolation import Isolation
from .logs import RedactKeys
from .paths import DecodedPathParams, RawPathRouting
from .settings import Settings
from .uploads import BodyTimeout

STATIC = Path(__file__).parent / "static"


class Services:
    """The long-lived parts one app instance uses."""

    def __init__(
        self, settings: Settings, db: Database | None = None, blobs: BlobStore | None = None
    ) -> None:
        self.settings = settings
        self.db = db or Database(settings.database_url)
        self.blobs = blobs or open_blob_store(
            blob_dir=Path(settings.blob_dir),
            s3_endpoint=settings.s3_endpoint,
            s3_access_key=settings.s3_access_key,
            s3_secret_key=settings.s3_secret_key,
            s3_bucket=settings.s3_bucket,
            s3_secure=settings.s3_secure,
            s3_connect_timeout=settings.s3_connect_timeout,
            s3_read_timeout=settings.s3_read_timeout,
            s3_retries=settings.s3_retries,
        )
        self.box_secret = settings.load_secret()
        self.box = TokenBox(self.box_secret)

    async def request_unit(self, request: Request[Any, Any, Any]) -> AsyncIterator[Database]:
        """Dependency `db`: the request's unit of work (`storage.db.Unit`). Committed before
        the response is sent (a 201 means stored), rolled back when the handler fails."""
        unit = self.db.unit(write=request.method not in ("GET", "HEAD"))
        try:
            yield unit
        except BaseException as error:
            await anyio.to_thread.run_sync(unit.finish, error)
            raise
        if unit.opened:
            await anyio.to_thread.run_sync(unit.finish)
        else:
            unit.finish()

    def prepare(self) -> None:
        """Schema migrations, the bucket and the temporary folder; safe to repeat."""
        self.db.migrate()
        self.blobs.ensure_ready()
        Path(self.settings.tmp_dir).mkdir(parents=True, exist_ok=True)


def create_app(
    settings: Settings, services: Services | None = None, *, prepare: bool = True
) -> Litestar:
    services = services or Services(settings)
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactKeys) for f in access.filters):
        access.addFilter(RedactKeys())
    if prepare:
        services.prepare()
    rest = [
        *api_projects.HANDLERS,
        *api_forms.HANDLERS,
        *api_submissions.HANDLERS,
        *api_sessions.HANDLERS,
        *api_users.HANDLERS,
        *api_app_users.HANDLERS,
        *api_audits.HANDLERS,
        *iid_report.HANDLERS,
        *api_exports.HANDLERS,
        *api_odata.HANDLERS,
        *api_datasets.HANDLERS,
        *api_entities.HANDLERS,
    ]
    # Under /v1/key/{key} the REST routes exist only to answer 403: an app-user key may use
    # OpenRosa alone (resolve_caller refuses it). The form resource there is OpenRosa's.
    # The public routes (the roles catalogue) are not mounted there at all.
    not_for_keys = (api_forms.get_form, api_sessions.create_session, *api_users.PUBLIC_HANDLERS)
    rest_for_keys = [h for h in rest if h not in not_for_keys]
    app = Litestar(
        route_handlers=[
            Router(
                "/v1",
                route_handlers=[*openrosa.HANDLERS, *rest],
                request_max_body_size=settings.max_submission_bytes,
            ),
            Router(
                "/v1/key/{key:str}",
                route_handlers=[*openrosa.HANDLERS, *openrosa.KEY_ONLY, *rest_for_keys],
                request_max_body_size=settings.max_submission_bytes,
                include_in_schema=False,
            ),
            *health.HANDLERS,
            ui.ui_router(),
            webform.router(),
            create_static_files_router(
                path="/static",
                directories=[STATIC],
                cache_control=CacheControlHeader(max_age=86400, public=True),
                include_in_schema=False,
                opt={"own": True, **PUBLIC},
            ),
        ],
        dependencies={
            "db": Provide(services.request_unit),
            "blobs": Provide(lambda: services.blobs, use_cache=True, sync_to_thread=False),
            "settings": Provide(lambda: settings, use_cache=True, sync_to_thread=False),
            "box": Provide(lambda: services.box, use_cache=True, sync_to_thread=False),
            "caller": Provide(resolve_caller, sync_to_thread=True),
            "roles": Provide(roles_of, sync_to_thread=False),
        },
        exception_handlers={Exception: errors.handle},
        # Every route that reads a body bounds how slowly it may arrive (a 408, not a
        # connection and its temporary files held forever).
        middleware=[
            DecodedPathParams,
            BodyTimeout,
            ui.csrf_middleware(settings, services.box_secret),
        ],
        # Every response: what a phone, a form author or an upload sent never runs here.
        before_send=[Isolation(settings)],
        template_config=ui.template_config(settings.clock),
        openapi_config=OpenAPIConfig(
            title="JEBOL SIPERA",
            version="0.1.0",
            description="ODK-compatible collection server (OpenRosa and Central-style /v1).",
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin()],
            openapi_router=Router(
                "/schema", route_handlers=[], opt={"own": True, **PUBLIC}, include_in_schema=False
            ),
        ),
        request_max_body_size=settings.max_submission_bytes,
        on_shutdown=[services.db.dispose],
        logging_config=logs.logging_config(settings.log_format),
        debug=False,
    )
    app.asgi_handler = logs.RequestLog(RawPathRouting(app.asgi_handler))
    app.state.settings = settings
    app.state.services = services
    return app
