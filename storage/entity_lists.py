"""Entity lists served to phones as form media, as ODK Central serves a dataset-linked
attachment: a form that expects `LIST.csv` (`select_one_from_file LIST.csv`) in a project
with an entity list LIST gets the list's entities as that file, no upload needed.

Which attachments are lists is decided when asked, by name, so a list made after the form
was published (by a registration form or by REST) reaches the form's phones at once.

A list's hash (the manifest's, and the CSV's ETag) is Central's: the md5 of the time of the
list's newest audit entry, so a phone downloads the CSV again after any entity event and
never otherwise. The CSV and the integrity rows are read in keyset batches: a list of tens of
thousands of entities streams in flat memory.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlmodel import col, select

from .datasets import latest_audits, properties_of
from .db import Database
from .forms import MediaFile, list_media
from .models import Dataset, Entity, EntityVersion, Form, FormAttachment, FormVersion

SUFFIX = ".csv"
BATCH = 1000
CSV_TYPE = "text/csv"
# Central's CSV columns before the list's properties (lib/data/entity.js).
CSV_LEAD = ["name", "label", "__version"]
_ID_CHUNK = 500


@dataclass(frozen=True)
class ListFile:
    """A form attachment served from an entity list: the file's name, the list, and the
    list's OpenRosa hash (md5 hex, without the `md5:` prefix)."""

    name: str
    dataset: Dataset
    hash: str

    @property
    def media_type(self) -> str:
        """The manifest's `type`: lists whose entities need approval are marked for Collect."""
        return "approvalEntityList" if self.dataset.approval_required else "entityList"


def list_name_of(attachment_name: str) -> str | None:
    """`inovasi.csv` -> `inovasi`: the list an attachment would be (None if not a CSV)."""
    if not attachment_name.endswith(SUFFIX) or attachment_name == SUFFIX:
        return None
    return attachment_name[: -len(SUFFIX)]


def openrosa_hash(latest_audit: datetime | None) -> str:
    """Central's hash of an (unfiltered) list: md5 of `{"latestAuditEntry": <ISO time>}`
    written as JavaScript's JSON.stringify and Date.toISOString write it (milliseconds, Z)."""
    stamp = None
    if latest_audit is not None:
        utc = latest_audit.astimezone(UTC)
        stamp = utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    text = json.dumps({"latestAuditEntry": stamp}, separators=(",", ":"))
    return hashlib.md5(text.encode()).hexdigest()


def lists_for(db: Database, project_id: int, names: Iterable[str]) -> dict[str, ListFile]:
    """Which of these attachment names are entity lists of the project: name -> ListFile."""
    wanted = {n: list_name_of(n) for n in names}
    by_list = {stem: name for name, stem in wanted.items() if stem is not None}
    if not by_list:
        return {}
    with db.read() as tx:
        found = tx.exec(
            select(Dataset).where(
                Dataset.project_id == project_id, col(Dataset.name).in_(list(by_list))
            )
        ).all()
        latest = latest_audits(tx, [d.id for d in found if d.id is not None])
    return {
        by_list[d.name]: ListFile(by_list[d.name], d, openrosa_hash(latest.get(d.id)))
        for d in found
    }


def media_of(
    db: Database, version: FormVersion, project_id: int
) -> list[tuple[MediaFile, ListFile | None]]:
    """A version's media files, each with the entity list it is served from, if any."""
    media = list_media(db, version)
    lists = lists_for(db, project_id, [m.attachment.name for m in media if _may_be_list(m)])
    return [(m, lists.get(m.attachment.name) if _may_be_list(m) else None) for m in media]


def _may_be_list(media: MediaFile) -> bool:
    return media.attachment.kind == "file" and list_name_of(media.attachment.name) is not None


def list_file(db: Database, version: FormVersion, project_id: int, name: str) -> ListFile | None:
    """The attachment `name` of this form version, if it is an entity list of the project."""
    if list_name_of(name) is None:
        return None
    with db.read() as tx:
        expected = tx.exec(
            select(FormAttachment.id).where(
                FormAttachment.form_version_id == version.id,
                FormAttachment.name == name,
                FormAttachment.kind == "file",
            )
        ).first()
    if expected is None:
        return None
    return lists_for(db, project_id, [name]).get(name)


def find_list_file(db: Database, project_id: int, list_name: str) -> ListFile | None:
    """The project's list of that name as a ListFile (its hash), or None."""
    return lists_for(db, project_id, [f"{list_name}{SUFFIX}"]).get(f"{list_name}{SUFFIX}")


