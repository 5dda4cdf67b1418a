"""ODK Entities' naming rules, as Central applies them (central-backend lib/data/dataset.js).

An entity list (dataset) is named like an XML name without dots: a letter, ":" or "_", then
letters, digits, ":", "_" or "-", never starting with "__". A property may also hold "."
but not ":", and is never `name` or `label` (in any case): those are every entity's own.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from .errors import ODataUnsupported, UnknownProperty
from .odata import ROOT_ANNOTATIONS, Cursor, decode_skiptoken, flag_option, timestamp, whole_option
from .odata_filter import Expr, parse_filter

_LIST_NAME = re.compile(r"(?!__)(?:[^\W\d]|:)[\w:-]*")
_PROPERTY_NAME = re.compile(r"(?!__)(?!name$)(?!label$)[^\W\d][\w.-]*")


def valid_list_name(name: str) -> bool:
    return bool(_LIST_NAME.fullmatch(name)) and _letters_only(name)


def valid_property_name(name: str) -> bool:
    return bool(_PROPERTY_NAME.fullmatch(name.lower())) and _letters_only(name)


class _PunctuationAsSpace(dict[int, int | str]):
    """A `str.translate` table sending every punctuation character (Unicode category P*:
    hyphens, underscores, dots, quotes…) to a space, worked out once per character."""

    def __missing__(self, code: int) -> int | str:
        value: int | str = " " if unicodedata.category(chr(code)).startswith("P") else code
        self[code] = value
        return value


_PUNCTUATION_AS_SPACE = _PunctuationAsSpace()


def normalize_name(text: str) -> str:
    """A typed name as it is compared: NFKC, case folded, punctuation (hyphens, underscores,
    dots…) as spaces, spaces collapsed. "SIGAP-Bumil" = "sigap bumil" = " Sigap  Bumil "."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.translate(_PUNCTUATION_AS_SPACE).split())


def odata_name(name: str) -> str:
    """A property's name as OData writes it (Central's sanitizeOdataIdentifier)."""
    name = re.sub(r"^([^a-z_])", r"_\1", name, flags=re.IGNORECASE)
    return re.sub(r"[^a-z0-9_]+", "_", name, flags=re.IGNORECASE)


def _letters_only(name: str) -> bool:
    """Central's classes are \\p{L} (letters) and \\d (ASCII digits): Python's \\w also takes
    other scripts' digits and marks, which Central refuses."""
    return all(ch.isalpha() or ch in "0123456789_:-." for ch in name)


# ---- the Entities OData feed (`…/datasets/{name}.svc/Entities`), as Central's -----------------

ENTITY_TABLE = "Entities"
FQDN_ROOT = "org.opendatakit.user"
# What `$filter` may name on Entities, and the kind of value each holds (Central's
# odataToColumnMap).
FILTER_FIELDS = {
    "__id": "string",
    "__system/createdAt": "datetime",
    "__system/updatedAt": "datetime",
    "__system/deletedAt": "datetime",
    "__system/creatorId": "int",
    "__system/conflict": "string",
}
SYSTEM_FIELDS = (
    "createdAt",
    "creatorId",
    "creatorName",
    "updates",
    "updatedAt",
    "deletedAt",
    "version",
    "conflict",
)
QUERY_OPTIONS = ("$top", "$skip", "$count", "$select", "$filter", "$skiptoken", "$format")


@dataclass(frozen=True)
class EntityRow:
    """An entity as the feed shows it: the entity and its current version."""

    id: int
    uuid: str
    label: str
    data: dict[str, Any]
    version: int
    created_at: datetime
    creator_id: int | None
    creator_name: str | None
    updated_at: datetime | None
    deleted_at: datetime | None
    conflict: str | None


@dataclass(frozen=True)
class EntityOptions:
    top: int | None = None
    skip: int = 0
    count: bool = False
    selected: frozenset[str] | None = None  # None: everything
    filter: Expr | None = None
    cursor: Cursor | None = None


def parse_entity_options(properties: list[str], query: Mapping[str, str]) -> EntityOptions:
    """`$top`, `$skip`, `$count`, `$select`, `$filter`, `$skiptoken` on Entities; other `$`
    options are refused as on Submissions. `$select` names `__id`, `label`, `__system`,
    `__system/<field>` or a property (by its own name, as Central)."""
    for key in query:
        if key.startswith("$") and key not in QUERY_OPTIONS:
            raise ODataUnsupported(f"The requested feature {key} is not supported by this server.")
    selected = None
    select = query.get("$select")
    if select is not None and select.strip() not in ("", "*"):
        names = frozenset(p.strip() for p in select.split(","))
        known = {"__id", "label", "__system", *FILTER_FIELDS, *properties}
        known.update(f"__system/{f}" for f in SYSTEM_FIELDS)
        for name in sorted(names - known):
            raise UnknownProperty(f"Could not find a property named '{name}'")
        selected = names
    text = query.get("$filter")
    token = query.get("$skiptoken")
    return EntityOptions(
        top=whole_option(query, "$top"),
        skip=whole_option(query, "$skip") or 0,
        count=flag_option(query, "$count"),
        selected=selected,
        filter=parse_filter(text, fields=FILTER_FIELDS) if text and text.strip() else None,
        cursor=decode_skiptoken(token) if token is not None else None,
    )


