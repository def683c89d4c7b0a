"""Fixtures shared by every test: a real nats-server with peapod's users and permissions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from peapod.bus.auth import write_cluster_config
from tests.natsd import NATSD, free_port

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("CONTAINERS_CONF", str(ROOT / "deploy" / "podman" / "containers.conf"))

TEST_NODES = ["node-a", "node-b"]


@pytest.fixture
def cluster_creds(tmp_path: Path) -> Iterator[dict]:
    """A fresh nats-server configured exactly as ``peapod up`` configures one.

    Yields ``{user: Credentials}`` for admin, apiserver, scheduler and the
    kubelets of TEST_NODES.
    """
    port, http_port = free_port(), free_port()
    creds = write_cluster_config(str(tmp_path / "state"), nodes=TEST_NODES, port=port,
                                 http_port=http_port)
    server = NATSD(tmp_path / "state" / "nats.conf", http_port)
    server.start()
    try:
        yield creds
    finally:
        server.stop()
