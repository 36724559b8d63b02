"""The Store: migrations, the usdt_monitor_bot import, atomic scan commits, the outbox, watches, closing."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from usdt_trio.chain.models import Transfer
from usdt_trio.chain.tokens import ETHEREUM
from usdt_trio.monitor.matching import match_transfers
from usdt_trio.store import db as db_module
from usdt_trio.store.db import AddResult, Delivery, Watch, WatchRef, open_store
from usdt_trio.store.migrate import SCHEMA_VERSION

USDT = "0xdac17f958d2ee523a2206206994597c13d831ec7"
A = "0x" + "a1" * 20
B = "0x" + "b2" * 20
C = "0x" + "c3" * 20
D = "0x" + "d4" * 20
E = "0x" + "e5" * 20
CHECKSUMMED = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"  # EIP-55 form of the lowercase below
WALLET = CHECKSUMMED.lower()
UINT256_MAX = 2**256 - 1


def transfer(tx: int, log_index: int, sender: str, recipient: str, value: int, block: int = 100) -> Transfer:
    return Transfer(chain_id=ETHEREUM, tx_hash=f"0x{tx:064x}", log_index=log_index, block_number=block,
                    block_time=1_700_000_000 + block, contract=USDT, sender=sender, recipient=recipient, value=value,
                    block_hash=f"0x{block:064x}")


def raw(path: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Read the database file through an independent connection (what is really on disk)."""
    conn = sqlite3.connect(str(path))
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


async def watching(store, chat_id: int, *addresses: str, labels: dict[str, str] | None = None) -> None:
    await store.upsert_chat(chat_id, f"user{chat_id}", "First")
    for address in addresses:
        label = (labels or {}).get(address)
        assert await store.add_watch(Watch(chat_id, ETHEREUM, address, label, 0), 100) is AddResult.ADDED


# ---- 1. migrations ---------------------------------------------------------------------------------------

async def test_fresh_database_migrates_and_reopening_is_a_noop(tmp_path: Path, caplog) -> None:
    path = tmp_path / "sub" / "bot.sqlite3"
    caplog.set_level(logging.INFO, logger="usdt_trio.store")
    async with open_store(path) as store:
        await store.upsert_chat(1, "alice", "Alice")
        await store.set_value("offset", "42")
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert raw(path, "PRAGMA journal_mode") == [("wal",)]
    assert any("migrated to schema" in r.getMessage() for r in caplog.records)
    tables = {name for (name,) in raw(path, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"chats", "watches", "checkpoints", "transfers", "outbox", "kv"} <= tables

    caplog.clear()
    async with open_store(path) as store:
        assert await store.chat_active(1) is True
        assert await store.get_value("offset") == "42"
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    assert not [r for r in caplog.records if "migrated" in r.getMessage()]


async def test_database_newer_than_the_program_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "newer.sqlite3"
    conn = sqlite3.connect(str(path))
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(RuntimeError, match="newer"):
        async with open_store(path):
            pytest.fail("a newer database must not be opened")
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]
    assert raw(path, "SELECT name FROM sqlite_master WHERE type='table'") == []


# ---- 2. usdt_monitor_bot import --------------------------------------------------------------------------

