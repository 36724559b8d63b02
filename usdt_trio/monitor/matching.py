"""Match a range's transfers against the watched set: one delivery per (chat, transfer), O(transfers)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from ..chain.models import Transfer
from ..store.db import Delivery, WatchRef

__all__ = ["MatchResult", "match_transfers"]


@dataclass
class MatchResult:
    deliveries: list[Delivery] = field(default_factory=list)
    too_old: int = 0


def match_transfers(transfers: Iterable[Transfer], watched: Mapping[str, Sequence[WatchRef]],
                    min_block_time: int) -> MatchResult:
    """Each transfer touching a watched address yields one delivery per watching chat.

    A chat watching both ends gets one "internal" delivery. Watches only see blocks after their start block;
    transfers with block_time < min_block_time are skipped and counted. Duplicate transfer identities collapse.
    """
    result = MatchResult()
    seen: set[tuple[int, str, int]] = set()
    for transfer in transfers:
        if transfer.key in seen:
            continue
        seen.add(transfer.key)
        senders = {ref.chat_id for ref in watched.get(transfer.sender, ()) if transfer.block_number > ref.start_block}
        recipients = {ref.chat_id for ref in watched.get(transfer.recipient, ()) if transfer.block_number > ref.start_block}
        if not senders and not recipients:
            continue
        if transfer.block_time < min_block_time:
            result.too_old += 1
            continue
        for chat_id in sorted(senders | recipients):
            if chat_id in senders and chat_id in recipients:
                kind, mine, other = "internal", transfer.sender, transfer.recipient
            elif chat_id in recipients:
                kind, mine, other = "in", transfer.recipient, transfer.sender
            else:
                kind, mine, other = "out", transfer.sender, transfer.recipient
            result.deliveries.append(Delivery(chat_id, transfer, kind, mine, other))
    return result
