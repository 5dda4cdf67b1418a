"""Hostile uploads: XLSForms that are zip bombs or not workbooks at all, and file names that
try to be paths. Each is a 4xx with a readable reason, stores nothing, and the server takes a
normal submission afterwards."""

from __future__ import annotations

import contextlib
import functools
import io
import random
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from forms.compile import XLS_MAGIC, XLSX_MAGIC, compile_xlsform
from forms.errors import XLSFormInvalid
from storage import submissions
from storage.blobs import blob_key
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import jpeg, photo_body, xlsx_from_md
from tests.security.conftest import (
    FORM_ID,
    assert_alive,
    make_world,
    nothing_stored,
    readable_error,
    ui_login,
)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET = "xl/worksheets/sheet1.xml"
LAUGHS = (
    b'<!DOCTYPE d [<!ENTITY a "lol">'
    + b"".join(
        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode() for i in range(9)
    )
    + b"]>"
)


@pytest.fixture(scope="module")
def workbook(tmp_path_factory) -> bytes:
    return xlsx_from_md("tanpa_media", tmp_path_factory.mktemp("xlsx"))


def _rewritten(xlsx: bytes, change: Callable[[str, bytes], bytes]) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(xlsx)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            target.writestr(info.filename, change(info.filename, source.read(info.filename)))
    return out.getvalue()


