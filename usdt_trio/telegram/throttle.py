"""Per-user sliding-window command throttle (RATE_LIMIT_MAX_CALLS per RATE_LIMIT_WINDOW_SECONDS)."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

__all__ = ["Throttle"]


class Throttle:
    """``check(user)`` → 0 when allowed (and counted), else seconds until the next command is allowed."""

    def __init__(self, max_calls: int, window: float, clock: Callable[[], float] = trio.current_time) -> None:
        self.max_calls = max_calls
        self.window = window
        self._clock = clock
        self._calls: dict[int, deque[float]] = {}
        self._warned: set[int] = set()

    def check(self, user_id: int) -> float:
        now = self._clock()
        calls = self._calls.setdefault(user_id, deque())
        while calls and calls[0] <= now - self.window:
            calls.popleft()
        if len(calls) < self.max_calls:
            calls.append(now)
            self._warned.discard(user_id)
            return 0.0
        return calls[0] + self.window - now

    def should_warn(self, user_id: int) -> bool:
        """True once per throttled stretch, so the bot does not answer every refused message."""
        if user_id in self._warned:
            return False
        self._warned.add(user_id)
        return True

    def forget_idle(self) -> None:
        """Drop users with no call in the window (keeps memory flat)."""
        cutoff = self._clock() - self.window
        for user_id in [u for u, calls in self._calls.items() if not calls or calls[-1] <= cutoff]:
            del self._calls[user_id]
            self._warned.discard(user_id)
