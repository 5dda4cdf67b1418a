"""Fixtures for the browser tests: one chromium per run, a fresh phone-sized page per test,
one live server (uvicorn in a thread) on the SQLite backend.

Chromium is Debian's (/usr/bin/chromium); nothing downloads a browser. When it (or the
playwright package) is missing the tests skip on a developer machine, but fail when the
environment variable CI is set, so CI never passes by skipping them.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from server.app import Services
from tests.conftest import backend_settings
from tests.live import LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = {
    "viewport": {"width": 360, "height": 740},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
    "locale": "id-ID",
}
ALLOWED_HOSTS = {"127.0.0.1"}

_timings: dict[str, float] = {}


def unavailable(reason: str) -> None:
    """Skip on a developer machine; fail under CI (a skipped browser suite proves nothing)."""
    if os.environ.get("CI"):
        pytest.fail(
            f"{reason} (CI is set, so the browser tests fail rather than skip)", pytrace=False
        )
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        unavailable(f"chromium not found at {CHROMIUM}: apt-get install -y chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable(
            "the playwright package is missing: pip install -e '.[test]' "
            "(do not run `playwright install`: the tests use Debian's chromium)"
        )
    started = time.perf_counter()
    with sync_playwright() as playwright:
        _timings["playwright driver start"] = time.perf_counter() - started
        started = time.perf_counter()
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        _timings["chromium launch"] = time.perf_counter() - started
        _timings["chromium version"] = browser.version  # type: ignore[assignment]
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def loopback_page(
    browser: Any, *, timeout: int, inline: bool = False, page_errors: bool = False, **options: Any
) -> Iterator[Any]:
    """A page in a fresh context (`options`: its size, service workers, location…) whose
    requests to anything but 127.0.0.1 (and, with `inline`, data: and blob: URLs) are aborted
    and, after the test, reported as an error; with `page_errors`, so are uncaught script
    errors."""
    context = browser.new_context(**options)
    context.set_default_timeout(timeout)
    offsite: list[str] = []
    errors: list[str] = []

    def loopback_only(route) -> None:
        parts = urlsplit(route.request.url)
        if (parts.scheme in ("http", "https") and parts.hostname in ALLOWED_HOSTS) or (
            inline and parts.scheme in ("data", "blob")
        ):
            route.continue_()
        else:
            offsite.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", loopback_only)
    page = context.new_page()
    if page_errors:
        page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    if offsite:
        pytest.fail("the page tried to leave 127.0.0.1: " + ", ".join(offsite), pytrace=False)
    assert not errors, errors


@pytest.fixture
def page(browser) -> Iterator[object]:
    """A fresh context at a phone's size, loopback only (service workers blocked)."""
    with loopback_page(browser, timeout=10_000, **PHONE, service_workers="block") as fresh:
        yield fresh


@pytest.fixture(scope="session")
def services_sqlite(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Services]:
    """The browser tests need one backend only: SQLite + a local blob folder."""
    settings = backend_settings(
        "sqlite", tmp_path_factory.mktemp("browser"), request, map_tiles=""
    )  # tiles would leave 127.0.0.1
    services = Services(settings)
    services.prepare()
    yield services
    services.db.dispose()


@pytest.fixture(scope="session")
def live(services_sqlite: Services) -> Iterator[LiveServer]:
    """The app served over real HTTP at live.url (http://127.0.0.1:<free port>)."""
    with LiveServer(services_sqlite) as server:
        yield server


def pytest_terminal_summary(terminalreporter) -> None:
    if _timings:
        terminalreporter.write_line(
            "browser: "
            + ", ".join(
                f"{k} {v:.2f}s" if isinstance(v, float) else f"{k} {v}" for k, v in _timings.items()
            )
        )
