"""The real Sender against the fake Bot API over loopback: digests, grouping, singles and reorg corrections."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing

from conftest import TOKEN, USER, converse, poll_until, running, scanned_past
from usdt_trio.chain.addresses import to_checksum
from usdt_trio.chain.models import Transfer
from usdt_trio.chain.tokens import ETHEREUM
from usdt_trio.store.db import AddResult, Delivery, Store, Watch, open_store
from usdt_trio.telegram.limits import ChatLimiter
from usdt_trio.telegram.render import message_length
from usdt_trio.telegram.sender import DIGEST_THRESHOLD, GROUP_THRESHOLD, Sender
from usdt_trio.telegram.transport import make_bot

USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
WALLET = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
STRANGER = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"
MARKER = "⚠️ Correction: transfer reversed by a chain reorganisation"   # as the user sees it (entities parsed)
DIGEST = re.compile(r"^📬 (\d+) transfers while notifications were delayed")
GROUP = re.compile(r"^📦 (\d+) transfers")


def transfer(i: int, value: int = 1_500_000) -> Transfer:
    return Transfer(chain_id=ETHEREUM, tx_hash=f"0x{i:064x}", log_index=0, block_number=21_000_000 + i,
                    block_time=1_796_420_414 + 12 * i, contract=USDT, sender=STRANGER, recipient=WALLET, value=value,
                    block_hash=f"0x{21_000_000 + i:064x}")


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "sender.sqlite3"


async def enqueue(store: Store, transfers: list[Transfer]) -> None:
    """Announcements for USER, committed in one transaction as the scanner does."""
    previous = await store.get_checkpoint(ETHEREUM)
    checkpoint = max([previous or 0, *(t.block_number for t in transfers)])
    added = await store.commit_scan(ETHEREUM, previous, checkpoint, lambda watched: [
        Delivery(USER, t, "in", WALLET, STRANGER) for t in transfers])
    assert added == len(transfers)


def enqueue_correction(path: Path, t: Transfer) -> None:
    """What the scanner does when a reorganisation removed an announced transfer (written to the database file)."""
    conn = sqlite3.connect(str(path))
    try:
        with conn:
            conn.execute("UPDATE transfers SET removed=1 WHERE chain_id=? AND tx_hash=? AND log_index=?", t.key)
            conn.execute("INSERT INTO outbox(chat_id, chain_id, tx_hash, log_index, kind, correction, watched, "
                         "counterparty, created_at) VALUES (?,?,?,?,'in',1,?,?,0)",
                         (USER, *t.key, WALLET, STRANGER))
    finally:
        conn.close()


def statuses(path: Path) -> dict[tuple[str, int], int]:
    """(status, correction) → rows, read from the database file."""
    conn = sqlite3.connect(str(path))
    try:
        rows = conn.execute("SELECT status, correction, COUNT(*) FROM outbox GROUP BY status, correction").fetchall()
    finally:
        conn.close()
    return {(status, correction): count for status, correction, count in rows}


@asynccontextmanager
async def prepared(fakes, tmp_path: Path) -> AsyncIterator[Store]:
    """A store where USER watches WALLET (labelled "Main"), and the fake Telegram knows USER's chat."""
    fakes.telegram.user_sends(USER, "/start")   # the chat exists for the Bot API (nobody polls in these tests)
    async with open_store(db_path(tmp_path)) as store:
        await store.upsert_chat(USER, "alice", "Alice")
        assert await store.add_watch(Watch(USER, ETHEREUM, WALLET, "Main", 0), 10) is AddResult.ADDED
        yield store


@asynccontextmanager
async def sending(fakes, store: Store) -> AsyncIterator[Sender]:
    """Run the real Sender (real Bot over one httpx client, real limits) until the block exits."""
    async with httpx.AsyncClient(timeout=10) as http, trio.open_nursery() as nursery:
        sender = Sender(store, make_bot(http, fakes.telegram_url, TOKEN), ChatLimiter())
        await nursery.start(sender.run)
        yield sender
        nursery.cancel_scope.cancel()


async def drained(store: Store) -> None:
    async def nothing_pending() -> bool:
        return not (await store.outbox_counts()).get("pending", 0)
    await poll_until(nothing_pending, timeout=30)


def texts(fakes) -> list[str]:
    """Plain text of the notifications USER received."""
    return [m.text for m in fakes.telegram.messages_to(USER)]


