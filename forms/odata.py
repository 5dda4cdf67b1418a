"""OData 4 in ODK Central's shapes: service document, EDMX metadata, entity rows, paging.

Pure: the caller gives the form's Schema, the query options as text and the submissions as
records (their values as read by forms.instance, and their `__system` facts); this module
gives back documents, rows and JSON bytes. It follows central-backend's lib/formats/odata.js
and lib/data/odata.js:

- Tables: `Submissions`, and one per repeat, named by its path with dots
  (`Submissions.inovasi.bukti`); names are sanitized as Central does (`sanitize`).
- Rows: `__id` (the submission's first instanceID; for a repeat row the sha1 of its place,
  as Central computes it), `__system` on submissions, groups as nested objects, repeats as
  `<name>@odata.navigationLink` (and inline with `$expand=*`), repeat rows carry their
  parent's id as `__Submissions-id` / `__Submissions-<repeat path>-id`.
- Values typed: int and decimal as numbers, geopoints as GeoJSON (WKT with `$wkt=true`),
  empty answers as null.
- Paths: `resolve` reads what a URL below the service root names, navigation links included
  (`Submissions('uuid:…')/inovasi('<id>')/bukti`).
- Paging: `$top`, `$skip`, `$skiptoken` (opaque, `01` + base64 JSON as Central's, holding the
  last submission's id and how many of its rows were sent, so a page starts where the last one
  ended instead of counting rows from the start).
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

import msgspec

from .errors import (
    ExpandUnsupported,
    InvalidSkipToken,
    ODataInvalid,
    ODataUnsupported,
    SelectUnsupported,
    SelectWithExpand,
    UnknownProperty,
)
from .odata_filter import Expr, parse_filter
from .tabular import RowMeta
from .tokens import InvalidToken, decode_token, encode_token
from .xform import Schema

ROOT_TABLE = "Submissions"
FQDN_ROOT = "org.opendatakit.user"
SYSTEM_FIELDS = (
    "submissionDate",
    "updatedAt",
    "deletedAt",
    "submitterId",
    "submitterName",
    "attachmentsPresent",
    "attachmentsExpected",
    "status",
    "reviewState",
    "deviceId",
    "edits",
    "formVersion",
)
SYSTEM_PROPERTIES = frozenset({"__system", *(f"__system/{name}" for name in SYSTEM_FIELDS)})
QUERY_OPTIONS = (
    "$top",
    "$skip",
    "$count",
    "$wkt",
    "$expand",
    "$select",
    "$filter",
    "$skiptoken",
    "$format",
)
EDM_TYPES = {
    "int": "Edm.Int64",
    "decimal": "Edm.Decimal",
    "boolean": "Edm.Boolean",
    "geopoint": "Edm.GeographyPoint",
    "geotrace": "Edm.GeographyLineString",
    "geoshape": "Edm.GeographyPolygon",
    "date": "Edm.Date",
    "dateTime": "Edm.DateTimeOffset",
}
CHUNK_BYTES = 64 * 1024
_SKIPTOKEN_VERSION = "01"
# A skiptoken's numbers: ids and row counts, never negative, within the database's integers.
_TokenInt = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]


def sanitize(name: str) -> str:
    """Central's sanitizeOdataIdentifier: a valid OData identifier from an XML name."""
    name = re.sub(r"^([^A-Za-z_])", r"_\1", name)
    return re.sub(r"[^A-Za-z0-9_]+", "_", name)


# ---- the form as OData sees it --------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    name: str  # the element name in the submission XML
    key: str  # its OData property name
    path: str  # the schema path, "" for the root
    kind: str  # structure, repeat, or a field type (string, int, geopoint, ...)
    children: list[Node] = field(default_factory=list, compare=False, repr=False)

    @property
    def is_structural(self) -> bool:
        return self.kind in ("structure", "repeat")


@dataclass(frozen=True)
class Table:
    name: str  # "Submissions" or "Submissions.inovasi.bukti"
    node: Node  # the root or the repeat whose rows the table holds
    chain: tuple[Node, ...]  # groups and repeats from the root down to `node` (empty: root)
    parent_key: str | None  # "__Submissions-id", "__Submissions-inovasi-id"; None on the root

    @property
    def is_root(self) -> bool:
        return not self.chain