# ---- the CSV -----------------------------------------------------------------------------------


def csv_header(properties: list[str]) -> list[str]:
    return [*CSV_LEAD, *properties]


def csv_row(uuid: str, label: str, version: int, data: dict[str, Any], properties: list[str]):
    """One entity as Central's attachment CSV has it; a property it lacks is empty."""
    values = [data.get(p) for p in properties]
    return [uuid, label, str(version), *("" if v is None else str(v) for v in values)]


def _csv_bytes(rows: Iterable[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode("utf-8")


def csv_chunks(db: Database, dataset: Dataset, *, batch: int = BATCH) -> Iterator[bytes]:
    """The list's CSV for phones, a batch of entities per chunk: current versions of the
    entities not deleted, newest first (Central's order), each batch its own short read."""
    with db.read() as tx:
        properties = [p.name for p in properties_of(tx, dataset)]
    yield _csv_bytes([csv_header(properties)])
    before: int | None = None
    while True:
        rows = _current_batch(db, dataset, before, batch)
        if not rows:
            return
        yield _csv_bytes(csv_row(u, label, v, data, properties) for _, u, label, v, data in rows)
        if len(rows) < batch:
            return
        before = rows[-1][0]


def _current_batch(
    db: Database, dataset: Dataset, before: int | None, batch: int
) -> list[tuple[int, str, str, int, dict[str, Any]]]:
    query = (
        select(
            Entity.id, Entity.uuid, EntityVersion.label, EntityVersion.version, EntityVersion.data
        )
        .join(EntityVersion, col(EntityVersion.entity_id) == Entity.id)
        .where(
            Entity.dataset_id == dataset.id,
            col(Entity.deleted_at).is_(None),
            col(EntityVersion.is_current),
        )
        .order_by(col(Entity.id).desc())
        .limit(batch)
    )
    if before is not None:
        query = query.where(col(Entity.id) < before)
    with db.read() as tx:
        return [tuple(row) for row in tx.exec(query).all()]  # type: ignore[misc]


# ---- integrity -----------------------------------------------------------------------------------


def parse_ids(text: str | None) -> list[str] | None:
    """`?id=a,b`: the entity ids asked about (lower case, as stored); None when not given. An
    id holding NUL names no entity and is dropped here: the reply streams, so PostgreSQL's
    refusal of such text must not happen midway."""
    if text is None:
        return None
    return [p.strip().lower() for p in text.split(",") if p.strip() and "\x00" not in p]


def integrity_batches(
    db: Database, dataset: Dataset, ids: list[str] | None, *, batch: int = BATCH
) -> Iterator[list[tuple[str, bool]]]:
    """(uuid, deleted) of the list's entities, or of those of `ids` the list has: what a phone
    checks its offline copy against (Central's getEntitiesState)."""
    if ids is not None:
        for start in range(0, len(ids), _ID_CHUNK):
            chunk = ids[start : start + _ID_CHUNK]
            with db.read() as tx:
                rows = tx.exec(
                    select(Entity.uuid, Entity.deleted_at)
                    .where(Entity.dataset_id == dataset.id, col(Entity.uuid).in_(chunk))
                    .order_by(col(Entity.id))
                ).all()
            if rows:
                yield [(u, deleted is not None) for u, deleted in rows]
        return
    after = 0
    while True:
        with db.read() as tx:
            rows = tx.exec(
                select(Entity.id, Entity.uuid, Entity.deleted_at)
                .where(Entity.dataset_id == dataset.id, col(Entity.id) > after)
                .order_by(col(Entity.id))
                .limit(batch)
            ).all()
        if not rows:
            return
        yield [(u, deleted is not None) for _, u, deleted in rows]
        if len(rows) < batch:
            return
        after = rows[-1][0]


# ---- who may read a list ---------------------------------------------------------------------------


def linked_form_ids(db: Database, project_id: int, list_name: str) -> frozenset[int]:
    """Forms of the project, not closed nor deleted, whose published version uses the list
    (expects `{list_name}.csv`): a phone that may fill one of them may check the list."""
    with db.read() as tx:
        rows = tx.exec(
            select(Form.id)
            .join(FormVersion, col(FormVersion.form_id) == Form.id)
            .join(FormAttachment, col(FormAttachment.form_version_id) == FormVersion.id)
            .where(
                Form.project_id == project_id,
                col(Form.deleted_at).is_(None),
                Form.state != "closed",
                col(FormVersion.is_current),
                FormAttachment.name == f"{list_name}{SUFFIX}",
            )
        ).all()
    return frozenset(rows)
