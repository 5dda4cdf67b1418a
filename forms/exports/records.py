"""What the export writers read: a submission as a `Record` (its `RowMeta`, values and
attachments), each attachment a `MediaRef`, and the chunk size they write in."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from ..tabular import RowMeta

CHUNK = 64 * 1024

OpenBlob = Callable[[str], Iterable[bytes]]  # sha256 -> the blob's bytes, in chunks


@dataclass(frozen=True, slots=True)
class MediaRef:
    """One stored attachment of a submission's current version."""

    name: str
    sha256: str
    size: int
    content_type: str | None = None


class Record(Protocol):
    """What the writers read from each submission (storage.odata.SubmissionRow is one)."""

    @property
    def meta(self) -> RowMeta: ...

    @property
    def values(self) -> dict[str, Any]: ...

    @property
    def attachments(self) -> Sequence[MediaRef]: ...

    @property
    def instance_id(self) -> str: ...

    @property
    def instance_name(self) -> str | None: ...

    @property
    def created_at(self) -> datetime: ...
