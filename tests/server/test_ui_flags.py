"""Photo-integrity flags in words on a submission's page and as a marker on its list row, and
a submission's comments and history with who did what (each backend, through HTTP)."""

from __future__ import annotations

import hashlib
import html
import re
import uuid
from pathlib import Path
from urllib.parse import quote

from storage import roles, submissions, users
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.conftest import make_client
from tests.factories import make_app_user, make_project, photo_body, publish
from tests.forms.test_photos import POINT, encode, exif_of, scene, unique_seed
from tests.server.test_ui import login

VISIT_FORM = Path(__file__).parent.parent / "data" / "photos" / "kunjungan_foto.md"


def _part(tmp_path: Path, name: str, data: bytes) -> IncomingFile:
    path = tmp_path / f"part-{uuid.uuid4().hex}"
    path.write_bytes(data)
    return IncomingFile(name, path, len(data), hashlib.sha256(data).hexdigest(), "image/jpeg")


def _send(services, project, tmp_path, xml: bytes, files: dict[str, bytes], actor_id=None):
    parts = [_part(tmp_path, name, data) for name, data in files.items()]
    return submissions.ingest(
        services.db, services.blobs, project.id, xml, parts, sender=Sender(actor_id=actor_id)
    )


def _supervisor(services, project, name: str) -> str:
    email = f"pengawas-{uuid.uuid4().hex[:8]}@example.org"
    user = users.create_user(services.db, email, "kata-sandi-panjang", display_name=name)
    roles.assign_role(services.db, project.id, "supervisor", user.actor_id)
    return email


def _text(page: str) -> str:
    """The page's text without tags, entities decoded, spaces collapsed."""
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    return re.sub(r" ([,.)])", r"\1", text)


def evidence(page: str, url: str) -> str:
    """The words of the evidence card linking to `url` (the other submission's photo)."""
    found = re.search(
        rf'<a class="evidence-photo" href="{re.escape(url)}"><img src="{re.escape(url)}/thumb/'
        r'320/[^"]+"[^>]*><span>(.*?)</span></a>',
        page,
        re.S,
    )
    assert found, url
    return _text(found.group(1))


