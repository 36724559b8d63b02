"""Delivery throughput: notifications for many chats through the real sender into the fake Telegram.

What runs: the real service (``usdt_trio.app.run_service``: scanner, sender, poller, one httpx client, one SQLite
database in a temporary directory) against the in-process fakes over loopback HTTP — a SimChain behind a
FakeEtherscan (rate limit 1000/s, so the chain side is never the bottleneck; CONFIRMATIONS=0,
CHECK_INTERVAL_SECONDS=0.05) and a FakeTelegram, which enforces Telegram's limits (per private chat a token
bucket of 3 refilled at 1/s, 30/s overall) and answers 429 with ``retry_after``.

Set-up (not timed): every chat is inserted with its own watched address through the Store API (upsert_chat,
add_watch), and made known to the fake Telegram with ``FakeTelegram.unblock_bot`` — a ``my_chat_member`` update
that registers the private chat in the fake and that the poller handles without replying, so no command replies
mix with the notifications. Notification *n* is a USDT or USDC transfer (alternating) from a stranger to the
address of chat ``n % chats``, queued with ``SimChain.transfer_many`` and mined in blocks of 250 transfers.

Modes:
- default ("waves"): the notifications are enqueued in waves of one notification per chat (``--chats`` per wave).
  The next wave is mined as soon as the previous one is drained (no pending outbox row left). Continuous enqueueing
  would let a chat collect 5+ pending rows, which the sender groups into one message; draining first keeps every
  notification its own message, so the figure is the sender's sustained *message* throughput. The short gaps
  between waves (drain detection, next scan) are inside the measured time, so they count against the result.
- ``--burst``: all notifications are mined at once (same round-robin order, one scan cycle) — measures how the
  sender groups a backlog; messages are then fewer than notifications.

Figures: messages accepted by the fake divided by the time from the first to the last accepted message
(sustained messages/s), notifications/s over the same span, totals, 429s the fake sent, 429s left unhonoured
(a chat written to again before its ``retry_after`` ended), the most messages one chat received within any 1 s,
the busiest 1 s overall, the longest pause between two accepted messages (a stall shows there), and wall times. Targets (PASS/MISS): >= 25 messages/s sustained, <= 1 message/s per chat,
no 429 left unhonoured. The overall pace is the sender's (usdt_trio/telegram/limits.py, ChatLimiter: 28/s), so
10,000 one-notification messages take at least ~360 s.

Usage:
    .venv/bin/python scripts/bench_delivery.py                      # 1,000 chats, 10,000 notifications, waves
    .venv/bin/python scripts/bench_delivery.py --burst              # all 10,000 at once (grouping)
    .venv/bin/python scripts/bench_delivery.py --chats 100 --notifications 1000   # quick run
"""

from __future__ import annotations

import argparse
import logging
import random
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from usdt_trio.app import Service, run_service
from usdt_trio.chain.tokens import ETHEREUM, TOKENS_BY_CHAIN
from usdt_trio.config import Settings
from usdt_trio.logs import setup_logging
from usdt_trio.store.db import Store, Watch
from usdt_trio.testing.chain import SimChain
from usdt_trio.testing.fake_etherscan import FakeEtherscan
from usdt_trio.testing.fake_telegram import FakeTelegram, SentMessage
from usdt_trio.testing.http_server import serve_http

TOKEN = "1:bench-delivery"
KEY = "bench-delivery-key"
FIRST_CHAT = 500_000
STRANGER = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"
TRANSFERS_PER_BLOCK = 250
CHECK_INTERVAL = 0.05
DRAIN_POLL = 0.05            # seconds between outbox checks while waiting for a wave to drain
SETUP_TIMEOUT = 300.0
UNLIMITED_QUOTA = 10**9      # ETHERSCAN_DAILY_QUOTA: keep the daily budget from slowing the 0.05 s cycles
TARGET_MESSAGES_PER_SECOND = 25.0
TARGET_MAX_PER_CHAT = 1      # messages to one chat within any 1 s window


@dataclass(frozen=True)
class Plan:
    """Which chat each notification goes to, and how the notifications are grouped into enqueue batches."""

    chats: int
    notifications: int
    burst: bool

    def batches(self) -> list[range]:
        """Notification indexes per enqueue step: waves of one per chat, or everything at once."""
        size = self.notifications if self.burst else self.chats
        return [range(start, min(start + size, self.notifications)) for start in range(0, self.notifications, size)]

    def chat_of(self, n: int) -> int:
        return FIRST_CHAT + n % self.chats


