"""Errors of the storage rules. They say what went wrong, never how HTTP shows it."""


class StorageError(Exception):
    """Base class: `str(error)` is a message fit to show the caller."""


class NotFound(StorageError):
    """`what` names the missing thing in the usual sentence; `message` replaces that sentence."""

    def __init__(self, what: str = "resource", *, message: str | None = None) -> None:
        super().__init__(message or f"Could not find the {what} you were looking for.")


class Forbidden(StorageError):
    """The caller is known but may not do this (a revoked app user, a wrong role)."""


class Conflict(StorageError):
    """The request clashes with what is stored (a duplicate, a version already published)."""


class AlreadyExists(Conflict):
    """A unique key is taken (Central's uniquenessViolation): `details` names the key's fields,
    their values (as text) and the table, as Central's Problem does."""

    def __init__(self, table: str, key: dict[str, object]) -> None:
        values = ["f" if v is False else "t" if v is True else str(v) for v in key.values()]
        super().__init__(
            f"A resource already exists with {','.join(key)} value(s) of {','.join(values)}."
        )
        self.details = {"fields": list(key), "values": values, "table": table}


class UuidOfDeleted(Conflict):
    """A new entity's uuid belongs to a deleted one (Central's 409.19)."""

    def __init__(self, uuids: list[str]) -> None:
        super().__init__(
            "The following UUID(s) cannot be used because they are associated with deleted "
            f"Entities: ({', '.join(uuids)})."
        )


class ListNameClash(Conflict):
    """An entity list whose name differs only in case (Central's datasetNameConflict)."""

    def __init__(self, current: str, provided: str) -> None:
        super().__init__(
            f"A dataset named {current!r} exists and you provided {provided!r} with the same "
            "name but different capitalization."
        )


class VersionTaken(Conflict):
    """A form version string already published (Central's versionUniquenessViolation)."""


class XmlConflict(Conflict):
    def __init__(self, instance_id: str) -> None:
        super().__init__(
            f"A submission already exists with instanceID {instance_id!r} and "
            "different content; its XML cannot be replaced."
        )


class SubmissionDeleted(Conflict):
    def __init__(self, instance_id: str) -> None:
        super().__init__(f"The submission {instance_id!r} was deleted; it cannot be resubmitted.")


class FormClosed(Conflict):
    def __init__(self, xml_form_id: str) -> None:
        super().__init__(f"The form {xml_form_id!r} is closed and takes no new submissions.")


class InvalidInput(StorageError):
    """Input that passed parsing but breaks a rule (an unsafe attachment name, a bad role)."""


class BlobUnavailable(StorageError):
    """The object store could not be reached; the operation stored nothing and may be retried."""


class Throttled(StorageError):
    """Too many failed logins for this email or client address; try again later."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("Too many failed logins; try again later.")
        self.retry_after = retry_after


class EntityInvalid(InvalidInput):
    """An entity body Central refuses (invalidEntity, 400.28): an undeclared property, no data
    and no label."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The entity is invalid. {reason}")


class NoConflict(InvalidInput):
    """Resolving an entity that has no conflict (Central's noConflictEntity, 400.32)."""

    def __init__(self) -> None:
        super().__init__("The Entity doesn't have any conflict")


class PendingSubmissions(InvalidInput):
    """Approval stops being required while submissions wait for it (Central's 400.29)."""

    def __init__(self, count: int) -> None:
        super().__init__(f"There are {count} pending submissions")


class MissingParameter(InvalidInput):
    """A required field is absent (Central's missingParameter, 400.2)."""

    def __init__(self, field: str) -> None:
        super().__init__(f"Required parameter {field} missing.")


class WrongType(InvalidInput):
    """A field of the wrong type (Central's invalidDataTypeOfParameter, 400.11)."""

    def __init__(self, field: str, expected: str) -> None:
        super().__init__(f"Invalid input data type: expected ({field}) to be ({expected})")


class UnexpectedAttributes(InvalidInput):
    """Keys a body may not have (Central's unexpectedAttributes, 400.31)."""

    def __init__(self, expected: list[str], actual: list[str]) -> None:
        super().__init__(
            f"Expected parameters: ({', '.join(expected)}). Got ({', '.join(actual)})."
        )


class EntityVersionConflict(Conflict):
    """An update whose baseVersion is not the entity's current version (409.15)."""

    def __init__(self, current: int, provided: str | None) -> None:
        super().__init__(
            f"Current version of the Entity is '{current}' and you provided '{provided}'. "
            "Please correct the version number or pass '?force=true' in the URL to "
            "forcefully update the Entity."
        )
