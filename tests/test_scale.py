"""Issue 3 behaviours of the scanner: both strategies agree, catch-up, reorg corrections, budget, watched set."""

from __future__ import annotations

import random
import sqlite3
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import STRANGER, WALLET, watch
from usdt_trio.budget import DailyBudget
from usdt_trio.chain.models import Transfer
from usdt_trio.monitor.matching import match_transfers
from usdt_trio.monitor.strategy import ADDRESSES, LOGS
from usdt_trio.store.watched import WatchedSet, WatchRef
from usdt_trio.testing.chain import SimChain

OTHER = "0x1111111111111111111111111111111111111111"


def _random_traffic(chain: SimChain, rng: random.Random, watched: list[str], blocks: int) -> None:
    """Noise plus awkward transfers of the watched addresses: same-content logs in one tx, self-sends, zeros."""
    for _ in range(blocks):
        chain.add_noise(rng, usdt=rng.randrange(0, 60), usdc=rng.randrange(0, 20))
        for _ in range(rng.randrange(0, 4)):
            a, b = rng.choice(watched), rng.choice([*watched, STRANGER, OTHER])
            tx = chain.new_tx_hash()
            value = rng.choice([0, 1, 10**6, rng.randrange(10**12)])
            for _ in range(rng.randrange(1, 3)):   # identical logs in one transaction
                chain.transfer(rng.choice(["USDT", "USDC"]), *rng.sample([a, b], 2) if a != b else (a, a),
                               value, tx_hash=tx)
        chain.mine()


@pytest.mark.parametrize("log_index_in_tokentx", [True, False])
async def test_both_strategies_return_identical_transfer_sets(fakes, scanner_for, log_index_in_tokentx):
    fakes.etherscan.tokentx_log_index = log_index_in_tokentx
    rng = random.Random(7 + log_index_in_tokentx)
    watched = [f"0x{rng.getrandbits(160):040x}" for _ in range(6)] + [WALLET]
    start = fakes.chain.head + 1
    _random_traffic(fakes.chain, rng, watched, 40)
    async with scanner_for() as (scanner, _):
        by_logs = await scanner.fetch_logs(start, fakes.chain.head)
        by_address = await scanner.fetch_by_address(watched, start, fakes.chain.head)
    relevant = [t for t in by_logs if t.sender in watched or t.recipient in watched]
    assert len(relevant) > 50
    assert set(by_address) - set(relevant) == set() and set(relevant) - set(by_address) == set()
    assert by_address == relevant            # same transfers, same identities, same order, same block hashes
    assert len({t.key for t in by_address}) == len(by_address)


async def test_auto_strategy_notifies_the_same_as_log_scan(fakes, scanner_for):
    """Whole cycles over the same blocks: a store fed by the cheapest strategy gets the outbox log-scan gives."""
    rng = random.Random(11)
    watched = [WALLET, OTHER]
    start = fakes.chain.head
    _random_traffic(fakes.chain, rng, watched, 25)
    outcomes = {}
    for strategy in (LOGS, None):
        async with scanner_for(strategy=strategy, live_span=10_000, db=f"{strategy}.sqlite3") as (scanner, store):
            await store.commit_scan(1, None, start, lambda watched: ())
            for chat, address in enumerate(watched, start=1):
                await watch(store, chat, address, start)
            report = await scanner.cycle()
            rows = await store.pending_outbox(limit=10_000)
            outcomes[strategy] = (report.strategy, sorted(((r.chat_id, r.transfer.key, r.kind, r.transfer) for r in rows), key=lambda x: x[:3]))
    assert (outcomes[LOGS][0], outcomes[None][0]) == (LOGS, ADDRESSES)
    assert len(outcomes[LOGS][1]) > 20
    assert outcomes[None][1] == outcomes[LOGS][1]


# ---- catch-up ---------------------------------------------------------------------------------------------

async def test_catch_up_serves_new_blocks_first_and_reads_the_backlog_in_chunks(fakes, scanner_for):
    async with scanner_for(live_span=4, rate=1, interval=10) as (scanner, store):
        await scanner.cycle()
        await watch(store, 1, WALLET, fakes.chain.head)
        rng = random.Random(3)
        for i in range(120):   # downtime: 120 blocks, one payment to the wallet in each
            fakes.chain.add_noise(rng)
            fakes.chain.transfer("USDT", STRANGER, WALLET, (1000 + i) * 10**6)
            fakes.chain.mine()
        first = await scanner.cycle()
        assert first.to_block == fakes.chain.head          # the newest blocks are served at once
        assert first.backlog > 0 and first.lag == 0
        reports = [first]
        while reports[-1].backlog:
            fakes.chain.transfer("USDC", STRANGER, WALLET, 10**6)   # life goes on during catch-up
            fakes.chain.mine()
            reports.append(await scanner.cycle())
            assert reports[-1].to_block == fakes.chain.head
            assert len(reports) < 60
        assert len(reports) >= 3                            # the backlog took several budgeted chunks
        assert max(r.api_calls for r in reports) <= 1 * 10  # never more than the rate allows in one cycle
        rows = await store.pending_outbox(limit=10_000)
        values = sorted(r.transfer.value for r in rows)
        assert values == sorted([(1000 + i) * 10**6 for i in range(120)] + [10**6] * (len(reports) - 1))
        assert len({r.transfer.key for r in rows}) == len(rows)