def entity_row(row: EntityRow, properties: list[str], selected: frozenset[str] | None) -> dict:
    """One row of the feed, as Central's selectFields: `__id`, `label`, `__system`, then each
    property of the list under its OData name ("" when the entity has no value)."""
    out: dict[str, Any] = {}
    if selected is None or "__id" in selected:
        out["__id"] = row.uuid
    if selected is None or "label" in selected:
        out["label"] = row.label
    system = {
        "createdAt": timestamp(row.created_at),
        "creatorId": str(row.creator_id) if row.creator_id is not None else None,
        "creatorName": row.creator_name,
        "updates": row.version - 1,
        "updatedAt": timestamp(row.updated_at),
        "deletedAt": timestamp(row.deleted_at),
        "version": row.version,
        "conflict": row.conflict,
    }
    if selected is None or "__system" in selected:
        out["__system"] = system
    else:
        picked = {k: v for k, v in system.items() if f"__system/{k}" in selected}
        if picked:
            out["__system"] = picked
    for name in properties:
        if selected is None or name in selected:
            value = row.data.get(name)
            out[odata_name(name)] = "" if value is None else value
    return out


def service_document(service_url: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{service_url}/$metadata",
        "value": [{"name": ENTITY_TABLE, "kind": "EntitySet", "url": ENTITY_TABLE}],
    }


def edmx(list_name: str, properties: list[str]) -> str:
    """The metadata document of an entity list, as Central's edmxTemplaterForEntities."""
    fqdn = f"{FQDN_ROOT}.{odata_name(list_name)}"
    names = [odata_name(p) for p in properties]
    return _EDMX.format(
        fqdn=quoteattr(fqdn),
        entity_type=quoteattr(f"{fqdn}.{ENTITY_TABLE}"),
        container=quoteattr(list_name),
        properties="".join(
            f'\n        <Property Name={quoteattr(n)} Type="Edm.String"/>' for n in names
        ),
        annotations=ROOT_ANNOTATIONS.format(
            properties="".join(
                f"\n                  <PropertyPath>{escape(n)}</PropertyPath>" for n in names
            )
        ),
    )


_EDMX = """<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.entity">
      <ComplexType Name="metadata">
        <Property Name="createdAt" Type="Edm.DateTimeOffset"/>
        <Property Name="creatorId" Type="Edm.String"/>
        <Property Name="creatorName" Type="Edm.String"/>
        <Property Name="updates" Type="Edm.Int64"/>
        <Property Name="updatedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="deletedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="version" Type="Edm.Int64"/>
        <Property Name="conflict" Type="Edm.String"/>
      </ComplexType>
    </Schema>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace={fqdn}>
      <EntityType Name="Entities">
        <Key><PropertyRef Name="__id"/></Key>
        <Property Name="__id" Type="Edm.String"/>
        <Property Name="__system" Type="org.opendatakit.entity.metadata"/>
        <Property Name="label" Type="Edm.String"/>{properties}
      </EntityType>
      <EntityContainer Name={container}>
        <EntitySet Name="Entities" EntityType={entity_type}>{annotations}
        </EntitySet>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""


# ---- an entity's versions with their conflicts, as Central's getWithConflictDetails -----------


@dataclass(frozen=True)
class VersionFacts:
    """What deciding a version's conflict needs (one entity version, in version order)."""

    version: int
    base_version: int | None
    branch_id: str | None
    trunk_version: int | None
    label: str
    data: dict[str, Any]
    data_received: dict[str, Any]
    conflicting_properties: list[str] | None
    resolved: bool


@dataclass
class ConflictDetails:
    conflict: str | None = None
    resolved: bool = False
    base_diff: list[str] | None = None
    server_diff: list[str] | None = None
    last_good_version: bool = False
    relevant_to_conflict: bool = False


def received_diff(received: Mapping[str, Any], other: VersionFacts) -> list[str]:
    """What a version was sent that differs from `other` (label included)."""
    theirs = {**other.data, "label": other.label}
    return [k for k in received if k not in theirs or received[k] != theirs[k]]


def conflict_details(versions: list[VersionFacts]) -> list[ConflictDetails]:
    """Per version (oldest first): whether it was made on a stale base (`conflict`: hard when
    it overwrote what the server had changed), its diffs against its base and the version
    before it, and which versions a supervisor must look at (from the last good version on).

    An offline run (one `branch_id`) stays conflict-free while no other version came between
    it and the server version it started from (`trunk_version`)."""
    out = [ConflictDetails(base_diff=[], server_diff=[]) for _ in versions]
    contiguous: dict[str, int] = {}  # branch -> last version contiguous with its trunk
    last_good = 0
    relevant_bases: set[int] = set()
    for i, v in enumerate(versions):
        if v.branch_id is not None:
            if v.branch_id not in contiguous:
                if v.trunk_version is not None:
                    contiguous[v.branch_id] = v.version if v.version == v.trunk_version + 1 else 0
                else:
                    contiguous[v.branch_id] = 2 if v.version == 2 else 1
            elif (
                v.base_version == contiguous[v.branch_id] and v.version == (v.base_version or 0) + 1
            ):
                contiguous[v.branch_id] = v.version
        if v.version <= 1 or v.base_version is None:
            continue
        details = out[i]
        stale = v.version != v.base_version + 1 or (
            v.branch_id is not None and contiguous[v.branch_id] < v.base_version
        )
        details.base_diff = received_diff(v.data_received, versions[v.base_version - 1])
        details.server_diff = received_diff(v.data_received, versions[v.version - 2])
        if stale:
            details.conflict = "hard" if v.conflicting_properties else "soft"
            details.resolved = v.resolved
            if not details.resolved and last_good == 0:
                last_good = v.version - 1
                out[v.version - 2].last_good_version = True
        if last_good > 0:
            relevant_bases.add(v.base_version)
    for v, details in zip(versions, out, strict=True):
        details.relevant_to_conflict = last_good > 0 and (
            v.version >= last_good or v.version in relevant_bases
        )
    if last_good == 0 and out:
        out[-1].last_good_version = True
    return out
