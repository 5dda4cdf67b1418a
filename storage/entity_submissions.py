"""Entities from submissions, as Central processes them (lib/model/query/entities.js), but in
the submission's own transaction: when a phone gets its 201, the entity is there too.

A submission's `meta/entity` (one per form, or one per repeat row with entities spec 2025.1)
creates an entity, updates one, or both ("update if it exists, else create"). The form must
declare the action it asks for. A create waits for the submission's approval when the list
says `approvalRequired`; an update never waits.

An update names the version it was made from (`baseVersion`). When the entity has moved on
since, the update is still applied (the phone's values win for what it sent) and the entity
is marked: a hard conflict when the server had also changed a property the phone sent, else
a soft one. A supervisor resolves it (REST `?resolve=true`).

Offline phones (spec 2024.1) update an entity several times without the server: each update
carries its `branchId`, the server version the run started from (`trunkVersion`) and its
`baseVersion` within the run. An update whose predecessor in the run has not arrived yet is
held (EntityBacklog) and applied when it arrives, so a phone's updates land in its order;
`process_backlog` forces what has waited too long (Central: 5 days).

A problem with one entity never refuses the submission: it is logged as `entity.error` on the
submission (with Central's problem code) and the other entities of the submission still apply.
Submissions that choose an entity from a list (`select_one_from_file LIST.csv`) are linked to
it (EntityLink `chosen`), so an entity's page can list what was said about it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session as Tx
from sqlmodel import col, select

from forms.instance import EntityClaim, Instance, read_instance, value_at, values_at
from forms.xform import EntityDecl, Schema

from . import audit
from .entities import Parsed, link, new_version
from .models import (
    Audit,
    Dataset,
    Entity,
    EntityBacklog,
    EntityVersion,
    Form,
    FormVersion,
    Submission,
    SubmissionVersion,
    utcnow,
)

BACKLOG_DAYS = 5
_UUID = re.compile(
    r"(?:uuid:)?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})", re.I
)


class Problem(Exception):
    """Why one entity of a submission was not applied: Central's problem code and message."""

    def __init__(self, code: float, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Context:
    """One submission version being processed, and by whom."""

    project_id: int
    schema: Schema
    submission: Submission
    version: SubmissionVersion
    actor_id: int | None  # who caused this processing (the sender, or the approver)
    user_agent: str | None
    approved: bool = False
    force: bool = False
    fresh: bool = False  # a submission just created: nothing of it can have been processed


def wants_processing(schema: Schema) -> bool:
    """Whether submissions of this form can create, update or choose entities (the cheap test
    that keeps every other submission off this path)."""
    return bool(schema.entities) or any(f.itemset_file for f in schema.fields)


def apply(tx: Tx, ctx: Context, instance: Instance) -> None:
    """Process a new (or newly approved) submission version's entities, then link it to the
    entities it chose (a link says the strongest reason: created or updated before chosen)."""
    if ctx.schema.entities and instance.entities and (ctx.fresh or not _already_processed(tx, ctx)):
        _apply_claims(tx, ctx, instance)
    _link_chosen(tx, ctx, instance)


def _apply_claims(tx: Tx, ctx: Context, instance: Instance) -> None:
    declared = {d.container: d for d in ctx.schema.entities}
    names = {c.attributes.get("dataset", "") for c in instance.entities}
    lists = _lists(tx, ctx.project_id, names, lock=True)
    for claim in instance.entities:
        decl = declared.get(claim.container)
        if decl is None:
            continue
        try:
            with tx.begin_nested():
                _apply_claim(tx, ctx, decl, claim, lists)
        except Problem as problem:
            _log_error(tx, ctx, problem)


def process_backlog(tx: Tx, *, force_all: bool = False) -> int:
    """Apply the held updates older than BACKLOG_DAYS (all of them with `force_all`) as they
    are: on the entity's current version, or as a create when the entity never arrived."""
    query = select(EntityBacklog).order_by(
        col(EntityBacklog.branch_id), col(EntityBacklog.branch_base_version)
    )
    if not force_all:
        query = query.where(EntityBacklog.held_at < utcnow() - timedelta(days=BACKLOG_DAYS))
    held = list(tx.exec(query).all())
    for row in held:
        tx.delete(row)
        tx.flush()
        _reprocess(tx, row.submission_version_id, "submission.backlog.force", force=True)
    return len(held)


def pending(tx: Tx, dataset: Dataset) -> list[tuple[Submission, SubmissionVersion]]:
    """Submissions of forms that fill `dataset` which made no entity yet and may still (not
    reviewed, edited or with issues; no entity error): what waits for approval (Central's
    unprocessed submissions)."""
    from .forms import cached_schema  # storage.forms imports storage.datasets, not this

    versions = tx.exec(
        select(FormVersion)
        .join(Form, col(Form.id) == FormVersion.form_id)
        .where(
            Form.project_id == dataset.project_id,
            col(Form.deleted_at).is_(None),
            col(FormVersion.published_at).is_not(None),
        )
    ).all()
    filling = [
        v.id for v in versions if any(d.dataset == dataset.name for d in cached_schema(v).entities)
    ]
    if not filling:
        return []
    made = (
        select(EntityVersion.id)
        .join(SubmissionVersion, col(SubmissionVersion.id) == EntityVersion.submission_version_id)
        .where(SubmissionVersion.submission_id == Submission.id)
    )
    failed = select(Audit.id).where(
        Audit.subject_type == "submission",
        Audit.subject_id == Submission.id,
        Audit.action == "entity.error",
    )
    rows = tx.exec(
        select(Submission, SubmissionVersion)
        .join(SubmissionVersion, col(SubmissionVersion.submission_id) == Submission.id)
        .where(
            col(SubmissionVersion.is_current),
            col(SubmissionVersion.form_version_id).in_(filling),
            col(Submission.deleted_at).is_(None),
            sa.or_(
                col(Submission.review_state).is_(None),
                col(Submission.review_state).in_(("edited", "hasIssues")),
            ),
            ~made.exists(),
            ~failed.exists(),
        )
        .order_by(col(Submission.id))
    ).all()
    return [(submission, version) for submission, version in rows]


def convert_pending(tx: Tx, dataset: Dataset, actor_id: int | None) -> int:
    """Make the entities of the pending submissions (when approval stops being required)."""
    from .forms import cached_schema

    waiting = pending(tx, dataset)
    for submission, version in waiting:
        form_version = tx.get(FormVersion, version.form_version_id)
        assert form_version is not None
        ctx = Context(
            project_id=dataset.project_id,
            schema=cached_schema(form_version),
            submission=submission,
            version=version,
            actor_id=actor_id,
            user_agent=submission.user_agent,
            approved=True,
        )
        apply(tx, ctx, read_instance(version.xml))
    return len(waiting)


# ---- one entity -------------------------------------------------------------------------------


def _apply_claim(
    tx: Tx, ctx: Context, decl: EntityDecl, claim: EntityClaim, lists: dict[str, Dataset]
) -> None:
    attrs = claim.attributes
    name = attrs.get("dataset", "")
    if not name:
        raise Problem(400.2, "Required parameter dataset missing.")
    dataset = lists.get(name)
    if dataset is None:
        raise Problem(404.7, f"The dataset ({name}) specified in the submission does not exist.")
    create, update = _flag(attrs.get("create")), _flag(attrs.get("update"))
    permitted = [a for a, ok in (("create", decl.create), ("update", decl.update)) if ok]
    for action, asked in (("create", create), ("update", update)):
        if asked and action not in permitted:
            raise Problem(
                403.2,
                f"The submission attempts an entity {action}, but the form does not permit "
                f"that action. The form permits the following actions: {', '.join(permitted)}.",
            )
    uuid = _entity_uuid(attrs.get("id", ""))
    data = _property_values(decl, claim)
    if update:
        try:
            made = _update(tx, ctx, dataset, uuid, claim, data)
        except Problem as problem:
            if not (create or ctx.force) or problem.code not in (404.8, 400.2):
                raise
            made = _create(tx, ctx, dataset, uuid, claim, data)
    elif create:
        made = _create(tx, ctx, dataset, uuid, claim, data)
    else:
        return
    if made is not None:
        _release_next(tx, made)


def _create(
    tx: Tx,
    ctx: Context,
    dataset: Dataset,
    uuid: str,
    claim: EntityClaim,
    data: dict[str, str],
) -> EntityVersion | None:
    if dataset.approval_required and not ctx.approved:
        return None
    label = claim.label
    if (label is None or not label.strip()) and ctx.force:
        label = "auto generated"
    if label is None or not label.strip():
        raise Problem(400.28, "The entity is invalid. Label empty.")
    taken = tx.exec(
        select(Entity.id).where(Entity.dataset_id == dataset.id, Entity.uuid == uuid)
    ).first()
    if taken is not None:
        raise Problem(409.3, f"A resource already exists with uuid value(s) of {uuid}.")
    now = utcnow()
    entity = Entity(
        dataset_id=dataset.id, uuid=uuid, creator_id=ctx.submission.submitter_id, created_at=now
    )
    tx.add(entity)
    tx.flush()
    received = {**data, "label": label}
    version = new_version(
        entity,
        1,
        Parsed(uuid, label, data, received),
        ctx.submission.submitter_id,
        ctx.user_agent,
        now,
    )
    version.submission_version_id = ctx.version.id
    version.branch_id = claim.attributes.get("branchId") or None
    version.trunk_version = _whole(claim.attributes.get("trunkVersion"))
    if ctx.force:
        version.branch_base_version = _whole(claim.attributes.get("baseVersion"))
    tx.add(version)
    tx.flush()
    assert entity.id is not None
    link(tx, ctx.submission.id, entity.id, "created", ctx.actor_id)
    _log(tx, ctx, "entity.create", dataset, entity, version)
    return version


def _update(
    tx: Tx,
    ctx: Context,
    dataset: Dataset,
    uuid: str,
    claim: EntityClaim,
    data: dict[str, str],
) -> EntityVersion | None:
    attrs = claim.attributes
    row = tx.exec(
        select(Entity).where(Entity.dataset_id == dataset.id, Entity.uuid == uuid).with_for_update()
    ).first()
    if row is None:
        raise Problem(
            404.8,
            f"The entity with UUID ({uuid}) specified in the submission does not exist in the "
            f"dataset ({dataset.name}).",
        )
    if row.deleted_at is not None:
        raise Problem(404.11, f"The entity with UUID ({uuid}) has been deleted.")
    entity = row
    base_version = _whole(attrs.get("baseVersion"))
    if base_version is None and not ctx.force:
        raise Problem(400.2, "Required parameter baseVersion missing.")
    branch_id = attrs.get("branchId") or None
    trunk = _whole(attrs.get("trunkVersion"))
    current = _current(tx, entity)
    base = _base(tx, ctx, dataset, entity, current, base_version, branch_id, trunk)
    if base is None:
        return None  # held
    if trunk is not None and trunk > current.version:
        raise Problem(
            404.9,
            f"Base version (trunkVersion={trunk}) does not exist for entity UUID ({uuid}) in "
            f"dataset ({dataset.name}).",
        )
    received = dict(data)
    if claim.label is not None:
        received["label"] = claim.label
    conflict, conflicting = entity.conflict, None
    if base.version != current.version:
        changed = _changed_since(base, current)
        conflicting = [k for k in received if k in changed and received[k] != changed[k]]
        if conflict != "hard":
            conflict = "hard" if conflicting else "soft"
    elif (
        branch_id is not None and conflict != "hard" and _interrupted(tx, entity, branch_id, trunk)
    ):
        conflict = "soft"
    label = claim.label if claim.label else current.label
    merged = {**current.data, **data}
    now = utcnow()
    current.is_current = False
    tx.add(current)
    tx.flush()
    version = new_version(
        entity,
        current.version + 1,
        Parsed(uuid, label, merged, received),
        ctx.submission.submitter_id,
        ctx.user_agent,
        now,
    )
    version.base_version = base.version
    version.submission_version_id = ctx.version.id
    version.branch_id = branch_id
    version.trunk_version = trunk
    version.branch_base_version = base_version if branch_id is not None else None
    version.conflicting_properties = conflicting
    entity.conflict, entity.updated_at = conflict, now
    tx.add_all([version, entity])
    tx.flush()
    assert entity.id is not None
    link(tx, ctx.submission.id, entity.id, "updated", ctx.actor_id)
    _log(tx, ctx, "entity.update.version", dataset, entity, version)
    return version


def _base(
    tx: Tx,
    ctx: Context,
    dataset: Dataset,
    entity: Entity,
    current: EntityVersion,
    base_version: int | None,
    branch_id: str | None,
    trunk: int | None,
) -> EntityVersion | None:
    """The version the phone made its update on (Central's _computeBaseVersion); None when the
    update was held because its predecessor in the phone's offline run has not arrived."""
    if base_version is None:  # forced, with no base: on the current version
        return current
    if branch_id is None or base_version == 1 or base_version == trunk:
        where: Any = EntityVersion.version == base_version
    else:
        where = sa.and_(
            EntityVersion.branch_id == branch_id,
            EntityVersion.branch_base_version == base_version - 1,
        )
    base = tx.exec(select(EntityVersion).where(EntityVersion.entity_id == entity.id, where)).first()
    if base is not None:
        return base
    if branch_id is None:
        raise Problem(
            404.9,
            f"Base version ({base_version}) does not exist for entity UUID ({entity.uuid}) in "
            f"dataset ({dataset.name}).",
        )
    if ctx.force:
        return current
    _hold(tx, ctx, dataset, entity.uuid, branch_id, base_version)
    return None


def _changed_since(base: EntityVersion, current: EntityVersion) -> dict[str, str]:
    """What the server changed between the phone's base version and the current one."""
    changed = {k: v for k, v in current.data.items() if base.data.get(k) != v}
    changed.update({k: "" for k in base.data if k not in current.data})
    if current.label != base.label:
        changed["label"] = current.label
    return changed


def _interrupted(tx: Tx, entity: Entity, branch_id: str, trunk: int | None) -> bool:
    """Another branch (or the server) made a version after this branch's trunk: the run is
    applied in order, but it was not contiguous (a soft conflict)."""
    return (
        tx.exec(
            select(EntityVersion.id).where(
                EntityVersion.entity_id == entity.id,
                EntityVersion.version > (trunk or 1),
                sa.or_(
                    col(EntityVersion.branch_id).is_(None), EntityVersion.branch_id != branch_id
                ),
            )
        ).first()
        is not None
    )


# ---- the backlog ------------------------------------------------------------------------------


def _hold(
    tx: Tx, ctx: Context, dataset: Dataset, uuid: str, branch_id: str, base_version: int
) -> None:
    tx.add(
        EntityBacklog(
            submission_version_id=ctx.version.id,
            dataset_id=dataset.id,
            entity_uuid=uuid,
            branch_id=branch_id,
            branch_base_version=base_version,
        )
    )
    tx.flush()
    _log_submission(tx, ctx, "submission.backlog.hold")


def _release_next(tx: Tx, made: EntityVersion) -> None:
    """After a version of an offline run lands, apply the run's next update if it was held."""
    entity = tx.get(Entity, made.entity_id)
    assert entity is not None
    if made.branch_id is None:
        where: Any = sa.and_(
            EntityBacklog.entity_uuid == entity.uuid, EntityBacklog.branch_base_version == 1
        )
    else:
        where = sa.and_(
            EntityBacklog.branch_id == made.branch_id,
            EntityBacklog.branch_base_version == (made.branch_base_version or 0) + 1,
        )
    held = tx.exec(select(EntityBacklog).where(where)).first()
    if held is None:
        return
    tx.delete(held)
    tx.flush()
    _reprocess(tx, held.submission_version_id, "submission.backlog.reprocess")


def _reprocess(tx: Tx, submission_version_id: int, action: str, *, force: bool = False) -> None:
    version = tx.get(SubmissionVersion, submission_version_id)
    assert version is not None
    submission = tx.get(Submission, version.submission_id)
    form_version = tx.get(FormVersion, version.form_version_id)
    assert submission is not None and form_version is not None
    from .forms import cached_schema  # storage.forms imports storage.datasets, not this

    form = form_version.form_id
    ctx = Context(
        project_id=_project_of_form(tx, form),
        schema=cached_schema(form_version),
        submission=submission,
        version=version,
        actor_id=submission.submitter_id,
        user_agent=submission.user_agent,
        approved=submission.review_state == "approved",
        force=force,
    )
    _log_submission(tx, ctx, action)
    apply(tx, ctx, read_instance(version.xml))


# ---- helpers ----------------------------------------------------------------------------------


def _link_chosen(tx: Tx, ctx: Context, instance: Instance) -> None:
    files = {f.path: f.itemset_file for f in ctx.schema.fields if f.itemset_file}
    if not files:
        return
    chosen_in = {
        path: {
            uuid
            for value in values_at(instance.values, path.strip("/").split("/"))
            if isinstance(value, str)
            for uuid in value.split()
        }
        for path, file_name in files.items()
        if file_name.endswith(".csv")
    }
    wanted = {files[path].removesuffix(".csv") for path, chosen in chosen_in.items() if chosen}
    if not wanted:
        return  # nothing chosen from a list: no lookup at all
    lists = _lists(tx, ctx.project_id, wanted)
    for path, chosen in chosen_in.items():
        dataset = lists.get(files[path].removesuffix(".csv"))
        if dataset is None or not chosen:
            continue
        ids = tx.exec(
            select(Entity.id).where(
                Entity.dataset_id == dataset.id, col(Entity.uuid).in_(sorted(chosen))
            )
        ).all()
        for entity_id in ids:
            link(tx, ctx.submission.id, entity_id, "chosen", ctx.actor_id)


def _already_processed(tx: Tx, ctx: Context) -> bool:
    """Any version of this submission made an entity, or this one is held: Central processes
    a submission's entities once (an edit or a second approval changes nothing)."""
    made = tx.exec(
        select(EntityVersion.id)
        .join(SubmissionVersion, col(SubmissionVersion.id) == EntityVersion.submission_version_id)
        .where(SubmissionVersion.submission_id == ctx.submission.id)
    ).first()
    held = tx.exec(
        select(EntityBacklog.id).where(EntityBacklog.submission_version_id == ctx.version.id)
    ).first()
    return made is not None or held is not None


def _lists(tx: Tx, project_id: int, names: set[str], *, lock: bool = False) -> dict[str, Dataset]:
    """The project's lists of these names; `lock`: for writing their entities (in id order,
    so two submissions naming the same lists never wait on each other in a circle)."""
    if not names:
        return {}
    query = (
        select(Dataset)
        .where(Dataset.project_id == project_id, col(Dataset.name).in_(names))
        .order_by(col(Dataset.id))
    )
    rows = tx.exec(query.with_for_update() if lock else query).all()
    return {d.name: d for d in rows}


def _project_of_form(tx: Tx, form_id: int) -> int:
    form = tx.get(Form, form_id)
    assert form is not None
    return form.project_id


def _current(tx: Tx, entity: Entity) -> EntityVersion:
    version = tx.exec(
        select(EntityVersion).where(EntityVersion.entity_id == entity.id, EntityVersion.is_current)
    ).one()
    return version


def _property_values(decl: EntityDecl, claim: EntityClaim) -> dict[str, str]:
    """Each `save_to` field the submission holds, as text (an empty answer is "")."""
    data = {}
    prefix = f"{claim.container}/"
    for prop, path in decl.properties.items():
        relative = path[len(prefix) :] if path.startswith(prefix) else path.lstrip("/")
        value = value_at(claim.values, relative.split("/"))
        if value is None or isinstance(value, dict | list):
            continue
        data[prop] = value
    return data


def _entity_uuid(value: str) -> str:
    match = _UUID.fullmatch(value.strip())
    if match is None:
        raise Problem(400.28, f"The entity is invalid. Invalid Entity UUID ({value!r}).")
    return match.group(1).lower()


def _flag(value: str | None) -> bool:
    return value in ("1", "true")


def _whole(value: str | None) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except ValueError:
        return None


def _log(
    tx: Tx, ctx: Context, action: str, dataset: Dataset, entity: Entity, version: EntityVersion
) -> None:
    audit.record(
        tx,
        ctx.actor_id,
        action,
        "dataset",
        dataset.id,
        {
            "entity": {"uuid": entity.uuid, "dataset": dataset.name},
            "entityId": entity.id,
            "entityDefId": version.id,
            "submissionId": ctx.submission.id,
            "submissionDefId": ctx.version.id,
        },
    )


def _log_submission(tx: Tx, ctx: Context, action: str) -> None:
    audit.record(
        tx,
        ctx.actor_id,
        action,
        "submission",
        ctx.submission.id,
        {"submissionId": ctx.submission.id, "submissionDefId": ctx.version.id},
    )


def _log_error(tx: Tx, ctx: Context, problem: Problem) -> None:
    audit.record(
        tx,
        ctx.actor_id,
        "entity.error",
        "submission",
        ctx.submission.id,
        {
            "submissionId": ctx.submission.id,
            "submissionDefId": ctx.version.id,
            "errorMessage": str(problem),
            "problem": {"problemCode": problem.code, "problemDetails": None},
        },
    )