@dataclass(frozen=True)
class Model:
    xml_form_id: str
    root: Node
    tables: dict[str, Table]
    by_key_path: dict[str, Node]  # "/g_kunjungan/opd" (sanitized segments) -> node
    parents: dict[str, Node]  # schema path -> its parent node

    @property
    def namespace(self) -> str:
        return f"{FQDN_ROOT}.{sanitize(self.xml_form_id)}"


def model_of(schema: Schema, xml_form_id: str | None = None) -> Model:
    root = Node(schema.root, ROOT_TABLE, "", "structure")
    nodes = {"": root}
    parents: dict[str, Node] = {}
    by_key_path: dict[str, Node] = {}
    for f in schema.fields:  # parents come before their children
        parent = nodes.get(f.path.rsplit("/", 1)[0])
        if parent is None or not parent.is_structural:
            continue
        node = Node(f.name, sanitize(f.name), f.path, f.type)
        parent.children.append(node)
        nodes[f.path] = node
        parents[f.path] = parent
        by_key_path["/".join(sanitize(p) for p in f.path.split("/"))] = node
    tables = {ROOT_TABLE: Table(ROOT_TABLE, root, (), None)}
    _add_tables(root, (), tables)
    return Model(xml_form_id or schema.form_id, root, tables, by_key_path, parents)


def _add_tables(node: Node, chain: tuple[Node, ...], tables: dict[str, Table]) -> None:
    for child in node.children:
        if not child.is_structural:
            continue
        below = (*chain, child)
        if child.kind == "repeat":
            name = ".".join([ROOT_TABLE, *(n.key for n in below)])
            tables[name] = Table(name, child, below, _parent_key(below))
        _add_tables(child, below, tables)


@dataclass(frozen=True)
class Target:
    """What a resource path names: a table, maybe within one submission
    (`Submissions('uuid:…')/inovasi`), maybe within one repeat row (`…/inovasi('<id>')/bukti`:
    `match` is the row property and the value the rows must have)."""

    table: Table
    instance_id: str | None = None
    match: tuple[str, str] | None = None


_SEGMENT = re.compile(r"^([^(]+)\('(.*)'\)$")


def resolve(model: Model, path: str) -> Target | None:
    """The target of a path below the service root, as Central's extractPathContext reads it:
    `Submissions`, `Submissions.inovasi`, `Submissions('id')`, `Submissions('id')/inovasi`,
    `Submissions('id')/inovasi('id')/bukti`. None when there is no such table."""
    names: list[str] = []
    ids: list[str | None] = []
    for part in path.strip("/").split("/"):
        segment = _SEGMENT.match(part)
        names.append(segment.group(1) if segment else part)
        ids.append(segment.group(2) if segment else None)
    table = model.tables.get(".".join(names))
    if table is None:
        return None
    last = max((i for i, value in enumerate(ids) if value is not None), default=-1)
    match = None
    if last > 0:
        key = "__id" if last == len(names) - 1 else "__" + "-".join(names[: last + 1]) + "-id"
        match = (key, ids[last] or "")
    return Target(table, ids[0], match)


def _parent_key(chain: tuple[Node, ...]) -> str:
    """`__Submissions-id`, or the path of the nearest enclosing repeat: `__Submissions-a-b-id`."""
    enclosing = max((i for i, n in enumerate(chain[:-1]) if n.kind == "repeat"), default=-1)
    return "__" + "-".join([ROOT_TABLE, *(n.key for n in chain[: enclosing + 1])]) + "-id"


# ---- service and metadata documents ---------------------------------------------------------


def service_document(model: Model, service_url: str) -> dict[str, Any]:
    return {
        "@odata.context": f"{service_url}/$metadata",
        "value": [{"name": name, "kind": "EntitySet", "url": name} for name in model.tables],
    }


