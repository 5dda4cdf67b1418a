"""Photo integrity, the stored part: each photo's facts cached per blob, a form's photos
and the flags of a page of them (the pure rules are forms/photos.py).

A photo's facts (EXIF capture time and GPS, size, sha256, perceptual hashes) are worked out
once per blob and kept in `photo_meta` (`ensure_analyzed`, lazily: the first page that shows a
photo pays for it). The flags are computed from those facts and the submissions' answers by
pure functions (`forms.photos`), so the rules can be tested without a database. Duplicates and
near-duplicates are looked for in every form of the project (the same photo sent as a visit's
and as a data dukung document's evidence), and each says which submission holds the other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

from sqlalchemy import select as sa_select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import func, select

from forms.instruments import SIPERA
from forms.photos import FLAGS as FLAGS  # re-exported: the boards name the flags from here
from forms.photos import (
    Finding,
    Match,
    NearIndex,
    PhotoFacts,
    PhotoRow,
    analyze_image,
    fact_findings,
    flag_names,
    photo_answers,
    photo_paths,
)
from forms.xform import Schema

from .blobs import BlobStore, BlobStoreError, blob_key
from .db import Database
from .errors import BlobUnavailable
from .models import (
    Blob,
    Form,
    FormVersion,
    PhotoMeta,
    Submission,
    SubmissionAttachment,
    SubmissionVersion,
)

_CHUNK = 500  # ids per IN (...) list


# ---- cached facts ------------------------------------------------------------------------------


def ensure_analyzed(
    db: Database, blobs: BlobStore, sha256s: Iterable[str], *, limit: int | None = None
) -> dict[str, PhotoMeta]:
    """The `photo_meta` row of each blob, analysing (and caching) those not seen before.

    Blobs without a `blob` row are left out, and so are blobs missing from the store (not cached:
    the file may come back). A row from before the dHash was kept (`dhash` empty, no error) is
    analysed again and replaced; until then it is returned as it is. With `limit`, at most that many blobs are analysed in this call and
    the rest are left out too (a page can show them as pending and ask again). Analysis reads
    each file (a JPEG takes ~20 ms, a 12 MP HEIC ~0.4 s) and runs outside any transaction; the
    new rows are then inserted in one short transaction, ignoring rows a concurrent request
    stored first (the analysis is deterministic, so theirs equal ours).
    """
    wanted = list(dict.fromkeys(sha256s))
    found: dict[str, PhotoMeta] = {}
    known: set[str] = set()
    with db.read() as tx:
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = tx.exec(
                select(Blob.sha256, PhotoMeta)
                .outerjoin(PhotoMeta, PhotoMeta.sha256 == Blob.sha256)
                .where(Blob.sha256.in_(chunk))
            ).all()
            for sha256, meta in rows:
                if meta is not None:
                    found[sha256] = meta
                if meta is None or (meta.dhash is None and meta.error is None):
                    known.add(sha256)
    todo = [sha256 for sha256 in wanted if sha256 in known]  # in the caller's order
    fresh: list[PhotoMeta] = []
    for sha256 in todo if limit is None else todo[: max(limit, 0)]:
        try:
            data = blobs.read_bytes(blob_key(sha256))
        except KeyError:
            continue
        except BlobStoreError as error:
            raise BlobUnavailable(f"The file store is unavailable: {error}") from error
        facts = analyze_image(data)
        del data
        fresh.append(
            PhotoMeta(
                sha256=sha256,
                taken_date=facts.taken_date,
                **{f.name: getattr(facts, f.name) for f in fields(facts)},
            )
        )
    if fresh:
        with db.transaction() as tx:
            insert = (
                postgresql.insert if tx.get_bind().dialect.name == "postgresql" else sqlite.insert
            )
            columns = [c.name for c in PhotoMeta.__table__.columns]
            statement = insert(PhotoMeta)
            tx.execute(  # a row from before the dHash is replaced; a concurrent one equals ours
                statement.on_conflict_do_update(
                    index_elements=["sha256"],
                    set_={c: statement.excluded[c] for c in columns if c != "sha256"},
                ),
                [{c: getattr(meta, c) for c in columns} for meta in fresh],
            )
        found.update((meta.sha256, meta) for meta in fresh)
    return {sha256: found[sha256] for sha256 in wanted if sha256 in found}


# ---- the photos of a form ----------------------------------------------------------------------


def list_form_photos(
    db: Database,
    form_id: int,
    submission_ids: Collection[int] | None = None,
    *,
    visit_date_names: Collection[str] = SIPERA.visit_date_names,
) -> list[PhotoRow]:
    """The stored photos of every current, non-deleted submission of a form (or of the given
    submissions only: a page of the evidence board).

    A photo is an attachment with a file whose question is an image question (not a signature or
    a drawing); an attachment no question names counts when its content type is `image/*`.
    The visit date is the answer to a date question named in `visit_date_names` (the shipped
    instruments' `tgl_kunjungan`: forms.instruments) outside repeats; a form
    without one uses the date of its first unlabelled dateTime (the `start`/`end` metadata, which
    Collect writes in the phone's local time), then the day the server received the submission
    (UTC). The geopoint is the form's first geopoint question outside repeats.
    """
    with db.read() as tx:
        attachments = tx.exec(
            select(
                Submission.id,
                Submission.instance_id,
                Submission.created_at,
                SubmissionVersion.id,
                SubmissionVersion.form_version_id,
                SubmissionAttachment.name,
                SubmissionAttachment.blob_sha256,
                SubmissionAttachment.content_type,
            )
            .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
            .join(
                SubmissionAttachment,
                SubmissionAttachment.submission_version_id == SubmissionVersion.id,
            )
            .where(
                Submission.form_id == form_id,
                Submission.deleted_at.is_(None),
                SubmissionVersion.is_current,
                SubmissionAttachment.blob_sha256.is_not(None),
                *_only(submission_ids),
            )
            .order_by(Submission.id, SubmissionAttachment.name)
        ).all()
        if not attachments:
            return []
        with_files = (
            select(SubmissionAttachment.id)
            .where(
                SubmissionAttachment.submission_version_id == SubmissionVersion.id,
                SubmissionAttachment.blob_sha256.is_not(None),
            )
            .exists()
        )
        values = dict(
            tx.exec(
                select(SubmissionVersion.id, SubmissionVersion.values)
                .join(Submission, Submission.id == SubmissionVersion.submission_id)
                .where(
                    Submission.form_id == form_id,
                    Submission.deleted_at.is_(None),
                    SubmissionVersion.is_current,
                    with_files,
                    *_only(submission_ids),
                )
            ).all()
        )
        used = sorted({row[4] for row in attachments})  # form versions: a handful
        paths = {
            version_id: photo_paths(Schema.from_json(fields_json), visit_date_names)
            for version_id, fields_json in tx.exec(
                select(FormVersion.id, FormVersion.fields_json).where(FormVersion.id.in_(used))
            ).all()
        }
    photos: list[PhotoRow] = []
    answers: dict[int, tuple[dict[str, str], str | None, tuple[float, float] | None]] = {}
    for (
        submission_id,
        instance_id,
        created_at,
        version_id,
        form_version_id,
        name,
        sha256,
        content_type,
    ) in attachments:
        if version_id not in answers:
            answers[version_id] = photo_answers(
                paths[form_version_id], values.get(version_id) or {}, created_at
            )
        fields_by_name, visit_date, geopoint = answers[version_id]
        field = fields_by_name.get(name)
        if field == "":  # a signature, a drawing or a non-image file
            continue
        if field is None and not (content_type or "").lower().startswith("image/"):
            continue
        photos.append(
            PhotoRow(
                submission_id, instance_id, name, sha256, content_type, field, visit_date, geopoint
            )
        )
    return photos


def _only(submission_ids: Collection[int] | None) -> list[Any]:
    return [] if submission_ids is None else [Submission.id.in_(list(submission_ids))]


#: At most this many other photos are named for one photo's near-duplicate flag.
MAX_MATCHES = 12


def page_findings(
    db: Database, project_id: int, photos: Sequence[PhotoRow], facts: Mapping[str, PhotoFacts]
) -> dict[tuple[int, str], list[Finding]]:
    """What the flags of a page of photos found, checked against every form of the project
    without reading it all: duplicates by one indexed lookup of the page's digests,
    near-duplicates through the project's hash index (built once per state of the project, see
    `_project_index`); the other flags need only the page's own facts. Each duplicate and
    near-duplicate names the other submissions' photos (`Match`, with their instanceID, name
    and form)."""
    shas = sorted({photo.sha256 for photo in photos})
    holders: dict[str, list[Match]] = defaultdict(list)
    if shas:
        with db.read() as tx:
            for match in _matches(tx, project_id, SubmissionAttachment.blob_sha256.in_(shas)):
                holders[match.sha256].append(match)
    index = _project_index(db, project_id) if photos else None
    near: dict[tuple[int, str], list[tuple[str, int, int, int]]] = {}
    wanted: set[tuple[str, int]] = set()
    for photo in photos:
        meta = facts.get(photo.sha256)
        if index is None or meta is None or meta.error or not (meta.phash and meta.dhash):
            continue
        holding = {m.submission_id for m in holders[photo.sha256]}
        close = [
            m
            for m in index.matches(meta.phash, meta.dhash, photo.sha256, photo.submission_id)
            if m[1] not in holding  # that submission holds the very same file: a duplicate
        ][:MAX_MATCHES]
        near[photo.key] = close
        wanted.update((sha256, submission_id) for sha256, submission_id, _, _ in close)
    found_near: dict[tuple[str, int], list[Match]] = defaultdict(list)
    if wanted:
        with db.read() as tx:
            for match in _matches(
                tx,
                project_id,
                SubmissionAttachment.blob_sha256.in_(sorted({sha for sha, _ in wanted})),
                Submission.id.in_(sorted({sub for _, sub in wanted})),
            ):
                found_near[(match.sha256, match.submission_id)].append(match)

    findings: dict[tuple[int, str], list[Finding]] = {}
    for photo in photos:
        found: list[Finding] = []
        same = [m for m in holders[photo.sha256] if m.submission_id != photo.submission_id]
        if same:
            found.append(Finding("duplicate", tuple(same)))
        close_matches = [
            Match(
                m.submission_id,
                m.name,
                m.sha256,
                distance,
                detail,
                m.instance_id,
                m.instance_name,
                m.xml_form_id,
            )
            for sha256, submission_id, distance, detail in near.get(photo.key, [])
            for m in found_near.get((sha256, submission_id), [])
        ]
        if close_matches:
            found.append(Finding("near_duplicate", tuple(close_matches)))
        found.extend(fact_findings(photo, facts.get(photo.sha256)))
        findings[photo.key] = found
    return findings


def _matches(tx: Any, project_id: int, *where: Any) -> list[Match]:
    """The project's current attachments matching `where`, as `Match`es (no distances)."""
    rows = tx.exec(
        _project_attachments(
            project_id,
            Submission.id,
            SubmissionAttachment.name,
            SubmissionAttachment.blob_sha256,
            Submission.instance_id,
            SubmissionVersion.instance_name,
            Form.xml_form_id,
        )
        .where(*where)
        .order_by(Submission.id, SubmissionAttachment.name)
    ).all()
    return [
        Match(submission_id, name, sha256, None, None, instance_id, instance_name, xml_form_id)
        for submission_id, name, sha256, instance_id, instance_name, xml_form_id in rows
    ]


