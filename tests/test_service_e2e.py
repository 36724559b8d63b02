"""End to end: the real service against the fakes over loopback HTTP."""

from __future__ import annotations

import re

import trio

from conftest import USER, converse, poll_until, running, scanned_past
from usdt_trio.chain.addresses import to_checksum

WALLET = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
OTHER = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"
STRANGER = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"
FRIEND = "0xd1220a0cf47c7b9be7a2e6ba89f429762e7b9adb"


DIGEST = re.compile(r"📬 (\d+) transfers while")


def entries(texts: list[str]) -> int:
    """Number of transfer notifications in messages (a grouped message holds several, a digest counts them)."""
    return sum(text.count("View on Etherscan") + sum(int(n) for n in DIGEST.findall(text)) for text in texts)


async def wait_entries(fakes, count: int, user: int = USER) -> list[str]:
    with trio.fail_after(15):
        await fakes.telegram.wait_until(
            lambda: entries([m.text for m in fakes.telegram.messages_to(user)]) >= count)
    return [m.text for m in fakes.telegram.messages_to(user)]


async def settle(service, fakes) -> None:
    """Wait until every block mined so far was scanned and the outbox is empty."""
    await scanned_past(service, fakes.chain.head)

    async def outbox_empty() -> bool:
        return not (await service.store.outbox_counts()).get("pending", 0)
    await poll_until(outbox_empty)


async def test_start_add_transfer_gives_exactly_one_message_with_exact_amount(fakes, settings_for):
    async with running(settings_for(fakes)) as service:
        [welcome] = await converse(fakes.telegram, "/start")
        assert "Welcome" in welcome
        [added] = await converse(fakes.telegram, f"/add {to_checksum(WALLET)} Savings")
        assert "Watching" in added and to_checksum(WALLET) in added
        before = len(fakes.telegram.messages_to(USER))
        fakes.chain.transfer("USDT", STRANGER, WALLET, 1_234_567_890)
        fakes.chain.mine()
        texts = await wait_entries(fakes, 1)
        await settle(service, fakes)
        new = texts[before:]
        assert len(fakes.telegram.messages_to(USER)) == before + 1
        assert "1,234.56789 USDT" in new[0]
        assert "Incoming" in new[0] and "Savings" in new[0] and to_checksum(STRANGER) in new[0]
        assert "UTC" in new[0]


async def test_no_history_flood_after_add(fakes, settings_for):
    for _ in range(5):
        fakes.chain.transfer("USDT", STRANGER, WALLET, 5_000_000)
        fakes.chain.mine()
    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {WALLET}")
        fakes.chain.mine(3)
        await settle(service, fakes)
        fakes.chain.transfer("USDC", WALLET, STRANGER, 7_000_000)
        fakes.chain.mine()
        await wait_entries(fakes, 1)
        await settle(service, fakes)
        texts = [m.text for m in fakes.telegram.messages_to(USER)]
        assert entries(texts) == 1
        assert "Outgoing" in texts[-1] and "7 USDC" in texts[-1]


async def test_exact_once_cases(fakes, settings_for):
    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {WALLET} Main")
        await converse(fakes.telegram, f"/add {OTHER} Side")
        start = len(fakes.telegram.messages_to(USER))
        # two transfers of one token in one transaction → two notifications
        tx = fakes.chain.new_tx_hash()
        fakes.chain.transfer("USDT", STRANGER, WALLET, 1_000_000, tx_hash=tx)
        fakes.chain.transfer("USDT", STRANGER, WALLET, 1_000_000, tx_hash=tx)
        fakes.chain.mine()
        await wait_entries(fakes, 2)
        await settle(service, fakes)
        # USDT and USDC in one transaction → two notifications
        tx = fakes.chain.new_tx_hash()
        fakes.chain.transfer("USDT", STRANGER, WALLET, 2_000_000, tx_hash=tx)
        fakes.chain.transfer("USDC", STRANGER, WALLET, 3_000_000, tx_hash=tx)
        fakes.chain.mine()
        await wait_entries(fakes, 4)
        await settle(service, fakes)
        # between two addresses of the same chat → one "internal" notification
        fakes.chain.transfer("USDT", WALLET, OTHER, 4_000_000)
        fakes.chain.mine()
        await wait_entries(fakes, 5)
        await settle(service, fakes)
        fakes.chain.mine(3)
        await settle(service, fakes)
        texts = [m.text for m in fakes.telegram.messages_to(USER)][start:]
        assert entries(texts) == 5
        assert sum("Internal" in t for t in texts) == 1
        assert sum("1 USDT" in t for t in texts) == 2
        assert any("2 USDT" in t for t in texts) and any("3 USDC" in t for t in texts)