def edmx(model: Model) -> str:
    """The metadata document (CSDL XML), as Central's edmxFor writes it."""
    ns = model.namespace
    entities: list[str] = []
    complexes: list[str] = []
    for table in model.tables.values():
        lines = [
            '<Key><PropertyRef Name="__id"/></Key>',
            '<Property Name="__id" Type="Edm.String"/>',
        ]
        if table.is_root:
            lines.append('<Property Name="__system" Type="org.opendatakit.submission.metadata"/>')
        else:
            lines.append(f'<Property Name={quoteattr(table.parent_key or "")} Type="Edm.String"/>')
        lines += _properties(model, table.node, complexes)
        entities.append(
            f"<EntityType Name={quoteattr(table.name)}>\n        "
            + "\n        ".join(lines)
            + "\n      </EntityType>"
        )
    top_names = "".join(
        f"\n                  <PropertyPath>{escape(n.key)}</PropertyPath>"
        for n in model.root.children
    )
    sets = []
    for table in model.tables.values():
        annotations = ROOT_ANNOTATIONS.format(properties=top_names) if table.is_root else ""
        sets.append(
            f"<EntitySet Name={quoteattr(table.name)} "
            f"EntityType={quoteattr(f'{ns}.{table.name}')}>{annotations}"
            "\n        </EntitySet>"
        )
    return _EDMX.format(
        namespace=quoteattr(ns),
        container=quoteattr(model.xml_form_id),
        types="\n      ".join(entities + complexes),
        sets="\n        ".join(sets),
    )


def _properties(model: Model, node: Node, complexes: list[str]) -> list[str]:
    ns = model.namespace
    lines = []
    for child in node.children:
        if child.kind == "structure":
            type_name = ".".join(sanitize(p) for p in child.path.strip("/").split("/"))
            inner = _properties(model, child, complexes)
            complexes.append(
                f"<ComplexType Name={quoteattr(type_name)}>\n        "
                + "\n        ".join(inner)
                + "\n      </ComplexType>"
            )
            lines.append(
                f"<Property Name={quoteattr(child.key)} Type={quoteattr(f'{ns}.{type_name}')}/>"
            )
        elif child.kind == "repeat":
            parts = (sanitize(p) for p in child.path.strip("/").split("/"))
            type_name = ".".join([ROOT_TABLE, *parts])
            lines.append(
                f"<NavigationProperty Name={quoteattr(child.key)} "
                f"Type={quoteattr(f'Collection({ns}.{type_name})')}/>"
            )
        else:
            lines.append(
                f"<Property Name={quoteattr(child.key)} "
                f'Type="{EDM_TYPES.get(child.kind, "Edm.String")}"/>'
            )
    return lines


_EDMX = """<?xml version="1.0" encoding="UTF-8"?>
<edmx:Edmx xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx" Version="4.0">
  <edmx:DataServices>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace="org.opendatakit.submission">
      <ComplexType Name="metadata">
        <Property Name="submissionDate" Type="Edm.DateTimeOffset"/>
        <Property Name="updatedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="deletedAt" Type="Edm.DateTimeOffset"/>
        <Property Name="submitterId" Type="Edm.String"/>
        <Property Name="submitterName" Type="Edm.String"/>
        <Property Name="attachmentsPresent" Type="Edm.Int64"/>
        <Property Name="attachmentsExpected" Type="Edm.Int64"/>
        <Property Name="status" Type="org.opendatakit.submission.Status"/>
        <Property Name="reviewState" Type="org.opendatakit.submission.ReviewState"/>
        <Property Name="deviceId" Type="Edm.String"/>
        <Property Name="edits" Type="Edm.Int64"/>
        <Property Name="formVersion" Type="Edm.String"/>
      </ComplexType>
      <EnumType Name="Status">
        <Member Name="notDecrypted"/>
        <Member Name="missingEncryptedFormData"/>
      </EnumType>
      <EnumType Name="ReviewState">
        <Member Name="hasIssues"/>
        <Member Name="edited"/>
        <Member Name="rejected"/>
        <Member Name="approved"/>
      </EnumType>
    </Schema>
    <Schema xmlns="http://docs.oasis-open.org/odata/ns/edm" Namespace={namespace}>
      {types}
      <EntityContainer Name={container}>
        {sets}
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>
"""

ROOT_ANNOTATIONS = """
          <Annotation Term="Org.OData.Capabilities.V1.ConformanceLevel"
            EnumMember="Org.OData.Capabilities.V1.ConformanceLevelType/Minimal"/>
          <Annotation Term="Org.OData.Capabilities.V1.BatchSupported" Bool="false"/>
          <Annotation Term="Org.OData.Capabilities.V1.CountRestrictions">
            <Record><PropertyValue Property="Countable" Bool="true"/></Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.FilterFunctions">
            <Record>
              <PropertyValue Property="NonCountableProperties">
                <Collection>
                  <String>eq</String>
                </Collection>
              </PropertyValue>
            </Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.FilterFunctions">
            <Record>
              <PropertyValue Property="Filterable" Bool="true"/>
              <PropertyValue Property="RequiresFilter" Bool="false"/>
              <PropertyValue Property="NonFilterableProperties">
                <Collection>{properties}
                </Collection>
              </PropertyValue>
            </Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.SortRestrictions">
            <Record><PropertyValue Property="Sortable" Bool="false"/></Record>
          </Annotation>
          <Annotation Term="Org.OData.Capabilities.V1.ExpandRestrictions">
            <Record><PropertyValue Property="Expandable" Bool="false"/></Record>
          </Annotation>"""


