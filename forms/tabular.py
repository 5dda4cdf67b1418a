"""Schema + submission values -> tables of rows, the way ODK Central's briefcase.js lays them out.

Pure: no database, no files. One `Layout` per export says which tables there are (the root
table and one per repeat, in the schema's depth-first order) and which columns each has;
`Layout.rows` turns one submission into its rows for every table.

Central's conventions, kept here so every export (CSV, XLSX, GeoJSON) agrees:
- root columns: `SubmissionDate`, the fields, then `KEY, SubmitterID, SubmitterName,
  AttachmentsPresent, AttachmentsExpected, Status, ReviewState, DeviceID, Edits, FormVersion`;
- a column is named by its path relative to its table, groups joined with `-`
  (`g_kunjungan-opd`); with `group_paths=False` by the field name alone;
- a geopoint is four columns `-Latitude -Longitude -Altitude -Accuracy`;
- a select_multiple keeps its space-separated value; `split_select_multiples` adds one
  `name/choice` column per choice holding 1 or 0;
- a repeat table has the repeat's fields then `PARENT_KEY, KEY`, with keys such as
  `uuid:…/inovasi[1]/bukti[2]` (groups on the way are named, repeats carry their 1-based index);
- `KEY` is the submission's first instanceID; the current one is in `meta-instanceID`.

Central derives the split columns from the values seen in the data; here they come from the
form's choices, so no pass over the data is needed before the first row.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from .instance import values_at
from .xform import Field, Schema

META_COLUMNS = (
    "KEY",
    "SubmitterID",
    "SubmitterName",
    "AttachmentsPresent",
    "AttachmentsExpected",
    "Status",
    "ReviewState",
    "DeviceID",
    "Edits",
    "FormVersion",
)
COUNT_COLUMNS = frozenset({"SubmitterID", "AttachmentsPresent", "AttachmentsExpected", "Edits"})
GEO_PARTS = ("Latitude", "Longitude", "Altitude", "Accuracy")
SELECT_MULTIPLE = "select"

Row = list[str]  # every cell is text, "" when empty (numbers too: CSV is text)


@dataclass(frozen=True, slots=True)
class RowMeta:
    """A submission's system facts besides its answers: the one read model behind an export's
    root row and OData's `__system` (storage fills it from its columns)."""

    instance_id: str  # the first instanceID: the submission's KEY
    created_at: datetime  # the submission date
    submitter_id: int | None = None
    submitter_name: str | None = None
    attachments_present: int = 0
    attachments_expected: int = 0
    review_state: str | None = None
    device_id: str | None = None
    edits: int = 0
    form_version: str | None = None  # of the first version
    status: str | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    instance_name: str | None = None  # of the current version
    current_instance_id: str | None = None  # the current version's instanceID


@dataclass(frozen=True, slots=True)
class Column:
    name: str  # the CSV header, as Central writes it
    kind: str  # a field type (string, int, date, geopoint, select...), or meta, key, flag
    field: Field | None = None
    part: int | None = None  # geopoint: 0-3; flag: index of the choice
    choice: str | None = None  # flag: the choice value

    def label(self, lang: str | None = None) -> str:
        """A human header: the field's label (in `lang` when there is one), else the name."""
        if self.field is None:
            return self.name
        text = label_in(self.field.labels, lang, self.field.name)
        if self.kind == "geopoint":
            return f"{text} ({GEO_PARTS[self.part or 0].lower()})"
        if self.kind == "flag":
            choice = next((c for c in self.field.choices if c.value == self.choice), None)
            shown = label_in(choice.labels, lang, self.choice or "") if choice else self.choice
            return f"{text}: {shown}"
        return text


PLAIN, GEOPOINT, SPLIT = 0, 1, 2


@dataclass(slots=True)
class _Node:
    """A table's fields as a tree of the groups they sit in, so filling a row looks each group
    up once. Leaves: (name, column index, PLAIN/GEOPOINT/SPLIT, the choices of a split)."""

    leaves: list[tuple[str, int, int, tuple[str, ...]]] = field(default_factory=list)
    groups: dict[str, _Node] = field(default_factory=dict)

    def add(
        self, parts: tuple[str, ...], index: int, kind: int, choices: tuple[str, ...] = ()
    ) -> None:
        node = self
        for group in parts[:-1]:
            node = node.groups.setdefault(group, _Node())
        node.leaves.append((parts[-1], index, kind, choices))


@dataclass(slots=True)
class _Child:
    """A repeat directly under a table: the groups on the way, and its own table."""

    groups: tuple[str, ...]
    name: str
    table: int