def project_of_form(db: Database, form_id: int) -> int:
    with db.read() as tx:
        return tx.exec(select(Form.project_id).where(Form.id == form_id)).one()


def page_flags(
    db: Database, form_id: int, photos: Sequence[PhotoRow], facts: Mapping[str, PhotoFacts]
) -> dict[tuple[int, str], set[str]]:
    """The flags of a page of a form's photos: `page_findings` without what they found."""
    return flag_names(page_findings(db, project_of_form(db, form_id), photos, facts))


def submission_flags(
    db: Database,
    blobs: BlobStore,
    project_id: int,
    form_id: int,
    submission_ids: Collection[int],
    *,
    analyze_limit: int | None = None,
) -> dict[int, list[str]]:
    """The flags of each given submission's photos, in `FLAGS` order (a list's row markers).
    With `analyze_limit`, at most that many photos not seen before are analysed now: the
    others can only be duplicates until a page shows them."""
    if not submission_ids:
        return {}
    shown = list_form_photos(db, form_id, submission_ids=submission_ids)
    facts = ensure_analyzed(db, blobs, [p.sha256 for p in shown], limit=analyze_limit)
    merged: dict[int, set[str]] = defaultdict(set)
    for (submission_id, _), found in page_findings(db, project_id, shown, facts).items():
        merged[submission_id].update(f.flag for f in found)
    return {sid: [f for f in FLAGS if f in flags] for sid, flags in merged.items() if flags}


