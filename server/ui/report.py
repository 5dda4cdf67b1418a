"""The IID report page: the simulated score as the portal would take it, the inputs it needs
(SPD, which evidence counts) and, per OPD, what to chase — the indicators whose evidence is
missing or must be completed. The same report as the workbook (server.iid_report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from litestar import Request, get
from litestar.response import Template

from forms.catalogue import load_method
from forms.iid import AVAILABLE, NEEDS_COMPLETION, InnovationReport, InvalidInputs

from .. import iid_report  # a module reference: server.iid_report reads labels from .inovasi
from ..auth import REVIEW
from ..deps import DB, Caller, Config, ProjectId, Roles
from ..guards import requires
from .common import project_page

PAGE = "/p/{project_id:int}/iid"


@dataclass(frozen=True)
class Chase:
    """One innovation's standing: its score and the indicators to chase."""

    innovation: InnovationReport
    available: int
    to_complete: list[str]  # indicator codes: a claim or a visit, but no counted evidence


@get(PAGE, sync_to_thread=True, guards=[requires(REVIEW)])
def iid_page(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB, caller: Caller, roles: Roles
) -> Template:
    raw_spd = request.query_params.get("spd", "0") or "0"
    raw_count = (request.query_params.get("jumlah") or "").strip()
    mode = request.query_params.get("mode", "approved")
    error = report = None
    try:
        spd = _number(raw_spd, "Skor SPD")
        count = _number(raw_count, "Skor jumlah inovasi") if raw_count else None
        report = iid_report.report_for(db, project_id, mode=mode, spd=spd, count=count)
    except InvalidInputs as problem:
        error = str(problem)
    groups = []
    if report is not None:
        groups = [
            (opd, [_chase(i) for i in items]) for opd, items in sorted(report.by_opd().items())
        ]
    query = urlencode({"spd": raw_spd, "jumlah": raw_count, "mode": mode})
    return project_page(
        "iid.html",
        request,
        db,
        caller,
        project_id,
        roles=roles,
        report=report,
        error=error,
        groups=groups,
        spd=raw_spd,
        count=raw_count,
        count_max=load_method().count_term.max,
        count_sources=iid_report.COUNT_ID,
        mode=mode,
        modes=iid_report.MODE_ID,
        query=query,
    )


def _number(raw: str, what: str) -> float:
    """A number as a person types it (a decimal comma too)."""
    try:
        return float(raw.replace(",", "."))
    except ValueError:
        raise InvalidInputs(f"{what} harus berupa angka; diberikan {raw!r}.") from None


def _chase(innovation: InnovationReport) -> Chase:
    return Chase(
        innovation,
        sum(1 for row in innovation.indicators if row.status == AVAILABLE),
        [row.indicator.code for row in innovation.indicators if row.status == NEEDS_COMPLETION],
    )


@get("/p/{project_id:int}/cakupan", sync_to_thread=True, guards=[requires(REVIEW)])
def coverage_page(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    db: DB,
    caller: Caller,
    settings: Config,
) -> Template:
    """Per OPD: visits, follow-up, score and what to chase (the JSON: …/opd-coverage)."""
    rows = iid_report.coverage_for(db, project_id, settings.clock.today())
    # OPDs with nothing yet (no visit, no innovation, nothing to chase) as one line of names,
    # not a screenful of empty cards; overdue follow-ups first among the rest.
    active = [r for r in rows if r.visits or r.registered or r.to_complete or r.flagged]
    active.sort(key=lambda r: not r.overdue)
    quiet = [r for r in rows if r not in active]
    return project_page("coverage.html", request, db, caller, project_id, rows=active, quiet=quiet)


HANDLERS = [iid_page, coverage_page]
