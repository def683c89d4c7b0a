"""``logs``, ``exec`` and ``attach`` served by the kubelet over NATS, for the CLI.

Requests arrive on ``peapod.kubelet.<node>.logs`` / ``.exec`` / ``.attach``
(only the admin may publish there; a viewer only on ``.logs``). Output
travels base64-encoded, so binary output survives. ``logs --follow`` and an
interactive session answer one request with many replies on the same reply
subject — the NATS permission ``allow_responses`` gives the kubelet exactly
that and nothing more — ending with ``{"done": true}``. An interactive
session (``exec -i``/``-t``, ``attach``) reads the CLI's keys, window sizes
and end-of-input on ``peapod.kubelet.<node>.input.<session>`` (see
``sessions``). The command of an exec is an argument list handed to podman's
exec API; no shell sees it. Each request runs in its own task.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from peapod.api import Container
from peapod.bus import subjects as s
from peapod.bus.client import decode_request, encode, respond
from peapod.errors import Invalid, NotFound, PeapodError, Unavailable
from peapod.kubelet import attach, sessions
from peapod.kubelet.reconcile import attempts
from peapod.kubelet.runtime import PodmanRuntime

log = structlog.get_logger("kubelet.streams")

FOLLOW_CHUNK_LIMIT = 64 * 1024
STREAMED = object()  # a handler that answered with many replies itself


class Streams:
    def __init__(self, *, nc: NATS, node_name: str, runtime: PodmanRuntime,
                 find_uid: Any, podman_socket: str) -> None:
        self.nc = nc
        self.node_name = node_name
        self.runtime = runtime
        self.podman_socket = podman_socket
        self.find_uid = find_uid  # (namespace, name) -> (uid, [Container]) or None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for verb, handler in (("exec", self.exec), ("attach", self.attach), ("logs", self.logs)):
            await self.nc.subscribe(s.kubelet(self.node_name, verb), cb=self._spawner(handler))

    def stop(self) -> None:
        """End every request still served (``logs -f``, sessions): the kubelet is stopping."""
        for task in list(self._tasks):
            task.cancel()

    def _spawner(self, handler: Any) -> Any:
        """Each request in its own task: one long ``logs -f`` or shell never holds back the next
        (a NATS subscription runs its callbacks one after the other)."""

        async def spawn(msg: Msg) -> None:
            task = asyncio.create_task(self._answer(handler, msg))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        return spawn

    async def _answer(self, handler: Any, msg: Msg) -> None:
        try:
            result = await handler(decode_request(msg.data), msg)
        except PeapodError as exc:
            await respond(msg, error=exc)
        except Exception as exc:
            log.exception("stream_failed", subject=msg.subject)
            await respond(msg, error=PeapodError(f"internal error: {exc}"))
        else:
            if result is not STREAMED:
                await respond(msg, result=result)

    def _target(self, payload: dict[str, Any]) -> tuple[str, Container]:
        namespace = payload.get("namespace") or "default"
        name = payload.get("name")
        for field, value in (("name", name), ("namespace", namespace),
                             ("container", payload.get("container") or "")):
            if not isinstance(value, str):
                raise Invalid(f"request field {field!r} must be a string")
        found = self.find_uid(namespace, name)
        if found is None:
            raise NotFound(f'pods "{name}" not found on node {self.node_name}')
        uid, containers = found
        wanted = payload.get("container") or containers[0].name
        container = next((c for c in containers if c.name == wanted), None)
        if container is None:
            raise NotFound(f"container {wanted} is not valid for pod {name}")
        return uid, container

    async def exec(self, payload: dict[str, Any], msg: Msg) -> Any:
        uid, container = self._target(payload)
        command = payload.get("command")
        if not isinstance(command, list) or not command or not all(
                isinstance(part, str) for part in command):
            raise Invalid("command must be a non-empty list of strings")
        log.info("exec", pod=f"{payload.get('namespace')}/{payload.get('name')}", uid=uid,
                 container=container.name, argv0=command[0])
        if payload.get("stdin") or payload.get("tty"):
            await self._session(payload, msg, uid, container, command)
            return STREAMED
        code, out, err = await asyncio.to_thread(self.runtime.exec, uid, container.name, command)
        return {"exitCode": code, "stdout": base64.b64encode(out).decode(),
                "stderr": base64.b64encode(err).decode()}

    async def attach(self, payload: dict[str, Any], msg: Msg) -> Any:
        uid, container = self._target(payload)
        if payload.get("stdin") and not container.stdin:
            raise Invalid(f"stdin is not enabled for container {container.name}: its spec "
                          "needs stdin: true")
        log.info("attach", pod=f"{payload.get('namespace')}/{payload.get('name')}", uid=uid,
                 container=container.name)
        await self._session({**payload, "tty": bool(container.tty)}, msg, uid, container, None)
        return STREAMED

    async def _session(self, payload: dict[str, Any], msg: Msg, uid: str, container: Container,
                       command: list[str] | None) -> None:
        stdin, tty, session = (payload.get(f) for f in ("stdin", "tty", "session"))
        if not all(isinstance(flag, bool | None) for flag in (stdin, tty)):
            raise Invalid("request fields 'stdin' and 'tty' must be true or false")
        if not isinstance(session, str) or not sessions.SESSION_ID.fullmatch(session):
            raise Invalid("request field 'session' must be 16 to 64 letters and digits")
        if not msg.reply:
            raise Invalid("an interactive request needs a reply subject")
        try:
            size = attach.Size.parse(payload.get("size"))
        except ValueError as exc:
            raise Invalid(f"request field 'size': {exc}") from None
        container_id = await asyncio.to_thread(self.runtime.running_container, uid,
                                               container.name)
        opened = (sessions.open_exec(self.podman_socket, container_id, command, stdin=bool(stdin),
                                     tty=bool(tty), size=size) if command is not None else
                  sessions.open_attach(self.podman_socket, container_id, stdin=bool(stdin),
                                       tty=bool(tty), size=size,
                                       stdin_once=bool(container.stdin_once)))
        try:
            stream = await opened
        except attach.AttachError as exc:
            raise Unavailable(f"cannot attach to container {container.name}: {exc}") from None
        await sessions.Session(self.nc, stream, reply=msg.reply, uid=uid,
                               input_subject=s.kubelet_input(self.node_name, session)).run()

    async def logs(self, payload: dict[str, Any], msg: Msg) -> Any:
        tail, follow, previous = (payload.get(f) for f in ("tail", "follow", "previous"))
        if tail is not None and (not isinstance(tail, int) or isinstance(tail, bool) or tail < 0):
            raise Invalid("request field 'tail' must be a non-negative integer")
        if not all(isinstance(flag, bool | None) for flag in (follow, previous)):
            raise Invalid("request fields 'follow' and 'previous' must be true or false")
        uid, spec = self._target(payload)
        container = spec.name
        info = await asyncio.to_thread(self.runtime.get_pod, uid)  # never block the loop
        tries = attempts(info, container)
        index = 1 if payload.get("previous") else 0
        if len(tries) <= index:
            what = "previous terminated" if index else "running"
            raise NotFound(f'{what} container "{container}" not found in pod '
                           f'"{payload.get("name")}"')
        container_id = tries[index].id
        tail = payload.get("tail")
        follow = bool(payload.get("follow"))
        if not follow:
            data = b"".join(await asyncio.to_thread(
                lambda: list(self.runtime.logs(container_id, tail=tail, follow=False))))
            return {"data": base64.b64encode(data).decode(), "done": True}
        await self._follow(msg, container_id, tail)
        return STREAMED

    async def _follow(self, msg: Msg, container_id: str, tail: int | None) -> None:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        stopped = threading.Event()

        def pump() -> None:
            try:
                for chunk in self.runtime.logs(container_id, tail=tail, follow=True):
                    if stopped.is_set():
                        return
                    loop.call_soon_threadsafe(queue.put_nowait, chunk)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, None)

        thread = threading.Thread(target=pump, daemon=True, name=f"logs-{container_id[:12]}")
        thread.start()
        try:
            while (chunk := await queue.get()) is not None:
                await self.nc.publish(msg.reply, encode(
                    {"result": {"data": base64.b64encode(chunk[:FOLLOW_CHUNK_LIMIT]).decode()}}))
            await self.nc.publish(msg.reply, encode({"result": {"done": True}}))
        finally:
            stopped.set()
