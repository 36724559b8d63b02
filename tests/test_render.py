"""Tests for Telegram HTML rendering of transfer notifications."""

from __future__ import annotations

import ast
import html
import inspect
import re
from dataclasses import replace
from decimal import Decimal, localcontext
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import usdt_trio.chain.addresses as addresses_module
import usdt_trio.telegram.render as render_module
from usdt_trio.telegram.render import (
    DIGEST_RECENT,
    Notification,
    display_address,
    explorer_tx_url,
    format_amount,
    format_time,
    message_length,
    pack_notifications,
    render_batch,
    render_digest,
    render_notification,
)

ALICE = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
ALICE_CS = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
BOB = "0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"
BOB_CS = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
TX = "0x" + "ab" * 32
EVIL = '<script>alert("x")</script> & <b>'

BASE = Notification(
    kind="in",
    chain_id=1,
    token_symbol="USDT",
    decimals=6,
    value=1_234_567_890,
    watched=ALICE,
    watched_label="Main wallet",
    counterparty=BOB,
    counterparty_label=None,
    block_number=21_000_000,
    block_time=1_796_420_414,
    tx_hash=TX,
)

_ALLOWED_TAG_RE = re.compile(r'<(?:/?(?:b|i|code)>|a href="[^"<>]*">|/a>)')
_ENTITY_RE = re.compile(r"&(?:lt|gt|amp|quot|#x27);")