OLD_SCHEMA = """
CREATE TABLE users (
    user_id INTEGER PRIMARY KEY, username TEXT, first_name TEXT, last_name TEXT,
    first_seen TIMESTAMP DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE wallets (
    wallet_id INTEGER PRIMARY KEY AUTOINCREMENT, user_id INTEGER NOT NULL, address TEXT NOT NULL,
    added_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY(user_id) REFERENCES users(user_id) ON DELETE CASCADE,
    UNIQUE(user_id, address)
);
CREATE TABLE tracked_addresses (
    address TEXT PRIMARY KEY,
    last_checked_block INTEGER DEFAULT 0,
    last_check_time TIMESTAMP
);
CREATE TABLE transaction_history (
    tx_hash TEXT PRIMARY KEY,
    monitored_address TEXT NOT NULL,
    from_address TEXT NOT NULL,
    to_address TEXT NOT NULL,
    value REAL NOT NULL,
    block_number INTEGER NOT NULL,
    timestamp TEXT NOT NULL,
    token_symbol TEXT NOT NULL,
    risk_score INTEGER,
    created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    FOREIGN KEY(monitored_address) REFERENCES tracked_addresses(address) ON DELETE CASCADE
);
CREATE INDEX idx_tx_history_monitored_address ON transaction_history(monitored_address, block_number DESC);
CREATE INDEX idx_tx_history_timestamp ON transaction_history(timestamp);
CREATE TABLE notification_sent (
    user_id INTEGER NOT NULL, tx_hash TEXT NOT NULL, sent_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (user_id, tx_hash)
);
"""
OLD_TABLES = ("users", "wallets", "tracked_addresses", "transaction_history", "notification_sent")


def build_old_database(path: Path) -> None:
    """A usdt_monitor_bot database as it looks after some months of use."""
    conn = sqlite3.connect(str(path))
    conn.executescript(OLD_SCHEMA)
    conn.executemany("INSERT INTO users(user_id, username, first_name, last_name) VALUES (?,?,?,?)", [
        (111, "alice", "Alice", "A."), (222, None, "Bob", None), (333, "carol", "Carol", None)])
    conn.executemany("INSERT INTO wallets(user_id, address) VALUES (?,?)", [
        (111, A),
        (111, "0x" + "B2" * 20),            # stored mixed-case by an older version …
        (111, B),                           # … and again lowercase later: one watch
        (222, A),                           # shared with alice
        (222, CHECKSUMMED),                 # EIP-55 case, checked under its lowercase form
        (222, C),                           # added, never checked (tracked row at the default 0)
        (222, D),                           # no tracked row at all
        (222, "0x12345"),                   # malformed: skipped
    ])
    conn.executemany("INSERT INTO tracked_addresses(address, last_checked_block, last_check_time) VALUES (?,?,?)", [
        (A, 19_000_500, "2026-05-01T10:00:00+00:00"),
        (B, 19_000_200, "2026-05-01T10:00:00+00:00"),
        (WALLET, 19_000_300, "2026-05-01T10:00:00+00:00"),
        (C, 0, None),
        (E, 17_000_000, "2025-01-01T10:00:00+00:00"),   # wallet removed long ago: the old bot left this row
    ])
    conn.executemany("INSERT INTO transaction_history(tx_hash, monitored_address, from_address, to_address, value, "
                     "block_number, timestamp, token_symbol, risk_score) VALUES (?,?,?,?,?,?,?,?,?)", [
        ("0x" + "11" * 32, A, E, A, 1234.56, 19_000_100, "2026-05-01T09:00:00+00:00", "USDT", 0),
        ("0x" + "22" * 32, A, "0x" + "a1" * 19 + "00", A, 0.01, 19_000_150, "2026-05-01T09:10:00+00:00", "USDT", 90),
    ])
    conn.executemany("INSERT INTO notification_sent(user_id, tx_hash) VALUES (?,?)", [
        (111, "0x" + "11" * 32), (222, "0x" + "11" * 32)])
    conn.commit()
    conn.close()


def dump_old_tables(path: Path) -> dict[str, list[tuple]]:
    return {table: raw(path, f"SELECT * FROM {table} ORDER BY 1, 2") for table in OLD_TABLES}


