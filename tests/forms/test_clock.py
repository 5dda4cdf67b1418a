"""Local time for people (forms.clock): Asia/Jakarta is UTC+7 all year (no summer time)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from forms.clock import Clock
from server.settings import Settings


def test_a_late_evening_utc_sync_is_the_next_morning_in_jakarta():
    # The walk-through's visit: received 2026-12-01 23:36 UTC = 2 December 06:36 WIB.
    clock = Clock.named("Asia/Jakarta")
    moment = datetime(2026, 12, 1, 23, 36, tzinfo=UTC)
    assert clock.stamp(moment) == "2026-12-02 06:36 WIB"
    assert clock.day(moment) == "2026-12-02"
    # The database hands back naive UTC on SQLite: the same moment.
    assert clock.stamp(moment.replace(tzinfo=None)) == "2026-12-02 06:36 WIB"
    # Makassar (WITA) is UTC+8.
    assert Clock.named("Asia/Makassar").stamp(moment) == "2026-12-02 07:36 WITA"
    assert clock.stamp(None) == "–"


def test_day_bounds_are_local_midnights():
    clock = Clock.named("Asia/Jakarta")
    start, end = clock.day_bounds(date(2026, 11, 1), date(2026, 11, 30))
    # 1 November 00:00 WIB = 31 October 17:00 UTC; the day after 30 November likewise.
    assert start == datetime(2026, 10, 31, 17, 0, tzinfo=UTC)
    assert end == datetime(2026, 11, 30, 17, 0, tzinfo=UTC)
    assert clock.day_bounds(None, None) == (None, None)


def test_today_follows_the_zone():
    clock = Clock.named("Asia/Jakarta")
    jakarta_now = datetime.now(UTC).astimezone(timezone(timedelta(hours=7)))
    assert clock.today() in (jakarta_now.date(), (jakarta_now - timedelta(seconds=5)).date())


def test_an_unknown_zone_is_refused_at_start():
    with pytest.raises(ValueError, match="Asia/Jakarta"):
        Clock.named("Mars/Olympus")
    with pytest.raises(SystemExit, match="JEBOL_TIMEZONE"):
        Settings.from_env({"JEBOL_TIMEZONE": "WIB+7"})
    assert Settings.from_env({}).timezone == "Asia/Jakarta"
