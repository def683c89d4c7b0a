"""A real nats-server with peapod's users, that a test may restart, and the KV bucket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from peapod.bus.auth import write_cluster_config
from peapod.bus.client import connect, jetstream
from tests.natsd import NATSD, free_port

BUCKET = "peapod"


class Server:
    def __init__(self, tmp_path: Path) -> None:
        port, http_port = free_port(), free_port()
        self.creds = write_cluster_config(str(tmp_path / "state"), nodes=["node-a"], port=port,
                                          http_port=http_port)
        self.natsd = NATSD(tmp_path / "state" / "nats.conf", http_port)

    def restart(self) -> None:
        self.natsd.stop()
        self.natsd.start()


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    srv = Server(tmp_path)
    srv.natsd.start()
    admin = await connect(srv.creds["admin"], name="test-admin")
    await jetstream(admin).create_key_value(bucket=BUCKET, history=64)
    await admin.close()
    try:
        yield srv
    finally:
        srv.natsd.stop()