# ---- query options --------------------------------------------------------------------------


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the last submission used and how many of its rows were sent.
    `count`: a repeat table's `@odata.count`, carried to the next pages (counting repeat rows
    reads every submission, so it is done once, on the first page)."""

    submission_id: int
    rows: int = 1
    count: int | None = None


@dataclass(frozen=True)
class Options:
    top: int | None = None
    skip: int = 0
    count: bool = False
    wkt: bool = False
    expand: bool = False
    selected: frozenset[str] | None = None  # schema paths to output; None: all
    meta: frozenset[str] | None = None  # __id, __system[/x], parent id to output; None: all
    filter: Expr | None = None
    cursor: Cursor | None = None

    def shows(self, name: str) -> bool:
        return self.meta is None or name in self.meta

    def system_fields(self) -> tuple[str, ...]:
        if self.meta is None or "__system" in self.meta:
            return SYSTEM_FIELDS
        return tuple(f for f in SYSTEM_FIELDS if f"__system/{f}" in self.meta)


def parse_options(model: Model, table: Table, query: Mapping[str, str]) -> Options:
    """Read `$top`, `$skip`, `$count`, `$wkt`, `$expand`, `$select`, `$filter`, `$skiptoken`.
    Other `$` options are refused; parameters without `$` are not OData's and are ignored."""
    for key in query:
        if key.startswith("$") and key not in QUERY_OPTIONS:
            raise ODataUnsupported(f"The requested feature {key} is not supported by this server.")
    expand = query.get("$expand")
    if expand is not None and expand.strip() != "*":
        raise ExpandUnsupported(
            f"The given OData expand expression is not supported by this "
            f'server: "{expand}". Currently, only "$expand=*" is supported.',
        )
    select = query.get("$select")
    if expand is not None and select is not None:
        raise SelectWithExpand("This server doesn't support $select query parameter with $expand.")
    selected, meta = _selection(model, table, select)
    text = query.get("$filter")
    token = query.get("$skiptoken")
    return Options(
        top=whole_option(query, "$top"),
        skip=whole_option(query, "$skip") or 0,
        count=flag_option(query, "$count"),
        wkt=flag_option(query, "$wkt"),
        expand=expand is not None,
        selected=selected,
        meta=meta,
        filter=parse_filter(text, subtable=not table.is_root) if text and text.strip() else None,
        cursor=decode_skiptoken(token) if token is not None else None,
    )  # `$skiptoken=`: 400


def whole_option(query: Mapping[str, str], key: str) -> int | None:
    value = query.get(key)
    if value is None or value == "":
        return None
    if not re.fullmatch(r"\s*\d{1,12}\s*", value):
        raise ODataInvalid(f"{key} must be a whole number of 0 or more, not {value!r}.")
    return int(value)


def flag_option(query: Mapping[str, str], key: str) -> bool:
    value = query.get(key)
    if value is None or value == "":
        return False
    if value.strip().lower() not in ("true", "false"):
        raise ODataInvalid(f"{key} must be true or false, not {value!r}.")
    return value.strip().lower() == "true"


def _selection(
    model: Model, table: Table, select: str | None
) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """`$select` as (schema paths to output, metadata properties to output), as Central's
    filterFields: a group brings its fields, a field brings the groups around it, a field
    inside a repeat is reachable only from that repeat's own table."""
    if select is None or select.strip() in ("", "*"):
        return None, None
    base = "/".join(n.key for n in table.chain)
    base = f"/{base}" if base else ""
    id_keys = {"__id"} | ({table.parent_key} if table.parent_key else set())
    paths: set[str] = set()
    meta: set[str] = set()
    for prop in (p.strip() for p in select.split(",")):
        if prop in id_keys or (table.is_root and prop in SYSTEM_PROPERTIES):
            meta.add(prop)
            continue
        node = model.by_key_path.get(f"{base}/{prop}")
        if node is None:
            raise UnknownProperty(f"Could not find a property named '{prop}'")
        paths.add(node.path)
        parent = model.parents.get(node.path)
        while parent is not None and parent is not table.node and parent.path not in paths:
            if parent.kind == "repeat":
                raise SelectUnsupported(
                    f"The given OData select property '{prop}' uses "
                    "features not supported by this server.",
                )
            paths.add(parent.path)
            parent = model.parents.get(parent.path)
        if node.kind == "structure":
            paths.update(_group_paths(node))
    return frozenset(paths), frozenset(meta)


