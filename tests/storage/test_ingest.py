"""Storage rules on each backend: publishing versions and ingesting submissions."""

from __future__ import annotations

import hashlib
import os

import pytest
from sqlmodel import select

from storage import forms as form_store
from storage import submissions
from storage.blobs import S3BlobStore, blob_key
from storage.errors import BlobUnavailable, Conflict, InvalidInput, NotFound, XmlConflict
from storage.models import Blob
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.factories import DATA, jpeg, make_project, photo_body, publish
from tests.services import free_port

SENDER = Sender(actor_id=None, device_id="collect:x", user_agent="test")


def _file(tmp_path, name, data):
    path = tmp_path / f"part-{hashlib.sha1(name.encode()).hexdigest()}"
    path.write_bytes(data)
    return IncomingFile(name, path, len(data), hashlib.sha256(data).hexdigest(), "image/jpeg")


def test_publish_is_idempotent_and_versions_must_change(services):
    project = make_project(services)
    first = publish(services, project, "tanpa_media")
    again = publish(services, project, "tanpa_media")
    assert (first.outcome, again.outcome) == ("created", "unchanged")
    assert again.version.id == first.version.id
    changed = (DATA / "tanpa_media.md").read_text().replace("Catatan", "Catatan baru")
    with pytest.raises(Conflict, match="already published"):
        form_store.publish_xlsform(
            services.db, services.blobs, project.id, changed.encode(), "t.md"
        )
    bumped = changed.replace("2024010101", "2024010102")
    updated = form_store.publish_xlsform(
        services.db, services.blobs, project.id, bumped.encode(), "t.md"
    )
    assert updated.outcome == "updated"
    [(form, current)] = form_store.list_forms(services.db, project.id)
    assert current.version == "2024010102"
    assert form_store.find_published_version(services.db, form, "2024010101") is not None


def test_draft_is_not_listed_for_phones(services):
    project = make_project(services)
    result = form_store.publish_xlsform(
        services.db,
        services.blobs,
        project.id,
        (DATA / "tanpa_media.md").read_bytes(),
        "t.md",
        publish=False,
    )
    assert result.version.published_at is None
    assert form_store.list_forms(services.db, project.id, for_phones=True) == []


def test_same_photo_in_two_submissions_is_stored_once(services, tmp_path):
    project = make_project(services)
    publish(services, project)
    photo = jpeg(seed=21)
    for _ in range(2):
        xml = instance_xml("foto_sederhana", "1", new_instance_id(), photo_body())
        result = submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            xml,
            [_file(tmp_path, "utama.jpg", photo)],
            sender=SENDER,
        )
        assert result.outcome == "created" and result.missing == []
    digest = hashlib.sha256(photo).hexdigest()
    with services.db.read() as tx:
        assert len(tx.exec(select(Blob).where(Blob.sha256 == digest)).all()) == 1
    assert services.blobs.read_bytes(blob_key(digest)) == photo


def test_outcomes_created_retried_conflict_edited(services, tmp_path):
    project = make_project(services)
    publish(services, project)
    iid = new_instance_id()
    xml = instance_xml("foto_sederhana", "1", iid, photo_body(evidence=["b.jpg"]))
    created = submissions.ingest(services.db, services.blobs, project.id, xml, [], sender=SENDER)
    assert created.outcome == "created" and sorted(created.missing) == ["b.jpg", "utama.jpg"]
    retried = submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        xml,
        [_file(tmp_path, "b.jpg", jpeg(seed=1))],
        sender=SENDER,
    )
    assert retried.outcome == "retried" and retried.missing == ["utama.jpg"]
    with pytest.raises(XmlConflict):
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            xml.replace(b"Budi", b"Andi"),
            [],
            sender=SENDER,
        )
    edit = instance_xml(
        "foto_sederhana",
        "1",
        new_instance_id(),
        photo_body("Andi", evidence=["b.jpg"]),
        deprecated_id=iid,
    )
    edited = submissions.ingest(services.db, services.blobs, project.id, edit, [], sender=SENDER)
    assert edited.outcome == "edited" and edited.missing == ["utama.jpg"]  # b.jpg carried over
    with pytest.raises(Conflict, match="not the current"):
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            instance_xml("foto_sederhana", "1", new_instance_id(), photo_body(), deprecated_id=iid),
            [],
            sender=SENDER,
        )


def test_unknown_deprecated_id_is_not_found(services):
    project = make_project(services)
    publish(services, project)
    xml = instance_xml(
        "foto_sederhana", "1", new_instance_id(), photo_body(), deprecated_id="uuid:nowhere"
    )
    with pytest.raises(NotFound):
        submissions.ingest(services.db, services.blobs, project.id, xml, [], sender=SENDER)


