"""storage.blobs on real parts: a folder on disk and a real S3 server (SeaweedFS).

Every behavioural test runs against both stores through the ``store``
fixture.  The S3 store shares one session bucket, so each test works under
its own key prefix (``ns``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import urllib.request

import pytest

from storage.blobs import (
    BlobStore,
    BlobStoreError,
    LocalBlobStore,
    S3BlobStore,
    blob_key,
    open_blob_store,
)
from tests.services import free_port

SESSION_BUCKET = "jebol-test"


@pytest.fixture(scope="session")
def s3_session_store(seaweed_s3) -> S3BlobStore:
    store = S3BlobStore(
        seaweed_s3.endpoint, seaweed_s3.access_key, seaweed_s3.secret_key, bucket=SESSION_BUCKET
    )
    # Smallest part size S3 allows, so a ~5.3 MB upload is a real multipart one.
    store.PART_SIZE = 5 * 1024 * 1024
    store.ensure_ready()
    return store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> BlobStore:
    if request.param == "local":
        s = LocalBlobStore(tmp_path / "blobs")
        s.ensure_ready()
        return s
    return request.getfixturevalue("s3_session_store")


@pytest.fixture
def ns(store) -> str:
    """A key prefix of this test's own; cleaned up afterwards."""
    prefix = f"t-{secrets.token_hex(4)}/"
    yield prefix
    for key in list(store.iter_keys(prefix)):
        store.delete(key)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- keys ------------------------------------------------------------------


def test_blob_key_layout_and_validation():
    digest = sha256(b"jebol")
    assert blob_key(digest) == f"blobs/sha256/{digest[:2]}/{digest[2:4]}/{digest}"
    for bad in [
        "",
        digest[:-1],
        digest + "0",
        digest.upper(),
        "g" * 64,
        digest + "\n",
        "../" + digest[3:],
        None,
    ]:
        with pytest.raises(ValueError):
            blob_key(bad)


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../escape",
        "a/..",
        "/etc/passwd",
        "a\\b",
        "..\\escape",
        "a\x00b",
        "",
        "a//b",
        "./a",
        "a/",
    ],
)
def test_local_store_rejects_bad_keys(tmp_path, key):
    s = LocalBlobStore(tmp_path / "root")
    s.ensure_ready()
    for call in (
        lambda: s.put_bytes(key, b"x"),
        lambda: s.read_bytes(key),
        lambda: s.exists(key),
        lambda: s.size(key),
        lambda: s.delete(key),
        lambda: s.iter_chunks(key),
    ):
        with pytest.raises(ValueError):
            call()
    assert not (tmp_path / "escape").exists()
    assert list(tmp_path.iterdir()) == [tmp_path / "root"]


def test_open_blob_store_selects_backend(tmp_path):
    local = open_blob_store(
        blob_dir=tmp_path, s3_endpoint=None, s3_access_key=None, s3_secret_key=None
    )
    assert isinstance(local, LocalBlobStore) and isinstance(local, BlobStore)
    s3 = open_blob_store(
        blob_dir=tmp_path,
        s3_endpoint="http://127.0.0.1:9",
        s3_access_key="a",
        s3_secret_key="b",
        s3_bucket="other",
    )
    assert isinstance(s3, S3BlobStore) and isinstance(s3, BlobStore)
    assert (s3.endpoint, s3.bucket, s3.secure) == ("127.0.0.1:9", "other", False)
    with pytest.raises(ValueError):
        open_blob_store(blob_dir=None, s3_endpoint=None, s3_access_key=None, s3_secret_key=None)
    with pytest.raises(ValueError):  # invalid bucket name: a config error, found early
        S3BlobStore("127.0.0.1:9", "a", "b", bucket="x")
    with pytest.raises(ValueError):
        open_blob_store(
            blob_dir=None, s3_endpoint="127.0.0.1:9", s3_access_key=None, s3_secret_key=None
        )


# -- both stores -------------------------------------------------------------


def test_put_file_iter_chunks_roundtrip(store, ns, tmp_path):
    data = os.urandom(5 * 1024 * 1024 + 300_000)  # > one 5 MiB part on S3
    src = tmp_path / "upload.bin"
    src.write_bytes(data)
    key = ns + blob_key(sha256(data))

    store.put_file(key, src, content_type="image/jpeg")

    assert store.exists(key)
    assert store.size(key) == len(data)
    h = hashlib.sha256()
    sizes = []
    for chunk in store.iter_chunks(key, chunk_size=64 * 1024):
        sizes.append(len(chunk))
        h.update(chunk)
    assert h.hexdigest() == sha256(data)
    assert sum(sizes) == len(data) and max(sizes) <= 64 * 1024
    assert [k for k in store.iter_keys(ns)] == [key]

    # Abandoning a stream half-way releases it; the store keeps working.
    it = store.iter_chunks(key)
    assert len(next(it)) > 0
    it.close()
    assert store.read_bytes(key)[:1000] == data[:1000]

    # A missing source file is the caller's error, not a store failure.
    with pytest.raises(FileNotFoundError):
        store.put_file(ns + "nothing", tmp_path / "missing.bin")
    assert not store.exists(ns + "nothing")


