"""XLSForm -> XForm with pyxform. Errors and warnings come back as values and messages."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import PurePath

from pyxform.errors import PyXFormError
from pyxform.xls2json_backends import Definition, SupportedFileTypes
from pyxform.xls2xform import convert
from xlrd import XLRDError
from xlrd.compdoc import CompDocError

from .errors import XLSFormInvalid

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # OLE2 compound document (.xls)
MAX_XLSFORM_BYTES = 20 * 1024 * 1024
_MAX_UNZIPPED_BYTES = 200 * 1024 * 1024
# What openpyxl, xlrd and zlib raise for damaged or hostile workbooks (found by fuzzing
# truncated and bit-flipped .xlsx files and junk behind the .xls magic number).
_READER_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    EOFError,
    NotImplementedError,
    struct.error,
    zlib.error,
    zipfile.BadZipFile,
    OSError,
    XLRDError,
    CompDocError,
)
# pyxform's words when no reader could open the file at all.
_UNRECOGNISED = "Argument 'definition' was not recognized"


@dataclass(frozen=True)
class Compiled:
    xml: bytes
    warnings: list[str] = field(default_factory=list)
    itemsets_csv: str | None = None


def spreadsheet_type(data: bytes, filename: str | None = None) -> str:
    """Tell `.xlsx` from `.xls` by the bytes themselves; anything else is refused."""
    if data.startswith(XLSX_MAGIC):
        _check_zip(data)
        return ".xlsx"
    if data.startswith(XLS_MAGIC):
        return ".xls"
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in (".md", ".csv") and _looks_like_text(data):
        return suffix
    raise XLSFormInvalid("The upload is not a spreadsheet (expected an .xlsx or .xls XLSForm).")


def compile_xlsform(
    data: bytes, filename: str | None = None, form_id_fallback: str | None = None
) -> Compiled:
    """Compile XLSForm bytes. Raises XLSFormInvalid with pyxform's message (row numbers kept).

    The form id is the settings sheet's `form_id`, else `form_id_fallback`, else the file
    name's stem (as pyxform names a form read from a file, and Central one from its
    `X-XlsForm-FormId-Fallback` header), else `data`. The root element is pyxform's.
    """
    if len(data) > MAX_XLSFORM_BYTES:
        raise XLSFormInvalid(f"The XLSForm is larger than {MAX_XLSFORM_BYTES // 2**20} MB.")
    file_type = spreadsheet_type(data, filename)
    warnings: list[str] = []
    try:
        stem = form_id_fallback or (PurePath(filename).stem if filename else None)
        definition = Definition(
            data=io.BytesIO(data), file_type=SupportedFileTypes(file_type), file_path_stem=stem
        )
        result = convert(xlsform=definition, warnings=warnings, file_type=file_type)
    except PyXFormError as error:
        if str(error).startswith(_UNRECOGNISED):
            raise XLSFormInvalid(
                f"The spreadsheet could not be read: it is not a readable {file_type} workbook."
            ) from None
        raise XLSFormInvalid(_clean_message(str(error))) from None
    except _READER_ERRORS as error:
        raise XLSFormInvalid(
            f"The spreadsheet could not be read: {_clean_message(str(error))}"
        ) from None
    return Compiled(
        xml=result.xform.encode("utf-8"), warnings=list(warnings), itemsets_csv=result.itemsets
    )


def _check_zip(data: bytes) -> None:
    """Refuse zip bombs and broken archives before openpyxl inflates them."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except _READER_ERRORS:
        raise XLSFormInvalid("The .xlsx file is damaged (not a readable zip archive).") from None
    if total > _MAX_UNZIPPED_BYTES:
        raise XLSFormInvalid("The .xlsx file unpacks to more than 200 MB; refusing it.")


def _looks_like_text(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in data


def _clean_message(message: str) -> str:
    return " ".join(message.split())[:2000]