@dataclass
class Table:
    name: str  # file stem: the form id, or `{formId}-{repeat}` (`~n` when names clash)
    path: str  # "" for the root, else the repeat's path
    repeat: Field | None
    columns: list[Column] = field(default_factory=list)
    _fields: _Node = field(default_factory=_Node, repr=False)
    _children: list[_Child] = field(default_factory=list, repr=False)
    _flags: list[int] = field(default_factory=list, repr=False)
    _filler: Callable[[Row, dict[str, Any]], None] | None = field(default=None, repr=False)

    def fill(self, row: Row, context: dict[str, Any]) -> None:
        if self._filler is None:
            self._filler = _filler_for(self._fields)
        self._filler(row, context)

    @property
    def header(self) -> list[str]:
        return [c.name for c in self.columns]

    def empty_row(self) -> Row:
        # Central fills every split select_multiple column with 0 before reading the values.
        row: Row = [""] * len(self.columns)
        for index in self._flags:
            row[index] = "0"
        return row


class Layout:
    """The tables of one form's export."""

    def __init__(
        self,
        schema: Schema,
        *,
        group_paths: bool = True,
        split_select_multiples: bool = False,
        root_only: bool = False,
    ) -> None:
        self.schema = schema
        self.tables: list[Table] = [
            Table(schema.form_id, "", None, [Column("SubmissionDate", "meta")])
        ]
        stack = [0]  # open tables, innermost last
        repeats = schema.repeat_paths
        for item in schema.fields:
            while len(stack) > 1 and not item.path.startswith(self.tables[stack[-1]].path + "/"):
                self._close_repeat(stack.pop())
            if root_only and any(item.path == r or item.path.startswith(r + "/") for r in repeats):
                continue
            table = self.tables[stack[-1]]
            if item.type == "repeat":
                self.tables.append(Table("", item.path, item))
                child = len(self.tables) - 1
                between = item.path[len(table.path) + 1 :].split("/")
                table._children.append(_Child(tuple(between[:-1]), item.name, child))
                stack.append(child)
                continue
            if item.type == "structure":
                continue
            relative = item.path[len(table.path) + 1 :]
            base = relative.replace("/", "-") if group_paths else item.name
            parts = tuple(relative.split("/"))
            index = len(table.columns)
            if item.type == "geopoint":
                table.columns += [
                    Column(f"{base}-{p}", "geopoint", item, i) for i, p in enumerate(GEO_PARTS)
                ]
                table._fields.add(parts, index, GEOPOINT)
            elif item.type == SELECT_MULTIPLE and split_select_multiples and item.choices:
                table.columns.append(Column(base, item.type, item))
                values = tuple(c.value for c in item.choices)
                for i, value in enumerate(values):
                    table._flags.append(len(table.columns))
                    table.columns.append(Column(f"{base}/{value}", "flag", item, i, value))
                table._fields.add(parts, index, SPLIT, values)
            else:
                table.columns.append(Column(base, item.type, item))
                table._fields.add(parts, index, PLAIN)
        while len(stack) > 1:
            self._close_repeat(stack.pop())
        self.tables[0].columns += [
            Column(name, "key" if name == "KEY" else "count" if name in COUNT_COLUMNS else "meta")
            for name in META_COLUMNS
        ]
        self._name_repeats()

    @property
    def root(self) -> Table:
        return self.tables[0]

    @property
    def repeats(self) -> list[Table]:
        return self.tables[1:]

    def _close_repeat(self, index: int) -> None:
        self.tables[index].columns += [Column("PARENT_KEY", "key"), Column("KEY", "key")]

    def _name_repeats(self) -> None:
        form_id = self.schema.form_id
        totals: dict[str, int] = {}
        for table in self.repeats:
            totals[table.repeat.name] = totals.get(table.repeat.name, 0) + 1  # type: ignore[union-attr]
        counts: dict[str, int] = {}
        for table in self.repeats:
            name = table.repeat.name  # type: ignore[union-attr]
            if totals[name] > 1:
                counts[name] = counts.get(name, 0) + 1
                table.name = f"{form_id}-{name}~{counts[name]}"
            else:
                table.name = f"{form_id}-{name}"

    def rows(self, meta: RowMeta, values: Any) -> list[tuple[int, Row]]:
        """One submission as (table index, row) pairs: the root row first, then the repeat
        rows of each table in document order."""
        out: list[tuple[int, Row]] = []
        root = self.tables[0]
        row = root.empty_row()
        context = values if isinstance(values, dict) else {}
        root.fill(row, context)
        tail = len(row) - len(META_COLUMNS)
        row[0] = iso_timestamp(meta.created_at)
        known = meta.submitter_id is not None
        row[tail:] = [
            meta.instance_id,
            str(meta.submitter_id) if known else "",
            meta.submitter_name or "" if known else "",
            str(meta.attachments_present),
            str(meta.attachments_expected),
            meta.status or "",
            meta.review_state or "",
            meta.device_id or "",
            str(meta.edits),
            meta.form_version or "",
        ]
        out.append((0, row))
        if root._children:
            self._repeat_rows(root, context, meta.instance_id, out)
        return out

    def _repeat_rows(
        self, table: Table, context: dict[str, Any], key: str, out: list[tuple[int, Row]]
    ) -> None:
        for child in table._children:
            node: Any = context
            for group in child.groups:
                node = _first(node.get(group)) if isinstance(node, dict) else None
            instances = node.get(child.name) if isinstance(node, dict) else None
            if instances is None:
                continue
            if not isinstance(instances, list):
                instances = [instances]
            prefix = "/".join((key, *child.groups, child.name))
            sub = self.tables[child.table]
            for number, instance in enumerate(instances, 1):
                row_key = f"{prefix}[{number}]"
                row = sub.empty_row()
                inner = instance if isinstance(instance, dict) else {}
                sub.fill(row, inner)
                row[-2], row[-1] = key, row_key
                out.append((child.table, row))
                if sub._children:
                    self._repeat_rows(sub, inner, row_key, out)


