"""Paging tokens and cursors are client input: every malformed one is a 400 with a clear
message, never a 500, and the server pages normally afterwards.

The tokens: OData's `$skiptoken` (Submissions and a repeat table) and the supervisor pages'
`?after=` (the submissions table and the evidence board). Before, both were read with
`json.loads`, which recursed into `[[[[…` until a RecursionError (a 500). Now both go through
forms.tokens (bounded length, strict base64, msgspec into a closed typed shape). The UI
answers a bad cursor as it answers a bad filter (a NUL in one): its error page with status
400, or the message as text/plain to an htmx request.

Also here, the other client input that nested without bound: a `$filter` of `not not not …`
(the parser counted parentheses only) and a JSON request body with nested junk (Litestar
decodes a body untyped before converting it); and a `$filter` time valid in its own offset but
past year 9999 (or before year 1) in UTC.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from forms.tokens import MAX_TOKEN_CHARS, encode_token
from storage import browse, submissions, users
from storage import forms as form_store
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import jpeg, photo_body
from tests.security.conftest import FORM_ID, PASSWORD, make_world, readable_error, ui_login

DEEP = 100_000


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


NESTED = b"[" * DEEP + b"]" * DEEP
NESTED_OBJECTS = b'{"a":' * DEEP + b"1" + b"}" * DEEP
AT = '"2024-05-01T08:00:00+00:00"'

# The text after `$skiptoken=01` (OData) / `after=` (UI) that a client may send, by name. The
# shapes this server writes: `{"id":…,"rows":…}` (OData), `["<aware time>",id]` (UI).
COMMON = {
    "empty": "",
    "nested-arrays": b64(NESTED),
    "nested-objects": b64(NESTED_OBJECTS),
    "not-base64": "!!!!",
    "spaces": "a b c",
    "non-ascii": "éé",
    "nul": "\x00",
    "one-char-too-many": "AAAAA",  # base64 cannot end with one character of a quantum
    "only-padding": "====",
    "not-utf8": b64(b"\xff\xfe\xfd\xfc"),
    "not-json": b64(b"nope"),
    "json-null": b64(b"null"),
    "json-number": b64(b"1"),
    "json-string": b64(b'"x"'),
    "trailing-junk": b64(b"[1,2] x"),
    "very-long": "A" * 60_000,
    "just-over-the-limit": "A" * (MAX_TOKEN_CHARS + 4),
}
ODATA = {
    **COMMON,
    "nested-in-a-field": b64(b'{"id":' + NESTED + b',"rows":0}'),
    "nested-unknown-field": b64(b'{"id":1,"rows":0,"x":' + NESTED + b"}"),
    "unknown-field": b64(b'{"id":1,"rows":0,"x":1}'),
    "array": b64(b"[1,0]"),
    "id-string": b64(b'{"id":"1","rows":0}'),
    "id-float": b64(b'{"id":1.5,"rows":0}'),
    "id-bool": b64(b'{"id":true,"rows":0}'),
    "id-null": b64(b'{"id":null,"rows":0}'),
    "rows-missing": b64(b'{"id":1}'),
    "empty-object": b64(b"{}"),
    "id-huge": b64(b'{"id":' + b"9" * 400 + b',"rows":0}'),
    "id-2^63": b64(b'{"id":9223372036854775808,"rows":0}'),
    "id-negative": b64(b'{"id":-1,"rows":0}'),
    "rows-negative": b64(b'{"id":1,"rows":-1}'),
    "count-string": b64(b'{"id":1,"rows":0,"count":"3"}'),
    "nested-utf8-junk": b64(b'{"id":1,"rows":0,"count":"\xff"}'),
}
UI = {
    **COMMON,
    "nested-in-the-time": b64(b"[" + NESTED + b",1]"),
    "nested-after-a-valid-pair": b64(f"[{AT},1,".encode() + NESTED + b"]"),
    "object": b64(f'{{"at":{AT},"id":1}}'.encode()),
    "one-item": b64(f"[{AT}]".encode()),
    "three-items": b64(f"[{AT},1,2]".encode()),
    "empty-array": b64(b"[]"),
    "swapped": b64(f"[1,{AT}]".encode()),
    "id-string": b64(f'[{AT},"1"]'.encode()),
    "id-float": b64(f"[{AT},1.5]".encode()),
    "id-huge": b64(f"[{AT},".encode() + b"9" * 400 + b"]"),
    "id-2^63": b64(f"[{AT},9223372036854775808]".encode()),
    "id-negative": b64(f"[{AT},-1]".encode()),
    "time-naive": b64(b'["2024-05-01T08:00:00",1]'),
    "time-not-a-time": b64(b'["kemarin",1]'),
    "time-past-9999-in-utc": b64(b'["9999-12-31T23:59:59-23:59",1]'),
    "time-before-year-1-in-utc": b64(b'["0001-01-01T00:00:00+23:59",1]'),
    "time-not-utf8": b64(b'["\xff\xfe",1]'),
}


@pytest.fixture(autouse=True)
def long_urls(monkeypatch):
    """httpx refuses a URL component past 64 KiB; the app under test has no such limit (the
    in-process client has no h11 head limit either), so the 100,000-deep tokens reach it."""
    monkeypatch.setattr(httpx._urlparse, "MAX_URL_LENGTH", 4 * 1024 * 1024)


@pytest.fixture(scope="module")
def site(services, tmp_path_factory):
    """Three submissions with repeat rows (so there are pages to token), a manager (OData by
    Bearer) and a supervisor logged in to the UI."""
    world = make_world(services)
    photo = jpeg(seed=70)
    part = tmp_path_factory.mktemp("tokens") / "photo"
    for i in range(3):
        part.write_bytes(photo)
        submissions.ingest(
            services.db,
            services.blobs,
            world.project_id,
            instance_xml(
                FORM_ID,
                "1",
                new_instance_id(),
                photo_body(f"Orang {i}", evidence=["a.jpg", "b.jpg"]),
            ),
            [
                IncomingFile(
                    "utama.jpg", part, len(photo), hashlib.sha256(photo).hexdigest(), "image/jpeg"
                )
            ],
            sender=Sender(actor_id=None),
        )
    with make_client(services) as client:
        ui_login(client, world.supervisor[0])
        yield world, client


def _odata(site, table: str, **params) -> httpx.Response:
    world, client = site
    return client.get(f"{world.form}.svc/{table}", params=params, headers=world.bearer)


def _assert_odata_400(response: httpx.Response) -> None:
    assert response.status_code == 400, (response.status_code, response.text[:300])
    body = response.json()
    assert body["code"] == 400.35 and "$skiptoken" in body["message"], body
    readable_error(response)


@pytest.mark.parametrize("table", ["Submissions", "Submissions.bukti"])
@pytest.mark.parametrize("name", ODATA)
def test_a_malformed_skiptoken_is_a_400(site, table, name):
    _assert_odata_400(_odata(site, table, **{"$skiptoken": "01" + ODATA[name]}))


@pytest.mark.parametrize("table", ["Submissions", "Submissions.bukti"])
def test_a_skiptoken_without_its_version_is_a_400(site, table):
    good = encode_token({"id": 1, "rows": 0})
    for token in ("", "0", "1", "02" + good, good, "01", "\x0001" + good):
        _assert_odata_400(_odata(site, table, **{"$skiptoken": token}))


@pytest.mark.parametrize("table", ["Submissions", "Submissions.bukti"])
def test_odata_pages_normally_after_the_bad_tokens(site, table):
    """The nextLink's token (as the server writes it, standard-alphabet and padded variants
    too) still leads to the next page."""
    first = _odata(site, table, **{"$top": "1"})
    assert first.status_code == 200, first.text
    link = first.json()["@odata.nextLink"]
    token = parse_qs(urlsplit(link).query)["$skiptoken"][0]
    body = token[2:]
    variants = {
        token,
        "01" + body + "=" * (-len(body) % 4),
        "01" + body.replace("-", "+").replace("_", "/"),
    }
    pages = []
    for variant in variants:
        page = _odata(site, table, **{"$top": "1", "$skiptoken": variant})
        assert page.status_code == 200, (variant, page.text[:300])
        pages.append(page.json()["value"])
    assert all(p == pages[0] for p in pages) and pages[0] != first.json()["value"]


def _ui(site, page: str, after: str, htmx: bool = False) -> httpx.Response:
    world, client = site
    path = f"/p/{world.project_id}/f/{FORM_ID}" + ("/board" if page == "board" else "")
    headers = {"HX-Request": "true"} if htmx else {}
    return client.get(path, params={"after": after}, headers=headers, follow_redirects=False)


@pytest.mark.parametrize("page", ["table", "board"])
@pytest.mark.parametrize("name", UI)
def test_a_malformed_page_cursor_is_a_400_page(site, page, name):
    response = _ui(site, page, UI[name])
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("text/html")
    if name != "nul":  # a NUL in any parameter is refused as a filter, before paging
        assert "The page cursor is not valid; start from the first page." in response.text
    readable_error(response)


@pytest.mark.parametrize("page", ["table", "board"])
def test_a_malformed_page_cursor_from_htmx_is_a_400_message(site, page):
    response = _ui(site, page, UI["nested-arrays"], htmx=True)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "The page cursor is not valid; start from the first page."


@pytest.mark.parametrize("page", ["table", "board"])
def test_the_pages_work_after_the_bad_cursors(site, page):
    """A cursor as the server writes it still pages: one past every row shows them all; one
    before every row, none."""
    world, client = site
    names = [f"Orang {i}" for i in range(3)]
    past = encode_token((datetime.now(UTC).replace(year=2999), 2**62))
    shown = _ui(site, page, past)
    assert shown.status_code == 200, shown.text[:300]
    if page == "table":
        assert all(name in shown.text for name in names)
        before = encode_token((datetime(2000, 1, 1, tzinfo=UTC), 1))
        none = _ui(site, page, before)
        assert none.status_code == 200 and not any(name in none.text for name in names)
    else:
        assert shown.text.count("/thumb/320/") >= 3
    first = client.get(f"/p/{world.project_id}/f/{FORM_ID}" + ("/board" if page == "board" else ""))
    assert first.status_code == 200


@pytest.mark.parametrize("sort", ["newest", "oldest"])
def test_the_cursors_the_server_writes_page_through_every_row(services, site, sort):
    """A page of one row at a time, each from the previous page's cursor, on this backend's
    timestamps (microseconds, UTC): every submission once, in order."""
    world, _ = site
    form = form_store.get_form(services.db, world.project_id, FORM_ID)
    seen, cursor = [], None
    for _ in range(10):
        page = browse.page_submissions(
            services.db, form, browse.Filters(), sort=sort, cursor=cursor, limit=1, count=False
        )
        seen += [row.submission.id for row in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert len(seen) == 3 and seen == sorted(seen, reverse=sort == "newest")


# ---- other input that nested without bound ----------------------------------------------


def test_a_filter_of_many_nots_is_a_400(site):
    """`not not … true` nested one level a word with no parenthesis to count: 999 of them fit
    in the 4000 characters a filter may have, deeper than Python's recursion limit."""
    for depth in (60, 999):
        response = _odata(site, "Submissions", **{"$filter": "not " * depth + "true"})
        assert response.status_code == 400, (depth, response.status_code, response.text[:300])
        assert "nested too deeply" in readable_error(response)
    fine = _odata(site, "Submissions", **{"$filter": "not not true"})
    assert fine.status_code == 200 and len(fine.json()["value"]) == 3


