"""The Transfer model shared by chain clients, the scanner and the store."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Transfer"]


@dataclass(frozen=True, slots=True)
class Transfer:
    """One ERC-20 Transfer event. Identity: (chain_id, tx_hash, log_index). Addresses lowercase; value in smallest units."""

    chain_id: int
    tx_hash: str
    log_index: int
    block_number: int
    block_time: int
    contract: str
    sender: str
    recipient: str
    value: int
    block_hash: str | None = None

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.chain_id, self.tx_hash, self.log_index)