async def test_catch_up_by_address_walks_the_addresses_in_batches(fakes, scanner_for):
    """Few addresses, long backlog: tokentx per address, a few addresses per cycle, each transfer once."""
    rng = random.Random(9)
    watched = sorted(f"0x{rng.getrandbits(160):040x}" for _ in range(7))
    async with scanner_for(strategy=None, live_span=4, rate=1, interval=16) as (scanner, store):
        await scanner.cycle()
        for chat, address in enumerate(watched, start=1):
            await watch(store, chat, address, fakes.chain.head)
        for i in range(150):
            fakes.chain.add_noise(rng)
            fakes.chain.transfer("USDC", STRANGER, watched[i % 7], (1 + i) * 10**6)
            fakes.chain.mine()
        reports = [await scanner.cycle()]
        while reports[-1].backlog:
            reports.append(await scanner.cycle())
            assert len(reports) < 20
        walked = [r.catch_up for r in reports if r.catch_up and "addresses" in r.catch_up]
        assert len(walked) >= 2, [r.catch_up for r in reports]   # more than one batch
        tokentx = [p["address"] for _, action, p in fakes.etherscan.log if action == "account.tokentx"]
        assert sorted(tokentx) == watched                          # each address read once for the backlog
        rows = await store.pending_outbox(limit=1000)
        assert sorted(r.transfer.value for r in rows) == [i * 10**6 for i in range(1, 151)]


async def test_catch_up_skips_blocks_older_than_the_age_limit_unread(fakes, scanner_for, tmp_path):
    now = int(time.time())
    history = SimChain(start_block=1_000, start_time=now - 3 * 86400)   # 3 days of history at 12 s a block
    fakes.etherscan.chain = history
    history.transfer("USDT", STRANGER, WALLET, 111 * 10**6)          # 3 days old
    history.mine()
    blocks = (now - history.block_time(history.head)) // 12 - 30
    history.mine(blocks - 20)
    history.transfer("USDT", STRANGER, WALLET, 222 * 10**6)          # about 10 minutes old
    history.mine(20)
    async with scanner_for(max_age_days=1, live_span=8) as (scanner, store):
        await store.upsert_chat(1, None, None)
        await watch(store, 1, WALLET, 1_000)
        await store.commit_scan(1, None, 1_000, lambda watched: ())
        reports = [await scanner.cycle()]
        while reports[-1].backlog:
            reports.append(await scanner.cycle())
            assert len(reports) < 30
        skipped = [r.catch_up for r in reports if r.catch_up and "too old" in r.catch_up]
        assert skipped, [r.catch_up for r in reports]
        getlogs = [p for _, action, p in fakes.etherscan.log if action == "logs.getLogs"]
        assert min(int(p["fromBlock"]) for p in getlogs) > history.head - 2 * 7200   # two days unread
        rows = await store.pending_outbox()
        assert [r.transfer.value for r in rows] == [222 * 10**6]


# ---- reorganisations ----------------------------------------------------------------------------------------

def query(tmp_path, sql: str, *args) -> list[tuple]:
    conn = sqlite3.connect(str(tmp_path / "db.sqlite3"))
    try:
        return conn.execute(sql, args).fetchall()
    finally:
        conn.close()


