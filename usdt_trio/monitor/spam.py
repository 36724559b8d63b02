"""Address-poisoning and spam scoring: a pure, synchronous module (no I/O), one explainable verdict per transfer.

The reference bot's filters (dust, zero value, timing, lookalike of the last or recent senders, new sender, brand-new
contract sender, rapid cycling of senders) with its default weights, plus what it misses: lookalikes of EVERY
counterparty the watched address dealt with in either direction (above all those it paid), lookalikes of the chat's
own other addresses, and zero-value "outgoing" transfers (anyone may `transferFrom` 0 USDT out of any address).

A lookalike shares the first ``prefix`` and last ``suffix`` hex digits with a known address without being it — what a
wallet shows as ``0x1234…abcd``. Candidates are found through an index on that (prefix, suffix) key, so checking a
transfer costs O(1) however many counterparties an address has.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..chain.addresses import short_address

__all__ = ["SpamSettings", "Flag", "Verdict", "Profile", "score_transfer", "short", "DEFAULT_WEIGHTS"]

# flag code → default weight (the first eight are the reference bot's filters and weights)
DEFAULT_WEIGHTS: dict[str, int] = {
    "dust": 50,
    "zero_value": 50,
    "timing": 25,
    "similar_to_last_sender": 40,
    "lookalike_recent_sender": 40,
    "new_sender": 15,
    "new_contract": 35,
    "rapid_cycling": 30,
    # beyond the reference
    "lookalike_counterparty": 60,
    "lookalike_own": 60,
    "zero_value_outgoing": 60,
}
REFERENCE_FLAGS = frozenset(list(DEFAULT_WEIGHTS)[:8])
# flags about the transfer itself; timing, newness and cycling only describe its context, and context alone never
# hides a real payment (the reference hides a merchant's third customer payment within 30 minutes)
PAYLOAD_FLAGS = frozenset(DEFAULT_WEIGHTS) - {"timing", "new_sender", "rapid_cycling"}


@dataclass(frozen=True)
class SpamSettings:
    """Thresholds and weights; amounts are in whole tokens expressed as (numerator, denominator) — never float."""

    threshold: int = 50
    dust_numerator: int = 1              # dust: value < 1/10 of a token
    dust_denominator: int = 10
    timing_window: int = 20 * 60         # seconds since the address's previous transfer
    prefix: int = 3
    suffix: int = 4
    recent_senders: int = 10
    new_contract_blocks: int = 20
    cycling_senders: int = 3
    cycling_window: int = 30 * 60
    weights: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def is_dust(self, value: int, decimals: int) -> bool:
        return value * self.dust_denominator < self.dust_numerator * 10 ** decimals


@dataclass(frozen=True)
class Flag:
    code: str
    points: int
    reason: str   # in words, for /spam and warnings; addresses only in the short, non-copyable form


@dataclass(frozen=True)
class Verdict:
    score: int            # 0-100
    flags: tuple[Flag, ...]
    suspicious: bool

    def reasons(self) -> list[str]:
        return [f.reason for f in self.flags]


short = short_address


@dataclass
class _Contact:
    sent_to: bool = False        # the watched address paid it
    received_from: bool = False  # it paid the watched address
    last_time: int = 0


class Profile:
    """What is known about one watched address before the transfer being scored; updated transfer by transfer.

    Built once per cycle from stored history (enrichment in bulk), then fed every transfer of the cycle in order.
    """

    def __init__(self, address: str, own: Iterable[str] = (), *, settings: SpamSettings | None = None) -> None:
        self.address = address
        self.settings = settings or SpamSettings()
        self.contacts: dict[str, _Contact] = {}
        self._index: dict[tuple[str, str], set[str]] = {}
        self.own = {a for a in own if a != address}
        self._own_index: dict[tuple[str, str], set[str]] = {}
        for a in self.own:
            self._own_index.setdefault(self._key(a), set()).add(a)
        self.senders: deque[tuple[int, str]] = deque(maxlen=64)   # recent incoming (time, sender), any verdict
        self.last_time: int | None = None

    def _key(self, address: str) -> tuple[str, str]:
        return address[2:2 + self.settings.prefix], address[len(address) - self.settings.suffix:]

    def remember(self, counterparty: str, *, outgoing: bool, time: int) -> None:
        """A genuine transfer with ``counterparty`` (suspicious ones are never remembered as contacts)."""
        contact = self.contacts.get(counterparty)
        if contact is None:
            contact = self.contacts[counterparty] = _Contact()
            self._index.setdefault(self._key(counterparty), set()).add(counterparty)
        if outgoing:
            contact.sent_to = True
        else:
            contact.received_from = True
        contact.last_time = max(contact.last_time, time)

    def lookalikes(self, address: str) -> list[str]:
        """Known counterparties that share prefix and suffix with ``address`` without being it (paid ones first)."""
        found = [a for a in self._index.get(self._key(address), ()) if a != address]
        return sorted(found, key=lambda a: (not self.contacts[a].sent_to, -self.contacts[a].last_time))

    def own_lookalikes(self, address: str) -> list[str]:
        return sorted(a for a in self._own_index.get(self._key(address), ()) if a != address)

    def observe(self, counterparty: str, *, outgoing: bool, time: int, verdict: Verdict) -> None:
        """Record a scored transfer: timing and sender history always, contacts only when it was genuine."""
        if not outgoing:
            self.senders.append((time, counterparty))
        self.last_time = time if self.last_time is None else max(self.last_time, time)
        if not verdict.suspicious:
            self.remember(counterparty, outgoing=outgoing, time=time)


def _similar(a: str, b: str, settings: SpamSettings) -> bool:
    return a != b and a[2:2 + settings.prefix] == b[2:2 + settings.prefix] and a[-settings.suffix:] == b[-settings.suffix:]


def score_transfer(profile: Profile, *, counterparty: str, outgoing: bool, value: int, decimals: int, time: int,
                   block: int, sender_created_block: int | None = None, reference_only: bool = False) -> Verdict:
    """Score one transfer of ``profile.address`` (``outgoing``: it is the sender) BEFORE ``profile.observe``.

    ``sender_created_block`` is the creation block of the sender when it is a contract (None: not a contract or
    unknown). ``reference_only`` applies only the reference bot's filters, as it did (outgoing is never spam).
    """
    s = profile.settings
    w = s.weights
    flags: list[Flag] = []

    def flag(code: str, reason: str) -> None:
        if code in w and w[code] > 0 and (not reference_only or code in REFERENCE_FLAGS):
            flags.append(Flag(code, w[code], reason))

    own = counterparty in profile.own or counterparty == profile.address
    if outgoing:
        if value == 0 and not own:
            flag("zero_value_outgoing", "a zero-value transfer out of your address: anyone can create these with "
                                        "transferFrom; you did not send it")
        lookalike = profile.lookalikes(counterparty)
        if lookalike and not reference_only:
            flag("lookalike_counterparty", _lookalike_reason(profile, lookalike[0], "recipient", counterparty))
        for other in profile.own_lookalikes(counterparty):
            flag("lookalike_own", f"the recipient imitates your own address {short(other)}: different middle "
                                  f"({_middle(counterparty)} instead of {_middle(other)})")
            break
        return _verdict(flags, s, reference_only)

    if reference_only or not own:
        known = profile.contacts.get(counterparty)
        trusted = known is not None and known.sent_to   # you paid it before: small amounts from it are fine
        if value == 0:
            flag("zero_value", "zero value: it moves nothing and exists only to appear in your history")
        elif s.is_dust(value, decimals) and (reference_only or not trusted):
            flag("dust", f"a dust amount (under {s.dust_numerator}/{s.dust_denominator} of a token)")
        if profile.last_time is not None and 0 <= time - profile.last_time < s.timing_window:
            flag("timing", f"arrived {(time - profile.last_time) // 60} min after your previous transfer, "
                           "as poisoners do")
        if profile.senders and _similar(counterparty, profile.senders[-1][1], s):
            flag("similar_to_last_sender", f"looks like the previous sender {short(profile.senders[-1][1])}")
        elif any(_similar(counterparty, sender, s) for _, sender in list(profile.senders)[-s.recent_senders:]):
            other = next(x for _, x in reversed(profile.senders) if _similar(counterparty, x, s))
            flag("lookalike_recent_sender", f"looks like a recent sender {short(other)}")
        if known is None and all(sender != counterparty for _, sender in profile.senders):
            flag("new_sender", "first transfer from this sender")
        if sender_created_block is not None and 0 <= block - sender_created_block < s.new_contract_blocks:
            flag("new_contract", f"sent by a contract created {block - sender_created_block} blocks earlier")
        window = {x for t, x in profile.senders if 0 <= time - t < s.cycling_window} | {counterparty}
        if len(window) >= s.cycling_senders:
            flag("rapid_cycling", f"{len(window)} different senders within {s.cycling_window // 60} min")
        if not reference_only:
            lookalike = profile.lookalikes(counterparty)
            if lookalike:
                flag("lookalike_counterparty", _lookalike_reason(profile, lookalike[0], "sender", counterparty))
            for other in profile.own_lookalikes(counterparty):
                flag("lookalike_own", f"the sender imitates your own address {short(other)}: different middle "
                                      f"({_middle(counterparty)} instead of {_middle(other)})")
                break
    return _verdict(flags, s, reference_only)


def _middle(address: str) -> str:
    return f"…{address[6:14]}…"


def _lookalike_reason(profile: Profile, known: str, role: str, fake: str) -> str:
    contact = profile.contacts[known]
    relation = "an address you paid" if contact.sent_to else "an address that paid you"
    return (f"the {role} imitates {short(known)}, {relation}: same start and end, different middle "
            f"({_middle(fake)} instead of {_middle(known)})")


def _verdict(flags: list[Flag], settings: SpamSettings, reference_only: bool) -> Verdict:
    flags = sorted(flags, key=lambda f: -f.points)   # the weightiest reason first (the one-line warning shows it)
    total = min(100, sum(f.points for f in flags))
    payload = reference_only or any(f.code in PAYLOAD_FLAGS for f in flags)
    return Verdict(total, tuple(flags), total >= settings.threshold and payload)
