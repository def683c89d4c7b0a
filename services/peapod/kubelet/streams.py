"""``logs`` and ``exec`` served by the kubelet over NATS, for the CLI.

Requests arrive on ``peapod.kubelet.<node>.logs`` / ``.exec`` (only the admin
may publish there). Output travels base64-encoded, so binary output survives.
``logs --follow`` answers one request with many replies on the same reply
subject — the NATS permission ``allow_responses`` gives the kubelet exactly
that and nothing more — ending with ``{"done": true}``. The command of an
exec is an argument list handed to podman's exec API; no shell sees it.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from typing import Any

import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg

from peapod.bus import subjects as s
from peapod.bus.client import decode_request, encode, respond, serve
from peapod.errors import Invalid, NotFound, PeapodError
from peapod.kubelet.reconcile import attempts
from peapod.kubelet.runtime import PodmanRuntime

log = structlog.get_logger("kubelet.streams")

FOLLOW_CHUNK_LIMIT = 64 * 1024


class Streams:
    def __init__(self, *, nc: NATS, node_name: str, runtime: PodmanRuntime,
                 find_uid: Any) -> None:
        self.nc = nc
        self.node_name = node_name
        self.runtime = runtime
        self.find_uid = find_uid  # (namespace, name) -> (uid, [container names]) or None

    async def start(self) -> None:
        await serve(self.nc, s.kubelet(self.node_name, "exec"), self.exec)
        await self.nc.subscribe(s.kubelet(self.node_name, "logs"), cb=self._logs_message)

    def _target(self, payload: dict[str, Any]) -> tuple[str, str]:
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
        container = payload.get("container") or containers[0]
        if container not in containers:
            raise NotFound(f"container {container} is not valid for pod {name}")
        return uid, container

    async def exec(self, payload: dict[str, Any], msg: Msg) -> Any:
        uid, container = self._target(payload)
        command = payload.get("command")
        if not isinstance(command, list) or not command or not all(
                isinstance(part, str) for part in command):
            raise Invalid("command must be a non-empty list of strings")
        log.info("exec", pod=f"{payload.get('namespace')}/{payload.get('name')}", uid=uid,
                 container=container, argv0=command[0])
        code, out, err = await asyncio.to_thread(self.runtime.exec, uid, container, command)
        return {"exitCode": code, "stdout": base64.b64encode(out).decode(),
                "stderr": base64.b64encode(err).decode()}

    async def _logs_message(self, msg: Msg) -> None:
        try:
            await self.logs(msg)
        except PeapodError as exc:
            await respond(msg, error=exc)
        except Exception as exc:
            log.exception("logs_failed")
            await respond(msg, error=PeapodError(f"internal error: {exc}"))

    async def logs(self, msg: Msg) -> None:
        payload = decode_request(msg.data)
        tail, follow, previous = (payload.get(f) for f in ("tail", "follow", "previous"))
        if tail is not None and (not isinstance(tail, int) or isinstance(tail, bool) or tail < 0):
            raise Invalid("request field 'tail' must be a non-negative integer")
        if not all(isinstance(flag, bool | None) for flag in (follow, previous)):
            raise Invalid("request fields 'follow' and 'previous' must be true or false")
        uid, container = self._target(payload)
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
            await respond(msg, result={"data": base64.b64encode(data).decode(), "done": True})
            return
        await self._follow(msg, container_id, tail)

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