async def test_reorg_deeper_than_confirmations_corrects_what_was_announced(fakes, scanner_for, tmp_path):
    async with scanner_for() as (scanner, store):
        await scanner.cycle()
        await watch(store, 1, WALLET, fakes.chain.head)
        await watch(store, 2, WALLET, fakes.chain.head)
        chain = fakes.chain
        kept_tx, dropped_tx = chain.new_tx_hash(), chain.new_tx_hash()
        chain.add_noise(random.Random(1))
        chain.transfer("USDT", STRANGER, WALLET, 5_000_000, tx_hash=dropped_tx)
        chain.transfer("USDC", STRANGER, WALLET, 7_000_000, tx_hash=kept_tx)
        chain.mine()
        chain.mine()
        assert (await scanner.cycle()).enqueued == 4
        announced = await store.pending_outbox()
        await store.mark_sent([r.outbox_id for r in announced])   # both chats were told
        old_key = next(r.transfer.key for r in announced if r.transfer.tx_hash == kept_tx)

        chain.reorg(2, drop=[dropped_tx])   # deeper than CONFIRMATIONS=0; kept_tx is re-included elsewhere
        report = await scanner.cycle()
        assert report.reorg.removed == 1 and report.reorg.corrections == 2 and report.reorg.relocated == 1
        pending = await store.pending_outbox()
        assert sorted((r.chat_id, r.correction, r.transfer.tx_hash, r.transfer.value) for r in pending) == [
            (1, True, dropped_tx, 5_000_000), (2, True, dropped_tx, 5_000_000)]
        # the re-included transfer keeps its single announcement, now pointing at its new place
        new = [t for t in chain.transfers(0, chain.head) if t.tx_hash == kept_tx][0]
        assert new.log_index != old_key[2]
        moved = query(tmp_path, "SELECT log_index, status FROM outbox WHERE tx_hash=?", kept_tx)
        assert moved == [(new.log_index, "sent"), (new.log_index, "sent")]
        assert query(tmp_path, "SELECT block_number, log_index, block_hash FROM transfers WHERE tx_hash=?",
                     kept_tx) == [(new.block_number, new.log_index, new.block_hash)]

        # nothing is announced or corrected twice on later cycles
        chain.mine()
        later = await scanner.cycle()
        assert later.enqueued == 0 and not later.reorg


async def one_payment_scanned(fakes, scanner, store) -> str:
    """Chat 1 watches WALLET; one 9 USDT payment to it is mined and enqueued; returns its tx hash."""
    await scanner.cycle()
    await watch(store, 1, WALLET, fakes.chain.head)
    tx = fakes.chain.new_tx_hash()
    fakes.chain.transfer("USDT", STRANGER, WALLET, 9 * 10**6, tx_hash=tx)
    fakes.chain.mine()
    assert (await scanner.cycle()).enqueued == 1
    return tx


async def test_reorg_before_sending_withdraws_the_notification_quietly(fakes, scanner_for):
    async with scanner_for() as (scanner, store):
        tx = await one_payment_scanned(fakes, scanner, store)
        fakes.chain.reorg(1, drop=[tx])
        report = await scanner.cycle()
        assert (report.reorg.cancelled, report.reorg.corrections) == (1, 0)
        assert await store.pending_outbox() == []


async def test_removed_transfer_that_comes_back_is_announced_again(fakes, scanner_for):
    async with scanner_for() as (scanner, store):
        tx = await one_payment_scanned(fakes, scanner, store)
        await store.mark_sent([r.outbox_id for r in await store.pending_outbox()])
        fakes.chain.reorg(1, drop=[tx])
        await scanner.cycle()
        await store.mark_sent([r.outbox_id for r in await store.pending_outbox()])   # the correction went out
        fakes.chain.transfer("USDT", STRANGER, WALLET, 9 * 10**6, tx_hash=tx)   # the same transaction mined again
        fakes.chain.mine()
        report = await scanner.cycle()
        assert report.reorg.reinstated == 1
        pending = await store.pending_outbox()
        assert [(r.correction, r.transfer.value) for r in pending] == [(False, 9 * 10**6)]


# ---- budget -----------------------------------------------------------------------------------------------

def test_budget_counts_per_utc_day_and_slows_before_the_quota():
    clock = [86400 * 20_000 + 43_200.0]   # noon UTC
    budget = DailyBudget(100_000, clock=lambda: clock[0])
    assert budget.interval_for(4, 12) == 12                      # 4 per 12 s all day is ~28,800
    budget.spend(90_000)
    slowed = budget.interval_for(4, 12)                          # 9,000 × 0.9 left for 43,200 s
    assert slowed == pytest.approx(4 / (0.9 * 10_000 / 43_200))
    assert slowed > 12
    assert budget.spare(4, 12) == 0                              # no catch-up when live cycles need it all
    budget.restore(budget.day, 95_000)
    assert budget.used == 95_000
    clock[0] += 43_200                                           # midnight UTC: a new day
    assert budget.used == 0 and budget.interval_for(4, 12) == 12
    budget.restore(budget.day - 1, 50_000)                       # yesterday's count is ignored
    assert budget.used == 0


async def test_scanner_slows_its_cycle_and_says_why(fakes, scanner_for, caplog):
    clock = [86400 * 20_000 + 80_000.0]
    budget = DailyBudget(1_000, clock=lambda: clock[0])
    budget.spend(990)
    async with scanner_for(budget=budget) as (scanner, _):
        await scanner.cycle()
        fakes.chain.mine()
        await scanner.cycle()
        assert budget.used == 990 + scanner.client.calls
        delay = scanner._budget_delay(12)
    assert delay > 0
    assert "Etherscan budget" in caplog.text and "slowed" in caplog.text


# ---- the watched set ----------------------------------------------------------------------------------------

