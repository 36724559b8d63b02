"""Token contracts per chain and the ERC-20 Transfer event topic."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Token", "TRANSFER_TOPIC", "ETHEREUM", "TOKENS_BY_CHAIN", "EXPLORERS", "MIN_SECONDS_PER_BLOCK", "token_for"]

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
ETHEREUM = 1
MIN_SECONDS_PER_BLOCK = 12   # Ethereum's slot time: blocks are never closer together than this


@dataclass(frozen=True, slots=True)
class Token:
    """A watched stablecoin contract: ``contract`` is lowercase hex."""

    chain_id: int
    symbol: str
    contract: str
    decimals: int


TOKENS_BY_CHAIN: dict[int, tuple[Token, ...]] = {
    ETHEREUM: (
        Token(ETHEREUM, "USDT", "0xdac17f958d2ee523a2206206994597c13d831ec7", 6),
        Token(ETHEREUM, "USDC", "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", 6),
    ),
}

EXPLORERS: dict[int, str] = {ETHEREUM: "https://etherscan.io"}

_BY_CONTRACT: dict[tuple[int, str], Token] = {
    (t.chain_id, t.contract): t for tokens in TOKENS_BY_CHAIN.values() for t in tokens}


def token_for(chain_id: int, contract: str) -> Token | None:
    """The configured token at ``contract`` (lowercase) on a chain, if any."""
    return _BY_CONTRACT.get((chain_id, contract))
