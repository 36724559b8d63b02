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
    Notification,
    display_address,
    explorer_tx_url,
    format_amount,
    format_time,
    message_length,
    render_batch,
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
