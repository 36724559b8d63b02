"""Render transfer notifications, digests and reorg corrections as Telegram HTML messages (tags: b, i, code, a)."""

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
    "render_digest",
    "message_length",
    "DIGEST_RECENT",
]

KINDS = ("in", "out", "internal")
_TX_HASH_RE = re.compile(r"0x[0-9a-fA-F]{64}", re.ASCII)
_EXPLORER_NAMES = {"etherscan.io": "Etherscan"}
# Label lengths tried, in order, when one notification alone does not fit a message.
_LABEL_FALLBACKS: tuple[int | None, ...] = (64, 16, 0)
DIGEST_RECENT = 10         # a digest lists at most this many transfers one per line (the most recent ones)
_DIGEST_LABEL_LEN = 24     # labels in a digest's one-liners are cut to this many characters
_KIND_EMOJI = {"in": "📥", "out": "📤", "internal": "🔁"}


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
    correction: bool = False  # True: this transfer, announced earlier, was removed by a chain reorganisation


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


def _check_kind(n: Notification) -> None:
    if n.kind not in KINDS:
        raise ValueError(f"unknown notification kind: {n.kind!r}")


def _amount(n: Notification) -> str:
    """Plain (unescaped) amount with its token, e.g. ``1,234.5 USDT``."""
    return f"{format_amount(n.value, n.decimals)} {n.token_symbol}"


def _tx_link(n: Notification, text: str) -> str:
    """A link to the transaction on the chain's explorer, or the hash in <code> when no explorer is known."""
    if n.chain_id in EXPLORERS:
        url = html.escape(explorer_tx_url(n.chain_id, n.tx_hash), quote=True)
        return f'<a href="{url}">{_esc(text)}</a>'
    if not _TX_HASH_RE.fullmatch(n.tx_hash):
        raise ValueError(f"malformed transaction hash: {n.tx_hash[:80]!r}")
    return f"Tx <code>{n.tx_hash.lower()}</code>"


def _transfer_lines(n: Notification, label_len: int | None) -> list[str]:
    """Direction and amount, the two addresses as the chat sees them."""
    _check_kind(n)
    watched = display_address(n.watched, _clean_label(n.watched_label, label_len))
    other = display_address(n.counterparty, _clean_label(n.counterparty_label, label_len))
    amount = f"<b>{_esc(_amount(n))}</b>"
    if n.kind == "in":
        return [f"📥 Incoming {amount}", f"To: {watched}", f"From: {other}"]
    if n.kind == "out":
        return [f"📤 Outgoing {amount}", f"From: {watched}", f"To: {other}"]
    return [f"🔁 Internal transfer {amount}", f"From: {watched}", f"To: {other}"]


_CORRECTION_MARKER = "⚠️ <b>Correction: transfer reversed by a chain reorganisation</b>"
_NOT_COUNTED = {"in": "received", "out": "sent", "internal": "moved between your addresses"}


def _render(n: Notification, label_len: int | None) -> str:
    """Render one notification, labels cut to ``label_len`` characters (None: uncut)."""
    if n.correction:
        return _render_correction(n, label_len)
    lines = _transfer_lines(n, label_len)
    lines.append(f"<i>Block {n.block_number} · {format_time(n.block_time)}</i>")
    explorer = f"View on {_explorer_name(n.chain_id)}" if n.chain_id in EXPLORERS else ""
    lines.append(_tx_link(n, explorer))
    return "\n".join(lines)


def _render_correction(n: Notification, label_len: int | None) -> str:
    """The correction of an earlier announcement whose transfer a chain reorganisation removed."""
    lines = [_CORRECTION_MARKER,
             "This transfer was announced to you earlier, but a chain reorganisation removed it:", ""]
    lines += _transfer_lines(n, label_len)
    lines.append(f"<i>Was in block {n.block_number} · {format_time(n.block_time)}</i>")
    explorer = f"Check it on {_explorer_name(n.chain_id)}" if n.chain_id in EXPLORERS else ""
    lines.append(_tx_link(n, explorer))
    lines += ["", f"<b>It is no longer on the chain: do not count these {_esc(_amount(n))} "
                  f"as {_NOT_COUNTED[n.kind]}.</b>",
              "<i>If its transaction is included again later, you will be notified again.</i>"]
    return "\n".join(lines)


