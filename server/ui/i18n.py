"""The interface's one message catalogue: Indonesian by default, English selectable.

Every string the UI shows goes through `_()` (templates) or `gettext()` (Python). Message ids
are English; `locale/id.po` translates them (a test fails when one is missing), and English
shows the ids themselves. The .po files are read with Babel at start: no compile step.
"""

from __future__ import annotations

from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.core import Locale
from babel.messages.pofile import read_po
from babel.support import Format

LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = {"id": "Bahasa Indonesia", "en": "English"}
DEFAULT = "id"
current: ContextVar[str] = ContextVar("jebol_lang", default=DEFAULT)


@cache
def catalog(lang: str) -> dict[str, str]:
    path = LOCALE_DIR / f"{lang}.po"
    if not path.exists():
        return {}
    with path.open("rb") as handle:
        po = read_po(handle, locale=lang)
    return {str(m.id): str(m.string) for m in po if m.id and m.string and not m.fuzzy}


def gettext(message: str, **values: object) -> str:
    text = catalog(current.get()).get(message, message)
    return text % values if values else text


def ngettext(singular: str, plural: str, n: int, **values: object) -> str:
    text = gettext(singular if n == 1 else plural)
    return text % {"num": n, **values}


def pick(lang: str | None) -> str:
    return lang if lang in LANGUAGES else DEFAULT


def number(value: float | int) -> str:
    return Format(Locale.parse(current.get())).number(value)


def label(labels: dict[str, str], fallback: str) -> str:
    """A form label in the interface language: XLSForm languages look like 'Indonesian (id)'."""
    lang = current.get()
    for key, text in labels.items():
        if key.endswith(f"({lang})") or key.lower().startswith(
            {"id": "indonesia", "en": "english"}[lang]
        ):
            return text
    return labels.get("") or next(iter(labels.values()), fallback)


@cache
def _interface_texts(lang: str) -> frozenset[str]:
    """Every text the interface says in `lang` (its catalogue's translations; for English,
    the message ids themselves)."""
    return frozenset(catalog(lang).values()) | frozenset(catalog("id"))


def error_text(status: int, message: str) -> tuple[str, str]:
    """An error page's title and text in the interface language. A 403 or 404 keeps a reason
    the interface itself gave (already in its language); the API's English text, which names
    internals, becomes what the status means. Others keep the operation's reason."""
    ours = message in _interface_texts(current.get())
    if status == 403:
        return gettext("Not allowed"), message if ours else gettext(
            "Your role in this project does not allow this page or action. Ask a manager of the project if you need it."
        )
    if status == 404:
        return gettext("Not found"), message if ours else gettext(
            "This page or item does not exist, or it has been deleted."
        )
    if status == 409:
        return gettext("Conflict"), message
    if status >= 500:
        return gettext("Something went wrong"), message
    return gettext("Request not accepted"), message
