"""Local time for people: the UI, the exports people open and the CLI show times in the
server's zone (JEBOL_TIMEZONE, Asia/Jakarta by default) with its name ("WIB"); the
Central-compatible API and CSV keep ISO UTC. Pure: a zone name in, strings and dates out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Asia/Jakarta"


@dataclass(frozen=True)
class Clock:
    zone: ZoneInfo

    @classmethod
    def named(cls, name: str = DEFAULT_ZONE) -> Clock:
        """A clock in an IANA zone ("Asia/Jakarta", "Asia/Makassar"); ValueError for others."""
        try:
            return cls(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name: Asia/Jakarta)") from None

    def local(self, moment: datetime) -> datetime:
        """The moment in this zone (a naive one is taken as UTC, as the database stores it)."""
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(self.zone)

    def stamp(self, moment: datetime | None) -> str:
        """ "2026-12-02 06:36 WIB"; "–" for none."""
        if moment is None:
            return "–"
        local = self.local(moment)
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"

    def day(self, moment: datetime | None) -> str:
        """The local calendar day, "2026-12-02"; "–" for none."""
        return "–" if moment is None else self.local(moment).date().isoformat()

    def today(self) -> date:
        return datetime.now(self.zone).date()

    def day_bounds(self, first: date | None, last: date | None) -> tuple[datetime | None, ...]:
        """[start of `first`, start of the day after `last`) in this zone, as UTC moments."""
        start = (
            datetime(first.year, first.month, first.day, tzinfo=self.zone).astimezone(UTC)
            if first
            else None
        )
        end = (
            (
                datetime(last.year, last.month, last.day, tzinfo=self.zone) + timedelta(days=1)
            ).astimezone(UTC)
            if last
            else None
        )
        return start, end
