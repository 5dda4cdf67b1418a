"""Read an XForm: id, version, title, fields with types, labels and choices, media it expects.

The schema is what every later step needs to understand a submission: which paths are
repeats, which hold attachment file names, what a column is called in each language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element

import msgspec

from .errors import XFormInvalid
from .xml import parse_xml

XF = "{http://www.w3.org/2002/xforms}"
H = "{http://www.w3.org/1999/xhtml}"
JR = "{http://openrosa.org/javarosa}"
ODK = "{http://www.opendatakit.org/xforms}"
ORX = "{http://openrosa.org/xforms}"
ENTITIES = "{http://www.opendatakit.org/xforms/entities}"

MAX_XFORM_BYTES = 20 * 1024 * 1024

# Body controls and the type they give a field whose bind says only "string".
_CONTROL_TYPES = {
    "select1": "select1",
    "select": "select",
    "rank": "rank",
    "upload": "binary",
    "odk:rank": "rank",
}
_MEDIA_PREFIXES = {
    "jr://images/": "image",
    "jr://audio/": "audio",
    "jr://video/": "video",
    "jr://file/": "file",
    "jr://file-csv/": "file",
}
_MEDIA_RE = re.compile(r"jr://(images|audio|video|file|file-csv)/([^\s'\")<>]+)")


class Choice(msgspec.Struct, frozen=True):
    value: str
    labels: dict[str, str] = {}


class Field(msgspec.Struct, frozen=True):
    """One node of the instance. `path` is relative to the root, like Central's: `/g/opd`."""

    path: str
    name: str
    type: str  # structure, repeat, string, int, decimal, date, time, dateTime, geopoint, ...
    labels: dict[str, str] = {}
    choices: list[Choice] = []
    appearance: str | None = None
    media_type: str | None = None  # image/*, audio/*, video/* for upload controls
    # A select whose choices come from a CSV media file (`select_one_from_file LIST.csv`):
    # that file's name. When it names an entity list, the answer is an entity's uuid.
    itemset_file: str | None = None
    # A calculate with no control (`calculate` in XLSForm): its text is whatever the
    # expression gives, a number as often as not (a score, a count).
    calculated: bool = False

    @property
    def is_binary(self) -> bool:
        return self.type == "binary"


class MediaFile(msgspec.Struct, frozen=True):
    name: str
    kind: str  # image, audio, video, file


class EntityDecl(msgspec.Struct, frozen=True):
    """A form's `meta/entity`: the submission creates and/or updates an entity of `dataset`.

    `container` is the path of the node holding that `meta` ("" for the form's root, a repeat
    for entities in repeats, spec 2025.1); `properties` maps each property to the path of the
    field saved to it (`entities:saveto`), and those fields are in `container`'s scope.
    """

    dataset: str
    container: str
    create: bool
    update: bool
    properties: dict[str, str] = {}


class Schema(msgspec.Struct, frozen=True):
    form_id: str
    version: str
    title: str
    root: str
    languages: list[str]
    fields: list[Field]
    media: list[MediaFile]
    entities: list[EntityDecl] = []
    entities_version: str | None = None

    @property
    def repeat_paths(self) -> frozenset[str]:
        return frozenset(f.path for f in self.fields if f.type == "repeat")

    @property
    def binary_paths(self) -> frozenset[str]:
        return frozenset(f.path for f in self.fields if f.type == "binary")

    def field(self, path: str) -> Field | None:
        return next((f for f in self.fields if f.path == path), None)

    def to_json(self) -> bytes:
        return msgspec.json.encode(self)

    @classmethod
    def from_json(cls, data: bytes | str) -> Schema:
        return msgspec.json.decode(data, type=cls)


@dataclass
class _Reader:
    root: Element
    translations: dict[str, dict[str, str]] = field(
        default_factory=dict
    )  # itext id -> lang -> text
    languages: list[str] = field(default_factory=list)
    media: dict[str, str] = field(default_factory=dict)


