"""Typed names for what handlers receive: dependencies by name, path parameters explicitly."""

from __future__ import annotations

from typing import Annotated

from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter  # noqa: F401

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
PathText = Annotated[str, PathParameter()]
