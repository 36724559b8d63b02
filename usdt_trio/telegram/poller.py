"""The Telegram long-poll loop and update router; the confirmed offset lives in the database."""

from __future__ import annotations

import logging
import warnings

import telegram
import trio
from telegram import BotCommand, Update
from telegram.constants import ParseMode
from telegram.error import Conflict, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError
from telegram.warnings import PTBUserWarning

from ..errors import ConfigError
from ..store.db import Store
from .commands import BOT_COMMANDS, Commands, parse_command
from .limits import ChatLimiter
from .throttle import Throttle
from .transport import NO_PREVIEW, retry_after_seconds

__all__ = ["Poller", "OFFSET_KEY"]

log = logging.getLogger(__name__)
OFFSET_KEY = "telegram.update_offset"
ALLOWED_UPDATES = ["message", "my_chat_member"]

# getUpdates is fetched raw on purpose (each update parsed on its own, so one PTB cannot parse is skipped, not
# crash-looped); PTB warns about exactly that call.
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.getUpdates'", category=PTBUserWarning)


class Poller:
    """getUpdates long poll → router → command handlers → replies."""

    def __init__(self, bot: telegram.Bot, store: Store, commands: Commands, throttle: Throttle,
                 limiter: ChatLimiter, *, poll_timeout: int = 50) -> None:
        self.bot = bot
        self.limiter = limiter
        self.store = store
        self.commands = commands
        self.throttle = throttle
        self.poll_timeout = poll_timeout
        self.username: str | None = None

    async def setup(self) -> None:
        """getMe, deleteWebhook and setMyCommands, retrying network faults; a rejected token is a ConfigError."""
        delay = 1.0
        while True:
            try:
                me = await self.bot.get_me()
                await self.bot.delete_webhook()
                await self.bot.set_my_commands([BotCommand(name, text) for name, text in BOT_COMMANDS])
                break
            except InvalidToken:
                raise ConfigError("TELEGRAM_BOT_TOKEN was rejected by Telegram (Unauthorized)") from None
            except RetryAfter as exc:
                await trio.sleep(retry_after_seconds(exc) + 0.5)
            except NetworkError as exc:
                log.warning("Telegram setup failed (%s), retrying in %.0fs", type(exc).__name__, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 60.0)
        self.username = me.username
        log.info("Telegram bot @%s ready", self.username)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        await self.setup()
        stored = await self.store.get_value(OFFSET_KEY)
        offset = int(stored) if stored else None
        task_status.started()
        delay = 1.0
        while True:
            try:
                raw = await self.bot.do_api_request("getUpdates", api_kwargs={
                    "offset": offset, "timeout": self.poll_timeout, "allowed_updates": ALLOWED_UPDATES})
                delay = 1.0
            except InvalidToken:
                raise ConfigError("TELEGRAM_BOT_TOKEN was rejected by Telegram (Unauthorized)") from None
            except RetryAfter as exc:
                await trio.sleep(retry_after_seconds(exc) + 0.5)
                continue
            except Conflict as exc:
                log.error("getUpdates conflict (is another instance running?): %s", exc.message)
                await trio.sleep(5.0)
                continue
            except NetworkError as exc:
                log.warning("getUpdates failed (%s), retrying in %.0fs", type(exc).__name__, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            for item in raw if isinstance(raw, list) else ():
                update_id = item.get("update_id") if isinstance(item, dict) else None
                if not isinstance(update_id, int):
                    log.error("getUpdates returned an item without update_id; ignored")
                    continue
                try:
                    await self.handle(Update.de_json(item, self.bot))
                except Exception:
                    # a bad update must not crash-loop the process: it would be redelivered after every restart
                    log.exception("update %d could not be handled; skipped", update_id)
                offset = update_id + 1
                await self.store.set_value(OFFSET_KEY, str(offset))
            self.throttle.forget_idle()
            self.limiter.forget_idle()

    async def handle(self, update: Update) -> None:
        """Route one update."""
        member = update.my_chat_member
        if member is not None and member.chat.type == "private":
            active = member.new_chat_member.status not in ("kicked", "left")
            await self.store.set_chat_active(member.chat.id, active)
            log.info("chat %d %s the bot", member.chat.id, "unblocked" if active else "blocked")
            return
        message = update.message
        if message is None or message.text is None:
            return
        chat = message.chat
        command = parse_command(message.text, self.username)
        if chat.type != "private":
            if command is not None and not command.addressed_to_other_bot:
                await self.reply(chat.id, "I work in private chats only: message me directly.")
            return
        user = message.from_user
        user_id = user.id if user is not None else chat.id
        wait = self.throttle.check(user_id)
        if wait:
            if self.throttle.should_warn(user_id):
                await self.reply(chat.id, f"⏳ Too many requests. Please wait {int(wait) + 1} s and try again.")
            return
        if command is None:
            await self.reply(chat.id, "I didn't understand that. /help lists what I can do.")
            return
        log.debug("chat %d: /%s", chat.id, command.name)
        replies = await self.commands.dispatch(chat.id, user.username if user else None,
                                               user.first_name if user else None, command)
        for text in replies:
            await self.reply(chat.id, text)

    async def reply(self, chat_id: int, text: str) -> None:
        """Send a reply; honours one retry_after, marks the chat inactive on 403, logs other failures."""
        for _ in range(2):
            await self.limiter.wait(chat_id)
            try:
                await self.bot.send_message(chat_id, text, parse_mode=ParseMode.HTML, link_preview_options=NO_PREVIEW)
                return
            except RetryAfter as exc:
                self.limiter.pause(chat_id, retry_after_seconds(exc) + 0.25)
            except Forbidden:
                await self.store.set_chat_active(chat_id, False)
                return
            except TelegramError as exc:
                log.warning("reply to chat %d failed: %s", chat_id, exc.message)
                return