def read_xform(data: bytes) -> Schema:
    """Parse XForm bytes into a Schema. Raises XFormInvalid with a readable message."""
    root = parse_xml(data, max_bytes=MAX_XFORM_BYTES, error=XFormInvalid)
    if root.tag != f"{H}html":
        raise XFormInvalid("Not an XForm: the root element must be h:html.")
    head = root.find(f"{H}head")
    model = head.find(f"{XF}model") if head is not None else None
    if model is None:
        raise XFormInvalid("Not an XForm: no h:head/model element.")
    reader = _Reader(root)
    _read_itext(reader, model)
    main = _primary_instance(model)
    form_id = main.get("id")
    if not form_id:
        raise XFormInvalid("The XForm's instance root has no id attribute (the form id).")
    title_el = head.find(f"{H}title")
    binds = {b.get("nodeset"): b for b in model.iter(f"{XF}bind") if b.get("nodeset")}
    controls = _body_controls(root.find(f"{H}body"))
    root_name = _local(main.tag)
    fields: list[Field] = []
    _walk(reader, main, f"/{root_name}", "", binds, controls, fields)
    _collect_media(reader, data, model)
    entities = _entity_decls(main, f"/{root_name}", binds)
    return Schema(
        form_id=form_id,
        version=main.get("version") or "",
        title=(title_el.text or "").strip() if title_el is not None else form_id,
        root=root_name,
        languages=reader.languages,
        fields=fields,
        media=[MediaFile(name, kind) for name, kind in sorted(reader.media.items())],
        entities=entities,
        entities_version=model.get(f"{ENTITIES}entities-version") if entities else None,
    )


def _entity_decls(
    main: Element, root_path: str, binds: dict[str | None, Element]
) -> list[EntityDecl]:
    """Every `meta/entity` of the primary instance (once per repeat, not per row) and the
    fields saved to its properties: a field belongs to the nearest container around it that
    declares an entity, as pyxform scopes `save_to`."""
    found: dict[str, Element] = {}

    def visit(node: Element, path: str) -> None:
        seen: set[str] = set()
        for child in node:
            name = _local(child.tag)
            if name in seen:
                continue
            seen.add(name)
            if name == "meta":
                entity = next((e for e in child if _local(e.tag) == "entity"), None)
                if entity is not None:
                    found[path] = entity
            elif len(child):
                visit(child, f"{path}/{name}")

    visit(main, "")
    properties: dict[str, dict[str, str]] = {container: {} for container in found}
    for nodeset, bind in binds.items():
        saveto = bind.get(f"{ENTITIES}saveto")
        if not saveto or not nodeset or not nodeset.startswith(f"{root_path}/"):
            continue
        field_path = nodeset[len(root_path) :]
        scope = field_path.rsplit("/", 1)[0]
        while scope not in found and scope:
            scope = scope.rsplit("/", 1)[0]
        if scope in found:
            properties[scope][saveto.strip()] = field_path
    return [
        EntityDecl(
            dataset=(entity.get("dataset") or "").strip(),
            container=container,
            create=entity.get("create") is not None,
            update=entity.get("update") is not None,
            properties=properties[container],
        )
        for container, entity in found.items()
    ]


def _primary_instance(model: Element) -> Element:
    for instance in model.findall(f"{XF}instance"):
        if instance.get("id") is None and instance.get("src") is None:
            children = list(instance)
            if len(children) != 1:
                raise XFormInvalid("The primary instance must hold exactly one root element.")
            return children[0]
    raise XFormInvalid("Not an XForm: no primary instance.")


def _read_itext(reader: _Reader, model: Element) -> None:
    itext = model.find(f"{XF}itext")
    if itext is None:
        return
    for translation in itext.findall(f"{XF}translation"):
        lang = translation.get("lang") or ""
        reader.languages.append(lang)
        for text in translation.findall(f"{XF}text"):
            values = text.findall(f"{XF}value")
            plain = next((v for v in values if v.get("form") in (None, "long", "short")), None)
            if plain is not None:
                reader.translations.setdefault(text.get("id", ""), {})[lang] = _text_of(plain)


