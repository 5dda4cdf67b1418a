"""The supervisor UI through HTTP: login with CSRF, pages, review rules, the message catalogue."""

from __future__ import annotations

import hashlib
import re

import pytest

from server.ui import i18n
from server.ui.messages import message_ids
from storage import accounts, submissions
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import jpeg, make_project, photo_body, publish


def test_every_interface_string_has_an_indonesian_translation():
    catalog = i18n.catalog("id")
    missing = sorted(m for m in message_ids() if not catalog.get(m))
    assert not missing, missing
    assert len(message_ids()) > 100


@pytest.fixture
def world(services, tmp_path):
    project = make_project(services)
    publish(services, project)
    email = f"pengawas-{project.id}@example.org"
    user = accounts.create_user(services.db, email, "kata-sandi-panjang")
    accounts.grant_role(services.db, user.actor_id, project.id, "supervisor")
    iid = new_instance_id()
    photo = jpeg(seed=3)
    part = tmp_path / "p"
    part.write_bytes(photo)
    submissions.ingest(services.db, services.blobs, project.id,
                       instance_xml("foto_sederhana", "1", iid, photo_body("Siti"),
                                    instance_name="Siti"),
                       [IncomingFile("utama.jpg", part, len(photo),
                                     hashlib.sha256(photo).hexdigest())],
                       sender=Sender(actor_id=None))
    return project, email, iid


def login(client, email, password="kata-sandi-panjang"):
    page = client.get("/login")
    token = re.search(r'name="_csrf_token" value="([^"]+)"', page.text).group(1)
    return client.post("/login", data={"email": email, "password": password, "next": "/",
                                       "_csrf_token": token}, follow_redirects=False)


def test_login_sets_a_safe_cookie_and_pages_render(services, world):
    project, email, iid = world
    with make_client(services) as client:
        assert client.get(f"/p/{project.id}", follow_redirects=False).status_code == 303
        response = login(client, email)
        assert response.status_code == 303
        cookie = response.headers["set-cookie"]
        assert "jebol_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        home = client.get(f"/p/{project.id}")
        assert home.status_code == 200 and "Foto sederhana" in home.text
        table = client.get(f"/p/{project.id}/f/foto_sederhana")
        assert "Siti" in table.text and "Diterima" in table.text  # Indonesian by default
        page = client.get(f"/p/{project.id}/f/foto_sederhana/s/{iid}")
        assert page.status_code == 200 and "/thumb/320/utama.jpg" in page.text
        thumb = re.search(r'src="([^"]+/thumb/320/utama\.jpg[^"]*)"', page.text).group(1)
        image = client.get(thumb.replace("&amp;", "&"))
        assert image.headers["content-type"] == "image/jpeg"
        assert "max-age=31536000" in image.headers["cache-control"]
        board = client.get(f"/p/{project.id}/f/foto_sederhana/board")
        assert board.status_code == 200 and "utama.jpg" in board.text
        client.get("/lang/en")
        assert "Received" in client.get(f"/p/{project.id}/f/foto_sederhana").text


def test_wrong_password_is_refused_in_the_page(services, world):
    project, email, _ = world
    with make_client(services) as client:
        response = login(client, email, "bukan-sandinya")
        assert response.status_code == 401 and "Email atau kata sandi salah" in response.text


def test_post_without_csrf_token_is_refused(services, world):
    project, email, iid = world
    with make_client(services) as client:
        login(client, email)
        response = client.post(f"/p/{project.id}/f/foto_sederhana/s/{iid}/review",
                               data={"state": "approved"}, follow_redirects=False)
        assert response.status_code == 403
        assert submissions.get_summary(services.db, project.id, "foto_sederhana",
                                       iid).submission.review_state is None


def test_reject_needs_a_comment_and_approve_works(services, world):
    project, email, iid = world
    with make_client(services) as client:
        login(client, email)
        token = client.cookies["jebol_csrf"]
        url = f"/p/{project.id}/f/foto_sederhana/s/{iid}/review"
        refused = client.post(url, data={"state": "rejected", "comment": " ",
                                         "_csrf_token": token}, follow_redirects=False)
        assert refused.status_code == 400
        approved = client.post(url, data={"state": "approved", "_csrf_token": token},
                               headers={"hx-request": "true"})
        assert approved.status_code == 200 and "Disetujui" in approved.text
    assert submissions.get_summary(services.db, project.id, "foto_sederhana",
                                   iid).submission.review_state == "approved"
