"""Safe XML parsing for everything that arrives from outside.

No DOCTYPE at all (so no entities, no external or network resources), a byte limit, and
element, depth and attribute limits checked while the parser builds the tree: a 10 MB body of
`<a/><a/>…` or `<a><a>…` is refused at the first element past the limit, before millions of
elements take memory (building them first cost ~400 MB and seconds of CPU). Start tags longer
than 1 MiB are refused before parsing: expat reads a whole start tag before any callback can
count its attributes (a million of them took it 3 s and 200 MB).
"""

from __future__ import annotations

import re
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from .errors import FormsError

MAX_ELEMENTS = 200_000
MAX_DEPTH = 64
MAX_ATTRIBUTES = 256  # on one element; an XForm's busiest (a bind) carries about ten
MAX_START_TAG_BYTES = 1024 * 1024
# A start tag holds no `<`, so each byte is scanned at most once (linear, ~10 ms for 10 MB).
_LONG_START_TAG = re.compile(rb"<[^!?/<>][^<>]{%d}" % MAX_START_TAG_BYTES)
# An "&" that starts no character or predefined entity reference (DOCTYPEs are refused, so
# no other entity can exist).
_BARE_AMPERSAND = re.compile(rb"&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);)")


class _LimitedBuilder(TreeBuilder):
    """A tree builder that counts as it goes and stops the parse at the first excess."""

    def __init__(self, error: type[FormsError]) -> None:
        super().__init__()
        self.error = error
        self.elements = 0
        self.depth = 0

    def start(self, tag: Any, attrs: dict[str, str]) -> Element:
        self.elements += 1
        self.depth += 1
        if self.elements > MAX_ELEMENTS:
            raise self.error(f"The XML has more than {MAX_ELEMENTS} elements.")
        if self.depth > MAX_DEPTH:
            raise self.error(f"The XML is nested deeper than {MAX_DEPTH} levels.")
        if len(attrs) > MAX_ATTRIBUTES:
            raise self.error(f"An XML element has more than {MAX_ATTRIBUTES} attributes.")
        return super().start(tag, attrs)

    def end(self, tag: Any) -> Element:
        self.depth -= 1
        return super().end(tag)


def parse_xml(
    data: bytes, *, max_bytes: int, error: type[FormsError], bare_ampersands: bool = False
) -> Element:
    """`bare_ampersands`: read an "&" that starts no reference as text, as ODK Central's
    submission parser does (pyodk's own tests send `<instanceID>a&*b</instanceID>`); only
    when the XML is otherwise not well-formed, so well-formed XML is read as it is."""
    try:
        return _parse(data, max_bytes=max_bytes, error=error)
    except error:
        if not bare_ampersands or not _BARE_AMPERSAND.search(data):
            raise
        return _parse(_BARE_AMPERSAND.sub(b"&amp;", data), max_bytes=max_bytes, error=error)


def _parse(data: bytes, *, max_bytes: int, error: type[FormsError]) -> Element:
    if len(data) > max_bytes:
        raise error(f"The XML is larger than the limit of {max_bytes} bytes.")
    if not data.strip():
        raise error("The XML is empty.")
    if _LONG_START_TAG.search(data):
        raise error(f"An XML start tag is longer than {MAX_START_TAG_BYTES} bytes.")
    parser = DefusedXMLParser(
        target=_LimitedBuilder(error), forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    try:
        parser.feed(data)
        return parser.close()
    except DefusedXmlException:
        raise error("XML with a DOCTYPE or entity declarations is not accepted.") from None
    except ParseError as problem:
        raise error(f"The XML is not well-formed: {problem}.") from None
    except (LookupError, ValueError) as problem:
        # expat reads UTF-8, UTF-16, ISO-8859-1 and ASCII itself and asks Python's codecs for
        # any other declared encoding: an unknown one is a LookupError, a multi-byte one
        # (Shift_JIS, UTF-7) a ValueError. Either way the sender's XML is what is wrong.
        raise error(
            f"The XML declares an encoding this server cannot read ({problem}); send it as UTF-8."
        ) from None
