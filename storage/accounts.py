"""Web users, app users (phones), sessions and project roles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session as Tx
from sqlmodel import select

from . import audit
from .db import Database
from .errors import Conflict, Forbidden, InvalidInput, NotFound
from .models import Actor, AppUser, Project, RoleAssignment, Session, User, utcnow
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


# ---- web users -------------------------------------------------------------------------------

def create_user(db: Database, email: str, password: str | None = None, *, is_admin: bool = False,
                display_name: str | None = None, actor_id: int | None = None) -> User:
    email = normalize_email(email)
    if password is not None:
        check_password_strength(password)
    with db.transaction() as tx:
        if tx.exec(select(User).where(User.email == email)).first():
            raise Conflict(f"A user with the email {email!r} already exists.")
        actor = Actor(kind="user", display_name=display_name or email)
        tx.add(actor)
        tx.flush()
        user = User(actor_id=actor.id, email=email, is_admin=is_admin,
                    password_hash=_hasher.hash(password) if password else None)
        tx.add(user)
        tx.flush()
        audit.record(tx, actor_id, "user.create", "actor", actor.id,
                     {"email": email, "admin": is_admin})
        return user


def find_user_by_email(db: Database, email: str) -> User | None:
    with db.read() as tx:
        return tx.exec(select(User).where(User.email == normalize_email(email))).first()


def verify_password(db: Database, email: str, password: str) -> Identity | None:
    """The identity for a correct email and password, else None (constant work either way)."""
    with db.read() as tx:
        row = tx.exec(select(User, Actor).join(Actor, Actor.id == User.actor_id)
                      .where(User.email == normalize_email(email))).first()
    try:
        if row is None or row[0].password_hash is None or row[1].deleted_at is not None:
            _hasher.verify(_DUMMY_HASH, password + "x")
            return None
        _hasher.verify(row[0].password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return _user_identity(row[0], row[1])


def set_password(db: Database, user_id: int, password: str) -> None:
    check_password_strength(password)
    with db.transaction() as tx:
        user = tx.get(User, user_id)
        if user is None:
            raise NotFound("user")
        user.password_hash = _hasher.hash(password)
        audit.record(tx, user.actor_id, "user.password", "actor", user.actor_id)


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


def _user_identity(user: User, actor: Actor) -> Identity:
    return Identity(actor_id=actor.id, kind="user", display_name=actor.display_name,
                    user_id=user.id, is_admin=user.is_admin)


# ---- sessions --------------------------------------------------------------------------------

def create_session(db: Database, actor_id: int, hours: float) -> tuple[str, Session]:
    token = new_token()
    with db.transaction() as tx:
        session = Session(actor_id=actor_id, token_hash=hash_token(token),
                          expires_at=utcnow() + timedelta(hours=hours))
        tx.add(session)
        tx.flush()
        audit.record(tx, actor_id, "user.session.create", "actor", actor_id)
        return token, session


def identity_for_session(db: Database, token: str) -> Identity | None:
    if not is_well_formed(token):
        return None
    with db.read() as tx:
        row = tx.exec(select(User, Actor).join(Actor, Actor.id == User.actor_id)
                      .join(Session, Session.actor_id == Actor.id)
                      .where(Session.token_hash == hash_token(token),
                             Session.expires_at > utcnow(), Actor.deleted_at.is_(None))).first()
    return _user_identity(*row) if row else None


def delete_session(db: Database, token: str) -> bool:
    with db.transaction() as tx:
        session = tx.exec(select(Session).where(Session.token_hash == hash_token(token))).first()
        if session is None:
            return False
        tx.delete(session)
        audit.record(tx, session.actor_id, "user.session.end", "actor", session.actor_id)
        return True


# ---- app users -------------------------------------------------------------------------------

@dataclass(frozen=True)
class AppUserOut:
    app_user: AppUser
    actor: Actor
    token: str | None  # None once revoked, or when sealed under another secret


def create_app_user(db: Database, box: TokenBox, project_id: int, display_name: str,
                    actor_id: int | None = None) -> AppUserOut:
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
        app_user = AppUser(actor_id=actor.id, project_id=project_id,
                           token_hash=hash_token(token), token_sealed=box.seal(token))
        tx.add(app_user)
        tx.add(RoleAssignment(actor_id=actor.id, project_id=project_id, role="officer"))
        tx.flush()
        audit.record(tx, actor_id, "field_key.create", "actor", actor.id,
                     {"displayName": display_name, "projectId": project_id})
        return AppUserOut(app_user, actor, token)


def list_app_users(db: Database, box: TokenBox, project_id: int) -> list[AppUserOut]:
    with db.read() as tx:
        rows = tx.exec(select(AppUser, Actor).join(Actor, Actor.id == AppUser.actor_id)
                       .where(AppUser.project_id == project_id, Actor.deleted_at.is_(None))
                       .order_by(AppUser.id)).all()
    return [AppUserOut(app_user, actor, box.open(app_user.token_sealed)) for app_user, actor in rows]


def find_app_user_by_name(db: Database, box: TokenBox, project_id: int,
                          display_name: str) -> AppUserOut | None:
    return next((a for a in list_app_users(db, box, project_id)
                 if a.actor.display_name == display_name and a.app_user.revoked_at is None), None)


def revoke_app_user(db: Database, project_id: int, app_user_id: int,
                    actor_id: int | None = None) -> None:
    with db.transaction() as tx:
        app_user = tx.get(AppUser, app_user_id)
        if app_user is None or app_user.project_id != project_id:
            raise NotFound("app user")
        app_user.token_hash = None
        app_user.token_sealed = None
        app_user.revoked_at = utcnow()
        audit.record(tx, actor_id, "field_key.revoke", "actor", app_user.actor_id)


def identity_for_key(db: Database, token: str) -> Identity:
    """The app user holding this key. Raises Forbidden for an unknown or revoked key."""
    with db.read() as tx:
        row = tx.exec(select(AppUser, Actor).join(Actor, Actor.id == AppUser.actor_id)
                      .where(AppUser.token_hash == hash_token(token),
                             AppUser.revoked_at.is_(None), Actor.deleted_at.is_(None))).first()
    if row is None:
        raise Forbidden("This app user key is not valid (unknown or revoked).")
    app_user, actor = row
    return Identity(actor_id=actor.id, kind="app_user", display_name=actor.display_name,
                    app_user_id=app_user.id, project_id=app_user.project_id)


# ---- roles -----------------------------------------------------------------------------------

def grant_role(db: Database, actor_id: int, project_id: int, role: str,
               by_actor_id: int | None = None) -> None:
    if role not in ROLES:
        raise InvalidInput(f"Unknown role {role!r}; roles are {', '.join(ROLES)}.")
    try:
        with db.transaction() as tx:
            tx.add(RoleAssignment(actor_id=actor_id, project_id=project_id, role=role))
            audit.record(tx, by_actor_id, "assignment.create", "actor", actor_id,
                         {"projectId": project_id, "role": role})
    except IntegrityError:
        pass  # already granted


def roles_in_project(db: Database, identity: Identity, project_id: int) -> frozenset[str]:
    if identity.is_admin:
        return frozenset({"admin", *ROLES})
    if identity.kind == "app_user":
        return frozenset({"officer"}) if identity.project_id == project_id else frozenset()
    with db.read() as tx:
        return frozenset(tx.exec(select(RoleAssignment.role).where(
            RoleAssignment.actor_id == identity.actor_id,
            RoleAssignment.project_id == project_id)).all())


def touch(tx: Tx, row: object, when: datetime | None = None) -> None:
    setattr(row, "updated_at", when or utcnow())