def _body_controls(body: Element | None) -> dict[str, Element]:
    controls: dict[str, Element] = {}
    if body is None:
        return controls
    for element in body.iter():
        ref = element.get("ref") or element.get("nodeset")
        tag = _local(element.tag)
        if ref and tag not in ("itemset", "value", "label", "hint", "setvalue", "setgeopoint"):
            # A repeat's <group ref> and <repeat nodeset> share a path: keep the repeat.
            if ref not in controls or tag == "repeat":
                controls[ref] = element
    return controls


def _walk(
    reader: _Reader,
    node: Element,
    abs_path: str,
    rel_path: str,
    binds: dict[str | None, Element],
    controls: dict[str, Element],
    out: list[Field],
) -> None:
    seen: set[str] = set()
    for child in node:
        name = _local(child.tag)
        if name in seen:  # later copies of a repeat (pyxform writes a template and one row)
            continue
        seen.add(name)
        child_abs = f"{abs_path}/{name}"
        child_rel = f"{rel_path}/{name}"
        control = controls.get(child_abs)
        bind = binds.get(child_abs)
        is_repeat = (control is not None and _local(control.tag) == "repeat") or child.get(
            f"{JR}template"
        ) is not None
        if is_repeat or len(child):
            kind = "repeat" if is_repeat else "structure"
            label_source = controls.get(child_abs)
            if is_repeat:
                label_source = _repeat_group(reader.root, child_abs) or label_source
            out.append(
                Field(
                    child_rel,
                    name,
                    kind,
                    _labels(reader, label_source),
                    appearance=label_source.get("appearance") if label_source is not None else None,
                )
            )
            _walk(reader, child, child_abs, child_rel, binds, controls, out)
            continue
        out.append(_leaf(reader, child_rel, name, bind, control))


def _leaf(
    reader: _Reader, rel_path: str, name: str, bind: Element | None, control: Element | None
) -> Field:
    bind_type = _local(bind.get("type", "string")) if bind is not None else "string"
    kind = bind_type
    if control is not None:
        control_kind = _CONTROL_TYPES.get(_local(control.tag))
        if control_kind and bind_type in ("string", "binary"):
            kind = control_kind
        if _local(control.tag) == "upload":
            kind = "binary"
    if kind == "xsd:string":
        kind = "string"
    choices = _choices(reader, control) if kind in ("select1", "select", "rank") else []
    itemset_file = _itemset_file(reader, control) if kind in ("select1", "select") else None
    return Field(
        rel_path,
        name,
        kind,
        _labels(reader, control),
        choices,
        appearance=control.get("appearance") if control is not None else None,
        media_type=control.get("mediatype") if control is not None else None,
        itemset_file=itemset_file,
        calculated=control is None and bind is not None and bind.get("calculate") is not None,
    )


def _itemset_file(reader: _Reader, control: Element | None) -> str | None:
    """The CSV file a select's itemset reads (`instance('x')` whose src is jr://file-csv/…)."""
    itemset = control.find(f"{XF}itemset") if control is not None else None
    match = (
        re.match(r"instance\('([^']+)'\)", itemset.get("nodeset", ""))
        if itemset is not None
        else None
    )
    if match is None:
        return None
    for instance in reader.root.iter(f"{XF}instance"):
        src = instance.get("src") or ""
        if instance.get("id") == match.group(1) and src.startswith("jr://file-csv/"):
            return src[len("jr://file-csv/") :]
    return None


def _repeat_group(root: Element, path: str) -> Element | None:
    body = root.find(f"{H}body")
    if body is None:
        return None
    for group in body.iter(f"{XF}group"):
        if group.get("ref") == path and group.find(f"{XF}label") is not None:
            return group
    return None


