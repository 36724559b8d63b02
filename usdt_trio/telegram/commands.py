"""Command parsing and the command handlers; each handler returns the HTML replies to send."""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio

from ..chain.addresses import AddressError, BadChecksum, looks_like_address, parse_address, to_checksum
from ..chain.tokens import ETHEREUM
from ..errors import ChainApiError
from ..store.db import AddResult, Store, Watch
from .render import display_address
from .spam_view import render_spam_report

__all__ = ["ParsedCommand", "parse_command", "Commands", "split_message", "BOT_COMMANDS", "MAX_LABEL"]

log = logging.getLogger(__name__)
MAX_LABEL = 64
HEAD_TIMEOUT = 15.0

BOT_COMMANDS: list[tuple[str, str]] = [
    ("start", "Start the bot"),
    ("add", "Watch an address: /add <address> [label]"),
    ("list", "Show the addresses you watch"),
    ("remove", "Stop watching: /remove <address or label>"),
    ("spam", "Suspicious transfers held back: /spam [warn|silent]"),
    ("help", "How this bot works"),
]

HELP = (
    "I watch Ethereum addresses and send you one message for every <b>USDT</b> and <b>USDC</b> transfer "
    "in or out of them, seconds after it is confirmed.\n\n"
    "/add <code>&lt;address&gt; [label]</code> — watch an address (from the current block on)\n"
    "/list — the addresses you watch\n"
    "/remove <code>&lt;address or label&gt;</code> — stop watching\n"
    "/spam — suspicious transfers (address poisoning) held back instead of notified; "
    "<code>/spam warn</code> or <code>/spam silent</code> chooses whether you get a one-line warning\n"
    "/help — this message"
)


@dataclass(frozen=True)
class ParsedCommand:
    name: str          # lowercase, without "/" and "@bot"
    args: str          # the rest of the text, stripped
    addressed_to_other_bot: bool = False


def parse_command(text: str, bot_username: str | None) -> ParsedCommand | None:
    """Parse ``/cmd[@Bot] args``; None when the text is not a command."""
    text = text.strip()
    if not text.startswith("/") or len(text) == 1:
        return None
    first, *rest = text.split(maxsplit=1)
    name, _, target = first[1:].partition("@")
    other = bool(target) and (bot_username is None or target.lower() != bot_username.lower())
    return ParsedCommand(name.lower(), rest[0].strip() if rest else "", other)


def split_message(lines: list[str], limit: int = 3900) -> list[str]:
    """Join lines into messages no longer than ``limit`` characters."""
    messages: list[str] = []
    current = ""
    for line in lines:
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit and current:
            messages.append(current)
            candidate = line
        current = candidate
    if current:
        messages.append(current)
    return messages


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


