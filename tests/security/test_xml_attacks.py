"""Hostile XML at every entry point that parses XML: each attack is a 400 with a readable
reason, nothing is stored, and the server still takes a normal submission afterwards.

Entry points: the OpenRosa submission (multipart), the REST submission create (raw XML) and
edit (PUT), the REST form create and draft (an XForm body), and the supervisor UI's form
upload (a `.xml` file). Every attack is a transformation of a document the entry point would
accept, so the attack is the only thing wrong with it.
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from forms import xml as xml_limits
from forms.compile import compile_xlsform
from forms.errors import SubmissionInvalid
from forms.xml import MAX_ATTRIBUTES, MAX_DEPTH, parse_xml
from storage import submissions
from storage.submissions import Sender
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import DATA, photo_body
from tests.security.conftest import (
    FORM_ID,
    assert_alive,
    nothing_stored,
    readable_error,
    ui_login,
)

_ROOT_START = re.compile(rb"<(?![?!])[\w:.-]+")


def _declared(xml: bytes, encoding: str) -> bytes:
    """The document with its XML declaration replaced by one naming `encoding`."""
    body = re.sub(rb"^<\?xml[^>]*\?>", b"", xml)
    return f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + body


def _with_doctype(doctype: bytes, reference: bytes = b"") -> Callable[[bytes], bytes]:
    def attack(xml: bytes) -> bytes:
        body = re.sub(rb"^<\?xml[^>]*\?>", b"", xml)
        body = body.replace(b"</", reference + b"</", 1)  # use the entity in the first text
        return b'<?xml version="1.0"?>' + doctype + body

    return attack


def _in_root(extra: bytes) -> Callable[[bytes], bytes]:
    """`extra` as the root element's last children."""

    def attack(xml: bytes) -> bytes:
        cut = xml.rindex(b"</")
        return xml[:cut] + extra + xml[cut:]

    return attack


def _root_attributes(attributes: bytes) -> Callable[[bytes], bytes]:
    def attack(xml: bytes) -> bytes:
        end = _ROOT_START.search(xml).end()
        return xml[:end] + b" " + attributes + xml[end:]

    return attack


def _in_first_text(raw: bytes) -> Callable[[bytes], bytes]:
    return lambda xml: xml.replace(b"</", raw + b"</", 1)


LAUGHS = (
    b'<!DOCTYPE d [<!ENTITY a "lol">'
    + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9)
    )
    + b"]>"
)
QUADRATIC = b'<!DOCTYPE d [<!ENTITY big "' + b"x" * 50_000 + b'">]>'


@dataclass(frozen=True)
class Attack:
    name: str
    make: Callable[[bytes], bytes]
    reason: str  # a fragment of the 400's message


ATTACKS = [
    Attack(
        "xxe-file",
        _with_doctype(b'<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>', b"&x;"),
        "DOCTYPE",
    ),
    Attack(
        "xxe-network",
        _with_doctype(b'<!DOCTYPE d [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]>', b"&x;"),
        "DOCTYPE",
    ),
    Attack(
        "xxe-parameter-entity",
        _with_doctype(b'<!DOCTYPE d [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]>'),
        "DOCTYPE",
    ),
    Attack(
        "external-dtd", _with_doctype(b'<!DOCTYPE d SYSTEM "http://127.0.0.1:9/d.dtd">'), "DOCTYPE"
    ),
    Attack("billion-laughs", _with_doctype(LAUGHS, b"&j;"), "DOCTYPE"),
    Attack("quadratic-blowup", _with_doctype(QUADRATIC, b"&big;" * 2000), "DOCTYPE"),
    Attack(
        "many-elements", lambda xml: _in_root(b"<x/>" * xml_limits.MAX_ELEMENTS)(xml), "elements"
    ),
    Attack("deep-nesting", _in_root(b"<x>" * MAX_DEPTH + b"</x>" * MAX_DEPTH), "deeper"),
    Attack(
        "many-attributes",
        _root_attributes(b" ".join(b'a%d="1"' % i for i in range(MAX_ATTRIBUTES + 1))),
        "attributes",
    ),
    Attack(
        "huge-start-tag", _root_attributes(b'a="' + b"x" * (1024 * 1024 + 1) + b'"'), "start tag"
    ),
    Attack("unknown-encoding", lambda xml: _declared(xml, "x-no-such-codec"), "encoding"),
    Attack("utf-7", lambda xml: _declared(xml, "UTF-7"), "encoding"),
    Attack("shift-jis", lambda xml: _declared(xml, "Shift_JIS"), "encoding"),
    Attack("utf-16-declared-utf-8-sent", lambda xml: _declared(xml, "UTF-16"), "well-formed"),
    Attack("invalid-utf-8", _in_first_text(b"\xff\xfe\xc3"), "well-formed"),
    Attack("nul-byte", _in_first_text(b"\x00"), "well-formed"),
    Attack(
        "latin-1-bytes-declared-utf-8", _in_first_text("Jos\u00e9".encode("latin-1")), "well-formed"
    ),
]
# Already covered by tests/server/test_openrosa.py on the OpenRosa submission.
COVERED = {("openrosa-submission", n) for n in ("xxe-file", "xxe-network", "billion-laughs")}


