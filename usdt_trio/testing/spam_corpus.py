"""A labelled corpus of address-poisoning campaigns and legitimate traffic, and the evaluation of a detector on it.

Each case is one watched address: the genuine history it had before (not scored) and a timeline of transfers, each
labelled poison or not. The generator is seeded, so the corpus is the same on every run. Amounts have 6 decimals.

Poisoning: zero-value transferFrom "outgoing" to a lookalike of a recent recipient; dust from a lookalike of a recent
recipient or of a recent sender; lookalikes sending a little MORE than dust; lookalikes of the user's own other
address; bursts of several lookalikes. Legitimate: payroll to many addresses, exchange withdrawals, repeated payments
from the same counterparty, small amounts from friends, test transfers from the user's own address or from someone
they paid before, a merchant receiving many customer payments.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ..monitor.spam import Profile, SpamSettings, score_transfer

__all__ = ["Event", "Case", "Score", "build_corpus", "evaluate"]

USDT = 10 ** 6
DAY = 86_400


@dataclass(frozen=True)
class Event:
    counterparty: str
    outgoing: bool
    value: int
    time: int
    poison: bool = False
    scenario: str = ""
    sender_created_block: int | None = None

    @property
    def block(self) -> int:
        return 19_000_000 + self.time // 12


@dataclass
class Case:
    name: str
    watched: str
    own: tuple[str, ...] = ()
    history: list[Event] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


class _Gen:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def address(self) -> str:
        return f"0x{self.rng.getrandbits(160):040x}"

    def lookalike(self, of: str) -> str:
        """Same first 3-5 and last 4-6 hex digits, a random middle (what vanity generators produce)."""
        prefix, suffix = self.rng.randint(3, 5), self.rng.randint(4, 6)
        middle = f"{self.rng.getrandbits(160):040x}"[prefix:40 - suffix]
        fake = f"0x{of[2:2 + prefix]}{middle}{of[42 - suffix:]}"
        return fake if fake != of else self.lookalike(of)

    def amount(self, low: float, high: float) -> int:
        return self.rng.randint(int(low * USDT), int(high * USDT))

    def dust(self) -> int:
        return self.rng.choice([0, 1, 10, 1_000, 10_000, 50_000, 99_999])

    def history(self, now: int, counterparties: list[str], outgoing: bool) -> list[Event]:
        return [Event(c, outgoing, self.amount(20, 5_000), now - self.rng.randint(2, 60) * DAY) for c in counterparties]


def _poison_cases(g: _Gen, start: int) -> list[Case]:
    cases = []
    for i in range(12):   # the victim pays X; a lookalike of X appears: zero transferFrom, dust, or a little value
        watched, x = g.address(), g.address()
        t = start + i * DAY
        kind = ["zero_transfer_from", "dust_from_recipient_lookalike", "value_from_recipient_lookalike"][i % 3]
        fake = g.lookalike(x)
        events = [Event(x, True, g.amount(500, 20_000), t, scenario="victim pays")]
        delay = g.rng.randint(30, 900)
        if kind == "zero_transfer_from":
            events.append(Event(fake, True, 0, t + delay, poison=True, scenario=kind))
        elif kind == "dust_from_recipient_lookalike":
            events.append(Event(fake, False, g.dust(), t + delay, poison=True, scenario=kind))
        else:
            events.append(Event(fake, False, g.amount(0.1, 2), t + delay, poison=True, scenario=kind))
        cases.append(Case(f"poison-{kind}-{i}", watched, history=g.history(t, [g.address() for _ in range(5)], True),
                          events=events))
    for i in range(8):    # the victim is paid by Y; a lookalike of Y sends dust or zero
        watched, y = g.address(), g.address()
        t = start + (20 + i) * DAY
        events = [Event(y, False, g.amount(100, 3_000), t, scenario="victim is paid"),
                  Event(g.lookalike(y), False, g.dust(), t + g.rng.randint(60, 3_000), poison=True,
                        scenario="dust_from_sender_lookalike")]
        cases.append(Case(f"poison-sender-lookalike-{i}", watched, history=g.history(t, [y], False), events=events))
    for i in range(6):    # a lookalike of the user's own other address (so the user may "send to themselves")
        watched, own = g.address(), g.address()
        t = start + (40 + i) * DAY
        value = g.dust() if i % 2 else g.amount(0.1, 1)
        events = [Event(own, True, g.amount(100, 1_000), t, scenario="moves to own address"),
                  Event(g.lookalike(own), False, value, t + g.rng.randint(120, 5_000), poison=True,
                        scenario="own_lookalike")]
        cases.append(Case(f"poison-own-lookalike-{i}", watched, own=(watched, own), events=events))
    for i in range(6):    # a burst: several lookalikes of several recent recipients, minutes apart, some contracts
        watched = g.address()
        recipients = [g.address() for _ in range(3)]
        t = start + (50 + i) * DAY
        events = [Event(r, True, g.amount(200, 8_000), t + k * 600, scenario="victim pays") for k, r in enumerate(recipients)]
        for k, r in enumerate(recipients):
            created = events[0].block + 2 if k == 1 else None
            events.append(Event(g.lookalike(r), bool(k % 2 == 0 and i % 2), 0 if k % 2 == 0 else g.dust(),
                                t + 1_900 + k * 45, poison=True, scenario="burst", sender_created_block=created))
        cases.append(Case(f"poison-burst-{i}", watched, events=events))
    for i in range(4):    # a lookalike of a counterparty from BEFORE the watch started: no stored history knows it
        watched, x = g.address(), g.address()
        t = start + (60 + i) * DAY
        value = g.amount(0.1, 2) if i % 2 else g.dust()
        events = [Event(g.lookalike(x), False, value, t, poison=True, scenario="lookalike_of_unknown_past")]
        cases.append(Case(f"poison-unknown-past-{i}", watched, events=events))
    return cases


def _legit_cases(g: _Gen, start: int) -> list[Case]:
    cases = []
    for i in range(6):    # payroll: one employer paying 15-30 people within an hour
        watched = g.address()
        t = start + i * DAY
        staff = [g.address() for _ in range(g.rng.randint(15, 30))]
        events = [Event(p, True, g.amount(300, 6_000), t + k * g.rng.randint(20, 200), scenario="payroll")
                  for k, p in enumerate(staff)]
        cases.append(Case(f"legit-payroll-{i}", watched, history=g.history(t, staff[:5], True), events=events))
    for i in range(8):    # exchange withdrawals, sometimes two exchanges within minutes
        watched = g.address()
        exchanges = [g.address() for _ in range(2)]
        t = start + (10 + i) * DAY
        events = [Event(exchanges[0], False, g.amount(50, 20_000), t, scenario="exchange withdrawal")]
        if i % 2:
            events.append(Event(exchanges[1], False, g.amount(50, 20_000), t + g.rng.randint(60, 900),
                                scenario="second exchange withdrawal"))
        events.append(Event(exchanges[0], False, g.amount(50, 20_000), t + 3 * DAY, scenario="exchange withdrawal"))
        cases.append(Case(f"legit-exchange-{i}", watched, history=g.history(t, [g.address()], True), events=events))
    for i in range(6):    # repeated payments from the same counterparty (salary, rent)
        watched, payer = g.address(), g.address()
        t = start + (20 + i) * DAY
        events = [Event(payer, False, g.amount(1_000, 4_000), t + k * 30 * DAY, scenario="repeated payment")
                  for k in range(6)]
        cases.append(Case(f"legit-repeated-{i}", watched, events=events))
    for i in range(8):    # small legitimate amounts: friends' 0.5-5 USDT, and 0.01-0.09 test sends from known parties
        watched, friend, own = g.address(), g.address(), g.address()
        t = start + (30 + i) * DAY
        events = [Event(friend, False, g.amount(0.5, 5), t + k * 4 * 3_600, scenario="small payment") for k in range(3)]
        events.append(Event(own, False, g.amount(0.01, 0.09), t + DAY, scenario="test send from own address"))
        events.append(Event(friend, True, g.amount(5, 50), t + 2 * DAY, scenario="pays a friend"))
        events.append(Event(friend, False, g.amount(0.01, 0.09), t + 3 * DAY, scenario="test send from someone paid"))
        cases.append(Case(f"legit-small-{i}", watched, own=(watched, own), events=events))
    for i in range(4):    # a merchant: customer payments, several within half an hour
        watched = g.address()
        t = start + (40 + i) * DAY
        events, clock = [], t
        for _ in range(g.rng.randint(8, 15)):
            clock += g.rng.randint(60, 1_500)
            events.append(Event(g.address(), False, g.amount(5, 400), clock, scenario="customer payment"))
        cases.append(Case(f"legit-merchant-{i}", watched, events=events))
    return cases


def build_corpus(seed: int = 2026) -> list[Case]:
    """The labelled cases (same seed, same corpus)."""
    g = _Gen(seed)
    start = 1_780_000_000
    return _poison_cases(g, start) + _legit_cases(g, start)


@dataclass
class Score:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    missed: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def evaluate(cases: list[Case], *, reference_only: bool = False, settings: SpamSettings | None = None) -> Score:
    """Score every event in order, as the scanner would, and compare with the labels."""
    result = Score()
    for case in cases:
        profile = Profile(case.watched, case.own, settings=settings)
        for e in sorted(case.history, key=lambda e: e.time):
            profile.remember(e.counterparty, outgoing=e.outgoing, time=e.time)
        for e in sorted(case.events, key=lambda e: e.time):
            verdict = score_transfer(profile, counterparty=e.counterparty, outgoing=e.outgoing, value=e.value,
                                     decimals=6, time=e.time, block=e.block, sender_created_block=e.sender_created_block,
                                     reference_only=reference_only)
            profile.observe(e.counterparty, outgoing=e.outgoing, time=e.time, verdict=verdict)
            label = f"{case.name}: {e.scenario} (score {verdict.score}: {', '.join(f.code for f in verdict.flags)})"
            if e.poison and verdict.suspicious:
                result.tp += 1
            elif e.poison:
                result.fn += 1
                result.missed.append(label)
            elif verdict.suspicious:
                result.fp += 1
                result.false_alarms.append(label)
            else:
                result.tn += 1
    return result
