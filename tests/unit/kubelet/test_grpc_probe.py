"""The kubelet's gRPC health check (h2, hand-encoded protobuf) against a real grpcio server.

The server is grpcio's own health service on loopback (``tests/grpchealth.py``);
the messages are compared with Kubernetes' prober's words.
"""

from __future__ import annotations

import asyncio

import pytest
from grpc_health.v1 import health_pb2

from peapod.api.probe import GRPCAction
from peapod.kubelet import grpcprobe
from tests.grpchealth import NOT_SERVING, SERVING, SLOW, health_server
from tests.natsd import free_port


async def probe(port: int, service: str | None = None, timeout: float = 1) -> tuple[bool, str]:
    outcome = await grpcprobe.check(GRPCAction(port=port, service=service), "127.0.0.1",
                                    timeout=timeout)
    return outcome.ok, outcome.message


async def test_serving_not_serving_and_unknown_services():
    with health_server({"": SERVING, "db": NOT_SERVING}) as port:
        assert await probe(port) == (True, "service healthy")
        assert await probe(port, "db") == (False,
                                           'service unhealthy (responded with "NOT_SERVING")')
        assert await probe(port, "nope") == (
            False, "error: health rpc probe failed: rpc error: code = NotFound desc = ")


async def test_a_server_without_the_health_service():
    with health_server({}, health=False) as port:
        ok, message = await probe(port)
    assert not ok and message.startswith(
        "error: this server does not implement the grpc health protocol "
        "(grpc.health.v1.Health): "), message


async def test_nothing_listening_and_a_silent_listener_are_connect_timeouts():
    port = free_port()
    assert await probe(port, timeout=1) == (
        False, f'timeout: failed to connect service "127.0.0.1:{port}" within 1s: '
               "context deadline exceeded")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never answers the HTTP/2 preface
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        ok, message = await probe(port, timeout=1)
    assert not ok and message.startswith("timeout: failed to connect service"), message


async def test_a_call_that_outlasts_the_timeout():
    with health_server({}) as port:
        assert await probe(port, SLOW, timeout=1) == (
            False, "timeout: health rpc did not complete within 1s")


@pytest.mark.parametrize("service", ["", "db", "é" * 200])
def test_the_request_is_protobufs_encoding(service: str):
    assert grpcprobe.encode_request(service) == \
        health_pb2.HealthCheckRequest(service=service).SerializeToString()


@pytest.mark.parametrize("status", [0, 1, 2, 3])
def test_the_response_is_read_as_protobuf_writes_it(status: int):
    data = health_pb2.HealthCheckResponse(status=status).SerializeToString()
    assert grpcprobe.decode_response(data) == status
    assert grpcprobe.decode_response(b"\x12\x03abc" + data) == status  # an unknown field


def test_durations_print_as_go_prints_them():
    assert [grpcprobe.go_duration(s) for s in (1, 59, 90, 3600)] == ["1s", "59s", "1m30s",
                                                                     "1h0m0s"]
