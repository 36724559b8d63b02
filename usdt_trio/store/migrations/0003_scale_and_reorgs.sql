-- Issue 3: reorg corrections, remembered block hashes, catch-up gaps. Issue 4: spam verdicts, per-chat spam mode.

-- A transfer a reorganisation removed from the chain stays (the corrections render from it) with removed=1.
ALTER TABLE transfers ADD COLUMN removed INTEGER NOT NULL DEFAULT 0;

-- The outbox gains correction rows (correction=1: "the transfer announced earlier is gone") next to the
-- announcement of the same (chat, transfer), and a 'cancelled' status for announcements a reorg made moot before
-- they were sent. SQLite cannot alter CHECK or UNIQUE constraints, so the table is rebuilt.
CREATE TABLE outbox_new (
    outbox_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id      INTEGER NOT NULL,
    chain_id     INTEGER NOT NULL,
    tx_hash      TEXT NOT NULL,
    log_index    INTEGER NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('in', 'out', 'internal')),
    correction   INTEGER NOT NULL DEFAULT 0 CHECK (correction IN (0, 1)),
    watched      TEXT NOT NULL,
    counterparty TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'sent', 'failed', 'cancelled', 'suppressed')),
    spam_score   INTEGER,                 -- set: a suspicious transfer (suppressed, or sent as a one-line warning)
    spam_reasons TEXT,                    -- its flags in words, one per line
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    sent_at      INTEGER,
    UNIQUE (chat_id, chain_id, tx_hash, log_index, correction)
);
INSERT INTO outbox_new(outbox_id, chat_id, chain_id, tx_hash, log_index, kind, watched, counterparty, status, attempts,
                       last_error, created_at, sent_at)
    SELECT outbox_id, chat_id, chain_id, tx_hash, log_index, kind, watched, counterparty, status, attempts,
           last_error, created_at, sent_at FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_pending ON outbox(status, outbox_id);
CREATE INDEX outbox_by_transfer ON outbox(chain_id, tx_hash, log_index);
CREATE INDEX outbox_by_chat ON outbox(chat_id, status);
CREATE INDEX transfers_by_block ON transfers(chain_id, block_number);
CREATE INDEX transfers_by_sender ON transfers(chain_id, sender);
CREATE INDEX transfers_by_recipient ON transfers(chain_id, recipient);
CREATE INDEX outbox_spam ON outbox(chat_id, spam_score) WHERE spam_score IS NOT NULL;

-- How a chat hears of suspicious transfers: 'silent' (only /spam) or 'warn' (a short one-line warning).
ALTER TABLE chats ADD COLUMN spam_mode TEXT NOT NULL DEFAULT 'silent' CHECK (spam_mode IN ('silent', 'warn'));

-- Hashes of recently scanned blocks (checkpoints and blocks with announced transfers), to detect reorganisations.
CREATE TABLE block_hashes (
    chain_id INTEGER NOT NULL,
    number   INTEGER NOT NULL,
    hash     TEXT NOT NULL,
    PRIMARY KEY (chain_id, number)
);

-- Ranges left behind after downtime, read in bounded chunks while the scanner keeps up with new blocks.
CREATE TABLE scan_gaps (
    chain_id   INTEGER NOT NULL,
    from_block INTEGER NOT NULL,
    to_block   INTEGER NOT NULL,
    address_cursor TEXT NOT NULL DEFAULT '',   -- per-address catch-up: addresses <= this are done
    PRIMARY KEY (chain_id, from_block)
);