@pytest.mark.parametrize("count", [DIGEST_THRESHOLD, 25])
async def test_20_or_more_pending_rows_become_one_digest(fakes, tmp_path: Path, count: int) -> None:
    transfers = [transfer(i) for i in range(count)]
    async with prepared(fakes, tmp_path) as store:
        await enqueue(store, transfers)
        async with sending(fakes, store) as sender:
            await drained(store)
        [digest] = texts(fakes)
        assert DIGEST.match(digest)[1] == str(count)
        total = f"{count * 3 // 2}" + (".5" if count % 2 else "")
        assert f"Received {total} USDT · {count} transfers" in digest   # count × 1.5 USDT, exact
        assert f"Blocks 21000000–{21_000_000 + count - 1}" in digest and digest.count(" UTC") == 2
        assert f"…and {count - 10} earlier" in digest
        [sent] = fakes.telegram.messages_to(USER)
        listed = re.findall(r"/tx/(0x[0-9a-f]{64})", sent.html)
        assert listed == [t.tx_hash for t in transfers[::-1][:10]]
        assert message_length(sent.html) <= 4096
        assert sender.sent_messages == 1
        assert statuses(db_path(tmp_path)) == {("sent", 0): count}   # every row marked sent by the one message


async def test_19_pending_rows_are_grouped_not_digested(fakes, tmp_path: Path) -> None:
    async with prepared(fakes, tmp_path) as store:
        await enqueue(store, [transfer(i) for i in range(DIGEST_THRESHOLD - 1)])
        async with sending(fakes, store):
            await drained(store)
        received = texts(fakes)
        assert 1 < len(received) < DIGEST_THRESHOLD - 1
        assert all(GROUP.match(text) and not DIGEST.match(text) for text in received)
        assert sum(int(GROUP.match(text)[1]) for text in received) == DIGEST_THRESHOLD - 1
        assert sum(text.count("View on Etherscan") for text in received) == DIGEST_THRESHOLD - 1
        assert statuses(db_path(tmp_path)) == {("sent", 0): DIGEST_THRESHOLD - 1}


async def test_6_pending_rows_are_grouped_as_before(fakes, tmp_path: Path) -> None:
    async with prepared(fakes, tmp_path) as store:
        await enqueue(store, [transfer(i) for i in range(6)])
        async with sending(fakes, store):
            await drained(store)
        [grouped] = texts(fakes)
        assert GROUP.match(grouped)[1] == "6"
        assert grouped.count("View on Etherscan") == 6 and grouped.count("1.5 USDT") == 6
        assert statuses(db_path(tmp_path)) == {("sent", 0): 6}


async def test_4_pending_rows_are_sent_one_by_one(fakes, tmp_path: Path) -> None:
    async with prepared(fakes, tmp_path) as store:
        await enqueue(store, [transfer(i) for i in range(GROUP_THRESHOLD - 1)])
        async with sending(fakes, store):
            await drained(store)
        received = texts(fakes)
        assert len(received) == GROUP_THRESHOLD - 1
        assert all(text.startswith("📥 Incoming 1.5 USDT") for text in received)


async def test_correction_is_its_own_message_even_beside_a_digest(fakes, tmp_path: Path) -> None:
    announced = transfer(1000, value=7_250_000)
    path = db_path(tmp_path)
    async with prepared(fakes, tmp_path) as store:
        await enqueue(store, [announced])
        async with sending(fakes, store):      # the transfer is announced and sent
            await drained(store)
        assert texts(fakes)[0].startswith("📥 Incoming 7.25 USDT")
        # downtime: a reorganisation removed it, and 25 new transfers arrived meanwhile
        enqueue_correction(path, announced)
        await enqueue(store, [transfer(i) for i in range(25)])
        async with sending(fakes, store):
            await drained(store)
        received = texts(fakes)[1:]
        assert len(received) == 2
        correction, digest = received          # outbox order: the correction was enqueued first
        assert correction.startswith(MARKER)
        assert "7.25 USDT" in correction and "do not count these 7.25 USDT as received" in correction
        html = fakes.telegram.messages_to(USER)[1].html
        assert f'<a href="https://etherscan.io/tx/{announced.tx_hash}">' in html
        assert DIGEST.match(digest)[1] == "25" and "Correction" not in digest and "7.25" not in digest
        assert statuses(path) == {("sent", 0): 26, ("sent", 1): 1}


async def test_correction_between_grouped_rows_keeps_outbox_order(fakes, tmp_path: Path) -> None:
    announced = transfer(1000, value=7_250_000)
    path = db_path(tmp_path)
    async with prepared(fakes, tmp_path) as store:
        await enqueue(store, [announced])
        async with sending(fakes, store):
            await drained(store)
        await enqueue(store, [transfer(i) for i in range(3)])
        enqueue_correction(path, announced)
        await enqueue(store, [transfer(i) for i in range(3, 6)])
        async with sending(fakes, store):
            await drained(store)
        first, correction, second = texts(fakes)[1:]
        assert GROUP.match(first)[1] == "3" and GROUP.match(second)[1] == "3"
        assert correction.startswith(MARKER) and correction.count("View on") == 0 and "7.25 USDT" in correction
        assert "Correction" not in first + second
        assert statuses(path) == {("sent", 0): 7, ("sent", 1): 1}


