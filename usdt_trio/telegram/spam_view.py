"""Rendering what the spam screen held back: the one-line warning and the /spam report (pure, HTML).

A suspicious counterparty is only ever shown shortened (``0xfb69…d359``, plain text, never in <code>), so nothing in
these messages can be copied as a genuine address.
"""

from __future__ import annotations

import html

from ..chain.tokens import ETHEREUM, token_for
from ..chain.addresses import short_address as short
from ..store.db import SpamReport, SuspiciousTransfer
from .render import _clean_label, explorer_tx_url, format_amount, format_time

__all__ = ["render_warning", "render_spam_report", "MODE_HELP"]

MODE_HELP = ("/spam <code>warn</code> — a one-line warning for each; /spam <code>silent</code> — only here "
             "(the default)")


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _amount(contract: str, value: int) -> str:
    token = token_for(ETHEREUM, contract)
    return f"{format_amount(value, token.decimals)} {token.symbol}" if token else f"{value} units"


def _mine(watched: str, label: str | None) -> str:
    shown = _clean_label(label, 32)
    return f"<b>{_esc(shown)}</b>" if shown else short(watched)


def _line(kind: str, contract: str, value: int, watched: str, label: str | None, counterparty: str) -> str:
    if kind == "out":
        return f"{_amount(contract, value)} from {_mine(watched, label)} to {short(counterparty)}"
    return f"{_amount(contract, value)} to {_mine(watched, label)} from {short(counterparty)}"


def render_warning(kind: str, contract: str, value: int, watched: str, label: str | None, counterparty: str,
                   reasons: tuple[str, ...]) -> str:
    """The one-line warning sent instead of a payment notification (chats that chose /spam warn)."""
    why = f" — {_esc(reasons[0])}" if reasons else ""
    return (f"⚠️ Likely address poisoning, not a payment: {_line(kind, contract, value, watched, label, counterparty)}"
            f"{why}. Never copy an address from your history. /spam")


def _entry(s: SuspiciousTransfer) -> str:
    reasons = "".join(f"\n   • {_esc(r)}" for r in s.reasons)
    return (f"• {_line(s.kind, s.contract, s.value, s.watched, s.watched_label, s.counterparty)} · score {s.score} · "
            f"{format_time(s.block_time)} · <a href=\"{explorer_tx_url(ETHEREUM, s.tx_hash)}\">tx</a>{reasons}")


def render_spam_report(report: SpamReport) -> list[str]:
    """/spam: how many transfers were held back, their total, the score range, the latest with reasons."""
    mode = "a one-line warning for each" if report.mode == "warn" else "no message (silent)"
    imported = (f"\nBefore the switch, usdt_monitor_bot held back {report.imported} more." if report.imported else "")
    if not report.count:
        return [f"🛡 No suspicious transfers so far. When one arrives you get {mode}.{imported}\n{MODE_HELP}"]
    scores = (f"risk score {report.min_score}" if report.min_score == report.max_score
              else f"risk score {report.min_score}–{report.max_score}")
    totals = ", ".join(_amount(c, v) for c, v in sorted(report.totals.items(), key=lambda cv: _amount(*cv)))
    lines = [f"🛡 <b>{report.count} suspicious transfer{'s' if report.count != 1 else ''}</b> held back "
             f"(total {totals}; {scores}). You get {mode} for them.{imported}",
             "They are not payments: address poisoners send them so that you copy a lookalike address from your "
             "history. Addresses are shortened on purpose.", "", f"<b>Latest {len(report.latest)}</b>"]
    lines += [_entry(s) for s in report.latest]
    lines += ["", MODE_HELP]
    return lines
