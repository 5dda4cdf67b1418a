"""/v1/projects/{id}/datasets: entity lists and their properties, in Central's shapes.

Managers create lists, add properties and set `approvalRequired`; managers and supervisors
read them. Publishing a form that saves entities also creates its list (storage.datasets).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Response, get, patch, post

from forms.entities import odata_name
from storage import datasets
from storage.errors import InvalidInput
from storage.models import Dataset

from ..auth import MANAGE, REVIEW
from ..deps import DB, Caller, JSONBody, PathText, ProjectId, QueryParameter, is_true
from ..guards import requires
from .entities import service_document as entities_service_document
from .odata import SVC_SUFFIX
from .schemas import Success, Wire

DATASETS = "/projects/{project_id:int}/datasets"
TAGS = ["Entity lists"]


class ListOut(Wire):
    name: str
    project_id: int
    created_at: datetime
    approval_required: bool
    owner_only: bool = False


class ListExtendedOut(ListOut):
    entities: int = 0
    last_entity: datetime | None = None
    conflicts: int = 0


class PropertyFormOut(Wire):
    xml_form_id: str
    name: str


class PropertyOut(Wire):
    name: str
    published_at: datetime
    odata_name: str
    forms: list[PropertyFormOut]


class ListMetadataOut(ListOut):
    last_update: datetime | None = None
    linked_forms: list[PropertyFormOut] = []
    source_forms: list[PropertyFormOut] = []
    draft_linked_forms: list[PropertyFormOut] = []
    draft_source_forms: list[PropertyFormOut] = []
    properties: list[PropertyOut] = []

    @classmethod
    def of(cls, found: datasets.EntityList) -> ListMetadataOut:
        use = found.forms
        return cls(
            **_list_fields(found.dataset),
            last_update=found.last_update,
            linked_forms=_refs(use.linked),
            source_forms=_refs(use.source),
            draft_linked_forms=_refs(use.draft_linked),
            draft_source_forms=_refs(use.draft_source),
            properties=[
                PropertyOut(
                    p.name,
                    p.published_at,
                    odata_name(p.name),
                    _refs(use.by_property.get(p.name, [])),
                )
                for p in found.properties
            ],
        )


def _refs(refs: list[datasets.FormRef]) -> list[PropertyFormOut]:
    return [PropertyFormOut(r.xml_form_id, r.name) for r in refs]


class ListPatch(Wire):
    approval_required: bool


class ListIn(Wire):
    name: str
    approval_required: bool = False


class PropertyIn(Wire):
    name: str


def _list_fields(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "project_id": dataset.project_id,
        "created_at": dataset.created_at,
        "approval_required": dataset.approval_required,
    }


@get(
    DATASETS,
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Entity lists of a project (X-Extended-Metadata: true adds entity counts)",
)
def list_entity_lists(
    request: Request[Any, Any, Any], project_id: ProjectId, db: DB
) -> list[ListOut] | list[ListExtendedOut]:
    found = datasets.list_lists(db, project_id)
    if is_true(request.headers.get("x-extended-metadata")):
        counts = datasets.counts(db, project_id)
        empty = datasets.ListCounts()
        return [
            ListExtendedOut(
                **_list_fields(d),
                entities=counts.get(d.id or 0, empty).entities,
                last_entity=counts.get(d.id or 0, empty).last_entity,
                conflicts=counts.get(d.id or 0, empty).conflicts,
            )
            for d in found
        ]
    return [ListOut(**_list_fields(d)) for d in found]


@get(
    f"{DATASETS}/{{name:str}}",
    guards=[requires(REVIEW)],
    sync_to_thread=True,
    tags=TAGS,
    summary="An entity list with its properties, or its OData service document (`{name}.svc`)",
)
def get_entity_list(
    request: Request[Any, Any, Any], project_id: ProjectId, name: PathText, db: DB
) -> ListMetadataOut | Response[Any]:
    if name.endswith(SVC_SUFFIX):  # a list's name holds no dot (server.api.entities)
        return entities_service_document(request, db, project_id, name[: -len(SVC_SUFFIX)])
    return ListMetadataOut.of(datasets.get_list(db, project_id, name))


@post(
    DATASETS,
    status_code=200,
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Create an entity list",
)
def create_entity_list(
    project_id: ProjectId, data: JSONBody[ListIn], db: DB, caller: Caller
) -> ListMetadataOut:
    created = datasets.create_list(
        db,
        project_id,
        data.name,
        approval_required=data.approval_required,
        actor_id=caller.actor_id,
    )
    return ListMetadataOut.of(created)


@post(
    f"{DATASETS}/{{name:str}}/properties",
    status_code=200,
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Add a property to an entity list",
)
def add_entity_list_property(
    project_id: ProjectId, name: PathText, data: JSONBody[PropertyIn], db: DB, caller: Caller
) -> Success:
    datasets.add_property(db, project_id, name, data.name, actor_id=caller.actor_id)
    return Success()


@patch(
    f"{DATASETS}/{{name:str}}",
    guards=[requires(MANAGE)],
    sync_to_thread=True,
    tags=TAGS,
    summary="Set whether the list's entities wait for their submission's approval",
)
def update_entity_list(
    project_id: ProjectId,
    name: PathText,
    data: JSONBody[ListPatch],
    db: DB,
    caller: Caller,
    convert: Annotated[
        str | None,
        QueryParameter(description="true|false: what becomes of submissions awaiting approval"),
    ] = None,
) -> ListMetadataOut:
    if convert not in (None, "true", "false"):
        raise InvalidInput(f"Unexpected convert value {convert}; expected true or false.")
    updated = datasets.set_approval_required(
        db,
        project_id,
        name,
        data.approval_required,
        convert=None if convert is None else convert == "true",
        actor_id=caller.actor_id,
    )
    return ListMetadataOut.of(updated)


HANDLERS = [
    list_entity_lists,
    get_entity_list,
    create_entity_list,
    update_entity_list,
    add_entity_list_property,
]
