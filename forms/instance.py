"""Read a submission XML: its ids, its values by path (repeats as lists), its attachments.

Pure: the caller gives the bytes and, once it knows the form, the schema's binary paths.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple
from xml.etree.ElementTree import Element

from .errors import SubmissionInvalid
from .xml import parse_xml

MAX_SUBMISSION_XML_BYTES = 10 * 1024 * 1024
# instanceIDs are indexed (unique per form) and stored as VARCHAR(255): a longer one is refused
# here, the same on every database, before anything is stored.
MAX_INSTANCE_ID_CHARS = 255
_META_NAMES = ("meta", "orx:meta")
_UNSAFE_NAME_CHARS = frozenset("/\\\x00") | frozenset(chr(c) for c in range(32))

Values = dict[str, Any]  # name -> str | Values | list[Values]


@dataclass(frozen=True)
class EntityClaim:
    """A `meta/entity` of a submission, as the phone wrote it (attributes unparsed).

    `container` is the path of the node holding that `meta` ("" for the root, "/inovasi" for
    each row of that repeat) and `values` that node's values, where its `save_to` fields are.
    `label` is None when the XML has no label element (an update that keeps the label).
    """

    container: str
    attributes: dict[str, str]
    label: str | None
    values: Values


@dataclass(frozen=True)
class Instance:
    form_id: str
    version: str
    instance_id: str
    deprecated_id: str | None
    instance_name: str | None
    values: Values
    entities: tuple[EntityClaim, ...] = ()

    def attachment_names(self, binary_paths: frozenset[str]) -> list[str]:
        """File names this submission references in its binary fields (as `attachment_name`
        makes them), in document order."""
        names: list[str] = []
        for path in sorted(binary_paths):
            for value in values_at(self.values, path.strip("/").split("/")):
                name = attachment_name(value) if isinstance(value, str) else ""
                if name and name not in names:
                    names.append(name)
        return names


def read_instance(data: bytes, max_bytes: int = MAX_SUBMISSION_XML_BYTES) -> Instance:
    root = parse_xml(data, max_bytes=max_bytes, error=SubmissionInvalid, bare_ampersands=True)
    form_id = root.get("id")
    if not form_id:
        raise SubmissionInvalid("The submission's root element has no id attribute (the form id).")
    meta = next((child for child in root if _local(child.tag) == "meta"), None)
    instance_id = _meta_value(meta, "instanceID")
    if not instance_id:
        raise SubmissionInvalid("The submission has no meta/instanceID.")
    deprecated_id = _meta_value(meta, "deprecatedID")
    for name, value in (("instanceID", instance_id), ("deprecatedID", deprecated_id)):
        if len(value) > MAX_INSTANCE_ID_CHARS or any(ch in _UNSAFE_NAME_CHARS for ch in value):
            raise SubmissionInvalid(
                f"The submission's {name} is longer than "
                f"{MAX_INSTANCE_ID_CHARS} characters or has control "
                "characters."
            )
    return Instance(
        form_id=form_id,
        version=root.get("version") or "",
        instance_id=instance_id,
        deprecated_id=deprecated_id or None,
        instance_name=_meta_value(meta, "instanceName") or None,
        values=_read_values(root),
        entities=tuple(_entity_claims(root, "")),
    )


def _entity_claims(node: Element, path: str) -> Iterator[EntityClaim]:
    """Every `meta/entity` in document order: the root's, then each repeat row's."""
    for child in node:
        name = _local(child.tag)
        if name == "meta":
            for entity in child:
                if _local(entity.tag) == "entity":
                    label = next((e for e in entity if _local(e.tag) == "label"), None)
                    yield EntityClaim(
                        container=path,
                        attributes={_local(k): v.strip() for k, v in entity.attrib.items()},
                        label=None if label is None else (label.text or ""),
                        values=_read_values(node),
                    )
        elif len(child):
            yield from _entity_claims(child, f"{path}/{name}")


def attachment_name(text: str) -> str:
    """The one normalisation of an attachment's file name, for the XML's value and for the
    name a file arrives under (a multipart part, a REST path) alike: surrounding whitespace
    is not part of the name, so ` photo 1.jpg ` in the XML and a part named `photo 1.jpg `
    are the same file. Nothing else changes: names are compared as the phone wrote them."""
    return text.strip()


def is_safe_attachment_name(name: str) -> bool:
    """A name we can keep as data and later offer as a download name."""
    return (
        0 < len(name.encode("utf-8")) <= 255
        and name not in (".", "..")
        and not any(ch in _UNSAFE_NAME_CHARS for ch in name)
    )


def _read_values(element: Element) -> Values:
    values: Values = {}
    for child in element:
        name = _local(child.tag)
        value: Any = _read_values(child) if len(child) else (child.text or "")
        if name in values:
            existing = values[name]
            if isinstance(existing, list):
                existing.append(value)
            else:
                values[name] = [existing, value]
        else:
            values[name] = value
    return values


def values_at(values: Any, parts: Sequence[str]) -> Iterator[Any]:
    """Every value at `parts` below `values`, descending into each row of a repeat."""
    if not parts:
        yield values
        return
    if isinstance(values, list):
        for row in values:
            yield from values_at(row, parts)
        return
    if isinstance(values, dict) and parts[0] in values:
        yield from values_at(values[parts[0]], parts[1:])


def value_at(values: Any, parts: Sequence[str]) -> Any:
    """The first value at `parts` (`values_at`'s first): the answer of a question outside
    repeats; None when there is none."""
    return next(values_at(values, parts), None)


class GeoPoint(NamedTuple):
    lat: float
    lon: float
    altitude: float | None = None
    accuracy: float | None = None


def parse_geopoint(value: Any) -> GeoPoint | None:
    """An ODK geopoint answer, 'lat lon [altitude [accuracy]]', as numbers; None when it is not
    one: empty, not text, not numbers, or outside the globe (lat in [-90, 90], lon in
    [-180, 180]). An altitude or accuracy that is not a finite number is left out (None).
    The one parser of a geopoint's place: the photo checks, GeoJSON, the pages' map."""
    parts = value.split() if isinstance(value, str) else []
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):  # also refuses nan and inf
        return None
    return GeoPoint(lat, lon, *(_finite(part) for part in parts[2:4]))


def _finite(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _meta_value(meta: Element | None, name: str) -> str:
    if meta is None:
        return ""
    for child in meta:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return ""


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
