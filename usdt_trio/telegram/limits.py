"""Telegram's sending limits, shared by replies and notifications: per chat (1/s, groups 20/min) and overall."""

from __future__ import annotations

import trio

from ..pacing import Pacer

__all__ = ["ChatLimiter", "PRIVATE_INTERVAL", "GROUP_INTERVAL"]

PRIVATE_INTERVAL = 1.05    # ≤ 1 message/s per chat
GROUP_INTERVAL = 3.05      # ≤ 20 messages/min per group


class ChatLimiter:
    """``await wait(chat)`` before every send; ``pause(chat, s)`` after a 429 or a failure."""

    def __init__(self, messages_per_second: int = 28) -> None:
        # the margin keeps network jitter from bunching a second's messages into Telegram's next second
        self.overall = Pacer(messages_per_second, period=1.0, margin=0.05)
        self._next: dict[int, float] = {}

    @staticmethod
    def interval(chat_id: int) -> float:
        return GROUP_INTERVAL if chat_id < 0 else PRIVATE_INTERVAL

    def ready_at(self, chat_id: int) -> float:
        return self._next.get(chat_id, 0.0)

    async def wait(self, chat_id: int) -> None:
        """Wait for the chat's next slot and an overall slot, then claim the chat's.

        The chat's slot is claimed only once the overall slot is taken: time spent queued for the overall pace must
        not count towards the gap between two messages to one chat."""
        while True:
            while (ready := self.ready_at(chat_id)) > trio.current_time():
                await trio.sleep_until(ready)
            await self.overall.wait()
            if self.ready_at(chat_id) <= trio.current_time():
                break   # else a reply to this chat or a pause came in meanwhile: wait for the chat again
        self._next[chat_id] = trio.current_time() + self.interval(chat_id)

    def pause(self, chat_id: int, seconds: float) -> None:
        """Nothing goes to the chat for ``seconds``."""
        self._next[chat_id] = max(self.ready_at(chat_id), trio.current_time() + seconds)

    def paused_beyond(self, when: float) -> set[int]:
        """Chats that may not receive anything before ``when``."""
        return {chat_id for chat_id, ready in self._next.items() if ready > when}

    def forget_idle(self) -> None:
        now = trio.current_time()
        for chat_id in [c for c, t in self._next.items() if t < now]:
            del self._next[chat_id]
