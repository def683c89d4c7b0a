"""A kubelet's first connection to NATS, against a real nats-server that is late or refuses it.

Each failed attempt must be one log line (server, user, attempt, why, next
pause) with a growing pause, never a silent retry loop; once connected, the
connection must reconnect by itself after the server restarts.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

from structlog.testing import capture_logs

from peapod.bus.auth import write_cluster_config
from peapod.bus.identity import new_seed
from peapod.bus.supervise import RestartBackoff
from peapod.kubelet.main import connect_until_up
from tests.natsd import NATSD, free_port


async def until(predicate, what: str, timeout: float = 30) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, what
        await asyncio.sleep(0.02)


def failures(logs: list[dict]) -> list[dict]:
    return [entry for entry in logs if entry["event"] == "nats_connect_failed"]


async def test_an_unreachable_server_is_logged_at_each_attempt_then_reached(tmp_path: Path):
    port, http_port = free_port(), free_port()
    creds = write_cluster_config(str(tmp_path), nodes=["node-a"], port=port, http_port=http_port)
    kubelet = creds["kubelet-node-a"]
    stop = asyncio.Event()
    with capture_logs() as logs:
        task = asyncio.create_task(connect_until_up(
            kubelet, name="test", stop=stop,
            backoff=RestartBackoff(initial=0.01, cap=0.04)))
        await until(lambda: len(failures(logs)) >= 4, "four failed attempts logged")
        server = NATSD(tmp_path / "nats.conf", http_port)
        server.start()
        try:
            nc = await asyncio.wait_for(task, 30)
            assert nc is not None and nc.is_connected
            lines = failures(logs)
            assert [line["attempt"] for line in lines] == list(range(1, len(lines) + 1))
            assert [line["retry_in"] for line in lines[:4]] == [0.01, 0.02, 0.04, 0.04]
            assert all(line["url"] == kubelet.url and line["user"] == "kubelet-node-a"
                       and "cannot reach the cluster" in line["error"] for line in lines)
            connected = next(e for e in logs if e["event"] == "nats_connected")
            assert connected["attempts"] == len(lines) + 1
            # connected once, it reconnects by itself when the server comes back
            server.stop()
            await until(lambda: not nc.is_connected, "the loss is noticed")
            server.start()
            await until(lambda: nc.is_connected, "reconnected after the restart")
            await nc.flush(timeout=5)
            await nc.close()
        finally:
            server.stop()


async def test_refused_credentials_are_logged_at_each_attempt_until_stopped(tmp_path: Path):
    port, http_port = free_port(), free_port()
    creds = write_cluster_config(str(tmp_path), nodes=["node-a"], port=port, http_port=http_port)
    stranger = replace(creds["kubelet-node-a"], seed=new_seed())  # a key the server never saw
    server = NATSD(tmp_path / "nats.conf", http_port)
    server.start()
    stop = asyncio.Event()
    try:
        with capture_logs() as logs:
            task = asyncio.create_task(connect_until_up(
                stranger, name="test", stop=stop, backoff=RestartBackoff(initial=0.01, cap=0.02)))
            await until(lambda: len(failures(logs)) >= 3, "three refusals logged")
            stop.set()
            assert await asyncio.wait_for(task, 10) is None
        lines = failures(logs)
        assert all("refused user 'kubelet-node-a'" in line["error"]
                   and "Authorization Violation" in line["error"] for line in lines), lines
        assert [line["retry_in"] for line in lines[:3]] == [0.01, 0.02, 0.02]
    finally:
        server.stop()
