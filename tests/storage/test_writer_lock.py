"""SQLite's writers queue on one lock across the server's worker processes (storage.db.WriterLock):
a writer in another process waits for the holder and goes on the moment it lets go."""

from __future__ import annotations

import fcntl
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.db import Database

HOLDER = """
import sys, time
from storage.db import Database
db = Database(sys.argv[1])
with db.transaction():
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def test_a_writer_waits_for_another_process_and_no_longer(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'jebol.sqlite3'}"
    db = Database(url)
    with db.transaction() as tx:
        tx.connection().exec_driver_sql("CREATE TABLE t (x INTEGER)")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, url, "1.0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        # The other process holds the lock file: a non-blocking try here is refused.
        with open(tmp_path / "jebol.sqlite3.writer-lock", "rb") as lock:
            with pytest.raises(BlockingIOError):
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        began = time.monotonic()
        with db.transaction() as tx:
            tx.connection().exec_driver_sql("INSERT INTO t VALUES (1)")
        waited = time.monotonic() - began
    finally:
        holder.wait(timeout=30)
    assert 0.5 <= waited < 5, waited  # the holder sleeps 1 s after saying so