async def test_old_bot_database_is_imported_once_and_left_intact(tmp_path: Path) -> None:
    path = tmp_path / "usdt_monitor.db"
    build_old_database(path)
    old = dump_old_tables(path)

    async with open_store(path) as store:
        assert raw(path, "SELECT chat_id, username, first_name, active FROM chats ORDER BY chat_id") == [
            (111, "alice", "Alice", 1), (222, None, "Bob", 1), (333, "carol", "Carol", 1)]
        alice = await store.list_watches(111)
        bob = await store.list_watches(222)
        assert await store.list_watches(333) == []
        # each wallet resumes after the block the old bot last checked for it; unchecked ones at the checkpoint
        assert [(w.chain_id, w.address, w.label, w.start_block) for w in alice] == [
            (ETHEREUM, A, None, 19_000_500), (ETHEREUM, B, None, 19_000_200)]
        assert [(w.chain_id, w.address, w.start_block) for w in bob] == [
            (ETHEREUM, A, 19_000_500), (ETHEREUM, WALLET, 19_000_300),
            (ETHEREUM, C, 19_000_200), (ETHEREUM, D, 19_000_200)]
        # the lowest block checked for a wallet still watched; the stale row of a removed wallet is ignored
        assert await store.get_checkpoint(ETHEREUM) == 19_000_200
        assert set(await store.watched_set(ETHEREUM)) == {A, B, WALLET, C, D}

        # what a user does after switching: removing a wallet must stay removed
        assert (await store.remove_watch(222, D)).address == D

    assert dump_old_tables(path) == old
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]

    async with open_store(path) as store:   # reopening does not import again
        assert [w.address for w in await store.list_watches(111)] == [A, B]
        assert [w.address for w in await store.list_watches(222)] == [A, WALLET, C]
        assert await store.get_checkpoint(ETHEREUM) == 19_000_200
    assert raw(path, "SELECT COUNT(*) FROM chats") == [(3,)]
    assert raw(path, "SELECT COUNT(*) FROM watches") == [(5,)]
    assert dump_old_tables(path) == old


async def test_old_bot_database_that_never_checked_anything(tmp_path: Path) -> None:
    path = tmp_path / "usdt_monitor.db"
    conn = sqlite3.connect(str(path))
    conn.executescript(OLD_SCHEMA)
    conn.execute("INSERT INTO users(user_id, username, first_name) VALUES (7, 'dave', 'Dave')")
    conn.execute("INSERT INTO wallets(user_id, address) VALUES (7, ?)", (A,))
    conn.execute("INSERT INTO tracked_addresses(address) VALUES (?)", (A,))
    conn.commit()
    conn.close()
    async with open_store(path) as store:
        assert await store.list_watches(7) == [Watch(7, ETHEREUM, A, None, 0)]
        assert await store.get_checkpoint(ETHEREUM) is None   # the scanner starts at the head: no history flood


# ---- 3. commit_scan --------------------------------------------------------------------------------------