async def test_one_transaction_touching_two_chats_notifies_each(fakes, settings_for):
    second_user = 2002
    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {WALLET}")
        await converse(fakes.telegram, f"/add {OTHER}", user=second_user)
        fakes.chain.transfer("USDT", WALLET, OTHER, 9_000_000)
        fakes.chain.mine()
        await wait_entries(fakes, 1)
        await wait_entries(fakes, 1, user=second_user)
        await settle(service, fakes)
        mine = [m.text for m in fakes.telegram.messages_to(USER)]
        theirs = [m.text for m in fakes.telegram.messages_to(second_user)]
        assert "Outgoing" in mine[-1] and "Incoming" in theirs[-1]
        assert entries(mine) == 1 and entries(theirs) == 1


async def test_burst_of_transfers_all_delivered_within_rate_limits(fakes, settings_for):
    """15 transfers in one block (below the digest threshold; test_sender covers the digest)."""
    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {WALLET}")
        for i in range(15):
            fakes.chain.transfer("USDT", STRANGER, WALLET, (i + 1) * 1_000_000)
        fakes.chain.mine()
        texts = await wait_entries(fakes, 15)
        await settle(service, fakes)
        body = "\n".join(texts)
        for i in range(15):
            assert f" {i + 1} USDT" in body
        assert entries(texts) == 15
        assert fakes.telegram.unhonoured_retry_after == 0
        assert fakes.telegram.max_per_chat_in_window(USER, window=3.0) <= 3


async def test_restart_during_traffic_loses_and_duplicates_nothing(fakes, settings_for):
    settings = settings_for(fakes)
    expected = 0
    async with running(settings) as service:
        await converse(fakes.telegram, f"/add {WALLET}")
    for round_ in range(4):
        async with running(settings) as service:
            for i in range(6):
                fakes.chain.transfer("USDT", STRANGER, WALLET, 1_000_000 * (round_ * 10 + i + 1))
                fakes.chain.mine()
                expected += 1
            # stop while some notifications are still queued or in flight
            with trio.move_on_after(0.3):
                await wait_entries(fakes, expected)
    async with running(settings) as service:
        fakes.chain.mine()
        texts = await wait_entries(fakes, expected)
        await settle(service, fakes)
        texts = [m.text for m in fakes.telegram.messages_to(USER)][1:]
        assert entries(texts) == expected
        assert await service.store.outbox_counts() == {"sent": expected}
        body = "\n".join(t for t in texts if not DIGEST.search(t))   # a digest lists only the latest ten
        for round_ in range(4):
            for i in range(6):
                amount = 1_000_000 * (round_ * 10 + i + 1)
                shown = f"{amount // 1_000_000}.{amount % 1_000_000:06d}".rstrip("0").rstrip(".")
                assert body.count(f" {shown} USDT") <= 1, shown


async def test_blocked_chat_does_not_delay_others(fakes, settings_for):
    blocker = 3003
    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {WALLET}", user=blocker)
        await converse(fakes.telegram, f"/add {WALLET}")
        fakes.telegram.block_bot(blocker)
        for _ in range(3):
            fakes.chain.transfer("USDC", STRANGER, WALLET, 1_000_000)
            fakes.chain.mine()
        await wait_entries(fakes, 3)
        await settle(service, fakes)
        assert await service.store.chat_active(blocker) is False
        assert entries([m.text for m in fakes.telegram.messages_to(blocker)]) == 0


