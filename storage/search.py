"""Free-text search over answers: the `submission_version.search_text` column.

Each version keeps its answer values (and its instance name) casefolded and NFC-normalised,
joined by SEPARATOR, written once at ingest (migration 0010 filled the older rows). The pages
search it with a plain LIKE on the casefolded needle, its `%`, `_` and escape character
escaped: the same literal, Unicode-caseless match on SQLite and PostgreSQL (neither database's
own `lower()` is used: SQLite's folds ASCII only). Field names, JSON punctuation and `meta`
(instanceID and the like) are not in it, so they match nothing.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa

#: Between two values: a control character XML 1.0 cannot carry, so no answer holds it and
#: no needle (control characters are dropped from it) can match across two answers.
SEPARATOR = "\x1f"


def fold(text: str) -> str:
    """Text as it is compared: NFC, casefolded ("Ñuñez" and "ÑUÑEZ" are "ñuñez")."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


def text_of(values: dict[str, Any], instance_name: str | None = None) -> str:
    """The search column's value for a version's answers (repeats included, `meta` left out)."""
    parts = [instance_name] if instance_name else []
    parts.extend(_answers(values))
    return SEPARATOR.join(fold(part) for part in parts)


def _answers(values: Any) -> Iterator[str]:
    if isinstance(values, dict):
        for name, value in values.items():
            if name != "meta":
                yield from _answers(value)
    elif isinstance(values, list):
        for row in values:
            yield from _answers(row)
    elif isinstance(values, str):
        if values.strip():
            yield values.strip()
    elif values is not None:
        yield str(values)


def needle(text: str) -> str:
    """What a typed search looks for: trimmed, control characters dropped, folded."""
    kept = "".join(ch for ch in text if ch >= " " and ch != "\x7f").strip()
    return fold(kept)


def matches(column: Any, text: str) -> Any:
    """`column` (a search_text) contains the typed `text`, literally: LIKE's `%`, `_` and the
    escape character in it are escaped. An empty needle matches everything."""
    found = needle(text)
    if not found:
        return sa.true()
    return column.contains(found, autoescape=True)