async def test_commit_scan_writes_nothing_when_the_plan_raises(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with open_store(path) as store:
        await watching(store, 1, A)
        assert await store.commit_scan(ETHEREUM, None, 100, lambda watched: ()) == 0

        seen: list[dict] = []

        def plan(watched):
            seen.append(watched)
            raise ValueError("spam scorer blew up")

        with pytest.raises(ValueError, match="blew up"):
            await store.commit_scan(ETHEREUM, 100, 200, plan)
        assert seen == [{A: [WatchRef(1, 0)]}]
        assert await store.get_checkpoint(ETHEREUM) == 100

        # a write failing after the transfers and outbox rows were inserted (the checkpoint is written last)
        # rolls them back too
        conn = sqlite3.connect(str(path))
        conn.execute("CREATE TRIGGER fail_checkpoint BEFORE UPDATE ON checkpoints "
                     "BEGIN SELECT RAISE(ABORT, 'disk I/O error (simulated)'); END")
        conn.commit()
        conn.close()
        good = [Delivery(1, transfer(1, 0, B, A, 5, block=150), "in", A, B),
                Delivery(1, transfer(2, 0, B, A, 6, block=150), "in", A, B)]
        with pytest.raises(sqlite3.IntegrityError, match="simulated"):
            await store.commit_scan(ETHEREUM, 100, 200, lambda watched: good)
        assert await store.get_checkpoint(ETHEREUM) == 100
        assert await store.pending_outbox() == []
        assert await store.outbox_counts() == {}
        await store.set_value("still", "usable")   # no transaction left open
    assert raw(path, "SELECT COUNT(*) FROM transfers") == [(0,)]
    assert raw(path, "SELECT COUNT(*) FROM outbox") == [(0,)]
    assert raw(path, "SELECT block FROM checkpoints") == [(100,)]


async def test_commit_scan_is_idempotent_and_never_moves_the_checkpoint_back(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with open_store(path) as store:
        await watching(store, 1, A)
        await watching(store, 2, A, B)
        # two transfers in one transaction, and one transfer touching two watched addresses
        transfers = [transfer(1, 0, C, A, 10), transfer(1, 1, C, A, 20), transfer(2, 3, A, B, 30)]

        def plan(watched):
            return match_transfers(transfers, watched, 0).deliveries

        assert await store.commit_scan(ETHEREUM, None, 100, plan) == 6
        assert await store.get_checkpoint(ETHEREUM) == 100
        assert await store.commit_scan(ETHEREUM, 100, 100, plan) == 0
        assert await store.outbox_counts() == {"pending": 6}
        pending = await store.pending_outbox()
        assert sorted((i.chat_id, i.transfer.key, i.kind) for i in pending) == [
            (1, transfers[0].key, "in"), (1, transfers[1].key, "in"), (1, transfers[2].key, "out"),
            (2, transfers[0].key, "in"), (2, transfers[1].key, "in"), (2, transfers[2].key, "internal")]

        # once sent, the same range scanned again (e.g. after a crash) is not delivered again
        await store.mark_sent([i.outbox_id for i in pending])
        assert await store.commit_scan(ETHEREUM, 100, 120, plan) == 0
        assert await store.pending_outbox() == []
        assert await store.get_checkpoint(ETHEREUM) == 120

        assert await store.commit_scan(ETHEREUM, 120, 50, lambda watched: ()) == 0
        assert await store.get_checkpoint(ETHEREUM) == 120
        assert await store.get_checkpoint(ETHEREUM + 1) is None
    assert raw(path, "SELECT COUNT(*) FROM transfers") == [(3,)]
    assert raw(path, "SELECT COUNT(*) FROM outbox") == [(6,)]


# ---- 4. outbox -------------------------------------------------------------------------------------------

async def test_pending_outbox_filters_joins_labels_and_keeps_order(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    async with open_store(path) as store:
        await watching(store, 1, A, B, labels={A: "Main", B: "Savings"})
        await watching(store, 2, B, labels={B: "Bob's"})
        await watching(store, 3, A, labels={A: "Carol's"})
        big = transfer(3, 7, C, A, UINT256_MAX, block=101)
        deliveries = [
            Delivery(1, transfer(1, 0, A, B, 1, block=100), "internal", A, B),
            Delivery(3, transfer(1, 0, A, B, 1, block=100), "out", A, B),
            Delivery(2, transfer(2, 0, A, B, 2, block=100), "in", B, A),
            Delivery(1, big, "in", A, C),
            Delivery(1, transfer(4, 0, B, D, 4, block=102), "out", B, D),
        ]
        assert await store.commit_scan(ETHEREUM, None, 102, lambda watched: deliveries) == 5
        await store.set_chat_active(3, False)

        pending = await store.pending_outbox()
        assert [(i.chat_id, i.transfer.tx_hash, i.kind) for i in pending] == [
            (1, f"0x{1:064x}", "internal"), (2, f"0x{2:064x}", "in"), (1, f"0x{3:064x}", "in"),
            (1, f"0x{4:064x}", "out")]
        assert [i.outbox_id for i in pending] == sorted(i.outbox_id for i in pending)
        labels = [(i.watched, i.watched_label, i.counterparty, i.counterparty_label) for i in pending]
        assert labels == [(A, "Main", B, "Savings"), (B, "Bob's", A, None), (A, "Main", C, None), (B, "Savings", D, None)]
        assert pending[2].transfer == big and pending[2].transfer.value == UINT256_MAX
        assert pending[0].attempts == 0

        assert [i.chat_id for i in await store.pending_outbox(exclude_chats=[1])] == [2]
        assert [i.chat_id for i in await store.pending_outbox(exclude_chats={1, 2})] == []
        assert [i.transfer.tx_hash for i in await store.pending_outbox(limit=2)] == [f"0x{1:064x}", f"0x{2:064x}"]

        await store.record_attempt([pending[0].outbox_id], "NetworkError: reset")
        await store.mark_sent([pending[1].outbox_id])
        await store.mark_failed([pending[3].outbox_id], "Bad Request: chat not found")
        again = await store.pending_outbox()
        assert [(i.outbox_id, i.attempts) for i in again] == [(pending[0].outbox_id, 1), (pending[2].outbox_id, 0)]
        assert await store.outbox_counts() == {"pending": 3, "sent": 1, "failed": 1}

        # a blocked chat's messages wait; they come back when it is active again
        await store.set_chat_active(3, True)
        assert [i.chat_id for i in await store.pending_outbox()] == [1, 3, 1]
    assert raw(path, "SELECT typeof(value), value FROM transfers WHERE tx_hash=?", (big.tx_hash,)) == [
        ("text", str(UINT256_MAX))]


# ---- 5. watches ------------------------------------------------------------------------------------------

async def test_watches_add_limit_remove_and_watched_set(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        assert await store.upsert_chat(1, "alice", "Alice") is True
        assert await store.upsert_chat(1, "alice2", "Alice") is False
        await store.upsert_chat(2, "bob", "Bob")
        assert await store.chat_active(99) is None

        assert await store.add_watch(Watch(1, ETHEREUM, WALLET, "Cold Wallet", 500), 2) is AddResult.ADDED
        assert await store.add_watch(Watch(1, ETHEREUM, A, None, 510), 2) is AddResult.ADDED
        assert await store.add_watch(Watch(1, ETHEREUM, WALLET, "again", 600), 2) is AddResult.EXISTS
        assert await store.add_watch(Watch(1, ETHEREUM, B, None, 600), 2) is AddResult.LIMIT
        assert await store.add_watch(Watch(2, ETHEREUM, WALLET, "Bob's", 700), 2) is AddResult.ADDED
        assert await store.list_watches(1) == [Watch(1, ETHEREUM, WALLET, "Cold Wallet", 500),
                                               Watch(1, ETHEREUM, A, None, 510)]

        assert await store.watched_set(ETHEREUM) == {WALLET: [WatchRef(1, 500), WatchRef(2, 700)], A: [WatchRef(1, 510)]}
        assert await store.watched_set(ETHEREUM + 1) == {}
        await store.set_chat_active(1, False)
        assert await store.chat_active(1) is False
        assert await store.watched_set(ETHEREUM) == {WALLET: [WatchRef(2, 700)]}
        await store.upsert_chat(1, "alice", "Alice")    # /start again reactivates
        assert await store.chat_active(1) is True
        assert set(await store.watched_set(ETHEREUM)) == {WALLET, A}

        assert await store.remove_watch(1, B) is None
        assert await store.remove_watch(1, "savings") is None
        removed = await store.remove_watch(1, CHECKSUMMED)          # any case of the address
        assert removed == Watch(1, ETHEREUM, WALLET, "Cold Wallet", 500)
        assert await store.list_watches(2) == [Watch(2, ETHEREUM, WALLET, "Bob's", 700)]   # other chats keep theirs
        assert await store.remove_watch(1, A.upper().replace("0X", "0x")) is not None
        assert await store.list_watches(1) == []

        assert await store.add_watch(Watch(1, ETHEREUM, C, "My Savings", 800), 2) is AddResult.ADDED
        assert await store.remove_watch(1, "bob's") is None               # another chat's label
        assert (await store.remove_watch(1, "mY sAVINGS")).address == C   # label, case-insensitive
        assert (await store.remove_watch(2, "BOB'S")).address == WALLET
        assert await store.watched_set(ETHEREUM) == {}


# ---- 6. closing ------------------------------------------------------------------------------------------

@pytest.fixture
def connections(monkeypatch) -> list[sqlite3.Connection]:
    """Every connection the store opens."""
    opened: list[sqlite3.Connection] = []
    real = db_module._connect

    def spy(path: Path) -> sqlite3.Connection:
        opened.append(real(path))
        return opened[-1]

    monkeypatch.setattr(db_module, "_connect", spy)
    return opened


def assert_closed(conn: sqlite3.Connection, path: Path) -> None:
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    assert not Path(f"{path}-wal").exists()   # the last connection to close removes the WAL file
    other = sqlite3.connect(str(path), timeout=0)
    try:
        other.execute("BEGIN EXCLUSIVE")      # nobody else holds the file
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_store_closes_its_connection_when_the_body_raises(tmp_path: Path, connections) -> None:
    path = tmp_path / "db.sqlite3"
    with pytest.raises(KeyError):
        async with open_store(path) as store:
            await store.upsert_chat(1, "alice", "Alice")
            assert Path(f"{path}-wal").exists()
            raise KeyError("boom")
    assert len(connections) == 1
    assert_closed(connections[0], path)


async def test_store_closes_its_connection_when_migration_fails(tmp_path: Path, connections) -> None:
    path = tmp_path / "db.sqlite3"
    async with open_store(path):
        pass
    conn = sqlite3.connect(str(path))
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(RuntimeError):
        async with open_store(path):
            pass
    assert len(connections) == 2
    for conn in connections:
        assert_closed(conn, path)


async def test_add_during_a_scan_rewinds_the_checkpoint_and_the_stale_scan_does_not_overwrite_it(tmp_path: Path) -> None:
    async with open_store(tmp_path / "db.sqlite3") as store:
        await watching(store, 1, A)
        await store.commit_scan(ETHEREUM, None, 100, lambda watched: ())
        # a scan reads (100, 110] while chat 2's /add (head 104 at that moment) commits
        await store.upsert_chat(2, None, None)
        assert await store.add_watch(Watch(2, ETHEREUM, B, None, 104), 10) is AddResult.ADDED
        assert await store.get_checkpoint(ETHEREUM) == 100   # nothing scanned past 104 yet: unchanged
        transfers = [transfer(1, 0, C, B, 7, block=103), transfer(2, 0, C, B, 8, block=106)]

        def plan(watched):
            return match_transfers(transfers, watched, 0).deliveries

        assert await store.commit_scan(ETHEREUM, 100, 110, plan) == 1   # block 106 matched for the new watch
        assert await store.get_checkpoint(ETHEREUM) == 110
        # the next /add commits with head 105 after that scan already passed it: rewound to 105
        await store.upsert_chat(3, None, None)
        await store.add_watch(Watch(3, ETHEREUM, B, None, 105), 10)
        assert await store.get_checkpoint(ETHEREUM) == 105
        # a scan that started from 110 before the rewind must not move the checkpoint past the rewound range
        assert await store.commit_scan(ETHEREUM, 110, 120, lambda watched: ()) == 0
        assert await store.get_checkpoint(ETHEREUM) == 105
        # re-reading (105, 120] gives chat 3 the transfer of block 106 and chat 2 nothing twice
        assert await store.commit_scan(ETHEREUM, 105, 120, plan) == 1
        assert sorted(i.chat_id for i in await store.pending_outbox()) == [2, 3]
        assert await store.get_checkpoint(ETHEREUM) == 120
