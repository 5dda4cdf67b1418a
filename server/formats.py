"""OpenRosa wire formats: formList, manifest and the response envelope. No logic, only shapes."""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

XML_TYPE = "text/xml"  # Litestar appends "; charset=utf-8"
OPENROSA_VERSION = "1.0"


def openrosa_headers(max_bytes: int) -> dict[str, str]:
    return {
        "X-OpenRosa-Version": OPENROSA_VERSION,
        "X-OpenRosa-Accept-Content-Length": str(max_bytes),
    }


def openrosa_message(message: str, nature: str = "", items: int = 0) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<OpenRosaResponse xmlns="http://openrosa.org/http/response" items="{items}">'
        f'<message nature="{escape(nature)}">{escape(message)}</message></OpenRosaResponse>'
    )


@dataclass(frozen=True)
class FormListItem:
    form_id: str
    name: str
    version: str
    md5: str
    download_url: str
    manifest_url: str | None


def form_list(items: list[FormListItem]) -> str:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<xforms xmlns="http://openrosa.org/xforms/xformsList">'
    ]
    for item in items:
        parts.append(
            f"<xform><formID>{escape(item.form_id)}</formID><name>{escape(item.name)}</name>"
            f"<version>{escape(item.version)}</version><hash>md5:{item.md5}</hash>"
            f"<downloadUrl>{escape(item.download_url)}</downloadUrl>"
        )
        if item.manifest_url:
            parts.append(f"<manifestUrl>{escape(item.manifest_url)}</manifestUrl>")
        parts.append("</xform>")
    parts.append("</xforms>")
    return "".join(parts)


@dataclass(frozen=True)
class ManifestItem:
    """A media file; an entity list's also has its `type` (entityList or approvalEntityList)
    and the URL Collect checks its offline entities against."""

    filename: str
    md5: str
    download_url: str
    type: str | None = None
    integrity_url: str | None = None


def manifest(items: list[ManifestItem]) -> str:
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<manifest xmlns="http://openrosa.org/xforms/xformsManifest">'
    ]
    for item in items:
        kind = f' type="{escape(item.type)}"' if item.type else ""
        parts.append(
            f"<mediaFile{kind}><filename>{escape(item.filename)}</filename>"
            f"<hash>md5:{item.md5}</hash>"
            f"<downloadUrl>{escape(item.download_url)}</downloadUrl>"
        )
        if item.integrity_url:
            parts.append(f"<integrityUrl>{escape(item.integrity_url)}</integrityUrl>")
        parts.append("</mediaFile>")
    parts.append("</manifest>")
    return "".join(parts)


INTEGRITY_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<data><entities>'
INTEGRITY_TAIL = "</entities></data>"


def integrity_entities(rows: list[tuple[str, bool]]) -> str:
    """Entities of a list's integrity reply: `<entity id><deleted>true|false</deleted>`."""
    return "".join(
        f"<entity id={quoteattr(uuid)}><deleted>{'true' if deleted else 'false'}</deleted></entity>"
        for uuid, deleted in rows
    )
