"""A client that talks to the server the way ODK Collect does.

It lists forms, downloads them and their media, and sends submissions: HEAD first to learn
X-OpenRosa-Accept-Content-Length, then one POST per batch of files that fits under it (at most
100 files), every POST repeating the XML, all but the last marked `*isIncomplete*=yes`.
It retries on connection errors and 5xx, as Collect's auto-send does.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from xml.etree import ElementTree

import httpx

HEADERS = {"X-OpenRosa-Version": "1.0", "User-Agent": "org.odk.collect.android/v2024.3.0 test"}
FORM_LIST_NS = "{http://openrosa.org/xforms/xformsList}"
MANIFEST_NS = "{http://openrosa.org/xforms/xformsManifest}"
DEFAULT_ACCEPT = 10_000_000  # Collect's assumption when the header is absent
MAX_FILES_PER_POST = 100


@dataclass
class ListedForm:
    form_id: str
    name: str
    version: str
    hash: str
    download_url: str
    manifest_url: str | None


@dataclass
class SendResult:
    statuses: list[int] = field(default_factory=list)
    bodies: list[str] = field(default_factory=list)
    attempts: int = 0

    @property
    def status(self) -> int:
        return self.statuses[-1]


class CollectClient:
    def __init__(
        self,
        http: httpx.Client,
        server_url: str,
        *,
        device_id: str = "collect:test1",
        retries: int = 0,
        backoff: float = 0.2,
    ) -> None:
        self.http = http
        self.server_url = server_url.rstrip("/")
        self.device_id = device_id
        self.retries = retries
        self.backoff = backoff

    def form_list(self, form_id: str | None = None) -> list[ListedForm]:
        params = {"formID": form_id} if form_id else None
        response = self.http.get(f"{self.server_url}/formList", headers=HEADERS, params=params)
        response.raise_for_status()
        root = ElementTree.fromstring(response.content)
        return [
            ListedForm(
                form_id=x.findtext(f"{FORM_LIST_NS}formID"),
                name=x.findtext(f"{FORM_LIST_NS}name"),
                version=x.findtext(f"{FORM_LIST_NS}version"),
                hash=x.findtext(f"{FORM_LIST_NS}hash"),
                download_url=x.findtext(f"{FORM_LIST_NS}downloadUrl"),
                manifest_url=x.findtext(f"{FORM_LIST_NS}manifestUrl"),
            )
            for x in root.findall(f"{FORM_LIST_NS}xform")
        ]

    def download(self, url: str) -> httpx.Response:
        response = self.http.get(url, headers=HEADERS, follow_redirects=False)
        if response.status_code in (302, 307):
            # A presigned object-store URL: fetch it over the network, as a phone would (the
            # test client would route every host to the app).
            response = httpx.get(response.headers["Location"])
        response.raise_for_status()
        return response

    def manifest(self, url: str) -> list[tuple[str, str, str]]:
        root = ElementTree.fromstring(self.download(url).content)
        return [
            (
                m.findtext(f"{MANIFEST_NS}filename"),
                m.findtext(f"{MANIFEST_NS}hash"),
                m.findtext(f"{MANIFEST_NS}downloadUrl"),
            )
            for m in root.findall(f"{MANIFEST_NS}mediaFile")
        ]

    def accept_content_length(self) -> int:
        response = self.http.head(f"{self.server_url}/submission", headers=HEADERS)
        assert response.status_code == 204, response.status_code
        return int(response.headers.get("X-OpenRosa-Accept-Content-Length", DEFAULT_ACCEPT))

    def batches(self, xml: bytes, files: dict[str, bytes], limit: int) -> list[list[str]]:
        """Collect's split rule: a new POST when the next file would pass the limit."""
        batches: list[list[str]] = [[]]
        size = len(xml)
        for name, data in files.items():
            current = batches[-1]
            if current and (size + len(data) > limit or len(current) >= MAX_FILES_PER_POST):
                batches.append([])
                size = len(xml)
            batches[-1].append(name)
            size += len(data)
        return batches

    def submit(self, xml: bytes, files: dict[str, bytes] | None = None) -> SendResult:
        files = files or {}
        result = SendResult()
        batches = self.batches(xml, files, self.accept_content_length())
        for index, names in enumerate(batches):
            last = index == len(batches) - 1
            parts = [("xml_submission_file", ("submission.xml", xml, "text/xml"))]
            parts += [(name, (name, files[name], "image/jpeg")) for name in names]
            if not last:
                parts.append(("*isIncomplete*", ("", b"yes", "text/plain")))
            response = self._post(parts, result)
            result.statuses.append(response.status_code)
            result.bodies.append(response.text)
            if response.status_code != 201:
                break
        return result

    def _post(self, parts: list, result: SendResult) -> httpx.Response:
        for attempt in range(self.retries + 1):
            result.attempts += 1
            try:
                response = self.http.post(
                    f"{self.server_url}/submission",
                    headers=HEADERS,
                    files=parts,
                    params={"deviceID": self.device_id},
                )
            except httpx.TransportError:
                if attempt == self.retries:
                    raise
            else:
                if response.status_code < 500 or attempt == self.retries:
                    return response
            time.sleep(self.backoff * (2**attempt))
        raise AssertionError("unreachable")


def new_instance_id() -> str:
    return f"uuid:{uuid.uuid4()}"


def instance_xml(
    form_id: str,
    version: str,
    instance_id: str,
    body: str = "",
    deprecated_id: str | None = None,
    instance_name: str | None = None,
) -> bytes:
    """A submission as Collect writes it; `body` is the inner XML of the answers."""
    meta = f"<instanceID>{instance_id}</instanceID>"
    if deprecated_id:
        meta += f"<deprecatedID>{deprecated_id}</deprecatedID>"
    if instance_name:
        meta += f"<instanceName>{instance_name}</instanceName>"
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><data xmlns:jr="http://openrosa.org/javarosa" '
        f'xmlns:orx="http://openrosa.org/xforms" id="{form_id}" version="{version}">'
        f"{body}<meta>{meta}</meta></data>"
    ).encode()
