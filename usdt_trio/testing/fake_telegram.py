"""In-process fake of the Telegram Bot API: long polling, sendMessage with HTML checks, flood limits, faults."""

from __future__ import annotations

import collections
import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

from usdt_trio.testing.http_server import Request, ResetConnection, Response

__all__ = ["ApiError", "FakeTelegram", "HtmlError", "SentMessage", "validate_html"]

FIRST_UPDATE_ID = 100_000
MAX_TEXT_LENGTH = 4096
PRIVATE_BURST, PRIVATE_RATE = 3, 1.0  # token bucket per private chat: capacity, refill per second
GROUP_LIMIT, GROUP_WINDOW = 20, 60.0  # per group chat, sliding window
GLOBAL_LIMIT, GLOBAL_WINDOW = 30, 1.0  # all chats together, sliding window
EPS = 1e-6  # float slack so that waiting exactly retry_after always suffices

CONFLICT_POLL = ("Conflict: terminated by other getUpdates request; "
                 "make sure that only one bot instance is running")
CONFLICT_WEBHOOK = ("Conflict: can't use getUpdates method while webhook is active; "
                    "use deleteWebhook to delete the webhook first")
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = ("Bad Request: message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message")
_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,64}(@[A-Za-z0-9_]{3,32})?(?![A-Za-z0-9_])")


# ---------------------------------------------------------------- HTML (tdlib's parse_html, byte for byte)

class HtmlError(ValueError):
    """Text rejected by the HTML parser; ``str(exc)`` is the exact Bot API description."""


_TAGS = frozenset({"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji",
                   "span", "pre", "code", "blockquote"})
_SPACE = frozenset(b" \t\r\n\v\f\x00")  # tdlib's is_space, which includes the terminating NUL
_NAMED = {b"lt": ord("<"), b"gt": ord(">"), b"amp": ord("&"), b"quot": ord('"')}


def _html_entity(data: bytes, pos: int, strict: bool) -> tuple[int, int]:
    """Decode the character reference at ``data[pos] == '&'``: (code point, end) or (0, pos) if none."""
    end = pos + 1
    if data[end:end + 1] == b"#":
        end += 1
        hexadecimal = data[end:end + 1] == b"x"
        end += hexadecimal
        start = end
        while end < len(data) and chr(data[end]) in ("0123456789abcdefABCDEF" if hexadecimal else "0123456789"):
            end += 1
        if end == start or end - pos >= 10:
            return 0, pos
        code = int(data[start:end], 16 if hexadecimal else 10)
        if code == 0 or code >= 0x10FFFF:
            return 0, pos
    else:
        while data[end:end + 1].isalpha():
            end += 1
        code = _NAMED.get(data[pos + 1:end], 0)
        if not code:
            return 0, pos
    if data[end:end + 1] == b";":
        return code, end + 1
    return (0, pos) if strict else (code, end)