class _TagChecker(HTMLParser):
    """Checks tags are allowed and properly nested."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        assert tag in {"b", "i", "code", "a"}, tag
        assert (tag == "a") == bool(attrs), (tag, attrs)
        if tag == "a":
            assert [k for k, _ in attrs] == ["href"]
            assert (attrs[0][1] or "").startswith("https://")
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack and self.stack.pop() == tag, tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def assert_html_safe(text: str) -> str:
    """Every '<' opens an allowed tag, every '&' an escape, tags nest; returns the plain text."""
    for m in re.finditer("<", text):
        assert _ALLOWED_TAG_RE.match(text, m.start()), text[m.start() : m.start() + 30]
    for m in re.finditer("&", text):
        assert _ENTITY_RE.match(text, m.start()), text[m.start() : m.start() + 10]
    checker = _TagChecker()
    checker.feed(text)
    checker.close()
    assert not checker.stack
    return "".join(checker.text)


# --- format_amount ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "decimals", "expected"),
    [
        (1_234_567_890, 6, "1,234.56789"),
        (0, 6, "0"),
        (5_000_000, 6, "5"),
        (1, 6, "0.000001"),
        (999_999, 6, "0.999999"),
        (1_000_000_000_000, 6, "1,000,000"),
        (123, 0, "123"),
        (1234, 0, "1,234"),
        (10**18, 18, "1"),
        (2**256 - 1, 6, "115,792,089,237,316,195,423,570,985,008,687,907,853,269,984,665,640,564,039,457,584,007,913,129.639935"),
    ],
)
def test_format_amount(value: int, decimals: int, expected: str) -> None:
    assert format_amount(value, decimals) == expected


def test_format_amount_rejects_non_int() -> None:
    with pytest.raises(TypeError):
        format_amount(Decimal("1.5"), 6)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        format_amount(1, -1)


@given(st.integers(min_value=0, max_value=2**256 - 1), st.integers(min_value=0, max_value=30))
def test_format_amount_round_trips_via_decimal(value: int, decimals: int) -> None:
    text = format_amount(value, decimals)
    with localcontext() as ctx:
        ctx.prec = 200  # uint256 has 78 digits; the default 28 would round
        assert Decimal(text.replace(",", "")) == Decimal(value).scaleb(-decimals)
    if "." in text:
        assert not text.endswith("0") and not text.endswith(".")


# --- time and links --------------------------------------------------------------------------


def test_format_time() -> None:
    assert format_time(0) == "1970-01-01 00:00:00 UTC"
    assert format_time(1_796_420_414) == "2026-12-04 21:40:14 UTC"


def test_explorer_tx_url() -> None:
    assert explorer_tx_url(1, TX) == f"https://etherscan.io/tx/{TX}"
    for bad in ["", "0x1234", TX + "0", '0x"><script>' + "a" * 52, TX[:-1] + "g"]:
        with pytest.raises(ValueError):
            explorer_tx_url(1, bad)
    with pytest.raises(ValueError):
        explorer_tx_url(999_999, TX)


def test_display_address() -> None:
    assert display_address(ALICE, None) == f"<code>{ALICE_CS}</code>"
    assert display_address(ALICE, "  ") == f"<code>{ALICE_CS}</code>"
    assert display_address(ALICE, "Main") == f"<b>Main</b> <code>{ALICE_CS}</code>"
    out = display_address(ALICE, EVIL)
    assert "<script>" not in out
    assert "&lt;script&gt;" in out and "&amp;" in out
    assert_html_safe(out)


# --- render_notification ---------------------------------------------------------------------


def test_render_incoming() -> None:
    text = render_notification(BASE)
    assert_html_safe(text)
    assert "📥 Incoming" in text
    assert "<b>1,234.56789 USDT</b>" in text
    assert f"To: <b>Main wallet</b> <code>{ALICE_CS}</code>" in text
    assert f"From: <code>{BOB_CS}</code>" in text
    assert "21000000" in text and "2026-12-04 21:40:14 UTC" in text
    assert f'<a href="https://etherscan.io/tx/{TX}">View on Etherscan</a>' in text


def test_render_outgoing() -> None:
    text = render_notification(replace(BASE, kind="out", counterparty_label="Exchange"))
    assert_html_safe(text)
    assert "📤 Outgoing" in text
    assert f"From: <b>Main wallet</b> <code>{ALICE_CS}</code>" in text
    assert f"To: <b>Exchange</b> <code>{BOB_CS}</code>" in text


def test_render_internal() -> None:
    n = replace(BASE, kind="internal", counterparty_label="Savings", value=5_000_000, token_symbol="USDC")
    text = render_notification(n)
    assert_html_safe(text)
    assert "🔁 Internal transfer" in text
    assert "<b>5 USDC</b>" in text
    assert text.index("Main wallet") < text.index("Savings")
    assert f"From: <b>Main wallet</b> <code>{ALICE_CS}</code>" in text
    assert f"To: <b>Savings</b> <code>{BOB_CS}</code>" in text


def test_render_escapes_labels_and_symbol() -> None:
    n = replace(BASE, watched_label=EVIL, counterparty_label="a\nb&c", token_symbol="<US&DT>")
    text = render_notification(n)
    plain = assert_html_safe(text)
    assert "<script>" not in text
    assert EVIL in plain  # the user sees exactly what they typed
    assert "a b&c" in plain  # newlines in labels don't break the layout
    assert "<US&DT>" in plain


def test_render_rejects_bad_data() -> None:
    with pytest.raises(ValueError):
        render_notification(replace(BASE, tx_hash='0x"><b>'))
    with pytest.raises(ValueError):
        render_notification(replace(BASE, kind="sideways"))
    with pytest.raises(ValueError):
        render_notification(replace(BASE, counterparty="0xnope"))


def test_render_unknown_chain_has_no_link() -> None:
    text = render_notification(replace(BASE, chain_id=424242))
    assert_html_safe(text)
    assert "<a " not in text and TX in text


# --- render_batch ----------------------------------------------------------------------------

labels = st.one_of(st.none(), st.text(max_size=80), st.just(EVIL))
notifications = st.builds(
    Notification,
    kind=st.sampled_from(["in", "out", "internal"]),
    chain_id=st.just(1),
    token_symbol=st.sampled_from(["USDT", "USDC"]),
    decimals=st.just(6),
    value=st.integers(min_value=0, max_value=2**256 - 1),
    watched=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    watched_label=labels,
    counterparty=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    counterparty_label=labels,
    block_number=st.integers(min_value=0, max_value=10**9),
    block_time=st.integers(min_value=0, max_value=4_102_444_800),
    tx_hash=st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()),
)


def _items_in(chunks: list[str]) -> list[str]:
    """The tx hashes in message order (each notification has exactly one link)."""
    return [h for c in chunks for h in re.findall(r"/tx/(0x[0-9a-f]{64})", c)]


def test_render_batch_single_and_empty() -> None:
    assert render_batch([]) == []
    assert render_batch([BASE]) == [render_notification(BASE)]


def test_render_batch_groups_with_header() -> None:
    items = [replace(BASE, tx_hash="0x" + f"{i:064x}") for i in range(3)]
    chunks = render_batch(items)
    assert len(chunks) == 1
    assert chunks[0].startswith("📦 <b>3 transfers</b>")
    assert_html_safe(chunks[0])
    assert _items_in(chunks) == [n.tx_hash for n in items]


def test_render_batch_splits_many() -> None:
    items = [replace(BASE, tx_hash="0x" + f"{i:064x}") for i in range(200)]
    chunks = render_batch(items)
    assert len(chunks) > 1
    assert all(message_length(c) <= 4096 for c in chunks)
    assert _items_in(chunks) == [n.tx_hash for n in items]
    single = message_length(render_notification(BASE))
    # Greedy packing: no message could have taken the next one's first item.
    assert all(message_length(c) + single + 2 > 4096 for c in chunks[:-1])


def test_render_batch_shortens_huge_labels() -> None:
    n = replace(BASE, watched_label="W" * 5000, counterparty_label="<" * 5000)
    chunks = render_batch([n, BASE])
    assert all(message_length(c) <= 4096 for c in chunks)
    assert _items_in(chunks) == [TX, TX]
    for c in chunks:
        assert_html_safe(c)


def test_render_batch_limit_too_small() -> None:
    with pytest.raises(ValueError):
        render_batch([BASE], limit=50)


@settings(max_examples=60, deadline=None)
@given(st.lists(notifications, max_size=25), st.integers(min_value=700, max_value=4096))
def test_render_batch_properties(items: list[Notification], limit: int) -> None:
    chunks = render_batch(items, limit=limit)
    assert _items_in(chunks) == [n.tx_hash for n in items]
    for c in chunks:
        assert len(c) <= message_length(c) <= limit
        plain = assert_html_safe(c)
        assert len(plain) <= limit
        count = len(re.findall("/tx/", c))
        assert c.startswith(f"📦 <b>{count} transfers</b>") == (count > 1)


# --- corrections -----------------------------------------------------------------------------

CORRECTION_MARKER = "⚠️ <b>Correction: transfer reversed by a chain reorganisation</b>"


@pytest.mark.parametrize(("kind", "verb"), [("in", "received"), ("out", "sent"),
                                            ("internal", "moved between your addresses")])
def test_render_correction(kind: str, verb: str) -> None:
    n = replace(BASE, kind=kind, counterparty_label="Exchange", correction=True)
    text = render_notification(n)
    plain = assert_html_safe(text)
    assert text.startswith(CORRECTION_MARKER)
    assert "<b>1,234.56789 USDT</b>" in text
    assert f'<a href="https://etherscan.io/tx/{TX}">' in text
    assert f"<b>Main wallet</b> <code>{ALICE_CS}</code>" in text and f"<b>Exchange</b> <code>{BOB_CS}</code>" in text
    assert "block 21000000" in text and "2026-12-04 21:40:14 UTC" in text
    assert f"It is no longer on the chain: do not count these 1,234.56789 USDT as {verb}." in plain
    # the announcement itself does not say any of this
    announcement = render_notification(replace(n, correction=False))
    assert "Correction" not in announcement and "no longer on the chain" not in announcement


def test_render_correction_shortens_huge_labels() -> None:
    n = replace(BASE, watched_label="W" * 5000, counterparty_label="<" * 5000, correction=True)
    [(text, held)] = pack_notifications([n])
    assert held == 1 and message_length(text) <= 4096
    assert text.startswith(CORRECTION_MARKER)
    assert_html_safe(text)


def test_pack_never_groups_a_correction() -> None:
    items = [replace(BASE, tx_hash="0x" + f"{i:064x}") for i in range(5)]
    items[2] = replace(items[2], correction=True)
    packed = pack_notifications(items)
    assert [held for _, held in packed] == [2, 1, 2]
    assert packed[0][0].startswith("📦 <b>2 transfers</b>") and packed[2][0].startswith("📦 <b>2 transfers</b>")
    assert packed[1][0] == render_notification(items[2]) and packed[1][0].startswith(CORRECTION_MARKER)
    assert all(CORRECTION_MARKER not in text for text, _ in (packed[0], packed[2]))
    assert _items_in([text for text, _ in packed]) == [n.tx_hash for n in items]
    # two corrections in a row: still one message each
    assert [held for _, held in pack_notifications([items[2], items[2]])] == [1, 1]


# --- digest ----------------------------------------------------------------------------------

_TOTAL_RE = re.compile(r"^(📥|📤|🔁) (Received|Sent|Internal) <b>([0-9,.]+) (\w+)</b> · (\d+) transfers?$", re.M)
_KIND_OF = {"Received": "in", "Sent": "out", "Internal": "internal"}


def totals_in(text: str) -> dict[tuple[str, str], tuple[Decimal, int]]:
    """(token, kind) → (total shown, count shown) from a digest's totals lines."""
    return {(m[4], _KIND_OF[m[2]]): (Decimal(m[3].replace(",", "")), int(m[5])) for m in _TOTAL_RE.finditer(text)}