def _labels(reader: _Reader, control: Element | None) -> dict[str, str]:
    if control is None:
        return {}
    label = control.find(f"{XF}label")
    return _label_texts(reader, label)


def _label_texts(reader: _Reader, label: Element | None) -> dict[str, str]:
    if label is None:
        return {}
    ref = label.get("ref")
    if ref:
        match = re.fullmatch(r"jr:itext\('(.+)'\)", ref)
        if match:
            return dict(reader.translations.get(match.group(1), {}))
        return {}
    text = _text_of(label)
    return {"": text} if text else {}


def _choices(reader: _Reader, control: Element | None) -> list[Choice]:
    if control is None:
        return []
    items = control.findall(f"{XF}item")
    if items:
        return [
            Choice(
                _text_of(item.find(f"{XF}value")) if item.find(f"{XF}value") is not None else "",
                _label_texts(reader, item.find(f"{XF}label")),
            )
            for item in items
        ]
    itemset = control.find(f"{XF}itemset")
    if itemset is None:
        return []
    match = re.match(r"instance\('([^']+)'\)", itemset.get("nodeset", ""))
    if not match:
        return []
    value_ref = (
        itemset.find(f"{XF}value").get("ref") if itemset.find(f"{XF}value") is not None else "name"
    )
    secondary = next(
        (i for i in reader.root.iter(f"{XF}instance") if i.get("id") == match.group(1)), None
    )
    if secondary is None or secondary.get("src"):
        return []  # external itemset (CSV): choices live in a media file
    choices = []
    for item in secondary.iter():
        if _local(item.tag) != "item":
            continue
        value = item.find(f"{XF}{value_ref}")
        itext_id = item.find(f"{XF}itextId")
        label = item.find(f"{XF}label")
        if itext_id is not None:
            labels = dict(reader.translations.get(_text_of(itext_id), {}))
        else:
            labels = {"": _text_of(label)} if label is not None else {}
        choices.append(Choice(_text_of(value) if value is not None else "", labels))
    return choices


def _collect_media(reader: _Reader, data: bytes, model: Element) -> None:
    for instance in model.findall(f"{XF}instance"):
        src = instance.get("src") or ""
        for prefix, kind in _MEDIA_PREFIXES.items():
            if src.startswith(prefix):
                reader.media[src[len(prefix) :]] = kind
    for match in _MEDIA_RE.finditer(data.decode("utf-8", "replace")):
        kind = {"images": "image", "file-csv": "file"}.get(match.group(1), match.group(1))
        reader.media.setdefault(match.group(2), kind)


def _text_of(element: Element | None) -> str:
    if element is None:
        return ""
    return "".join(element.itertext()).strip()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_PRIMARY_ROOT = re.compile(rb"(<instance>\s*<[A-Za-z_][\w.\-]*)((?:\s+[^>]*?)?)(/?>)")
_VERSION_ATTR = re.compile(rb"""\sversion\s*=\s*("[^"]*"|'[^']*')""")


def set_version(xml: bytes, version: str) -> bytes:
    """The same XForm with another version on its primary instance root (publish ?version=).

    The bytes change only inside that one start tag, so everything else stays as it was.
    """
    match = _PRIMARY_ROOT.search(xml)
    if match is None:
        raise XFormInvalid("The XForm's primary instance was not found to set its version.")
    quoted = b'"' + escape_attr(version).encode("utf-8") + b'"'
    attrs = match.group(2)
    if _VERSION_ATTR.search(attrs):
        attrs = _VERSION_ATTR.sub(lambda _: b" version=" + quoted, attrs, count=1)
    else:
        attrs = attrs + b" version=" + quoted
    updated = xml[: match.start(2)] + attrs + xml[match.end(2) :]
    if read_xform(updated).version != version:
        raise XFormInvalid("Could not set the form version.")
    return updated


def escape_attr(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
