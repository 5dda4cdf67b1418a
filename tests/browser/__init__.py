"""Browser tests: Debian's chromium (/usr/bin/chromium) driven by Python playwright.

No tool downloads a browser (`playwright install` is never run) and the page may reach only
127.0.0.1: every other request is aborted and recorded (see conftest.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # playwright is imported by the fixtures, so a missing one can skip locally
    from playwright.sync_api import Page

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"


def screenshot(page: Page, name: str, *, full_page: bool = True) -> Path:
    """Save the page as test-output/screenshots/<name>.png (git-ignored) and return the path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
