"""The outbox sender: delivers pending notifications under Telegram's limits, one worker per chat."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import telegram
import trio
import trio_util
from telegram.constants import ParseMode
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError

from ..chain.tokens import token_for
from ..store.db import OutboxItem, Store
from .limits import ChatLimiter
from .spam_view import render_warning
from .render import Notification, pack_notifications, render_digest
from .transport import NO_PREVIEW, retry_after_seconds

__all__ = ["Sender", "GROUP_THRESHOLD", "DIGEST_THRESHOLD"]

log = logging.getLogger(__name__)
GROUP_THRESHOLD = 5        # a chat with this many pending notifications gets them grouped into few messages
DIGEST_THRESHOLD = 20      # ... and with this many, one digest message for all of them (corrections stay apart)
MAX_BACKOFF = 300.0
POLL_FALLBACK = 1.0        # re-read the outbox at least this often (retries whose pause ended)
READ_LIMIT = 2000          # outbox rows read per round (all chats)
CHAT_READ_LIMIT = 5000     # rows one chat's worker reads when the round's read was full
SEND_TIMEOUT = 15.0        # seconds a sendMessage may take before it is treated as a network failure

def to_notification(item: OutboxItem) -> Notification:
    t = item.transfer
    token = token_for(t.chain_id, t.contract)
    return Notification(
        kind=item.kind, chain_id=t.chain_id, token_symbol=token.symbol if token else "tokens",
        decimals=token.decimals if token else 0, value=t.value, watched=item.watched,
        watched_label=item.watched_label, counterparty=item.counterparty, counterparty_label=item.counterparty_label,
        block_number=t.block_number, block_time=t.block_time, tx_hash=t.tx_hash, correction=item.correction)


class Sender:
    """Drains the outbox. Workers per chat run concurrently, so a slow or blocked chat never delays the others."""

    def __init__(self, store: Store, bot: telegram.Bot, limiter: ChatLimiter,
                 wake: trio_util.AsyncValue[int] | None = None) -> None:
        self.store = store
        self.bot = bot
        self.limiter = limiter
        self.wake = wake if wake is not None else trio_util.AsyncValue(0)
        self._busy: set[int] = set()
        self._backoff: dict[int, float] = {}
        self.sent_messages = 0

    def notify(self) -> None:
        """Signal that new rows are in the outbox."""
        self.wake.value += 1

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                seen = self.wake.value
                skip = self._busy | self.limiter.paused_beyond(trio.current_time() + POLL_FALLBACK)
                rows = await self.store.pending_outbox(limit=READ_LIMIT, exclude_chats=skip)
                by_chat: dict[int, list[OutboxItem]] = {}
                for row in rows:
                    by_chat.setdefault(row.chat_id, []).append(row)
                for chat_id, items in by_chat.items():
                    self._busy.add(chat_id)
                    # a full read may hold only part of a chat's rows: the worker reads them all to group them
                    nursery.start_soon(self._deliver, chat_id, None if len(rows) == READ_LIMIT else items)
                with trio.move_on_after(POLL_FALLBACK):
                    await self.wake.wait_value(lambda value: value != seen)

    async def _deliver(self, chat_id: int, items: list[OutboxItem] | None) -> None:
        """Send one chat's pending rows in order (grouped or digested when there are many); stop at the first pause.

        ``items`` None: read the chat's pending rows here."""
        try:
            if items is None:
                items = await self.store.pending_outbox(limit=CHAT_READ_LIMIT, chat_id=chat_id)
            for text, batch in await self._messages(items):
                if not await self._send(chat_id, text, batch):
                    return
        finally:
            self._busy.discard(chat_id)
            self.notify()

    async def _messages(self, items: list[OutboxItem]) -> list[tuple[str, list[OutboxItem]]]:
        """Render rows into (message, rows) pairs, in outbox order; a row that cannot be rendered is failed.

        Announcements: one message each below GROUP_THRESHOLD, packed into few messages from there, and from
        DIGEST_THRESHOLD on one digest for all of them (placed where the first of them is). A correction is always
        a message of its own, in its place in outbox order.
        """
        warnings: list[tuple[str, list[OutboxItem]]] = []
        rendered: list[tuple[OutboxItem, Notification]] = []
        for item in items:
            if item.spam_score is not None:   # the chat asked for a warning instead of the notification
                t = item.transfer
                warnings.append((render_warning(item.kind, t.contract, t.value, item.watched, item.watched_label,
                                                item.counterparty, item.spam_reasons), [item]))
                continue
            notification = to_notification(item)
            try:
                pack_notifications([notification])
            except ValueError as exc:
                log.error("outbox row %d cannot be rendered: %s", item.outbox_id, exc)
                await self.store.mark_failed([item.outbox_id], f"render: {exc}")
                continue
            rendered.append((item, notification))
        announcements = [pair for pair in rendered if not pair[1].correction]
        digest: str | None = None
        if len(announcements) >= DIGEST_THRESHOLD:
            try:
                digest = render_digest([n for _, n in announcements])
            except ValueError as exc:  # not expected: every row rendered alone; fall back to grouping
                log.error("digest of %d notifications cannot be rendered: %s", len(announcements), exc)
        grouped = len(announcements) >= GROUP_THRESHOLD
        messages: list[tuple[str, list[OutboxItem]]] = []
        run: list[tuple[OutboxItem, Notification]] = []   # consecutive announcements, packed together when grouped

        def flush() -> None:
            for group in [run] if grouped else [[pair] for pair in run]:
                start = 0
                for text, held in pack_notifications([n for _, n in group]):
                    messages.append((text, [item for item, _ in group[start:start + held]]))
                    start += held
            run.clear()

        for item, notification in rendered:
            if notification.correction:
                flush()
                [(text, _)] = pack_notifications([notification])
                messages.append((text, [item]))
            elif digest is None:
                run.append((item, notification))
            elif item is announcements[0][0]:   # the digest goes where its first row is
                messages.append((digest, [pair[0] for pair in announcements]))
        flush()
        return messages + warnings

    async def _failed(self, chat_id: int, ids: list[int], kind: str, message: str) -> bool:
        """A transient failure: count the attempt and pause the chat with exponential backoff."""
        backoff = min(self._backoff.get(chat_id, 0.5) * 2, MAX_BACKOFF)
        self._backoff[chat_id] = backoff
        log.warning("chat %d: send failed (%s: %s), retrying in %.1fs", chat_id, kind, message, backoff)
        await self.store.record_attempt(ids, f"{kind}: {message}")
        self.limiter.pause(chat_id, backoff)
        return False

    async def _send(self, chat_id: int, text: str, batch: Sequence[OutboxItem]) -> bool:
        """True when the batch is settled (sent or failed for good); False when the chat must pause."""
        ids = [item.outbox_id for item in batch]
        await self.limiter.wait(chat_id)
        try:
            with trio.fail_after(SEND_TIMEOUT):
                await self.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW)
        except trio.TooSlowError:
            # Telegram may have accepted it (the one duplicate window, see README); retried after a backoff
            return await self._failed(chat_id, ids, "TimedOut", f"no answer within {SEND_TIMEOUT:g}s")
        except RetryAfter as exc:
            wait = retry_after_seconds(exc) + 0.25
            log.info("chat %d: flood control, retrying in %.1fs", chat_id, wait)
            self.limiter.pause(chat_id, wait)
            return False
        except Forbidden as exc:
            log.info("chat %d: %s; marked inactive, %d notifications kept", chat_id, exc.message, len(ids))
            await self.store.set_chat_active(chat_id, False)
            return False
        except (BadRequest, ChatMigrated) as exc:
            log.error("chat %d: Telegram rejected %d notifications for good: %s", chat_id, len(ids), exc.message)
            await self.store.mark_failed(ids, exc.message)
            return True
        except InvalidToken:
            raise
        except (NetworkError, TelegramError) as exc:
            return await self._failed(chat_id, ids, type(exc).__name__, exc.message)
        self._backoff.pop(chat_id, None)
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            await self.store.mark_sent(ids)  # Telegram accepted it: record that even while shutting down
        self.sent_messages += 1
        return True
