"""The daily API quota: counts calls per UTC day and says how fast the rest of the day may spend."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

__all__ = ["DailyBudget", "SAFETY"]

log = logging.getLogger(__name__)
DAY = 86_400
SAFETY = 0.9      # plan to spend at most 90% of what is left, so the quota is never quite reached


class DailyBudget:
    """Calls spent today (UTC) against ``quota``; the counter resets at midnight UTC, as Etherscan's does."""

    def __init__(self, quota: int, *, clock: Callable[[], float] = time.time) -> None:
        if quota < 1:
            raise ValueError("quota must be >= 1")
        self.quota = quota
        self._clock = clock
        self._day = self.today()
        self._used = 0

    def today(self) -> int:
        """Days since the epoch, UTC."""
        return int(self._clock()) // DAY

    def _roll(self) -> None:
        day = self.today()
        if day != self._day:
            self._day, self._used = day, 0

    def restore(self, day: int, used: int) -> None:
        """Continue a count saved earlier today (ignored when it is from another day)."""
        self._roll()
        if day == self._day:
            self._used = max(self._used, used)

    def spend(self, calls: int = 1) -> None:
        self._roll()
        self._used += calls

    @property
    def used(self) -> int:
        self._roll()
        return self._used

    @property
    def day(self) -> int:
        self._roll()
        return self._day

    @property
    def remaining(self) -> int:
        return max(0, self.quota - self.used)

    def seconds_left(self) -> float:
        """Seconds until the counter resets (at least 1)."""
        return max(1.0, (self.today() + 1) * DAY - self._clock())

    def interval_for(self, calls_per_cycle: float, interval: float) -> float:
        """The cycle interval that keeps ``calls_per_cycle`` within the rest of today's quota (≥ ``interval``)."""
        if calls_per_cycle <= 0:
            return interval
        affordable = SAFETY * self.remaining / self.seconds_left()   # calls per second
        if affordable <= 0:
            return self.seconds_left()
        return max(interval, calls_per_cycle / affordable)

    def spare(self, calls_per_cycle: float, interval: float) -> int:
        """Calls that may go to catch-up now, keeping enough for live cycles until the reset."""
        reserve = calls_per_cycle * self.seconds_left() / interval
        return max(0, int(SAFETY * self.remaining - reserve))
