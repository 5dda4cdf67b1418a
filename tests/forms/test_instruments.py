"""forms.instruments names fields that exist in the shipped XLSForms (forms/library/*.xlsx).

A renamed question must fail here, not silently empty the coverage page, the evidence board's
indicators, the media zip's OPD folders or the IID report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import forms
from forms.compile import compile_xlsform
from forms.instruments import SIPERA
from forms.xform import Schema, read_xform

LIBRARY = Path(forms.__file__).resolve().parent / "library"


@pytest.fixture(scope="module")
def schemas() -> dict[str, Schema]:
    found = {}
    for path in sorted(LIBRARY.glob("*.xlsx")):
        found[path.stem] = read_xform(compile_xlsform(path.read_bytes(), path.name).xml)
    return found


def _type(schema: Schema, *parts: str) -> str:
    path = "/" + "/".join(parts)
    field = schema.field(path)
    assert field is not None, f"{schema.form_id} has no {path}"
    return field.type


def test_the_three_form_ids_are_shipped(schemas):
    ids = {SIPERA.visit.form_id, SIPERA.profile.form_id, SIPERA.evidence.form_id}
    assert ids == set(schemas)
    assert {schema.form_id for schema in schemas.values()} == ids


def test_visit_form_fields(schemas):
    visit = SIPERA.visit
    schema = schemas[visit.form_id]
    assert _type(schema, *visit.opd) == "select1"
    assert schema.field("/" + "/".join(visit.opd)).choices  # the OPD list
    assert SIPERA.opd_other in {c.value for c in schema.field("/" + "/".join(visit.opd)).choices}
    assert _type(schema, *visit.date) == "date"
    assert visit.date[-1] in SIPERA.visit_date_names
    assert _type(schema, *visit.follow_up) == "date"
    assert _type(schema, *visit.officer_names) == "string"
    assert _type(schema, *visit.officers_other) == "string"
    assert _type(schema, *visit.innovations) == "repeat"
    row = (*visit.innovations,)
    assert _type(schema, *row, visit.innovation_name) == "string"
    assert _type(schema, *row, visit.docs_present) == "select"
    assert _type(schema, *row, visit.docs_lacking) == "select"
    assert _type(schema, *row, visit.proofs) == "repeat"
    proof = (*row, visit.proofs)
    assert _type(schema, *proof, visit.proof_indicator) == "select1"
    assert _type(schema, *proof, visit.proof_status) == "select1"
    assert _type(schema, *proof, visit.proof_photo) == "binary"
    assert visit.proof_indicator == SIPERA.indicator_name  # the board's indicator
    # The OPD question is found by its name (the OPD filter, the media zip's folders).
    assert visit.opd[-1] == SIPERA.opd_name


def test_profile_form_fields(schemas):
    profile = SIPERA.profile
    schema = schemas[profile.form_id]
    assert _type(schema, *profile.opd) == "select1" and profile.opd[-1] == SIPERA.opd_name
    for path in (profile.name, profile.stage, profile.kind, profile.shape):
        _type(schema, *path)


def test_evidence_form_fields(schemas):
    evidence = SIPERA.evidence
    schema = schemas[evidence.form_id]
    assert _type(schema, *evidence.opd) == "select1" and evidence.opd[-1] == SIPERA.opd_name
    assert _type(schema, *evidence.indicator) == "select1"
    assert _type(schema, *evidence.file) == "binary"
    assert _type(schema, *evidence.date) == "date"
    for path in (evidence.innovation, evidence.parameter, evidence.number, evidence.subject):
        _type(schema, *path)
    _type(schema, *evidence.link)
    assert _type(schema, *evidence.photos) == "repeat"
    assert _type(schema, *evidence.photos, evidence.photo) == "binary"


def test_every_opd_list_has_the_other_choice(schemas):
    for form_id, schema in schemas.items():
        field = next(f for f in schema.fields if f.name == SIPERA.opd_name)
        assert SIPERA.opd_other in {c.value for c in field.choices}, form_id
