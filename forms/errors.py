"""Errors of the forms package: they describe bad input and know nothing of HTTP."""


class FormsError(Exception):
    """Base class: `str(error)` is a message fit to show the person who sent the input."""


class XLSFormInvalid(FormsError):
    """pyxform refused the spreadsheet; the message carries its row numbers."""


class XFormInvalid(FormsError):
    """An XForm that cannot be read (not XML, no instance, no id)."""


class SubmissionInvalid(FormsError):
    """A submission XML that cannot be accepted (malformed, DOCTYPE, too large, no id)."""


class XLSFormWarnings(XLSFormInvalid):
    """A valid XLSForm with warnings, refused because the caller did not accept warnings."""

    def __init__(self, warnings: list[str]) -> None:
        self.warnings = warnings
        super().__init__(
            "The XLSForm is valid but has warnings (send ignoreWarnings=true to "
            "accept them): " + " | ".join(warnings)
        )


# ---- OData query options (forms.odata) and $filter (forms.odata_filter) ----------------------


class ODataInvalid(FormsError):
    """A query option this server cannot answer: a value it cannot read (`$top=-1`)."""


class UnknownProperty(ODataInvalid):
    """`$select` names a property the table does not have."""


class SelectUnsupported(ODataInvalid):
    """`$select` reaches into a repeat from outside it."""


class InvalidSkipToken(ODataInvalid):
    """A `$skiptoken` this server did not write (or no longer can read)."""


class ODataUnsupported(ODataInvalid):
    """A query option OData has but this server (like Central) does not implement."""


class ExpandUnsupported(ODataUnsupported):
    """An `$expand` other than `*`."""


class SelectWithExpand(ODataUnsupported):
    """`$select` together with `$expand`."""


class FilterInvalid(FormsError):
    """A `$filter` that cannot be parsed or uses what this server does not support."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"The OData filter expression you provided could not be used: {reason}")
        self.reason = reason
