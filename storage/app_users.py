"""App users: the identities phones use, each holding one key to one project.

An app user is an actor (as its web users are): the API names it by its actor id. Its key is
stored as a SHA-256 hash (for lookup) and sealed with the server's secret key (so the list can
show each phone's Collect URL again).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session as Tx
from sqlmodel import col, select

from . import audit
from .db import Database
from .errors import Forbidden, InvalidInput, NotFound
from .models import Actor, AppUser, Project, utcnow
from .tokens import TokenBox, hash_token, new_token
from .users import Identity


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
        app_user, actor = app_user_row(tx, project_id, app_actor_id)
    return AppUserOut(app_user, actor, box.open(app_user.token_sealed))


def revoke_app_user_by_actor(
    db: Database, project_id: int, app_actor_id: int, *, actor_id: int | None = None
) -> None:
    """Revoke an app user's key (by actor id, as the API names it); idempotent.

    The key answers 403 from the next request on: its hash is gone, and with it every lookup.
    """
    with db.transaction() as tx:
        app_user, _ = app_user_row(tx, project_id, app_actor_id)
        if app_user.revoked_at is not None:
            return
        app_user.token_hash = None
        app_user.token_sealed = None
        app_user.revoked_at = utcnow()
        audit.record(tx, actor_id, "field_key.revoke", "actor", app_actor_id)


def app_user_row(tx: Tx, project_id: int, app_actor_id: int) -> tuple[AppUser, Actor]:
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