def _group_paths(node: Node) -> Iterator[str]:
    for child in node.children:
        yield child.path
        if child.kind == "structure":
            yield from _group_paths(child)


class _SkipToken(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """What a `$skiptoken` holds (after `01`): a closed shape, so a token is exactly this or
    refused (forms.tokens says why that matters)."""

    id: _TokenInt
    rows: _TokenInt
    count: _TokenInt | None = None


def encode_skiptoken(cursor: Cursor) -> str:
    token = _SkipToken(id=cursor.submission_id, rows=cursor.rows, count=cursor.count)
    return _SKIPTOKEN_VERSION + encode_token(token)


def decode_skiptoken(token: str) -> Cursor:
    """The cursor a `$skiptoken` holds; anything else (not ours, damaged, hostile) is
    InvalidSkipToken."""
    try:
        if not token.startswith(_SKIPTOKEN_VERSION):
            raise InvalidToken("not a version 01 token")
        data = decode_token(token[len(_SKIPTOKEN_VERSION) :], _SkipToken)
    except InvalidToken:
        raise InvalidSkipToken(
            "Invalid $skiptoken: it is not one this server wrote (it "
            "may be damaged). Start again from the first page.",
        ) from None
    return Cursor(data.id, data.rows, data.count)


# ---- rows -----------------------------------------------------------------------------------


def system_dict(meta: RowMeta) -> dict[str, Any]:
    """What `__system` says about a submission."""
    return {
        "submissionDate": timestamp(meta.created_at),
        "updatedAt": timestamp(meta.updated_at),
        "deletedAt": timestamp(meta.deleted_at),
        "submitterId": str(meta.submitter_id) if meta.submitter_id is not None else None,
        "submitterName": meta.submitter_name or None,
        "attachmentsPresent": meta.attachments_present,
        "attachmentsExpected": meta.attachments_expected,
        "status": None,  # encrypted submissions are not kept here
        "reviewState": meta.review_state or None,
        "deviceId": meta.device_id or None,
        "edits": meta.edits,
        "formVersion": meta.form_version,
    }


@dataclass(frozen=True)
class Record:
    """One submission for OData: its id (for paging), first instanceID, values, `__system`."""

    id: int
    instance_id: str
    values: dict[str, Any]
    system: RowMeta | None = None


def entity_rows(
    model: Model,
    table: Table,
    record: Record,
    options: Options,
    match: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The rows `record` gives `table`: one for Submissions, one per repeat instance else
    (only those whose `__id` or parent id is `match`'s value, when given)."""
    ctx = _Context.root(record.instance_id)
    if table.is_root:
        row: dict[str, Any] = {}
        if options.shows("__id"):
            row["__id"] = record.instance_id
        fields = options.system_fields()
        if fields and record.system is not None:
            system = system_dict(record.system)
            row["__system"] = {name: system[name] for name in fields}
        row.update(_render(model.root.children, record.values, ctx, options))
        return [row]
    rows: list[dict[str, Any]] = []
    _collect(table, 0, record.values, ctx, options, rows, match)
    return rows


def count_rows(
    model: Model,
    table: Table,
    instance_id: str,
    values: dict[str, Any],
    match: tuple[str, str] | None = None,
) -> int:
    """How many rows a submission gives `table`, without making them."""
    if table.is_root:
        return 1
    if match is not None:
        nothing = Options(selected=frozenset(), meta=frozenset())
        return len(entity_rows(model, table, Record(0, instance_id, values), nothing, match))
    level: list[Any] = [values]
    for node in table.chain:
        below: list[Any] = []
        for item in level:
            raw = item.get(node.name) if isinstance(item, dict) else None
            if node.kind == "repeat":
                below.extend(_instances(raw))
            else:
                below.append(_as_dict(raw))
        level = below
    return len(level)


@dataclass(frozen=True)
class _Context:
    """Where a walk is in a submission: Central's hash parts, the navigation link below the
    submission so far, and the id of the nearest enclosing repeat row (or the instanceID)."""

    instance_id: str
    parts: tuple[str, ...]
    link: tuple[str, ...]
    row_id: str

    @classmethod
    def root(cls, instance_id: str) -> _Context:
        return cls(instance_id, (f"{ROOT_TABLE}#{instance_id}",), (), instance_id)

    def group(self, node: Node) -> _Context:
        return _Context(
            self.instance_id, (*self.parts, f"{node.name}#"), (*self.link, node.key), self.row_id
        )

    def repeat(self, node: Node, index: int) -> _Context:
        parts = (*self.parts, f"{node.name}#{index}")
        row_id = hashlib.sha1("%%".join(parts).encode("utf-8")).hexdigest()
        return _Context(self.instance_id, parts, (*self.link, f"{node.key}('{row_id}')"), row_id)

    def navigation_link(self, node: Node) -> str:
        submission = f"{ROOT_TABLE}('{quote(self.instance_id, safe=_URI_COMPONENT_SAFE)}')"
        return "/".join((submission, *self.link, node.key))


_URI_COMPONENT_SAFE = "-_.!~*'()"  # what JavaScript's encodeURIComponent leaves alone


def _collect(
    table: Table,
    depth: int,
    values: Any,
    ctx: _Context,
    options: Options,
    out: list[dict[str, Any]],
    match: tuple[str, str] | None,
) -> None:
    node = table.chain[depth]
    raw = values.get(node.name) if isinstance(values, dict) else None
    if node.kind == "structure":
        _collect(table, depth + 1, _as_dict(raw), ctx.group(node), options, out, match)
        return
    last = depth == len(table.chain) - 1
    for index, instance in enumerate(_instances(raw)):
        inner = ctx.repeat(node, index)
        if not last:
            _collect(table, depth + 1, instance, inner, options, out, match)
            continue
        if (
            match is not None
            and match != ("__id", inner.row_id)
            and match != (table.parent_key, ctx.row_id)
        ):
            continue
        row: dict[str, Any] = {}
        if options.shows("__id"):
            row["__id"] = inner.row_id
        if table.parent_key and options.shows(table.parent_key):
            row[table.parent_key] = ctx.row_id
        row.update(_render(node.children, instance, inner, options))
        out.append(row)


def _render(children: list[Node], values: Any, ctx: _Context, options: Options) -> dict[str, Any]:
    out: dict[str, Any] = {}
    values = values if isinstance(values, dict) else {}
    for node in children:
        if options.selected is not None and node.path not in options.selected:
            continue
        raw = values.get(node.name)
        if node.kind == "structure":
            out[node.key] = _render(node.children, _as_dict(raw), ctx.group(node), options)
        elif node.kind == "repeat":
            instances = _instances(raw)
            if not instances:
                continue
            out[f"{node.key}@odata.navigationLink"] = ctx.navigation_link(node)
            if options.expand:
                rows = []
                for index, instance in enumerate(instances):
                    inner = ctx.repeat(node, index)
                    rows.append(
                        {"__id": inner.row_id, **_render(node.children, instance, inner, options)}
                    )
                out[node.key] = rows
        else:
            out[node.key] = typed_value(node.kind, raw, wkt=options.wkt)
    return out


def _as_dict(raw: Any) -> dict[str, Any]:
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    return raw if isinstance(raw, dict) else {}


def _instances(raw: Any) -> list[dict[str, Any]]:
    """A repeat's instances: forms.instance keeps one as a dict and several as a list; an
    empty element (`<inovasi/>`) is an instance with no answers, as in Central."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list) else [raw]
    return [item if isinstance(item, dict) else {} for item in items]


_INT = re.compile(r"\s*([+-]?\d+)")
_FLOAT = re.compile(r"\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)")


def typed_value(kind: str, raw: Any, *, wkt: bool = False) -> Any:
    """An answer's text as OData gives it: None when empty, numbers as numbers, geo as GeoJSON
    (or WKT), dateTime offsets completed (`+07` -> `+07:00`), everything else as text."""
    if isinstance(raw, list):
        raw = next((item for item in raw if isinstance(item, str)), None)
    if not isinstance(raw, str) or raw == "":
        return None
    if kind == "int":
        match = _INT.match(raw)
        return int(match.group(1)) if match else None
    if kind == "decimal":
        return _number(raw)
    if kind == "boolean":
        text = raw.strip().lower()
        return True if text in ("true", "1") else False if text in ("false", "0") else None
    if kind == "geopoint":
        return _geopoint(raw, wkt)
    if kind in ("geotrace", "geoshape"):
        return _geoline(kind, raw, wkt)
    if kind == "dateTime":
        text = raw.strip()
        return f"{text}:00" if re.search(r"[+-]\d\d$", text) else text
    return raw


def _number(text: str) -> float | None:
    match = _FLOAT.match(text)
    if not match:
        return None
    value = float(match.group(1))
    return value if math.isfinite(value) else None


def _point(text: str) -> tuple[list[float], float | None] | None:
    parts = [_number(p) for p in text.split()]
    if len(parts) < 2 or parts[0] is None or parts[1] is None:
        return None
    coordinates = [parts[1], parts[0]]  # GeoJSON and WKT: longitude first
    if len(parts) > 2 and parts[2] is not None:
        coordinates.append(parts[2])
    accuracy = parts[3] if len(parts) > 3 else None
    return coordinates, accuracy


def _geopoint(text: str, wkt: bool) -> Any:
    point = _point(text)
    if point is None:
        return None
    coordinates, accuracy = point
    if wkt:
        return f"POINT ({' '.join(_js_number(c) for c in coordinates)})"
    value: dict[str, Any] = {"type": "Point", "coordinates": coordinates}
    if accuracy is not None:
        value["properties"] = {"accuracy": accuracy}
    return value


def _geoline(kind: str, text: str, wkt: bool) -> Any:
    points = [p for p in (_point(s) for s in re.split(r"; ?", text)) if p is not None]
    if not points:
        return None
    if wkt:
        joined = ",".join(" ".join(_js_number(c) for c in coords) for coords, _ in points)
        return f"LINESTRING ({joined})" if kind == "geotrace" else f"POLYGON (({joined}))"
    coordinates = [coords for coords, _ in points]
    value: dict[str, Any] = (
        {"type": "LineString", "coordinates": coordinates}
        if kind == "geotrace"
        else {"type": "Polygon", "coordinates": [coordinates]}
    )
    accuracies = [accuracy for _, accuracy in points]
    if any(a is not None for a in accuracies):
        value["properties"] = {"accuracies": accuracies}
    return value


def _js_number(value: float) -> str:
    return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)


def timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    aware = value if value.tzinfo else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- paging and the JSON body ---------------------------------------------------------------


class Pager:
    """Turns records (newest first, starting at the cursor's submission when there is one) into
    the page's rows: skips what the cursor says was sent, applies `$skip` on repeat tables
    (the database applies it to Submissions) and `$top`, and remembers where the page ended."""

    def __init__(
        self, model: Model, table: Table, options: Options, match: tuple[str, str] | None = None
    ) -> None:
        self.model, self.table, self.options, self.match = model, table, options, match
        self.next_cursor: Cursor | None = None

    def rows(self, records: Iterable[Record]) -> Iterator[dict[str, Any]]:
        top, cursor = self.options.top, self.options.cursor
        skip = self.options.skip if not self.table.is_root and cursor is None else 0
        sent = 0
        last: Cursor | None = None
        for record in records:
            rows = entity_rows(self.model, self.table, record, self.options, self.match)
            start = cursor.rows if cursor is not None and record.id == cursor.submission_id else 0
            for index in range(start, len(rows)):
                if skip:
                    skip -= 1
                    continue
                if top is not None and sent >= top:
                    self.next_cursor = last
                    return
                yield rows[index]
                sent += 1
                last = Cursor(record.id, index + 1)


def feed(
    context: str,
    rows: Iterable[dict[str, Any]],
    *,
    count: int | None = None,
    next_link: Callable[[], str | None] = lambda: None,
) -> Iterator[bytes]:
    """The JSON body in chunks of about CHUNK_BYTES: context and count first, then the rows as
    they come, then the next link (known only once the page is done)."""
    encode = msgspec.json.encode
    buffer = bytearray(b'{"@odata.context":' + encode(context))
    if count is not None:
        buffer += b',"@odata.count":' + encode(count)
    buffer += b',"value":['
    first = True
    for row in rows:
        if not first:
            buffer += b","
        buffer += encode(row)
        first = False
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    buffer += b"]"
    link = next_link()
    if link:
        buffer += b',"@odata.nextLink":' + encode(link)
    buffer += b"}"
    yield bytes(buffer)