@dataclass
class Results:
    setup_seconds: float
    wall_seconds: float
    wave_seconds: list[float]
    messages: list[SentMessage]
    delivered: int
    failed: int
    rejected_429: int
    unhonoured_429: int
    max_per_chat_1s: int
    sender_messages: int


def address_of(chat_id: int) -> str:
    """A deterministic lowercase address for each chat."""
    return "0x" + random.Random(chat_id).getrandbits(160).to_bytes(20, "big").hex()


async def register_chats(service: Service, telegram: FakeTelegram, chain: SimChain, plan: Plan) -> None:
    """Chats and watches through the Store API; the fake Telegram learns each chat from a my_chat_member update."""
    store = service.store
    for i in range(plan.chats):
        chat_id = FIRST_CHAT + i
        await store.upsert_chat(chat_id, None, f"User{i}")
        await store.add_watch(Watch(chat_id, ETHEREUM, address_of(chat_id), None, chain.head), 1)
        telegram.unblock_bot(chat_id)   # registers the private chat in the fake; the poller does not reply
    with trio.fail_after(SETUP_TIMEOUT):
        await telegram.wait_until(lambda: telegram.pending_updates == 0)


def enqueue(chain: SimChain, plan: Plan, batch: range) -> None:
    """Queue one transfer per notification and mine them, TRANSFERS_PER_BLOCK per block (synchronously)."""
    contracts = [token.contract for token in TOKENS_BY_CHAIN[ETHEREUM]]
    rng = random.Random(batch.start)
    rows = [(contracts[n % len(contracts)], STRANGER, address_of(plan.chat_of(n)), rng.randrange(1, 10**12))
            for n in batch]
    for start in range(0, len(rows), TRANSFERS_PER_BLOCK):
        chain.transfer_many(rows[start:start + TRANSFERS_PER_BLOCK])
        chain.mine()


async def drained(store: Store, enqueued: int, deadline: float) -> tuple[int, int]:
    """Wait until the scanner has written ``enqueued`` outbox rows and none is pending; returns (sent, failed)."""
    with trio.fail_after(deadline):
        while True:
            counts = await store.outbox_counts()
            if sum(counts.values()) >= enqueued and counts.get("pending", 0) == 0:
                return counts.get("sent", 0), counts.get("failed", 0)
            await trio.sleep(DRAIN_POLL)


def longest_gap(messages: Sequence[SentMessage]) -> float:
    """Longest time between two consecutive accepted messages (a stall shows here)."""
    return max((b.at - a.at for a, b in zip(messages, messages[1:])), default=0.0)


def busiest_second(messages: Sequence[SentMessage]) -> int:
    """Most messages (all chats together) accepted within any 1 s window."""
    window: deque[float] = deque()
    best = 0
    for m in messages:
        window.append(m.at)
        while m.at - window[0] >= 1.0:
            window.popleft()
        best = max(best, len(window))
    return best


