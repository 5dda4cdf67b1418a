"""The throwaway PostgreSQL helper used by other test modules."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from tests.services import ThrowawayPostgres, postgres_available


@pytest.mark.skipif(not postgres_available(), reason="PostgreSQL not running on 127.0.0.1:5432")
def test_throwaway_postgres_create_and_drop():
    db = ThrowawayPostgres()
    url = db.create()
    name = db.name
    assert url.startswith("postgresql+psycopg://") and url.endswith(f"@127.0.0.1:5432/{name}")
    assert name.startswith("jebol_test_")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT 1")).scalar() == 1
            assert conn.execute(sa.text("SELECT current_database()")).scalar() == name
        # drop() must cope with connections still open in a pool.
        held = engine.connect()
        db.drop()
        held.invalidate()
        held.close()
    finally:
        engine.dispose()
    assert db.name is None
    admin = sa.create_engine(url.rsplit("/", 1)[0] + "/postgres")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                sa.text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}
            ).scalar()
        assert found == 0
    finally:
        admin.dispose()
