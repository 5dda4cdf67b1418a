"""The submissions table's columns: chosen per form, changeable by the supervisor.

The shipped forms get the columns people read them by (`presets`, from the names in
forms.instruments): the visit form its OPD, visit date, the innovations discussed (each row's
name), the follow-up date and the officers present; the evidence form its OPD, innovation,
indicator, parameter and file or link; the profile form its OPD, innovation and stage. Another
form shows its first few answers that are not empty in its latest submissions (notes,
calculations, groups, repeats and `meta` never are columns).

The **Kolom** chooser offers every column; the choice is remembered per form in a cookie
(`cookie_name`), so no state is kept on the server and the "More" rows match the header.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from markupsafe import Markup, escape

from forms.instance import values_at
from forms.instruments import SIPERA, Instruments
from forms.xform import Field, Schema

from . import i18n

#: At most this many columns, chosen or not (a cookie stays small, a table readable).
MAX_COLUMNS = 12
#: A form without presets shows this many answers by default.
DEFAULT_COUNT = 5
DATE_TYPES = ("date", "time", "dateTime")


@dataclass(frozen=True)
class Column:
    key: str  # a field's path ("/g_kunjungan/opd"), or "@name" for one made of several
    label: str
    read: Callable[[dict[str, Any]], str]
    nowrap: bool = False  # dates: one line, never broken

    def cell(self, values: dict[str, Any]) -> str:
        return self.read(values if isinstance(values, dict) else {})


def show(schema_field: Field, raw: Any) -> str:
    """An answer as people read it: choice labels instead of codes."""
    if raw in (None, ""):
        return ""
    if isinstance(raw, (dict, list)):
        return "…"
    if schema_field.choices:
        by_value = {c.value: i18n.label(c.labels, c.value) for c in schema_field.choices}
        if schema_field.type == "select":
            return ", ".join(by_value.get(v, v) for v in str(raw).split())
        return by_value.get(str(raw), str(raw))
    return str(raw)


def whole_words(text: str) -> Markup:
    """Text for a cell, escaped, each short word with a hyphen or slash in it ("2026-12-11",
    "E-Rapor") kept on one line: browsers break after hyphens, and a date split in two reads
    as two values. Longer runs (links) may still break where they must."""
    out = []
    for part in re.split(r"(\s+)", text or ""):
        if part and not part.isspace() and len(part) <= 24 and ("-" in part or "/" in part):
            out.append(Markup('<span class="nw">{}</span>').format(part))
        else:
            out.append(escape(part))
    return Markup("").join(out)


def _parts(path: str | Sequence[str]) -> list[str]:
    return path.strip("/").split("/") if isinstance(path, str) else list(path)


def _texts(values: dict[str, Any], parts: Sequence[str], schema_field: Field | None) -> list[str]:
    """Each non-empty answer at `parts`, in every repeat row on the way, as people read it."""
    found: list[str] = []
    for raw in values_at(values, list(parts)):
        if raw is None or isinstance(raw, (dict, list)):
            continue
        text = (show(schema_field, raw) if schema_field else str(raw)).strip()
        if text and text not in found:
            found.append(text)
    return found


def field_column(schema_field: Field, label: str | None = None) -> Column:
    parts = _parts(schema_field.path)
    return Column(
        schema_field.path,
        label or i18n.label(schema_field.labels, schema_field.name),
        lambda values: ", ".join(_texts(values, parts, schema_field)),
        nowrap=schema_field.type in DATE_TYPES,
    )


def joined_column(key: str, label: str, schema: Schema, *paths: Sequence[str]) -> Column | None:
    """The answers at several paths (repeat rows included) in one cell, each once. None when
    the form has none of them (an older version, another deployment's form)."""
    known = [(list(p), schema.field("/" + "/".join(p))) for p in paths]
    known = [(p, f) for p, f in known if f is not None]
    if not known:
        return None

    def read(values: dict[str, Any]) -> str:
        texts: list[str] = []
        for parts, schema_field in known:
            texts += [t for t in _texts(values, parts, schema_field) if t not in texts]
        return ", ".join(texts)

    return Column(key, label, read)


def candidates(schema: Schema) -> list[Field]:
    """The answers that can be a column: outside repeats, with a label (so no calculation),
    not a group or `meta`."""
    repeats = schema.repeat_paths
    picked = []
    for candidate in schema.fields:
        parts = _parts(candidate.path)
        if (
            candidate.type in ("structure", "repeat")
            or parts[0] == "meta"
            or not candidate.labels
            or any("/" + "/".join(parts[:i]) in repeats for i in range(1, len(parts)))
        ):
            continue
        picked.append(candidate)
    return picked


def presets(schema: Schema, instruments: Instruments = SIPERA) -> list[Column]:
    """The columns of a shipped form (by its form id), those its version has; [] for others."""

    def field(path: Sequence[str], label: str | None = None) -> Column | None:
        found = schema.field("/" + "/".join(path))
        return field_column(found, label) if found is not None else None

    visit, evidence, profile = instruments.visit, instruments.evidence, instruments.profile
    chosen: list[Column | None] = []
    if schema.form_id == visit.form_id:
        chosen = [
            field(visit.opd, i18n.gettext("OPD")),
            field(visit.date),
            joined_column(
                "@innovations",
                i18n.gettext("Innovations discussed"),
                schema,
                (*visit.innovations, visit.innovation_name),
            ),
            field(visit.follow_up),
            joined_column(
                "@officers",
                i18n.gettext("Officers present"),
                schema,
                visit.officer_names,
                visit.officers_other,
            ),
        ]
    elif schema.form_id == evidence.form_id:
        chosen = [
            field(evidence.opd, i18n.gettext("OPD")),
            field(evidence.innovation, i18n.gettext("Innovation")),
            field(evidence.indicator),
            field(evidence.parameter),
            joined_column(
                "@file", i18n.gettext("File or link"), schema, evidence.file, evidence.link
            ),
        ]
    elif schema.form_id == profile.form_id:
        chosen = [
            field(profile.opd, i18n.gettext("OPD")),
            field(profile.name, i18n.gettext("Innovation")),
            field(profile.stage),
        ]
    return [c for c in chosen if c is not None]


def offered(schema: Schema) -> list[Column]:
    """Every column the chooser offers: the form's presets, then its other answers."""
    first = presets(schema)
    taken = {c.key for c in first}
    return first + [field_column(f) for f in candidates(schema) if f.path not in taken]


def defaults(
    schema: Schema, sample: Callable[[], list[dict[str, Any]]], count: int = DEFAULT_COUNT
) -> list[Column]:
    """The presets, or the first `count` answers not empty in `sample()` (the latest
    submissions' values; read only for a form without presets), else simply the first."""
    first = presets(schema)
    if first:
        return first
    fields = candidates(schema)
    rows = sample()
    filled = [f for f in fields if any(_texts(v, _parts(f.path), None) for v in rows)]
    return [field_column(f) for f in (filled or fields)[:count]]


def chosen(schema: Schema, keys: Sequence[str]) -> list[Column]:
    """The columns with these keys, in the chooser's order; unknown keys are dropped."""
    wanted = set(keys)
    return [c for c in offered(schema) if c.key in wanted][:MAX_COLUMNS]


def cookie_name(project_id: int, xml_form_id: str) -> str:
    """One cookie per form: the form id (any characters) hashed into a cookie-safe name."""
    digest = hashlib.sha256(xml_form_id.encode()).hexdigest()[:12]
    return f"jebol_cols_{project_id}_{digest}"


def encode_keys(keys: Sequence[str]) -> str:
    return quote(",".join(k.replace(",", "") for k in keys[:MAX_COLUMNS]), safe="/@")


def decode_keys(value: str | None) -> list[str]:
    return [k for k in unquote(value or "").split(",") if k][:MAX_COLUMNS]
