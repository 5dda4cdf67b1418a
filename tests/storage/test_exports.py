"""storage.exports: keyset batches of current versions, filters, and checks made before any byte."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

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
            parts.append(
                IncomingFile(name, path, len(content), hashlib.sha256(content).hexdigest())
            )
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml("foto_sederhana", "1", instance_id, body, deprecated_id=deprecated_id),
            parts,
            sender=sender,
        )
        return instance_id

    first = send(photo_body("Asli", main="a.jpg"), {"a.jpg": jpeg(seed=1)})
    send(photo_body("Diubah", main="a.jpg"), {}, deprecated_id=first)
    approved = send(
        photo_body("Setuju", main="b.jpg", evidence=["c.jpg"]),
        {"b.jpg": jpeg(seed=2), "c.jpg": jpeg(seed=3)},
    )
    missing = send(photo_body("Kurang", main="d.jpg"), {})
    gone = send(photo_body("Hapus", main=None), {})
    plain = send(photo_body("Biasa", main=None), {})
    submissions.set_review_state(
        services.db, project.id, "foto_sederhana", approved, "approved", actor_id=None
    )
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
    assert [
        (r.meta.attachments_present, r.meta.attachments_expected) for r in counted.values()
    ] == [(r.meta.attachments_present, r.meta.attachments_expected) for r in listed.values()]
    assert {
        (r.meta.attachments_present, r.meta.attachments_expected) for r in counted.values()
    } == {
        (1, 1),
        (2, 2),
        (0, 1),
        (0, 0),
    }
    assert all(r.attachments == () for r in counted.values())


def test_row_facts_are_those_of_the_current_version(services, data):
    rows = {r.instance_id: r for r in exports.iter_rows(services.db, _form(services, data))}
    edited, approved, missing, plain = (rows[i] for i in data.ids)
    assert (
        edited.values["nama"],
        edited.meta.edits,
        edited.meta.review_state,
        edited.meta.form_version,
    ) == (
        "Diubah",
        1,
        "edited",
        "1",
    )
    assert edited.meta.current_instance_id != edited.instance_id
    assert [a.name for a in edited.attachments] == ["a.jpg"]  # carried over by the edit
    assert (approved.meta.attachments_present, approved.meta.attachments_expected) == (2, 2)
    assert {a.name for a in approved.attachments} == {"b.jpg", "c.jpg"}
    assert all(a.size > 0 and len(a.sha256) == 64 for a in approved.attachments)
    assert (
        missing.meta.attachments_present,
        missing.meta.attachments_expected,
        missing.attachments,
    ) == (
        0,
        1,
        (),
    )
    assert (plain.meta.submitter_id, plain.meta.submitter_name, plain.meta.device_id) == (
        data.submitter,
        "Petugas ekspor",
        "collect:1",
    )
    assert plain.meta.instance_id == plain.instance_id and plain.meta.edits == 0


@pytest.mark.parametrize(
    "filters, expected",
    [
        (ExportFilters(approved_only=True), [1]),
        (ExportFilters(review_state="received"), [2, 3]),
        (ExportFilters(review_state="edited"), [0]),
        (ExportFilters(since=datetime.now(UTC) + timedelta(hours=1)), []),
        (
            ExportFilters(until=datetime.now(UTC) + timedelta(hours=1), submitter_id="SUBMITTER"),
            [0, 1, 2, 3],
        ),
        (ExportFilters(submitter_id=-1), []),
        (ExportFilters(opd="dinkes"), []),  # the form has no OPD question
    ],
)
def test_filters_and_count_agree(services, data, filters, expected):
    if filters.submitter_id == "SUBMITTER":
        filters = ExportFilters(until=filters.until, submitter_id=data.submitter)
    form = _form(services, data)
    found = [r.instance_id for r in exports.iter_rows(services.db, form, filters)]
    assert found == [data.ids[i] for i in expected]
    assert exports.count_rows(services.db, form, filters) == len(expected)


@pytest.mark.parametrize(
    "options, error",
    [
        (ExportOptions("pdf"), InvalidInput),
        (ExportOptions("csv", ExportFilters(review_state="selesai")), InvalidInput),
        (ExportOptions("media", question="nama"), InvalidInput),
        (ExportOptions("csv", ExportFilters(since=datetime(2026, 1, 1))), InvalidInput),
    ],
)
def test_open_export_refuses_before_reading(services, data, options, error):
    with pytest.raises(error):
        exports.open_export(services.db, services.blobs, data.project_id, "foto_sederhana", options)
    with pytest.raises(NotFound):
        exports.open_export(
            services.db, services.blobs, data.project_id, "tidak_ada", ExportOptions("csv")
        )


def test_open_export_is_audited_and_lazy(services, data):
    export = exports.open_export(
        services.db,
        services.blobs,
        data.project_id,
        "foto_sederhana",
        ExportOptions("csv"),
        actor_id=data.submitter,
    )
    assert export.filename == "foto_sederhana.csv"
    with services.db.read() as tx:
        entry = tx.exec(
            select(Audit).where(
                Audit.action == "form.submission.export", Audit.actor_id == data.submitter
            )
        ).one()
    assert entry.details == {"format": "csv", "approvedOnly": False}
    text = b"".join(export.chunks).decode()
    assert text.count("\n") == 5 and "Diubah" in text


def test_progress_counts_every_submission(services, data, tmp_path):
    counted: list[int] = []
    export = exports.open_export(
        services.db,
        services.blobs,
        data.project_id,
        "foto_sederhana",
        ExportOptions("csv.zip", attachments=False),
        tmp_dir=str(tmp_path),
        progress=counted.append,
    )
    b"".join(export.chunks)
    assert sum(counted) == 4


# ---- zip entry names (issue #11) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def clashing(services, tmp_path_factory) -> tuple[int, dict[tuple[str, str], bytes]]:
    """Attachments whose names clash once sanitised or once case is ignored: `m:erge.jpg` and
    `merge.jpg` in one submission, another `Merge.jpg`, another `merge.jpg` with other bytes,
    the first `merge.jpg`'s bytes again, and a name sanitised to nothing. Returns the project
    and every (KEY, name) -> bytes."""
    tmp = tmp_path_factory.mktemp("clashing")
    project = make_project(services)
    publish(services, project)
    expected: dict[tuple[str, str], bytes] = {}
    merge = jpeg(seed=101)
    sends = [
        ("m:erge.jpg", ["merge.jpg"], {"m:erge.jpg": jpeg(seed=100), "merge.jpg": merge}),
        ("Merge.jpg", [], {"Merge.jpg": jpeg(seed=102)}),
        ("merge.jpg", [], {"merge.jpg": jpeg(seed=103)}),
        ("MERGE.jpg", ["con.jpg"], {"MERGE.jpg": merge, "con.jpg": jpeg(seed=104)}),
    ]
    for main, evidence, photos in sends:
        iid = new_instance_id()
        parts = []
        for name, content in photos.items():
            path = tmp / f"{iid[5:]}-{len(parts)}"
            path.write_bytes(content)
            parts.append(
                IncomingFile(name, path, len(content), hashlib.sha256(content).hexdigest())
            )
            expected[iid, name] = content
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml("foto_sederhana", "1", iid, photo_body(main=main, evidence=evidence)),
            parts,
            sender=Sender(actor_id=None),
        )
    return project.id, expected


def _zip_of(services, project_id, options, tmp_path):
    import io
    import zipfile

    export = exports.open_export(
        services.db,
        services.blobs,
        project_id,
        "foto_sederhana",
        options,
        tmp_dir=str(tmp_path),
    )
    archive = zipfile.ZipFile(io.BytesIO(b"".join(export.chunks)))
    return archive.namelist(), {name: archive.read(name) for name in archive.namelist()}


def test_csv_zip_media_names_are_unique_and_every_cell_finds_its_file(services, clashing, tmp_path):
    project_id, expected = clashing
    names, files = _zip_of(services, project_id, ExportOptions("csv.zip"), tmp_path)
    assert len(names) == len({n.lower() for n in names}), names
    lines = files["renamed-files.txt"].decode().splitlines()
    assert lines[0] == "KEY\tname\tfile"
    renamed = {(key, name): entry for key, name, entry in (x.split("\t") for x in lines[1:])}
    for (key, name), content in expected.items():
        assert files[renamed.get((key, name), f"media/{name}")] == content, (key, name)
    keys = list(dict.fromkeys(key for key, _ in expected))
    assert (keys[0], "merge.jpg") not in renamed  # a real merge.jpg keeps Central's name
    assert renamed[keys[0], "m:erge.jpg"].endswith("/merge.jpg")
    assert renamed[keys[3], "con.jpg"].endswith("/file.jpg")
    root = files["foto_sederhana.csv"].decode()
    assert "m:erge.jpg" in root and "Merge.jpg" in root  # the cells keep the names sent
    # The same bytes under one name are stored once.
    assert sum(1 for content in files.values() if content == expected[keys[0], "merge.jpg"]) == 1


def test_media_zip_names_are_unique_case_aside(services, tmp_path):
    """`Budi` and `budi` visited the same day: two photos, not one once unzipped on Windows."""
    project = make_project(services)
    publish(services, project)
    photos = {}
    for i, who in enumerate(["Budi", "budi", "BUDI"]):
        iid = new_instance_id()
        photos[iid] = jpeg(seed=110 + i)
        path = tmp_path / f"p{i}"
        path.write_bytes(photos[iid])
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml("foto_sederhana", "1", iid, photo_body(who), instance_name=who),
            [
                IncomingFile(
                    "utama.jpg", path, len(photos[iid]), hashlib.sha256(photos[iid]).hexdigest()
                )
            ],
            sender=Sender(actor_id=None),
        )
    names, files = _zip_of(services, project.id, ExportOptions("media"), tmp_path)
    assert len(names) == 3 and len({n.lower() for n in names}) == 3, names
    assert sorted(files.values()) == sorted(photos.values())


def test_csv_zip_table_files_are_unique_case_aside():
    """Repeats `Foto` and `foto` (XML names differ by case) would unzip to one file."""
    from forms.exports.csvfiles import _table_files
    from forms.tabular import Layout
    from forms.xform import Field, Schema

    fields = [
        Field("/Foto", "Foto", "repeat"),
        Field("/Foto/a", "a", "string"),
        Field("/foto", "foto", "repeat"),
        Field("/foto/b", "b", "string"),
        Field("/meta", "meta", "structure"),
        Field("/meta/instanceID", "instanceID", "string"),
    ]
    files = _table_files(Layout(Schema("f", "1", "F", "data", [], fields, [])))
    assert files == ["f.csv", "f-Foto.csv", "f-foto~2.csv"]
