"""Render transfer notifications as Telegram HTML messages (tags used: b, i, code, a)."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from usdt_trio.chain.addresses import to_checksum
from usdt_trio.chain.tokens import EXPLORERS

__all__ = [
    "Notification",
    "format_amount",
    "format_time",
    "explorer_tx_url",
    "display_address",
    "render_notification",
    "render_batch",
    "pack_notifications",
    "message_length",
]

KINDS = ("in", "out", "internal")
_TX_HASH_RE = re.compile(r"0x[0-9a-fA-F]{64}", re.ASCII)
_EXPLORER_NAMES = {"etherscan.io": "Etherscan"}
# Label lengths tried, in order, when one notification alone does not fit a message.
_LABEL_FALLBACKS: tuple[int | None, ...] = (64, 16, 0)


@dataclass(frozen=True, slots=True)
class Notification:
    """One transfer as seen by one chat; addresses are lowercase, ``value`` is in the smallest unit."""

    kind: str  # "in" | "out" | "internal"
    chain_id: int
    token_symbol: str
    decimals: int
    value: int  # smallest unit
    watched: str  # lowercase address the chat watches (for "internal": the sender side)
    watched_label: str | None
    counterparty: str  # lowercase address (for "internal": the recipient, also watched)
    counterparty_label: str | None
    block_number: int
    block_time: int  # unix seconds, UTC
    tx_hash: str  # 0x + 64 hex lowercase


def _esc(text: str) -> str:
    """Escape text for an HTML message body."""
    return html.escape(text, quote=False)


def message_length(text: str) -> int:
    """Conservative Telegram length: UTF-16 code units of the HTML itself (≥ the parsed plain text)."""
    return len(text.encode("utf-16-le")) // 2


def format_amount(value: int, decimals: int) -> str:
    """Format an integer amount exactly: thousands separators, trailing zeros trimmed."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("value must be an int")
    if isinstance(decimals, bool) or not isinstance(decimals, int) or decimals < 0:
        raise ValueError("decimals must be a non-negative int")
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(value), 10**decimals)
    text = f"{sign}{whole:,}"
    frac_digits = str(frac).rjust(decimals, "0").rstrip("0") if decimals else ""
    return f"{text}.{frac_digits}" if frac_digits else text


def format_time(unix: int) -> str:
    """Format unix seconds as ``YYYY-MM-DD HH:MM:SS UTC``."""
    return datetime.fromtimestamp(unix, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def explorer_tx_url(chain_id: int, tx_hash: str) -> str:
    """Return the block-explorer URL of a transaction; ValueError on unknown chain or malformed hash."""
    base = EXPLORERS.get(chain_id)
    if base is None:
        raise ValueError(f"no block explorer known for chain {chain_id}")
    if not _TX_HASH_RE.fullmatch(tx_hash):
        raise ValueError(f"malformed transaction hash: {tx_hash[:80]!r}")
    return f"{base}/tx/{tx_hash.lower()}"


def _explorer_name(chain_id: int) -> str:
    """Human name of a chain's explorer, e.g. ``Etherscan``."""
    host = urlsplit(EXPLORERS[chain_id]).hostname or "explorer"
    return _EXPLORER_NAMES.get(host, host)


def _clean_label(label: str | None, max_len: int | None = None) -> str | None:
    """Collapse whitespace (no stray newlines in the layout) and optionally shorten a label."""
    if label is None:
        return None
    cleaned = " ".join(label.split())
    if max_len is not None and len(cleaned) > max_len:
        cleaned = cleaned[: max_len - 1] + "…" if max_len > 1 else ""
    return cleaned or None


def display_address(address: str, label: str | None) -> str:
    """HTML for an address: bold escaped label (if any) then the EIP-55 address in <code>."""
    code = f"<code>{to_checksum(address)}</code>"
    shown = _clean_label(label)
    return f"<b>{_esc(shown)}</b> {code}" if shown else code


def _render(n: Notification, label_len: int | None) -> str:
    """Render one notification, labels cut to ``label_len`` characters (None: uncut)."""
    if n.kind not in KINDS:
        raise ValueError(f"unknown notification kind: {n.kind!r}")
    watched = display_address(n.watched, _clean_label(n.watched_label, label_len))
    other = display_address(n.counterparty, _clean_label(n.counterparty_label, label_len))
    amount = f"<b>{_esc(format_amount(n.value, n.decimals))} {_esc(n.token_symbol)}</b>"
    if n.kind == "in":
        lines = [f"📥 Incoming {amount}", f"To: {watched}", f"From: {other}"]
    elif n.kind == "out":
        lines = [f"📤 Outgoing {amount}", f"From: {watched}", f"To: {other}"]
    else:
        lines = [f"🔁 Internal transfer {amount}", f"From: {watched}", f"To: {other}"]
    lines.append(f"<i>Block {n.block_number} · {format_time(n.block_time)}</i>")
    if n.chain_id in EXPLORERS:
        url = html.escape(explorer_tx_url(n.chain_id, n.tx_hash), quote=True)
        lines.append(f'<a href="{url}">View on {_esc(_explorer_name(n.chain_id))}</a>')
    elif not _TX_HASH_RE.fullmatch(n.tx_hash):
        raise ValueError(f"malformed transaction hash: {n.tx_hash[:80]!r}")
    else:
        lines.append(f"Tx <code>{n.tx_hash.lower()}</code>")
    return "\n".join(lines)


def render_notification(n: Notification) -> str:
    """Render one notification as a Telegram HTML message; ValueError on malformed data."""
    return _render(n, None)


def _render_fitting(n: Notification, room: int) -> str:
    """Render ``n`` within ``room`` length units, shortening then dropping labels if needed."""
    text = _render(n, None)
    for label_len in _LABEL_FALLBACKS:
        if message_length(text) <= room:
            return text
        text = _render(n, label_len)
    if message_length(text) <= room:
        return text
    raise ValueError(f"limit {room} is too small for a single notification")


def _header(count: int) -> str:
    """Batch header line(s) for a message holding ``count`` notifications."""
    return f"📦 <b>{count} transfers</b>\n\n"


_SEPARATOR = "\n\n"


def pack_notifications(items: Sequence[Notification], limit: int = 4096) -> list[tuple[str, int]]:
    """Pack notifications, in order and each exactly once, into as few messages ≤ ``limit`` as possible.

    Returns (message, number of notifications in it) pairs. Length is measured conservatively (UTF-16 units of
    the HTML). A message holding more than one notification starts with a "📦 N transfers" header.
    """
    rendered = [_render_fitting(n, limit) for n in items]
    lengths = [message_length(r) for r in rendered]
    sep = message_length(_SEPARATOR)
    chunks: list[list[str]] = []
    current: list[str] = []
    body = 0  # length of current items joined by separators
    for text, length in zip(rendered, lengths, strict=True):
        if current:
            new_body = body + sep + length
            if message_length(_header(len(current) + 1)) + new_body <= limit:
                current.append(text)
                body = new_body
                continue
            chunks.append(current)
        current, body = [text], length
    if current:
        chunks.append(current)
    return [
        (parts[0] if len(parts) == 1 else _header(len(parts)) + _SEPARATOR.join(parts), len(parts))
        for parts in chunks
    ]


def render_batch(items: Sequence[Notification], limit: int = 4096) -> list[str]:
    """The messages of :func:`pack_notifications`, without the counts."""
    return [text for text, _ in pack_notifications(items, limit)]
