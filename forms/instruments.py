"""The names the server knows of the shipped instruments (forms/library/), in one place.

Generic ODK code (exports, OData, photos, tables) knows no form or question of its own; the
few features made for the SIPERA forms (the OPD coverage page, the evidence board's indicator,
the media zip's OPD folders, the IID report) read the names they need from `SIPERA`, at the
edge (server/ or the storage function's caller). Another deployment with other forms changes
this file. tests/forms/test_instruments.py checks every name against the shipped XLSForms.

Paths are tuples of element names below the instance root; names inside a repeat are relative
to its row.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VisitForm:
    """The field visit (`jebol_sipera_kunjungan`): one visit to an OPD, its innovations."""

    form_id: str
    opd: tuple[str, ...]  # the OPD visited (select_one: its choices are the OPD list)
    date: tuple[str, ...]  # the visit date
    follow_up: tuple[str, ...]  # the planned follow-up date
    officer_names: tuple[str, ...]  # the officers present, by name (calculated from the list)
    officers_other: tuple[str, ...]  # officers present who are not in the list (typed)
    innovations: tuple[str, ...]  # the repeat of innovations discussed
    innovation_name: str  # in an innovation row
    docs_present: str  # in an innovation row: indicator codes with documents (select_multiple)
    docs_lacking: str  # in an innovation row: indicator codes whose documents fall short
    proofs: str  # in an innovation row: the repeat of photographed evidence
    proof_indicator: str  # in a proof row: the indicator code
    proof_status: str  # in a proof row: lengkap | kurang | belum
    proof_photo: str  # in a proof row: the photo


@dataclass(frozen=True)
class ProfileForm:
    """An innovation's profile (`jebol_sipera_profil_inovasi`)."""

    form_id: str
    opd: tuple[str, ...]
    name: tuple[str, ...]
    stage: tuple[str, ...]
    kind: tuple[str, ...]
    shape: tuple[str, ...]


@dataclass(frozen=True)
class EvidenceForm:
    """One supporting document of an innovation (`jebol_sipera_data_dukung`)."""

    form_id: str
    opd: tuple[str, ...]
    innovation: tuple[str, ...]
    indicator: tuple[str, ...]
    parameter: tuple[str, ...]
    number: tuple[str, ...]
    date: tuple[str, ...]
    subject: tuple[str, ...]
    file: tuple[str, ...]
    link: tuple[str, ...]
    photos: tuple[str, ...]  # the repeat of photos
    photo: str  # in a photo row: the file


@dataclass(frozen=True)
class KeptList:
    """An entity list no form fills: managers keep it on its page (/p/{id}/daftar/{name}) and
    forms read it as `{name}.csv`. `make run` creates it, with these properties, in the
    default project before it publishes the forms."""

    name: str
    properties: tuple[str, ...]


@dataclass(frozen=True)
class Instruments:
    visit: VisitForm
    profile: ProfileForm
    evidence: EvidenceForm
    #: The Barenlitbangda officers (label: the name); the visit form chooses from it.
    officers: KeptList
    #: The name of a form's OPD question, at the top or in a group (the pages' OPD filter and
    #: the media zip's folders find it by this name in any form).
    opd_name: str
    #: The OPD choice meaning "another OPD" (the coverage page counts it, lists it last) and
    #: the question, beside the OPD question, holding that OPD's typed name.
    opd_other: str
    opd_other_name: str
    #: The media zip's folder for a photo whose submission names no OPD.
    no_opd_folder: str
    #: Names of a date question holding the visit date (the photos' date check).
    visit_date_names: tuple[str, ...]
    #: Name of the question, in a photo's repeat row, naming its IID indicator (the board).
    indicator_name: str


SIPERA = Instruments(
    visit=VisitForm(
        form_id="jebol_sipera_kunjungan",
        opd=("g_kunjungan", "opd"),
        date=("g_kunjungan", "tgl_kunjungan"),
        follow_up=("g_penutup", "tgl_tindak_lanjut"),
        officer_names=("g_kunjungan", "petugas_nama"),
        officers_other=("g_kunjungan", "petugas_lain"),
        innovations=("inovasi",),
        innovation_name="inv_nama",
        docs_present="inv_dd_ada",
        docs_lacking="inv_dd_kurang",
        proofs="bukti",
        proof_indicator="bukti_indikator",
        proof_status="bukti_status",
        proof_photo="bukti_foto",
    ),
    profile=ProfileForm(
        form_id="jebol_sipera_profil_inovasi",
        opd=("opd",),
        name=("nama_inovasi",),
        stage=("tahapan",),
        kind=("jenis",),
        shape=("bentuk",),
    ),
    evidence=EvidenceForm(
        form_id="jebol_sipera_data_dukung",
        opd=("opd",),
        innovation=("nama_inovasi",),
        indicator=("indikator",),
        parameter=("parameter",),
        number=("nomor_dokumen",),
        date=("tanggal_dokumen",),
        subject=("tentang",),
        file=("berkas",),
        link=("tautan",),
        photos=("foto_bukti",),
        photo="foto_bukti_file",
    ),
    officers=KeptList("petugas", ("nip", "jabatan")),
    opd_name="opd",
    opd_other="lainnya",
    opd_other_name="opd_lain",
    no_opd_folder="tanpa_opd",
    visit_date_names=("tgl_kunjungan", "tanggal_kunjungan"),
    indicator_name="bukti_indikator",
)
