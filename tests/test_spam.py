"""The poisoning scorer (pure): the reference's filters and weights, what it misses, reasons in words, the corpus."""

from __future__ import annotations

import re

import trio

from hypothesis import given, strategies as st

from usdt_trio.monitor.spam import DEFAULT_WEIGHTS, Profile, SpamSettings, score_transfer, short
from usdt_trio.testing.spam_corpus import build_corpus, evaluate

ME = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
PAID = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"
FAKE_PAID = "0xfb6000000000000000000000000000000000d359"   # same first 3 and last 4 hex digits
FRIEND = "0xdbf03b407c01e7cd3cbea99509d93f8dddc8c6fb"
OWN = "0x28c6c06298d514db089934071355e5743bf21d60"
T = 1_780_000_000
USDT = 10 ** 6


def profile() -> Profile:
    p = Profile(ME, own=(ME, OWN))
    p.remember(PAID, outgoing=True, time=T - 86_400)
    p.remember(FRIEND, outgoing=False, time=T - 86_400)
    return p


def score(p: Profile, counterparty: str, value: int, *, outgoing: bool = False, time: int = T, **kw):
    return score_transfer(p, counterparty=counterparty, outgoing=outgoing, value=value, decimals=6, time=time,
                          block=19_000_000, **kw)


def codes(verdict) -> set[str]:
    return {f.code for f in verdict.flags}


def test_reference_filters_and_default_weights():
    p = profile()
    assert DEFAULT_WEIGHTS["dust"] == 50 and DEFAULT_WEIGHTS["zero_value"] == 50 and SpamSettings().threshold == 50
    dust = score(p, "0x" + "1" * 40, 99_999, reference_only=True)
    assert codes(dust) == {"dust", "new_sender"} and dust.score == 65 and dust.suspicious
    assert codes(score(p, FRIEND, 0, reference_only=True)) == {"zero_value"}
    assert not score(p, FRIEND, 100_000, reference_only=True).flags            # 0.1 USDT is not dust
    p.observe(FRIEND, outgoing=False, time=T, verdict=score(p, FRIEND, USDT))
    timing = score(p, "0x" + "2" * 40, 5 * USDT, time=T + 19 * 60, reference_only=True)
    assert codes(timing) == {"timing", "new_sender"} and timing.score == 40 and not timing.suspicious
    similar = "0xdbf" + "0" * 33 + "c6fb"
    assert "similar_to_last_sender" in codes(score(p, similar, 5 * USDT, reference_only=True))
    young = score(p, "0x" + "3" * 40, 5 * USDT, sender_created_block=19_000_000 - 5, reference_only=True)
    assert "new_contract" in codes(young)
    for i, sender in enumerate(["0x" + "4" * 40, "0x" + "5" * 40]):
        p.observe(sender, outgoing=False, time=T + 60 * (i + 1), verdict=score(p, sender, USDT))
    assert "rapid_cycling" in codes(score(p, "0x" + "6" * 40, USDT, time=T + 600, reference_only=True))


def test_outgoing_is_never_spam_for_the_reference_but_zero_transfer_from_is_for_us():
    p = profile()
    assert not score(p, FAKE_PAID, 0, outgoing=True, reference_only=True).suspicious
    ours = score(p, FAKE_PAID, 0, outgoing=True)
    assert ours.suspicious and {"zero_value_outgoing", "lookalike_counterparty"} <= codes(ours)
    assert not score(p, "0x" + "7" * 40, 250 * USDT, outgoing=True).flags     # a real payment to a new address


def test_lookalike_of_an_address_you_paid_is_caught_whatever_the_amount_and_explained():
    p = profile()
    verdict = score(p, FAKE_PAID, 3 * USDT)            # more than dust: the reference's dust filter does not fire
    assert verdict.suspicious and "lookalike_counterparty" in codes(verdict)
    assert not score(p, FAKE_PAID, 3 * USDT, reference_only=True).suspicious
    [reason] = [f.reason for f in verdict.flags if f.code == "lookalike_counterparty"]
    assert reason == (f"the sender imitates {short(PAID)}, an address you paid: same start and end, different middle "
                      f"(…{FAKE_PAID[6:14]}… instead of …{PAID[6:14]}…)")
    assert not re.search(r"0x[0-9a-f]{40}", " ".join(verdict.reasons()))   # no copyable address in any reason


def test_lookalike_of_your_own_other_address():
    fake_own = OWN[:6] + "0" * 32 + OWN[-4:]
    verdict = score(profile(), fake_own, 2 * USDT)
    assert verdict.suspicious and "lookalike_own" in codes(verdict)
    assert not score(profile(), OWN, 10_000).flags      # a test send from your own address is fine, dust or not


