"""A pacer that keeps calls under N per second (sliding window), shared by every task using one API key."""

from __future__ import annotations

from collections import deque

import trio

__all__ = ["Pacer"]


class Pacer:
    """Admit at most ``rate`` calls in any ``period`` (plus a small margin for network jitter)."""

    def __init__(self, rate: int, period: float = 1.0, margin: float = 0.05) -> None:
        if rate < 1:
            raise ValueError("rate must be >= 1")
        self.rate = rate
        self.period = period + margin
        self._starts: deque[float] = deque(maxlen=rate)
        self._lock = trio.Lock()
        self.calls = 0
        self._penalty_until = 0.0

    async def wait(self) -> None:
        """Wait for a free slot, then take it."""
        async with self._lock:
            now = trio.current_time()
            ready = max(self._penalty_until, self._starts[0] + self.period if len(self._starts) == self.rate else now)
            if ready > now:
                await trio.sleep_until(ready)
            self._starts.append(trio.current_time())
            self.calls += 1

    def penalize(self, seconds: float) -> None:
        """After a rate-limit answer, admit nothing for ``seconds``."""
        self._penalty_until = max(self._penalty_until, trio.current_time() + seconds)
