"""Loads for the fault tests and bench/chaos.py: a prepared field, submissions, Collect-like
senders that retry until they get a 201, and a tally of what the server really kept.

The tally reads the database and the blob store directly (storage APIs), never through the
server under test: a submission is *present* when its instanceID has exactly its attachments,
each naming the SHA-256 of the bytes the client sent and each blob in the store hashing to it.
"""

from __future__ import annotations

import hashlib
import os
import queue
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
from sqlmodel import select

from server.app import Services
from server.settings import Settings
from storage import users
from storage.blobs import BlobStore, blob_key
from storage.db import Database
from storage.models import Submission, SubmissionAttachment, SubmissionVersion
from tests.collect import HEADERS, CollectClient, instance_xml
from tests.factories import make_app_user, make_project, photo_body, publish

FORM_ID, FORM_VERSION = "foto_sederhana", "1"
ADMIN_PASSWORD = "rahasia-uji-123"


@dataclass(frozen=True)
class Field:
    """A project with the photo form, an app user and an admin, ready for a server process."""

    settings: Settings
    project_id: int
    token: str
    admin_email: str  # password ADMIN_PASSWORD

    def collect_url(self, server_url: str) -> str:
        return f"{server_url}/v1/key/{self.token}/projects/{self.project_id}"

    def env(self) -> dict[str, str]:
        return settings_env(self.settings)


def settings_env(s: Settings) -> dict[str, str]:
    """The JEBOL_* variables that point a `jebol` process at the same data as `s`."""
    env = {
        "JEBOL_DATA_DIR": s.data_dir,
        "JEBOL_DATABASE_URL": s.database_url,
        "JEBOL_BLOB_DIR": s.blob_dir,
        "JEBOL_TMP_DIR": s.tmp_dir,
        "JEBOL_SECRET_KEY": s.load_secret(),
    }
    if s.s3_endpoint:
        env.update(
            JEBOL_S3_ENDPOINT=s.s3_endpoint,
            JEBOL_S3_ACCESS_KEY=s.s3_access_key or "",
            JEBOL_S3_SECRET_KEY=s.s3_secret_key or "",
            JEBOL_S3_BUCKET=s.s3_bucket,
        )
    return env


def prepare_field(settings: Settings) -> Field:
    services = Services(settings)
    try:
        services.prepare()
        project = make_project(services)
        publish(services, project)
        app_user = make_app_user(services, project, forms=["foto_sederhana"])
        admin = users.create_user(
            services.db, f"admin-{uuid.uuid4().hex[:8]}@faults.test", ADMIN_PASSWORD, is_admin=True
        )
    finally:
        services.db.dispose()
    return Field(settings, project.id, app_user.token, admin.email)


@dataclass(frozen=True)
class Item:
    """One submission as a phone holds it: the XML and its photos, sent the same every time."""

    instance_id: str
    xml: bytes
    files: dict[str, bytes]


def make_items(count: int, *, photos: int = 2, size: int = 3000) -> list[Item]:
    names = ["utama.jpg"] + [f"bukti{n}.jpg" for n in range(1, photos)]
    items = []
    for _ in range(count):
        instance_id = f"uuid:{uuid.uuid4()}"
        xml = instance_xml(
            FORM_ID, FORM_VERSION, instance_id, photo_body(main=names[0], evidence=names[1:])
        )
        items.append(Item(instance_id, xml, {name: os.urandom(size) for name in names}))
    return items


def post_once(collect_url: str, item: Item) -> tuple[httpx.Response, float]:
    """One OpenRosa POST of the whole item, without HEAD or retries; and its seconds."""
    parts = [("xml_submission_file", ("submission.xml", item.xml, "text/xml"))]
    parts += [(name, (name, data, "image/jpeg")) for name, data in item.files.items()]
    started = time.monotonic()
    response = httpx.post(f"{collect_url}/submission", headers=HEADERS, files=parts, timeout=60)
    return response, time.monotonic() - started


