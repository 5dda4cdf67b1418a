"""The blob store as a folder on disk: writes are atomic (temporary file in the same folder,
``fsync``, ``os.replace``, ``fsync`` of the folder); an upload on the same disk is hard-linked.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from .base import TMP_PREFIX, BlobInfo, BlobStoreError, check_key, check_prefix

_COPY_BUFFER = 1024 * 1024


def _current_umask() -> int:
    """The process umask, read without changing it (Linux), else 0o022."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (raises OSError)."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class LocalBlobStore:
    """Blobs as files under ``root`` (key ``a/b/c`` -> ``root/a/b/c``)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        # mkstemp makes 0600 files; give blobs the mode a plain open() would.
        self._file_mode = 0o666 & ~_current_umask()

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def ensure_ready(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlobStoreError(f"cannot create blob folder {self.root}: {exc}") from exc

    def check(self) -> None:
        """Readiness probe, cheap: the folder is there and writable (a read-only or missing
        mount fails; nothing is written)."""
        if not self.root.is_dir() or not os.access(self.root, os.W_OK | os.X_OK):
            raise BlobStoreError(f"blob folder {self.root} is missing or not writable")

    def _write_atomic(self, key: str, write) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=TMP_PREFIX)
        except OSError as exc:
            raise BlobStoreError(f"cannot write blob {key}: {exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                os.fchmod(fd, self._file_mode)
                write(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp_name, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            if isinstance(exc, OSError):
                raise BlobStoreError(f"cannot write blob {key}: {exc}") from exc
            raise
        try:
            _fsync_folder(target.parent)
        except OSError as exc:
            raise BlobStoreError(f"cannot sync folder of blob {key}: {exc}") from exc

    def put_file(
        self, key: str, path: Path, content_type: str = "application/octet-stream"
    ) -> None:
        target = self._path(key)  # validate before touching anything
        # A missing source file is the caller's error: let FileNotFoundError out.
        with open(path, "rb") as src:
            if self._link(src, path, target):
                return
            self._write_atomic(key, lambda out: shutil.copyfileobj(src, out, _COPY_BUFFER))

    def _link(self, src, path: Path, target: Path) -> bool:
        """Adopt an upload on the same disk by a hard link instead of a second copy: the file
        is synced, linked under a temporary name beside its target, then renamed into place.
        False when linking is not possible (another file system), so the caller copies."""
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            os.fsync(src.fileno())
            tmp_name = target.parent / f"{TMP_PREFIX}{os.urandom(8).hex()}"
            os.link(path, tmp_name)
        except OSError:
            return False
        try:
            os.chmod(tmp_name, self._file_mode)
            os.replace(tmp_name, target)
            _fsync_folder(target.parent)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise BlobStoreError(f"cannot store blob {target.name}: {exc}") from exc
        return True

    def put_bytes(
        self, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> None:
        self._write_atomic(key, lambda out: out.write(data))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise BlobStoreError(f"cannot stat blob {key}: {exc}") from exc
        return st.st_size if stat.S_ISREG(st.st_mode) else None

    def _open(self, key: str):
        try:
            return open(self._path(key), "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise KeyError(key) from None
        except OSError as exc:
            raise BlobStoreError(f"cannot read blob {key}: {exc}") from exc

    def iter_chunks(self, key: str, chunk_size: int = 256 * 1024) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        fh = self._open(key)  # KeyError now, not at the first next()
        return self._gen_chunks(fh, key, chunk_size)

    @staticmethod
    def _gen_chunks(fh, key: str, chunk_size: int) -> Iterator[bytes]:
        with fh:
            while True:
                try:
                    chunk = fh.read(chunk_size)
                except OSError as exc:
                    raise BlobStoreError(f"cannot read blob {key}: {exc}") from exc
                if not chunk:
                    return
                yield chunk

    def read_bytes(self, key: str) -> bytes:
        with self._open(key) as fh:
            try:
                return fh.read()
            except OSError as exc:
                raise BlobStoreError(f"cannot read blob {key}: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except NotADirectoryError:
            pass
        except OSError as exc:
            raise BlobStoreError(f"cannot delete blob {key}: {exc}") from exc

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Keys starting with ``prefix`` (a string prefix, as in S3); order unspecified."""
        check_prefix(prefix)
        # Walk only the deepest folder the prefix names completely.
        base_rel = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root.joinpath(*base_rel.split("/")) if base_rel else self.root
        if not start.is_dir():
            return
        root_str = str(self.root)
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = os.path.relpath(dirpath, root_str)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            # Descend only into folders that can hold keys with this prefix.
            dirnames[:] = sorted(
                d
                for d in dirnames
                if not d.startswith(TMP_PREFIX)
                and ((rel_dir + d + "/").startswith(prefix) or prefix.startswith(rel_dir + d + "/"))
            )
            for name in sorted(filenames):
                if name.startswith(TMP_PREFIX):
                    continue
                key = rel_dir + name
                if key.startswith(prefix):
                    yield key

    def iter_info(self, prefix: str = "") -> Iterator[BlobInfo]:
        """Like :meth:`iter_keys`, with each file's size and modification time."""
        for key in self.iter_keys(prefix):
            try:
                st = self._path(key).stat()
            except FileNotFoundError:  # deleted since it was listed
                continue
            except OSError as exc:
                raise BlobStoreError(f"cannot stat blob {key}: {exc}") from exc
            yield BlobInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def presigned_get_url(
        self,
        key: str,
        filename: str | None = None,
        content_type: str | None = None,
        expires_seconds: int = 300,
    ) -> str | None:
        return None
