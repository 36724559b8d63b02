-- Chats that talked to the bot; inactive = the bot was blocked (pending messages wait for reactivation).
CREATE TABLE chats (
    chat_id     INTEGER PRIMARY KEY,
    username    TEXT,
    first_name  TEXT,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  INTEGER NOT NULL
);

-- Addresses a chat watches; only transfers in blocks > start_block are reported.
CREATE TABLE watches (
    watch_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id     INTEGER NOT NULL REFERENCES chats(chat_id),
    chain_id    INTEGER NOT NULL,
    address     TEXT NOT NULL,            -- lowercase 0x…
    label       TEXT,
    start_block INTEGER NOT NULL,
    added_at    INTEGER NOT NULL,
    UNIQUE (chat_id, chain_id, address)
);
CREATE INDEX watches_by_address ON watches(chain_id, address);

-- Highest block fully scanned per chain.
CREATE TABLE checkpoints (
    chain_id    INTEGER PRIMARY KEY,
    block       INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Every matched ERC-20 transfer; identity is (chain_id, tx_hash, log_index). value is a decimal string (uint256).
CREATE TABLE transfers (
    chain_id     INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    log_index    INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    block_time   INTEGER NOT NULL,
    block_hash   TEXT,
    contract     TEXT NOT NULL,
    sender       TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    value        TEXT NOT NULL,
    PRIMARY KEY (chain_id, tx_hash, log_index)
);

-- One row per (chat, transfer): written with the checkpoint in one transaction, drained by the sender.
CREATE TABLE outbox (
    outbox_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id      INTEGER NOT NULL,
    chain_id     INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    log_index    INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('in', 'out', 'internal')),
    watched      TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    UNIQUE (chat_id, chain_id, tx_hash, log_index)
);
CREATE INDEX outbox_pending ON outbox(status, outbox_id);

-- Small named values (Telegram update offset).
CREATE TABLE kv (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
