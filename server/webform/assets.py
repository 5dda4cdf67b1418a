"""The officer web form's browser files: ODK Web Forms, Vue and idb-keyval (copied from npm by
`make assets` into server/static/vendor/) and our own scripts in server/webform/static/.

They are served under /static/webform/{build}/…, where `build` is a digest of every file, so
each URL is immutable: a year of browser cache, gzip compressed once in memory. The service
worker's cache names carry the same digest, so a new release replaces the cached shell.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
import threading
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

HERE = Path(__file__).parent
OWN = HERE / "static"
VENDOR = HERE.parent / "static" / "vendor"
# URL folder -> folder on disk (vendor folders relative to VENDOR).
VENDOR_FOLDERS = ("web-forms", "vue", "idb-keyval")
REQUIRED = ("web-forms/index.js", "vue/vue.esm-browser.prod.js", "idb-keyval/index.js")
SKIP = {"package.json"}
TYPES = {
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".svg": "image/svg+xml",
}
COMPRESSIBLE = (".js", ".css", ".json", ".svg", ".ico", ".webmanifest")
MIN_COMPRESS = 1024


@dataclass
class Asset:
    path: Path
    media_type: str
    etag: str
    body: bytes
    gzipped: bytes | None = None


@dataclass
class Assets:
    """The file set under one build digest."""

    files: dict[str, Path]
    build: str
    ready: bool  # the vendor libraries are there (else the form page says how to build them)
    versions: dict[str, str] = field(default_factory=dict)
    _loaded: dict[str, Asset] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, name: str) -> str:
        return f"/static/webform/{self.build}/{name}"

    def precache(self) -> list[str]:
        """Every URL the service worker keeps for offline use (the shell)."""
        return [self.url(name) for name in sorted(self.files)]

    def get(self, name: str) -> Asset | None:
        path = self.files.get(name)
        if path is None:
            return None
        with self._lock:
            asset = self._loaded.get(name)
            if asset is None:
                body = path.read_bytes()
                media_type = (
                    TYPES.get(path.suffix)
                    or mimetypes.guess_type(path.name)[0]
                    or "application/octet-stream"
                )
                asset = Asset(path, media_type, f'"{hashlib.md5(body).hexdigest()}"', body)
                if path.suffix in COMPRESSIBLE and len(body) >= MIN_COMPRESS:
                    asset.gzipped = gzip.compress(body, compresslevel=6, mtime=0)
                self._loaded[name] = asset
            return asset


def scan(own: Path = OWN, vendor: Path = VENDOR) -> Assets:
    files: dict[str, Path] = {}
    for path in sorted(own.rglob("*")):
        if path.is_file() and path.name != "sw.js":  # sw.js is served at /f/sw.js
            files[f"app/{path.relative_to(own).as_posix()}"] = path
    versions: dict[str, str] = {}
    for folder in VENDOR_FOLDERS:
        base = vendor / folder
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and path.name not in SKIP:
                files[f"{folder}/{path.relative_to(base).as_posix()}"] = path
        meta = base / "package.json"
        if meta.is_file():
            versions[folder] = str(json.loads(meta.read_text(encoding="utf-8")).get("version", ""))
    digest = hashlib.sha256()
    for name, path in sorted(files.items()):
        digest.update(name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    sw = own / "sw.js"
    if sw.is_file():
        digest.update(sw.read_bytes())
    ready = all(name in files for name in REQUIRED)
    return Assets(files=files, build=digest.hexdigest()[:16], ready=ready, versions=versions)


@cache
def current() -> Assets:
    """Scanned once per process: the files do not change while the server runs."""
    return scan()
