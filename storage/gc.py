"""`jebol gc`: remove what interrupted uploads leave behind.

Ingest puts each attachment into the blob store *before* the one transaction that records its
`blob` row (storage/content.py), so a request that dies in between (the server killed, the
database gone, the phone hanging up) leaves an object no row names: an orphan. Nothing reads
it; it only takes space. `collect` lists `blobs/sha256/` and removes each object that has no
`blob` row and is older than the grace period.

The grace period (default one hour) is what makes this safe beside a running server: an
ingest in flight has put its objects and not yet committed their rows, so right then they look
exactly like orphans. Its rows commit seconds later (the objects are put after the whole upload
has arrived), so an object younger than the grace period is always kept.

One case age cannot cover: a retried upload whose object is already stored (an old orphan of
its first attempt) skips the upload and records the row, while gc is removing that object. Two
things close it. Removal runs inside a transaction that first locks the `blob` table against
inserts (PostgreSQL `LOCK TABLE … SHARE`, SQLite's write lock), so a row either committed
before the check (the object is kept) or commits after the removal; and ingest checks after its
commit that its objects are still there, putting them again from the upload if not.

Upload spool files (`part-*`, `body-*` in JEBOL_TMP_DIR) older than the grace period are removed
too: a killed server leaves them behind. Objects under other prefixes (thumbnails) are left
alone; they are derived from recorded blobs, whose rows are never deleted.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, select

from .blobs import BlobInfo, BlobStore, blob_key
from .db import Database
from .models import Blob

PREFIX = "blobs/sha256/"
SPOOL_PATTERNS = ("part-*", "body-*")
DEFAULT_GRACE = timedelta(hours=1)
_BATCH = 200  # orphans checked and removed per transaction (the lock is held that long)


@dataclass
class Report:
    scanned: int = 0  # objects under blobs/sha256/
    recent: int = 0  # younger than the grace period: kept unchecked
    referenced: int = 0  # older, with a blob row: kept
    removed: int = 0  # orphans removed (with dry_run: that would be removed)
    removed_bytes: int = 0
    spool_removed: int = 0
    spool_bytes: int = 0


def collect(
    db: Database,
    blobs: BlobStore,
    *,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    spool_dir: Path | None = None,
    now: datetime | None = None,
) -> Report:
    """Remove orphan blobs and stale spool files older than `grace`; `dry_run` only counts."""
    now = now or datetime.now(UTC)
    report = Report()
    for batch in _batches(_old_blobs(blobs, now - grace, report)):
        if dry_run:
            with db.read() as tx:
                _sweep(tx, blobs, batch, report, remove=False)
        else:
            with db.transaction() as tx:
                if tx.get_bind().dialect.name == "postgresql":
                    tx.execute(text("LOCK TABLE blob IN SHARE MODE"))
                _sweep(tx, blobs, batch, report, remove=True)
    if spool_dir is not None:
        _sweep_spool(spool_dir, (now - grace).timestamp(), dry_run, report)
    return report


def _old_blobs(blobs: BlobStore, cutoff: datetime, report: Report) -> Iterator[BlobInfo]:
    for info in blobs.iter_info(PREFIX):
        sha256 = info.key.rsplit("/", 1)[-1]
        try:
            if blob_key(sha256) != info.key:
                continue  # not a content-addressed blob: not ours to judge
        except ValueError:
            continue
        report.scanned += 1
        if info.modified > cutoff:
            report.recent += 1
        else:
            yield info


def _batches(items: Iterable[BlobInfo]) -> Iterator[list[BlobInfo]]:
    iterator = iter(items)
    while batch := list(islice(iterator, _BATCH)):
        yield batch


def _sweep(
    tx: Session, blobs: BlobStore, batch: list[BlobInfo], report: Report, *, remove: bool
) -> None:
    by_sha = {info.key.rsplit("/", 1)[-1]: info for info in batch}
    recorded = set(tx.exec(select(Blob.sha256).where(Blob.sha256.in_(list(by_sha)))))
    report.referenced += len(recorded)
    for sha256, info in by_sha.items():
        if sha256 in recorded:
            continue
        if remove:
            blobs.delete(info.key)
        report.removed += 1
        report.removed_bytes += info.size


def _sweep_spool(spool_dir: Path, cutoff: float, dry_run: bool, report: Report) -> None:
    for pattern in SPOOL_PATTERNS:
        for path in spool_dir.glob(pattern):
            try:
                st = path.stat()
                if st.st_mtime > cutoff or not path.is_file():
                    continue
                if not dry_run:
                    path.unlink()
            except FileNotFoundError:  # its request finished meanwhile
                continue
            report.spool_removed += 1
            report.spool_bytes += st.st_size
