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
