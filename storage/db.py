"""Engine and transactions from a URL: SQLite by default, PostgreSQL in production.

Every public storage operation opens exactly one transaction with `db.transaction()`;
reads use `db.read()`. Sessions never expire loaded rows on commit, so a row returned
from a transaction stays readable after it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
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
        self._reader = self.engine.execution_options(jebol_read=True)
        self._writer = threading.Lock() if self.dialect == "sqlite" else nullcontext()

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """One write transaction: committed on leaving the block, rolled back on an exception.

        On SQLite, writers of this process also queue on a lock: SQLite's own busy handler
        retries with growing sleeps, so under load some writers lost the lock again and again
        (p99 over a second); the lock hands it over as soon as it is free.
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
