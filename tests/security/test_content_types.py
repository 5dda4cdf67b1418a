"""Bodies of the wrong content type at every route that reads a body: a 4xx that says what was
expected, nothing stored, the server fine afterwards. And numbers no database holds in the
path (ids far past 64 bits)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from storage import users
from tests.collect import HEADERS, instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import photo_body
from tests.security.conftest import (
    FORM_ID,
    PASSWORD,
    assert_alive,
    make_world,
    nothing_stored,
    readable_error,
    ui_login,
)


@pytest.fixture(scope="module")
def site(services):
    """One world, one app and one client per backend: nothing here stores anything."""
    world = make_world(services)
    with make_client(services) as client:
        yield world, client


def _xml() -> bytes:
    return instance_xml(FORM_ID, "1", new_instance_id(), photo_body(main=None))


@dataclass(frozen=True)
class Case:
    name: str
    send: Callable  # (client, world) -> response
    reason: str  # a fragment of the message


def _openrosa(content_type: str, body: bytes) -> Callable:
    return lambda client, world: client.post(
        f"{world.openrosa}/submission",
        content=body,
        headers={**HEADERS, "Content-Type": content_type},
    )


def _rest_create(content_type: str, body: bytes) -> Callable:
    return lambda client, world: client.post(
        f"{world.form}/submissions",
        content=body,
        headers={**world.bearer, "Content-Type": content_type},
    )


def _comment(content_type: str, body: bytes) -> Callable:
    # The body is read (and refused) before the submission is looked up.
    return lambda client, world: client.post(
        f"{world.form}/submissions/uuid:none/comments",
        content=body,
        headers={**world.bearer, "Content-Type": content_type},
    )


CASES = [
    Case(
        "openrosa-json", _openrosa("application/json", b'{"xml_submission_file": "x"}'), "multipart"
    ),
    Case(
        "openrosa-urlencoded",
        _openrosa("application/x-www-form-urlencoded", b"xml_submission_file=%3Cx%2F%3E"),
        "multipart",
    ),
    Case(
        "openrosa-multipart-without-boundary", _openrosa("multipart/form-data", _xml()), "boundary"
    ),
    Case(
        "openrosa-multipart-mixed",
        _openrosa("multipart/mixed; boundary=b", b"--b--\r\n"),
        "multipart",
    ),
    Case("openrosa-xml-body", _openrosa("text/xml", _xml()), "multipart"),
    Case("openrosa-no-content-type", _openrosa("", _xml()), "multipart"),
    Case("rest-create-json", _rest_create("application/json", b'{"instanceId": "x"}'), "XML"),
    Case(
        "rest-create-urlencoded", _rest_create("application/x-www-form-urlencoded", b"a=b"), "XML"
    ),
    Case(
        "rest-create-multipart",
        _rest_create(
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n<x/>\r\n--b--\r\n',
        ),
        "XML",
    ),
    Case(
        "rest-form-json",
        lambda client, world: client.post(
            f"/v1/projects/{world.project_id}/forms",
            content=b'{"name": "form"}',
            headers={**world.bearer, "Content-Type": "application/json"},
        ),
        "spreadsheet",
    ),
    Case(
        "rest-form-image",
        lambda client, world: client.post(
            f"/v1/projects/{world.project_id}/forms",
            content=b"\x89PNG\r\n\x1a\n" + bytes(64),
            headers={**world.bearer, "Content-Type": "image/png"},
        ),
        "spreadsheet",
    ),
    Case("rest-comment-xml", _comment("application/xml", b"<body>x</body>"), ""),
    Case("rest-comment-urlencoded", _comment("application/x-www-form-urlencoded", b"body=x"), ""),
    Case(
        "rest-review-text",
        lambda client, world: client.patch(
            f"{world.form}/submissions/uuid:none",
            content=b"approved",
            headers={**world.bearer, "Content-Type": "text/plain"},
        ),
        "",
    ),
    Case(
        "session-urlencoded",
        lambda client, world: client.post(
            "/v1/sessions",
            content=b"email=a%40b.c&password=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ),
        "",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_a_body_of_the_wrong_type_is_a_4xx(services, site, case):
    world, client = site
    with nothing_stored(services):
        response = case.send(client, world)
        message = readable_error(response)
        assert case.reason in message, message
    assert_alive(client, world)


def test_a_ui_post_with_a_json_body_is_a_4xx(services, site):
    """The UI's forms are url-encoded; JSON (with a valid CSRF header) is refused, not a 500."""
    world, client = site
    ui_login(client, world.manager[0])
    iid = new_instance_id()
    assert (
        client.post(
            f"{world.form}/submissions",
            content=instance_xml(FORM_ID, "1", iid, photo_body(main=None)),
            headers={**world.bearer, "Content-Type": "application/xml"},
        ).status_code
        == 200
    )
    for path, body in (
        (f"/p/{world.project_id}/f/{FORM_ID}/s/{iid}/comment", {"body": "x"}),
        (f"/p/{world.project_id}/app-users", {"display_name": "x"}),
    ):
        response = client.post(
            path,
            content=json.dumps(body).encode(),
            headers={
                "Content-Type": "application/json",
                "x-csrftoken": client.cookies["jebol_csrf"],
            },
            follow_redirects=False,
        )
        assert 400 <= response.status_code < 500, (path, response.status_code)


# ---- ids past 64 bits ----------------------------------------------------------------------

HUGE = "9" * 30


@pytest.fixture(scope="module")
def admin_token(services) -> str:
    admin = users.create_user(
        services.db, f"admin-{new_instance_id()[5:13]}@example.org", PASSWORD, is_admin=True
    )
    return users.create_session(services.db, admin.actor_id, 1)[0]


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/projects/{HUGE}",
        f"/v1/projects/{HUGE}/forms",
        f"/v1/users/{HUGE}",
        f"/p/{HUGE}",
        f"/v1/projects/{HUGE}/app-users",
    ],
    ids=["project", "forms", "user", "ui-project", "app-users"],
)
def test_ids_past_64_bits_are_a_4xx(services, site, admin_token, path):
    _, client = site
    response = client.get(
        path, headers={"Authorization": f"Bearer {admin_token}"}, follow_redirects=False
    )
    assert 400 <= response.status_code < 500, response.status_code