def test_unreachable_blob_store_stores_nothing(services, tmp_path):
    """The object store is down: the error is BlobUnavailable and no row is written. (The file
    is new: one a committed row already names is not sent to the store at all.)"""
    project = make_project(services)
    publish(services, project)
    dead = S3BlobStore(f"127.0.0.1:{free_port()}", "x", "y", bucket="dead")
    iid = new_instance_id()
    xml = instance_xml("foto_sederhana", "1", iid, photo_body())
    with pytest.raises(BlobUnavailable):
        submissions.ingest(
            services.db,
            dead,
            project.id,
            xml,
            [_file(tmp_path, "utama.jpg", jpeg(seed=3) + os.urandom(16))],
            sender=SENDER,
        )
    with pytest.raises(NotFound):
        submissions.get_submission(services.db, project.id, "foto_sederhana", iid)


def test_sqlite_runs_with_wal_and_foreign_keys(services):
    if services.db.dialect != "sqlite":
        pytest.skip("SQLite only")
    with services.db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_migrations_are_idempotent(services):
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from storage.db import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    services.db.migrate()
    with services.db.engine.connect() as connection:
        assert (
            connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == head
        )


# ---- the same text accepted or refused on every database (issue #11) ---------------------------


def test_long_client_text_is_kept_whole_on_every_database(services):
    """PostgreSQL used to refuse (VARCHAR limits) what SQLite kept: an instanceName over 1,024
    characters, a deviceID over 255, a long user agent, project name or display name."""
    from storage import projects, users

    project = projects.create_project(services.db, "Proyek " + "p" * 600)
    publish(services, project)
    name, device, agent = "Nama " + "n" * 5000, "collect:" + "d" * 400, "UA/" + "u" * 2000
    iid = new_instance_id()
    xml = instance_xml("foto_sederhana", "1", iid, photo_body(), instance_name=name)
    submissions.ingest(
        services.db,
        services.blobs,
        project.id,
        xml,
        [],
        sender=Sender(actor_id=None, device_id=device, user_agent=agent),
    )
    view = submissions.get_submission(services.db, project.id, "foto_sederhana", iid)
    assert (view.current.instance_name, view.current.device_id, view.current.user_agent) == (
        name,
        device,
        agent,
    )
    assert (view.submission.device_id, view.submission.user_agent) == (device, agent)
    assert projects.get_project(services.db, project.id).name == "Proyek " + "p" * 600
    email = "u" * 300 + "@example.org"  # a valid address, and the default display name
    user = users.create_user(services.db, email, "kata-sandi-panjang")
    with services.db.read() as tx:
        from storage.models import Actor

        assert tx.get(Actor, user.actor_id).display_name == email


@pytest.mark.parametrize("meta", ["instance", "deprecated"])
def test_an_instance_id_past_its_limit_is_the_same_400_everywhere(services, meta):
    from forms.errors import SubmissionInvalid

    project = make_project(services)
    publish(services, project)
    long_id = "uuid:" + "9" * 251
    xml = (
        instance_xml("foto_sederhana", "1", long_id, photo_body())
        if meta == "instance"
        else instance_xml(
            "foto_sederhana", "1", new_instance_id(), photo_body(), deprecated_id=long_id
        )
    )
    with pytest.raises(SubmissionInvalid, match="longer than 255 characters"):
        submissions.ingest(services.db, services.blobs, project.id, xml, [], sender=SENDER)


def test_a_nul_in_client_text_is_the_same_400_everywhere(services):
    """PostgreSQL cannot store NUL in text, SQLite can: refused on both before any write."""
    project = make_project(services)
    publish(services, project)
    iid = new_instance_id()
    xml = instance_xml("foto_sederhana", "1", iid, photo_body())
    with pytest.raises(InvalidInput, match="NUL"):
        submissions.ingest(
            services.db,
            services.blobs,
            project.id,
            xml,
            [],
            sender=Sender(actor_id=None, device_id="collect:\x00x"),
        )
    with pytest.raises(NotFound):
        submissions.get_submission(services.db, project.id, "foto_sederhana", iid)


@pytest.mark.parametrize("attribute", ["id", "version"])
def test_an_indexed_form_name_past_its_limit_is_the_same_400_everywhere(services, attribute):
    """Form ids and versions stay VARCHAR(255) (indexed): a longer one is refused by name
    before the database sees it, on SQLite (which would have kept it) as on PostgreSQL."""
    project = make_project(services)
    xml = publish(services, project).version.xml
    old = b'id="foto_sederhana"' if attribute == "id" else b'version="1"'
    new = attribute.encode() + b'="' + b"f" * 300 + b'"'
    with pytest.raises(InvalidInput, match="longer than 255 characters"):
        form_store.publish_xform(
            services.db, services.blobs, make_project(services).id, xml.replace(old, new, 1)
        )
