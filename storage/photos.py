"""Photo integrity, the stored part: each photo's facts cached per blob, a form's photos
and the flags of a page of them (the pure rules are forms/photos.py).

A photo's facts (EXIF capture time and GPS, size, sha256, perceptual hash) are worked out once
per blob and kept in `photo_meta` (`ensure_analyzed`, lazily: the first board that shows a photo
pays for it). The flags are computed from those facts and the submissions' answers by a pure
function (`forms.photos.compute_flags`), so the rules can be tested without a database.
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
    NEAR_DUPLICATE_MAX_DISTANCE,
    PhashIndex,
    PhotoFacts,
    PhotoRow,
    analyze_image,
    compute_flags,
    photo_answers,
    photo_paths,
)
from forms.xform import Schema

from .blobs import BlobStore, BlobStoreError, blob_key
from .db import Database
from .errors import BlobUnavailable
from .models import (
    Blob,
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
    the file may come back). With `limit`, at most that many blobs are analysed in this call and
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
                else:
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
            tx.execute(
                insert(PhotoMeta).on_conflict_do_nothing(index_elements=["sha256"]),
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


def page_flags(
    db: Database, form_id: int, photos: Sequence[PhotoRow], facts: Mapping[str, PhotoFacts]
) -> dict[tuple[int, str], set[str]]:
    """The flags of a page of photos, checked against the whole form without reading it all:
    duplicates by one indexed lookup of the page's digests, near-duplicates through the form's
    pHash index (built once per state of the form, see `_form_index`); the other flags need
    only the page's own facts."""
    flags = compute_flags(photos, facts)
    shas = sorted({photo.sha256 for photo in photos})
    if not shas:
        return flags
    used_by: dict[str, set[int]] = defaultdict(set)
    with db.read() as tx:
        for sha256, submission_id in tx.exec(
            _form_attachments(form_id, SubmissionAttachment.blob_sha256, Submission.id).where(
                SubmissionAttachment.blob_sha256.in_(shas)
            )
        ).all():
            used_by[sha256].add(submission_id)
    index = _form_index(db, form_id)
    for photo in photos:
        found = flags.setdefault(photo.key, set())
        if used_by[photo.sha256] - {photo.submission_id}:
            found.add("duplicate")
        meta = facts.get(photo.sha256)
        if (
            meta is not None
            and meta.error is None
            and meta.phash
            and index.near(meta.phash, photo.sha256, photo.submission_id)
        ):
            found.add("near_duplicate")
    return flags


def _form_attachments(form_id: int, *columns: Any) -> Any:
    """The stored attachments of the form's current, non-deleted submissions."""
    return (
        sa_select(*columns)
        .select_from(SubmissionAttachment)
        .join(SubmissionVersion, SubmissionVersion.id == SubmissionAttachment.submission_version_id)
        .join(Submission, Submission.id == SubmissionVersion.submission_id)
        .where(
            Submission.form_id == form_id,
            Submission.deleted_at.is_(None),
            SubmissionVersion.is_current,
            SubmissionAttachment.blob_sha256.is_not(None),
        )
    )


_INDEXES: dict[int, tuple[tuple[int, int | None], PhashIndex]] = {}


def _form_index(db: Database, form_id: int) -> PhashIndex:
    """The form's pHash index, kept in memory until the form's attachments or analyses change
    (their count and newest id are the key; a cheap indexed aggregate)."""
    with db.read() as tx:
        state = tx.exec(
            _form_attachments(form_id, func.count(), func.max(SubmissionAttachment.id)).join(
                PhotoMeta, PhotoMeta.sha256 == SubmissionAttachment.blob_sha256
            )
        ).one()
        cached = _INDEXES.get(form_id)
        if cached is not None and cached[0] == tuple(state):
            return cached[1]
        rows = tx.exec(
            _form_attachments(
                form_id, SubmissionAttachment.blob_sha256, PhotoMeta.phash, Submission.id
            )
            .join(PhotoMeta, PhotoMeta.sha256 == SubmissionAttachment.blob_sha256)
            .where(PhotoMeta.phash.is_not(None), PhotoMeta.error.is_(None))
        ).all()
    index = PhashIndex(rows, NEAR_DUPLICATE_MAX_DISTANCE)
    _INDEXES[form_id] = (tuple(state), index)
    return index


def photo_flags(db: Database, blobs: BlobStore, form_id: int) -> dict[tuple[int, str], set[str]]:
    """Flags of every photo of a form: `list_form_photos`, `ensure_analyzed`, `compute_flags`."""
    photos = list_form_photos(db, form_id)
    facts = ensure_analyzed(db, blobs, (photo.sha256 for photo in photos))
    return compute_flags(photos, facts)
