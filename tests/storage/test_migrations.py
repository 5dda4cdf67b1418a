"""The migrations build exactly the schema the models describe, on every backend."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)


def test_models_and_migrations_agree(services):
    with services.db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


def test_0005_keeps_the_rows_and_their_foreign_keys(services, tmp_path):
    """From 0004 with rows in every retyped table (and rows pointing at them) to head: the
    values are intact, long text is then accepted, and the schema equals the models'."""
    import hashlib

    from alembic import command
    from alembic.config import Config

    from storage import forms as form_store
    from storage import projects, submissions
    from storage.blobs import LocalBlobStore
    from storage.db import MIGRATIONS, Database
    from storage.submissions import IncomingFile, Sender
    from tests.collect import instance_xml, new_instance_id
    from tests.factories import DATA, jpeg, photo_body
    from tests.services import ThrowawayPostgres

    postgres = ThrowawayPostgres() if services.db.dialect == "postgresql" else None
    url = postgres.create() if postgres else f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    try:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "0004")
        blobs = LocalBlobStore(tmp_path / "blobs")
        project = projects.create_project(db, "Proyek lama")
        form = DATA / "foto_sederhana.md"
        form_store.publish_xlsform(db, blobs, project.id, form.read_bytes(), form.name)
        photo = jpeg(seed=90)
        (tmp_path / "p").write_bytes(photo)
        iid = new_instance_id()
        submissions.ingest(
            db,
            blobs,
            project.id,
            instance_xml("foto_sederhana", "1", iid, photo_body(), instance_name="Lama"),
            [
                IncomingFile(
                    "utama.jpg", tmp_path / "p", len(photo), hashlib.sha256(photo).hexdigest()
                )
            ],
            sender=Sender(actor_id=None, device_id="collect:lama", user_agent="UA"),
        )

        db.migrate()
        view = submissions.get_submission(db, project.id, "foto_sederhana", iid)
        assert (view.current.instance_name, view.current.device_id) == ("Lama", "collect:lama")
        assert [a.blob_sha256 for a in view.attachments] == [hashlib.sha256(photo).hexdigest()]
        long_id = new_instance_id()
        submissions.ingest(
            db,
            blobs,
            project.id,
            instance_xml(
                "foto_sederhana", "1", long_id, photo_body(main=None), instance_name="n" * 3000
            ),
            sender=Sender(actor_id=None, device_id="d" * 700),
        )
        assert (
            submissions.get_submission(db, project.id, "foto_sederhana", long_id).current.device_id
            == "d" * 700
        )
        with db.engine.connect() as connection:
            if db.dialect == "sqlite":
                assert connection.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                assert connection.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            differences = compare_metadata(
                MigrationContext.configure(connection), SQLModel.metadata
            )
        assert differences == []
    finally:
        db.dispose()
        if postgres:
            postgres.drop()