def render_notification(n: Notification) -> str:
    """Render one notification (or, with ``n.correction``, its correction) as Telegram HTML; ValueError on bad data."""
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
    the HTML). A message holding more than one notification starts with a "📦 N transfers" header. A correction
    is never grouped: it always gets a message of its own.
    """
    rendered = [_render_fitting(n, limit) for n in items]
    lengths = [message_length(r) for r in rendered]
    sep = message_length(_SEPARATOR)
    chunks: list[list[str]] = []
    current: list[str] = []
    body = 0  # length of current items joined by separators
    for n, text, length in zip(items, rendered, lengths, strict=True):
        if n.correction:
            if current:
                chunks.append(current)
            chunks.append([text])
            current, body = [], 0
            continue
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


# --- digest ------------------------------------------------------------------------------------------------


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _short_party(address: str, label: str | None) -> str:
    """Compact HTML for an address in a one-liner: its (shortened) label, else ``0x1234…abcd`` checksummed."""
    shown = _clean_label(label, _DIGEST_LABEL_LEN)
    if shown:
        return f"<b>{_esc(shown)}</b>"
    checksummed = to_checksum(address)
    return f"<code>{checksummed[:6]}…{checksummed[-4:]}</code>"


def _digest_line(n: Notification, show_watched: bool) -> str:
    """One transfer on one line: direction, amount, counterparty (and the watched side if several), tx link."""
    _check_kind(n)
    if n.correction:
        raise ValueError("a correction cannot be part of a digest")
    amount = f"<b>{_esc(_amount(n))}</b>"
    watched = _short_party(n.watched, n.watched_label)
    other = _short_party(n.counterparty, n.counterparty_label)
    if n.kind == "in":
        parties = f"from {other}" + (f" to {watched}" if show_watched else "")
    elif n.kind == "out":
        parties = f"to {other}" + (f" from {watched}" if show_watched else "")
    else:
        parties = f"{watched} → {other}"
    return f"{_KIND_EMOJI[n.kind]} {amount} {parties} · {_tx_link(n, 'tx')}"


def _digest_head(items: Sequence[Notification]) -> list[str]:
    """Header, time span and block range, then count and exact total per token and direction."""
    count = len(items)
    first_time, last_time = min(n.block_time for n in items), max(n.block_time for n in items)
    first_block, last_block = min(n.block_number for n in items), max(n.block_number for n in items)
    blocks = f"Block {first_block}" if first_block == last_block else f"Blocks {first_block}–{last_block}"
    when = format_time(first_time) if first_time == last_time else \
        f"{format_time(first_time)} – {format_time(last_time)}"
    lines = [f"📬 <b>{_plural(count, 'transfer')} while notifications were delayed</b>",
             f"One summary instead of {_plural(count, 'separate message')}.",
             f"<i>{blocks} · {when}</i>", "", "<b>Totals</b>"]
    chains = {n.chain_id for n in items}
    totals: dict[tuple[str, int, int], dict[str, list[int]]] = {}
    for n in items:
        per_kind = totals.setdefault((n.token_symbol, n.chain_id, n.decimals), {})
        entry = per_kind.setdefault(n.kind, [0, 0])
        entry[0] += 1
        entry[1] += n.value
    names = {"in": "Received", "out": "Sent", "internal": "Internal"}
    for (symbol, chain_id, decimals), per_kind in sorted(totals.items()):
        token = symbol if len(chains) == 1 else f"{symbol} (chain {chain_id})"
        for kind in KINDS:
            if kind in per_kind:
                number, total = per_kind[kind]
                lines.append(f"{_KIND_EMOJI[kind]} {names[kind]} <b>{_esc(format_amount(total, decimals))} "
                             f"{_esc(token)}</b> · {_plural(number, 'transfer')}")
    return lines


def render_digest(items: Sequence[Notification], limit: int = 4096, recent: int = DIGEST_RECENT) -> str:
    """One message summing up many announcements (no corrections): span, exact totals, the latest few, the rest counted.

    Lists at most ``recent`` of the most recent transfers (by block, newest first), fewer when the message would
    exceed ``limit`` (measured like :func:`message_length`); ValueError on malformed data, an empty list, a
    correction, or a limit too small for the summary itself.
    """
    if not items:
        raise ValueError("a digest needs at least one notification")
    head = "\n".join(_digest_head(items))
    show_watched = len({n.watched for n in items}) > 1
    order = sorted(range(len(items)), key=lambda i: (items[i].block_number, items[i].block_time, i))
    newest = [items[i] for i in reversed(order)]
    lines = [_digest_line(n, show_watched) for n in newest[: max(recent, 0)]]
    for n in newest[len(lines):]:  # validate the unlisted ones too: a digest never hides malformed rows
        _digest_line(n, show_watched)
    for shown in range(len(lines), -1, -1):
        rest = len(items) - shown
        if shown:
            body = [f"<b>Latest {shown}, newest first</b>", *lines[:shown]]
            if rest:
                body.append(f"<i>…and {rest} earlier (included in the totals)</i>")
        else:
            body = [f"<i>{_plural(rest, 'transfer')} not listed one by one (included in the totals).</i>"]
        text = head + "\n\n" + "\n".join(body)
        if message_length(text) <= limit:
            return text
    raise ValueError(f"limit {limit} is too small for a digest of {len(items)} notifications")