class Commands:
    """The bot's private-chat commands. ``current_head`` returns the chain head (for /add)."""

    def __init__(self, store: Store, current_head: Callable[[], Awaitable[int]], *, max_wallets: int,
                 chain_id: int = ETHEREUM, learn_history: Callable[[str, int], Awaitable[None]] | None = None) -> None:
        self.store = store
        self.current_head = current_head
        self.learn_history = learn_history   # fetches a new address's past counterparties (spam screen)
        self.max_wallets = max_wallets
        self.chain_id = chain_id

    async def dispatch(self, chat_id: int, username: str | None, first_name: str | None,
                       command: ParsedCommand) -> list[str]:
        handler = {
            "start": self.start, "help": self.help, "add": self.add, "list": self.list, "remove": self.remove,
            "spam": self.spam,
        }.get(command.name)
        if handler is None:
            return [f"I don't know /{_esc(command.name[:32])}. /help lists what I can do."]
        await self.store.upsert_chat(chat_id, username, first_name)
        return await handler(chat_id, command.args, first_name)

    async def start(self, chat_id: int, args: str, first_name: str | None) -> list[str]:
        watches = await self.store.list_watches(chat_id)
        name = f", {_esc(first_name)}" if first_name else ""
        if watches:
            return [f"👋 Welcome back{name}! You watch {len(watches)} address{'es' if len(watches) != 1 else ''}; "
                    "/list shows them."]
        return [f"👋 Welcome{name}!\n\n{HELP}"]

    async def help(self, chat_id: int, args: str, first_name: str | None) -> list[str]:
        return [HELP]

    async def add(self, chat_id: int, args: str, first_name: str | None) -> list[str]:
        if not args:
            return ["Send the address after the command, e.g.\n<code>/add 0xdAC17F958D2ee523a2206206994597C13D831ec7 "
                    "Savings</code>"]
        raw, _, label_text = args.partition(" ")
        label = " ".join(label_text.split()) or None
        try:
            address = parse_address(raw)
        except BadChecksum:
            return ["❌ The checksum of that address is wrong: its mix of upper and lower case does not match EIP-55. "
                    "Check it for a typo, or send it all in lower case."]
        except AddressError:
            return ["❌ That is not an Ethereum address: it should be <code>0x</code> followed by 40 hex characters."]
        if label is not None and len(label) > MAX_LABEL:
            return [f"❌ Labels can be at most {MAX_LABEL} characters."]
        if label is not None and looks_like_address(label):
            return ["❌ A label cannot look like an address."]
        try:
            with trio.fail_after(HEAD_TIMEOUT):
                head = await self.current_head()
        except (ChainApiError, trio.TooSlowError) as exc:
            log.warning("/add: chain head unavailable: %s", type(exc).__name__)
            return ["⚠️ I couldn't reach Ethereum to find the current block. Please try /add again in a minute."]
        result = await self.store.add_watch(Watch(chat_id, self.chain_id, address, label, head), self.max_wallets)
        if result is AddResult.ADDED and self.learn_history is not None:
            try:
                with trio.fail_after(HEAD_TIMEOUT):
                    await self.learn_history(address, head)
            except (ChainApiError, trio.TooSlowError) as exc:   # the watch works without it
                log.warning("/add: history of the new address unavailable: %s", type(exc).__name__)
        shown = display_address(address, label)
        if result is AddResult.EXISTS:
            return [f"You already watch {shown}."]
        if result is AddResult.LIMIT:
            return [f"❌ You already watch the maximum of {self.max_wallets} addresses. /remove one first."]
        log.info("chat %d watches %s from block %d", chat_id, address, head)
        return [f"✅ Watching {shown}\nI'll message you about every USDT and USDC transfer after block {head}."]

    async def list(self, chat_id: int, args: str, first_name: str | None) -> list[str]:
        watches = await self.store.list_watches(chat_id)
        if not watches:
            return ["You don't watch any address yet. Add one with /add <code>&lt;address&gt; [label]</code>."]
        lines = [f"👀 You watch {len(watches)} address{'es' if len(watches) != 1 else ''}:"]
        lines += [f"{i}. {display_address(w.address, w.label)}" for i, w in enumerate(watches, 1)]
        return split_message(lines)

    async def remove(self, chat_id: int, args: str, first_name: str | None) -> list[str]:
        target = " ".join(args.split())
        if not target:
            return ["Send the address or label after the command, e.g. <code>/remove Savings</code>."]
        removed = await self.store.remove_watch(chat_id, target)
        if removed is None:
            try:
                shown = f"<code>{to_checksum(target)}</code>"
            except AddressError:
                shown = f"“{_esc(target[:MAX_LABEL])}”"
            return [f"You don't watch {shown}. /list shows what you watch."]
        return [f"🗑 Stopped watching {display_address(removed.address, removed.label)}."]

    async def spam(self, chat_id: int, args: str, first_name: str | None) -> list[str]:
        mode = args.strip().lower()
        if mode in ("warn", "silent"):
            await self.store.set_spam_mode(chat_id, mode)
            if mode == "warn":
                return ["🛡 From now on each suspicious transfer gets a one-line warning (never a payment message)."]
            return ["🛡 From now on suspicious transfers are only listed here, in /spam."]
        if mode:
            return [f"/spam takes <code>warn</code>, <code>silent</code> or nothing, not “{_esc(mode[:32])}”."]
        return split_message(render_spam_report(await self.store.spam_report(chat_id)))
