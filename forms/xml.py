"""Safe XML parsing for everything that arrives from outside.

No DOCTYPE at all (so no entities, no external or network resources), a byte limit,
an element limit and a depth limit, checked before any value is read.
"""

from __future__ import annotations

from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from .errors import FormsError

MAX_ELEMENTS = 200_000
MAX_DEPTH = 64


def parse_xml(data: bytes, *, max_bytes: int, error: type[FormsError]) -> Element:
    if len(data) > max_bytes:
        raise error(f"The XML is larger than the limit of {max_bytes} bytes.")
    if not data.strip():
        raise error("The XML is empty.")
    try:
        root = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise error("XML with a DOCTYPE or entity declarations is not accepted.") from None
    except ParseError as problem:
        raise error(f"The XML is not well-formed: {problem}.") from None
    _check_shape(root, error)
    return root


def _check_shape(root: Element, error: type[FormsError]) -> None:
    count = 0
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        count += 1
        if count > MAX_ELEMENTS:
            raise error(f"The XML has more than {MAX_ELEMENTS} elements.")
        if depth > MAX_DEPTH:
            raise error(f"The XML is nested deeper than {MAX_DEPTH} levels.")
        stack.extend((child, depth + 1) for child in element)
