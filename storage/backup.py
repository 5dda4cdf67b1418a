"""Backup and restore of the embedded default: the SQLite database, the blob folder and the
secret key, into one tar file (``.tar``, or ``.tar.gz``) or a folder.

A backup is safe while the server runs, because of the order of its steps:

1. The database is copied with SQLite's online backup API in one step: one read transaction,
   so the copy is the database as it was at one moment T, while writers go on (WAL).
2. Then the blob folder is copied. Blobs are content-addressed and never change once written,
   and a row naming a blob is committed only after the blob is on disk (storage/content.py).
   So every blob the copy from T names already existed at T and is still there now; blobs
   written after T are copied as harmless orphans, or not at all (their rows are not in the
   copy either).

The other order would not be safe: a submission committed between copying the blobs and
copying the database would be in the backup without its photos. Only a blob deleted during
the copy could break this; `jebol gc` removes only objects no row names, so it does not, and
the backup still checks that every blob its database names is in it and reports any that is
not.

Every file is listed with its SHA-256 in ``manifest.json``, written last (a backup without it
is incomplete). A restore unpacks into a staging folder, checks every file against the
manifest (and each blob against the digest in its name) and the database's integrity, and
only then puts the data in place, so a damaged backup never replaces good data.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

from sqlalchemy.engine import make_url

from .blobs import LocalBlobStore, blob_key
from .errors import StorageError

FORMAT = "jebol-backup"
VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "database.sqlite3"
SECRET = "secret.key"
BLOBS = "blob-folder"  # the blob folder as it is: blob-folder/blobs/sha256/…, thumbs/…
_CHUNK = 1024 * 1024
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


class BackupError(StorageError):
    """A backup or restore that cannot be done; the message says why and what to do."""


@dataclass
class Summary:
    submissions: int
    files: int
    bytes: int
    missing: list[str] = field(default_factory=list)  # blobs the database names, not stored


def sqlite_path(database_url: str) -> Path:
    """The database file of a SQLite URL; BackupError for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise BackupError(
            "`jebol backup` and `jebol restore` cover the embedded default "
            "(SQLite + a blob folder). For PostgreSQL and S3 use pg_dump and "
            '`mc mirror` (README, "Backups").'
        )
    return Path(url.database)


# --------------------------------------------------------------------------
# Backup
# --------------------------------------------------------------------------


class _Sink(Protocol):
    def add(self, name: str, source: BinaryIO, size: int, mode: int) -> str: ...

    def close(self) -> None: ...


class _TarSink:
    def __init__(self, path: Path) -> None:
        compressed = path.name.endswith((".tar.gz", ".tgz"))
        self.tar = tarfile.open(path, "w:gz" if compressed else "w", format=tarfile.PAX_FORMAT)

    def add(self, name: str, source: BinaryIO, size: int, mode: int) -> str:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, mode, int(datetime.now().timestamp())
        reader = _Hashing(source)
        self.tar.addfile(info, reader)
        return reader.digest.hexdigest()

    def close(self) -> None:
        self.tar.close()


class _FolderSink:
    def __init__(self, path: Path) -> None:
        self.root = path

    def add(self, name: str, source: BinaryIO, size: int, mode: int) -> str:
        target = self.root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(target, "wb") as out:
            while chunk := source.read(_CHUNK):
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(target, mode)
        return digest.hexdigest()

    def close(self) -> None:
        pass


class _Hashing:
    """A reader that hashes what passes through it (tarfile reads the file once)."""

    def __init__(self, source: BinaryIO) -> None:
        self.source, self.digest = source, hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        self.digest.update(data)
        return data