class _HtmlParser:
    """tdlib's parse_html over the UTF-8 bytes, so error texts and byte offsets match the real server."""

    def __init__(self, text: str, strict: bool) -> None:
        self.data, self.strict, self.i = text.encode("utf-8"), strict, 0
        self.out = bytearray()
        self.stack: list[tuple[str, bytes, int]] = []  # open tags: (name, argument, len(out) when opened)
        self.surrogate = False

    def at(self, k: int | None = None) -> int:
        k = self.i if k is None else k
        return self.data[k] if k < len(self.data) else 0  # 0 plays C's terminating NUL

    def scan(self, stops: bytes) -> None:
        """Advance to the next space, NUL or one of ``stops``."""
        while self.at() not in _SPACE and self.at() not in stops:
            self.i += 1

    def skip_spaces(self) -> None:
        while self.at() != 0 and self.at() in _SPACE:
            self.i += 1

    def fail(self, message: str) -> HtmlError:
        return HtmlError(f"Bad Request: can't parse entities: {message}")

    def char_ref(self, into: bytearray) -> bool:
        """Decode a character reference at ``&`` into ``into``; False if there is none (an error if strict)."""
        code, end = _html_entity(self.data, self.i, self.strict)
        if not code:
            if self.strict:
                raise self.fail(f"Character entity expected at byte offset {self.i}")
            return False
        self.surrogate |= 0xD800 <= code <= 0xDFFF
        into += chr(code).encode("utf-8", "surrogatepass")
        self.i = end
        return True

    def parse(self) -> str:
        while self.i < len(self.data):
            c = self.data[self.i]
            if c == ord("&") and self.char_ref(self.out):
                continue
            if c != ord("<"):
                self.out.append(c)
                self.i += 1
            elif self.at(self.i + 1) == ord("/"):
                self.end_tag()
            else:
                self.start_tag()
        if self.stack:
            raise self.fail(f'Can\'t find end tag corresponding to start tag "{self.stack[-1][0]}"')
        if self.surrogate:
            raise self.fail("Text contains invalid Unicode characters after decoding HTML entities, "
                            "check for unmatched surrogate code units")
        return self.out.decode("utf-8")

    def start_tag(self) -> None:
        begin = self.i
        self.i += 1
        self.scan(b">")
        if self.at() == 0:
            raise self.fail(f"Unclosed start tag at byte offset {begin}")
        tag = self.data[begin + 1:self.i].lower().decode("utf-8", "replace")
        if tag not in _TAGS:
            raise self.fail(f'Unsupported start tag "{tag}" at byte offset {begin}')
        argument = b""
        while self.at() != ord(">"):
            self.skip_spaces()
            if self.at() == ord(">"):
                break
            name_begin = self.i
            self.scan(b"=>")
            name = self.data[name_begin:self.i]
            if not name:
                raise self.fail(f'Empty attribute name in the tag "{tag}" at byte offset {begin}')
            self.skip_spaces()
            if self.at() != ord("="):
                if (tag, name) == ("blockquote", b"expandable"):
                    continue
                raise self.fail(f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                                f"at byte offset {begin}")
            self.i += 1
            self.skip_spaces()
            if self.at() == 0:
                raise self.fail(f'Unclosed start tag "{tag}" at byte offset {begin}')
            value = self.attribute_value()
            if self.at() == 0:
                raise self.fail(f"Unclosed start tag at byte offset {begin}")
            if (tag, name) in (("a", b"href"), ("tg-emoji", b"emoji-id")):
                argument = value
            elif (tag, name) == ("code", b"class") and value.startswith(b"language-"):
                argument = value[9:]
            elif (tag, name) == ("span", b"class") and value.startswith(b"tg-"):
                argument = value[3:]
        if tag == "span" and argument != b"spoiler":
            raise self.fail(f'Tag "span" must have class "tg-spoiler" at byte offset {begin}')
        self.stack.append((tag, argument, len(self.out)))
        self.i += 1

    def attribute_value(self) -> bytes:
        quote = self.at()
        if quote not in b"\"'":  # a name token: ASCII letters, digits, '.', '-'
            token = self.i
            while chr(self.at()).isascii() and (chr(self.at()).isalnum() or self.at() in b".-"):
                self.i += 1
            if self.at() not in _SPACE and self.at() != ord(">"):
                raise self.fail(f"Unexpected end of name token at byte offset {token}")
            return self.data[token:self.i].lower()
        self.i += 1
        value = bytearray()
        while self.at() not in (quote, 0):
            if self.at() != ord("&") or not self.char_ref(value):
                value.append(self.at())
                self.i += 1
        if self.at() == quote:
            self.i += 1
        return bytes(value)

    def end_tag(self) -> None:
        begin = self.i
        if not self.stack:
            raise self.fail(f"Unexpected end tag at byte offset {begin}")
        self.i += 2
        self.scan(b">")
        end_name = self.data[begin + 2:self.i].lower().decode("utf-8", "replace")
        self.skip_spaces()
        if self.at() != ord(">"):
            raise self.fail(f"Unclosed end tag at byte offset {begin}")
        tag, argument, opened_at = self.stack.pop()
        if end_name and end_name != tag:
            raise self.fail(f'Unmatched end tag at byte offset {begin}, expected "</{tag}>", found "</{end_name}>"')
        if tag == "tg-emoji" and len(self.out) > opened_at and not (
                argument.isdigit() and 0 < int(argument) < 2**63):
            raise self.fail("Invalid custom emoji identifier specified")
        self.i += 1


