"""Web users, app users (phones), sessions, project roles, form access and the audit log read.

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
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session as Tx
from sqlmodel import col, delete, or_, select

from . import audit, throttle
from .db import Database
from .errors import Conflict, Forbidden, InvalidInput, NotFound, Throttled
from .models import Actor, AppUser, Audit, Form, Project, RoleAssignment, Session, User, utcnow
from .tokens import TokenBox, hash_token, is_well_formed, new_token

ROLES = ("manager", "supervisor", "officer")
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
        return _user_view(tx, user_actor_id)


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
            view = _user_view(tx, user_actor_id)
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
        view = _user_view(tx, user_actor_id)
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
        view = _user_view(tx, user_actor_id)
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
        view = _user_view(tx, user_actor_id)
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


def _user_view(tx: Tx, user_actor_id: int) -> UserView:
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
        with db.transaction() as tx:
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


# ---- app users -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppUserOut:
    app_user: AppUser
    actor: Actor
    token: str | None  # None once revoked, or when sealed under another secret


def create_app_user(
    db: Database, box: TokenBox, project_id: int, display_name: str, actor_id: int | None = None
) -> AppUserOut:
    display_name = display_name.strip()
    if not display_name or len(display_name) > 255:
        raise InvalidInput("An app user needs a display name of 1 to 255 characters.")
    token = new_token()
    with db.transaction() as tx:
        if tx.get(Project, project_id) is None:
            raise NotFound("project")
        actor = Actor(kind="app_user", display_name=display_name)
        tx.add(actor)
        tx.flush()
        app_user = AppUser(
            actor_id=actor.id,
            project_id=project_id,
            token_hash=hash_token(token),
            token_sealed=box.seal(token),
        )
        tx.add(app_user)
        tx.add(RoleAssignment(actor_id=actor.id, project_id=project_id, role="officer"))
        tx.flush()
        audit.record(
            tx,
            actor_id,
            "field_key.create",
            "actor",
            actor.id,
            {"displayName": display_name, "projectId": project_id},
        )
        return AppUserOut(app_user, actor, token)


def list_app_users(db: Database, box: TokenBox, project_id: int) -> list[AppUserOut]:
    with db.read() as tx:
        rows = tx.exec(
            select(AppUser, Actor)
            .join(Actor, Actor.id == AppUser.actor_id)
            .where(AppUser.project_id == project_id, Actor.deleted_at.is_(None))
            .order_by(AppUser.id)
        ).all()
    return [
        AppUserOut(app_user, actor, box.open(app_user.token_sealed)) for app_user, actor in rows
    ]


def find_app_user_by_name(
    db: Database, box: TokenBox, project_id: int, display_name: str
) -> AppUserOut | None:
    return next(
        (
            a
            for a in list_app_users(db, box, project_id)
            if a.actor.display_name == display_name and a.app_user.revoked_at is None
        ),
        None,
    )


def revoke_app_user(
    db: Database, project_id: int, app_user_id: int, actor_id: int | None = None
) -> None:
    with db.transaction() as tx:
        app_user = tx.get(AppUser, app_user_id)
        if app_user is None or app_user.project_id != project_id:
            raise NotFound("app user")
        app_user.token_hash = None
        app_user.token_sealed = None
        app_user.revoked_at = utcnow()
        audit.record(tx, actor_id, "field_key.revoke", "actor", app_user.actor_id)


def get_app_user(db: Database, box: TokenBox, project_id: int, app_actor_id: int) -> AppUserOut:
    """One app user of the project, by its actor id (revoked ones too; token None then)."""
    with db.read() as tx:
        app_user, actor = _app_user_row(tx, project_id, app_actor_id)
    return AppUserOut(app_user, actor, box.open(app_user.token_sealed))


def revoke_app_user_by_actor(
    db: Database, project_id: int, app_actor_id: int, *, actor_id: int | None = None
) -> None:
    """Revoke an app user's key (by actor id, as the API names it); idempotent.

    The key answers 403 from the next request on: its hash is gone, and with it every lookup.
    """
    with db.transaction() as tx:
        app_user, _ = _app_user_row(tx, project_id, app_actor_id)
        if app_user.revoked_at is not None:
            return
        app_user.token_hash = None
        app_user.token_sealed = None
        app_user.revoked_at = utcnow()
        audit.record(tx, actor_id, "field_key.revoke", "actor", app_actor_id)


def _app_user_row(tx: Tx, project_id: int, app_actor_id: int) -> tuple[AppUser, Actor]:
    row = tx.exec(
        select(AppUser, Actor)
        .join(Actor, Actor.id == AppUser.actor_id)
        .where(
            AppUser.actor_id == app_actor_id,
            AppUser.project_id == project_id,
            col(Actor.deleted_at).is_(None),
        )
    ).first()
    if row is None:
        raise NotFound("app user")
    return row[0], row[1]


def identity_for_key(db: Database, token: str) -> Identity:
    """The app user holding this key. Raises Forbidden for an unknown or revoked key."""
    with db.read() as tx:
        row = tx.exec(
            select(AppUser, Actor)
            .join(Actor, Actor.id == AppUser.actor_id)
            .where(
                AppUser.token_hash == hash_token(token),
                AppUser.revoked_at.is_(None),
                Actor.deleted_at.is_(None),
            )
        ).first()
    if row is None:
        raise Forbidden("This app user key is not valid (unknown or revoked).")
    app_user, actor = row
    return Identity(
        actor_id=actor.id,
        kind="app_user",
        display_name=actor.display_name,
        app_user_id=app_user.id,
        project_id=app_user.project_id,
    )


# ---- roles -----------------------------------------------------------------------------------


def grant_role(
    db: Database, actor_id: int, project_id: int, role: str, by_actor_id: int | None = None
) -> None:
    """`assign_role` with the arguments in the order older callers (tests) give them: the same
    checks and the same one path."""
    assign_role(db, project_id, role, actor_id, actor_id=by_actor_id)


def roles_in_project(db: Database, identity: Identity, project_id: int) -> frozenset[str]:
    if identity.is_admin:
        return frozenset({"admin", *ROLES})
    if identity.kind == "app_user":
        return frozenset({"officer"}) if identity.project_id == project_id else frozenset()
    with db.read() as tx:
        return frozenset(
            tx.exec(
                select(RoleAssignment.role).where(
                    RoleAssignment.actor_id == identity.actor_id,
                    RoleAssignment.project_id == project_id,
                )
            ).all()
        )


# The roles the API names, with ids that never change (DESIGN §7). `admin` is server-wide
# (User.is_admin); the others are held per project (role_assignment rows).
SYSTEM_ROLES = ("admin", *ROLES)  # ids 1..4 in this order
ROLE_TITLES = {
    "admin": "Administrator",
    "manager": "Project Manager",
    "supervisor": "Supervisor",
    "officer": "Officer",
}


@dataclass(frozen=True)
class Role:
    id: int
    name: str
    system: str


def list_roles() -> list[Role]:
    return [Role(role_id(system), ROLE_TITLES[system], system) for system in SYSTEM_ROLES]


def role_id(system: str) -> int:
    return SYSTEM_ROLES.index(system) + 1


def role_named(ref: str) -> str:
    """A role's system name from its id ("2") or its system name ("manager"); else NotFound."""
    ref = ref.strip().lower()
    if ref.isascii() and ref.isdigit() and 1 <= int(ref) <= len(SYSTEM_ROLES):
        return SYSTEM_ROLES[int(ref) - 1]
    if ref in SYSTEM_ROLES:
        return ref
    raise NotFound("role")


