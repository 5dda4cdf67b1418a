"""Opaque tokens handed to clients and read back from them: URL-safe base64 of compact JSON.

Paging cursors (OData's `$skiptoken`, the supervisor pages' `?after=`) travel through the
client, so what comes back is hostile input. Every such token is read here, one way: the text
is bounded in length before anything is decoded, the base64 is checked strictly, and the JSON
is decoded by msgspec straight into a fixed typed shape (a Struct that forbids unknown fields,
a fixed-length tuple), so a wrong type, a wrong length, an unknown key or an integer past
64 bits fails at its first byte instead of being built into Python objects first; that is also
why nested junk (`[[[[…`) is refused at its first bracket rather than recursed into, which is
what `json.loads` did (RecursionError, a 500). Every failure, whatever its class, becomes
:class:`InvalidToken`; each caller turns that into its own module's invalid-input error.
"""

from __future__ import annotations

import base64
import re
from typing import Any, TypeVar

import msgspec

# Far above any token this server writes (about 60 characters), far below what would cost
# anything to look at.
MAX_TOKEN_CHARS = 512
# Both base64 alphabets (URL-safe as written here, standard as some clients re-encode it),
# with or without padding: anything else is not a token.
_BASE64 = re.compile(r"[A-Za-z0-9_+/-]*={0,2}")

T = TypeVar("T")


class InvalidToken(ValueError):
    """A token that is not one this server wrote (or no longer can be read)."""


def encode_token(value: Any) -> str:
    """`value` (msgspec-encodable) as an unpadded URL-safe base64 text of compact JSON."""
    return base64.urlsafe_b64encode(msgspec.json.encode(value)).decode("ascii").rstrip("=")


def decode_token(text: str, shape: type[T]) -> T:
    """The value of type `shape` that `text` encodes, or InvalidToken. `shape` should be a
    closed one (a Struct with `forbid_unknown_fields=True`, a fixed tuple, bounded ints):
    msgspec skips unknown fields and extra items recursively, so an open shape would still
    walk nested junk."""
    if (
        not isinstance(text, str)
        or not text
        or len(text) > MAX_TOKEN_CHARS
        or not _BASE64.fullmatch(text)
    ):
        raise InvalidToken("not a token")
    body = text.rstrip("=").replace("+", "-").replace("/", "_")
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        return msgspec.json.decode(raw, type=shape)
    except Exception as error:  # noqa: BLE001 - every way to fail is the same answer
        # (binascii.Error, msgspec.DecodeError/ValidationError, ValueError, RecursionError…)
        raise InvalidToken(f"not a token: {type(error).__name__}") from None
