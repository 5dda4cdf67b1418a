"""/v1/projects/{id}/datasets/{name}/entities and the list's OData feed, in Central's shapes.

- `GET …/entities` (`?deleted=true`: the deleted ones), `POST …/entities` (one entity, or
  `{"entities": [...], "source": {"name", "size"}}` for many), `GET|PATCH|DELETE
  …/entities/{uuid}` (PATCH needs `?baseVersion=` or `?force=true`), `GET …/{uuid}/versions`;
- `GET …/datasets/{name}.svc` (served through server.api.datasets' `get_entity_list`, which
  owns the `{name}` segment), `…/{name}.svc/$metadata` and `…/{name}.svc/Entities` with
  `$top`, `$skip`, `$skiptoken`, `$count`, `$select` and `$filter` on `__id`/`__system/*`.

Managers and supervisors (REVIEW) read; managers (MANAGE) write.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Response, delete, get, patch, post
from msgspec import UNSET, UnsetType, structs

from forms import entities as entity_forms
from forms.odata import Cursor, feed
from storage import entities
from storage.db import Database
from storage.errors import NotFound
from storage.models import EntityVersion

from ..auth import MANAGE, REVIEW
from ..deps import DB, Caller, JSONBody, PathText, ProjectId, QueryParameter, UserAgent, is_true
from ..guards import requires
from . import odata
from .odata import HEADERS, JSON_TYPE, METADATA, SVC_SUFFIX, XML_TYPE, next_link, service_url
from .schemas import Success, Wire

ENTITIES = "/projects/{project_id:int}/datasets/{name:str}/entities"
ONE = f"{ENTITIES}/{{uuid:str}}"
ODATA = "/projects/{project_id:int}/datasets/{list_svc:str}/{table:path}"
TAGS = ["Entities"]


class VersionOut(Wire):
    """An entity's version (Central's entity def); `data` only where Central shows it."""

    label: str
    current: bool
    creator_id: int | None
    user_agent: str | None
    version: int
    base_version: int | None
    conflicting_properties: list[str] | None
    created_at: datetime
    branch_id: str | None = None
    trunk_version: int | None = None
    branch_base_version: int | None = None
    data: dict[str, Any] | UnsetType = UNSET
    data_received: dict[str, Any] | UnsetType = UNSET

    @classmethod
    def of(cls, version: EntityVersion, data: dict[str, Any] | UnsetType = UNSET) -> VersionOut:
        """With `data` (one entity, its versions) also what that version was sent."""
        return cls(
            label=version.label,
            current=version.is_current,
            creator_id=version.creator_id,
            user_agent=version.user_agent,
            version=version.version,
            base_version=version.base_version,
            conflicting_properties=version.conflicting_properties,
            created_at=version.created_at,
            branch_id=version.branch_id,
            trunk_version=version.trunk_version,
            branch_base_version=version.branch_base_version,
            data=data,
            data_received=UNSET if data is UNSET else version.data_received,
        )


class EntityOut(Wire):
    uuid: str
    creator_id: int | None
    conflict: str | None
    created_at: datetime
    updated_at: datetime | None
    deleted_at: datetime | None
    current_version: VersionOut

    @classmethod
    def of(cls, found: entities.Found, *, with_data: bool = True) -> EntityOut:
        e, v = found.entity, found.version
        data = (found.data if found.data is not None else v.data) if with_data else UNSET
        return cls(
            uuid=e.uuid,
            creator_id=e.creator_id,
            conflict=e.conflict,
            created_at=e.created_at,
            updated_at=e.updated_at,
            deleted_at=e.deleted_at,
            current_version=VersionOut.of(v, data),
        )


class VersionFullOut(VersionOut):
    source: dict[str, Any] = {}
    base_diff: list[str] = []
    server_diff: list[str] = []
    conflict: str | None = None
    resolved: bool = False
    last_good_version: bool = False
    relevant_to_conflict: bool = False


@get(ENTITIES, guards=[requires(REVIEW)], sync_to_thread=True, tags=TAGS, summary="Entities")
def list_entities(
    project_id: ProjectId,
    name: PathText,
    db: DB,
    deleted: Annotated[str | None, QueryParameter(description="true: deleted ones")] = None,
) -> list[EntityOut]:
    found = entities.list_entities(db, project_id, name, deleted=is_true(deleted))
    return [EntityOut.of(f, with_data=False) for f in found]


@post(
    ENTITIES,
    status_code=200,
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Create an entity, or many (`entities` and `source`)",
)
def create_entities(
    project_id: ProjectId,
    name: PathText,
    data: JSONBody[Any],
    db: DB,
    caller: Caller,
    user_agent: UserAgent = None,
) -> EntityOut | Success:
    who = {"actor_id": caller.actor_id, "user_agent": user_agent}
    if isinstance(data, dict) and "entities" in data:
        entities.create_many(db, project_id, name, data["entities"], data.get("source"), **who)
        return Success()
    created = entities.create(db, project_id, name, data, **who)
    return EntityOut.of(entities.get_entity(db, project_id, name, created.entity.uuid))


@get(ONE, guards=[requires(REVIEW)], sync_to_thread=True, tags=TAGS, summary="An entity")
def get_entity(project_id: ProjectId, name: PathText, uuid: PathText, db: DB) -> EntityOut:
    return EntityOut.of(entities.get_entity(db, project_id, name, uuid))


@patch(
    ONE,
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Update an entity (`?baseVersion=` the version it was made from, or `?force=true`)",
)
def update_entity(
    project_id: ProjectId,
    name: PathText,
    uuid: PathText,
    data: JSONBody[Any],
    db: DB,
    caller: Caller,
    base_version: Annotated[str | None, QueryParameter(name="baseVersion")] = None,
    force: Annotated[str | None, QueryParameter(description="true|false")] = None,
    resolve: Annotated[str | None, QueryParameter(description="true: mark resolved")] = None,
    user_agent: UserAgent = None,
) -> EntityOut:
    updated = entities.update(
        db,
        project_id,
        name,
        uuid,
        data,
        base_version=base_version,
        force=is_true(force),
        resolve=is_true(resolve),
        actor_id=caller.actor_id,
        user_agent=user_agent,
    )
    return EntityOut.of(updated)


@delete(
    ONE,
    status_code=200,
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Delete an entity",
)
def delete_entity(
    project_id: ProjectId, name: PathText, uuid: PathText, db: DB, caller: Caller
) -> Success:
    entities.delete(db, project_id, name, uuid, actor_id=caller.actor_id)
    return Success()


@post(
    f"{ONE}/restore",
    status_code=200,
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Restore a deleted entity",
)
def restore_entity(
    project_id: ProjectId, name: PathText, uuid: PathText, db: DB, caller: Caller
) -> Success:
    entities.restore(db, project_id, name, uuid, actor_id=caller.actor_id)
    return Success()


@get(
    f"{ONE}/versions",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Every version of an entity, oldest first",
)
def list_entity_versions(
    project_id: ProjectId, name: PathText, uuid: PathText, db: DB
) -> list[VersionFullOut]:
    versions = entities.list_versions(db, project_id, name, uuid)
    sources = entities.submission_sources(db, versions)
    facts = [
        entity_forms.VersionFacts(
            version=v.version,
            base_version=v.base_version,
            branch_id=v.branch_id,
            trunk_version=v.trunk_version,
            label=v.label,
            data=v.data,
            data_received=v.data_received,
            conflicting_properties=v.conflicting_properties,
            resolved=v.resolved,
        )
        for v in versions
    ]
    return [
        VersionFullOut(
            **structs.asdict(VersionOut.of(v, v.data)),
            source=v.source or sources.get(v.id or 0, {}),
            base_diff=d.base_diff or [],
            server_diff=d.server_diff or [],
            conflict=d.conflict,
            resolved=d.resolved,
            last_good_version=d.last_good_version,
            relevant_to_conflict=d.relevant_to_conflict,
        )
        for v, d in zip(versions, entity_forms.conflict_details(facts), strict=True)
    ]


# ---- OData ----------------------------------------------------------------------------------


def service_document(
    request: Request[Any, Any, Any], db: Database, project_id: int, list_name: str
) -> Response[Any]:
    """`GET …/datasets/{name}.svc` (called by datasets.get_entity_list)."""
    entities.feed_of(db, project_id, list_name)  # 404 when there is no such list
    return Response(
        entity_forms.service_document(service_url(request, project_id, "datasets", list_name)),
        media_type=JSON_TYPE,
        headers=HEADERS,
    )


@get(
    ODATA,
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=["OData"],
    summary="OData below `{name}.svc`: `$metadata`, `Entities`",
)
def get_entities_feed(
    request: Request[Any, Any, Any],
    project_id: ProjectId,
    list_svc: PathText,
    table: PathText,
    db: DB,
    top: odata.Top = None,
    skip: odata.Skip = None,
    count: odata.Count = None,
    select: odata.Select = None,
    filter_: odata.Filter = None,
    skiptoken: odata.SkipToken = None,
) -> Response[Any]:
    if not list_svc.endswith(SVC_SUFFIX) or list_svc == SVC_SUFFIX:
        raise NotFound()
    list_name = list_svc[: -len(SVC_SUFFIX)]
    source = entities.feed_of(db, project_id, list_name)
    path = table.strip("/")
    if path == METADATA:
        body = entity_forms.edmx(list_name, source.properties)
        return Response(body, media_type=XML_TYPE, headers=HEADERS)
    if path != entity_forms.ENTITY_TABLE:
        raise NotFound()
    options = entity_forms.parse_entity_options(
        source.properties, dict(request.query_params.items())
    )
    where = entities.feed_where(db, source, options.filter)
    total = entities.feed_count(db, where) if options.count else None
    cursor = options.cursor
    rows = (
        []
        if options.top == 0
        else entities.feed_rows(
            db,
            where,
            before_id=cursor.submission_id if cursor else None,
            offset=0 if cursor else options.skip,
            limit=None if options.top is None else options.top + 1,
        )
    )
    more = options.top is not None and len(rows) > options.top
    page = rows[: options.top] if options.top is not None else rows
    root = service_url(request, project_id, "datasets", list_name)
    last = Cursor(page[-1].id) if more and page else None
    body = b"".join(
        feed(
            f"{root}/$metadata#{entity_forms.ENTITY_TABLE}",
            [entity_forms.entity_row(r, source.properties, options.selected) for r in page],
            count=total,
            next_link=lambda: next_link(request, root, path, last, None),
        )
    )
    return Response(body, media_type=JSON_TYPE, headers=HEADERS)


HANDLERS = [
    list_entities,
    create_entities,
    get_entity,
    update_entity,
    delete_entity,
    restore_entity,
    list_entity_versions,
    get_entities_feed,
]