def test_context_alone_never_hides_a_real_payment():
    """A merchant's third customer within 30 minutes: timing + new sender + cycling = 70, still a payment."""
    p = Profile(ME)
    for i in range(2):
        sender = f"0x{i + 1:040x}"
        p.observe(sender, outgoing=False, time=T + i * 300, verdict=score(p, sender, 20 * USDT, time=T + i * 300))
    verdict = score(p, f"0x{9:040x}", 20 * USDT, time=T + 700)
    assert codes(verdict) == {"timing", "new_sender", "rapid_cycling"} and verdict.score == 70
    assert not verdict.suspicious
    assert score(p, f"0x{9:040x}", 20 * USDT, time=T + 700, reference_only=True).suspicious


def test_small_test_payment_from_someone_you_paid_is_not_dust_spam():
    p = profile()
    assert not score(p, PAID, 10_000).suspicious
    assert score(p, PAID, 10_000, reference_only=True).suspicious


def test_weights_are_settings():
    settings = SpamSettings(weights={**DEFAULT_WEIGHTS, "dust": 0})
    p = Profile(ME, settings=settings)
    p.remember(FRIEND, outgoing=True, time=T - 10_000)
    assert "dust" not in codes(score(p, "0x" + "8" * 40, 1))


def test_lookalike_lookup_stays_exact_with_many_counterparties():
    p = Profile(ME)
    for i in range(100_000):
        p.remember(f"0x{i * 7919:040x}", outgoing=True, time=T)
    p.remember(PAID, outgoing=True, time=T)
    assert p.lookalikes(FAKE_PAID) == [PAID]
    assert p.lookalikes(PAID) == []


@given(st.integers(0, 10 ** 30), st.booleans(), st.integers(0, 10 ** 6))
def test_score_is_bounded_and_suspicious_means_over_the_threshold(value, outgoing, dt):
    p = profile()
    verdict = score(p, FAKE_PAID, value, outgoing=outgoing, time=T + dt)
    assert 0 <= verdict.score <= 100
    assert not verdict.suspicious or verdict.score >= 50
    assert all(f.points == DEFAULT_WEIGHTS[f.code] for f in verdict.flags)


def test_corpus_recall_and_precision_beat_the_reference():
    cases = build_corpus()
    ours, reference = evaluate(cases), evaluate(cases, reference_only=True)
    assert sum(e.poison for c in cases for e in c.events) >= 40
    assert ours.recall >= 0.95 and ours.precision >= 0.95, (ours.missed, ours.false_alarms)
    assert reference.recall < ours.recall and reference.precision < ours.precision


# ---- in the service ---------------------------------------------------------------------------------------

async def test_poisoning_is_held_back_and_listed_by_spam_command(fakes, settings_for):
    from conftest import USER, converse, running

    async with running(settings_for(fakes)):
        await converse(fakes.telegram, f"/add {ME} Savings")
        fakes.chain.transfer("USDT", ME, PAID, 500 * USDT)
        fakes.chain.mine()
        with trio.fail_after(15):
            await fakes.telegram.wait_for_messages(USER, 2)
        fakes.chain.transfer("USDT", FAKE_PAID, ME, 1_000)           # dust from a lookalike of the friend
        fakes.chain.transfer("USDT", ME, FAKE_PAID, 0)               # zero-value transferFrom "outgoing"
        fakes.chain.mine()
        fakes.chain.transfer("USDC", FRIEND, ME, 42 * USDT)          # a real payment right after
        fakes.chain.mine()
        with trio.fail_after(15):
            messages = await fakes.telegram.wait_for_messages(USER, 3)
        assert "42 USDC" in messages[2].text and "Incoming" in messages[2].text
        [report] = await converse(fakes.telegram, "/spam")
        assert len(fakes.telegram.messages_to(USER)) == 4             # nothing else was sent in between
    assert "2 suspicious transfers" in report and "0.001 USDT" in report
    assert short(FAKE_PAID) in report and f"imitates {short(PAID)}, an address you paid" in report
    assert "transferFrom" in report
    assert not re.search(r"0x[0-9a-fA-F]{40}", report)               # nothing copyable


async def test_spam_warn_mode_sends_a_one_line_warning_without_a_copyable_address(fakes, settings_for):
    from conftest import USER, converse, running

    async with running(settings_for(fakes)):
        await converse(fakes.telegram, f"/add {ME} Savings")
        [reply] = await converse(fakes.telegram, "/spam warn")
        assert "one-line warning" in reply
        fakes.chain.transfer("USDT", ME, PAID, 500 * USDT)
        fakes.chain.mine()
        with trio.fail_after(15):
            await fakes.telegram.wait_for_messages(USER, 3)
        fakes.chain.transfer("USDT", FAKE_PAID, ME, 1_000)
        fakes.chain.mine()
        with trio.fail_after(15):
            messages = await fakes.telegram.wait_for_messages(USER, 4)
        warning = messages[3]
        assert warning.text.startswith("⚠️ Likely address poisoning, not a payment: 0.001 USDT to Savings from ")
        assert "\n" not in warning.text and "<code>" not in warning.html
        assert not re.search(r"0x[0-9a-fA-F]{40}", warning.text + warning.html)
        [reply] = await converse(fakes.telegram, "/spam silent")
        assert "only listed here" in reply
        [report] = await converse(fakes.telegram, "/spam")
        assert "1 suspicious transfer" in report