async def test_per_user_throttle(fakes, settings_for):
    async with running(settings_for(fakes, RATE_LIMIT_MAX_CALLS=3, RATE_LIMIT_WINDOW_SECONDS=60)):
        for _ in range(3):
            await converse(fakes.telegram, "/help")
        [refused] = await converse(fakes.telegram, "/list")
        assert "Too many requests" in refused
        fakes.telegram.user_sends(USER, "/list")
        [other] = await converse(fakes.telegram, "/help", user=4004)
        assert "/add" in other
        assert not any("watch any" in m.text for m in fakes.telegram.messages_to(USER))


async def test_retry_after_and_network_failures_are_retried(fakes, settings_for):
    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {WALLET}")
        fakes.telegram.fail_next("sendMessage", 429, "Too Many Requests: retry after 1", {"retry_after": 1})
        fakes.telegram.reset_next("sendMessage")
        fakes.chain.transfer("USDT", STRANGER, WALLET, 3_000_000)
        fakes.chain.mine()
        texts = await wait_entries(fakes, 1)
        await settle(service, fakes)
        assert "3 USDT" in texts[-1]
        assert fakes.telegram.rejected_429 == 1
        assert fakes.telegram.unhonoured_retry_after == 0
        assert entries(texts) == 1


async def test_notifications_for_a_blocked_chat_wait_until_it_returns(fakes, settings_for):
    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {WALLET}")
        fakes.telegram.fail_next("sendMessage", 403, "Forbidden: bot was blocked by the user")
        fakes.chain.transfer("USDT", STRANGER, WALLET, 8_000_000)
        fakes.chain.mine()

        async def inactive() -> bool:
            return await service.store.chat_active(USER) is False
        await poll_until(inactive)
        assert (await service.store.outbox_counts()).get("pending") == 1  # kept, not dropped
        fakes.telegram.block_bot(USER)
        fakes.telegram.unblock_bot(USER)  # my_chat_member kicked → member reactivates the chat
        texts = await wait_entries(fakes, 1)
        await settle(service, fakes)
        assert "8 USDT" in texts[-1] and entries(texts) == 1


async def test_a_row_that_cannot_be_rendered_fails_alone(fakes, settings_for):
    from usdt_trio.chain.models import Transfer
    from usdt_trio.store.db import Delivery

    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {WALLET}")
        usdt = "0xdac17f958d2ee523a2206206994597c13d831ec7"
        bad = Transfer(1, "0xnot-a-hash", 0, 1, 1_700_000_000, usdt, STRANGER, WALLET, 1)
        checkpoint = await service.store.get_checkpoint(1)
        await service.store.commit_scan(1, checkpoint, checkpoint, lambda watched: [
            Delivery(USER, bad, "in", WALLET, STRANGER)])
        fakes.chain.transfer("USDT", STRANGER, WALLET, 6_000_000)
        fakes.chain.mine()
        texts = await wait_entries(fakes, 1)
        await settle(service, fakes)
        assert "6 USDT" in texts[-1] and entries(texts) == 1
        assert (await service.store.outbox_counts()).get("failed") == 1


async def test_reorg_sends_a_correction_and_never_repeats_a_reincluded_transfer(fakes, settings_for):
    async with running(settings_for(fakes)) as service:
        await converse(fakes.telegram, f"/add {WALLET}")
        chain = fakes.chain
        dropped, kept = chain.new_tx_hash(), chain.new_tx_hash()
        chain.transfer("USDT", STRANGER, WALLET, 5_000_000, tx_hash=dropped)
        chain.transfer("USDC", STRANGER, WALLET, 7_000_000, tx_hash=kept)
        chain.mine()
        await wait_entries(fakes, 2)
        await settle(service, fakes)
        before = len(fakes.telegram.messages_to(USER))
        chain.reorg(1, drop=[dropped])   # deeper than CONFIRMATIONS=0; `kept` is mined again at another index
        with trio.fail_after(15):
            await fakes.telegram.wait_until(lambda: len(fakes.telegram.messages_to(USER)) > before)
        chain.mine(2)
        await settle(service, fakes)
        new = [m.text for m in fakes.telegram.messages_to(USER)][before:]
        assert len(new) == 1, new
        assert "Correction" in new[0] and "5 USDT" in new[0] and "no longer on the chain" in new[0]
        assert "7 USDC" not in new[0]
