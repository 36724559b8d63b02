"""Matching a range's transfers to the watched set: one delivery per (chat, transfer)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from usdt_trio.chain.models import Transfer
from usdt_trio.monitor.matching import match_transfers
from usdt_trio.store.db import WatchRef

A = "0x" + "a" * 40
B = "0x" + "b" * 40
C = "0x" + "c" * 40
USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
USDC = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"
NOW = 1_800_000_000


def transfer(sender: str, recipient: str, *, tx: str = "0x" + "1" * 64, log_index: int = 0, block: int = 100,
             contract: str = USDT, time: int = NOW, value: int = 1) -> Transfer:
    return Transfer(1, tx, log_index, block, time, contract, sender, recipient, value)


def test_two_transfers_in_one_transaction_give_two_deliveries():
    result = match_transfers([transfer(B, A, log_index=0), transfer(B, A, log_index=1)], {A: [WatchRef(1, 0)]}, 0)
    assert [(d.chat_id, d.kind, d.transfer.log_index) for d in result.deliveries] == [(1, "in", 0), (1, "in", 1)]


def test_usdt_and_usdc_in_one_transaction_give_two_deliveries():
    result = match_transfers([transfer(B, A, log_index=3, contract=USDT), transfer(A, C, log_index=4, contract=USDC)],
                             {A: [WatchRef(1, 0)]}, 0)
    assert [(d.kind, d.transfer.contract) for d in result.deliveries] == [("in", USDT), ("out", USDC)]


def test_transfer_between_two_watched_addresses_of_one_chat_is_one_internal_delivery():
    result = match_transfers([transfer(A, B)], {A: [WatchRef(1, 0)], B: [WatchRef(1, 0), WatchRef(2, 0)]}, 0)
    assert [(d.chat_id, d.kind, d.watched, d.counterparty) for d in result.deliveries] == [
        (1, "internal", A, B), (2, "in", B, A)]


def test_self_transfer_is_internal():
    result = match_transfers([transfer(A, A)], {A: [WatchRef(1, 0)]}, 0)
    assert [d.kind for d in result.deliveries] == ["internal"]


def test_watch_sees_only_blocks_after_its_start():
    watched = {A: [WatchRef(1, 100)]}
    assert match_transfers([transfer(B, A, block=100)], watched, 0).deliveries == []
    assert len(match_transfers([transfer(B, A, block=101)], watched, 0).deliveries) == 1


def test_old_transfers_are_skipped_and_counted():
    result = match_transfers([transfer(B, A, time=NOW - 10), transfer(B, C, time=NOW - 10)], {A: [WatchRef(1, 0)]}, NOW)
    assert result.deliveries == [] and result.too_old == 1


def test_duplicate_identities_collapse():
    t = transfer(B, A)
    assert len(match_transfers([t, t], {A: [WatchRef(1, 0)]}, 0).deliveries) == 1


addresses = st.sampled_from([A, B, C, "0x" + "d" * 40])


@given(st.lists(st.tuples(addresses, addresses), max_size=30),
       st.dictionaries(addresses, st.lists(st.integers(1, 4), min_size=1, max_size=3, unique=True), max_size=4))
def test_every_touching_transfer_reaches_each_watching_chat_exactly_once(pairs, watching):
    transfers = [transfer(s, r, log_index=i) for i, (s, r) in enumerate(pairs)]
    watched = {address: [WatchRef(chat, 0) for chat in chats] for address, chats in watching.items()}
    deliveries = match_transfers(transfers, watched, 0).deliveries
    keys = [(d.chat_id, d.transfer.key) for d in deliveries]
    assert len(keys) == len(set(keys))
    expected = {(chat, t.key) for t in transfers for address in (t.sender, t.recipient)
                for chat in watching.get(address, [])}
    assert set(keys) == expected
