"""The per-address strategy: account/tokentx of one address over a block range, as Transfers.

tokentx items may lack ``logIndex`` (the spec calls it optional); a transfer's identity needs it, so such items are
located in their block's Transfer logs (one getLogs per block and token, cached for the whole cycle) by content
and position. Both strategies therefore give the same identities for the same transfers.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ..errors import ApiUnavailable
from .etherscan import EtherscanClient, read_by_block
from .models import Transfer

__all__ = ["BlockLogs", "address_transfers", "PastTransfer", "past_transfers"]

BlockLogs = dict[tuple[str, int], list[Transfer]]   # (contract, block) → its Transfer logs, in log order


def _int(item: dict[str, Any], key: str) -> int:
    value = item[key]
    if not isinstance(value, str) or not value.isdigit():
        raise ValueError(f"{key} is not a decimal string")
    return int(value)


def _address(item: dict[str, Any], key: str) -> str:
    value = item[key]
    if not isinstance(value, str) or len(value) != 42 or not value.startswith("0x"):
        raise ValueError(f"{key} is not an address")
    return value.lower()


def _parse(item: dict[str, Any], chain_id: int) -> tuple[Transfer, bool]:
    """A tokentx item → (Transfer, has a real log index); a missing index is -1 until resolved."""
    log_index = item.get("logIndex")
    known = isinstance(log_index, str) and log_index.isdigit()
    block_hash = item.get("blockHash")
    return Transfer(
        chain_id=chain_id, tx_hash=str(item["hash"]).lower(), log_index=int(log_index) if known else -1,
        block_number=_int(item, "blockNumber"), block_time=_int(item, "timeStamp"),
        contract=_address(item, "contractAddress"), sender=_address(item, "from"), recipient=_address(item, "to"),
        value=_int(item, "value"),
        block_hash=block_hash.lower() if isinstance(block_hash, str) and len(block_hash) == 66 else None), known


def _block_of(item: dict[str, Any]) -> int:
    try:
        return _int(item, "blockNumber")
    except (KeyError, ValueError) as exc:
        raise ApiUnavailable(f"malformed tokentx item ({type(exc).__name__})") from None


async def _pages(client: EtherscanClient, address: str, start: int, end: int) -> list[dict[str, Any]]:
    """Every tokentx item of ``address`` in [start, end], paging by block like transfer_logs does."""
    async def page(first: int, last: int, number: int) -> list[dict[str, Any]]:
        return await client.token_transfers(address, first, last, page=number)
    return await read_by_block(page, _block_of, start, end, "transfers of one address")


async def address_transfers(client: EtherscanClient, address: str, start: int, end: int,
                            contracts: Collection[str], block_logs: BlockLogs) -> list[Transfer]:
    """Transfers of the given token ``contracts`` sent or received by ``address`` in [start, end]."""
    found: list[Transfer] = []
    unresolved: list[Transfer] = []
    for item in await _pages(client, address, start, end):
        try:
            transfer, known = _parse(item, client.chain_id)
        except (KeyError, ValueError, TypeError) as exc:
            raise ApiUnavailable(f"malformed tokentx item ({type(exc).__name__})") from None
        if transfer.contract not in contracts:
            continue
        (found if known else unresolved).append(transfer)
    taken: dict[tuple[str, int], set[int]] = {}
    for transfer in unresolved:
        place = (transfer.contract, transfer.block_number)
        if place not in block_logs:
            block_logs[place] = await client.transfer_logs(transfer.contract, transfer.block_number,
                                                           transfer.block_number)
        used = taken.setdefault(place, set())
        for candidate in block_logs[place]:
            if candidate.log_index not in used and (candidate.tx_hash, candidate.sender, candidate.recipient,
                                                    candidate.value) == (transfer.tx_hash, transfer.sender,
                                                                         transfer.recipient, transfer.value):
                used.add(candidate.log_index)
                found.append(candidate)
                break
        else:
            raise ApiUnavailable(f"tokentx lists a transfer in block {transfer.block_number} that its logs lack")
    return found


@dataclass(frozen=True, slots=True)
class PastTransfer:
    """A genuine-looking transfer from an address's past, any token (what its owner knows of a counterparty)."""

    counterparty: str
    outgoing: bool
    tx_hash: str
    amount: str          # smallest units, as a decimal string
    token_symbol: str
    block_number: int
    time: int


async def past_transfers(client: EtherscanClient, address: str, end_block: int) -> list[PastTransfer]:
    """The address's latest 1,000 token transfers up to ``end_block`` (one call), without zero-value, dust
    (under 1/10 of a token) and self-transfers: poisoners' entries must not become known counterparties."""
    found = []
    for item in await client.token_transfers(address, 0, end_block, sort="desc"):
        try:
            sender, recipient = _address(item, "from"), _address(item, "to")
            value, decimals = _int(item, "value"), _int(item, "tokenDecimal")
            block, time = _int(item, "blockNumber"), _int(item, "timeStamp")
        except (KeyError, ValueError, TypeError):
            continue   # a malformed row of some exotic token: it just does not count
        if sender == recipient or value * 10 < 10 ** decimals or address not in (sender, recipient):
            continue
        outgoing = sender == address
        found.append(PastTransfer(recipient if outgoing else sender, outgoing, str(item.get("hash", "")).lower(),
                                  str(value), str(item.get("tokenSymbol", ""))[:16], block, time))
    return found