def test_a_filter_time_past_the_calendar_in_utc_is_a_400(site):
    for literal in ("9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00"):
        response = _odata(
            site, "Submissions", **{"$filter": f"__system/submissionDate gt {literal}"}
        )
        assert response.status_code == 400, (literal, response.status_code, response.text[:300])
        assert "out of range" in readable_error(response)


@pytest.mark.parametrize("where", ["unknown-field", "known-field", "top-level"])
def test_a_json_body_of_nested_junk_is_a_400(services, site, where):
    _, client = site
    admin = users.create_user(
        services.db, f"admin-tok-{uuid.uuid4().hex[:8]}@example.org", PASSWORD, is_admin=True
    )
    token, _ = users.create_session(services.db, admin.actor_id, 1)
    deep = b"[" * 20_000 + b"]" * 20_000
    body = {
        "unknown-field": b'{"name":"x","junk":' + deep + b"}",
        "known-field": b'{"name":' + deep + b"}",
        "top-level": deep,
    }[where]
    response = client.post(
        "/v1/projects",
        content=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400, (response.status_code, response.text[:300])
    assert "nested too deeply" in readable_error(response)
    made = client.post(
        "/v1/projects",
        json={"name": f"Proyek {uuid.uuid4().hex[:6]}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert made.status_code == 200, made.text


def test_basic_credentials_that_are_not_ascii_are_a_401(site):
    world, client = site
    response = client.get(
        f"{world.form}.svc/Submissions", headers=[(b"Authorization", b"Basic \xe9\xe9\xe9\xe9")]
    )
    assert response.status_code == 401, (response.status_code, response.text[:300])


@pytest.mark.parametrize("where", ["header", "form", "cookie"])
def test_a_csrf_token_that_is_not_ascii_is_a_403(services, where):
    bad = "a" * 64 + "\xe9" * 64
    with make_client(services) as client:
        client.get("/login")
        data = {"email": "a@b.c", "password": "x", "_csrf_token": client.cookies["jebol_csrf"]}
        headers: list[tuple[bytes, bytes]] = []
        if where == "header":
            del data["_csrf_token"]
            headers.append((b"x-csrftoken", bad.encode("latin-1")))
        elif where == "form":
            data["_csrf_token"] = bad
        else:
            client.cookies.clear()
            headers.append((b"cookie", b"jebol_csrf=" + bad.encode("latin-1")))
        response = client.post("/login", data=data, headers=headers, follow_redirects=False)
    assert response.status_code == 403, (response.status_code, response.text[:300])
