"""Errors of the forms package: they describe bad input and know nothing of HTTP."""


class FormsError(Exception):
    """Base class: `str(error)` is a message fit to show the person who sent the input."""


class XLSFormInvalid(FormsError):
    """pyxform refused the spreadsheet; the message carries its row numbers."""


class XFormInvalid(FormsError):
    """An XForm that cannot be read (not XML, no instance, no id)."""


class SubmissionInvalid(FormsError):
    """A submission XML that cannot be accepted (malformed, DOCTYPE, too large, no id)."""