def _project_attachments(project_id: int, *columns: Any) -> Any:
    """The stored attachments of the current versions of the project's non-deleted
    submissions, in every form that is not deleted."""
    return (
        sa_select(*columns)
        .select_from(SubmissionAttachment)
        .join(SubmissionVersion, SubmissionVersion.id == SubmissionAttachment.submission_version_id)
        .join(Submission, Submission.id == SubmissionVersion.submission_id)
        .join(Form, Form.id == Submission.form_id)
        .where(
            Form.project_id == project_id,
            Form.deleted_at.is_(None),
            Submission.deleted_at.is_(None),
            SubmissionVersion.is_current,
            SubmissionAttachment.blob_sha256.is_not(None),
        )
    )


_INDEXES: dict[tuple[str, int], tuple[tuple[Any, ...], NearIndex]] = {}


def _project_index(db: Database, project_id: int) -> NearIndex:
    """The project's hash index, kept in memory until its attachments or their analyses change
    (their count, newest id and the number of rows with a dHash are the key: a cheap indexed
    aggregate)."""
    with db.read() as tx:
        state = tx.exec(
            _project_attachments(
                project_id,
                func.count(),
                func.max(SubmissionAttachment.id),
                func.count(PhotoMeta.dhash),
            ).join(PhotoMeta, PhotoMeta.sha256 == SubmissionAttachment.blob_sha256)
        ).one()
        key = (db.engine.url.render_as_string(hide_password=True), project_id)
        cached = _INDEXES.get(key)
        if cached is not None and cached[0] == tuple(state):
            return cached[1]
        rows = tx.exec(
            _project_attachments(
                project_id,
                SubmissionAttachment.blob_sha256,
                PhotoMeta.phash,
                PhotoMeta.dhash,
                Submission.id,
            )
            .join(PhotoMeta, PhotoMeta.sha256 == SubmissionAttachment.blob_sha256)
            .where(
                PhotoMeta.phash.is_not(None),
                PhotoMeta.dhash.is_not(None),
                PhotoMeta.error.is_(None),
            )
        ).all()
    index = NearIndex(rows)
    _INDEXES[key] = (tuple(state), index)
    return index


def photo_flags(db: Database, blobs: BlobStore, form_id: int) -> dict[tuple[int, str], set[str]]:
    """Flags of every photo of a form (against the whole project): `list_form_photos`,
    `ensure_analyzed`, `page_findings`."""
    photos = list_form_photos(db, form_id)
    facts = ensure_analyzed(db, blobs, (photo.sha256 for photo in photos))
    return flag_names(page_findings(db, project_of_form(db, form_id), photos, facts))