def backup(database_url: str, blob_dir: Path, secret_file: Path, output: Path) -> Summary:
    """Write a backup to `output`: a tar file when it ends in .tar/.tar.gz/.tgz, else a new
    (or empty) folder."""
    database = sqlite_path(database_url)
    if not database.is_file():
        raise BackupError(f"No database at {database}: nothing to back up.")
    is_tar = output.name.endswith(_TAR_SUFFIXES)
    if is_tar:
        output.parent.mkdir(parents=True, exist_ok=True)
        partial = output.with_name(f".{output.name}.part")
        sink: _Sink = _TarSink(partial)
    else:
        if output.exists() and (not output.is_dir() or any(output.iterdir())):
            raise BackupError(
                f"{output} exists and is not an empty folder; name a new folder or a FILE.tar."
            )
        output.mkdir(parents=True, exist_ok=True)
        sink = _FolderSink(output)
    try:
        summary = _write(sink, database, blob_dir, secret_file)
        sink.close()
        if is_tar:
            os.replace(partial, output)
    finally:
        if is_tar:
            partial.unlink(missing_ok=True)
    return summary


def _write(sink: _Sink, database: Path, blob_dir: Path, secret_file: Path) -> Summary:
    files: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="jebol-backup-") as scratch:
        snapshot = Path(scratch) / DATABASE
        _snapshot(database, snapshot)  # first: see the module docstring
        named, submissions = _named_blobs(snapshot)
        with open(snapshot, "rb") as source:
            files[DATABASE] = sink.add(DATABASE, source, snapshot.stat().st_size, 0o600)
    if secret_file.is_file():
        with open(secret_file, "rb") as source:
            files[SECRET] = sink.add(SECRET, source, secret_file.stat().st_size, 0o600)
    total = 0
    for key, source, size in _blob_files(blob_dir):
        with source:
            files[f"{BLOBS}/{key}"] = sink.add(f"{BLOBS}/{key}", source, size, 0o644)
        total += size
    missing = sorted(sha for sha in named if f"{BLOBS}/{blob_key(sha)}" not in files)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "submissions": submissions,
        "files": files,
        "missing": missing,
    }
    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    sink.add(MANIFEST, _BytesReader(data), len(data), 0o644)
    return Summary(submissions, len(files), total, missing)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def read(self, size: int = -1) -> bytes:
        end = len(self.data) if size < 0 else self.offset + size
        chunk, self.offset = self.data[self.offset : end], min(end, len(self.data))
        return chunk


def _snapshot(database: Path, target: Path) -> None:
    """The database as of one moment, as a single self-contained file."""
    source = sqlite3.connect(database, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # all pages in one step: one read transaction, one moment
        copy.execute("PRAGMA journal_mode=DELETE")  # no -wal file beside the copy
        _check_integrity(copy)
    except sqlite3.Error as error:
        raise BackupError(f"Could not copy the database {database}: {error}") from error
    finally:
        copy.close()
        source.close()


def _check_integrity(connection: sqlite3.Connection) -> None:
    result = connection.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise BackupError(f"The database failed SQLite's integrity check: {result}")


def _named_blobs(database: Path) -> tuple[set[str], int]:
    """The blob digests a database names, and its number of submissions."""
    connection = sqlite3.connect(f"{database.resolve().as_uri()}?mode=ro", uri=True)
    try:
        named = {row[0] for row in connection.execute("SELECT sha256 FROM blob")}
        submissions = connection.execute("SELECT count(*) FROM submission").fetchone()[0]
    except sqlite3.Error as error:
        raise BackupError(f"{database} is not a JEBOL SIPERA database: {error}") from error
    finally:
        connection.close()
    return named, submissions


def _blob_files(blob_dir: Path) -> Iterator[tuple[str, BinaryIO, int]]:
    """Each stored blob as (key, open file, size); files deleted meanwhile are skipped."""
    for key in LocalBlobStore(blob_dir).iter_keys():
        try:
            source = open(blob_dir / key, "rb")
        except FileNotFoundError:
            continue
        yield key, source, os.fstat(source.fileno()).st_size


# --------------------------------------------------------------------------
# Restore
# --------------------------------------------------------------------------


def holds_data(database_url: str, blob_dir: Path, secret_file: Path) -> bool:
    database = sqlite_path(database_url)
    return (
        database.exists() or secret_file.exists() or (blob_dir.is_dir() and any(blob_dir.iterdir()))
    )


def restore(
    source: Path, database_url: str, blob_dir: Path, secret_file: Path, *, force: bool = False
) -> Summary:
    """Put a backup in place of the embedded data. Refuses to replace existing data unless
    `force`; checks everything before touching it. The server must be stopped."""
    database = sqlite_path(database_url)
    if not source.exists():
        raise BackupError(f"No backup at {source}.")
    if holds_data(database_url, blob_dir, secret_file) and not force:
        raise BackupError(
            f"{database.parent} already holds data (database, blobs or secret "
            "key); restore refuses to replace it. Stop the server and pass "
            "--force to replace it."
        )
    blob_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".jebol-restore-", dir=blob_dir.parent))
    try:
        _unpack(source, staging)
        summary = _verify(staging)
        _put_in_place(staging, database, blob_dir, secret_file)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _unpack(source: Path, staging: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, staging, dirs_exist_ok=True, symlinks=True)
        return
    try:
        with tarfile.open(source) as tar:
            tar.extractall(staging, filter="data")  # no absolute paths, no escaping links
    except (tarfile.TarError, OSError) as error:
        raise BackupError(f"{source} is not a readable backup: {error}") from error


