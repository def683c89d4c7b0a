"""A real gRPC server (grpcio) with the standard health service, for the gRPC probe tests.

grpcio is a test-only dependency (the ``dev`` extra): the kubelet's own
client is ``peapod.kubelet.grpcprobe`` on h2. The server runs on its own
threads, so a test's event loop (and an in-process kubelet) can probe it.
Besides the services set with ``set``, ``slow`` answers only when the
client has gone (a probe's timeout), and ``health=False`` serves no health
service at all (Unimplemented).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SLOW = "slow"


class _Servicer(health.HealthServicer):
    def Check(self, request: Any, context: Any) -> Any:  # grpc names the method
        if request.service == SLOW:
            ends = time.monotonic() + 10
            while context.is_active() and time.monotonic() < ends:
                time.sleep(0.05)
        return super().Check(request, context)


@contextlib.contextmanager
def health_server(statuses: dict[str, int], *, health: bool = True) -> Iterator[int]:
    """Serve on 127.0.0.1; yields the port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    if health:
        servicer = _Servicer()
        for service, status in statuses.items():
            servicer.set(service, status)
        servicer.set(SLOW, SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(grace=None)
