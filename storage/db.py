"""Engine and transactions from a URL: SQLite by default, PostgreSQL in production.

Every public storage operation runs in `db.transaction()` (writes) or `db.read()`. The `db`
it is given is either the `Database` itself (each operation its own transaction: the CLI,
jobs, tests) or a request's `Unit` (every operation of one HTTP request in one transaction,
see `Unit`). Sessions never expire loaded rows on commit, so a row returned from a
transaction stays readable after it.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

MIGRATIONS = Path(__file__).parent / "migrations"
PG_CONNECT_TIMEOUT = 5  # seconds


# JSON columns (submission values) decoded by msgspec: several times json.loads' speed, the
# same Python objects.
_decode_json = msgspec.json.decode


class Database:
    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = normalize_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        if self.dialect == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
            self.engine = sa.create_engine(
                self.url,
                echo=echo,
                pool_size=8,
                max_overflow=16,
                json_deserializer=_decode_json,
                connect_args={"check_same_thread": False, "timeout": 30},
            )
            _configure_sqlite(self.engine)
        else:
            # pool_pre_ping replaces connections a database restart broke, so the first request
            # after an outage succeeds; a connect timeout (libpq waits forever by default; a
            # `?connect_timeout=` in the URL wins) makes an unreachable host a 503 in seconds.
            connect_args = (
                {} if "connect_timeout" in parsed.query else {"connect_timeout": PG_CONNECT_TIMEOUT}
            )
            self.engine = sa.create_engine(
                self.url,
                echo=echo,
                pool_size=10,
                max_overflow=20,
                pool_pre_ping=True,
                pool_timeout=30,
                json_deserializer=_decode_json,
                connect_args=connect_args,
            )
        # A read sees one snapshot across its statements (PostgreSQL's default, READ COMMITTED,
        # gives each statement its own); SQLite's deferred transactions already do.
        read_options: dict[str, Any] = {"jebol_read": True}
        if self.dialect != "sqlite":
            read_options["isolation_level"] = "REPEATABLE READ"
        self._reader = self.engine.execution_options(**read_options)
        self._writer: AbstractContextManager[Any] = (
            WriterLock(parsed.database) if self.dialect == "sqlite" else nullcontext()
        )

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction: committed on leaving the block, rolled back on an exception.

        On SQLite, writers also queue on a lock (`WriterLock`: this process' threads, and the
        server's other worker processes): SQLite's own busy handler retries with growing
        sleeps, so under load some writers lost the lock again and again (p99 over a second);
        the lock hands it over as soon as it is free.
        """
        with self._writer, Session(self.engine, expire_on_commit=False) as session:
            with session.begin():
                yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A read-only unit of work (on SQLite a deferred transaction, so it never blocks writers)."""
        with Session(self._reader, expire_on_commit=False) as session:
            with session.begin():
                yield session

    def unit(self, *, write: bool) -> Unit:
        """A request's unit of work over this database (see `Unit`)."""
        return Unit(self, write=write)

    def detached(self) -> Database:
        """The database outside any request's unit: a transaction here commits at once, even
        if the request then fails (a failed login must be counted although it answers 401)."""
        return self

    def migrate(self) -> None:
        """Bring the schema to the newest migration (run at every start; cheap when current)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection_url"] = self.url
        with self.engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")

    def ping(self) -> None:
        with self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    def dispose(self) -> None:
        self.engine.dispose()


class WriterLock:
    """SQLite's writers, queued: a thread lock for this process' threads, and an exclusive
    `flock` on a file beside the database for the other processes (`JEBOL_WORKERS` > 1). The
    kernel wakes the next waiter when the lock is released, where SQLite's busy handler polls
    with sleeps of up to 100 ms. An in-memory database has no file and no other process."""

    def __init__(self, database: str | None) -> None:
        self._threads = threading.Lock()
        self._path = f"{database}.writer-lock" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._pid = 0

    def __enter__(self) -> None:
        self._threads.acquire()
        if self._path is None:
            return
        try:
            if self._fd is None or self._pid != os.getpid():  # a forked child: its own file
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                self._pid = os.getpid()
            fcntl.flock(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise

    def __exit__(self, *_: object) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()


class Unit(Database):
    """One HTTP request's unit of work: every storage operation the request runs shares it.

    - A write unit (POST, PUT, PATCH, DELETE) holds one write transaction, begun at the
      request's first write and committed by `finish` before the response is sent; each
      operation in it is a savepoint, so one that fails leaves the others as they were, and the
      whole request is rolled back when it fails. Reads after the first write run in it and see
      its changes; reads before it (checks while a body still streams in) take no write lock
      and hold no connection.
    - A read unit (GET, HEAD) holds one read transaction: every read of the request sees one
      snapshot. A write there (a download's audit entry) is its own transaction.

    A unit serves one thread at a time: a thread that finds it in use by another (a streaming
    response's read-ahead), and any use after `finish`, get the database's own transactions.
    """

    def __init__(self, root: Database, *, write: bool) -> None:
        # Not Database.__init__: a unit shares the root's engine, pool and write lock.
        self.url, self.dialect, self.engine = root.url, root.dialect, root.engine
        self._reader, self._writer = root._reader, root._writer
        self.root, self.write = root, write
        self._session: Session | None = None
        self._stack: AbstractContextManager[Any] | None = None
        self._in_use = threading.RLock()
        self._finished = False

    @property
    def opened(self) -> bool:
        return self._session is not None

    @contextmanager
    def _claim(self) -> Iterator[bool]:
        """True while this thread may use the unit (reentrant: nested operations share it)."""
        claimed = not self._finished and self._in_use.acquire(blocking=False)
        try:
            yield claimed and not self._finished
        finally:
            if claimed:
                self._in_use.release()

    def _open(self) -> Session:
        if self._session is None:
            stack = self.root.transaction() if self.write else self.root.read()
            self._session = stack.__enter__()
            self._stack = stack
        return self._session

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with self._claim() as mine:
            if not (mine and self.write):
                with self.root.transaction() as session:
                    yield session
                return
            session = self._open()
            with session.begin_nested():
                yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self._claim() as mine:
            if not mine or (self.write and self._session is None):
                with self.root.read() as session:
                    yield session
                return
            yield self._open()

    def detached(self) -> Database:
        return self.root

    def finish(self, error: BaseException | None = None) -> None:
        """Commit (or, after `error`, roll back) and give the connection back. Idempotent."""
        with self._in_use:  # waits for an operation still running in another thread
            self._finished = True
            stack, self._stack, self._session = self._stack, None, None
        if stack is not None:
            if error is None:
                stack.__exit__(None, None, None)
            else:
                stack.__exit__(type(error), error, error.__traceback__)

    def migrate(self) -> None:  # pragma: no cover - a unit never migrates
        raise TypeError("migrate the Database, not a request's unit")

    def dispose(self) -> None:  # pragma: no cover - the pool is the root's
        raise TypeError("dispose the Database, not a request's unit")


def normalize_url(url: str) -> str:
    """Accept the short forms people type: postgresql:// means psycopg 3 here."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # a 201 means on disk, also after power loss
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # Writers take the write lock up front, so two writers never deadlock upgrading a read
        # lock; readers stay deferred and run beside the writer (WAL).
        read = connection.get_execution_options().get("jebol_read")
        connection.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")