def test_put_bytes_read_exists_size_delete(store, ns):
    key = ns + "submissions/uuid-1/submission.xml"
    xml = b'<?xml version="1.0"?>\n<data id="f">' + b"<a>teks berulang</a>" * 500 + b"</data>"

    assert not store.exists(key)
    assert store.size(key) is None
    with pytest.raises(KeyError):
        store.read_bytes(key)

    # Compressible text: the bytes must come back as stored, not re-encoded.
    store.put_bytes(key, xml, content_type="text/xml")
    assert store.exists(key)
    assert store.size(key) == len(xml)
    assert store.read_bytes(key) == xml
    assert b"".join(store.iter_chunks(key, 1000)) == xml

    store.put_bytes(key, b"replaced")  # overwrite
    assert store.read_bytes(key) == b"replaced"
    assert store.size(key) == 8

    empty = ns + "empty"
    store.put_bytes(empty, b"")
    assert store.exists(empty) and store.size(empty) == 0
    assert store.read_bytes(empty) == b""
    assert b"".join(store.iter_chunks(empty)) == b""

    store.delete(key)
    assert not store.exists(key)
    assert store.size(key) is None
    store.delete(key)  # absent is fine
    store.delete(ns + "never/existed")


def test_missing_key_raises_keyerror_before_iterating(store, ns):
    with pytest.raises(KeyError):
        store.iter_chunks(ns + "blobs/missing")  # at the call, not at next()
    with pytest.raises(KeyError):
        store.read_bytes(ns + "blobs/missing")


def test_iter_keys_prefix(store, ns):
    keys = [ns + k for k in ("a/1", "a/2", "ab/3", "b/c/4", "top")]
    for k in keys:
        store.put_bytes(k, k.encode())
    assert sorted(store.iter_keys(ns)) == sorted(keys)
    assert sorted(store.iter_keys(ns + "a/")) == [ns + "a/1", ns + "a/2"]
    assert sorted(store.iter_keys(ns + "a")) == [ns + "a/1", ns + "a/2", ns + "ab/3"]
    assert sorted(store.iter_keys(ns + "b/")) == [ns + "b/c/4"]
    assert list(store.iter_keys(ns + "zzz/")) == []
    assert set(keys) <= set(store.iter_keys())


def test_presigned_url(store, ns):
    key = ns + "media/foto.jpg"
    body = os.urandom(3000)
    store.put_bytes(key, body, content_type="application/octet-stream")
    url = store.presigned_get_url(
        key, filename="foto kegiatan – 1.jpg", content_type="image/jpeg", expires_seconds=60
    )
    if isinstance(store, LocalBlobStore):
        assert url is None
        return
    assert url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        assert resp.read() == body
        assert resp.headers["Content-Type"] == "image/jpeg"
        disposition = resp.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="foto kegiatan _ 1.jpg"')
    assert "filename*=UTF-8''foto%20kegiatan%20%E2%80%93%201.jpg" in disposition


# -- local only ----------------------------------------------------------------


def test_local_store_atomic_layout(tmp_path):
    root = tmp_path / "deep" / "root"
    s = LocalBlobStore(root)
    s.ensure_ready()  # creates missing parents
    assert root.is_dir()
    digest = sha256(b"abc")
    key = blob_key(digest)
    s.put_bytes(key, b"abc")
    path = root / "blobs" / "sha256" / digest[:2] / digest[2:4] / digest
    assert path.read_bytes() == b"abc"
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    # No temporary files are left behind; stray ones are not listed as keys.
    folder = root / "blobs" / "sha256" / digest[:2] / digest[2:4]
    assert [p.name for p in folder.iterdir()] == [digest]
    (folder / ".tmp-crashed").write_bytes(b"partial")
    assert list(s.iter_keys()) == [key]


# -- S3 only -------------------------------------------------------------------


def test_s3_ensure_ready_creates_bucket(seaweed_s3):
    bucket = f"jebol-new-{secrets.token_hex(4)}"
    client = seaweed_s3.client()
    assert not client.bucket_exists(bucket)
    s = S3BlobStore(
        seaweed_s3.endpoint, seaweed_s3.access_key, seaweed_s3.secret_key, bucket=bucket
    )
    s.ensure_ready()
    assert client.bucket_exists(bucket)
    s.ensure_ready()  # idempotent
    s.put_bytes("k", b"v")
    assert s.read_bytes("k") == b"v"
    s.delete("k")
    client.remove_bucket(bucket)


def test_s3_dead_endpoint_fails_fast():
    port = free_port()  # nothing listens there
    s = S3BlobStore(f"127.0.0.1:{port}", "a", "b", bucket="jebol")
    for call in (
        s.ensure_ready,
        lambda: s.exists("k"),
        lambda: s.size("k"),
        lambda: s.put_bytes("k", b"v"),
        lambda: s.read_bytes("k"),
        lambda: s.iter_chunks("k"),
        lambda: list(s.iter_keys()),
        lambda: s.delete("k"),
    ):
        t0 = time.monotonic()
        with pytest.raises(BlobStoreError):
            call()
        assert time.monotonic() - t0 < 5


def test_s3_wrong_credentials_is_store_error(seaweed_s3):
    s = S3BlobStore(
        seaweed_s3.endpoint, seaweed_s3.access_key, "wrong-secret", bucket=SESSION_BUCKET
    )
    with pytest.raises(BlobStoreError):
        s.put_bytes("k", b"v")
    with pytest.raises(BlobStoreError):
        s.read_bytes("k")