def test_watched_set_changes_and_compares_as_a_mapping():
    watched = WatchedSet()
    watched.add(WALLET, 1, 10)
    watched.add(WALLET, 2, 20)
    watched.add(OTHER, 1, 5)
    assert watched == {WALLET: [WatchRef(1, 10), WatchRef(2, 20)], OTHER: [WatchRef(1, 5)]}
    watched.set_active(1, False)
    assert watched == {WALLET: [WatchRef(2, 20)]}
    assert watched.get(OTHER) is None and watched.addresses_before(100) == [WALLET]
    watched.set_active(1, True)
    watched.remove(WALLET, 2)
    assert watched == {WALLET: [WatchRef(1, 10)], OTHER: [WatchRef(1, 5)]}
    assert watched.addresses_before(6) == [OTHER]


def test_watched_set_is_compact_and_lookups_do_not_depend_on_its_size():
    rng = random.Random(4)
    addresses = [f"0x{rng.getrandbits(160):040x}" for _ in range(100_000)]
    tracemalloc.start()
    watched = WatchedSet()
    for i, address in enumerate(addresses):
        watched.add(address, 10_000 + i, 19_000_000)
    size, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert size < 20_000_000   # under 200 bytes per watched address

    class Counting(dict):
        lookups = 0

        def get(self, key, default=None):
            Counting.lookups += 1
            return watched.get(key, default)

    transfers = [Transfer(1, f"0x{i:064x}", 0, 19_000_001, 0, "0xc", addresses[i] if i % 10 == 0 else OTHER,
                          STRANGER, 1) for i in range(55)]
    result = match_transfers(transfers, Counting(), 0)
    assert len(result.deliveries) == 6
    assert Counting.lookups == 2 * len(transfers)   # two lookups per transfer, whatever the watched count


@settings(max_examples=50, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([WALLET, OTHER, STRANGER]), st.integers(1, 5), st.booleans(),
                          st.integers(0, 2**40)), max_size=30))
def test_watched_set_agrees_with_a_plain_dict(operations):
    watched, model = WatchedSet(), {}
    for address, chat, add, start in operations:
        if add:
            watched.add(address, chat, start)
            model.setdefault(address, {})[chat] = start
        else:
            watched.remove(address, chat)
            model.get(address, {}).pop(chat, None)
    expected = {a: [WatchRef(c, s) for c, s in chats.items()] for a, chats in model.items() if chats}
    assert {a: sorted(refs, key=lambda r: (r.chat_id, r.start_block)) for a, refs in watched.items()} == {
        a: sorted(refs, key=lambda r: (r.chat_id, r.start_block)) for a, refs in expected.items()}


def test_old_outbox_rows_survive_the_upgrade(tmp_path):
    """A schema-2 database (issue 2's) keeps its outbox rows; they become announcements (correction=0)."""
    from importlib import resources

    import trio

    from usdt_trio.store.db import open_store

    path = tmp_path / "v2.sqlite3"
    conn = sqlite3.connect(str(path))
    conn.executescript(resources.files("usdt_trio.store").joinpath("migrations/0001_initial.sql").read_text())
    conn.execute("PRAGMA user_version=2")
    conn.execute("INSERT INTO outbox(chat_id, chain_id, tx_hash, log_index, kind, watched, counterparty, status, "
                 "created_at) VALUES (1, 1, '0xab', 3, 'in', ?, ?, 'sent', 0)", (WALLET, STRANGER))
    conn.commit()
    conn.close()

    async def main():
        async with open_store(path):
            pass
    trio.run(main)
    conn = sqlite3.connect(str(path))
    assert conn.execute("SELECT tx_hash, log_index, kind, correction, status FROM outbox").fetchall() == [
        ("0xab", 3, "in", 0, "sent")]
    conn.close()


async def test_per_address_reads_past_the_1000_record_cap_like_log_scan(fakes, scanner_for):
    """1,500 transfers of one address in a single block, then 700 more: tokentx pages the block, then moves on."""
    start = fakes.chain.head + 1
    fakes.chain.transfer_many([(fakes.chain.token("USDT").contract, STRANGER, WALLET, 10**6 + i) for i in range(1500)])
    fakes.chain.mine()
    fakes.chain.transfer_many([(fakes.chain.token("USDC").contract, WALLET, STRANGER, 10**6 + i) for i in range(700)])
    fakes.chain.mine()
    async with scanner_for() as (scanner, _):
        by_address = await scanner.fetch_by_address([WALLET], start, fakes.chain.head)
        by_logs = await scanner.fetch_logs(start, fakes.chain.head)
    assert len(by_address) == 2200 and by_address == by_logs
    pages = [p for _, action, p in fakes.etherscan.log if action == "account.tokentx"]
    assert [p["page"] for p in pages] == ["1", "2", "1"]
