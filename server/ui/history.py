"""A submission's history in words, in the interface language: what happened and who did it
("Review: Has issues — by Budi", "Ditinjau: Ada masalah — oleh Budi"), from the audit entries
and entity versions storage/history.py reads. An action this module does not know is shown
by its code rather than hidden."""

from __future__ import annotations

from typing import Any

from storage.history import ENTITY_CREATE, ENTITY_UPDATE, Event

from . import i18n

#: Actions a submission's sender does (no one known: an anonymous web form or public link).
_SENT = ("submission.create", "submission.update.version", "submission.attachment.update")


def state_label(state: str | None) -> str:
    """A review state's name (the same words as the state badges)."""
    return {
        "hasIssues": i18n.gettext("Has issues"),
        "edited": i18n.gettext("Edited"),
        "approved": i18n.gettext("Approved"),
        "rejected": i18n.gettext("Rejected"),
    }.get(state or "", i18n.gettext("Received"))


def describe(event: Event) -> str:
    """What happened and who did it, in one sentence."""
    if event.actor:
        who = event.actor
    elif event.action in _SENT:
        who = i18n.gettext("an anonymous sender")
    else:
        who = i18n.gettext("the server")
    return i18n.gettext("%(what)s — by %(who)s") % {"what": what(event), "who": who}


def what(event: Event) -> str:
    details: dict[str, Any] = event.details or {}
    action = event.action
    if action == "submission.create":
        return i18n.gettext("Submission received")
    if action == "submission.update" and "reviewState" in details:
        return i18n.gettext("Review: %(state)s") % {"state": state_label(details["reviewState"])}
    if action == "submission.update.version":
        return i18n.gettext("Edited: a new version was sent")
    if action == "submission.attachment.update":
        return _attachment(details)
    if action == "submission.delete":
        return i18n.gettext("Submission deleted")
    if action == "submission.restore":
        return i18n.gettext("Submission restored")
    if action == "comment.create":
        return i18n.gettext("Comment added")
    if action in (ENTITY_CREATE, ENTITY_UPDATE, "entity.link"):
        return _entity(action, details)
    if action == "entity.error":
        return i18n.gettext("No entity made: %(error)s") % {
            "error": details.get("errorMessage") or "?"
        }
    if action == "submission.backlog.hold":
        return i18n.gettext("Entity update held until the earlier offline updates arrive")
    if action == "submission.backlog.reprocess":
        return i18n.gettext("Held entity update applied")
    if action == "submission.backlog.force":
        return i18n.gettext("Held entity update applied without waiting")
    return action


def _attachment(details: dict[str, Any]) -> str:
    names = details.get("names")
    if isinstance(names, list) and names:  # files that arrived after the submission
        return i18n.gettext("Attachment added: %(names)s") % {"names": ", ".join(map(str, names))}
    values = {"names": str(details.get("name") or "?")}
    if details.get("newBlob") is None and details.get("oldBlob"):
        return i18n.gettext("Attachment removed: %(names)s") % values
    if details.get("oldBlob"):
        return i18n.gettext("Attachment replaced: %(names)s") % values
    return i18n.gettext("Attachment added: %(names)s") % values


def _entity(action: str, details: dict[str, Any]) -> str:
    entity = details.get("entity") if isinstance(details.get("entity"), dict) else {}
    values = {
        "label": details.get("label") or entity.get("uuid") or details.get("uuid") or "?",
        "list": details.get("list") or entity.get("dataset") or "?",
        "version": details.get("version") or "?",
    }
    if action == ENTITY_CREATE:
        return i18n.gettext("Entity created: %(label)s (list %(list)s)") % values
    if action == ENTITY_UPDATE:
        return i18n.gettext("Entity updated: %(label)s (list %(list)s, version %(version)s)") % (
            values
        )
    return i18n.gettext("Linked to entity %(label)s (list %(list)s)") % values
