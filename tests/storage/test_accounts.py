"""Accounts rules in storage: tokens, throttled logins, sessions, admins, form access, audits."""

from __future__ import annotations

import hashlib
import math
import uuid
from datetime import timedelta

import pytest

from storage import audit, roles, throttle, users
from storage.db import Database
from storage.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound, Throttled
from storage.models import utcnow
from storage.tokens import _ALPHABET, TOKEN_LENGTH
from tests.factories import make_app_user, make_project, publish

PASSWORD = "kata-sandi-panjang"


def _email(tag: str = "s") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@uji.local"


def _client() -> str:
    return f"10.0.{uuid.uuid4().int % 250}.{uuid.uuid4().hex[:6]}"  # unique per test


def test_session_tokens_are_384_random_bits_stored_hashed(services):
    assert len(_ALPHABET) == 64 and len(set(_ALPHABET)) == 64 and TOKEN_LENGTH == 64
    assert TOKEN_LENGTH * math.log2(len(_ALPHABET)) >= 256
    user = users.create_user(services.db, _email(), None)
    token, session = users.create_session(services.db, user.actor_id, 1)
    assert len(token) == TOKEN_LENGTH and set(token) <= set(_ALPHABET)
    assert session.token_hash == hashlib.sha256(token.encode()).hexdigest() != token


def test_log_in_opens_a_session_or_records_a_failure(services):
    user = users.create_user(services.db, _email(), PASSWORD)
    client = _client()
    assert users.log_in(services.db, user.email, "salah-sandi-ya", client=client, hours=1) is None
    ok = users.log_in(services.db, user.email.upper(), PASSWORD, client=client, hours=1)
    assert ok.token and users.identity_for_session(services.db, ok.token).actor_id == user.actor_id
    assert users.log_in(services.db, "bukan email", PASSWORD, client=client, hours=1) is None


def test_email_lock_lasts_until_the_limit_th_newest_failure_leaves_the_window(services):
    email, client = _email("lock"), _client()
    start = utcnow() - timedelta(minutes=10)
    with services.db.transaction() as tx:
        for minute in range(throttle.EMAIL_LIMIT):
            throttle.record_failure(tx, email, client, now=start + timedelta(minutes=minute))
    now = start + timedelta(minutes=throttle.EMAIL_LIMIT)
    with services.db.read() as tx:
        wait = throttle.wait_seconds(tx, email, _client(), now=now)
        assert wait == (throttle.WINDOW - timedelta(minutes=throttle.EMAIL_LIMIT)).total_seconds()
        assert (
            throttle.wait_seconds(
                tx, email, client, now=start + throttle.WINDOW + timedelta(seconds=1)
            )
            is None
        )
        assert throttle.wait_seconds(tx, _email(), _client(), now=now) is None
    with pytest.raises(Throttled) as refused:
        users.log_in(services.db, email, PASSWORD, client=_client(), hours=1)
    assert refused.value.retry_after > 0


def test_one_client_is_locked_after_its_limit_of_failures(services):
    client = _client()
    for _ in range(throttle.CLIENT_LIMIT - 1):
        with services.db.transaction() as tx:
            throttle.record_failure(tx, _email(), client)
    with services.db.read() as tx:
        assert throttle.wait_seconds(tx, _email(), client) is None
    user = users.create_user(services.db, _email(), PASSWORD)
    assert (
        users.log_in(services.db, user.email, "salah-sandi-ya", client=client, hours=1) is None
    )  # the limit-th failure
    with pytest.raises(Throttled) as locked:
        users.log_in(services.db, user.email, PASSWORD, client=client, hours=1)
    assert 0 < locked.value.retry_after <= throttle.WINDOW.total_seconds()
    assert users.log_in(services.db, user.email, PASSWORD, client=_client(), hours=1).token


def test_expired_session_identifies_nobody(services):
    user = users.create_user(services.db, _email(), None)
    token, _ = users.create_session(services.db, user.actor_id, hours=-1)
    assert users.identity_for_session(services.db, token) is None


