"""A small HTTP/1.1 server on Trio and h11, for the in-process fakes (keep-alive, concurrent requests, faults)."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11
import trio

__all__ = ["Request", "Response", "ResetConnection", "Handler", "serve_http"]

log = logging.getLogger(__name__)
MAX_BODY = 10 * 1024 * 1024


@dataclass
class Request:
    """One parsed request: method, path, query and form fields merged into ``params``, raw body."""

    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Response:
    """What a handler returns."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> "Response":
        return cls(status, json.dumps(payload).encode(), {"content-type": "application/json"})

    @classmethod
    def html(cls, text: str, status: int) -> "Response":
        return cls(status, text.encode(), {"content-type": "text/html"})


class ResetConnection(Exception):
    """Raised by a handler to drop the connection without any response (a connection reset)."""


Handler = Callable[[Request], Awaitable[Response]]


def _parse(method: str, target: str, headers: dict[str, str], body: bytes) -> Request:
    parts = urlsplit(target)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    ctype = headers.get("content-type", "")
    if body and ctype.startswith("application/x-www-form-urlencoded"):
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif body and ctype.startswith("application/json"):
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = None
        if isinstance(decoded, dict):
            params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in decoded.items()})
    return Request(method, parts.path, params, headers, body)


async def _serve_connection(stream: trio.SocketStream, handler: Handler) -> None:
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            request = await _read_request(stream, conn)
            if request is None:
                return
            try:
                response = await handler(request)
            except ResetConnection:
                return
            body = response.body
            headers = [(k.encode(), v.encode()) for k, v in response.headers.items()]
            headers.append((b"content-length", str(len(body)).encode()))
            reason = b"OK" if response.status < 400 else b"Error"
            data = conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason))
            data += conn.send(h11.Data(data=body)) or b""
            data += conn.send(h11.EndOfMessage()) or b""
            await stream.send_all(data)
            if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
        return
    finally:
        await trio.aclose_forcefully(stream)


async def _read_request(stream: trio.SocketStream, conn: h11.Connection) -> Request | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            chunk = await stream.receive_some(65536)
            conn.receive_data(chunk)  # b"" signals EOF to h11
            continue
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_BODY:
                return None
        elif isinstance(event, h11.EndOfMessage):
            assert head is not None
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
            return _parse(head.method.decode(), head.target.decode(), headers, bytes(body))
        elif isinstance(event, h11.ConnectionClosed):
            return None


async def serve_http(handler: Handler, *, host: str = "127.0.0.1", port: int = 0,
                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``handler`` on loopback until cancelled; ``task_status.started`` receives the base URL."""

    async def on_connection(stream: trio.SocketStream) -> None:
        await _serve_connection(stream, handler)

    listeners = await trio.open_tcp_listeners(port, host=host)
    bound = listeners[0].socket.getsockname()
    async with trio.open_nursery() as nursery:
        task_status.started(f"http://{bound[0]}:{bound[1]}")
        await trio.serve_listeners(on_connection, listeners, handler_nursery=nursery)
