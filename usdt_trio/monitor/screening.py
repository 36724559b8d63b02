"""The spam screen of a scan commit: each delivery gets a verdict from the chat's view of its watched address."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from ..chain.tokens import token_for
from ..store.db import Delivery
from ..store.history import HistoryReader
from .spam import Profile, SpamSettings, score_transfer

__all__ = ["Screener"]


class Screener:
    """Scores a commit's deliveries in transfer order; history is read once per commit, in bulk."""

    def __init__(self, settings: SpamSettings | None = None) -> None:
        self.settings = settings or SpamSettings()

    def screen(self, deliveries: Sequence[Delivery], history: HistoryReader,
               created: Mapping[str, int | None] | None = None) -> list[Delivery]:
        """The deliveries with the spam fields set on suspicious ones (internal transfers are never suspicious).

        ``created``: creation block of senders known to be contracts (fetched by the scanner, in bulk)."""
        created = created or {}
        scored = [d for d in deliveries if d.kind != "internal"]
        if not scored:
            return list(deliveries)
        contacts = history.contacts({d.watched for d in scored})
        own = history.own_addresses({d.chat_id for d in scored})
        modes = history.spam_modes({d.chat_id for d in scored})
        profiles: dict[tuple[int, str], Profile] = {}
        verdicts = {}
        for d in sorted(scored, key=lambda d: (d.transfer.block_number, d.transfer.log_index)):
            profile = profiles.get((d.chat_id, d.watched))
            if profile is None:
                profile = profiles[(d.chat_id, d.watched)] = Profile(d.watched, own.get(d.chat_id, ()),
                                                                     settings=self.settings)
                for counterparty, outgoing, time in contacts.get(d.watched, ()):
                    if time < d.transfer.block_time:   # what was known before (a re-read range is stored already)
                        profile.remember(counterparty, outgoing=outgoing, time=time)
            t = d.transfer
            token = token_for(t.chain_id, t.contract)
            verdict = score_transfer(profile, counterparty=d.counterparty, outgoing=d.kind == "out", value=t.value,
                                     decimals=token.decimals if token else 0, time=t.block_time, block=t.block_number,
                                     sender_created_block=None if d.kind == "out" else created.get(d.counterparty))
            profile.observe(d.counterparty, outgoing=d.kind == "out", time=t.block_time, verdict=verdict)
            if verdict.suspicious:
                verdicts[id(d)] = replace(d, spam_score=verdict.score, spam_reasons=tuple(verdict.reasons()),
                                          spam_mode=modes.get(d.chat_id, "silent"))
        return [verdicts.get(id(d), d) for d in deliveries]