def test_end_session_by_owner_or_admin_only(services):
    owner = users.create_user(services.db, _email(), None)
    token, _ = users.create_session(services.db, owner.actor_id, 1)
    with pytest.raises(Forbidden):
        users.end_session(services.db, token, actor_id=owner.actor_id + 100_000)
    users.end_session(services.db, token, actor_id=owner.actor_id)
    assert users.identity_for_session(services.db, token) is None
    with pytest.raises(NotFound):
        users.end_session(services.db, token, actor_id=owner.actor_id, is_admin=True)


def test_update_user_rules(services):
    user = users.create_user(services.db, _email(), None)
    other = users.create_user(services.db, _email(), None)
    with pytest.raises(Conflict):
        users.update_user(services.db, user.actor_id, email=other.email)
    with pytest.raises(InvalidInput):
        users.update_user(services.db, user.actor_id, display_name=" ")
    view = users.update_user(services.db, user.actor_id, display_name=" Sari ")
    assert view.actor.display_name == "Sari"
    assert users.get_user(services.db, user.actor_id).actor.display_name == "Sari"


def test_change_password_needs_the_old_one(services):
    user = users.create_user(services.db, _email(), PASSWORD)
    assert (
        users.change_password(services.db, user.actor_id, "salah-sandi-ya", "sandi-baru-panjang")
        is False
    )
    with pytest.raises(InvalidInput):
        users.change_password(services.db, user.actor_id, PASSWORD, "pendek")
    assert users.change_password(services.db, user.actor_id, PASSWORD, "sandi-baru-panjang")
    assert users.verify_password(services.db, user.email, "sandi-baru-panjang")


def test_last_admin_stays(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'admins.sqlite3'}")
    db.migrate()
    try:
        only = users.create_user(db, _email(), None, is_admin=True)
        with pytest.raises(Conflict):
            users.set_admin(db, only.actor_id, False)
        with pytest.raises(Conflict):
            users.delete_user(db, only.actor_id)
        second = users.create_user(db, _email(), None)
        users.set_admin(db, second.actor_id, True)
        users.set_admin(db, only.actor_id, False)
        with pytest.raises(NotFound):
            users.set_admin(db, only.actor_id, False)
        assert [v.user.is_admin for v in users.list_users(db)] == [False, True]
    finally:
        db.dispose()


def test_form_assignments_for_app_users_of_the_project(services):
    project = make_project(services)
    publish(services, project, "tanpa_media")
    phone = make_app_user(services, project)
    roles.assign_form(services.db, project.id, "tanpa_media", phone.actor.id)
    with pytest.raises(AlreadyExists) as taken:
        roles.assign_form(services.db, project.id, "tanpa_media", phone.actor.id)
    assert taken.value.details["fields"] == ["actorId", "roleId", "acteeId"]
    assert [a.id for a in roles.list_form_assignees(services.db, project.id, "tanpa_media")] == [
        phone.actor.id
    ]
    # App users hold no project role: their roles are on forms.
    assert roles.list_assignments(services.db, project.id) == []
    other = make_app_user(services, make_project(services))
    with pytest.raises(NotFound):
        roles.assign_form(services.db, project.id, "tanpa_media", other.actor.id)
    roles.unassign_form(services.db, project.id, "tanpa_media", phone.actor.id)
    assert roles.list_form_assignees(services.db, project.id, "tanpa_media") == []
    with pytest.raises(NotFound):
        roles.unassign_form(services.db, project.id, "tanpa_media", phone.actor.id)


