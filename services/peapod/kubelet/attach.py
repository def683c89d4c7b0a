"""Interactive streams into a container: podman's hijacked exec and attach connections.

podman-py has no interactive exec or attach, so this speaks the few HTTP
calls itself, on podman's unix socket, without threads: ``POST
/exec/<id>/start`` and ``POST /containers/<id>/attach`` with ``Connection:
Upgrade`` answer ``101 UPGRADED`` and the connection then carries the
process's stdin one way and its output the other. Without a terminal the
output is multiplexed in frames (an 8-byte header: stream 1 stdout, 2
stderr, then the length); with a terminal it is the raw byte stream of the
pty. Half-closing the connection (``write_eof``) is how the process's stdin
sees end-of-file.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

API = "/v4.0.0/libpod"
STDOUT, STDERR = 1, 2
READ_CHUNK = 32 * 1024


class AttachError(Exception):
    """podman refused the call; the message is podman's."""


@dataclass(frozen=True)
class Size:
    width: int
    height: int

    @classmethod
    def parse(cls, value: Any) -> Size | None:
        """A terminal size from the wire, or None; ValueError unless it is 1-65535 each way."""
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ValueError("size must be an object with width and height")
        width, height = value.get("width"), value.get("height")
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 < v < 65536
                   for v in (width, height)):
            raise ValueError("size width and height must be integers from 1 to 65535")
        return cls(width=width, height=height)  # type: ignore[arg-type]


async def call(socket_path: str, method: str, path: str, body: Any = None,
               params: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One plain libpod call: its status and decoded JSON body (None when empty)."""
    reader, writer = await _send(socket_path, method, path, body, params, upgrade=False)
    try:
        status, headers = await _head(reader)
        length = int(headers.get("content-length", "0") or 0)
        if headers.get("transfer-encoding") == "chunked":
            raw = await _chunked(reader)
        else:
            raw = await reader.readexactly(length) if length else b""
    finally:
        writer.close()
    try:
        return status, json.loads(raw) if raw.strip() else None
    except json.JSONDecodeError:
        return status, {"message": raw[:200].decode(errors="replace")}


class Connection:
    """A hijacked connection: ``write`` the process's stdin, iterate its output."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 *, multiplexed: bool) -> None:
        self.reader, self.writer, self.multiplexed = reader, writer, multiplexed

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def write_eof(self) -> None:
        if self.writer.can_write_eof() and not self.writer.is_closing():
            self.writer.write_eof()

    def close(self) -> None:
        self.writer.close()

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """``(stream, bytes)`` until the process's output ends."""
        if not self.multiplexed:
            while chunk := await self.reader.read(READ_CHUNK):
                yield STDOUT, chunk
            return
        while True:
            try:
                header = await self.reader.readexactly(8)
                data = await self.reader.readexactly(int.from_bytes(header[4:8], "big"))
            except asyncio.IncompleteReadError:
                return
            if data:
                yield (STDERR if header[0] == STDERR else STDOUT), data


async def hijack(socket_path: str, path: str, body: Any = None, *,
                 params: dict[str, Any] | None = None, multiplexed: bool) -> Connection:
    reader, writer = await _send(socket_path, "POST", path, body, params, upgrade=True)
    status, _ = await _head(reader)
    if status not in (101, 200):
        raw = await reader.read(4096)
        writer.close()
        try:
            message = json.loads(raw).get("message") or raw.decode(errors="replace")
        except (json.JSONDecodeError, AttributeError):
            message = raw.decode(errors="replace") or f"HTTP {status}"
        raise AttachError(str(message))
    return Connection(reader, writer, multiplexed=multiplexed)


async def _send(socket_path: str, method: str, path: str, body: Any,
                params: dict[str, Any] | None, *, upgrade: bool,
                ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_unix_connection(socket_path, limit=1 << 20)
    data = json.dumps(body).encode() if body is not None else b""
    query = f"?{urlencode(params)}" if params else ""
    connection = "Connection: Upgrade\r\nUpgrade: tcp\r\n" if upgrade else "Connection: close\r\n"
    writer.write(f"{method} {API}{path}{query} HTTP/1.1\r\nHost: podman\r\n"
                 f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
                 f"{connection}\r\n".encode() + data)
    await writer.drain()
    return reader, writer


async def _head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        if key:
            headers[key.strip().lower()] = value.strip()
    return status, headers


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while size := int((await reader.readuntil(b"\r\n")).strip() or b"0", 16):
        out += await reader.readexactly(size)
        await reader.readexactly(2)
    return bytes(out)