def _filler_for(node: _Node) -> Callable[[Row, dict[str, Any]], None]:
    """The function that copies a table's answers from its context into a row: each group is
    looked up once, each field is one `get` and one type check. An element repeated where the
    form has one counts by its first copy."""
    leaves = [
        (name, index, kind, {value: index + 1 + i for i, value in enumerate(choices)})
        for name, index, kind, choices in node.leaves
    ]
    groups = [(name, _filler_for(child)) for name, child in node.groups.items()]

    def fill(row: Row, context: dict[str, Any]) -> None:
        for name, index, kind, flags in leaves:
            value = context.get(name)
            if value.__class__ is list:
                value = value[0] if value else None
            if value.__class__ is not str:
                continue
            if kind == GEOPOINT:
                parts = value.split()[:4]
                row[index : index + len(parts)] = parts
                continue
            row[index] = value
            if kind == SPLIT:
                for choice in value.split():
                    flag = flags.get(choice)
                    if flag is not None:
                        row[flag] = "1"
        for name, fill_group in groups:
            inner = context.get(name)
            if inner.__class__ is list:
                inner = inner[0] if inner else None
            if inner.__class__ is dict:
                fill_group(row, inner)

    return fill


def _first(node: Any) -> Any:
    if isinstance(node, list):
        return node[0] if node else None
    return node


def iso_timestamp(value: datetime) -> str:
    """JavaScript's toISOString, as Central writes SubmissionDate: UTC with milliseconds."""
    if value.tzinfo is not UTC:
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def label_in(labels: dict[str, str], lang: str | None, fallback: str) -> str:
    """A label in a language given as a code (`id`) or a full name (`Indonesian (id)`)."""
    if lang:
        for key, text in labels.items():
            if key == lang or key.endswith(f"({lang})"):
                return text
    return labels.get("") or next(iter(labels.values()), None) or fallback


def typed(column: Column, value: Any) -> Any:
    """A cell as a typed value for formats that have types (XLSX, GeoJSON): None when empty,
    numbers for int, decimal, geopoint parts, counts and split flags, `date` for dates; text
    otherwise (and whenever parsing fails)."""
    if value == "" or value is None:
        return None
    if not isinstance(value, str):
        return value
    kind = column.kind
    if column.field is not None and column.field.calculated and kind == "string":
        # A calculate's number is a number (a score to sum); other text stays text.
        return _calculated_number(value)
    try:
        if kind in ("int", "count", "flag"):
            return int(value)
        if kind in ("decimal", "geopoint"):
            return float(value)
        if kind == "date":
            return date.fromisoformat(value)
    except ValueError:
        return value
    return value


# A number as an expression writes it: no leading zeros (a phone number stays text), no
# exponent, no "nan"/"inf".
_CALCULATED_NUMBER = re.compile(r"-?(0|[1-9][0-9]{0,14})(\.[0-9]+)?")


def _calculated_number(value: str) -> Any:
    if _CALCULATED_NUMBER.fullmatch(value) is None:
        return value
    return float(value) if "." in value else int(value)


def choice_labels(column: Column, lang: str | None) -> dict[str, str] | None:
    """For a select column, its choices' labels by value (None for other columns)."""
    if (
        column.field is None
        or column.kind not in ("select1", SELECT_MULTIPLE, "rank")
        or not column.field.choices
    ):
        return None
    return {c.value: label_in(c.labels, lang, c.value) for c in column.field.choices}


def with_labels(column: Column, labels: dict[str, str], value: Any) -> Any:
    """A select answer with its choices' labels instead of their values (`; ` between many)."""
    if not isinstance(value, str):
        return value
    if column.kind == "select1":
        return labels.get(value, value)
    return "; ".join(labels.get(v, v) for v in value.split())


def geopoint_field(schema: Schema) -> Field | None:
    """The first geopoint outside any repeat: a submission's place (Central's default)."""
    repeats = schema.repeat_paths
    for item in schema.fields:
        if item.type == "geopoint" and not any(item.path.startswith(r + "/") for r in repeats):
            return item
    return None


def iter_values(values: Any, path: str) -> Iterator[Any]:
    """Every value at a schema path, descending into each repeat row."""
    yield from values_at(values, path.strip("/").split("/"))
