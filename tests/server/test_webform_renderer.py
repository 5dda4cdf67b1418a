"""The words the officer's form page gives ODK Web Forms (server/webform/renderer.py): in the
page's language, and each one a string the installed renderer really shows."""

from __future__ import annotations

import json
import re

import pytest

from server.webform import assets, renderer
from storage import forms as form_store
from tests.conftest import make_client
from tests.factories import DATA, jpeg, make_app_user, make_project

SMALL = "webform_kecil"


def _island(html: str) -> dict:
    found = re.search(r'<script type="application/json" id="wf-config">(.*?)</script>', html, re.S)
    return json.loads(found.group(1))


def test_the_form_page_gives_the_renderer_the_page_language(services, tmp_path):
    project = make_project(services)
    logo = tmp_path / "logo.png"
    logo.write_bytes(jpeg(seed=5))
    form_store.publish_xlsform(
        services.db,
        services.blobs,
        project.id,
        (DATA / f"{SMALL}.md").read_bytes(),
        f"{SMALL}.md",
        media={"logo.png": logo},
    )
    key = make_app_user(services, project, forms=[SMALL]).token
    with make_client(services) as client:
        config = _island(client.get(f"/f/{key}/{SMALL}").text)
        words = dict(config["renderer"]["text"])
        assert config["renderer"]["lang"] == "id" and config["renderer"]["dateOrder"] == "dmy"
        assert words["Send"] == "Kirim" and words["Get location"] == "Ambil lokasi"
        assert words["Condition not satisfied: required"] == "Wajib diisi."
        assert words["%(n)s questions with errors."] == "%(n)s pertanyaan perlu diperbaiki."
        assert config["renderer"]["primevue"]["today"] == "Hari ini"
        assert config["text"]["chooseFile"] == "Pilih berkas"
        assert config["text"]["datePlaceholder"] == "hh/bb/tttt"

        client.cookies.set("jebol_lang", "en")
        english = _island(client.get(f"/f/{key}/{SMALL}").text)
        # An English page leaves the renderer its own words; dates follow the phone's locale.
        assert english["renderer"] == {"lang": "en", "dateOrder": "", "text": [], "primevue": {}}
        assert english["text"]["chooseFile"] == "Choose file"


def test_every_word_given_is_one_the_installed_renderer_shows():
    """A new @getodk/web-forms may reword or translate its strings itself (0.24 does): then
    this fails, and renderer.py is read again against the new version."""
    built = assets.current()
    if not built.ready:
        pytest.skip("browser files missing: run `make assets` (needs npm)")
    assert built.versions["web-forms"] == renderer.RENDERER
    code = "".join(
        path.read_text(encoding="utf-8")
        for name, path in built.files.items()
        if name.startswith("web-forms/") and name.endswith(".js")
    )
    missing = []
    for english, _ in renderer.renderer_text():
        parts = [p.strip() for p in re.split(r"%\(\w+\)s", english) if p.strip()]
        if not all(part in code for part in parts):
            missing.append(english)
    assert not missing, missing
