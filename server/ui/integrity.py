"""Photo-integrity flags in words (storage/photos.py finds them): what each flag of a photo
found, with links to the other submissions and their photos, for the submission page, the
evidence board and the submissions list's row markers.

Sentences are built as Markup: the translated text is escaped, then the values are put in
(escaped too, unless they are links made here), so an instance name can never inject markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import quote

from markupsafe import Markup, escape

from forms.photos import FLAGS, Finding, Match

from . import i18n

#: Other photos named in one flag's sentence (and shown as evidence); the rest are counted.
SHOWN = 3


def short(flag: str) -> str:
    """A flag's one word (a thumbnail's chip, a list row's marker)."""
    return {
        "duplicate": i18n.gettext("duplicate"),
        "near_duplicate": i18n.gettext("similar"),
        "date_mismatch": i18n.gettext("date"),
        "far_from_point": i18n.gettext("far"),
        "no_exif": i18n.gettext("no EXIF"),
    }.get(flag, flag)


def row_marks(flags: Iterable[str]) -> str:
    """The words of a list row's marker: the flags of any of the submission's photos."""
    return ", ".join(short(f) for f in FLAGS if f in set(flags))


@dataclass(frozen=True)
class Evidence:
    """Another submission's photo a flag points at: its thumbnail, its submission and the
    distances (near-duplicates)."""

    url: str
    thumb: str
    label: str
    distance: str | None


@dataclass(frozen=True)
class FlagView:
    flag: str
    short: str
    text: Markup  # the sentence (for a duplicate or near-duplicate: its lead, before evidence)
    title: str  # the whole sentence as plain text (a hover title), other submissions named
    evidence: tuple[Evidence, ...] = ()  # the other submissions' photos, linked
    note: str | None = None  # after the evidence: how many more


def submission_url(project_id: int, xml_form_id: str, instance_id: str) -> str:
    return f"/p/{project_id}/f/{quote(xml_form_id, safe='')}/s/{quote(instance_id, safe='')}"


def thumb_url(project_id: int, match: Match) -> str:
    page = submission_url(project_id, match.xml_form_id or "", match.instance_id or "")
    return f"{page}/thumb/320/{quote(match.name, safe='')}?v={match.sha256[:12]}"


def views(
    findings: Sequence[Finding],
    *,
    project_id: int,
    xml_form_id: str,
    form_titles: Mapping[str, str],
    show_others: bool,
) -> list[FlagView]:
    """Each finding in words. `show_others`: name and link the other submissions (a reviewer);
    else only say there is another submission (a data collector sees their own submissions,
    never someone else's)."""
    out = []
    for finding in findings:
        if finding.flag in ("duplicate", "near_duplicate"):
            out.append(_matches(finding, project_id, xml_form_id, form_titles, show_others))
        elif finding.flag == "date_mismatch":
            sentence = i18n.gettext("EXIF date %(taken)s, visit date %(visit)s")
            dates = {"taken": finding.taken_date, "visit": finding.visit_date}
            text = sentence % dates
            markup = Markup(escape(sentence)) % {
                k: Markup('<span class="nw">{}</span>').format(v) for k, v in dates.items()
            }
            days = finding.days_apart
            if days is not None:
                apart = i18n.ngettext("%(num)s day apart", "%(num)s days apart", days)
                text += f" ({apart})"
                markup += Markup(" ({})").format(apart)
            out.append(FlagView(finding.flag, short(finding.flag), markup, text))
        elif finding.flag == "far_from_point":
            km = i18n.number(round((finding.meters or 0) / 1000, 1))
            text = i18n.gettext("Taken %(km)s km from the visit location") % {"km": km}
            out.append(_plain(finding.flag, text))
        elif finding.flag == "no_exif":
            text = i18n.gettext("No EXIF data: no capture time or place in the file")
            out.append(_plain(finding.flag, text))
    return out


def _plain(flag: str, text: str) -> FlagView:
    return FlagView(flag, short(flag), Markup(escape(text)), text)


def _matches(
    finding: Finding,
    project_id: int,
    xml_form_id: str,
    form_titles: Mapping[str, str],
    show_others: bool,
) -> FlagView:
    near = finding.flag == "near_duplicate"
    if not show_others:
        text = (
            i18n.gettext("Similar to a photo in another submission")
            if near
            else i18n.gettext("The same file is in another submission")
        )
        return _plain(finding.flag, text)
    sentence = (
        i18n.gettext("Similar to a photo in %(others)s")
        if near
        else i18n.gettext("Same file as in %(others)s")
    )
    lead = i18n.gettext("Similar to a photo in:") if near else i18n.gettext("The same file is in:")
    seen: dict[tuple[str | None, str | None], Match] = {}
    for match in finding.others:  # a submission once, however many of its photos match
        seen.setdefault((match.xml_form_id, match.instance_id), match)
    others = list(seen.values())
    names, evidence = [], []
    for match in others[:SHOWN]:
        name = match.instance_name or (match.instance_id or "")[-12:]
        if match.xml_form_id and match.xml_form_id != xml_form_id:
            title = form_titles.get(match.xml_form_id, match.xml_form_id)
            name = i18n.gettext("%(name)s (form %(form)s)") % {"name": name, "form": title}
        names.append(name)
        distance = (
            i18n.gettext("%(p)s/64 and %(d)s/256 bits apart")
            % {"p": match.distance, "d": match.detail_distance}
            if near
            else None
        )
        url = submission_url(project_id, match.xml_form_id or "", match.instance_id or "")
        evidence.append(Evidence(url, thumb_url(project_id, match), name, distance))
    more = len(others) - SHOWN
    note = i18n.gettext("and %(n)s more") % {"n": more} if more > 0 else None
    if note:
        names.append(note)
    return FlagView(
        finding.flag,
        short(finding.flag),
        Markup(escape(lead)),
        sentence % {"others": ", ".join(names)},
        tuple(evidence),
        note,
    )
