"""A small HTTP/1.1 JSON client on asyncio streams: keep-alive connections in a bounded pool,
no threads, so many asyncio tasks can call at once without blocking the event loop. Byte bodies (the
harness's file transfers) go out streamed from a file and may come back streamed into one."""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from typing import Any, BinaryIO, Dict, List, Optional, Tuple
from urllib.parse import urlsplit

from .errors import GatewayUnavailableError

#: An idle connection older than this is closed instead of reused. The gateway keeps idle
#: connections for 65 s, so a connection the client reuses is never closed under it.
IDLE_MAX_S = 20.0
MAX_HEADER_BYTES = 64 * 1024


class _Conn:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # noqa: BLE001 - closing a broken transport may raise anything; it is gone either way
            pass


class _Unbounded:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


class _LoopState:
    """Pool state bound to one event loop (asyncio streams cannot move between loops)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_connections: int) -> None:
        self.loop = loop
        # Calls share a bounded number of connections. Acquires waiting for a slot (long-polls: an idle
        # socket each) are not bounded: a bound would let waiters hold up a holder's own acquire (the
        # same trajectory gets its slot back at once), and then nobody would release a slot.
        self.sems: Dict[str, Any] = {"calls": asyncio.Semaphore(max_connections), "waits": _Unbounded()}
        self.idle: List[_Conn] = []


class HttpClient:
    def __init__(self, url: str, token: Optional[str], *, max_connections: int = 128, connect_timeout_s: float = 10.0, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"slotq gateway URL must be http://host:port or https://host:port, got {url!r}")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.base_path = parts.path.rstrip("/")
        self.ssl = (ssl_context or ssl.create_default_context()) if parts.scheme == "https" else None
        self.host_header = parts.netloc.rsplit("@", 1)[-1]
        self.token = token
        self.max_connections = max_connections
        self.connect_timeout_s = connect_timeout_s
        self._state: Optional[_LoopState] = None

    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            # A new event loop (e.g. a second asyncio.run): connections of the old one are unusable.
            self._state = _LoopState(loop, self.max_connections)
        return self._state

    async def request(self, method: str, path: str, body: Optional[Dict[str, Any]], *, timeout_s: float, idempotent: bool = False, lane: str = "calls") -> Tuple[int, Any]:
        """Sends one request; returns (status, parsed JSON). Raises GatewayUnavailableError when the
        gateway cannot be reached or does not answer within timeout_s (retrying once, for idempotent
        requests, on a reused connection the server had closed)."""
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        status, _ctype, raw = await self._send(method, path, _Body(payload, "application/json"), timeout_s=timeout_s, idempotent=idempotent, lane=lane, sink=None)
        return status, _parse_json(raw)

    async def request_bytes(self, method: str, path: str, body: "_Body", *, timeout_s: float, headers: Optional[Dict[str, str]] = None, sink: Optional[BinaryIO] = None) -> Tuple[int, Any]:
        """Sends one request whose body or answer may be bytes (never retried: transfers are not idempotent).
        Returns (status, answer): the answer is parsed JSON when the gateway answered JSON, else the bytes,
        or, with ``sink``, the number of bytes written to it (streamed, never held whole)."""
        status, ctype, raw = await self._send(method, path, body, timeout_s=timeout_s, idempotent=False, lane="calls", sink=sink, headers=headers)
        if ctype == "application/octet-stream":
            return status, raw
        return status, _parse_json(raw)

    async def _send(self, method: str, path: str, body: "_Body", *, timeout_s: float, idempotent: bool, lane: str, sink: Optional[BinaryIO], headers: Optional[Dict[str, str]] = None) -> Tuple[int, str, Any]:
        state = self._loop_state()
        async with state.sems[lane]:
            deadline = time.monotonic() + timeout_s  # from when a connection may be used: queueing for one is not the gateway's time
            attempts = 2 if idempotent and body.stream is None else 1
            for attempt in range(attempts):
                conn, reused = await self._connection(state, deadline)
                try:
                    remaining = max(0.001, deadline - time.monotonic())
                    status, keep, ctype, data = await asyncio.wait_for(self._roundtrip(conn, method, path, body, headers or {}, sink), remaining)
                except asyncio.TimeoutError:
                    conn.close()
                    raise GatewayUnavailableError(f"No answer from the slotq gateway at {self.url} within {timeout_s:.0f} s ({method} {path})", may_have_arrived=True) from None
                except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                    conn.close()
                    if reused and attempt + 1 < attempts:
                        continue
                    raise GatewayUnavailableError(f"Connection to the slotq gateway at {self.url} failed ({method} {path}): {_describe(e)}", may_have_arrived=True) from None
                except BaseException:
                    conn.close()  # cancelled mid-request: the connection's state is unknown
                    raise
                if keep:
                    conn.idle_since = time.monotonic()
                    state.idle.append(conn)
                else:
                    conn.close()
                return status, ctype, data
        raise AssertionError("unreachable")

    async def _connection(self, state: _LoopState, deadline: float) -> Tuple[_Conn, bool]:
        now = time.monotonic()
        while state.idle:
            conn = state.idle.pop()
            if now - conn.idle_since < IDLE_MAX_S and not conn.reader.at_eof() and not conn.writer.is_closing():
                return conn, True
            conn.close()
        timeout = max(0.001, min(self.connect_timeout_s, deadline - now))
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port, ssl=self.ssl, limit=2 ** 20), timeout)
        except asyncio.TimeoutError:
            raise GatewayUnavailableError(f"Could not connect to the slotq gateway at {self.url} within {timeout:.0f} s") from None
        except OSError as e:
            raise GatewayUnavailableError(f"Could not connect to the slotq gateway at {self.url}: {_describe(e)} (is `slotq gateway` running? SLOTQ_URL)") from None
        return _Conn(reader, writer), False

    async def _roundtrip(self, conn: _Conn, method: str, path: str, body: "_Body", extra: Dict[str, str], sink: Optional[BinaryIO]) -> Tuple[int, bool, str, Any]:
        head = [f"{method} {self.base_path}{path} HTTP/1.1", f"Host: {self.host_header}", "Accept: application/json, application/octet-stream", "Connection: keep-alive"]
        if body.length or method in ("POST", "PUT", "PATCH"):
            head.append(f"Content-Type: {body.content_type}")
            head.append(f"Content-Length: {body.length}")
        if self.token:
            head.append(f"Authorization: Bearer {self.token}")
        head.extend(f"{k}: {v}" for k, v in extra.items())
        conn.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body.payload)
        await conn.writer.drain()
        if body.stream is not None:
            await _send_stream(conn.writer, body.stream, body.length)

        status_line = await conn.reader.readline()
        if not status_line:
            raise ConnectionResetError("the gateway closed the connection before answering")
        parts = status_line.decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise ValueError(f"not an HTTP response: {status_line[:80]!r}")
        status = int(parts[1])
        headers: Dict[str, str] = {}
        size = 0
        while True:
            line = await conn.reader.readline()
            size += len(line)
            if size > MAX_HEADER_BYTES:
                raise ValueError("response headers too large")
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        keep = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
        ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        to_sink = sink if ctype == "application/octet-stream" else None
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw: Any = await _read_chunked(conn.reader, to_sink)
        elif "content-length" in headers:
            n = int(headers["content-length"])
            raw = await _copy_exactly(conn.reader, n, to_sink) if to_sink is not None else await conn.reader.readexactly(n)
        else:
            raw = await _copy_to_eof(conn.reader, to_sink)
            keep = False
        return status, keep, ctype, raw

    def close_idle(self) -> None:
        state = self._state
        if state is None:
            return
        for conn in state.idle:
            conn.close()
        state.idle.clear()


class _Body:
    """A request body: bytes in memory, or ``length`` bytes read from a binary file as they are sent."""

    __slots__ = ("payload", "content_type", "stream", "length")

    def __init__(self, payload: bytes, content_type: str, stream: Optional[BinaryIO] = None, length: Optional[int] = None) -> None:
        self.payload = payload
        self.content_type = content_type
        self.stream = stream
        self.length = len(payload) if stream is None else int(length or 0)


def json_body(body: Dict[str, Any]) -> _Body:
    return _Body(json.dumps(body, separators=(",", ":")).encode("utf-8"), "application/json")


def octet_body(data: bytes) -> _Body:
    return _Body(data, "application/octet-stream")


def octet_stream(f: BinaryIO, length: int) -> _Body:
    """A body streamed from ``f`` (its next ``length`` bytes) in STREAM_CHUNK_BYTES writes, never held whole."""
    return _Body(b"", "application/octet-stream", f, length)


STREAM_CHUNK_BYTES = 256 * 1024


async def _send_stream(writer: asyncio.StreamWriter, f: BinaryIO, length: int) -> None:
    loop = asyncio.get_running_loop()
    left = length
    while left > 0:
        chunk = await loop.run_in_executor(None, f.read, min(STREAM_CHUNK_BYTES, left))  # file reads off the loop
        if not chunk:
            raise ValueError(f"the body's file ended {left} bytes short of its length")
        writer.write(chunk)
        await writer.drain()
        left -= len(chunk)


async def _copy_exactly(reader: asyncio.StreamReader, n: int, sink: BinaryIO) -> int:
    left = n
    while left > 0:
        chunk = await reader.readexactly(min(STREAM_CHUNK_BYTES, left))
        sink.write(chunk)
        left -= len(chunk)
    return n


async def _copy_to_eof(reader: asyncio.StreamReader, sink: Optional[BinaryIO]) -> Any:
    if sink is None:
        return await reader.read()
    n = 0
    while True:
        chunk = await reader.read(STREAM_CHUNK_BYTES)
        if not chunk:
            return n
        sink.write(chunk)
        n += len(chunk)


async def _read_chunked(reader: asyncio.StreamReader, sink: Optional[BinaryIO] = None) -> Any:
    out = bytearray()
    n = 0
    while True:
        size_line = await reader.readline()
        size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            return n if sink is not None else bytes(out)
        data = await reader.readexactly(size)
        if sink is not None:
            sink.write(data)
            n += size
        else:
            out += data
        await reader.readexactly(2)


def _parse_json(raw: Any) -> Any:
    if not raw:
        return None
    try:
        return json.loads(bytes(raw).decode("utf-8"))
    except ValueError:
        return {"error": {"code": "INTERNAL", "message": bytes(raw)[:500].decode("utf-8", "replace"), "retryable": True}}


def _describe(e: BaseException) -> str:
    text = str(e)
    return f"{type(e).__name__}: {text}" if text else type(e).__name__
