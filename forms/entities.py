"""ODK Entities' naming rules, as Central applies them (central-backend lib/data/dataset.js).

An entity list (dataset) is named like an XML name without dots: a letter, ":" or "_", then
letters, digits, ":", "_" or "-", never starting with "__". A property may also hold "."
but not ":", and is never `name` or `label` (in any case): those are every entity's own.
"""

from __future__ import annotations

import re

_LIST_NAME = re.compile(r"(?!__)(?:[^\W\d]|:)[\w:-]*")
_PROPERTY_NAME = re.compile(r"(?!__)(?!name$)(?!label$)[^\W\d][\w.-]*")


def valid_list_name(name: str) -> bool:
    return bool(_LIST_NAME.fullmatch(name)) and _letters_only(name)


def valid_property_name(name: str) -> bool:
    return bool(_PROPERTY_NAME.fullmatch(name.lower())) and _letters_only(name)


def odata_name(name: str) -> str:
    """A property's name as OData writes it (Central's sanitizeOdataIdentifier)."""
    name = re.sub(r"^([^a-z_])", r"_\1", name, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9_]+", "_", name, flags=re.IGNORECASE)


def _letters_only(name: str) -> bool:
    """Central's classes are \\p{L} (letters) and \\d (ASCII digits): Python's \\w also takes
    other scripts' digits and marks, which Central refuses."""
    return all(ch.isalpha() or ch in "0123456789_:-." for ch in name)
