"""python-telegram-bot's Bot over the process's one httpx client (Bot.initialize/shutdown are never called)."""

from __future__ import annotations

import httpx
import telegram
from telegram import LinkPreviewOptions
from telegram.error import NetworkError, RetryAfter, TimedOut
from telegram.request import BaseRequest, RequestData

__all__ = ["SharedClientRequest", "make_bot", "retry_after_seconds", "NO_PREVIEW"]

NO_PREVIEW = LinkPreviewOptions(is_disabled=True)


class SharedClientRequest(BaseRequest):
    """A BaseRequest that sends form-encoded requests through a shared httpx.AsyncClient it does not own.

    Timeouts are the client's (set once, with a read timeout above the long-poll timeout). Errors never carry the
    URL, which contains the bot token.
    """

    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    @property
    def read_timeout(self) -> float | None:
        return self._http.timeout.read

    async def initialize(self) -> None:
        """Nothing to do: the client belongs to the application."""

    async def shutdown(self) -> None:
        """Nothing to do: the client belongs to the application."""

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=None, write_timeout=None, connect_timeout=None, pool_timeout=None,
                         ) -> tuple[int, bytes]:
        if request_data is not None and request_data.contains_files:
            raise NetworkError("file uploads are not supported by this transport")
        data = request_data.json_parameters if request_data is not None else None
        try:
            response = await self._http.request(method, url, data=data)
        except httpx.TimeoutException:
            raise TimedOut("Telegram request timed out") from None
        except httpx.HTTPError as exc:
            raise NetworkError(f"Telegram unreachable ({type(exc).__name__})") from None
        return response.status_code, response.content


def make_bot(http: httpx.AsyncClient, api_url: str, token: str) -> telegram.Bot:
    """A Bot whose requests go to ``{api_url}/bot<token>/<method>`` through ``http``."""
    request = SharedClientRequest(http)
    return telegram.Bot(token=token, base_url=f"{api_url.rstrip('/')}/bot", request=request,
                        get_updates_request=request)


def retry_after_seconds(exc: RetryAfter) -> float:
    """RetryAfter.retry_after in seconds (a timedelta with PTB_TIMEDELTA set, see telegram/__init__.py; else an int)."""
    value = exc.retry_after
    return value.total_seconds() if hasattr(value, "total_seconds") else value
