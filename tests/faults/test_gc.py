"""`jebol gc` on each backend: orphan blobs older than the grace period go, recorded and recent
ones stay, `--dry-run` only counts; stale upload spool files go; and an ingest that relied on an
orphan gc removed meanwhile puts its file again."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from server.app import Services
from server.cli import main
from storage import content, gc
from storage.blobs import BlobStore, blob_key
from storage.submissions import IncomingFile, Sender, ingest
from tests.collect import instance_xml, new_instance_id
from tests.conftest import BACKENDS, backend_settings
from tests.factories import make_project, photo_body, publish
from tests.faults.load import settings_env

pytestmark = pytest.mark.faults


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path):
    """Services with a blob store of their own (a new folder / bucket): gc sees only this test's
    objects."""
    services = Services(backend_settings(request.param, tmp_path / "data", request))
    services.prepare()
    yield services
    services.db.dispose()


def _orphan(blobs: BlobStore, data: bytes) -> str:
    key = blob_key(hashlib.sha256(data).hexdigest())
    blobs.put_bytes(key, data)  # what an upload leaves when its row never commits
    return key


def _recorded(services: Services, data: bytes) -> str:
    stored = content.put_data(services.blobs, data)
    with services.db.transaction() as tx:
        content.record(tx, stored)
    return blob_key(stored.sha256)


def test_gc_removes_old_orphans_only(fresh):
    recorded = _recorded(fresh, os.urandom(500))
    old = _orphan(fresh.blobs, os.urandom(700))
    time.sleep(1.1)  # S3 keeps whole seconds
    recent = _orphan(fresh.blobs, os.urandom(900))
    modified = {info.key: info.modified for info in fresh.blobs.iter_info(gc.PREFIX)}
    grace = timedelta(hours=1)
    now = modified[old] + (modified[recent] - modified[old]) / 2 + grace  # between the two

    dry = gc.collect(fresh.db, fresh.blobs, grace=grace, dry_run=True, now=now)
    assert (dry.scanned, dry.recent, dry.removed, dry.removed_bytes) == (3, 1, 1, 700)
    assert fresh.blobs.exists(old)

    report = gc.collect(fresh.db, fresh.blobs, grace=grace, now=now)
    assert report == dry
    assert sorted(fresh.blobs.iter_keys(gc.PREFIX)) == sorted([recorded, recent])
    later = gc.collect(fresh.db, fresh.blobs, grace=timedelta(0))
    assert (later.scanned, later.referenced, later.removed) == (2, 1, 1)
    assert list(fresh.blobs.iter_keys(gc.PREFIX)) == [recorded]


def test_gc_removes_stale_spool_files(tmp_path):
    spool = tmp_path / "tmp"
    spool.mkdir()
    stale, fresh_part, other = spool / "part-abc", spool / "body-def", spool / "keep.txt"
    for path in (stale, fresh_part, other):
        path.write_bytes(b"x" * 10)
    hour_ago = time.time() - 7200
    os.utime(stale, (hour_ago, hour_ago))
    os.utime(other, (hour_ago, hour_ago))
    services = Services(backend_settings("sqlite", tmp_path / "data", None))
    services.prepare()
    try:
        report = gc.collect(services.db, services.blobs, spool_dir=spool)
    finally:
        services.db.dispose()
    assert (report.spool_removed, report.spool_bytes) == (1, 10)
    assert sorted(p.name for p in spool.iterdir()) == ["body-def", "keep.txt"]


def test_jebol_gc_command(fresh):
    recorded = _recorded(fresh, os.urandom(300))
    orphan = _orphan(fresh.blobs, os.urandom(400))
    env = settings_env(fresh.settings)
    runner = CliRunner()

    kept = runner.invoke(main, ["gc"], env=env, catch_exceptions=False)  # default grace: 1 h
    assert kept.exit_code == 0 and "orphan blobs removed: 0 (0 bytes)" in kept.output
    dry = runner.invoke(
        main, ["gc", "--grace-hours", "0", "--dry-run"], env=env, catch_exceptions=False
    )
    assert "orphan blobs would remove: 1 (400 bytes)" in dry.output
    assert fresh.blobs.exists(orphan)
    done = runner.invoke(main, ["gc", "--grace-hours", "0"], env=env, catch_exceptions=False)
    assert done.exit_code == 0, done.output
    assert "blobs: 2 scanned, 1 recorded" in done.output
    assert "orphan blobs removed: 1 (400 bytes)" in done.output
    assert list(fresh.blobs.iter_keys(gc.PREFIX)) == [recorded]


class GcInTheWindow:
    """The blob store as ingest sees it while gc runs: right after ingest found `key` already
    stored (and so skipped uploading it), gc removes it, before ingest's row commits."""

    def __init__(self, store: BlobStore, key: str) -> None:
        self.store, self.key, self.fired = store, key, False

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def exists(self, key: str) -> bool:
        found = self.store.exists(key)
        if found and key == self.key and not self.fired:
            self.fired = True
            self.store.delete(key)
        return found


def test_ingest_puts_again_a_file_gc_removed_before_its_commit(fresh, tmp_path):
    project = make_project(fresh)
    publish(fresh, project)
    photo = os.urandom(2000)
    key = _orphan(fresh.blobs, photo)  # the first attempt's file; its row never committed
    path = tmp_path / "part-photo"
    path.write_bytes(photo)
    racing = GcInTheWindow(fresh.blobs, key)
    xml = instance_xml("foto_sederhana", "1", new_instance_id(), photo_body(main="utama.jpg"))
    ingested = ingest(
        fresh.db,
        racing,
        project.id,
        xml,
        [IncomingFile("utama.jpg", path, len(photo), hashlib.sha256(photo).hexdigest())],
        sender=Sender(actor_id=None),
    )
    assert racing.fired and ingested.outcome == "created" and not ingested.missing
    assert fresh.blobs.read_bytes(key) == photo


class Counted:
    """The blob store, counting the calls ingest makes to it."""

    def __init__(self, store: BlobStore) -> None:
        self.store, self.calls = store, []

    def __getattr__(self, name: str):
        return getattr(self.store, name)

    def exists(self, key: str) -> bool:
        self.calls.append("exists")
        return self.store.exists(key)

    def put_file(self, key: str, path: Path, content_type: str = "") -> None:
        self.calls.append("put_file")
        self.store.put_file(key, path, content_type)


def test_ingest_asks_the_store_only_what_it_must(fresh, tmp_path):
    """A new file: one existence check and one upload (written now, it needs no check after
    the commit). The same file again, in another submission: a committed row names it, so the
    store is not asked at all. An old orphan: checked again after the commit."""
    project = make_project(fresh)
    publish(fresh, project)
    photo, orphan = os.urandom(3000), os.urandom(3000)
    _orphan(fresh.blobs, orphan)

    def send(data: bytes) -> list[str]:
        path = tmp_path / f"part-{new_instance_id()[5:]}"
        path.write_bytes(data)
        counted = Counted(fresh.blobs)
        xml = instance_xml("foto_sederhana", "1", new_instance_id(), photo_body(main="u.jpg"))
        file = IncomingFile("u.jpg", path, len(data), hashlib.sha256(data).hexdigest())
        done = ingest(fresh.db, counted, project.id, xml, [file], sender=Sender(actor_id=None))
        assert done.outcome == "created" and not done.missing
        assert fresh.blobs.read_bytes(blob_key(file.sha256)) == data
        return counted.calls

    assert send(photo) == ["exists", "put_file"]
    assert send(photo) == []
    assert send(orphan) == ["exists", "exists"]
