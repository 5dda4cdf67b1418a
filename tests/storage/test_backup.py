"""`jebol backup` / `jebol restore`, for real: data with photos, a backup taken while a writer
keeps ingesting, a restore into a new data folder, and the restored server's data checked
byte for byte. Backups cover the embedded default only, so these run on SQLite + a folder;
on PostgreSQL or S3 settings the commands refuse and point to the docs."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

from click.testing import CliRunner
from sqlmodel import select

from server.app import Services
from server.cli import main
from server.settings import Settings
from storage import backup, submissions
from storage.blobs import blob_key
from storage.models import Blob, SubmissionAttachment
from storage.submissions import IncomingFile, Sender
from tests.collect import instance_xml, new_instance_id
from tests.factories import jpeg, make_project, photo_body, publish


def _env(data: Path) -> dict[str, str]:
    return {
        "JEBOL_DATA_DIR": str(data),
        "JEBOL_DATABASE_URL": "",
        "JEBOL_BLOB_DIR": "",
        "JEBOL_S3_ENDPOINT": "",
    }


def _run(env: dict[str, str], *args: str):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _submit(services: Services, project_id: int, tmp: Path, photos: dict[str, bytes]) -> str:
    instance_id = new_instance_id()
    names = list(photos)
    xml = instance_xml(
        "foto_sederhana", "1", instance_id, photo_body(main=names[0], evidence=names[1:])
    )
    files = []
    for name, data in photos.items():
        part = tmp / f"{instance_id[5:]}-{name}"
        part.write_bytes(data)
        files.append(IncomingFile(name, part, len(data), hashlib.sha256(data).hexdigest()))
    submissions.ingest(
        services.db, services.blobs, project_id, xml, files, sender=Sender(actor_id=None)
    )
    return instance_id


def _world(tmp_path: Path) -> tuple[Services, int, dict[str, dict[str, bytes]]]:
    services = Services(Settings.from_env(_env(tmp_path / "a")))
    services.prepare()
    project = make_project(services)
    logo = tmp_path / "logo.png"
    logo.write_bytes(jpeg(seed=99))
    publish(services, project, "foto_sederhana", media={"logo.png": logo})
    kept = {}
    for n in range(3):
        photos = {"utama.jpg": jpeg(seed=n), f"bukti-{n}.jpg": jpeg(size=96, seed=100 + n)}
        kept[_submit(services, project.id, tmp_path, photos)] = photos
    return services, project.id, kept


def test_backup_while_writing_then_restore_into_a_new_folder(tmp_path, monkeypatch):
    source, project_id, kept = _world(tmp_path)
    copy_blobs = backup._blob_files

    def slow_copy(blob_dir):  # as with a big folder: the writer commits while blobs are copied
        for item in copy_blobs(blob_dir):
            time.sleep(0.05)
            yield item

    monkeypatch.setattr(backup, "_blob_files", slow_copy)
    spool = tmp_path / "spool"
    spool.mkdir()
    stop = threading.Event()
    written: list[str] = []

    def keep_writing() -> None:  # the "running server": ingests throughout the backup
        n = 1000
        while not stop.is_set():
            written.append(_submit(source, project_id, spool, {"utama.jpg": jpeg(seed=n)}))
            n += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        result = _run(_env(tmp_path / "a"), "backup", "-o", str(tmp_path / "out" / "b.tar"))
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert len(written) >= 3, "the writer made (almost) no submission during the backup"

    target = _env(tmp_path / "b")
    result = _run(target, "restore", str(tmp_path / "out" / "b.tar"))
    assert result.exit_code == 0, result.output
    again = _run(target, "restore", str(tmp_path / "out" / "b.tar"))
    assert again.exit_code == 1 and "--force" in again.output  # never over existing data
    (tmp_path / "b" / "blobs" / "stray").write_bytes(b"x")
    again = _run(target, "restore", "--force", str(tmp_path / "out" / "b.tar"))
    assert again.exit_code == 0 and not (tmp_path / "b" / "blobs" / "stray").exists()

    restored = Services(Settings.from_env(target))
    restored.prepare()  # what `jebol serve` does on it
    for instance_id, photos in kept.items():
        submissions.get_submission(restored.db, project_id, "foto_sederhana", instance_id)
        for name, data in photos.items():
            stored = submissions.get_attachment(
                restored.db, project_id, "foto_sederhana", instance_id, name
            )
            assert restored.blobs.read_bytes(blob_key(stored.blob.sha256)) == data
    # Whatever the writer had committed when the database was copied came with its photos.
    with restored.db.read() as tx:
        shas = (
            tx.exec(select(SubmissionAttachment.blob_sha256)).all()
            + tx.exec(select(Blob.sha256)).all()
        )
    assert len(shas) >= 2 * 3 + 1
    for sha in shas:
        assert hashlib.sha256(restored.blobs.read_bytes(blob_key(sha))).hexdigest() == sha
    assert restored.box_secret == source.box_secret  # Collect URLs can be shown again
    restored.db.dispose()
    source.db.dispose()


def test_a_damaged_backup_is_refused_and_replaces_nothing(tmp_path):
    source, project_id, kept = _world(tmp_path)
    folder = tmp_path / "backup-folder"
    assert _run(_env(tmp_path / "a"), "backup", "-o", str(folder)).exit_code == 0
    blob = next((folder / "blob-folder" / "blobs" / "sha256").rglob("*"))
    while blob.is_dir():
        blob = next(blob.iterdir())
    damaged = bytearray(blob.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    blob.write_bytes(bytes(damaged))
    # Over the existing data, even with --force: checked before anything is replaced.
    result = _run(_env(tmp_path / "a"), "restore", "--force", str(folder))
    assert result.exit_code == 1 and "damaged" in result.output, result.output
    instance_id, photos = next(iter(kept.items()))
    stored = submissions.get_attachment(
        source.db, project_id, "foto_sederhana", instance_id, "utama.jpg"
    )
    assert source.blobs.read_bytes(blob_key(stored.blob.sha256)) == photos["utama.jpg"]
    (folder / "manifest.json").unlink()
    result = _run(_env(tmp_path / "c"), "restore", str(folder))
    assert result.exit_code == 1 and "incomplete" in result.output
    source.db.dispose()


def test_postgresql_and_s3_are_refused_with_a_pointer_to_the_docs(tmp_path):
    postgres = {**_env(tmp_path), "JEBOL_DATABASE_URL": "postgresql://jebol@127.0.0.1/jebol"}
    s3 = {
        **_env(tmp_path),
        "JEBOL_S3_ENDPOINT": "127.0.0.1:9000",
        "JEBOL_S3_ACCESS_KEY": "k",
        "JEBOL_S3_SECRET_KEY": "secret-key",
    }
    for env in (postgres, s3):
        for args in (("backup", "-o", str(tmp_path / "x.tar")), ("restore", str(tmp_path))):
            result = _run(env, *args)
            assert result.exit_code == 1 and "Backups" in result.output, result.output
    assert not (tmp_path / "x.tar").exists()
