"""``exec -i``/``-it`` and ``attach``: the user's terminal wired to a process in a pod.

With a terminal (``-t``) the user's tty is put in raw mode, so every key
(Ctrl-C included) goes to the remote process and its pty does the echoing;
the window size is sent at the start and again on each ``SIGWINCH``. Without
one, stdin is copied as it comes and its end closes the remote stdin. Output
arrives from the kubelet as replies to the session's request (see
``peapod.kubelet.sessions``); the remote exit code is returned. stdin is read
in a daemon thread, so a pipe, a file or a terminal all work and nothing
waits for a read that will never end when the session does.
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import signal
import sys
import termios
import threading
import tty
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from peapod.api import Pod
from peapod.cli.client import Client, node_of

NO_TTY = "Unable to use a TTY - input is not a terminal or the right kind of file"
ATTACH_PROMPT = "If you don't see a command prompt, try pressing enter."
PING_SECONDS = 5.0  # the kubelet ends a session it has not heard from for 30 s
READ_CHUNK = 16 * 1024


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def window_size() -> dict[str, int] | None:
    for stream in (sys.stdout, sys.stdin):
        with suppress(OSError, ValueError):
            size = os.get_terminal_size(stream.fileno())
            # a terminal that knows no size (0x0: `script`, some serial consoles) sends
            # none, as kubectl's term.GetSize
            return {"width": size.columns, "height": size.lines} if size.columns and size.lines else None
    return None


@contextmanager
def raw_terminal(enabled: bool) -> Iterator[None]:
    """The user's terminal in raw mode for the session, restored whatever happens."""
    if not enabled:
        yield
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _read_stdin(loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes]) -> None:
    fd = sys.stdin.fileno()
    while True:
        try:
            data = os.read(fd, READ_CHUNK)
        except OSError:
            data = b""
        loop.call_soon_threadsafe(queue.put_nowait, data)
        if not data:
            return


async def run(client: Client, verb: str, pod: Pod, container: str | None, *,
              command: list[str] | None, stdin: bool, tty: bool) -> int | None:
    """One session; the remote exit code (None if the process still runs, after attach)."""
    node, session = node_of(pod), secrets.token_hex(16)
    payload: dict[str, Any] = {"namespace": pod.metadata.namespace, "name": pod.metadata.name,
                               "container": container, "stdin": stdin, "tty": tty,
                               "session": session, "size": window_size() if tty else None}
    if command is not None:
        payload["command"] = command
    loop = asyncio.get_running_loop()
    tasks: list[asyncio.Task[None]] = []
    done = False
    replies = client.replies(node, verb, payload)
    try:
        first = await anext(replies)
        if not first.get("ready"):
            raise RuntimeError(f"unexpected first reply from the kubelet: {sorted(first)}")
        send = _sender(client, node, session)
        tasks.append(asyncio.create_task(_ping(send)))
        if stdin:
            tasks.append(asyncio.create_task(_copy_stdin(loop, send)))
        if tty:
            loop.add_signal_handler(signal.SIGWINCH, lambda: tasks.append(
                asyncio.create_task(_resize(send))))
        with raw_terminal(tty and stdin):
            async for result in replies:
                if result.get("done"):
                    done = True
                    code = result.get("exitCode")
                    return int(code) if code is not None else None
                _write(result)
        return None
    finally:
        if tty:
            loop.remove_signal_handler(signal.SIGWINCH)
        for task in tasks:
            task.cancel()
        if not done:
            with suppress(Exception):
                await client.send_input(node, session, {"close": True})
        await replies.aclose()


def _sender(client: Client, node: str, session: str) -> Any:
    async def send(message: dict[str, Any]) -> None:
        await client.send_input(node, session, message)
    return send


def _write(result: dict[str, Any]) -> None:
    out = sys.stderr if result.get("stream") == "stderr" else sys.stdout
    out.buffer.write(base64.b64decode(result.get("data") or ""))
    out.buffer.flush()


async def _ping(send: Any) -> None:
    while True:
        await asyncio.sleep(PING_SECONDS)
        await send({"ping": True})


async def _resize(send: Any) -> None:
    size = window_size()
    if size is not None:
        await send({"resize": size})


async def _copy_stdin(loop: asyncio.AbstractEventLoop, send: Any) -> None:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    threading.Thread(target=_read_stdin, args=(loop, queue), daemon=True,
                     name="stdin").start()
    while data := await queue.get():
        await send({"data": base64.b64encode(data).decode()})
    await send({"eof": True})
