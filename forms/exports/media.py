"""The media ZIP: `write_media_zip`, the photos of the records named by OPD, date, submission
and question; `photo_fields`, the questions that hold photos."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from stream_zip import ZIP_AUTO, stream_zip

from ..instance import attachment_name
from ..tabular import iter_values
from ..xform import Field, Schema
from .naming import UsedNames, extension, safe_part, short_id
from .records import CHUNK, OpenBlob, Record
from .zips import FILE_MODE, Missing


def photo_fields(schema: Schema) -> list[Field]:
    """The image questions that hold photos (not signatures or drawings)."""
    return [
        f
        for f in schema.fields
        if f.is_binary
        and (f.media_type or "").startswith("image/")
        and not any(a in (f.appearance or "").split() for a in ("signature", "draw"))
    ]


def find_photo_field(schema: Schema, question: str) -> Field | None:
    """A photo question by name (`bukti_foto`) or path (`/inovasi/bukti/bukti_foto`)."""
    return next(
        (f for f in photo_fields(schema) if question in (f.name, f.path, f.path.lstrip("/"))), None
    )


def write_media_zip(
    schema: Schema,
    records: Iterable[Record],
    *,
    open_blob: OpenBlob,
    questions: Sequence[Field] | None = None,
    opd_of: Callable[[Any], str] | None = None,
    no_opd_folder: str,
    zone: tzinfo = UTC,
) -> Iterator[bytes]:
    """The photos of the records, each named
    `{OPD}/{date}_{instanceName or short id}_{question}_{n}.{ext}` (n counts the question's
    photos in one submission), made safe (ASCII letters, digits, `-`, `_`) and unique
    (`~2` before the extension on a clash). Files are stored uncompressed (photos are).
    The OPD is `opd_of(answers)` (its name, storage.browse.OpdNames); without one,
    `no_opd_folder`.
    The date is the day received in `zone` (the server's JEBOL_TIMEZONE)."""
    wanted = list(questions) if questions is not None else photo_fields(schema)
    used = UsedNames()
    missing = Missing(open_blob)

    def members() -> Iterator[tuple[Any, ...]]:
        for record in records:
            if not record.attachments:  # nothing stored: its answers need not be read
                continue
            places = _photo_places(record.values, wanted)
            if not places:
                continue
            folder = safe_part(opd_of(record.values) if opd_of else "", 60) or no_opd_folder
            day = record.created_at.astimezone(zone).date().isoformat()
            who = safe_part(record.instance_name or "", 60) or short_id(record.instance_id)
            for ref in record.attachments:
                place = places.get(attachment_name(ref.name))
                if place is None:
                    continue
                question, n = place
                stem = f"{folder}/{day}_{who}_{safe_part(question.name, 60) or 'foto'}_{n}"
                chunks = missing.open(ref, stem)
                if chunks is None:
                    continue
                name = used.unique(stem, extension(ref.name, ref.content_type))
                yield (name, record.created_at, FILE_MODE, ZIP_AUTO(ref.size, level=0), chunks)
        now = datetime.now(UTC)
        yield from missing.members(now)

    yield from stream_zip(members(), chunk_size=CHUNK)


def _photo_places(values: Any, fields: Sequence[Field]) -> dict[str, tuple[Field, int]]:
    places: dict[str, tuple[Field, int]] = {}
    for item in fields:
        n = 0
        for value in iter_values(values, item.path):
            name = attachment_name(value) if isinstance(value, str) else ""
            if name:
                n += 1
                places.setdefault(name, (item, n))
    return places
