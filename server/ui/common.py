"""What the UI's page modules share: rendering, the form-body marker, same-site redirects, and
a form's submissions as the query string filters them (the table and the evidence board)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any
from urllib.parse import urlencode, urlparse

from litestar import Request
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Template

from forms.instruments import SIPERA
from forms.xform import Field, Schema
from storage import browse, projects
from storage import forms as form_store
from storage.browse import Filters, Page
from storage.errors import InvalidInput

from ..auth import may_review, own_only
from . import i18n

FormBody = Body(media_type=RequestEncodingType.URL_ENCODED)
FORM_PATH = "/p/{project_id:int}/f/{xml_form_id:str}"


def render(
    name: str, request: Request[Any, Any, Any], status_code: int = 200, **context: Any
) -> Template:
    return Template(
        template_name=name, status_code=status_code, context={"request": request, **context}
    )


def project_page(
    name: str,
    request: Request[Any, Any, Any],
    db: Any,
    caller: Any,
    project_id: int,
    **context: Any,
) -> Template:
    """A page inside a project: the caller and the project beside the page's own context."""
    project = projects.get_project(db, project_id)
    return render(name, request, caller=caller, project=project, **context)


def safe_next(target: str | None) -> str:
    """Only same-site paths: never an open redirect."""
    if (
        not target
        or not target.startswith("/")
        or target.startswith("//")
        or urlparse(target).netloc
    ):
        return "/"
    return target


def form_context(db: Any, project_id: int, xml_form_id: str) -> tuple[Any, Any, Schema]:
    form = form_store.get_form(db, project_id, xml_form_id)
    version = form_store.current_version(db, form)
    return form, version, form_store.schema_of(version)


def _is_id(value: str) -> bool:
    """Digits that fit a database id (a 5,000-digit number is not one)."""
    return value.isascii() and value.isdigit() and len(value) <= 18


#: `?dateby=` choices: the form's date answer (the default when it has one) or the arrival day.
BY_ANSWER, BY_RECEIVED = "answer", "received"


def date_basis(schema: Schema, dateby: str | None) -> Field | None:
    """The date question the page's date range is on; None: the day a submission arrived."""
    found = browse.date_field(schema)
    return None if dateby == BY_RECEIVED else found


def _filters(
    request: Request[Any, Any, Any], caller: Any, roles: frozenset[str], schema: Schema
) -> Filters:
    query = request.query_params
    if any("\x00" in value for _, value in query.multi_items()):
        # Filters become SQL parameters, and PostgreSQL refuses text with NUL in it.
        raise InvalidInput(i18n.gettext("A filter contains a NUL character."))

    def day(name: str) -> date | None:
        try:
            return date.fromisoformat(query.get(name, "")) if query.get(name) else None
        except ValueError:
            return None

    submitter = query.get("submitter", "")
    basis = date_basis(schema, query.get("dateby"))
    return Filters(
        since=day("since"),
        until=day("until"),
        date_path=tuple(basis.path.strip("/").split("/")) if basis else None,
        clock=request.app.state.settings.clock,
        state=query.get("state") or None,
        submitter_id=int(submitter) if _is_id(submitter) else None,
        opd=query.get("opd") or None,
        text=query.get("q") or None,
        only_actor=own_only(roles, caller),
    )


@dataclass
class Listing:
    """A form's submissions filtered by the query string, for a caller with SUBMIT or more."""

    roles: frozenset[str]
    form: Any
    version: Any
    schema: Schema
    filters: Filters

    @classmethod
    def open(
        cls,
        request: Request[Any, Any, Any],
        db: Any,
        caller: Any,
        roles: frozenset[str],
        project_id: int,
        xml_form_id: str,
    ) -> Listing:
        form, version, schema = form_context(db, project_id, xml_form_id)
        return cls(roles, form, version, schema, _filters(request, caller, roles, schema))

    @property
    def active(self) -> bool:
        """Whether any filter narrows the list (the sort and the date basis do not)."""
        f = self.filters
        return any((f.since, f.until, f.state, f.submitter_id, f.opd, f.text))

    def context(self, request: Request[Any, Any, Any], page: Page) -> dict[str, Any]:
        """What the table's and the board's templates both show: the page, its filters and the
        query string that carries them to the next page."""
        query = request.query_params.multi_items()
        by = request.query_params.get("dateby")
        return {
            "date_field": browse.date_field(self.schema),
            "dateby": BY_RECEIVED if by == BY_RECEIVED else BY_ANSWER,
            "filtering": self.active,
            "form": self.form,
            "version": self.version,
            "page": page,
            "filters": self.filters,
            "roles": self.roles,
            "opd_field": browse.opd_field(self.schema, SIPERA.opd_name),
            "title_of": submission_title(self.schema),
            "states": browse.FILTER_STATES,
            "can_review": may_review(self.roles),
            "query": urlencode([(k, v) for k, v in query if k != "after"]),
        }


def submission_title(schema: Any) -> Callable[[Any, str], str]:
    """How pages name a submission: `title(version, fallback)`, its instance name with the OPD
    by name (browse.OpdNames.title), else `fallback` (a piece of its instance id)."""
    names = browse.opd_names(schema, i18n.current.get())

    def title(version: Any, fallback: str) -> str:
        name = version.instance_name
        if names is not None:
            name = names.title(name, version.values)
        return name or fallback

    return title