def listed_in(text: str) -> list[str]:
    """Tx hashes of the digest's one-liners, in the order shown."""
    return re.findall(r'<a href="https://etherscan\.io/tx/(0x[0-9a-f]{64})">tx</a>', text)


def earlier_in(text: str) -> int:
    m = re.search(r"…and (\d+) earlier", text)
    return int(m[1]) if m else 0


def numbered(n: Notification, i: int, **changes: object) -> Notification:
    """A distinct transfer (tx hash and block follow i)."""
    return replace(n, tx_hash="0x" + f"{i:064x}", block_number=21_000_000 + i, block_time=1_796_420_414 + 12 * i,
                   **changes)


def test_digest_totals_are_exact_per_token_and_direction() -> None:
    items = [numbered(BASE, i, value=1_500_000) for i in range(3)]                               # 3 × 1.5 USDT in
    items += [numbered(BASE, 3 + i, kind="out", value=250_000) for i in range(2)]                # 2 × 0.25 USDT out
    items += [numbered(BASE, 5, kind="in", token_symbol="USDC", value=2**256 - 1)]               # uint256 max
    items += [numbered(BASE, 6, kind="in", token_symbol="USDC", value=1)]
    items += [numbered(BASE, 7, kind="internal", token_symbol="USDC", value=7_000_000, counterparty_label="Savings")]
    text = render_digest(items)
    assert_html_safe(text)
    assert "📥 Received <b>4.5 USDT</b> · 3 transfers" in text
    assert "📤 Sent <b>0.5 USDT</b> · 2 transfers" in text
    assert f"📥 Received <b>{format_amount(2**256, 6)} USDC</b> · 2 transfers" in text  # exact, no float rounding
    assert "🔁 Internal <b>7 USDC</b> · 1 transfer" in text
    assert totals_in(text) == {("USDT", "in"): (Decimal("4.5"), 3), ("USDT", "out"): (Decimal("0.5"), 2),
                               ("USDC", "in"): (Decimal(format_amount(2**256, 6).replace(",", "")), 2),
                               ("USDC", "internal"): (Decimal(7), 1)}