@functools.cache
def zip_bomb(xlsx: bytes) -> bytes:
    """The workbook with its sheet replaced by 300 MB of zeros (about 300 KB deflated)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(xlsx)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as target,
    ):
        for info in source.infolist():
            if info.filename != SHEET:
                target.writestr(info.filename, source.read(info.filename))
                continue
            with target.open(SHEET, "w") as sheet:  # by name: the archive's deflate level 1
                for _ in range(300):
                    sheet.write(bytes(1024 * 1024))
    return out.getvalue()


def lying_zip_bomb(xlsx: bytes) -> bytes:
    """The zip bomb whose headers claim the sheet unpacks to 100 bytes (the size check reads
    the headers; the inflater must not believe them)."""
    data = bytearray(zip_bomb(xlsx))
    central = data.rfind(b"PK\x01\x02", 0, data.rfind(SHEET.encode()))
    local = struct.unpack_from("<I", data, central + 42)[0]  # its local header's offset
    struct.pack_into("<I", data, central + 24, 100)  # uncompressed size, central directory
    struct.pack_into("<I", data, local + 22, 100)  # and local header
    return bytes(data)


def _in_shared_strings(prolog: bytes, reference: bytes) -> Callable[[bytes], bytes]:
    def attack(xlsx: bytes) -> bytes:
        def change(name: str, data: bytes) -> bytes:
            if name != "xl/sharedStrings.xml":
                return data
            return data.replace(b"?>", b"?>" + prolog, 1).replace(b"<t>", b"<t>" + reference, 1)

        return _rewritten(xlsx, change)

    return attack


def _many_entries(xlsx: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for number in range(5_000):
            archive.writestr(f"e/{number}", b"")
    return out.getvalue()


def _zip_of(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return out.getvalue()


@dataclass(frozen=True)
class Upload:
    name: str
    make: Callable[[bytes], bytes]
    reason: str  # a pattern the 400's message matches


UPLOADS = [
    Upload("zip-bomb", zip_bomb, "200 MB"),
    Upload("zip-bomb-with-lying-sizes", lying_zip_bomb, "read"),
    Upload(
        "xxe-in-shared-strings",
        _in_shared_strings(b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', b"&e;"),
        "read",
    ),
    Upload("billion-laughs-in-shared-strings", _in_shared_strings(LAUGHS, b"&j;"), "read"),
    Upload("truncated-xlsx", lambda x: x[: len(x) // 2], "damaged"),
    Upload("zip-without-a-workbook", lambda x: _zip_of({"notes.txt": b"hello"}), "read"),
    Upload(
        "zip-with-traversal-entries",
        lambda x: _zip_of(
            {"../../../../tmp/jebol-owned": b"owned", "/tmp/jebol-owned-2": b"owned"}
        ),
        "read",
    ),
    Upload("five-thousand-entries", _many_entries, "read"),
    Upload("ole2-magic-then-junk", lambda x: XLS_MAGIC + bytes(4096), "read"),
    Upload("empty-body", lambda x: b"", "empty|not a spreadsheet"),
]
COVERED = {("rest-form", "zip-bomb")}  # tests/server/test_form_upload.py


@pytest.fixture(scope="module")
def bodies(workbook) -> dict[str, bytes]:
    """Each hostile upload, built once (a zip bomb takes a second to deflate)."""
    return {upload.name: upload.make(workbook) for upload in UPLOADS}


@pytest.fixture(scope="module")
def site(services):
    world = make_world(services)
    with make_client(services) as client:
        ui_login(client, world.manager[0])
        yield world, client


def rest_form(client, world, body):
    return client.post(
        f"/v1/projects/{world.project_id}/forms",
        content=body,
        params={"publish": "true", "ignoreWarnings": "true"},
        headers={**world.bearer, "Content-Type": XLSX},
    )


def rest_draft(client, world, body):
    # An empty body means "copy the published version" here: send one byte then.
    return client.post(
        f"{world.form}/draft",
        content=body or b"\0",
        params={"ignoreWarnings": "true"},
        headers={**world.bearer, "Content-Type": XLSX},
    )


def ui_form_upload(client, world, body):
    return client.post(
        f"/p/{world.project_id}/forms/upload",
        data={"_csrf_token": client.cookies["jebol_csrf"]},
        files={"file": ("form.xlsx", body, XLSX)},
    )


FORM_UPLOADS = {"rest-form": rest_form, "rest-draft": rest_draft, "ui-form-upload": ui_form_upload}


@pytest.mark.parametrize("entry", FORM_UPLOADS)
@pytest.mark.parametrize("upload", UPLOADS, ids=[u.name for u in UPLOADS])
def test_hostile_xlsform_is_a_400_that_stores_nothing(services, site, bodies, entry, upload):
    if (entry, upload.name) in COVERED:
        pytest.skip("covered by tests/server/test_form_upload.py")
    world, client = site
    body = bodies[upload.name]
    with nothing_stored(services):
        response = FORM_UPLOADS[entry](client, world, body)
        assert response.status_code == 400, (response.status_code, response.text[:300])
        message = readable_error(response)
        assert re.search(upload.reason, message), message
    assert not Path("/tmp/jebol-owned").exists() and not Path("/tmp/jebol-owned-2").exists()
    assert_alive(client, world)


def test_damaged_workbooks_are_refused_as_such(workbook):
    """Junk behind the .xls magic number, bit flips and truncations of a real .xlsx: each is
    XLSFormInvalid (a 400), never another exception from openpyxl, xlrd or zlib (a 500)."""
    rng = random.Random(7)
    damaged = [XLS_MAGIC + rng.randbytes(rng.randrange(600, 4000)) for _ in range(20)]
    damaged += [XLS_MAGIC + bytes(20) + b"\xfe\xff" + rng.randbytes(2000) for _ in range(10)]
    for _ in range(20):
        flipped = bytearray(workbook)
        for _ in range(rng.randrange(1, 20)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        damaged.append(bytes(flipped))
    damaged += [workbook[:cut] for cut in range(200, len(workbook), len(workbook) // 10)]
    for data in damaged:
        try:
            compile_xlsform(data, "form.xlsx")
        except XLSFormInvalid as error:
            assert str(error)
        else:
            assert data == workbook or data.startswith(XLSX_MAGIC)  # a harmless flip


def test_the_untouched_workbooks_are_accepted_everywhere(site, workbook, tmp_path):
    """The attacks are made from these workbooks: each passes unchanged, or a 400 above could
    come from something other than the attack."""
    world, client = site
    own_draft = xlsx_from_md(FORM_ID, tmp_path)  # a draft must keep its form's id
    for name, entry in FORM_UPLOADS.items():
        response = entry(client, world, own_draft if name == "rest-draft" else workbook)
        assert response.status_code < 400, (name, response.status_code, response.text[:300])


# ---- names that try to be paths ----------------------------------------------------------

HOSTILE_NAMES = [
    "a\x00b.jpg",
    "a\nb.jpg",
    "a\r\nX-Injected: 1.jpg",
    "/etc/passwd",
    ".",
    "x" * 300 + ".jpg",
    "foto\x1b[2J.jpg",
]
# "../../etc/passwd", "a/b.jpg", "c\\d.jpg" and ".." are in tests/server/test_openrosa.py


def _xml_naming(name: str) -> bytes:
    escaped = name.replace("&", "&amp;").replace("<", "&lt;")
    return instance_xml(FORM_ID, "1", new_instance_id(), photo_body(main=escaped))


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_submission_naming_a_hostile_file_is_a_400(services, site, name):
    """The XML names the file (that is what makes it an attachment): refused, with or
    without the part carrying it."""
    world, client = site
    xml = _xml_naming(name)
    if "\x00" in name or "\x1b" in name:  # not even XML: refused by the parser
        xml = xml.replace(b"&lt;", b"<")
    with nothing_stored(services):
        response = client.post(
            f"{world.openrosa}/submission",
            headers=HEADERS,
            files=[
                ("xml_submission_file", ("s.xml", xml, "text/xml")),
                ("photo", (name, jpeg(seed=40), "image/jpeg")),
            ],
        )
        readable_error(response)
        assert response.status_code == 400
    assert_alive(client, world)


RAW_PATH_NAMES = [
    "..%2F..%2Fetc%2Fpasswd",
    "%2e%2e",
    "a%00b.jpg",
    "%2Fetc%2Fpasswd",
    "a%0D%0AX-Injected:%201.jpg",
    "..%5C..%5Cwin.ini",
]


@pytest.mark.parametrize("raw", RAW_PATH_NAMES)
def test_hostile_names_in_upload_paths_store_nothing(services, site, raw):
    """A name in the URL of an attachment upload (submission or draft media) names nothing the
    server expects: a 4xx, and no file anywhere."""
    world, client = site
    instance_id = new_instance_id()
    created = client.post(
        f"{world.form}/submissions",
        content=instance_xml(FORM_ID, "1", instance_id, photo_body(main="utama.jpg")),
        headers={**world.bearer, "Content-Type": "application/xml"},
    )
    assert created.status_code == 200
    assert client.post(f"{world.form}/draft", headers=world.bearer).status_code == 200
    for url in (
        f"{world.form}/submissions/{quote(instance_id)}/attachments/{raw}",
        f"{world.form}/draft/attachments/{raw}",
    ):
        with nothing_stored(services):
            response = client.post(
                url, content=jpeg(seed=41), headers={**world.bearer, "Content-Type": "image/jpeg"}
            )
            readable_error(response)
    assert_alive(client, world)


def _multipart(parts: list[tuple[bytes, bytes]], boundary: bytes = b"jebolboundary") -> bytes:
    return (
        b"".join(
            b"--"
            + boundary
            + b"\r\nContent-Disposition: form-data; "
            + header
            + b"\r\nContent-Type: application/octet-stream\r\n\r\n"
            + data
            + b"\r\n"
            for header, data in parts
        )
        + b"--"
        + boundary
        + b"--\r\n"
    )


@pytest.mark.parametrize(
    "header, status",
    [
        (b'name="a\x00b"; filename="a\x00b.jpg"', 201),
        (b'name="q\\"x"; filename="/etc/passwd"', 201),
        (b'name="' + b"n" * 5000 + b'"; filename="f.jpg"', 400),
        (b'name="x"; filename="../\r.jpg"', 400),
    ],
    ids=["nul", "quote-and-absolute-path", "5000-byte-name", "bare-cr"],
)
def test_hostile_multipart_part_headers(services, site, header, status):
    """Raw multipart parts with NUL, quotes, absolute paths, bare CR or huge names next to a
    good XML: a part the XML does not name is ignored (201, no attachment kept); a part
    header the parser cannot take is a 400 that stores nothing."""
    world, client = site
    instance_id = new_instance_id()
    xml = instance_xml(FORM_ID, "1", instance_id, photo_body(main=None))
    body = _multipart(
        [(b'name="xml_submission_file"; filename="s.xml"', xml), (header, jpeg(seed=42))]
    )
    with nothing_stored(services) if status == 400 else contextlib.nullcontext():
        response = client.post(
            f"{world.openrosa}/submission",
            content=body,
            headers={**HEADERS, "Content-Type": "multipart/form-data; boundary=jebolboundary"},
        )
        assert response.status_code == status, response.text[:300]
    if status == 400:
        readable_error(response)
    else:
        listed = client.get(
            f"{world.form}/submissions/{quote(instance_id)}/attachments", headers=world.bearer
        )
        assert listed.status_code == 200 and listed.json() == []
    assert_alive(client, world)


def test_part_and_xml_names_are_compared_after_the_same_trim(services, site):
    """A file part named ` photo 1.jpg ` for an XML value ` photo 1.jpg `: one rule trims both
    sides, so the 201 means the file is stored (it used to be dropped as unreferenced)."""
    world, client = site
    instance_id = new_instance_id()
    photo = jpeg(seed=43)
    xml = instance_xml(FORM_ID, "1", instance_id, photo_body(main=" photo 1.jpg "))
    body = _multipart(
        [
            (b'name="xml_submission_file"; filename="s.xml"', xml),
            (b'name=" photo 1.jpg "; filename=" photo 1.jpg "', photo),
        ]
    )
    response = client.post(
        f"{world.openrosa}/submission",
        content=body,
        headers={**HEADERS, "Content-Type": "multipart/form-data; boundary=jebolboundary"},
    )
    assert response.status_code == 201, response.text[:300]
    one = f"{world.form}/submissions/{quote(instance_id)}/attachments"
    listed = client.get(one, headers=world.bearer)
    assert listed.json() == [{"name": "photo 1.jpg", "exists": True}]
    for asked in ("photo%201.jpg", "%20photo%201.jpg%20"):  # 200, or 307 to the S3 store
        got = client.get(f"{one}/{asked}", headers=world.bearer, follow_redirects=False)
        assert got.status_code in (200, 307)

    def stored() -> bytes:
        found = submissions.get_attachment(
            services.db, world.project_id, FORM_ID, instance_id, "photo 1.jpg"
        )
        return services.blobs.read_bytes(blob_key(found.blob.sha256))

    assert stored() == photo
    # A REST upload's name goes through the same rule (it replaces the file).
    other = jpeg(seed=44)
    replaced = client.post(
        f"{one}/%20photo%201.jpg",
        content=other,
        headers={**world.bearer, "Content-Type": "image/jpeg"},
    )
    assert replaced.status_code == 200, replaced.text
    assert stored() == other


def test_two_different_files_under_one_name_are_a_400_that_stores_nothing(services, site):
    world, client = site
    xml = instance_xml(FORM_ID, "1", new_instance_id(), photo_body(main="a.jpg"))
    body = _multipart(
        [
            (b'name="xml_submission_file"; filename="s.xml"', xml),
            (b'name="a.jpg"; filename="a.jpg"', jpeg(seed=45)),
            (b'name="a.jpg "; filename="a.jpg "', jpeg(seed=46)),
        ]
    )
    with nothing_stored(services):
        response = client.post(
            f"{world.openrosa}/submission",
            content=body,
            headers={**HEADERS, "Content-Type": "multipart/form-data; boundary=jebolboundary"},
        )
        assert response.status_code == 400 and "a.jpg" in readable_error(response)
    assert_alive(client, world)
