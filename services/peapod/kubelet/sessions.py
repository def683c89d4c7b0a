"""One interactive ``exec -i``/``-t`` or ``attach`` session, between NATS and podman.

The CLI sends a request (``.exec`` or ``.attach``) with a fresh random
session id and a reply inbox. The kubelet opens podman's hijacked connection,
subscribes to ``peapod.kubelet.<node>.input.<session>`` and answers
``{"ready": true}``: only then does the CLI send input, so none is lost.
Input messages are ``{"data": <base64>}`` (keys, in order: one publisher,
one subject), ``{"resize": {"width", "height"}}``, ``{"eof": true}`` (the
process's stdin ends), ``{"ping": true}`` and ``{"close": true}`` (the user
left). Output goes to the reply inbox as ``{"data", "stream"}`` and the last
reply is ``{"done": true, "exitCode": n}``. A CLI that vanished (no message
for ``IDLE_SECONDS``; it pings every ``PING_SECONDS``) ends the session.
The bytes a user types are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import re
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from peapod.bus.client import decode, encode
from peapod.kubelet.attach import STDERR, AttachError, Connection, Size, call, hijack

log = structlog.get_logger("kubelet.sessions")

SESSION_ID = re.compile(r"[A-Za-z0-9]{16,64}")
PING_SECONDS = 5.0
IDLE_SECONDS = 30.0
EXIT_POLLS = 60  # 3 s of 50 ms
END_OF_FILE = b"\x04"  # a terminal's end-of-file character (Ctrl-D)


@dataclass
class Stream:
    """An open connection and what its process needs besides bytes."""

    conn: Connection
    resize: Callable[[Size], Awaitable[None]]
    exit_code: Callable[[], Awaitable[int | None]]
    # what the process is sent when the user leaves (stdinOnce on a terminal: end-of-file)
    farewell: bytes = b""


async def open_exec(socket_path: str, container_id: str, command: list[str], *, stdin: bool,
                    tty: bool, size: Size | None) -> Stream:
    status, body = await call(socket_path, "POST", f"/containers/{container_id}/exec", {
        "AttachStdin": stdin, "AttachStdout": True, "AttachStderr": True, "Tty": tty,
        "Cmd": command})
    if status >= 400 or not isinstance(body, dict) or "Id" not in body:
        raise AttachError(str((body or {}).get("message") or f"HTTP {status}"))
    exec_id = body["Id"]
    start: dict[str, Any] = {"Detach": False, "Tty": tty}
    if size is not None:
        start.update(h=size.height, w=size.width)
    conn = await hijack(socket_path, f"/exec/{exec_id}/start", start, multiplexed=not tty)

    async def resize(new: Size) -> None:
        await call(socket_path, "POST", f"/exec/{exec_id}/resize",
                   params={"h": new.height, "w": new.width})

    async def exit_code() -> int | None:
        return await _exit_code(socket_path, f"/exec/{exec_id}/json",
                                lambda info: (info.get("Running"), info.get("ExitCode")))

    return Stream(conn, resize, exit_code)


async def open_attach(socket_path: str, container_id: str, *, stdin: bool, tty: bool,
                      size: Size | None, stdin_once: bool) -> Stream:
    conn = await hijack(socket_path, f"/containers/{container_id}/attach", params={
        "stream": "true", "stdin": str(stdin).lower(), "stdout": "true", "stderr": "true"},
        multiplexed=not tty)

    async def resize(new: Size) -> None:
        await call(socket_path, "POST", f"/containers/{container_id}/resize",
                   params={"h": new.height, "w": new.width})

    async def exit_code() -> int | None:
        return await _exit_code(socket_path, f"/containers/{container_id}/json", lambda info: (
            (info.get("State") or {}).get("Running"), (info.get("State") or {}).get("ExitCode")))

    # podman closes a container's stdin when an attach without a terminal ends (stdinOnce); a
    # terminal stays open for the next attach, unless stdinOnce asks to end the input
    stream = Stream(conn, resize, exit_code,
                    farewell=END_OF_FILE if stdin and tty and stdin_once else b"")
    if size is not None and tty:
        await resize(size)
    return stream


async def _exit_code(socket_path: str, path: str,
                     read: Callable[[dict[str, Any]], tuple[Any, Any]]) -> int | None:
    """The exit code podman records just after the process's output ended (None if it runs on,
    as after an attach that ended while the container lives)."""
    for _ in range(EXIT_POLLS):
        status, info = await call(socket_path, "GET", path)
        if status != 200 or not isinstance(info, dict):
            return None
        running, code = read(info)
        if not running:
            return int(code or 0)
        await asyncio.sleep(0.05)
    return None


class Session:
    def __init__(self, nc: NATS, stream: Stream, *, reply: str, uid: str,
                 input_subject: str, idle: float = IDLE_SECONDS) -> None:
        self.nc, self.stream, self.reply, self.uid = nc, stream, reply, uid
        self.input_subject = input_subject
        self.idle = idle
        self.left = asyncio.Event()  # the user went away (close, or silence)
        self.heard = asyncio.Event()

    async def run(self) -> None:
        sub = await self.nc.subscribe(self.input_subject, cb=self._input)
        watchdog = asyncio.create_task(self._watch())
        code: int | None = None
        try:
            await self._send({"ready": True})
            pump = asyncio.create_task(self._pump())
            left = asyncio.create_task(self.left.wait())
            await asyncio.wait({pump, left}, return_when=asyncio.FIRST_COMPLETED)
            if not pump.done():  # the user left: no more output to anyone
                await self._farewell()
                pump.cancel()
            else:
                code = await self.stream.exit_code()
            left.cancel()
        finally:
            watchdog.cancel()
            await sub.unsubscribe()
            self.stream.conn.close()
        log.info("session_ended", uid=self.uid, exit_code=code, left=self.left.is_set())
        await self._send({"done": True, "exitCode": code})

    async def _farewell(self) -> None:
        if self.stream.farewell:
            with suppress(OSError, ConnectionError):
                await self.stream.conn.write(self.stream.farewell)
        self.stream.conn.write_eof()

    async def _send(self, result: dict[str, Any]) -> None:
        await self.nc.publish(self.reply, encode({"result": result}))

    async def _pump(self) -> None:
        async for stream, data in self.stream.conn.output():
            await self._send({"data": base64.b64encode(data).decode(),
                              "stream": "stderr" if stream == STDERR else "stdout"})

    async def _watch(self) -> None:
        while True:
            self.heard.clear()
            try:
                await asyncio.wait_for(self.heard.wait(), self.idle)
            except TimeoutError:
                log.info("session_abandoned", uid=self.uid)
                self.left.set()
                return

    async def _input(self, msg: Msg) -> None:
        self.heard.set()
        try:
            message = decode(msg.data)
            if not isinstance(message, dict):
                return
            if isinstance(message.get("data"), str):
                await self.stream.conn.write(base64.b64decode(message["data"]))
            elif "resize" in message:
                size = Size.parse(message["resize"])
                if size is not None:
                    await self.stream.resize(size)
            elif message.get("eof"):
                self.stream.conn.write_eof()
            elif message.get("close"):
                self.left.set()
        except (ValueError, OSError, ConnectionError) as exc:  # junk input, or the process ended
            log.info("session_input_dropped", uid=self.uid, error=type(exc).__name__)