# ---- the entry points --------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fewer_elements(monkeypatch):
    """The element limit at 2,000 instead of 200,000: the same check, refused in
    milliseconds (test_a_limit_stops_the_parse_before_the_tree_is_built times the real one's
    way of working on bigger documents)."""
    monkeypatch.setattr(xml_limits, "MAX_ELEMENTS", 2000)


@pytest.fixture(scope="module")
def site(services):
    """One world per backend for this module: attacks store nothing, so they can share it."""
    from tests.security.conftest import make_world

    world = make_world(services)
    edited = new_instance_id()
    submissions.ingest(
        services.db,
        services.blobs,
        world.project_id,
        instance_xml(FORM_ID, "1", edited, photo_body(main=None)),
        sender=Sender(actor_id=None),
    )
    xform = compile_xlsform((DATA / "tanpa_media.md").read_bytes(), "tanpa_media.md").xml
    draft_of = compile_xlsform((DATA / "foto_sederhana.md").read_bytes(), "f.md").xml
    with make_client(services) as client:
        ui_login(client, world.manager[0])
        yield world, edited, xform, draft_of, client


def _submission(world, *, deprecated: str | None = None) -> bytes:
    return instance_xml(
        FORM_ID, "1", new_instance_id(), photo_body("Budi", main=None), deprecated_id=deprecated
    )


def openrosa_submission(client, world, edited, xform, draft_of, attack):
    return client.post(
        f"{world.openrosa}/submission",
        headers=HEADERS,
        files=[("xml_submission_file", ("s.xml", attack(_submission(world)), "text/xml"))],
    )


def rest_create(client, world, edited, xform, draft_of, attack):
    return client.post(
        f"{world.form}/submissions",
        content=attack(_submission(world)),
        headers={**world.bearer, "Content-Type": "application/xml"},
    )


def rest_edit(client, world, edited, xform, draft_of, attack):
    return client.put(
        f"{world.form}/submissions/{edited}",
        content=attack(_submission(world, deprecated=edited)),
        headers={**world.bearer, "Content-Type": "application/xml"},
    )


def rest_form(client, world, edited, xform, draft_of, attack):
    return client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=attack(xform),
        params={"publish": "true"},
        headers={**world.bearer, "Content-Type": "application/xml"},
    )


def rest_draft(client, world, edited, xform, draft_of, attack):
    return client.post(
        f"{world.form}/draft",
        content=attack(draft_of),
        headers={**world.bearer, "Content-Type": "application/xml"},
    )


def ui_form_upload(client, world, edited, xform, draft_of, attack):
    return client.post(
        f"/p/{world.project_id}/forms/upload",
        data={"_csrf_token": client.cookies["jebol_csrf"]},
        files={"file": ("form.xml", attack(xform), "text/xml")},
    )


ENTRY_POINTS = {
    "openrosa-submission": openrosa_submission,
    "rest-create": rest_create,
    "rest-edit": rest_edit,
    "rest-form": rest_form,
    "rest-draft": rest_draft,
    "ui-form-upload": ui_form_upload,
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("attack", [a for a in ATTACKS], ids=[a.name for a in ATTACKS])
def test_hostile_xml_is_a_400_that_stores_nothing(services, site, entry, attack):
    if (entry, attack.name) in COVERED:
        pytest.skip("covered by tests/server/test_openrosa.py")
    world, edited, xform, draft_of, client = site
    with nothing_stored(services):
        response = ENTRY_POINTS[entry](client, world, edited, xform, draft_of, attack.make)
        assert response.status_code == 400, (response.status_code, response.text[:300])
        assert attack.reason in readable_error(response)
    assert_alive(client, world)


def test_every_entry_point_accepts_the_untouched_document(services, site):
    """The attacks are transformations of these documents: each must pass unchanged, or a
    400 above could come from something other than the attack."""
    world, edited, xform, draft_of, client = site
    for name, entry in ENTRY_POINTS.items():
        response = entry(client, world, edited, xform, draft_of, lambda xml: xml)
        assert response.status_code < 400, (name, response.status_code, response.text[:300])


# ---- the parser's limits are enforced while parsing --------------------------------------


@pytest.mark.parametrize(
    "xml",
    [
        b"<d>" + b"<a/>" * 1_000_000 + b"</d>",
        b"<a>" * 500_000 + b"</a>" * 500_000,
        b"<d " + b" ".join(b'a%d=""' % i for i in range(1_000_000)) + b"/>",
    ],
    ids=["a-million-elements", "half-a-million-levels", "10MB-start-tag"],
)
def test_a_limit_stops_the_parse_before_the_tree_is_built(xml):
    """Little memory: the limits are checked as the parser goes, not on the finished tree
    (which took ~170 MB for a million elements). The element limit is the small one of
    `fewer_elements`; the real one works the same way."""
    tracemalloc.start()
    try:
        with pytest.raises(SubmissionInvalid):
            parse_xml(xml, max_bytes=len(xml), error=SubmissionInvalid)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 1024 * 1024, peak
