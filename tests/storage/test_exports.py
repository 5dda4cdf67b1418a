"""storage.exports: keyset batches of current versions, filters, and checks made before any byte."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from sqlmodel import select

from storage import exports, submissions
from storage.errors import InvalidInput, NotFound
from storage.exports import ExportFilters, ExportOptions
from storage.forms import get_form
from storage.models import Audit
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.factories import jpeg, make_app_user, make_project, photo_body, publish


@dataclass
class Data:
    project_id: int
    submitter: int
    ids: list[str]  # current submissions, oldest first: edited, approved, missing photo, plain


@pytest.fixture(scope="module")
def data(services, tmp_path_factory) -> Data:
    tmp = tmp_path_factory.mktemp("storage-exports")
    project = make_project(services)
    publish(services, project)
    phone = make_app_user(services, project, "Petugas ekspor")
    sender = Sender(actor_id=phone.actor.id, device_id="collect:1")

    def send(body: str, photos: dict[str, bytes], deprecated_id: str | None = None) -> str:
        instance_id = new_instance_id()
        parts = []
        for name, content in photos.items():
            path = tmp / f"{instance_id[5:]}-{name}"
            path.write_bytes(content)
            parts.append(IncomingFile(name, path, len(content),
                                      hashlib.sha256(content).hexdigest()))
        submissions.ingest(services.db, services.blobs, project.id,
                           instance_xml("foto_sederhana", "1", instance_id, body,
                                        deprecated_id=deprecated_id), parts, sender=sender)
        return instance_id

    first = send(photo_body("Asli", main="a.jpg"), {"a.jpg": jpeg(seed=1)})
    send(photo_body("Diubah", main="a.jpg"), {}, deprecated_id=first)
    approved = send(photo_body("Setuju", main="b.jpg", evidence=["c.jpg"]),
                    {"b.jpg": jpeg(seed=2), "c.jpg": jpeg(seed=3)})
    missing = send(photo_body("Kurang", main="d.jpg"), {})
    gone = send(photo_body("Hapus", main=None), {})
    plain = send(photo_body("Biasa", main=None), {})
    submissions.set_review_state(services.db, project.id, "foto_sederhana", approved,
                                 "approved", actor_id=None)
    submissions.soft_delete(services.db, project.id, "foto_sederhana", gone, actor_id=None)
    return Data(project.id, phone.actor.id, [first, approved, missing, plain])


def _form(services, data):
    return get_form(services.db, data.project_id, "foto_sederhana")


def test_rows_come_in_short_batches_read_one_ahead(services, data, monkeypatch):
    form = _form(services, data)
    reads = []
    original = services.db.read

    @contextmanager
    def counted():
        reads.append(1)
        with original() as tx:
            yield tx

    monkeypatch.setattr(services.db, "read", counted)
    seen = []
    for row in exports.iter_rows(services.db, form, batch=2):
        assert services.db.engine.pool.checkedout() <= 1  # at most the next batch being read
        seen.append(row.instance_id)
    assert seen == data.ids
    assert len(reads) == 1 + 3  # the form's versions, two batches of two, one finding the end


def test_counting_attachments_in_the_database_gives_the_same_counts(services, data):
    form = _form(services, data)
    listed = {r.instance_id: r for r in exports.iter_rows(services.db, form)}
    counted = {r.instance_id: r for r in exports.iter_rows(services.db, form, files=False)}
    assert [(r.attachments_present, r.attachments_expected) for r in counted.values()] == \
        [(r.attachments_present, r.attachments_expected) for r in listed.values()]
    assert {(r.attachments_present, r.attachments_expected) for r in counted.values()} == \
        {(1, 1), (2, 2), (0, 1), (0, 0)}
    assert all(r.attachments == () for r in counted.values())


def test_row_facts_are_those_of_the_current_version(services, data):
    rows = {r.instance_id: r for r in exports.iter_rows(services.db, _form(services, data))}
    edited, approved, missing, plain = (rows[i] for i in data.ids)
    assert (edited.values["nama"], edited.edits, edited.review_state, edited.form_version) == \
        ("Diubah", 1, "edited", "1")
    assert edited.current_instance_id != edited.instance_id
    assert [a.name for a in edited.attachments] == ["a.jpg"]  # carried over by the edit
    assert (approved.attachments_present, approved.attachments_expected) == (2, 2)
    assert {a.name for a in approved.attachments} == {"b.jpg", "c.jpg"}
    assert all(a.size > 0 and len(a.sha256) == 64 for a in approved.attachments)
    assert (missing.attachments_present, missing.attachments_expected, missing.attachments) == \
        (0, 1, ())
    assert (plain.submitter_id, plain.submitter_name, plain.device_id) == \
        (data.submitter, "Petugas ekspor", "collect:1")
    assert plain.meta.instance_id == plain.instance_id and plain.edits == 0


@pytest.mark.parametrize("filters, expected", [
    (ExportFilters(approved_only=True), [1]),
    (ExportFilters(review_state="received"), [2, 3]),
    (ExportFilters(review_state="edited"), [0]),
    (ExportFilters(since=datetime.now(timezone.utc) + timedelta(hours=1)), []),
    (ExportFilters(until=datetime.now(timezone.utc) + timedelta(hours=1),
                   submitter_id="SUBMITTER"), [0, 1, 2, 3]),
    (ExportFilters(submitter_id=-1), []),
    (ExportFilters(opd="dinkes"), []),  # the form has no OPD question
])
def test_filters_and_count_agree(services, data, filters, expected):
    if filters.submitter_id == "SUBMITTER":
        filters = ExportFilters(until=filters.until, submitter_id=data.submitter)
    form = _form(services, data)
    found = [r.instance_id for r in exports.iter_rows(services.db, form, filters)]
    assert found == [data.ids[i] for i in expected]
    assert exports.count_rows(services.db, form, filters) == len(expected)


@pytest.mark.parametrize("options, error", [
    (ExportOptions("pdf"), InvalidInput),
    (ExportOptions("csv", ExportFilters(review_state="selesai")), InvalidInput),
    (ExportOptions("media", question="nama"), InvalidInput),
    (ExportOptions("csv", ExportFilters(since=datetime(2026, 1, 1))), InvalidInput),
])
def test_open_export_refuses_before_reading(services, data, options, error):
    with pytest.raises(error):
        exports.open_export(services.db, services.blobs, data.project_id, "foto_sederhana",
                            options)
    with pytest.raises(NotFound):
        exports.open_export(services.db, services.blobs, data.project_id, "tidak_ada",
                            ExportOptions("csv"))


def test_open_export_is_audited_and_lazy(services, data):
    export = exports.open_export(services.db, services.blobs, data.project_id,
                                 "foto_sederhana", ExportOptions("csv"), actor_id=data.submitter)
    assert export.filename == "foto_sederhana.csv"
    with services.db.read() as tx:
        entry = tx.exec(select(Audit).where(Audit.action == "form.submission.export",
                                            Audit.actor_id == data.submitter)).one()
    assert entry.details == {"format": "csv", "approvedOnly": False}
    text = b"".join(export.chunks).decode()
    assert text.count("\n") == 5 and "Diubah" in text


@pytest.mark.parametrize("attachments", [False, True])
def test_a_csv_zip_made_by_two_processes_equals_the_one_made_by_one(services, data,
                                                                    attachments, tmp_path):
    import io
    import zipfile

    def made(split_rows, progress=None):
        export = exports.open_export(
            services.db, services.blobs, data.project_id, "foto_sederhana",
            ExportOptions("csv.zip", attachments=attachments), tmp_dir=str(tmp_path),
            split_rows=split_rows, progress=progress)
        archive = zipfile.ZipFile(io.BytesIO(b"".join(export.chunks)))
        return {name: archive.read(name) for name in archive.namelist()}

    counted = []
    alone, split = made(None), made(2, counted.append)
    assert split == alone
    assert sum(counted) == 4 and len(counted) >= 2  # this process' half, then the helper's
    root = alone["foto_sederhana.csv"].decode().splitlines()
    assert len(root) == 5 and [line.split(",")[-10] for line in root[1:]] == data.ids
    assert ("media/a.jpg" in alone) is attachments
    assert list(tmp_path.iterdir()) == []  # the helper's folder is gone


def test_a_closed_split_export_stops_its_helper(services, data, tmp_path):
    export = exports.open_export(services.db, services.blobs, data.project_id, "foto_sederhana",
                                 ExportOptions("csv.zip", attachments=False),
                                 tmp_dir=str(tmp_path), split_rows=2)
    next(export.chunks)
    export.chunks.close()
    assert list(tmp_path.iterdir()) == []
