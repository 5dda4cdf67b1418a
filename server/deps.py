"""Typed names for what handlers receive: dependencies by name, path parameters explicitly."""

from __future__ import annotations

from typing import Annotated

from litestar.di import NamedDependency
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter  # noqa: F401

from storage.blobs import BlobStore
from storage.db import Database
from storage.tokens import TokenBox
from storage.users import Identity

from .settings import Settings

DB = NamedDependency[Database]
Blobs = NamedDependency[BlobStore]
Config = NamedDependency[Settings]
Box = NamedDependency[TokenBox]
Caller = NamedDependency[Identity]
Roles = NamedDependency[frozenset[str]]  # the caller's roles on the project (its guard found)
ProjectId = Annotated[int, PathParameter()]
UserAgent = Annotated[str | None, HeaderParameter(name="user-agent", required=False)]
PathText = Annotated[str, PathParameter()]


def is_true(value: str | None) -> bool:
    """A flag as Central reads query parameters and headers (`?force=true`,
    `X-Extended-Metadata: true`): "true" in any case."""
    return value is not None and value.strip().lower() == "true"
