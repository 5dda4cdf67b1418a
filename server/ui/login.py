"""Logging in and out, and choosing the interface language: the pages anyone may call."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import File, Redirect, Template

from storage import users as user_store

from ..auth import SESSION_COOKIE, client_address
from ..deps import DB, Config, PathText
from ..guards import PUBLIC
from . import i18n
from .common import FormBody, render, safe_next


@get("/login", sync_to_thread=False, opt=PUBLIC)
def login_page(request: Request[Any, Any, Any], next: FromQuery[str | None] = None) -> Template:
    return render("login.html", request, next=safe_next(next), error=None)


@dataclass
class LoginForm:
    email: str
    password: str
    next: str = "/"


@post("/login", sync_to_thread=True, status_code=303, opt=PUBLIC)
def login(
    request: Request[Any, Any, Any], data: Annotated[LoginForm, FormBody], db: DB, settings: Config
) -> Redirect | Template:
    login_ = user_store.log_in(
        db, data.email, data.password, client=client_address(request), hours=settings.session_hours
    )
    if login_ is None:
        return render(
            "login.html",
            request,
            status_code=401,
            next=safe_next(data.next),
            error=i18n.gettext("Wrong email or password."),
        )
    response = Redirect(safe_next(data.next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        login_.token,
        httponly=True,
        samesite="lax",
        secure=settings.public_url.startswith("https://"),
        max_age=int(settings.session_hours * 3600),
        path="/",
    )
    return response


@post("/logout", sync_to_thread=True, status_code=303, opt=PUBLIC)
def logout(request: Request[Any, Any, Any], db: DB) -> Redirect:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        user_store.delete_session(db, token)
    response = Redirect("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


FAVICON = Path(__file__).parent.parent / "static" / "favicon.ico"


@get("/favicon.ico", sync_to_thread=False, opt=PUBLIC, include_in_schema=False)
def favicon() -> File:
    """The green clipboard (server/webform/make_icons.py), where browsers look for it."""
    return File(FAVICON, media_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})


@get("/lang/{code:str}", sync_to_thread=False, opt=PUBLIC)
def choose_language(request: Request[Any, Any, Any], code: PathText) -> Redirect:
    back = request.headers.get("referer") or "/"
    response = Redirect(safe_next(urlparse(back).path or "/"))
    response.set_cookie(
        "jebol_lang", i18n.pick(code), max_age=365 * 86400, samesite="lax", path="/"
    )
    return response


HANDLERS = [login_page, login, logout, choose_language, favicon]