def test_flags_in_words_on_the_submission_page_and_a_marker_on_its_row(services, tmp_path):
    """A visit whose activity photo was also sent as another form's evidence, was taken six
    weeks before the visit 3 km away, and has a resized copy in a third submission."""
    from storage import forms as form_store

    project = make_project(services)
    form_store.publish_xlsform(
        services.db, services.blobs, project.id, VISIT_FORM.read_bytes(), VISIT_FORM.name
    )
    publish(services, project)  # foto_sederhana
    officer = make_app_user(services, project, "Petugas Talawi")
    email = _supervisor(services, project, "Budi Pengawas")
    seed = unique_seed()
    far = (POINT[0], POINT[1] + 0.03)
    photo = encode(scene(seed), exif=exif_of("2026:10:09 09:30:00", far), quality=90)
    copy = encode(scene(seed).resize((320, 240)), exif=exif_of("2026:11:20 10:00:00"), quality=70)
    body = (
        "<mulai>2026-11-20T08:00:00.000+07:00</mulai><g_kunjungan><tgl_kunjungan>2026-11-20"
        "</tgl_kunjungan><lokasi>-0.68 100.78 250 5</lokasi></g_kunjungan>"
        "<foto_kegiatan>kegiatan.jpg</foto_kegiatan><ttd></ttd>"
    )
    visit_id = new_instance_id()
    _send(
        services,
        project,
        tmp_path,
        instance_xml("kunjungan_foto", "1", visit_id, body, instance_name="Kunjungan Talawi"),
        {"kegiatan.jpg": photo},
        actor_id=officer.actor.id,
    )
    other_id, copy_id = new_instance_id(), new_instance_id()
    for iid, name, data in ((other_id, "Dukcapil", photo), (copy_id, "Salinan", copy)):
        xml = instance_xml("foto_sederhana", "1", iid, photo_body(name), instance_name=name)
        _send(services, project, tmp_path, xml, {"utama.jpg": data})

    visit_url = f"/p/{project.id}/f/kunjungan_foto/s/{quote(visit_id, safe='')}"
    other_url = f"/p/{project.id}/f/foto_sederhana/s/{quote(other_id, safe='')}"
    copy_url = f"/p/{project.id}/f/foto_sederhana/s/{quote(copy_id, safe='')}"
    with make_client(services) as client:
        login(client, email)
        assert client.get(copy_url).status_code == 200  # showing the copy analyses it
        page = client.get(visit_url)
        assert page.status_code == 200
        text = _text(page.text)
        # Each flag in words, on the thumbnail (chips with their sentence as the title) ...
        assert 'title="Berkas yang sama ada di Dukcapil (formulir Foto sederhana)"' in page.text
        assert re.search(
            r'<span class="flag-near_duplicate" title="Mirip foto di Salinan', page.text
        )
        # ... and in the photo checks: links to the other submissions, the copy's thumbnail
        assert evidence(page.text, other_url) == "Dukcapil (formulir Foto sederhana)"
        assert f'href="{copy_url}"><img src="{copy_url}/thumb/320/utama.jpg?v=' in page.text
        assert re.search(r"selisih \d/64 dan \d+/256 bit", text)
        assert "Tanggal EXIF 2026-10-09, tanggal kunjungan 2026-11-20 (selisih 42 hari)" in text
        assert re.search(r"Diambil 3,\d km dari lokasi kunjungan", text)
        assert "flag-no_exif" not in page.text
        # The duplicate seen from the other form's submission links back to the visit.
        other = client.get(other_url).text
        assert evidence(other, visit_url) == "Kunjungan Talawi (formulir Kunjungan foto)"
        # The evidence board: the same words on its tiles and in the photo viewer's caption.
        board = client.get(f"/p/{project.id}/f/kunjungan_foto/board").text
        assert 'title="Berkas yang sama ada di Dukcapil (formulir Foto sederhana)"' in board
        assert evidence(board, other_url) == "Dukcapil (formulir Foto sederhana)"
        # The list row carries a marker naming the flags.
        listing = client.get(f"/p/{project.id}/f/kunjungan_foto").text
        mark = re.search(r'<div class="flag-mark" title="([^"]*)">(.*?)</div>', listing, re.S)
        assert mark and _text(mark.group(2)) == "⚑ duplikat, mirip, tanggal, jauh"
        assert mark.group(1) == "Pemeriksaan foto: duplikat, mirip, tanggal, jauh"
        client.get("/lang/en")
        page = client.get(visit_url).text
        english = _text(page)
        assert 'title="Same file as in Dukcapil (form Foto sederhana)"' in page
        assert "The same file is in: Dukcapil (form Foto sederhana)" in english
        assert "EXIF date 2026-10-09, visit date 2026-11-20 (42 days apart)" in english
        assert re.search(r"Taken 3\.\d km from the visit location", english)


def test_comments_and_history_say_who_did_what(services, tmp_path):
    project = make_project(services)
    publish(services, project, "entitas_daftar")
    officer = make_app_user(services, project, "Petugas Talawi")
    email = _supervisor(services, project, "Budi Pengawas")
    iid = f"uuid:{uuid.uuid4()}"
    entity = (
        f'<entity dataset="inovasi" create="1" id="uuid:{uuid.uuid4()}">'
        "<label>Siaga Banjir</label></entity>"
    )
    xml = (
        f'<data id="entitas_daftar" version="1"><opd>bpbd</opd><nama>Siaga Banjir</nama>'
        f"<tahap>inisiatif</tahap><meta><instanceID>{iid}</instanceID>{entity}</meta></data>"
    ).encode()
    _send(services, project, tmp_path, xml, {}, actor_id=officer.actor.id)
    url = f"/p/{project.id}/f/entitas_daftar/s/{iid}"
    with make_client(services) as client:
        login(client, email)
        token = client.cookies["jebol_csrf"]
        client.post(
            f"{url}/review",
            data={
                "state": "hasIssues",
                "comment": "Foto daftar hadir dipakai ulang",
                "_csrf_token": token,
            },
        )
        text = _text(client.get(url).text)
        assert re.search(
            r"Budi Pengawas · \d{4}-\d\d-\d\d \d\d:\d\d \w+ Foto daftar hadir dipakai ulang", text
        )
        history = text[text.index("Riwayat") :] if "Riwayat" in text else text
        for line in (
            "Ditinjau: Bermasalah — oleh Budi Pengawas",
            "Komentar ditambahkan — oleh Budi Pengawas",
            "Entitas dibuat: Siaga Banjir (daftar inovasi) — oleh Petugas Talawi",
            "Kiriman diterima — oleh Petugas Talawi",
        ):
            assert line in history, line
        assert "submission.update" not in text and "hasIssues" not in text
        client.get("/lang/en")
        english = _text(client.get(url).text)
        assert "Review: Has issues — by Budi Pengawas" in english
        assert "Submission received — by Petugas Talawi" in english
