"""Configuration: one Struct, read from JEBOL_* environment variables (all optional)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

from forms.clock import DEFAULT_ZONE, Clock

_PREFIX = "JEBOL_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: str = "data"
    database_url: str = ""  # default: sqlite:///{data_dir}/jebol.sqlite3
    blob_dir: str = ""  # default: {data_dir}/blobs
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "jebol"
    s3_secure: bool = False
    s3_connect_timeout: float = 5.0  # seconds; a stopped S3 answers 503 at once, a hung one
    s3_read_timeout: float = 10.0  # after (retries + 1) x the timeout
    s3_retries: int = 1
    public_url: str = ""  # default: http://{host}:{port}
    host: str = "0.0.0.0"
    port: int = 8000
    workers: int = 2  # two processes: the GIL of one is the limit (issue #17, bench/ingest.py)
    admin_email: str = "admin@jebol.local"
    admin_password: str | None = None
    max_submission_bytes: int = 100 * 1024 * 1024
    body_timeout_seconds: float = 30.0  # a request body that stalls this long is a 408
    session_hours: float = 24.0
    secret_key: str | None = None  # default: generated once into {data_dir}/secret.key
    tmp_dir: str = ""  # default: {data_dir}/tmp (same disk as the blobs)
    default_project: str = "Jemput Bola Inovasi"
    default_app_user: str = "Petugas 1"
    map_tiles: str = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"  # empty: no tiles
    log_format: Literal["text", "json"] = "text"  # json: one JSON object per line
    timezone: str = DEFAULT_ZONE  # the zone people read times in (the API stays UTC)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.__struct_fields__:
            raw = environ.get(_PREFIX + name.upper())
            if raw is not None and raw != "":
                values[name] = raw
        values.update(overrides)
        try:
            settings = msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as error:
            raise SystemExit(
                f"Invalid configuration: {error} (check the JEBOL_* variables)"
            ) from None
        try:
            Clock.named(settings.timezone)
        except ValueError as error:
            raise SystemExit(f"Invalid configuration: JEBOL_TIMEZONE: {error}") from None
        return settings.resolved()

    @property
    def clock(self) -> Clock:
        return Clock.named(self.timezone)

    def resolved(self) -> Settings:
        data = Path(self.data_dir)
        return msgspec.structs.replace(
            self,
            database_url=self.database_url or f"sqlite:///{data / 'jebol.sqlite3'}",
            blob_dir=self.blob_dir or str(data / "blobs"),
            tmp_dir=self.tmp_dir or str(data / "tmp"),
            public_url=(self.public_url or f"http://{_display_host(self.host)}:{self.port}").rstrip(
                "/"
            ),
        )

    def load_secret(self) -> str:
        """The secret that seals app-user tokens: JEBOL_SECRET_KEY, else a file made once."""
        if self.secret_key:
            return self.secret_key
        path = Path(self.data_dir) / "secret.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            try:  # two workers starting at once: one writes, the other reads
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_urlsafe(48))
        return path.read_text().strip()


def _display_host(host: str) -> str:
    if host in ("0.0.0.0", "::", ""):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host