def test_list_audits_by_action_category_and_page(services):
    project = make_project(services)
    user = users.create_user(services.db, _email(), None)
    roles.assign_role(services.db, project.id, "supervisor", user.actor_id, actor_id=None)
    [entry] = [
        a
        for a in audit.list_audits(services.db, action="user.assignment.create", limit=1000)
        if a.subject_id == user.actor_id
    ]
    assert entry.details == {"projectId": project.id, "role": "supervisor"}
    newest = audit.list_audits(services.db, action="user", limit=1)
    assert newest[0].action == "user.assignment.create"
    assert all(
        a.action.startswith("user.")
        for a in audit.list_audits(services.db, action="user", limit=200)
    )
    assert audit.list_audits(services.db, action="use", limit=5) == []  # not a prefix match
    with pytest.raises(InvalidInput):
        audit.list_audits(services.db, limit=0)


def test_passwords_are_stored_as_argon2id_hashes(services):
    user = users.create_user(services.db, _email(), PASSWORD)
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash


def test_a_verified_password_skips_argon2_until_it_changes(services, monkeypatch):
    user = users.create_user(services.db, _email(), PASSWORD)
    calls = []
    real = users._hasher

    class Counted:
        def verify(self, stored, password):
            calls.append(password)
            return real.verify(stored, password)

        def hash(self, password):
            return real.hash(password)

    monkeypatch.setattr(users, "_hasher", Counted())
    assert users.verify_password(services.db, user.email, PASSWORD)
    assert users.verify_password(services.db, user.email, PASSWORD)
    assert len(calls) == 1  # the second Basic request is remembered
    assert not users.verify_password(services.db, user.email, PASSWORD + "x")
    assert len(calls) == 2  # a wrong password always goes to argon2
    users.set_password(services.db, user.id, "sandi-baru-panjang")
    assert not users.verify_password(services.db, user.email, PASSWORD)  # old one: void
    assert users.verify_password(services.db, user.email, "sandi-baru-panjang")
    assert len(calls) == 4
    remembered = users._verified.entries
    for digest in remembered:
        remembered[digest] = 0.0  # as if TTL seconds had passed
    assert users.verify_password(services.db, user.email, "sandi-baru-panjang")
    assert len(calls) == 5  # expired: verified again


# ---- a password change ends the other sessions (issue #11) -------------------------------------

NEW_PASSWORD = "sandi-baru-panjang"


def _logged_in(services, email: str, times: int) -> list[str]:
    """`times` sessions of one user, each from a password login."""
    return [
        users.log_in(services.db, email, PASSWORD, client=_client(), hours=1).token
        for _ in range(times)
    ]


def _session_ends(services, user_actor_id: int) -> list:
    return [
        a
        for a in audit.list_audits(services.db, action="user.session.end", limit=1000)
        if a.subject_id == user_actor_id
    ]


def test_changing_ones_password_ends_every_session_but_the_one_that_changed_it(services):
    user = users.create_user(services.db, _email("ganti"), PASSWORD)
    current, other, third = _logged_in(services, user.email, 3)
    caller = users.identity_for_session(services.db, current)
    assert caller.session_id is not None
    assert users.change_password(
        services.db, user.actor_id, PASSWORD, NEW_PASSWORD, keep_session_id=caller.session_id
    )
    assert users.identity_for_session(services.db, other) is None
    assert users.identity_for_session(services.db, third) is None
    assert users.identity_for_session(services.db, current).actor_id == user.actor_id
    [ended] = _session_ends(services, user.actor_id)
    assert (ended.actor_id, ended.details) == (
        user.actor_id,
        {"sessions": 2, "reason": "user.password"},
    )


def test_a_password_change_without_a_session_ends_them_all(services):
    """HTTP Basic carries no session: nothing is kept."""
    user = users.create_user(services.db, _email("basic"), PASSWORD)
    tokens = _logged_in(services, user.email, 2)
    stranger = users.create_user(services.db, _email("lain"), PASSWORD)
    [theirs] = _logged_in(services, stranger.email, 1)
    assert users.change_password(services.db, user.actor_id, PASSWORD, NEW_PASSWORD)
    assert [users.identity_for_session(services.db, t) for t in tokens] == [None, None]
    assert users.identity_for_session(services.db, theirs).actor_id == stranger.actor_id
    # Keeping a session of another user keeps nothing of this one.
    again = users.log_in(services.db, user.email, NEW_PASSWORD, client=_client(), hours=1).token
    assert users.change_password(
        services.db,
        user.actor_id,
        NEW_PASSWORD,
        PASSWORD,
        keep_session_id=users.identity_for_session(services.db, theirs).session_id,
    )
    assert users.identity_for_session(services.db, again) is None
    assert users.identity_for_session(services.db, theirs) is not None