async def bench(plan: Plan) -> Results:
    chain = SimChain(start_time=int(time.time()))
    etherscan = FakeEtherscan(chain, api_keys=[KEY], rate_limit=1000)
    telegram = FakeTelegram(TOKEN)
    with tempfile.TemporaryDirectory(prefix="bench-delivery-") as tmp:
        async with trio.open_nursery() as nursery:
            eth_url = await nursery.start(serve_http, etherscan.handle)
            tg_url = await nursery.start(serve_http, telegram.handle)
            settings = Settings(_env_file=None, TELEGRAM_BOT_TOKEN=TOKEN, ETHERSCAN_API_KEY=KEY,
                                ETHERSCAN_BASE_URL=f"{eth_url}/v2/api", TELEGRAM_API_URL=tg_url,
                                DB_PATH=Path(tmp) / "bench.sqlite3", CHECK_INTERVAL_SECONDS=CHECK_INTERVAL,
                                CONFIRMATIONS=0, ETHERSCAN_RATE_LIMIT=1000, ETHERSCAN_MAX_CONCURRENCY=3,
                                ETHERSCAN_DAILY_QUOTA=UNLIMITED_QUOTA)
            service: Service = await nursery.start(partial(run_service, settings, handle_signals=False))

            setup_started = trio.current_time()
            await register_chats(service, telegram, chain, plan)
            setup_seconds = trio.current_time() - setup_started
            print(f"set-up: {plan.chats} chats and watches registered in {setup_seconds:.1f}s", flush=True)

            first_message = len(telegram.sent)
            enqueued = sent = failed = 0
            wave_seconds: list[float] = []
            started = trio.current_time()
            batches = plan.batches()
            for number, batch in enumerate(batches, 1):
                wave_started = trio.current_time()
                before = len(telegram.sent)
                enqueue(chain, plan, batch)
                enqueued += len(batch)
                # generous deadline: the sender's pace is ~28 messages/s
                sent, failed = await drained(service.store, enqueued, 120.0 + len(batch) / 5)
                wave_seconds.append(trio.current_time() - wave_started)
                label = "burst" if plan.burst else f"wave {number}/{len(batches)}"
                print(f"{label}: {len(batch)} notifications -> {len(telegram.sent) - before} messages "
                      f"in {wave_seconds[-1]:.1f}s (outbox: {sent} sent, {failed} failed)", flush=True)
            wall_seconds = trio.current_time() - started
            results = Results(
                setup_seconds=setup_seconds, wall_seconds=wall_seconds, wave_seconds=wave_seconds,
                messages=telegram.sent[first_message:], delivered=sent, failed=failed,
                rejected_429=telegram.rejected_429, unhonoured_429=telegram.unhonoured_retry_after,
                max_per_chat_1s=telegram.max_per_chat_in_window(window=1.0),
                sender_messages=service.sender.sent_messages)
            nursery.cancel_scope.cancel()
    return results


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(plan: Plan, r: Results) -> None:
    mode = "burst (all at once)" if plan.burst else f"waves of {plan.chats} (one notification per chat)"
    span = r.messages[-1].at - r.messages[0].at if len(r.messages) > 1 else 0.0
    per_second = len(r.messages) / span if span > 0 else 0.0
    notifications_per_second = r.delivered / span if span > 0 else 0.0
    print()
    print(f"mode: {mode}; chats: {plan.chats}; notifications: {plan.notifications}")
    print(f"wall time: {r.wall_seconds:.1f}s from first enqueue to drained outbox "
          f"(set-up {r.setup_seconds:.1f}s not included)")
    print(f"first to last accepted message: {span:.1f}s")
    print(f"messages accepted by the fake: {len(r.messages)} (sender counted {r.sender_messages})")
    print(f"notifications delivered: {r.delivered}/{plan.notifications}, failed: {r.failed}")
    print(f"sustained throughput: {per_second:.2f} messages/s, {notifications_per_second:.2f} notifications/s")
    print(f"busiest 1 s overall: {busiest_second(r.messages)} messages (fake's global limit: 30); "
          f"longest pause between accepted messages: {longest_gap(r.messages):.2f}s")
    print(f"429s received: {r.rejected_429}; 429s left unhonoured: {r.unhonoured_429}")
    print(f"most messages to one chat within 1 s: {r.max_per_chat_1s}")
    print()
    print(f"{verdict(per_second >= TARGET_MESSAGES_PER_SECOND)}  sustained >= {TARGET_MESSAGES_PER_SECOND:.0f} "
          f"messages/s ({per_second:.2f})")
    print(f"{verdict(r.max_per_chat_1s <= TARGET_MAX_PER_CHAT)}  never above {TARGET_MAX_PER_CHAT} message/s per "
          f"chat (max {r.max_per_chat_1s} within 1 s)")
    print(f"{verdict(r.unhonoured_429 == 0)}  no 429 left unhonoured ({r.unhonoured_429})")
    print(f"{verdict(r.delivered == plan.notifications and r.failed == 0)}  every notification delivered "
          f"({r.delivered}/{plan.notifications})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=1000, help="chats, each watching one address (default 1000)")
    parser.add_argument("--notifications", type=int, default=10_000, help="notifications in total (default 10000)")
    parser.add_argument("--burst", action="store_true", help="enqueue every notification at once (grouping)")
    parser.add_argument("--verbose", action="store_true", help="log the service at INFO (default: warnings only)")
    args = parser.parse_args()
    if args.chats < 1 or args.notifications < 1:
        parser.error("--chats and --notifications must be >= 1")
    setup_logging(False)
    if not args.verbose:
        logging.getLogger().setLevel(logging.WARNING)
    plan = Plan(args.chats, args.notifications, args.burst)
    report(plan, trio.run(bench, plan))


if __name__ == "__main__":
    main()
