"""A simulated EVM chain of ERC-20 Transfer logs, for the fake explorer APIs, the demo and benchmarks."""

from __future__ import annotations

import hashlib
import random
import re
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from dataclasses import dataclass

import trio
from trio_util import AsyncValue, periodic

from usdt_trio.chain.tokens import TOKENS_BY_CHAIN, Token

__all__ = ["SimTransfer", "SimToken", "SimContract", "SimChain", "TOKEN_NAMES", "is_address"]

TOKEN_NAMES: dict[str, str] = {"USDT": "Tether USD", "USDC": "USD Coin"}
_ADDRESS_RE = re.compile(r"0x[0-9a-fA-F]{40}\Z")
_TX_HASH_RE = re.compile(r"0x[0-9a-fA-F]{64}\Z")
_MAX_UINT256 = (1 << 256) - 1


def is_address(text: str) -> bool:
    """True for a 20-byte 0x-hex address (any letter case; the checksum is not checked)."""
    return bool(_ADDRESS_RE.match(text))


def _h256(text: str) -> str:
    return "0x" + hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


@dataclass(frozen=True, slots=True)
class SimTransfer:
    """One ERC-20 Transfer log; addresses are lowercase 0x-hex, ``value`` is in the token's smallest unit."""

    block_number: int
    block_hash: str
    timestamp: int
    tx_hash: str
    tx_index: int
    log_index: int
    contract: str
    sender: str
    recipient: str
    value: int


@dataclass(frozen=True, slots=True)
class SimToken:
    """Metadata an explorer reports for a token contract."""

    contract: str
    symbol: str
    name: str
    decimals: int


@dataclass(frozen=True, slots=True)
class SimContract:
    """Creation data of a contract (what ``contract/getcontractcreation`` reports)."""

    address: str
    creator: str
    tx_hash: str
    block_number: int
    timestamp: int
    factory: str = ""
    bytecode: str = "0x6080604052"


def _block_key(t: SimTransfer) -> int:
    return t.block_number


