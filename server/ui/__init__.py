"""The supervisor's web UI: server-rendered pages (Jinja), htmx for partial updates.

Logged-in state is the `jebol_session` cookie (HttpOnly, SameSite=Lax, Secure behind HTTPS),
holding a session token like the API's Bearer tokens. Every form post carries Litestar's CSRF
token. Language: the `lang` cookie, Indonesian by default.

The pages, a module each for what they show: `login` (log in and out, the language), `projects`
(the project list and front page, a project's forms for managers), `submissions` (the table, one
submission, review and comments), `evidence` (the evidence board, photo thumbnails), `inovasi`
(innovations by OPD, one innovation, linking typed names), `daftar` (a hand-kept entity list
for managers: the officers), `report` (the IID report) and `users` (app users for managers, web
users and roles for administrators); `common` holds what they share.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from litestar import Request, Router
from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.middleware.csrf import CSRFMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from forms.clock import Clock

from ..settings import Settings
from . import daftar, evidence, i18n, inovasi, login, projects, report, submissions, users

TEMPLATES = Path(__file__).parent / "templates"
LANG_COOKIE = "jebol_lang"
HANDLERS = [
    *login.HANDLERS,
    *projects.HANDLERS,
    *submissions.HANDLERS,
    *evidence.HANDLERS,
    *inovasi.HANDLERS,
    *daftar.HANDLERS,
    *report.HANDLERS,
    *users.HANDLERS,
]


async def set_language(request: Request[Any, Any, Any]) -> None:
    i18n.current.set(i18n.pick(request.cookies.get(LANG_COOKIE)))


def ui_router() -> Router:
    return Router(
        "/",
        route_handlers=HANDLERS,
        before_request=set_language,
        include_in_schema=False,
        opt={"ui": True},
    )


def template_config(clock: Clock | None = None) -> TemplateConfig[JinjaTemplateEngine]:
    """`clock`: the zone times are shown in (JEBOL_TIMEZONE), with its name ("WIB")."""
    clock = clock or Clock.named()

    def configure(engine: JinjaTemplateEngine) -> None:
        env = engine.engine
        env.globals.update(
            _=i18n.gettext,
            ngettext=i18n.ngettext,
            label=i18n.label,
            number=i18n.number,
            languages=i18n.LANGUAGES,
            lang=lambda: i18n.current.get(),
        )
        # One path segment: every reserved character escaped, "/" too (form ids may hold it).
        env.filters["seg"] = lambda value: quote(str(value), safe="")
        env.filters["local_time"] = clock.stamp  # 2026-12-02 06:36 WIB
        env.filters["local_date"] = clock.day  # 2026-12-02
        env.autoescape = True
        env.trim_blocks = True
        env.lstrip_blocks = True

    return TemplateConfig(
        directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=configure
    )


def _csrf_config(settings: Settings, secret: str) -> CSRFConfig:
    return CSRFConfig(
        secret=secret,
        cookie_name="jebol_csrf",
        header_name="x-csrftoken",
        cookie_secure=settings.public_url.startswith("https://"),
        cookie_samesite="lax",
        exclude=["^/v1/", "^/health", "^/schema", "^/f/", "^/static/"],
    )


class SafeCSRF(CSRFMiddleware):
    """Litestar's CSRF check, for which a token that is not ASCII is simply wrong: the stock
    one compares with `secrets.compare_digest`, which raises TypeError on such text (a 500)."""

    def _decode_csrf_token(self, token: str) -> str | None:
        return super()._decode_csrf_token(token) if token.isascii() else None


def csrf_middleware(settings: Settings, secret: str) -> DefineMiddleware:
    """The CSRF middleware for the app's `middleware` (it also puts the token in the scope,
    where templates' `csrf_token()` reads it)."""
    return DefineMiddleware(SafeCSRF, config=_csrf_config(settings, secret))
