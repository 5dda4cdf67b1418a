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