def _verify(staging: Path) -> Summary:
    try:
        manifest = json.loads((staging / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError(
            "The backup has no readable manifest.json: it is incomplete or not "
            "a JEBOL SIPERA backup."
        ) from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise BackupError("Not a JEBOL SIPERA backup of a version this server reads.")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise BackupError("The backup's manifest.json lists no files.")
    present = {
        path.relative_to(staging).as_posix()
        for path in staging.rglob("*")
        if path.is_file() or path.is_symlink()
    } - {MANIFEST}
    if present != set(files):
        extra, lacking = sorted(present - set(files)), sorted(set(files) - present)
        raise BackupError(
            f"The backup does not match its manifest (missing: {lacking[:5]}, "
            f"unexpected: {extra[:5]})."
        )
    total = 0
    for name, expected in files.items():
        path = staging / name
        if path.is_symlink():
            raise BackupError(f"Unexpected link in the backup: {name}")
        digest = _sha256(path)
        blob = name.rsplit("/", 1)[-1] if name.startswith(f"{BLOBS}/blobs/sha256/") else None
        if digest != expected or (blob is not None and digest != blob):
            raise BackupError(f"{name} is damaged: its SHA-256 is {digest}, not {expected}.")
        if name.startswith(f"{BLOBS}/"):
            total += path.stat().st_size
    if DATABASE not in files:
        raise BackupError("The backup holds no database.")
    connection = sqlite3.connect(staging / DATABASE)
    try:
        _check_integrity(connection)
    finally:
        connection.close()
    named, submissions = _named_blobs(staging / DATABASE)
    missing = sorted(sha for sha in named if f"{BLOBS}/{blob_key(sha)}" not in files)
    return Summary(submissions, len(files), total, missing)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _put_in_place(staging: Path, database: Path, blob_dir: Path, secret_file: Path) -> None:
    for stale in (
        database,
        database.with_name(database.name + "-wal"),
        database.with_name(database.name + "-shm"),
    ):
        stale.unlink(missing_ok=True)
    database.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(staging / DATABASE, database)
    if (staging / SECRET).exists():
        secret_file.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(staging / SECRET, secret_file)
    if blob_dir.exists():
        old = blob_dir.with_name(f".{blob_dir.name}-replaced")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(blob_dir, old)
        shutil.rmtree(old)
    new_blobs = staging / BLOBS
    if new_blobs.is_dir():
        os.replace(new_blobs, blob_dir)  # staging is beside blob_dir: one rename
    else:
        blob_dir.mkdir()