def test_spam_variables_reach_the_scorer():
    from usdt_trio.config import Settings

    settings = Settings(_env_file=None, TELEGRAM_BOT_TOKEN="1:x", ETHERSCAN_API_KEY="k", SPAM_DUST_THRESHOLD="0.25",
                        SPAM_WEIGHT_NEW_SENDER="0", SPAM_SCORE_THRESHOLD="60")
    spam = settings.spam_settings()
    assert spam.threshold == 60 and spam.weights["new_sender"] == 0 and spam.weights["dust"] == 50
    assert spam.is_dust(249_999, 6) and not spam.is_dust(250_000, 6)


async def test_brand_new_contract_sender_is_looked_up_once_and_held_back(fakes, scanner_for):
    from conftest import watch

    async with scanner_for() as (scanner, store):
        await scanner.cycle()
        await watch(store, 1, ME, fakes.chain.head)
        bot = "0x" + "ab" * 20
        fakes.chain.add_contract(bot, block_number=fakes.chain.head)     # deployed just now
        fakes.chain.transfer("USDT", bot, ME, 500_000)                   # 0.5 USDT: more than dust
        fakes.chain.mine()
        await scanner.cycle()
        fakes.chain.transfer("USDT", bot, ME, 400_000)
        fakes.chain.transfer("USDT", FRIEND, ME, 900_000)                 # an ordinary small payment: an EOA
        fakes.chain.mine()
        await scanner.cycle()
        report = await store.spam_report(1)
        pending = await store.pending_outbox()
    assert fakes.etherscan.calls["contract.getcontractcreation"] == 2   # bot once (cached), FRIEND once
    assert report.count == 2 and all("created" in " ".join(s.reasons) for s in report.latest)
    assert [p.transfer.value for p in pending] == [900_000]


async def test_old_bot_history_feeds_the_screen_and_spam_report(fakes, scanner_for, tmp_path):
    """After a switch, a lookalike of someone the user paid under usdt_monitor_bot is caught at once."""
    import sqlite3

    from test_store import OLD_SCHEMA

    conn = sqlite3.connect(str(tmp_path / "old.sqlite3"))
    conn.executescript(OLD_SCHEMA)
    conn.execute("INSERT INTO users(user_id, username, first_name) VALUES (7, 'dave', 'Dave')")
    conn.execute("INSERT INTO wallets(user_id, address) VALUES (7, ?)", (ME,))
    conn.executemany(
        "INSERT INTO transaction_history(tx_hash, monitored_address, from_address, to_address, value, block_number, "
        "timestamp, token_symbol, risk_score) VALUES (?,?,?,?,?,?,?,?,?)", [
            ("0x" + "1" * 64, ME, ME, PAID, 1500.0, 18_000_000, "2026-10-01 10:00:00", "USDT", 0),
            ("0x" + "2" * 64, ME, FAKE_PAID, ME, 0.0, 18_000_010, "2026-10-01 10:05:00", "USDT", 90)])
    conn.commit()
    conn.close()
    async with scanner_for(db="old.sqlite3") as (scanner, store):
        await scanner.cycle()
        fake = PAID[:5] + "9" * 33 + PAID[-4:]
        fakes.chain.transfer("USDT", fake, ME, 5 * USDT)    # more than dust: only the history can tell
        fakes.chain.mine()
        await scanner.cycle()
        report = await store.spam_report(7)
    assert report.count == 1 and report.imported == 1
    assert f"imitates {short(PAID)}, an address you paid" in " ".join(report.latest[0].reasons)


async def test_add_learns_the_addresses_past_so_older_counterparties_are_protected(fakes, settings_for):
    """Paid before the watch began: /add fetches the address's past (one tokentx), so its lookalike is caught."""
    from conftest import USER, converse, running

    fakes.chain.transfer("USDT", ME, PAID, 800 * USDT)                 # long before the /add
    fakes.chain.transfer("USDT", "0x" + "cd" * 20, ME, 0)              # old poisoning: must not become a contact
    fakes.chain.mine(5)
    async with running(settings_for(fakes)):
        await converse(fakes.telegram, f"/add {ME} Savings")
        assert fakes.etherscan.calls["account.tokentx"] >= 1
        fakes.chain.transfer("USDT", FAKE_PAID, ME, 3 * USDT)          # more than dust, from a lookalike of PAID
        fakes.chain.transfer("USDC", FRIEND, ME, 12 * USDT)
        fakes.chain.mine()
        with trio.fail_after(15):
            messages = await fakes.telegram.wait_for_messages(USER, 2)
        assert "12 USDC" in messages[1].text
        [report] = await converse(fakes.telegram, "/spam")
    assert "1 suspicious transfer" in report and f"imitates {short(PAID)}, an address you paid" in report
