"""SQL-like strings in every query and filter parameter: each answers a 4xx, or a result that
is correct for a value nothing matches (empty), and never a 5xx or a changed database.

The world holds two submissions (one with a photo, one approved); no value in it contains any
of the payloads, so a filter that treats `%` or `_` as a wildcard, or a quote as SQL, shows up
as rows that should not be there.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

import pytest

from storage import submissions, users
from storage.submissions import IncomingFile, Sender
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import jpeg, photo_body
from tests.security.conftest import (
    FORM_ID,
    PASSWORD,
    assert_alive,
    make_world,
    readable_error,
    stored_state,
    ui_login,
)

PAYLOADS = {
    "or-1-eq-1": "' OR 1=1 --",
    "drop-table": '"; DROP TABLE submission; --',
    "percent": "%",
    "underscore": "_",
    "backslash": "\\",
    "nul": "\x00",
    "wildcard-inside": "Bu%i",
    "one-char-wildcard": "B_di",
}
OPTION_PAYLOADS = ("or-1-eq-1", "percent", "backslash", "nul")  # for parameters that are options


@dataclass
class Site:
    world: object
    admin: dict[str, str]
    ids: list[str]
    client: object
    before: dict[str, int]  # the stored state before the first payload


@pytest.fixture(scope="module")
def site(services, tmp_path_factory):
    world = make_world(services)
    email = f"admin-filters-{uuid.uuid4().hex[:8]}@example.org"
    admin = users.create_user(services.db, email, PASSWORD, is_admin=True)
    token, _ = users.create_session(services.db, admin.actor_id, 1)
    photo = jpeg(seed=60)
    part = tmp_path_factory.mktemp("filters") / "photo"
    part.write_bytes(photo)
    ids = [new_instance_id(), new_instance_id()]
    submissions.ingest(
        services.db,
        services.blobs,
        world.project_id,
        instance_xml(FORM_ID, "1", ids[0], photo_body("Budi"), instance_name="Budi"),
        [
            IncomingFile(
                "utama.jpg", part, len(photo), hashlib.sha256(photo).hexdigest(), "image/jpeg"
            )
        ],
        sender=Sender(actor_id=None),
    )
    submissions.ingest(
        services.db,
        services.blobs,
        world.project_id,
        instance_xml(FORM_ID, "1", ids[1], photo_body("Siti", main=None)),
        sender=Sender(actor_id=None),
    )
    submissions.set_review_state(
        services.db, world.project_id, FORM_ID, ids[1], "approved", actor_id=None
    )
    with make_client(services) as client:
        ui_login(client, world.supervisor[0])
        yield Site(world, {"Authorization": f"Bearer {token}"}, ids, client, stored_state(services))


# ---- how many rows an answer holds -------------------------------------------------------


def _json_rows(response) -> int:
    return len(response.json())


def _odata_rows(response) -> int:
    return len(response.json()["value"])


def _csv_rows(response) -> int:
    return len(response.text.strip().splitlines()) - 1


def _zip_rows(response) -> int:
    return len(zipfile.ZipFile(io.BytesIO(response.content)).namelist())


def _xforms(response) -> int:
    return response.text.count("<xform>")


def _thumbnails(response) -> int:
    return response.text.count("/thumb/320/")


@dataclass(frozen=True)
class Param:
    """A query parameter: where it goes, who may call it, and how to count the rows."""

    name: str
    url: Callable[[Site], str]
    param: str
    auth: str  # manager | admin | app | ui
    rows: Callable | None  # None: an option, not a filter (4xx or ignored)
    template: str = "{}"  # how the payload sits in the parameter's value
    ignored_ok: bool = False  # an unusable value may be ignored (all rows)


def _form(site: Site) -> str:
    return site.world.form


PARAMS = [
    Param("rest-limit", lambda s: f"{_form(s)}/submissions", "limit", "manager", None),
    Param("rest-offset", lambda s: f"{_form(s)}/submissions", "offset", "manager", None),
    Param("rest-deleted", lambda s: f"{_form(s)}/submissions", "deleted", "manager", None),
    Param("audits-action", lambda s: "/v1/audits", "action", "admin", _json_rows),
    Param("audits-start", lambda s: "/v1/audits", "start", "admin", None),
    Param("audits-end", lambda s: "/v1/audits", "end", "admin", None),
    Param("odata-filter", lambda s: f"{_form(s)}.svc/Submissions", "$filter", "manager", None),
    Param(
        "odata-filter-id-literal",
        lambda s: f"{_form(s)}.svc/Submissions",
        "$filter",
        "manager",
        _odata_rows,
        "__id eq '{}'",
    ),
    Param(
        "odata-filter-state-literal",
        lambda s: f"{_form(s)}.svc/Submissions",
        "$filter",
        "manager",
        _odata_rows,
        "__system/reviewState eq '{}'",
    ),
    Param("odata-select", lambda s: f"{_form(s)}.svc/Submissions", "$select", "manager", None),
    Param("odata-orderby", lambda s: f"{_form(s)}.svc/Submissions", "$orderby", "manager", None),
    Param(
        "odata-skiptoken", lambda s: f"{_form(s)}.svc/Submissions", "$skiptoken", "manager", None
    ),
    Param("odata-top", lambda s: f"{_form(s)}.svc/Submissions", "$top", "manager", None),
    Param("odata-skip", lambda s: f"{_form(s)}.svc/Submissions", "$skip", "manager", None),
    Param("odata-count", lambda s: f"{_form(s)}.svc/Submissions", "$count", "manager", None),
    Param("odata-expand", lambda s: f"{_form(s)}.svc/Submissions", "$expand", "manager", None),
    Param("odata-wkt", lambda s: f"{_form(s)}.svc/Submissions", "$wkt", "manager", None),
    Param("export-filter", lambda s: f"{_form(s)}/submissions.csv", "$filter", "manager", None),
    Param(
        "export-filter-state-literal",
        lambda s: f"{_form(s)}/submissions.csv",
        "$filter",
        "manager",
        _csv_rows,
        "__system/reviewState eq '{}'",
    ),
    Param("export-xlsx-lang", lambda s: f"{_form(s)}/submissions.xlsx", "lang", "manager", None),
    Param("media-opd", lambda s: f"{_form(s)}/media.zip", "opd", "manager", _zip_rows),
    Param("media-question", lambda s: f"{_form(s)}/media.zip", "question", "manager", _zip_rows),
    Param("media-state", lambda s: f"{_form(s)}/media.zip", "state", "manager", _zip_rows),
    Param("media-since", lambda s: f"{_form(s)}/media.zip", "since", "manager", None),
    Param(
        "iid-spd",
        lambda s: f"/v1/projects/{s.world.project_id}/iid-report.xlsx",
        "spd",
        "manager",
        None,
    ),
    Param("formlist-formid", lambda s: f"{s.world.openrosa}/formList", "formID", "app", _xforms),
    Param("ui-search", lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}", "q", "ui", None),
    Param(
        "ui-opd",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}",
        "opd",
        "ui",
        None,
        ignored_ok=True,
    ),
    Param("ui-state", lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}", "state", "ui", None),
    Param(
        "ui-submitter",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}",
        "submitter",
        "ui",
        None,
        ignored_ok=True,
    ),
    Param(
        "ui-since",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}",
        "since",
        "ui",
        None,
        ignored_ok=True,
    ),
    Param(
        "ui-until",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}",
        "until",
        "ui",
        None,
        ignored_ok=True,
    ),
    Param(
        "ui-sort",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}",
        "sort",
        "ui",
        None,
        ignored_ok=True,
    ),
    Param("ui-after", lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}", "after", "ui", None),
    Param(
        "board-question",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}/board",
        "question",
        "ui",
        _thumbnails,
    ),
    Param(
        "board-flag",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}/board",
        "flag",
        "ui",
        _thumbnails,
    ),
    Param(
        "board-indicator",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}/board",
        "indicator",
        "ui",
        _thumbnails,
    ),
    Param(
        "board-search",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}/board",
        "q",
        "ui",
        _thumbnails,
    ),
    Param(
        "board-group",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}/board",
        "group",
        "ui",
        None,
        ignored_ok=True,
    ),
    Param("login-next", lambda s: "/login", "next", "ui", None, ignored_ok=True),
]
_UI_ROWS = {
    "ui-search",
    "ui-opd",
    "ui-state",
    "ui-submitter",
    "ui-since",
    "ui-until",
    "ui-sort",
    "ui-after",
}


def _ui_rows(site: Site) -> Callable:
    return lambda response: sum(1 for i in site.ids if i in response.text)


# OData answers 501 (Central's code 501.x) for what it does not implement, as Central does.
NOT_IMPLEMENTED_OK = {"odata-orderby", "odata-expand"}


def _headers(site: Site, auth: str) -> dict[str, str]:
    if auth == "admin":
        return site.admin
    if auth == "manager":
        return site.world.bearer
    return HEADERS if auth == "app" else {}


def _cases() -> list:
    """Every payload in every filter; options (no rows to count) get OPTION_PAYLOADS."""
    return [
        pytest.param(param, payload_id, id=f"{param.name}-{payload_id}")
        for param in PARAMS
        for payload_id in PAYLOADS
        if param.rows or param.name in _UI_ROWS or payload_id in OPTION_PAYLOADS
    ]


@pytest.mark.parametrize("param, payload_id", _cases())
def test_sql_like_strings_in_every_parameter(services, site, param, payload_id):
    counter = _ui_rows(site) if param.name in _UI_ROWS else param.rows
    payload = PAYLOADS[payload_id]
    if payload == "_" and param.name in ("ui-search", "board-search"):
        pytest.skip(
            "the free-text search reads the answers' JSON, keys (foto_utama) included: "
            "a lone `_` is there; `B_di` checks the wildcard"
        )
    value = param.template.format(payload)
    url = f"{param.url(site)}?{quote(param.param)}={quote(value, safe='')}"
    response = site.client.get(url, headers=_headers(site, param.auth), follow_redirects=False)
    status = response.status_code
    if status == 501 and param.name in NOT_IMPLEMENTED_OK:
        return
    assert status < 500, (status, response.text[:300])
    if status >= 400:
        readable_error(response)
        return
    if status in (302, 303, 307):
        assert response.headers["location"].startswith("/") and not response.headers[
            "location"
        ].startswith("//")
        return
    if counter is None:
        return
    found = counter(response)
    everything = len(site.ids) if param.name in _UI_ROWS else None
    assert found == 0 or (param.ignored_ok and found == everything), found


def test_the_counters_see_rows_when_there_are_some(site):
    """Without a payload each counted parameter finds the world's rows, so the zeros above
    mean "filtered out", not "never counted"."""
    wide = {
        "audits-action": "submission.create",
        "odata-filter-id-literal": site.ids[0],
        "odata-filter-state-literal": "approved",
        "export-filter-state-literal": "approved",
        "media-question": "/foto_utama",
        "media-state": "received",
        "formlist-formid": FORM_ID,
        "ui-search": "budi",
        "ui-state": "approved",
        "board-search": "budi",
        "board-question": "/foto_utama",
    }
    for param in PARAMS:
        if param.name not in wide:
            continue
        value = param.template.format(wide[param.name])
        url = f"{param.url(site)}?{quote(param.param)}={quote(value, safe='')}"
        response = site.client.get(url, headers=_headers(site, param.auth))
        counter = _ui_rows(site) if param.name in _UI_ROWS else param.rows
        assert response.status_code == 200 and counter(response) > 0, (
            param.name,
            response.text[:300],
        )


@pytest.mark.parametrize("payload_id", PAYLOADS)
def test_sql_like_strings_in_path_segments(services, site, payload_id):
    """Form ids, instance ids and OData keys in the path: a 404, never a 5xx."""
    payload = PAYLOADS[payload_id]
    form, segment = site.world.form, quote(payload, safe="")
    urls = [
        f"/v1/projects/{site.world.project_id}/forms/{segment}",
        f"{form}/submissions/{segment}",
        f"{form}/submissions/{segment}/attachments",
        f"{form}.svc/Submissions('{segment}')",
        f"/p/{site.world.project_id}/f/{segment}",
        f"{site.world.openrosa}/forms/{segment}/manifest",
    ]
    for url in urls:
        response = site.client.get(url, headers={**HEADERS, **site.world.bearer})
        assert response.status_code in (400, 404), (url, response.status_code, response.text[:200])
        readable_error(response)


def test_nothing_changed_and_the_server_still_works(services, site):
    """Runs after every payload above (they are all reads): the stored data is as before."""
    assert stored_state(services) == site.before
    assert_alive(site.client, site.world)


# ---- values past what a parser or the calendar holds -------------------------------------

BIG = "9" * 5000  # past Python's 4300-digit limit for int(text): a ValueError, not a number
OUT_OF_RANGE = [
    (
        "odata-filter-time-past-9999",
        lambda s: f"{_form(s)}.svc/Submissions",
        "$filter",
        "__system/submissionDate gt 9999-12-31T23:59:59-23:59",
        "manager",
    ),
    (
        "odata-filter-time-before-1",
        lambda s: f"{_form(s)}.svc/Submissions",
        "$filter",
        "__system/submissionDate gt 0001-01-01T00:00:00+14:00",
        "manager",
    ),
    (
        "odata-filter-int-3900-digits",
        lambda s: f"{_form(s)}.svc/Submissions",
        "$filter",
        f"__system/submitterId eq {BIG[:3900]}",
        "manager",
    ),
    ("odata-top-5000-digits", lambda s: f"{_form(s)}.svc/Submissions", "$top", BIG, "manager"),
    ("audits-limit-5000-digits", lambda s: "/v1/audits", "limit", BIG, "admin"),
    (
        "export-filter-submitter-5000-digits",
        lambda s: f"{_form(s)}/submissions.csv",
        "$filter",
        f"__system/submitterId eq {BIG}",
        "manager",
    ),
    (
        "export-filter-time-before-1",
        lambda s: f"{_form(s)}/submissions.csv",
        "$filter",
        "__system/submissionDate ge 0001-01-01T00:00:00+14:00",
        "manager",
    ),
    (
        "iid-spd-nan",
        lambda s: f"/v1/projects/{s.world.project_id}/iid-report.xlsx",
        "spd",
        "nan",
        "manager",
    ),
    (
        "iid-spd-inf",
        lambda s: f"/v1/projects/{s.world.project_id}/iid-report.xlsx",
        "spd",
        "inf",
        "manager",
    ),
    (
        "ui-submitter-5000-digits",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}",
        "submitter",
        BIG,
        "ui",
    ),
    (
        "board-submitter-5000-digits",
        lambda s: f"/p/{s.world.project_id}/f/{FORM_ID}/board",
        "submitter",
        BIG,
        "ui",
    ),
]


@pytest.mark.parametrize(
    "name, url, param, value, auth", [pytest.param(*case, id=case[0]) for case in OUT_OF_RANGE]
)
def test_values_out_of_range_are_a_4xx(services, site, name, url, param, value, auth):
    response = site.client.get(
        url(site), params={param: value}, headers=_headers(site, auth), follow_redirects=False
    )
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code >= 400:
        readable_error(response)
