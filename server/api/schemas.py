"""Wire shapes of the /v1 API, as ODK Central writes them (camelCase, every key present)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from storage.models import Form, FormVersion


class Wire(msgspec.Struct, rename="camel"):
    pass


class Success(Wire):
    """Central's answer to an action that returns nothing else."""

    success: bool = True


class FormOut(Wire):
    project_id: int
    xml_form_id: str
    state: str
    created_at: datetime
    version: str | None = None
    hash: str | None = None
    name: str | None = None
    enketo_id: str | None = None
    key_id: int | None = None
    updated_at: datetime | None = None
    published_at: datetime | None = None

    @classmethod
    def of(cls, form: Form, version: FormVersion | None) -> FormOut:
        return cls(
            project_id=form.project_id,
            xml_form_id=form.xml_form_id,
            state=form.state,
            created_at=form.created_at,
            version=version.version if version else None,
            hash=version.md5 if version else None,
            name=version.title if version else None,
            updated_at=form.updated_at,
            published_at=version.published_at if version else None,
        )


class Problem(Wire):
    code: float
    message: str