async def test_a_digest_refused_with_retry_after_is_sent_again_whole(fakes, tmp_path: Path) -> None:
    async with prepared(fakes, tmp_path) as store:
        await enqueue(store, [transfer(i) for i in range(30)])
        fakes.telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", {"retry_after": 1})
        async with sending(fakes, store):
            await drained(store)
        [digest] = texts(fakes)
        assert DIGEST.match(digest)[1] == "30"
        assert fakes.telegram.rejected_429 == 1 and fakes.telegram.unhonoured_retry_after == 0
        assert statuses(db_path(tmp_path)) == {("sent", 0): 30}


async def test_service_burst_arrives_as_one_digest(fakes, settings_for) -> None:
    """End to end: a burst of 40 mined in one block reaches the chat as one digest with the exact total."""
    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {to_checksum(WALLET)}")
        before = len(texts(fakes))
        for i in range(40):
            fakes.chain.transfer("USDT", STRANGER, WALLET, (i + 1) * 1_000_000)
        fakes.chain.mine()
        await scanned_past(service, fakes.chain.head)
        await drained(service.store)
        [digest] = texts(fakes)[before:]
        assert DIGEST.match(digest)[1] == "40"
        assert "Received 820 USDT · 40 transfers" in digest   # 1 + 2 + … + 40
        assert fakes.telegram.unhonoured_retry_after == 0


# ---- limits and stalls (found by scripts/bench_delivery.py) ---------------------------------------------

async def test_time_queued_for_the_overall_pace_does_not_count_as_the_chats_gap(autojump_clock) -> None:
    """A chat's second message waited behind many other chats; its third must still come a full gap later."""
    from usdt_trio.telegram.limits import PRIVATE_INTERVAL

    limiter = ChatLimiter(messages_per_second=3)
    times: list[float] = []

    async def other(chat: int) -> None:
        await limiter.wait(chat)

    async with trio.open_nursery() as nursery:
        await limiter.wait(USER)
        times.append(trio.current_time())
        for chat in range(2, 8):          # six other chats take the next overall slots
            nursery.start_soon(other, chat)
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(2):
            await limiter.wait(USER)
            times.append(trio.current_time())
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] > PRIVATE_INTERVAL      # the second message queued behind the others
    assert min(gaps) >= PRIVATE_INTERVAL   # and the third did not follow it at once


async def test_the_overall_pace_leaves_room_for_network_jitter(autojump_clock) -> None:
    """At most 28 messages in any 1.05 s window, so jitter cannot push 31 into one of Telegram's seconds."""
    limiter = ChatLimiter()
    times: list[float] = []

    async def one(chat: int) -> None:
        await limiter.wait(chat)
        times.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        for chat in range(100):
            nursery.start_soon(one, 10_000 + chat)
    times.sort()
    assert max(sum(1 for t in times if start <= t < start + 1.05) for start in times) <= 28


async def test_a_send_that_hangs_is_given_up_and_retried(fakes, tmp_path: Path, monkeypatch) -> None:
    from usdt_trio.telegram import sender as sender_module

    monkeypatch.setattr(sender_module, "SEND_TIMEOUT", 0.5)
    fakes.telegram.stall_next("sendMessage", 60)   # the server never answers the first attempt
    async with prepared(fakes, tmp_path) as store:
        await enqueue(store, [transfer(1)])
        async with sending(fakes, store):
            with trio.fail_after(10):
                await drained(store)
    assert len(texts(fakes)) == 1
    conn = sqlite3.connect(str(db_path(tmp_path)))
    assert conn.execute("SELECT attempts, last_error FROM outbox").fetchall() == [(2, "TimedOut: no answer within 0.5s")]
    conn.close()


async def test_a_full_read_still_groups_each_chats_rows(fakes, tmp_path: Path, monkeypatch) -> None:
    """Rows of many chats interleaved: a read cut at the limit holds few of each, the worker reads the rest."""
    from usdt_trio.telegram import sender as sender_module

    monkeypatch.setattr(sender_module, "READ_LIMIT", 4)
    async with prepared(fakes, tmp_path) as store:
        await enqueue(store, [transfer(i) for i in range(GROUP_THRESHOLD + 2)])
        async with sending(fakes, store):
            await drained(store)
    [grouped] = texts(fakes)
    assert GROUP.match(grouped)[1] == str(GROUP_THRESHOLD + 2)