def list_assignments(db: Database, project_id: int) -> list[tuple[int, str]]:
    """(actor id, role) of everyone holding a role in the project, app users included."""
    with db.read() as tx:
        rows = tx.exec(
            select(RoleAssignment.actor_id, RoleAssignment.role)
            .join(Actor, Actor.id == RoleAssignment.actor_id)
            .where(
                RoleAssignment.project_id == project_id,
                col(RoleAssignment.role).in_(ROLES),
                col(Actor.deleted_at).is_(None),
            )
            .order_by(RoleAssignment.actor_id, RoleAssignment.role)
        ).all()
    return [(actor, role) for actor, role in rows]


def assign_role(
    db: Database, project_id: int, role: str, user_actor_id: int, *, actor_id: int | None = None
) -> None:
    """Give a web user a role in the project (idempotent). App users' roles are fixed."""
    _check_project_role(role)
    try:
        with db.transaction() as tx:
            if tx.get(Project, project_id) is None:
                raise NotFound("project")
            _user_view(tx, user_actor_id)
            if _assignment(tx, project_id, role, user_actor_id) is not None:
                return
            tx.add(RoleAssignment(actor_id=user_actor_id, project_id=project_id, role=role))
            tx.flush()
            audit.record(
                tx,
                actor_id,
                "user.assignment.create",
                "actor",
                user_actor_id,
                {"projectId": project_id, "role": role},
            )
    except IntegrityError:
        pass  # granted by a concurrent request


def unassign_role(
    db: Database, project_id: int, role: str, user_actor_id: int, *, actor_id: int | None = None
) -> None:
    _check_project_role(role)
    with db.transaction() as tx:
        _user_view(tx, user_actor_id)
        row = _assignment(tx, project_id, role, user_actor_id)
        if row is None:
            raise NotFound("assignment")
        tx.delete(row)
        audit.record(
            tx,
            actor_id,
            "user.assignment.delete",
            "actor",
            user_actor_id,
            {"projectId": project_id, "role": role},
        )


