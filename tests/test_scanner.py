"""The scanner against the fake Etherscan: calls per cycle, never skipping a failed range, confirmations."""

from __future__ import annotations

import random

import pytest
import trio

from usdt_trio.errors import ChainApiError
from usdt_trio.monitor.strategy import ADDRESSES, LOGS

from conftest import STRANGER, WALLET, watch


async def test_log_scan_calls_per_cycle_do_not_grow_with_watched_addresses(fakes, scanner_for):
    rng = random.Random(1)
    calls = []
    async with scanner_for() as (scanner, store):
        await scanner.cycle()  # sets the starting checkpoint
        for watched_count in (1, 100, 2000):
            for i in range(watched_count - len(await store.watched_set(1))):
                await watch(store, 10_000 + i, f"0x{rng.getrandbits(160):040x}", fakes.chain.head)
            fakes.chain.add_noise(rng)
            fakes.chain.mine()
            report = await scanner.cycle()
            calls.append(report.api_calls)
        # a cycle that finds two new blocks also checks the previous checkpoint's hash
        fakes.chain.mine(2)
        calls.append((await scanner.cycle()).api_calls)
    # eth_blockNumber + eth_getBlockByNumber (reorg check) + one getLogs per token
    assert calls == [4, 4, 4, 5]


async def test_cheapest_strategy_is_chosen(fakes, scanner_for):
    """Few addresses over a long range → tokentx per address; many addresses → getLogs per token."""
    rng = random.Random(2)
    async with scanner_for(strategy=None, live_span=10_000) as (scanner, store):
        await scanner.cycle()
        await watch(store, 1, WALLET, fakes.chain.head)
        for _ in range(30):
            fakes.chain.add_noise(rng)
            fakes.chain.mine()
        fakes.chain.transfer("USDT", STRANGER, WALLET, 7 * 10**6)
        fakes.chain.mine()
        report = await scanner.cycle()   # 31 blocks × 55 transfers: 4 getLogs pages against 1 tokentx
        assert (report.strategy, report.enqueued) == (ADDRESSES, 1)
        for i in range(5):
            await watch(store, 100 + i, f"0x{rng.getrandbits(160):040x}", fakes.chain.head)
        fakes.chain.add_noise(rng)
        fakes.chain.mine()
        report = await scanner.cycle()   # 1 block: 2 getLogs against 6 tokentx
        assert report.strategy == LOGS
        assert report.api_calls == 4


async def test_failed_range_is_retried_not_skipped(fakes, scanner_for):
    async with scanner_for() as (scanner, store):
        await scanner.cycle()
        await watch(store, 1, WALLET, fakes.chain.head)
        fakes.chain.transfer("USDC", STRANGER, WALLET, 5 * 10**6)
        fakes.chain.mine()
        checkpoint = await store.get_checkpoint(1)
        fakes.etherscan.inject("invalid_key", action="logs.getLogs")
        with pytest.raises(ChainApiError):
            await scanner.cycle()
        assert await store.get_checkpoint(1) == checkpoint
        assert (await store.outbox_counts()).get("pending", 0) == 0
        fakes.chain.mine(2)
        report = await scanner.cycle()
        assert report.from_block == checkpoint + 1 and report.enqueued == 1


async def test_only_blocks_with_enough_confirmations_are_reported(fakes, scanner_for):
    async with scanner_for(confirmations=2) as (scanner, store):
        await scanner.cycle()
        await watch(store, 1, WALLET, fakes.chain.head)
        fakes.chain.transfer("USDT", STRANGER, WALLET, 5 * 10**6)
        block = fakes.chain.mine()
        assert (await scanner.cycle()).enqueued == 0
        fakes.chain.mine()
        assert (await scanner.cycle()).enqueued == 0
        fakes.chain.mine()
        report = await scanner.cycle()
        assert report.enqueued == 1 and report.to_block == block


async def test_large_block_ranges_are_read_completely(fakes, scanner_for):
    async with scanner_for() as (scanner, store):
        await scanner.cycle()
        await watch(store, 1, WALLET, fakes.chain.head)
        rng = random.Random(5)
        for _ in range(40):
            fakes.chain.add_noise(rng)
            fakes.chain.transfer("USDT", STRANGER, WALLET, 1 * 10**6)
            fakes.chain.mine()
        report = await scanner.cycle()
        assert report.enqueued == 40
        assert report.transfers == len(fakes.chain.transfers(report.from_block, report.to_block))


async def test_watch_added_behind_the_checkpoint_is_backfilled_once(fakes, scanner_for):
    """Blocks mined while an /add was in flight are read again for the new watch, and only for it."""
    async with scanner_for() as (scanner, store):
        await scanner.cycle()
        await watch(store, 1, WALLET, fakes.chain.head)
        added_at = fakes.chain.head
        fakes.chain.transfer("USDT", STRANGER, WALLET, 5 * 10**6)
        fakes.chain.mine(3)
        assert (await scanner.cycle()).enqueued == 1
        await watch(store, 2, WALLET, added_at)  # its head was read before that scan committed
        report = await scanner.cycle()
        assert report.from_block == added_at + 1
        assert report.enqueued == 1
        assert sorted(i.chat_id for i in await store.pending_outbox()) == [1, 2]


async def test_daily_limit_and_rejected_key_pause_the_scanner(fakes, scanner_for, monkeypatch, caplog):
    """Quota and key errors are logged as errors and followed by a pause, not hammered every cycle."""
    from usdt_trio.monitor import scanner as scanner_module

    pauses = []
    real_sleep = trio.sleep

    async def recording_sleep(seconds):
        if seconds:
            pauses.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(scanner_module.trio, "sleep", recording_sleep)
    async with scanner_for() as (scanner, _):
        fakes.etherscan.inject("daily_limit", action="proxy.eth_blockNumber")
        fakes.etherscan.inject("invalid_key", action="proxy.eth_blockNumber")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(scanner.run, 0.01)
            with trio.fail_after(10):
                await scanner.cycles.wait_value(lambda n: n >= 3)
            nursery.cancel_scope.cancel()
    assert pauses[:2] == [scanner_module.DAILY_LIMIT_PAUSE, scanner_module.KEY_REJECTED_PAUSE]
    assert "daily quota" in caplog.text and "rejected ETHERSCAN_API_KEY" in caplog.text