def validate_html(text: str, *, strict: bool = True) -> str:
    """Parse Bot API HTML as the server does; return the plain text or raise :class:`HtmlError`.

    Error texts and UTF-8 byte offsets follow tdlib. ``strict`` (the default) also rejects what real Telegram
    tolerates but is always a missing escape: a ``&`` that is not ``&lt; &gt; &amp; &quot;`` or ``&#N;``/``&#xH;``
    with its ``;`` ("Character entity expected at byte offset N").
    """
    return _HtmlParser(text, strict).parse()


# ---------------------------------------------------------------- the fake server

@dataclass
class SentMessage:
    """One accepted sendMessage (``html`` as sent, ``text`` after entity parsing); edits update it in place."""

    chat_id: int
    message_id: int
    html: str
    text: str
    at: float
    parse_mode: str | None = None
    reply_markup: dict[str, Any] | None = None
    edits: int = 0


class ApiError(Exception):
    """An error answer: HTTP status equals error_code."""

    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.parameters = code, description, parameters

    def response(self) -> Response:
        body: dict[str, Any] = {"ok": False, "error_code": self.code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return Response.json(body, status=self.code)


def _ok(result: Any, description: str | None = None) -> dict[str, Any]:
    return {"ok": True, "result": result} | ({"description": description} if description else {})


def _int(params: dict[str, str], name: str, default: int) -> int:
    try:
        return int(params[name])
    except (KeyError, ValueError):
        return default


def _bool(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def _json_arg(params: dict[str, str], name: str, error: str) -> Any:
    try:
        return json.loads(params[name]) if name in params else None
    except ValueError:
        raise ApiError(400, error) from None


class FakeTelegram:
    """A faithful in-process Bot API for one bot; serve it with ``serve_http(fake.handle)``."""

    def __init__(self, token: str, *, bot_username: str = "UsdtTrioBot", bot_id: int = 7000001,
                 webhook_active: bool = False, strict_html: bool = True) -> None:
        self.token = token
        self.bot_user: dict[str, Any] = {"id": bot_id, "is_bot": True, "first_name": "USDT Trio",
                                         "username": bot_username}
        self.webhook_active = webhook_active
        self.strict_html = strict_html
        self.sent: list[SentMessage] = []
        self.calls: collections.Counter[str] = collections.Counter()
        self.commands: list[dict[str, str]] = []
        self.callback_answers: dict[str, dict[str, str]] = {}  # callback query id -> answerCallbackQuery params
        self.confirmed_offset = 0
        self.pending_polls = 0
        self.rejected_429 = 0
        self.unhonoured_retry_after = 0
        self._changed = trio.Event()
        self._updates: list[dict[str, Any]] = []
        self._next_update_id = FIRST_UPDATE_ID
        self._allowed: frozenset[str] | None = None
        self._newest_poll = 0
        self._chats: dict[int, dict[str, Any]] = {}
        self._users: dict[int, dict[str, Any]] = {}
        self._closed: dict[int, ApiError] = {}  # chat id -> why sendMessage fails (blocked, kicked, migrated...)
        self._message_ids: collections.Counter[int] = collections.Counter()
        self._open_queries: set[str] = set()
        self._faults: collections.defaultdict[str, collections.deque[ApiError | str]] = \
            collections.defaultdict(collections.deque)
        self._buckets: dict[int, tuple[float, float]] = {}  # private chat -> (tokens, when)
        self._group_times: collections.defaultdict[int, collections.deque[float]] = \
            collections.defaultdict(collections.deque)
        self._global_times: collections.deque[float] = collections.deque()
        self._retry_until: dict[int, float] = {}

    # ------------------------------------------------------------ driving simulated users

    def user_sends(self, user_id: int, text: str, *, chat_id: int | None = None, chat_type: str = "private",
                   first_name: str = "Alice", username: str | None = None, title: str = "Test group") -> int:
        """Queue a text message from a user (private chat by default); returns its update_id."""
        user = {"id": user_id, "is_bot": False, "first_name": first_name} | ({"username": username} if username else {})
        self._users[user_id] = user
        chat_id = user_id if chat_id is None else chat_id
        if chat_type == "private":
            if chat_id != user_id:
                raise ValueError("a private chat's id is the user's id")
            self._chats[chat_id] = {"id": chat_id, "type": "private", "first_name": first_name} | (
                {"username": username} if username else {})
            if chat_id in self._closed and "blocked" in self._closed[chat_id].description:
                self.unblock_bot(user_id)  # writing to a bot you blocked unblocks it, as in the apps
        else:
            if chat_id >= 0:
                raise ValueError("group chat ids are negative")
            self._chats[chat_id] = {"id": chat_id, "type": chat_type, "title": title}
        message: dict[str, Any] = {"message_id": self._new_message_id(chat_id), "from": user,
                                   "chat": self._chats[chat_id], "date": int(time.time()), "text": text}
        if command := _COMMAND.match(text):
            message["entities"] = [{"type": "bot_command", "offset": 0,
                                    "length": len(command.group().encode("utf-16-le")) // 2}]
        return self._queue("message", message)

    def user_presses(self, user_id: int, message_id: int, data: str, *, chat_id: int | None = None) -> str:
        """Queue a callback_query for an inline button under one of the bot's messages; returns the query id."""
        message = self._find_sent(user_id if chat_id is None else chat_id, message_id)
        if message is None:
            raise ValueError(f"no message {message_id} sent by the bot in that chat")
        query_id = str(4_000_000_000_000 + self._next_update_id)
        self._open_queries.add(query_id)
        user = self._users.get(user_id) or {"id": user_id, "is_bot": False, "first_name": "Alice"}
        self._queue("callback_query", {"id": query_id, "from": user, "message": self._message_json(message),
                                       "chat_instance": str(message.chat_id), "data": data})
        return query_id

    def block_bot(self, user_id: int) -> None:
        """The user blocks the bot: sendMessage then fails with 403; queues my_chat_member member -> kicked."""
        self._closed[user_id] = ApiError(403, "Forbidden: bot was blocked by the user")
        self._queue("my_chat_member", self._member_change(user_id, user_id, "member", "kicked"))

    def unblock_bot(self, user_id: int) -> None:
        """The user unblocks (restarts) the bot; queues my_chat_member kicked -> member."""
        self._closed.pop(user_id, None)
        self._queue("my_chat_member", self._member_change(user_id, user_id, "kicked", "member"))

    def deactivate_user(self, user_id: int) -> None:
        """The user deletes their account: sendMessage fails with 403 "user is deactivated"."""
        self._closed[user_id] = ApiError(403, "Forbidden: user is deactivated")

    def kick_bot(self, chat_id: int, by_user_id: int) -> None:
        """A member removes the bot from a group: 403 on sendMessage; queues my_chat_member member -> kicked."""
        kind = "supergroup chat" if chat_id < -1_000_000_000_000 else "group chat"
        self._closed[chat_id] = ApiError(403, f"Forbidden: bot was kicked from the {kind}")
        self._queue("my_chat_member", self._member_change(chat_id, by_user_id, "member", "kicked"))

    def migrate_group(self, chat_id: int, new_chat_id: int) -> None:
        """The group becomes a supergroup: sendMessage to the old id fails with migrate_to_chat_id."""
        self._chats[new_chat_id] = self._chats.get(chat_id, {"title": "Test group"}) | {
            "id": new_chat_id, "type": "supergroup"}
        self._closed[chat_id] = ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                                         {"migrate_to_chat_id": new_chat_id})

    def fail_next(self, method: str, status: int, description: str, parameters: dict[str, Any] | None = None,
                  *, count: int = 1) -> None:
        """Answer the next ``count`` calls of ``method`` with this error instead of handling them."""
        self._faults[method.lower()].extend([ApiError(status, description, parameters)] * count)

    def reset_next(self, method: str, *, count: int = 1, after_processing: bool = False) -> None:
        """Drop the connection on the next ``count`` calls; after_processing applies the call first (lost reply)."""
        self._faults[method.lower()].extend(["reset_after" if after_processing else "reset"] * count)

    def stall_next(self, method: str, seconds: float, *, count: int = 1) -> None:
        """Hold the next ``count`` calls for ``seconds`` without handling them, then drop the connection
        (a server that hangs: the client sees neither an answer nor an error until it gives up)."""
        self._faults[method.lower()].extend([("stall", seconds)] * count)

    # ------------------------------------------------------------ observing

    def messages_to(self, chat_id: int) -> list[SentMessage]:
        """Accepted messages to one chat, in order."""
        return [m for m in self.sent if m.chat_id == chat_id]

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Return once ``predicate()`` holds, re-checking on every state change (no timeout of its own)."""
        while not predicate():
            await self._changed.wait()

    async def wait_for_messages(self, chat_id: int, count: int) -> list[SentMessage]:
        """Return the chat's messages once at least ``count`` were accepted."""
        await self.wait_until(lambda: len(self.messages_to(chat_id)) >= count)
        return self.messages_to(chat_id)

    def max_per_chat_in_window(self, chat_id: int | None = None, window: float = 1.0) -> int:
        """Most accepted messages to one chat (or to ``chat_id``) within any ``window`` seconds."""
        times: collections.defaultdict[int, list[float]] = collections.defaultdict(list)
        for m in self.sent:
            if chat_id is None or m.chat_id == chat_id:
                times[m.chat_id].append(m.at)
        best = 0
        for series in times.values():
            start = 0
            for end, t in enumerate(series):
                while t - series[start] >= window:
                    start += 1
                best = max(best, end - start + 1)
        return best

    @property
    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed."""
        return len(self._updates)

    # ------------------------------------------------------------ HTTP entry point

    async def handle(self, request: Request) -> Response:
        """Serve one Bot API request."""
        parts = request.path.split("/")
        if len(parts) != 3 or parts[0] or not parts[1].startswith("bot"):
            return ApiError(404, "Not Found").response()
        if parts[1][3:] != self.token:
            return ApiError(401, "Unauthorized").response()
        method = parts[2].lower()
        self.calls[method] += 1
        fault = self._faults[method].popleft() if self._faults.get(method) else None
        if isinstance(fault, tuple):
            await trio.sleep(fault[1])
            raise ResetConnection
        if fault == "reset":
            raise ResetConnection
        try:
            if isinstance(fault, ApiError):
                self._scripted_error(fault, request.params)
            handler = getattr(self, f"_api_{method}", None) if method.isalpha() else None
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            response = Response.json(await handler(request.params))
        except ApiError as exc:
            response = exc.response()
        if fault == "reset_after":
            raise ResetConnection
        return response

    # ------------------------------------------------------------ methods

    async def _api_getme(self, params: dict[str, str]) -> dict[str, Any]:
        return _ok(self.bot_user | {"can_join_groups": True, "can_read_all_group_messages": False,
                                    "supports_inline_queries": False, "can_connect_to_business": False,
                                    "has_main_web_app": False})

    async def _api_deletewebhook(self, params: dict[str, str]) -> dict[str, Any]:
        was_active, self.webhook_active = self.webhook_active, False
        if _bool(params.get("drop_pending_updates")):
            self._updates.clear()
        self._notify()
        return _ok(True, "Webhook was deleted" if was_active else "Webhook is already deleted")

    async def _api_setwebhook(self, params: dict[str, str]) -> dict[str, Any]:
        self.webhook_active = bool(params.get("url"))
        if _bool(params.get("drop_pending_updates")):
            self._updates.clear()
        self._notify()
        return _ok(True, "Webhook was set" if self.webhook_active else "Webhook was deleted")

    async def _api_getwebhookinfo(self, params: dict[str, str]) -> dict[str, Any]:
        url = "https://example.invalid/hook" if self.webhook_active else ""
        return _ok({"url": url, "has_custom_certificate": False, "pending_update_count": len(self._updates)})

    async def _api_setmycommands(self, params: dict[str, str]) -> dict[str, Any]:
        if "commands" not in params:
            raise ApiError(400, 'Bad Request: parameter "commands" is required')
        commands = _json_arg(params, "commands", "Bad Request: can't parse commands JSON object")
        if not isinstance(commands, list) or not all(isinstance(c, dict) for c in commands):
            raise ApiError(400, "Bad Request: can't parse commands JSON object")
        if len(commands) > 100:
            raise ApiError(400, "Bad Request: BOT_COMMANDS_TOO_MUCH")
        cleaned = []
        for entry in commands:
            command = str(entry.get("command", "")).strip().removeprefix("/")
            description = str(entry.get("description", "")).strip()
            if not command:
                raise ApiError(400, "Bad Request: command must be non-empty")
            if len(command) > 32:
                raise ApiError(400, "Bad Request: command length must not exceed 32")
            if not description:
                raise ApiError(400, "Bad Request: command description must be non-empty")
            if len(description) > 256:
                raise ApiError(400, "Bad Request: command description length must not exceed 256")
            if not re.fullmatch(r"[a-z0-9_]+", command):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            cleaned.append({"command": command, "description": description})
        self.commands = cleaned
        self._notify()
        return _ok(True)

    async def _api_getmycommands(self, params: dict[str, str]) -> dict[str, Any]:
        return _ok(self.commands)

    async def _api_getupdates(self, params: dict[str, str]) -> dict[str, Any]:
        if self.webhook_active:
            raise ApiError(409, CONFLICT_WEBHOOK)
        limit = min(max(_int(params, "limit", 100), 1), 100)
        timeout = min(max(_int(params, "timeout", 0), 0), 50)
        allowed = _json_arg(params, "allowed_updates", "Bad Request: can't parse allowed updates")
        if isinstance(allowed, list):
            self._allowed = frozenset(map(str, allowed)) or None
        self._confirm(_int(params, "offset", 0))
        self._newest_poll += 1
        me = self._newest_poll
        self.pending_polls += 1
        self._notify()  # wakes an older pending poll, which then answers 409
        try:
            with trio.move_on_after(timeout):
                while not self._updates:
                    await self._changed.wait()
                    if self._newest_poll != me:
                        raise ApiError(409, CONFLICT_POLL)
            return _ok(self._updates[:limit])
        finally:
            self.pending_polls -= 1
            self._notify()

    async def _api_sendmessage(self, params: dict[str, str]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        now = trio.current_time()
        until = self._retry_until.get(chat_id, -math.inf)
        if now < until - EPS:
            self.unhonoured_retry_after += 1
            raise self._flood(max(1, math.ceil(until - now)))
        if chat_id in self._closed:
            raise self._closed[chat_id]
        html, text, parse_mode = self._text(params)
        markup = self._reply_markup(params)
        _json_arg(params, "link_preview_options", "Bad Request: can't parse link preview options JSON object")
        self._take_rate(chat_id, now)
        message = SentMessage(chat_id, self._new_message_id(chat_id), html, text, now, parse_mode, markup)
        self.sent.append(message)
        self._notify()
        return _ok(self._message_json(message))

    async def _api_editmessagetext(self, params: dict[str, str]) -> dict[str, Any]:
        chat_id = self._chat_id(params)
        if chat_id in self._closed:
            raise self._closed[chat_id]
        message = self._find_sent(chat_id, _int(params, "message_id", 0))
        if message is None:
            raise ApiError(400, "Bad Request: message to edit not found")
        html, text, parse_mode = self._text(params)
        markup = self._reply_markup(params)
        if (text, markup) == (message.text, message.reply_markup) and html == message.html:
            raise ApiError(400, NOT_MODIFIED)
        message.html, message.text, message.parse_mode, message.reply_markup = html, text, parse_mode, markup
        message.edits += 1
        self._notify()
        return _ok(self._message_json(message) | {"edit_date": int(time.time())})

    async def _api_answercallbackquery(self, params: dict[str, str]) -> dict[str, Any]:
        query_id = params.get("callback_query_id", "")
        if query_id not in self._open_queries:
            raise ApiError(400, QUERY_INVALID)
        if len(params.get("text", "")) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._open_queries.discard(query_id)
        self.callback_answers[query_id] = dict(params)
        self._notify()
        return _ok(True)

    # ------------------------------------------------------------ helpers

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _queue(self, kind: str, payload: dict[str, Any]) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        if self._allowed is None or kind in self._allowed:  # like Telegram, filtered at creation time
            self._updates.append({"update_id": update_id, kind: payload})
        self._notify()
        return update_id

    def _confirm(self, offset: int) -> None:
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
            self.confirmed_offset = max(self.confirmed_offset, offset)
        elif offset < 0 and len(self._updates) > -offset:
            del self._updates[:len(self._updates) + offset]
            self.confirmed_offset = max(self.confirmed_offset, self._updates[0]["update_id"])

    def _new_message_id(self, chat_id: int) -> int:
        self._message_ids[chat_id] += 1
        return self._message_ids[chat_id]

    def _find_sent(self, chat_id: int, message_id: int) -> SentMessage | None:
        return next((m for m in self.sent if m.chat_id == chat_id and m.message_id == message_id), None)

    def _member_change(self, chat_id: int, user_id: int, old: str, new: str) -> dict[str, Any]:
        user = self._users.setdefault(user_id, {"id": user_id, "is_bot": False, "first_name": "Alice"})
        chat = self._chats.setdefault(chat_id, {"id": chat_id, "type": "private", "first_name": user["first_name"]}
                                      if chat_id > 0 else {"id": chat_id, "type": "group", "title": "Test group"})
        def member(status: str) -> dict[str, Any]:  # a kicked ChatMember always carries until_date (0 = forever)
            return {"user": self.bot_user, "status": status} | ({"until_date": 0} if status == "kicked" else {})
        return {"chat": chat, "from": user, "date": int(time.time()),
                "old_chat_member": member(old), "new_chat_member": member(new)}

    def _message_json(self, message: SentMessage) -> dict[str, Any]:
        body = {"message_id": message.message_id, "from": self.bot_user, "chat": self._chats[message.chat_id],
                "date": int(time.time()), "text": message.text}
        return body | ({"reply_markup": message.reply_markup} if message.reply_markup else {})

    def _chat_id(self, params: dict[str, str]) -> int:
        if not params.get("chat_id"):
            raise ApiError(400, "Bad Request: chat_id is empty")
        try:
            chat_id = int(params["chat_id"])
        except ValueError:
            raise ApiError(400, "Bad Request: chat not found") from None
        if chat_id not in self._chats:
            raise ApiError(400, "Bad Request: chat not found")
        return chat_id

    def _text(self, params: dict[str, str]) -> tuple[str, str, str | None]:
        html = params.get("text", "")
        parse_mode = params.get("parse_mode") or None
        if parse_mode is None:
            text = html
        elif parse_mode.lower() == "html":
            try:
                text = validate_html(html, strict=self.strict_html)
            except HtmlError as exc:
                raise ApiError(400, str(exc)) from None
        else:  # Markdown is not modelled: refuse rather than pretend
            raise ApiError(400, "Bad Request: unsupported parse_mode")
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if len(text.strip()) > MAX_TEXT_LENGTH:
            raise ApiError(400, "Bad Request: message is too long")
        return html, text, parse_mode

    def _reply_markup(self, params: dict[str, str]) -> dict[str, Any] | None:
        error = "Bad Request: can't parse reply keyboard markup JSON object"
        markup = _json_arg(params, "reply_markup", error)
        if markup is None:
            return None
        rows = markup.get("inline_keyboard", []) if isinstance(markup, dict) else None
        if not isinstance(rows, list) or not all(isinstance(r, list) and all(isinstance(b, dict) for b in r)
                                                 for r in rows):
            raise ApiError(400, error)
        for button in (b for row in rows for b in row):
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _flood(self, retry_after: int) -> ApiError:
        self.rejected_429 += 1
        return ApiError(429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    def _take_rate(self, chat_id: int, now: float) -> None:
        """Consume one message from the chat's and the global allowance, or raise a 429."""
        wait = 0.0
        tokens = 0.0
        if chat_id > 0:
            tokens, since = self._buckets.get(chat_id, (PRIVATE_BURST, now))
            tokens = min(PRIVATE_BURST, tokens + (now - since) * PRIVATE_RATE)
            if tokens < 1 - EPS:
                wait = (1 - tokens) / PRIVATE_RATE
        else:
            group = self._group_times[chat_id]
            while group and group[0] <= now - GROUP_WINDOW + EPS:
                group.popleft()
            if len(group) >= GROUP_LIMIT:
                wait = group[0] + GROUP_WINDOW - now
        while self._global_times and self._global_times[0] <= now - GLOBAL_WINDOW + EPS:
            self._global_times.popleft()
        if len(self._global_times) >= GLOBAL_LIMIT:
            wait = max(wait, self._global_times[0] + GLOBAL_WINDOW - now)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            self._retry_until[chat_id] = now + retry_after
            raise self._flood(retry_after)
        if chat_id > 0:
            self._buckets[chat_id] = (tokens - 1, now)
        else:
            self._group_times[chat_id].append(now)
        self._global_times.append(now)

    def _scripted_error(self, error: ApiError, params: dict[str, str]) -> None:
        """Raise a fail_next error; a scripted 429 also starts that chat's retry_after period."""
        retry_after = (error.parameters or {}).get("retry_after")
        if error.code == 429:
            self.rejected_429 += 1
            if retry_after and params.get("chat_id", "").lstrip("-").isdigit():
                self._retry_until[int(params["chat_id"])] = trio.current_time() + retry_after
        raise error