class SimChain:
    """An in-memory chain: queue transfers, mine blocks, query Transfer logs by range, contract and address.

    Storage is one tuple of logs per block (indexed by block number) plus per-address and per-contract
    lists kept in (block, log index) order, so range queries bisect instead of scanning everything.
    Block 0 .. ``start_block`` exist and are empty; ``start_block`` is the initial head.
    """

    def __init__(self, chain_id: int = 1, *, start_block: int = 19_000_000, start_time: int | None = None,
                 block_time: int = 12, tokens: Iterable[Token] | None = None) -> None:
        if start_block < 0 or block_time <= 0:
            raise ValueError("start_block must be >= 0 and block_time > 0")
        self.chain_id = chain_id
        self.start_block = start_block
        self.seconds_per_block = block_time
        self.start_time = int(time.time()) - block_time if start_time is None else start_time
        self.tokens: dict[str, SimToken] = {}
        self.contracts: dict[str, SimContract] = {}
        self._by_symbol: dict[str, SimToken] = {}
        for token in TOKENS_BY_CHAIN.get(chain_id, ()) if tokens is None else tokens:
            self.add_token(token.contract, token.symbol, token.decimals, TOKEN_NAMES.get(token.symbol, token.symbol))
        self._head = start_block
        self._blocks: list[tuple[SimTransfer, ...]] = [()]  # index = number - start_block
        self._by_address: dict[str, list[SimTransfer]] = {}
        self._by_contract: dict[str, list[SimTransfer]] = {}
        self._pending: list[tuple[str, str, str, int, str | None]] = []
        self._salts: dict[int, int] = {}  # block number -> reorg generation (changes its hash)
        self._tx_counter = 0
        self.reorgs = 0
        self.head_value: AsyncValue[int] = AsyncValue(start_block)

    # -- tokens and contracts -------------------------------------------------------------------------------------

    def add_token(self, contract: str, symbol: str, decimals: int, name: str | None = None) -> SimToken:
        """Register token metadata (e.g. a look-alike "USDT" spam token) and its contract."""
        if not is_address(contract):
            raise ValueError(f"bad contract address {contract!r}")
        token = SimToken(contract.lower(), symbol, name if name is not None else symbol, decimals)
        self.tokens[token.contract] = token
        self._by_symbol.setdefault(symbol.upper(), token)
        self.add_contract(token.contract)
        return token

    def add_contract(self, address: str, *, creator: str | None = None, block_number: int | None = None,
                     factory: str = "") -> SimContract:
        """Mark ``address`` as a contract (default creation data is synthetic and deterministic)."""
        if not is_address(address):
            raise ValueError(f"bad contract address {address!r}")
        address = address.lower()
        if address in self.contracts and creator is None and block_number is None:
            return self.contracts[address]
        number = max(0, self.start_block - 1_000_000) if block_number is None else block_number
        info = SimContract(address, (creator or "0x" + _h256(f"creator:{address}")[2:42]).lower(),
                           _h256(f"create:{address}"), number, self.block_time(number), factory.lower())
        self.contracts[address] = info
        return info

    def token(self, token: str) -> SimToken:
        """Look a token up by symbol or contract address (unknown addresses get empty metadata)."""
        if token.startswith("0x"):
            if not is_address(token):
                raise ValueError(f"bad token contract {token!r}")
            contract = token.lower()
            if contract not in self.tokens:
                self.add_contract(contract)
                return SimToken(contract, "", "", 0)
            return self.tokens[contract]
        try:
            return self._by_symbol[token.upper()]
        except KeyError:
            raise ValueError(f"unknown token symbol {token!r} on chain {self.chain_id}") from None

    # -- blocks ---------------------------------------------------------------------------------------------------

    @property
    def head(self) -> int:
        """Number of the latest mined block."""
        return self._head

    @property
    def pending(self) -> int:
        """Number of transfers queued for the next block."""
        return len(self._pending)

    def block_hash(self, number: int) -> str:
        """Deterministic pseudo-random hash of a mined block (changes when a reorg replaces the block)."""
        if not 0 <= number <= self._head:
            raise ValueError(f"block {number} is not mined (head {self._head})")
        return _h256(f"block:{self.chain_id}:{number}:{self._salts.get(number, 0)}")

    def block_time(self, number: int) -> int:
        """Unix timestamp of block ``number``: start_time + (number - start_block) * block_time."""
        return max(0, self.start_time + (number - self.start_block) * self.seconds_per_block)

    def block_at_time(self, timestamp: int, *, before: bool = True) -> int | None:
        """The last block at or before ``timestamp`` (or the first at or after it); None outside 0..head."""
        lo, hi = 0, self._head + 1  # block_time is non-decreasing: bisect over 0..head
        while lo < hi:
            mid = (lo + hi) // 2
            if (self.block_time(mid) <= timestamp) if before else (self.block_time(mid) < timestamp):
                lo = mid + 1
            else:
                hi = mid
        if before:
            return lo - 1 if lo > 0 else None
        return lo if lo <= self._head else None

    def tx_hashes(self, number: int) -> list[str]:
        """Distinct transaction hashes with Transfer logs in block ``number``, in transaction-index order."""
        seen: dict[str, None] = {}
        for t in self._block(number):
            seen.setdefault(t.tx_hash, None)
        return list(seen)

    def _block(self, number: int) -> tuple[SimTransfer, ...]:
        if number < self.start_block or number > self._head:
            return ()
        return self._blocks[number - self.start_block]

    # -- writing --------------------------------------------------------------------------------------------------

    def new_tx_hash(self) -> str:
        """A fresh deterministic pseudo-random transaction hash."""
        self._tx_counter += 1
        return _h256(f"tx:{self.chain_id}:{self._tx_counter}")

    def transfer(self, token: str, sender: str, recipient: str, value: int, *, tx_hash: str | None = None) -> None:
        """Queue one Transfer log for the next block; the same ``tx_hash`` means the same transaction."""
        contract = self.token(token).contract
        for addr in (sender, recipient):
            if not is_address(addr):
                raise ValueError(f"bad address {addr!r}")
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_UINT256:
            raise ValueError(f"value must be an int in uint256 range, got {value!r}")
        if tx_hash is not None:
            if not _TX_HASH_RE.match(tx_hash):
                raise ValueError(f"bad tx hash {tx_hash!r}")
            tx_hash = tx_hash.lower()
        self._pending.append((contract, sender.lower(), recipient.lower(), value, tx_hash))

    def transfer_many(self, rows: Iterable[tuple[str, str, str, int]]) -> None:
        """Bulk-queue (contract, sender, recipient, value) rows, each its own transaction.

        Cheap: addresses must already be lowercase 0x-hex and contracts known; nothing is validated.
        """
        self._pending.extend((c, s, r, v, None) for c, s, r, v in rows)

    def add_noise(self, rng: random.Random, usdt: int = 40, usdc: int = 15) -> None:
        """Queue random mainnet-like traffic between random addresses (~10% of transactions carry two logs)."""
        pending = self._pending
        for symbol, count in (("USDT", usdt), ("USDC", usdc)):
            token = self._by_symbol.get(symbol)
            if token is None or count <= 0:
                continue
            contract = token.contract
            tx: str | None = None
            for _ in range(count):
                exp = rng.randrange(3, 12)
                value = 0 if rng.random() < 0.01 else rng.randrange(10 ** exp, 10 ** (exp + 1))
                sender = f"0x{rng.getrandbits(160):040x}"
                recipient = f"0x{rng.getrandbits(160):040x}"
                if tx is not None and rng.random() < 0.1:
                    pending.append((contract, sender, recipient, value, tx))
                    tx = None
                    continue
                tx = f"0x{rng.getrandbits(256):064x}"
                pending.append((contract, sender, recipient, value, tx))

    def mine(self, n: int = 1) -> int:
        """Seal pending transfers into the next block, then mine ``n - 1`` empty blocks; returns the new head."""
        if n < 1:
            raise ValueError("n must be >= 1")
        self._seal(self._pending)
        self._pending = []
        for _ in range(n - 1):
            self._seal([])
        self.head_value.value = self._head
        return self._head

    def _seal(self, pending: list[tuple[str, str, str, int, str | None]]) -> None:
        number = self._head + 1
        self._head = number
        if not pending:
            self._blocks.append(())
            return
        block_hash = self.block_hash(number)
        timestamp = self.block_time(number)
        tx_order: dict[str, int] = {}
        rows: list[tuple[int, str, str, str, str, int]] = []
        for contract, sender, recipient, value, tx_hash in pending:
            if tx_hash is None:
                tx_hash = self.new_tx_hash()
            index = tx_order.setdefault(tx_hash, len(tx_order))
            rows.append((index, tx_hash, contract, sender, recipient, value))
        rows.sort(key=lambda r: r[0])  # stable: a transaction's logs stay contiguous, in queue order
        logs = tuple(SimTransfer(number, block_hash, timestamp, tx_hash, index, log_index, contract, sender,
                                 recipient, value)
                     for log_index, (index, tx_hash, contract, sender, recipient, value) in enumerate(rows))
        self._blocks.append(logs)
        by_address, by_contract = self._by_address, self._by_contract
        for t in logs:
            by_address.setdefault(t.sender, []).append(t)
            if t.recipient != t.sender:
                by_address.setdefault(t.recipient, []).append(t)
            by_contract.setdefault(t.contract, []).append(t)

    def reorg(self, depth: int = 1, *, drop: Iterable[str] = ()) -> int:
        """Replace the last ``depth`` blocks with new ones (new hashes), keeping the head number.

        Orphaned transfers, except those whose tx hash is in ``drop``, are re-included in the first new
        block ahead of any pending ones (so their log indexes may change); returns the head.
        """
        if not 1 <= depth <= self._head - self.start_block:
            raise ValueError(f"cannot reorg {depth} blocks")
        dropped = {h.lower() for h in drop}
        old_head = self._head
        first = old_head - depth + 1
        orphaned = [t for number in range(first, old_head + 1) for t in self._block(number)]
        del self._blocks[first - self.start_block:]
        for index in (self._by_address, self._by_contract):
            for key in {t.sender for t in orphaned} | {t.recipient for t in orphaned} | {t.contract for t in orphaned}:
                lst = index.get(key)
                if lst:
                    del lst[bisect_left(lst, first, key=_block_key):]
        for number in range(first, old_head + 1):
            self._salts[number] = self._salts.get(number, 0) + 1
        self._head = first - 1
        self.reorgs += 1
        requeued = [(t.contract, t.sender, t.recipient, t.value, t.tx_hash) for t in orphaned
                    if t.tx_hash not in dropped]
        self._pending = requeued + self._pending
        return self.mine(depth)

    # -- reading --------------------------------------------------------------------------------------------------

    def transfers(self, from_block: int, to_block: int, *, contract: str | None = None,
                  address: str | None = None) -> list[SimTransfer]:
        """Mined transfers in ``from_block..to_block`` (inclusive), sorted by (block, log index).

        ``address`` matches sender or recipient (a self-transfer appears once).
        """
        lo = max(from_block, self.start_block)
        hi = min(to_block, self._head)
        if lo > hi:
            return []
        contract = contract.lower() if contract else None
        if address is not None:
            source = self._by_address.get(address.lower(), [])
        elif contract is not None:
            source = self._by_contract.get(contract, [])
            contract = None
        else:
            return [t for block in self._blocks[lo - self.start_block:hi - self.start_block + 1] for t in block]
        sliced = source[bisect_left(source, lo, key=_block_key):bisect_right(source, hi, key=_block_key)]
        if contract is not None:
            return [t for t in sliced if t.contract == contract]
        return sliced

    def balance(self, contract: str, address: str, *, to_block: int | None = None) -> int:
        """Sum of incoming minus outgoing ``contract`` transfers of ``address`` up to ``to_block`` (default head)."""
        contract, address = contract.lower(), address.lower()
        total = 0
        for t in self.transfers(0, self._head if to_block is None else to_block, contract=contract, address=address):
            if t.recipient == address:
                total += t.value
            if t.sender == address:
                total -= t.value
        return total

    # -- waiting --------------------------------------------------------------------------------------------------

    async def wait_for_head(self, number: int) -> int:
        """Wait until block ``number`` has been mined; returns the head."""
        return await self.head_value.wait_value(lambda h: h >= number)

    async def wait_for_block(self) -> int:
        """Wait until the next block is mined; returns the new head."""
        return await self.wait_for_head(self._head + 1)

    async def run_miner(self, interval: float, *,
                        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Mine a block every ``interval`` seconds (drift-free) until cancelled."""
        task_status.started()
        first = True
        async for _ in periodic(interval):
            if first:
                first = False
                continue
            self.mine()