def test_digest_header_span_and_lines() -> None:
    items = [numbered(BASE, i, kind="in" if i % 2 else "out", value=(i + 1) * 1_000_000) for i in range(25)]
    text = render_digest(items)
    lines = text.split("\n")
    assert lines[0] == "📬 <b>25 transfers while notifications were delayed</b>"
    assert "Blocks 21000000–21000024" in text
    assert f"{format_time(1_796_420_414)} – {format_time(1_796_420_414 + 12 * 24)}" in text
    assert text.count(" UTC") == 2
    assert "<b>Latest 10, newest first</b>" in text
    # the ten most recent, newest first; the 15 others counted
    assert listed_in(text) == [items[i].tx_hash for i in range(24, 14, -1)]
    assert lines[-1] == "<i>…and 15 earlier (included in the totals)</i>"
    # one-liner: direction, amount, token, shortened counterparty, link
    newest = next(line for line in lines if items[24].tx_hash in line)
    assert newest == (f"📤 <b>25 USDT</b> to <code>{BOB_CS[:6]}…{BOB_CS[-4:]}</code> · "
                      f'<a href="https://etherscan.io/tx/{items[24].tx_hash}">tx</a>')
    assert next(line for line in lines if items[23].tx_hash in line).startswith(
        f"📥 <b>24 USDT</b> from <code>{BOB_CS[:6]}…{BOB_CS[-4:]}</code> · ")


def test_digest_lists_by_block_not_by_input_order() -> None:
    items = [numbered(BASE, i) for i in range(30)]
    shuffled = items[15:] + items[:15]
    assert listed_in(render_digest(shuffled)) == [items[i].tx_hash for i in range(29, 19, -1)]


