"""The migrations build exactly the schema the models describe, on every backend."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401  (registers the tables)
from storage.db import Database


def test_models_and_migrations_agree(services):
    with services.db.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    assert differences == []


@contextmanager
def database_at(services, tmp_path, revision: str) -> Iterator[tuple[Database, Callable]]:
    """A throwaway database of the test's backend migrated to `revision`, and a function that
    moves it to another revision (`down=True` to downgrade); dropped afterwards."""
    from alembic import command
    from alembic.config import Config

    from storage.db import MIGRATIONS
    from tests.services import ThrowawayPostgres

    postgres = ThrowawayPostgres() if services.db.dialect == "postgresql" else None
    url = postgres.create() if postgres else f"sqlite:///{tmp_path / 'old.db'}"
    db = Database(url)
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))

    def to(target: str, down: bool = False) -> None:
        with db.engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, target)

    try:
        to(revision)
        yield db, to
    finally:
        db.dispose()
        if postgres:
            postgres.drop()


@contextmanager
def later_columns(db: Database) -> Iterator[None]:
    """Today's code writes the columns later revisions add (0010's search_text): they exist
    while it writes rows into an older schema, and are dropped again before the upgrade."""
    with db.engine.begin() as connection:
        connection.exec_driver_sql("ALTER TABLE submission_version ADD COLUMN search_text TEXT")
    try:
        yield
    finally:
        with db.engine.begin() as connection:
            connection.exec_driver_sql("ALTER TABLE submission_version DROP COLUMN search_text")


def test_0005_keeps_the_rows_and_their_foreign_keys(services, tmp_path):
    """From 0004 with rows in every retyped table (and rows pointing at them) to head: the
    values are intact, long text is then accepted, and the schema equals the models'."""
    import hashlib

    from storage import forms as form_store
    from storage import projects, submissions
    from storage.blobs import LocalBlobStore
    from storage.submissions import IncomingFile, Sender
    from tests.collect import instance_xml, new_instance_id
    from tests.factories import DATA, jpeg, photo_body

    with database_at(services, tmp_path, "0004") as (db, _):
        blobs = LocalBlobStore(tmp_path / "blobs")
        project = projects.create_project(db, "Proyek lama")
        form = DATA / "foto_sederhana.md"
        form_store.publish_xlsform(db, blobs, project.id, form.read_bytes(), form.name)
        photo = jpeg(seed=90)
        (tmp_path / "p").write_bytes(photo)
        iid = new_instance_id()
        with later_columns(db):
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


def test_0007_renames_officer_and_keeps_every_phone_its_forms(services, tmp_path):
    """From 0006 with an officer and app users to head: the officer is Central's formfill, each
    live app user is assigned the forms it filled until now; the downgrade renames back."""
    from sqlmodel import select

    from storage import app_users, projects, roles, users
    from storage import forms as form_store
    from storage.blobs import LocalBlobStore
    from storage.models import RoleAssignment
    from storage.tokens import TokenBox
    from tests.factories import DATA

    with database_at(services, tmp_path, "0006") as (db, to):
        blobs, box = LocalBlobStore(tmp_path / "blobs"), TokenBox("k" * 32)
        project = projects.create_project(db, "Proyek lama")
        for name in ("tanpa_media", "foto_sederhana"):
            form_store.publish_xlsform(
                db, blobs, project.id, (DATA / f"{name}.md").read_bytes(), f"{name}.md"
            )
        officer = users.create_user(db, "petugas-lama@uji.local")
        phone = app_users.create_app_user(db, box, project.id, "HP lama")
        gone = app_users.create_app_user(db, box, project.id, "HP dicabut")
        app_users.revoke_app_user_by_actor(db, project.id, gone.actor.id)
        with db.transaction() as tx:  # as the older code wrote them
            for actor in (officer.actor_id, phone.actor.id):
                tx.add(RoleAssignment(actor_id=actor, project_id=project.id, role="officer"))
        roles.assign_form(db, project.id, "tanpa_media", phone.actor.id)  # recorded before

        to("head")
        assert roles.list_assignments(db, project.id) == [(officer.actor_id, "formfill")]
        for name in ("tanpa_media", "foto_sederhana"):
            assert [a.id for a in roles.list_form_assignees(db, project.id, name)] == [
                phone.actor.id
            ]

        to("0006", down=True)
        with db.read() as tx:
            held = tx.exec(
                select(RoleAssignment.actor_id, RoleAssignment.role).where(
                    ~RoleAssignment.role.startswith("form:")
                )
            ).all()
        assert sorted(held) == sorted([(officer.actor_id, "officer"), (phone.actor.id, "officer")])


def test_0010_fills_the_search_text_of_the_rows_already_stored(services, tmp_path):
    """From 0009 with submissions to head: each current version's answers are searchable (the
    migration filled search_text as ingest writes it); the downgrade drops the column."""
    import sqlalchemy as sa
    from sqlmodel import select

    from storage import browse, projects, submissions
    from storage import forms as form_store
    from storage.blobs import LocalBlobStore
    from storage.models import SubmissionVersion
    from storage.search import SEPARATOR
    from storage.submissions import Sender
    from tests.collect import instance_xml, new_instance_id
    from tests.factories import DATA, photo_body

    with database_at(services, tmp_path, "0009") as (db, to):
        blobs = LocalBlobStore(tmp_path / "blobs")
        project = projects.create_project(db, "Proyek lama")
        source = DATA / "foto_sederhana.md"
        form_store.publish_xlsform(db, blobs, project.id, source.read_bytes(), source.name)
        with later_columns(db):
            for name in ("Désa Ñagari", "Budi"):
                submissions.ingest(
                    db,
                    blobs,
                    project.id,
                    instance_xml(
                        "foto_sederhana",
                        "1",
                        new_instance_id(),
                        photo_body(name, main=None),
                        instance_name=f"{name} Lama",
                    ),
                    sender=Sender(actor_id=None),
                )

        to("head")
        with db.read() as tx:
            texts = sorted(tx.exec(select(SubmissionVersion.search_text)).all())
        point = "-0.68 100.78 250 5"
        assert texts == [
            SEPARATOR.join(["budi lama", "budi", point]),
            SEPARATOR.join(["désa ñagari lama", "désa ñagari", point]),
        ]
        form = form_store.get_form(db, project.id, "foto_sederhana")
        found = browse.page_submissions(db, form, browse.Filters(text="DÉSA ñAGARI"))
        assert [r.version.instance_name for r in found.rows] == ["Désa Ñagari Lama"]

        to("0009", down=True)
        with db.engine.connect() as connection:
            columns = {c["name"] for c in sa.inspect(connection).get_columns("submission_version")}
        assert "search_text" not in columns and "values" in columns
        to("head")
        with db.engine.connect() as connection:
            differences = compare_metadata(
                MigrationContext.configure(connection), SQLModel.metadata
            )
        assert differences == []