@dataclass
class Load:
    """Clients sending items until each has its 201 (in background threads)."""

    collect_url: str
    items: list[Item]
    clients: int = 8
    retry: bool = True
    acknowledged: set[str] = field(default_factory=set)
    answers: Counter = field(default_factory=Counter)  # status (0: none, -1: HEAD not 204)
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._todo: queue.Queue[Item] = queue.Queue()
        for item in self.items:
            self._todo.put(item)
        self._lock = threading.Lock()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True)
            for n in range(self.clients)
        ]

    def start(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if any(thread.is_alive() for thread in self._threads):
            raise TimeoutError(
                f"load not done after {timeout:.0f} s: "
                f"{len(self.acknowledged)}/{len(self.items)} acknowledged; "
                f"answers {dict(self.answers)}"
            )

    def wait_for(self, acknowledged: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acknowledged) < acknowledged:
            if time.monotonic() > deadline or not any(t.is_alive() for t in self._threads):
                raise TimeoutError(
                    f"only {len(self.acknowledged)} acknowledged; answers "
                    f"{dict(self.answers)}; refused {self.failures[:3]}"
                )
            time.sleep(0.01)

    def _client(self, number: int) -> None:
        with httpx.Client(timeout=30) as http:
            collect = CollectClient(http, self.collect_url, device_id=f"collect:faults{number}")
            while True:
                try:
                    item = self._todo.get_nowait()
                except queue.Empty:
                    return
                self._send(collect, item)

    def _send(self, collect: CollectClient, item: Item) -> None:
        """As Collect's auto-send: the same instanceID and files again after a connection error
        or a 5xx, with a growing pause; any other answer is final."""
        pause = 0.05
        while True:
            try:
                status = collect.submit(item.xml, item.files).status
            except httpx.TransportError:
                status = 0
            except AssertionError:  # CollectClient: the HEAD before the POST was not a 204
                status = -1
            with self._lock:
                self.answers[status] += 1
                if status == 201:
                    self.acknowledged.add(item.instance_id)
                    return
                if 0 < status < 500 or not self.retry:  # final, as for Collect
                    self.failures.append(f"{item.instance_id}: {status}")
                    return
            time.sleep(pause)
            pause = min(pause * 2, 0.5)


@dataclass(frozen=True)
class Tally:
    sent: int
    acknowledged: int
    present: int  # exactly once, every attachment byte-identical
    lost: int  # acknowledged but not present
    duplicated: int  # extra submission rows for one instanceID
    incomplete: int  # a row whose attachments are missing or differ
    rows: int  # submission rows of these instanceIDs


def tally(db: Database, blobs: BlobStore, items: list[Item], acknowledged: set[str]) -> Tally:
    ids = [item.instance_id for item in items]
    with db.read() as tx:
        counts = Counter(
            tx.exec(select(Submission.instance_id).where(Submission.instance_id.in_(ids))).all()
        )
        stored: dict[str, dict[str, str | None]] = {}
        for instance_id, name, sha256 in tx.exec(
            select(
                Submission.instance_id, SubmissionAttachment.name, SubmissionAttachment.blob_sha256
            )
            .join(SubmissionVersion, SubmissionVersion.submission_id == Submission.id)
            .join(
                SubmissionAttachment,
                SubmissionAttachment.submission_version_id == SubmissionVersion.id,
            )
            .where(Submission.instance_id.in_(ids), SubmissionVersion.is_current)
        ):
            stored.setdefault(instance_id, {})[name] = sha256
    intact = _intact_blobs(
        blobs, {sha for names in stored.values() for sha in names.values() if sha}
    )
    present = lost = incomplete = 0
    for item in items:
        expected = {name: hashlib.sha256(data).hexdigest() for name, data in item.files.items()}
        ok = (
            counts[item.instance_id] == 1
            and stored.get(item.instance_id) == expected
            and all(sha in intact for sha in expected.values())
        )
        present += ok
        lost += item.instance_id in acknowledged and not ok
        incomplete += counts[item.instance_id] > 0 and not ok
    return Tally(
        len(items),
        len(acknowledged),
        present,
        lost,
        sum(n - 1 for n in counts.values()),
        incomplete,
        sum(counts.values()),
    )


def _intact_blobs(blobs: BlobStore, digests: set[str]) -> set[str]:
    """The digests whose blob is in the store and hashes to its name."""

    def check(sha256: str) -> str | None:
        try:
            data = blobs.read_bytes(blob_key(sha256))
        except KeyError:
            return None
        return sha256 if hashlib.sha256(data).hexdigest() == sha256 else None

    with ThreadPoolExecutor(8) as pool:
        return {sha for sha in pool.map(check, sorted(digests)) if sha}
