"""The `jebol` commands, run as an admin would, against a fresh data folder."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner
from sqlmodel import func, select

from server import bootstrap
from server.app import Services
from server.cli import main
from server.settings import Settings
from storage import roles
from storage.models import AppUser, Form, Project, User
from tests.factories import DATA


@pytest.fixture
def env(tmp_path):
    return {
        "JEBOL_DATA_DIR": str(tmp_path / "data"),
        "JEBOL_SECRET_KEY": "cli-test",
        "JEBOL_PUBLIC_URL": "https://jebol.example.org",
    }


def _run(env, *args, input=None):
    return CliRunner().invoke(main, list(args), env=env, input=input, catch_exceptions=False)


def _services(env) -> Services:
    return Services(Settings.from_env(env))


def _count(services, model) -> int:
    with services.db.read() as tx:
        return tx.exec(select(func.count()).select_from(model)).one()


def test_second_start_reuses_everything(env):
    first = bootstrap.run(_prepared(env))
    assert first.admin_password and len(first.admin_password) >= 12
    assert sorted(f for f, outcome in first.forms if outcome == "created") == [
        "jebol_sipera_data_dukung",
        "jebol_sipera_kunjungan",
        "jebol_sipera_profil_inovasi",
    ]
    # The officers' list the visit form reads is made once.
    assert first.lists == [("petugas", "created")]
    second = bootstrap.run(_prepared(env))
    assert second.admin_password is None  # never printed twice
    assert {outcome for _, outcome in second.forms} == {"unchanged"}
    assert second.lists == [("petugas", "unchanged")]
    assert second.collect_url is None  # the key is printed once, not into every start's log
    assert re.fullmatch(
        r"https://jebol\.example\.org/v1/key/[A-Za-z0-9!$]{64}/projects/1", first.collect_url
    )
    services = _services(env)
    assert (
        _count(services, User),
        _count(services, Project),
        _count(services, Form),
        _count(services, AppUser),
    ) == (1, 1, 3, 1)
    # The default app user fills the shipped forms (assigned on first start).
    with services.db.read() as tx:
        actor_id = tx.exec(select(AppUser.actor_id)).one()
    assert sorted(
        a.id
        for form in ("jebol_sipera_data_dukung", "jebol_sipera_kunjungan")
        for a in roles.list_form_assignees(services.db, 1, form)
    ) == [actor_id, actor_id]


def test_admin_password_from_environment_is_used(env):
    env = {
        **env,
        "JEBOL_ADMIN_EMAIL": "kepala@sawahlunto.go.id",
        "JEBOL_ADMIN_PASSWORD": "rahasia-sekali-123",
    }
    setup = bootstrap.run(_prepared(env))
    assert setup.admin_password is None and setup.admin_email == "kepala@sawahlunto.go.id"
    from storage import users

    assert (
        users.verify_password(_services(env).db, "kepala@sawahlunto.go.id", "rahasia-sekali-123")
        is not None
    )


def _prepared(env) -> Services:
    services = _services(env)
    services.prepare()
    return services


def test_form_publish_new_version_and_errors(env, tmp_path):
    bootstrap.run(_prepared(env))
    result = _run(env, "form", "publish", str(DATA / "tanpa_media.md"))
    assert result.exit_code == 0 and "tanpa_media version '2024010101': created" in result.output
    result = _run(env, "form", "publish", str(DATA / "tanpa_media.md"))
    assert "unchanged" in result.output
    bumped = tmp_path / "tanpa_media.md"
    bumped.write_text((DATA / "tanpa_media.md").read_text().replace("2024010101", "2024010102"))
    assert "updated" in _run(env, "form", "publish", str(bumped)).output
    broken = _run(env, "form", "publish", str(DATA / "rusak.md"))
    assert broken.exit_code == 1 and "choices sheet" in broken.output
    assert (
        _run(env, "form", "publish", str(DATA / "tanpa_media.md"), "--project", "99").exit_code == 1
    )


def test_form_publish_with_media(env, tmp_path):
    bootstrap.run(_prepared(env))
    logo = tmp_path / "logo.png"
    logo.write_bytes(b"\x89PNG fake but bytes")
    result = _run(env, "form", "publish", str(DATA / "foto_sederhana.md"), "--attach", str(logo))
    assert result.exit_code == 0, result.output
    other = tmp_path / "other.png"
    other.write_bytes(b"x")
    refused = _run(env, "form", "publish", str(DATA / "foto_sederhana.md"), "--attach", str(other))
    assert refused.exit_code == 1 and "does not use the media file" in refused.output


def test_appuser_create_prints_the_collect_url(env):
    bootstrap.run(_prepared(env))
    result = _run(env, "appuser", "create", "Petugas 2")
    assert result.exit_code == 0
    assert re.search(
        r"https://jebol\.example\.org/v1/key/[A-Za-z0-9!$]{64}/projects/1", result.output
    )
    assert _run(env, "appuser", "create", "X", "--project", "42").exit_code == 1


def test_user_create_and_its_errors(env):
    _prepared(env)
    ok = _run(env, "user", "create", "pengawas@example.org", input="sandi-cukup-panjang\n" * 2)
    assert ok.exit_code == 0 and "pengawas@example.org" in ok.output
    again = _run(env, "user", "create", "pengawas@example.org", input="sandi-cukup-panjang\n" * 2)
    assert again.exit_code == 1 and "already exists" in again.output
    short = _run(env, "user", "create", "a@example.org", "--admin", input="pendek\n" * 2)
    assert short.exit_code == 1 and "at least 10" in short.output


def test_user_password_resets_and_ends_every_session(env):
    from storage import users

    services = _services(env)
    services.prepare()
    user = users.create_user(services.db, "pengawas@example.org", "kata-sandi-lama-1")
    token, _ = users.create_session(services.db, user.actor_id, 1)
    assert users.identity_for_session(services.db, token) is not None
    result = _run(
        {**env, "JEBOL_NEW_PASSWORD": "kata-sandi-baru-2"},
        "user",
        "password",
        "Pengawas@example.org",
    )
    assert result.exit_code == 0, result.output
    assert users.identity_for_session(services.db, token) is None
    assert users.verify_password(services.db, "pengawas@example.org", "kata-sandi-baru-2")
    assert not users.verify_password(services.db, "pengawas@example.org", "kata-sandi-lama-1")
    missing = _run(
        {**env, "JEBOL_NEW_PASSWORD": "kata-sandi-baru-2"}, "user", "password", "nobody@example.org"
    )
    assert missing.exit_code != 0 and "nobody@example.org" in missing.output


def test_entities_link_and_backlog_report_what_they_did(env):
    from storage import entities

    bootstrap.run(_prepared(env))
    services = _services(env)
    entities.create(services.db, 1, "inovasi", {"label": "SIGAP Bumil", "data": {"opd": "dinkes"}})
    linked = _run(env, "entities", "link", "--dry-run")
    assert linked.exit_code == 0, linked.output
    assert "Proyek 1: 0 kiriman diperiksa" in linked.output
    held = _run(env, "entities", "backlog", "--all")
    assert held.exit_code == 0 and "0 pembaruan tertahan diterapkan" in held.output
    missing = _run(env, "entities", "link", "--project", "99")
    assert missing.exit_code == 1 and "project" in missing.output.lower()


def test_iid_report_takes_spd_and_the_count_term(env, tmp_path):
    from openpyxl import load_workbook

    bootstrap.run(_prepared(env))
    out = tmp_path / "iid.xlsx"
    done = _run(env, "export", "-", "--format", "iid", "--spd", "40", "--jumlah", "30", "-o", out)
    # No evidence yet: SID = 0 / MAX(10, 0) + 30 = 30; index = (40 + 30) / 250 x 100 = 28.
    assert done.exit_code == 0, done.output
    assert "SID 30, index 28 (Kurang Inovatif)" in done.output
    summary = dict(load_workbook(out)["Ringkasan"].iter_rows(max_col=2, values_only=True))
    assert summary["Skor jumlah inovasi"] == 30 and summary["Indeks (simulasi)"] == 28
    for bad, what in (("--jumlah", "jumlah inovasi"), ("--spd", "SPD")):
        refused = _run(env, "export", "-", "--format", "iid", bad, "80", "-o", tmp_path / "x")
        assert refused.exit_code == 1 and what in refused.output
        assert not (tmp_path / "x").exists()


def test_the_default_public_url_becomes_one_phones_can_reach():
    from server.cli import _reachable_by_phones, lan_address

    default = Settings.from_env({})
    assert default.public_url == "http://127.0.0.1:8000"
    found = _reachable_by_phones(default, {}, lan="192.168.1.20")
    assert found.url == "http://192.168.1.20:8000" and "192.168.1.20" in found.note
    # A public URL set by the admin is kept, and said.
    chosen = Settings.from_env({"JEBOL_PUBLIC_URL": "https://jebol.example.org"})
    kept = _reachable_by_phones(chosen, {"JEBOL_PUBLIC_URL": "https://jebol.example.org"})
    assert kept.url is None and "https://jebol.example.org" in kept.note
    # Listening on loopback only: nothing to guess.
    local = Settings.from_env({"JEBOL_HOST": "127.0.0.1"})
    assert _reachable_by_phones(local, {}, lan="192.168.1.20").url is None
    # This machine's own answer is an address, never loopback.
    address = lan_address()
    assert address is None or not address.startswith("127.")


def test_the_site_has_a_favicon(env):
    from litestar.testing import TestClient

    from server.app import create_app

    with TestClient(create_app(Settings.from_env(env))) as client:
        icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content[:4] == b"\x00\x00\x01\x00"  # the ICO header
