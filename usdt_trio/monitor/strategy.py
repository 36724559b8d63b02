"""Choosing how to read a block range: log-scan (calls ∝ transfers in the range) or per-address (∝ addresses)."""

from __future__ import annotations

from collections.abc import Iterable
from math import ceil

from ..chain.etherscan import PAGE_SIZE

__all__ = ["CallEstimator", "LOGS", "ADDRESSES", "PRIOR_TRANSFERS_PER_BLOCK"]

LOGS = "logs"            # getLogs per token over the range, matched in memory
ADDRESSES = "addresses"  # account/tokentx per watched address
PRIOR_TRANSFERS_PER_BLOCK = 50.0   # per token, until observed (mainnet USDT has about 40)
SMOOTHING = 0.2


class CallEstimator:
    """Learns transfers per block per token and calls per address, and predicts each strategy's calls."""

    def __init__(self, contracts: Iterable[str]) -> None:
        self.density = {contract: PRIOR_TRANSFERS_PER_BLOCK for contract in contracts}
        self.calls_per_address = 1.0   # > 1 when tokentx lacks logIndex and blocks must be looked up

    def observe_logs(self, contract: str, blocks: int, transfers: int) -> None:
        weight = min(1.0, SMOOTHING * blocks)   # a long range says more than one block
        self.density[contract] += weight * (transfers / blocks - self.density[contract])

    def observe_addresses(self, addresses: int, calls: int) -> None:
        if addresses:
            self.calls_per_address += SMOOTHING * (calls / addresses - self.calls_per_address)

    def log_calls(self, blocks: int) -> int:
        """getLogs calls to read ``blocks`` blocks: one page per 1,000 transfers of each token."""
        return sum(max(1, ceil(d * blocks / PAGE_SIZE)) for d in self.density.values())

    def address_calls(self, addresses: int) -> int:
        return ceil(addresses * self.calls_per_address)

    def choose(self, blocks: int, addresses: int) -> str:
        """The strategy with fewer predicted calls (logs on a tie: it does not depend on the watched set)."""
        return ADDRESSES if self.address_calls(addresses) < self.log_calls(blocks) else LOGS

    def max_addresses(self, blocks: int) -> int:
        """Above this many addresses, log-scan is the cheaper way to read ``blocks`` blocks."""
        return int(self.log_calls(blocks) / self.calls_per_address)

    def addresses_for(self, calls: int) -> int:
        """How many addresses a per-address read can cover with ``calls`` calls (at least 1)."""
        return max(1, int(calls / self.calls_per_address))

    def blocks_for(self, calls: int) -> int:
        """How many blocks a log-scan can cover with ``calls`` calls (at least 1)."""
        per_call = PAGE_SIZE / max(1.0, sum(self.density.values()))
        return max(1, int(calls * per_call * 0.9))