def test_digest_internal_and_several_wallets_show_the_watched_side() -> None:
    one = render_digest([numbered(BASE, 0, kind="internal", counterparty_label="Savings")])
    assert "🔁 <b>1,234.56789 USDT</b> <b>Main wallet</b> → <b>Savings</b> · " in one
    assert "…and" not in one and "Latest 1," in one and "1 transfer while" in one
    two = render_digest([numbered(BASE, 0), numbered(BASE, 1, watched=BOB, watched_label="Cold",
                                                      counterparty=ALICE, counterparty_label=None)])
    assert f"from <code>{ALICE_CS[:6]}…{ALICE_CS[-4:]}</code> to <b>Cold</b> · " in two
    assert f"from <code>{BOB_CS[:6]}…{BOB_CS[-4:]}</code> to <b>Main wallet</b> · " in two


def test_digest_of_500_rows_with_64_char_labels_fits() -> None:
    label = "&<" * 32   # 64 characters, each escaped to several
    items = [numbered(BASE, i, kind=("in", "out", "internal")[i % 3], watched_label=label, counterparty_label=label,
                      value=10**12 + i) for i in range(500)]
    text = render_digest(items)
    assert message_length(text) <= 4096
    plain = assert_html_safe(text)
    assert len(listed_in(text)) == DIGEST_RECENT
    assert earlier_in(text) == 500 - DIGEST_RECENT
    assert ("&<" * 11 + "&…") in plain   # labels shortened in the one-liners
    assert sum(count for _, count in totals_in(text).values()) == 500


def test_digest_lists_fewer_lines_when_the_limit_is_tight() -> None:
    items = [numbered(BASE, i, counterparty_label="L" * 64) for i in range(40)]
    full = render_digest(items)
    head = full[: full.index("<b>Latest")]
    limit = message_length(full) - 1
    text = render_digest(items, limit=limit)
    assert message_length(text) <= limit
    assert len(listed_in(text)) == DIGEST_RECENT - 1 and earlier_in(text) == 40 - DIGEST_RECENT + 1
    tiny = render_digest(items, limit=message_length(head) + 80)
    assert listed_in(tiny) == [] and "40 transfers not listed one by one" in tiny
    with pytest.raises(ValueError):
        render_digest(items, limit=message_length(head) - 10)


def test_digest_rejects_corrections_empty_and_bad_rows() -> None:
    with pytest.raises(ValueError):
        render_digest([])
    with pytest.raises(ValueError):
        render_digest([numbered(BASE, 0), numbered(BASE, 1, correction=True)])
    with pytest.raises(ValueError):   # malformed even where it would not be listed
        render_digest([replace(BASE, tx_hash='0x"><b>')] + [numbered(BASE, i) for i in range(1, 20)])


@settings(max_examples=60, deadline=None)
@given(st.lists(notifications, min_size=1, max_size=60), st.integers(min_value=1200, max_value=4096))
def test_digest_properties(items: list[Notification], limit: int) -> None:
    text = render_digest(items, limit=limit)
    assert message_length(text) <= limit
    plain = assert_html_safe(text)
    assert len(plain) <= limit
    listed = re.findall(r"/tx/(0x[0-9a-f]{64})", text)
    assert len(listed) <= DIGEST_RECENT
    assert len(listed) + earlier_in(text) == len(items) or (not listed and f"{len(items)} transfer" in text)
    newest_first = sorted(range(len(items)), key=lambda i: (items[i].block_number, items[i].block_time, i))[::-1]
    assert listed == [items[i].tx_hash for i in newest_first[: len(listed)]]
    expected: dict[tuple[str, str], tuple[int, int]] = {}
    for n in items:
        total, count = expected.get((n.token_symbol, n.kind), (0, 0))
        expected[(n.token_symbol, n.kind)] = (total + n.value, count + 1)
    with localcontext() as ctx:
        ctx.prec = 200   # sums of uint256 values have up to 80 digits; the default 28 would round
        assert totals_in(text) == {key: (Decimal(total).scaleb(-6), count) for key, (total, count) in expected.items()}
    assert re.search(r"^📬 <b>\d+ transfers? while notifications were delayed</b>", text)
    assert f"<b>{len(items)} transfer" in text.split("\n")[0]


# --- no float anywhere -----------------------------------------------------------------------


@pytest.mark.parametrize("module", [render_module, addresses_module])
def test_no_float_in_source(module: object) -> None:
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    for node in ast.walk(tree):
        assert not (isinstance(node, ast.Constant) and isinstance(node.value, float))
        assert not (isinstance(node, ast.Name) and node.id == "float")
        assert not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div))


def test_escape_helper_matches_spec() -> None:
    assert html.escape(EVIL, quote=False) in render_notification(replace(BASE, watched_label=EVIL))