def _check_project_role(role: str) -> None:
    if role == "admin":
        raise InvalidInput("admin is a server-wide role: use /v1/assignments/admin/{actorId}.")
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")


def _assignment(tx: Tx, project_id: int, role: str, actor_id: int) -> RoleAssignment | None:
    return tx.exec(
        select(RoleAssignment).where(
            RoleAssignment.project_id == project_id,
            RoleAssignment.role == role,
            RoleAssignment.actor_id == actor_id,
        )
    ).first()


# ---- form access for app users ---------------------------------------------------------------
# Central's form assignments (`app-user` role on one form). Recorded as a role_assignment row
# whose role is "form:{form id}" (no table of their own yet). NOT enforced yet: every app user
# of a project lists and fills all of its open forms; these rows say who *should* see which
# form, for formList filtering to come.

FORM_ACCESS = "form:"


def grant_form_access(
    db: Database,
    project_id: int,
    xml_form_id: str,
    app_actor_id: int,
    *,
    actor_id: int | None = None,
) -> None:
    """Assign a form to an app user of the same project (idempotent)."""
    try:
        with db.transaction() as tx:
            form = _form(tx, project_id, xml_form_id)
            _app_user_row(tx, project_id, app_actor_id)
            role = f"{FORM_ACCESS}{form.id}"
            if _assignment(tx, project_id, role, app_actor_id) is not None:
                return
            tx.add(RoleAssignment(actor_id=app_actor_id, project_id=project_id, role=role))
            tx.flush()
            audit.record(
                tx,
                actor_id,
                "form.assignment.create",
                "form",
                form.id,
                {"actorId": app_actor_id, "role": "officer"},
            )
    except IntegrityError:
        pass  # assigned by a concurrent request


def revoke_form_access(
    db: Database,
    project_id: int,
    xml_form_id: str,
    app_actor_id: int,
    *,
    actor_id: int | None = None,
) -> None:
    with db.transaction() as tx:
        form = _form(tx, project_id, xml_form_id)
        row = _assignment(tx, project_id, f"{FORM_ACCESS}{form.id}", app_actor_id)
        if row is None:
            raise NotFound("assignment")
        tx.delete(row)
        audit.record(
            tx,
            actor_id,
            "form.assignment.delete",
            "form",
            form.id,
            {"actorId": app_actor_id, "role": "officer"},
        )


def list_form_access(db: Database, project_id: int, xml_form_id: str) -> list[Actor]:
    """The app users (actors) assigned to the form."""
    with db.read() as tx:
        form = _form(tx, project_id, xml_form_id)
        return list(
            tx.exec(
                select(Actor)
                .join(RoleAssignment, Actor.id == RoleAssignment.actor_id)
                .where(
                    RoleAssignment.project_id == project_id,
                    RoleAssignment.role == f"{FORM_ACCESS}{form.id}",
                    col(Actor.deleted_at).is_(None),
                )
                .order_by(RoleAssignment.actor_id)
            ).all()
        )


def _form(tx: Tx, project_id: int, xml_form_id: str) -> Form:
    form = tx.exec(
        select(Form).where(
            Form.project_id == project_id,
            Form.xml_form_id == xml_form_id,
            col(Form.deleted_at).is_(None),
        )
    ).first()
    if form is None:
        raise NotFound("form")
    return form


# ---- the audit log -----------------------------------------------------------------------------
# Reading it lives here until storage/audit.py (which writes it) grows a reader.

MAX_AUDIT_PAGE = 1000


def list_audits(
    db: Database,
    *,
    action: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Audit]:
    """Newest first. `action` is one action ("user.create") or a category ("user" matches
    "user.*"); `start` is inclusive, `end` exclusive."""
    if not 1 <= limit <= MAX_AUDIT_PAGE or offset < 0:
        raise InvalidInput(f"limit must be 1 to {MAX_AUDIT_PAGE} and offset at least 0.")
    query = select(Audit)
    if action:
        query = query.where(
            or_(Audit.action == action, col(Audit.action).startswith(action + ".", autoescape=True))
        )
    if start is not None:
        query = query.where(col(Audit.logged_at) >= start)
    if end is not None:
        query = query.where(col(Audit.logged_at) < end)
    query = query.order_by(col(Audit.logged_at).desc(), col(Audit.id).desc())
    with db.read() as tx:
        return list(tx.exec(query.offset(offset).limit(limit)).all())


def touch(tx: Tx, row: object, when: datetime | None = None) -> None:
    row.updated_at = when or utcnow()
