"""Secrets handed to people and phones: made random, stored hashed, and (for app users) sealed.

A sealed token can be opened again with the server's secret key, so the app-user list can show
each phone's Collect URL; the lookup itself only ever uses the hash.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken

# Central's alphabet for app-user keys: 64 symbols, 64 characters = 384 bits.
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!$"
TOKEN_LENGTH = 64


def new_token() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_LENGTH))


def is_well_formed(token: str) -> bool:
    return len(token) == TOKEN_LENGTH and all(ch in _ALPHABET for ch in token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenBox:
    def __init__(self, secret: str) -> None:
        key = base64.urlsafe_b64encode(hashlib.sha256(secret.encode("utf-8")).digest())
        self._fernet = Fernet(key)

    def seal(self, token: str) -> str:
        return self._fernet.encrypt(token.encode("utf-8")).decode("ascii")

    def open(self, sealed: str | None) -> str | None:
        if not sealed:
            return None
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except InvalidToken:
            return None  # sealed under another secret key: the token can no longer be shown
