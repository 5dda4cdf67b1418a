"""/v1 OData feeds of a form's submissions, in ODK Central's shapes (Excel, Power BI, pyodk).

- `GET …/forms/{xmlFormId}.svc`: the service document (served through server.api.forms'
  `get_form`, which owns the `{form_file}` segment and hands `.svc` to `service_document`);
- `GET …/forms/{xmlFormId}.svc/$metadata`: the EDMX;
- `GET …/forms/{xmlFormId}.svc/Submissions` and `…/Submissions.<repeat path>`: rows, with
  `$top`, `$skip`, `$skiptoken`, `$count`, `$select`, `$filter`, `$expand=*`, `$wkt`;
- `…/Submissions('<instanceId>')` gives the one submission, and the navigation links of rows
  (`Submissions('<instanceId>')/inovasi`, `…/inovasi('<id>')/bukti`) the rows they name.

Everything below `{xmlFormId}.svc/` is one route whose last parameter is a path: Litestar
tries the static segments of the other routes under `forms/{xml_form_id}/` first
(`versions`, `draft`, `submissions`, …), so they are unaffected; a first segment not ending in
`.svc` answers 404 here.

Who may read: managers and supervisors (REVIEW) and admins; HTTP Basic works, as Excel and
Power BI use it. Everything that can fail with a 4xx (role, form, table, options, filter, the
count and the first batch of rows) happens before the first byte; the rows then stream in
~64 KiB chunks, read from the database in keyset batches as the client takes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from itertools import chain
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from litestar import Request, Response, get
from litestar.response import Stream

from forms import odata
from forms.odata import Cursor, Options, Record, Table
from storage import odata as odata_store
from storage.db import Database
from storage.errors import NotFound

from ..auth import REVIEW, may_review
from ..deps import DB, PathText, ProjectId, QueryParameter
from ..errors import forbidden
from ..guards import requires

RESOURCE = "/projects/{project_id:int}/forms/{form_svc:str}/{table:path}"
TAGS = ["OData"]
SVC_SUFFIX = ".svc"
METADATA = "$metadata"
JSON_TYPE = "application/json; odata.metadata=minimal"
XML_TYPE = "application/xml"
HEADERS = {"OData-Version": "4.0"}
# The query options, declared for the API schema (handlers read them from the query string).
Top = Annotated[str | None, QueryParameter(name="$top", description="rows per page")]
Skip = Annotated[str | None, QueryParameter(name="$skip")]
Count = Annotated[str | None, QueryParameter(name="$count", description="true|false")]
Select = Annotated[str | None, QueryParameter(name="$select")]
Filter = Annotated[str | None, QueryParameter(name="$filter")]
SkipToken = Annotated[str | None, QueryParameter(name="$skiptoken")]


def service_document(
    request: Request[Any, Any, Any],
    db: Database,
    roles: frozenset[str],
    project_id: int,
    xml_form_id: str,
) -> Response[Any]:
    """`GET …/forms/{xmlFormId}.svc`: the tables of the form (called by forms.get_form)."""
    if not may_review(roles):
        raise forbidden()
    form = odata_store.get_form(db, project_id, xml_form_id)
    model = odata.model_of(form.schema, form.xml_form_id)
    return Response(
        odata.service_document(model, service_url(request, project_id, "forms", xml_form_id)),
        media_type=JSON_TYPE,
        headers=HEADERS,
    )


@get(
    RESOURCE,
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    summary="OData below `{xmlFormId}.svc`: `$metadata`, `Submissions`, "
    "`Submissions.<repeat>`, `Submissions('<instanceId>')[/<repeat>…]`",
)
def get_resource(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    form_svc: PathText,
    table: PathText,
    db: DB,
    top: Top = None,
    skip: Skip = None,
    count: Count = None,
    wkt: Annotated[str | None, QueryParameter(name="$wkt", description="true|false")] = None,
    expand: Annotated[str | None, QueryParameter(name="$expand", description="`*`")] = None,
    select: Select = None,
    filter_: Filter = None,
    skiptoken: SkipToken = None,
) -> Response[Any] | Stream:
    if not form_svc.endswith(SVC_SUFFIX) or form_svc == SVC_SUFFIX:
        raise NotFound()
    xml_form_id = form_svc[: -len(SVC_SUFFIX)]
    form = odata_store.get_form(db, project_id, xml_form_id)
    model = odata.model_of(form.schema, form.xml_form_id)
    path = table.strip("/")
    if path == METADATA:
        return Response(odata.edmx(model), media_type=XML_TYPE, headers=HEADERS)
    target = odata.resolve(model, path)
    if target is None:
        raise NotFound()
    # The options are declared above for the API schema, and read here as the text they came
    # as, with every other `$` option the client sent, so problems answer with Central's codes.
    query = dict(request.query_params.items())
    options = odata.parse_options(model, target.table, query)  # 400/501: server.errors
    if target.instance_id is not None and not odata_store.count(
        db, odata_store.scope(db, form, instance_id=target.instance_id)
    ):
        raise NotFound()
    where = odata_store.scope(db, form, options.filter, instance_id=target.instance_id)
    total = _count(db, model, where, target, options) if options.count else None
    records = _records(db, form, where, target.table, options)
    first = next(records, None)  # the first batch is read here: its errors are still a 4xx/5xx
    pager = odata.Pager(model, target.table, options, target.match)
    root = service_url(request, project_id, "forms", xml_form_id)
    rows = pager.rows(chain([first] if first else [], records))
    carried = None if target.table.is_root else total
    return Stream(
        odata.feed(
            f"{root}/$metadata#{target.table.name}",
            rows,
            count=total,
            next_link=lambda: next_link(request, root, path, pager.next_cursor, carried),
        ),
        media_type=JSON_TYPE,
        headers=HEADERS,
    )


def _count(
    db: Database,
    model: odata.Model,
    where: odata_store.Scope,
    target: odata.Target,
    options: Options,
) -> int:
    """Submissions are counted by the database on every page. A repeat table's rows are
    counted by reading every submission, once: the next links carry the number."""
    if target.table.is_root:
        return odata_store.count(db, where)
    if options.cursor is not None and options.cursor.count is not None:
        return options.cursor.count
    return sum(
        odata.count_rows(model, target.table, instance_id, values, target.match)
        for instance_id, values in odata_store.iter_values(db, where)
    )


def _records(
    db: Database,
    form: odata_store.ODataForm,
    where: odata_store.Scope,
    table: Table,
    options: Options,
) -> Iterator[Record]:
    """The submissions the page is made from, newest first from the cursor on. On Submissions
    the database applies $skip and reads one row past $top (to know whether a next page
    exists); repeat tables read on until the Pager has its rows."""
    if options.top == 0:
        return iter(())
    cursor = options.cursor
    through = cursor.submission_id if cursor else None
    if table.is_root:
        limit = None if options.top is None else options.top + 1 + (1 if cursor else 0)
        batches = odata_store.iter_batches(
            db,
            form,
            where,
            through_id=through,
            offset=0 if cursor else options.skip,
            limit=limit,
            system=bool(options.system_fields()),
        )
    else:
        batches = odata_store.iter_batches(db, form, where, through_id=through, system=False)
    return chain.from_iterable(batches)


def service_url(
    request: Request[Any, Any, Any], project_id: int, collection: str, name: str
) -> str:
    """The OData service root of a form (`forms`) or an entity list (`datasets`)."""
    base = request.app.state.settings.public_url.rstrip("/")
    return f"{base}/v1/projects/{project_id}/{collection}/{quote(name, safe='')}{SVC_SUFFIX}"


def next_link(
    request: Request[Any, Any, Any],
    service_url: str,
    path: str,
    cursor: Cursor | None,
    count: int | None,
) -> str | None:
    """The request's URL without `$skip`, with the `$skiptoken` of where this page ended."""
    if cursor is None:
        return None
    params = [
        (k, v) for k, v in request.query_params.multi_items() if k not in ("$skip", "$skiptoken")
    ]
    params.append(("$skiptoken", odata.encode_skiptoken(replace(cursor, count=count))))
    query = urlencode(params, quote_via=quote, safe="$/:'(),*")
    return f"{service_url}/{quote(path, safe=_PATH_SAFE)}?{query}"


_PATH_SAFE = "/'()$.:"


HANDLERS = [get_resource]
