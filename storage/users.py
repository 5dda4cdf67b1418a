"""Web users: accounts, passwords (argon2, with a short cache of verified ones), sessions and
password logins.

Users and app users are actors (as in ODK Central): every id handed out over the API is the
actor id. Functions that change something take `actor_id`, the actor doing it (for the audit
entry written beside the change); the actor acted upon is named for what it is
(`user_actor_id`, `app_actor_id`).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session as Tx
from sqlmodel import col, delete, select

from . import audit, throttle
from .db import Database
from .errors import Conflict, Forbidden, InvalidInput, NotFound, Throttled
from .models import Actor, RoleAssignment, Session, User, utcnow
from .tokens import hash_token, is_well_formed, new_token

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("not a password")


@dataclass(frozen=True)
class Identity:
    """Who is calling, as every rule needs to know it."""

    actor_id: int
    kind: str  # user | app_user
    display_name: str
    user_id: int | None = None
    is_admin: bool = False
    app_user_id: int | None = None
    project_id: int | None = None  # an app user's one project
    session_id: int | None = None  # the session a Bearer token or the UI cookie named


# ---- web users -------------------------------------------------------------------------------


def create_user(
    db: Database,
    email: str,
    password: str | None = None,
    *,
    is_admin: bool = False,
    display_name: str | None = None,
    actor_id: int | None = None,
) -> User:
    email = normalize_email(email)
    if password is not None:
        check_password_strength(password)
    password_hash = _hasher.hash(password) if password else None  # outside the write lock
    with db.transaction() as tx:
        if tx.exec(select(User).where(User.email == email)).first():
            raise Conflict(f"A user with the email {email!r} already exists.")
        actor = Actor(kind="user", display_name=display_name or email)
        tx.add(actor)
        tx.flush()
        user = User(actor_id=actor.id, email=email, is_admin=is_admin, password_hash=password_hash)
        tx.add(user)
        tx.flush()
        audit.record(
            tx, actor_id, "user.create", "actor", actor.id, {"email": email, "admin": is_admin}
        )
        return user


def find_user_by_email(db: Database, email: str) -> User | None:
    with db.read() as tx:
        return tx.exec(select(User).where(User.email == normalize_email(email))).first()


def verify_password(db: Database, email: str, password: str) -> Identity | None:
    """The identity for a correct email and password, else None (constant work either way)."""
    with db.read() as tx:
        row = _login_row(tx, email)
    return _check_password(row, password)


def _login_row(tx: Tx, email: str) -> tuple[User, Actor] | None:
    try:
        email = normalize_email(email)
    except InvalidInput:
        return None
    row = tx.exec(
        select(User, Actor).join(Actor, Actor.id == User.actor_id).where(User.email == email)
    ).first()
    return (row[0], row[1]) if row else None


def _check_password(row: tuple[User, Actor] | None, password: str) -> Identity | None:
    """Argon2 work happens here, outside any transaction."""
    try:
        if row is None or row[0].password_hash is None or row[1].deleted_at is not None:
            _hasher.verify(_DUMMY_HASH, password + "x")
            return None
        if not _verified.seen(row[0].password_hash, password):
            _hasher.verify(row[0].password_hash, password)
            _verified.remember(row[0].password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return _user_identity(row[0], row[1])


class _Verified:
    """Passwords argon2 accepted lately, so that HTTP Basic clients (Excel and Power BI
    paging through OData, scripts) do not pay a quarter second of argon2 per request.

    An entry is a keyed BLAKE2b of the stored hash and the password, under a key made at
    process start: never the password, useless outside this process, and void as soon as the
    password changes (the stored hash is part of it). Entries last `TTL` seconds; failures
    are never remembered, so throttling and wrong passwords work as before."""

    TTL = 300.0
    SIZE = 512

    def __init__(self) -> None:
        self.key = secrets.token_bytes(32)
        self.entries: OrderedDict[bytes, float] = OrderedDict()
        self.lock = threading.Lock()

    def _digest(self, stored_hash: str, password: str) -> bytes:
        return hashlib.blake2b(
            f"{stored_hash}\0{password}".encode("utf-8", "surrogatepass"),
            key=self.key,
            digest_size=32,
        ).digest()

    def seen(self, stored_hash: str, password: str) -> bool:
        digest = self._digest(stored_hash, password)
        with self.lock:
            until = self.entries.get(digest)
            if until is None or until < time.monotonic():
                return False
            self.entries.move_to_end(digest)
            return True

    def remember(self, stored_hash: str, password: str) -> None:
        digest = self._digest(stored_hash, password)
        with self.lock:
            self.entries[digest] = time.monotonic() + self.TTL
            self.entries.move_to_end(digest)
            while len(self.entries) > self.SIZE:
                self.entries.popitem(last=False)


_verified = _Verified()


def set_password(db: Database, user_id: int, password: str, *, actor_id: int | None = None) -> None:
    """An administrator's (or the command line's, `actor_id` None) reset of a user's password,
    without the old one. Every session of the user ends, as in Central: whoever knew the old
    password is logged out everywhere."""
    check_password_strength(password)
    password_hash = _hasher.hash(password)
    with db.transaction() as tx:
        user = tx.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("user")
        user.password_hash = password_hash
        audit.record(tx, actor_id, "user.password", "actor", user.actor_id)
        _end_sessions(tx, user.actor_id, actor_id=actor_id)


def check_password_strength(password: str) -> None:
    if len(password) < 10:
        raise InvalidInput("The password must be at least 10 characters long.")
    if len(password) > 1024:
        raise InvalidInput("The password is too long.")


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320 or any(ch.isspace() for ch in email):
        raise InvalidInput(f"{email!r} is not an email address.")
    return email


def _user_identity(user: User, actor: Actor, session_id: int | None = None) -> Identity:
    return Identity(
        actor_id=actor.id,
        kind="user",
        display_name=actor.display_name,
        user_id=user.id,
        is_admin=user.is_admin,
        session_id=session_id,
    )


@dataclass(frozen=True)
class UserView:
    """A web user with its actor (whose id is the user's id on the API)."""

    user: User
    actor: Actor


def get_user(db: Database, user_actor_id: int) -> UserView:
    with db.read() as tx:
        return user_view(tx, user_actor_id)


def list_users(db: Database) -> list[UserView]:
    """Every user not deleted, oldest first."""
    with db.read() as tx:
        rows = tx.exec(
            select(User, Actor)
            .join(Actor, Actor.id == User.actor_id)
            .where(col(Actor.deleted_at).is_(None))
            .order_by(Actor.id)
        ).all()
    return [UserView(user, actor) for user, actor in rows]


def update_user(
    db: Database,
    user_actor_id: int,
    *,
    display_name: str | None = None,
    email: str | None = None,
    actor_id: int | None = None,
) -> UserView:
    changes: dict[str, Any] = {}
    try:
        with db.transaction() as tx:
            view = user_view(tx, user_actor_id)
            if display_name is not None:
                view.actor.display_name = changes["displayName"] = _display_name(display_name)
            if email is not None and normalize_email(email) != view.user.email:
                email = normalize_email(email)
                if tx.exec(select(User.id).where(User.email == email)).first() is not None:
                    raise Conflict(f"A user with the email {email!r} already exists.")
                view.user.email = changes["email"] = email
            if changes:
                tx.flush()
                audit.record(tx, actor_id, "user.update", "actor", user_actor_id, changes)
            return view
    except IntegrityError:  # the same email taken by a concurrent request
        raise Conflict(f"A user with the email {email!r} already exists.") from None


def change_password(
    db: Database, user_actor_id: int, old: str, new: str, *, keep_session_id: int | None = None
) -> bool:
    """Set a new password when `old` is the current one; False (nothing changed) when it is not.

    Every other session of the user ends with the change, as in Central: a stolen token or a
    browser left logged in elsewhere goes with the old password. `keep_session_id` is the
    session the change was made with, which stays (None, as for HTTP Basic: all end).
    Both argon2 steps run outside the write transaction; the write only lands if the password
    was not changed meanwhile.
    """
    check_password_strength(new)
    with db.read() as tx:
        view = user_view(tx, user_actor_id)
    if _check_password((view.user, view.actor), old) is None:
        return False
    new_hash = _hasher.hash(new)
    with db.transaction() as tx:
        user = tx.get(User, view.user.id, with_for_update=True)
        if user is None or user.password_hash != view.user.password_hash:
            return False
        user.password_hash = new_hash
        audit.record(tx, user_actor_id, "user.password", "actor", user_actor_id)
        _end_sessions(tx, user_actor_id, actor_id=user_actor_id, keep_session_id=keep_session_id)
    return True


def _end_sessions(
    tx: Tx, user_actor_id: int, *, actor_id: int | None, keep_session_id: int | None = None
) -> None:
    """End the user's sessions (but `keep_session_id`) in the password's transaction.

    Callers hold the user's row locked (its password was just written), and a login re-reads
    that row locked before it opens a session, so no session checked against the old password
    opens after this. One `user.session.end` entry says how many live sessions ended."""
    tx.exec(
        delete(Session).where(
            col(Session.actor_id) == user_actor_id, col(Session.expires_at) <= utcnow()
        )
    )
    ending = delete(Session).where(col(Session.actor_id) == user_actor_id)
    if keep_session_id is not None:
        ending = ending.where(col(Session.id) != keep_session_id)
    ended = tx.exec(ending).rowcount  # type: ignore[attr-defined]
    if ended:
        audit.record(
            tx,
            actor_id,
            "user.session.end",
            "actor",
            user_actor_id,
            {"sessions": ended, "reason": "user.password"},
        )


def delete_user(db: Database, user_actor_id: int, *, actor_id: int | None = None) -> None:
    """Soft delete: the actor stays (submissions and audits point at it); its sessions and
    project roles go. The last administrator cannot be deleted."""
    with db.transaction() as tx:
        view = user_view(tx, user_actor_id)
        if view.user.is_admin:
            _keep_an_admin(tx, user_actor_id)
        view.actor.deleted_at = utcnow()
        tx.exec(delete(Session).where(col(Session.actor_id) == user_actor_id))
        tx.exec(delete(RoleAssignment).where(col(RoleAssignment.actor_id) == user_actor_id))
        audit.record(tx, actor_id, "user.delete", "actor", user_actor_id)


def set_admin(
    db: Database, user_actor_id: int, admin: bool, *, actor_id: int | None = None
) -> None:
    """Grant (idempotent) or withdraw the server-wide admin role; withdrawing a role the user
    does not hold is NotFound, and the last administrator keeps it (Conflict)."""
    with db.transaction() as tx:
        view = user_view(tx, user_actor_id)
        if view.user.is_admin == admin:
            if admin:
                return
            raise NotFound("assignment")
        if not admin:
            _keep_an_admin(tx, user_actor_id)
        view.user.is_admin = admin
        audit.record(
            tx,
            actor_id,
            "user.assignment.create" if admin else "user.assignment.delete",
            "actor",
            user_actor_id,
            {"role": "admin"},
        )


def user_view(tx: Tx, user_actor_id: int) -> UserView:
    row = tx.exec(
        select(User, Actor)
        .join(Actor, Actor.id == User.actor_id)
        .where(User.actor_id == user_actor_id, col(Actor.deleted_at).is_(None))
    ).first()
    if row is None:
        raise NotFound("user")
    return UserView(row[0], row[1])


def _keep_an_admin(tx: Tx, leaving_actor_id: int) -> None:
    others = tx.exec(
        select(User.id)
        .join(Actor, Actor.id == User.actor_id)
        .where(
            col(User.is_admin), User.actor_id != leaving_actor_id, col(Actor.deleted_at).is_(None)
        )
        .with_for_update()
    ).all()
    if not others:
        raise Conflict("This is the last administrator; make another user an administrator first.")


def _display_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 255:
        raise InvalidInput("A display name must have 1 to 255 characters.")
    return name


# ---- sessions --------------------------------------------------------------------------------


def create_session(db: Database, actor_id: int, hours: float) -> tuple[str, Session]:
    with db.transaction() as tx:
        return _new_session(tx, actor_id, hours)


def _new_session(tx: Tx, actor_id: int, hours: float) -> tuple[str, Session]:
    tx.exec(
        delete(Session).where(
            col(Session.actor_id) == actor_id, col(Session.expires_at) <= utcnow()
        )
    )
    token = new_token()  # 64 symbols of a 64-letter alphabet: 384 random bits; kept hashed
    session = Session(
        actor_id=actor_id,
        token_hash=hash_token(token),
        expires_at=utcnow() + timedelta(hours=hours),
    )
    tx.add(session)
    tx.flush()
    audit.record(tx, actor_id, "user.session.create", "actor", actor_id)
    return token, session


@dataclass(frozen=True)
class Login:
    """A password login that succeeded: the new session and its token."""

    token: str
    session: Session


def authenticate(db: Database, email: str, password: str, *, client: str) -> Identity | None:
    """Check the throttle, then the password; a failure is recorded. Raises Throttled.

    Used by the login route and by HTTP Basic alike, so neither gets around the limits.
    The argon2 check runs between a short read and one short write, never inside a
    transaction; throttled attempts are refused without looking at the password.
    """
    return _authenticate(db, email, password, client=client)[0]


def _authenticate(
    db: Database, email: str, password: str, *, client: str
) -> tuple[Identity | None, str | None]:
    """`authenticate`, with the stored hash the password was checked against."""
    email_key = email.strip().lower()[:320]
    client = (client or "unknown")[:64]
    with db.read() as tx:
        wait = throttle.wait_seconds(tx, email_key, client)
        row = _login_row(tx, email) if wait is None else None
    if wait is not None:
        raise Throttled(wait)
    identity = _check_password(row, password)
    if identity is None:
        with db.detached().transaction() as tx:  # counted even though the request fails
            throttle.record_failure(tx, email_key, client)
        return None, None
    assert row is not None
    return identity, row[0].password_hash


def log_in(db: Database, email: str, password: str, *, client: str, hours: float) -> Login | None:
    """A new session for a correct email and password, None for wrong ones (throttled).

    The session opens only if the password is still the one argon2 checked: a change landing
    between the check and this write ended the user's sessions, and must end this one too."""
    identity, checked_hash = _authenticate(db, email, password, client=client)
    if identity is None:
        return None
    with db.transaction() as tx:
        user = tx.get(User, identity.user_id, with_for_update=True)
        if user is None or user.password_hash != checked_hash:
            return None
        token, session = _new_session(tx, identity.actor_id, hours)
        return Login(token=token, session=session)


def identity_for_session(db: Database, token: str) -> Identity | None:
    if not is_well_formed(token):
        return None
    with db.read() as tx:
        row = tx.exec(
            select(User, Actor, Session.id)
            .join(Actor, Actor.id == User.actor_id)
            .join(Session, Session.actor_id == Actor.id)
            .where(
                Session.token_hash == hash_token(token),
                Session.expires_at > utcnow(),
                Actor.deleted_at.is_(None),
            )
        ).first()
    return _user_identity(*row) if row else None


def delete_session(db: Database, token: str) -> bool:
    with db.transaction() as tx:
        session = tx.exec(select(Session).where(Session.token_hash == hash_token(token))).first()
        if session is None:
            return False
        tx.delete(session)
        audit.record(tx, session.actor_id, "user.session.end", "actor", session.actor_id)
        return True


def end_session(db: Database, token: str, *, actor_id: int, is_admin: bool = False) -> None:
    """End the session holding `token` at once: its own user or an administrator may."""
    with db.transaction() as tx:
        session = (
            tx.exec(select(Session).where(Session.token_hash == hash_token(token))).first()
            if is_well_formed(token)
            else None
        )
        if session is None:
            raise NotFound("session")
        if session.actor_id != actor_id and not is_admin:
            raise Forbidden("Only the session's own user or an administrator may end it.")
        tx.delete(session)
        audit.record(tx, actor_id, "user.session.end", "actor", session.actor_id)