def test_a_wrong_old_password_ends_nothing(services):
    user = users.create_user(services.db, _email("salah"), PASSWORD)
    [token] = _logged_in(services, user.email, 1)
    assert (
        users.change_password(services.db, user.actor_id, "salah-sandi-ya", NEW_PASSWORD) is False
    )
    assert users.identity_for_session(services.db, token) is not None
    assert _session_ends(services, user.actor_id) == []


def test_an_admins_password_reset_ends_every_session_of_that_user(services):
    admin = users.create_user(services.db, _email("admin"), PASSWORD, is_admin=True)
    [admins] = _logged_in(services, admin.email, 1)
    user = users.create_user(services.db, _email("lupa"), PASSWORD)
    tokens = _logged_in(services, user.email, 2)
    users.set_password(services.db, user.id, NEW_PASSWORD, actor_id=admin.actor_id)
    assert [users.identity_for_session(services.db, t) for t in tokens] == [None, None]
    assert users.identity_for_session(services.db, admins).actor_id == admin.actor_id
    [ended] = _session_ends(services, user.actor_id)
    assert (ended.actor_id, ended.details) == (
        admin.actor_id,
        {"sessions": 2, "reason": "user.password"},
    )
    assert users.verify_password(services.db, user.email, PASSWORD) is None
    assert users.verify_password(services.db, user.email, NEW_PASSWORD) is not None


def test_the_remembered_basic_password_is_void_after_a_change(services):
    """The 5-minute memory of passwords argon2 accepted lets no old password in: its entry is
    keyed by the stored hash, which the change replaced."""
    user = users.create_user(services.db, _email("ingat"), PASSWORD)
    client = _client()
    assert users.authenticate(services.db, user.email, PASSWORD, client=client)
    old_hash = users.find_user_by_email(services.db, user.email).password_hash
    assert users._verified.seen(old_hash, PASSWORD)  # remembered
    assert users.change_password(services.db, user.actor_id, PASSWORD, NEW_PASSWORD)
    assert users._verified.seen(old_hash, PASSWORD)  # still there, under the old hash...
    assert users.authenticate(services.db, user.email, PASSWORD, client=client) is None
    assert users.verify_password(services.db, user.email, PASSWORD) is None
    assert users.authenticate(services.db, user.email, NEW_PASSWORD, client=client)
    admin = users.create_user(services.db, _email("admin"), None, is_admin=True)
    users.set_password(services.db, user.id, PASSWORD, actor_id=admin.actor_id)
    assert users.authenticate(services.db, user.email, NEW_PASSWORD, client=client) is None


def test_a_login_checked_against_the_old_password_opens_no_session_after_a_change(
    services, monkeypatch
):
    """A login whose argon2 check passed just before the password changed must not open a
    session after the change ended the others: the write checks the hash it verified."""
    user = users.create_user(services.db, _email("balapan"), PASSWORD)
    real = users._check_password

    def then_changed(row, password):
        identity = real(row, password)
        users.set_password(services.db, user.id, NEW_PASSWORD)
        return identity

    monkeypatch.setattr(users, "_check_password", then_changed)
    assert users.log_in(services.db, user.email, PASSWORD, client=_client(), hours=1) is None
    monkeypatch.setattr(users, "_check_password", real)
    assert users.log_in(services.db, user.email, NEW_PASSWORD, client=_client(), hours=1)
