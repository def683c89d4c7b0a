"""Probe and hook actions against real sockets on loopback: httpGet, tcpSocket, exec's timeout.

The servers are real asyncio servers, so the requests, refusals and
timeouts are the kernel's; only exec's podman call is a function here
(the integration tests run it through podman).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

from peapod.api.probe import ExecAction, HTTPGetAction, TCPSocketAction
from peapod.kubelet.actions import Target, http_get, run_exec, tcp_socket
from tests.natsd import free_port

TARGET = Target(container_id="c1", pod_ip="127.0.0.1", ports={"http": 0})


@contextlib.asynccontextmanager
async def http_server(responses: dict[str, bytes], *, context: ssl.SSLContext | None = None,
                      seen: list[bytes] | None = None) -> AsyncIterator[int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        if seen is not None:
            seen.append(head)
        path = head.split(b" ")[1].decode()
        writer.write(responses.get(path, b"HTTP/1.1 404 Not Found\r\n\r\n"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.close()


async def test_http_get_success_failure_and_headers():
    seen: list[bytes] = []
    responses = {"/ok": b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
                 "/bad": b"HTTP/1.1 500 Internal Server Error\r\n\r\n",
                 "/moved": b"HTTP/1.1 302 Found\r\nLocation: /bad\r\n\r\n"}
    async with http_server(responses, seen=seen) as port:
        ok = await http_get(HTTPGetAction(path="/ok", port=port, http_headers=[
            {"name": "X-Probe", "value": "yes"}]), TARGET, timeout=2)
        assert ok.ok and ok.message == "HTTP probe succeeded with statuscode: 200"
        assert b"X-Probe: yes\r\n" in seen[0] and b"User-Agent: kube-probe/" in seen[0]
        bad = await http_get(HTTPGetAction(path="/bad", port=port), TARGET, timeout=2)
        assert (bad.ok, bad.message) == (False, "HTTP probe failed with statuscode: 500")
        moved = await http_get(HTTPGetAction(path="/moved", port=port), TARGET, timeout=2)
        assert moved.message == "HTTP probe failed with statuscode: 500"  # the redirect followed
        named = await http_get(HTTPGetAction(path="/ok", port="http"),
                               Target(container_id="c", pod_ip="127.0.0.1",
                                      ports={"http": port}), timeout=2)
        assert named.ok
    missing = await http_get(HTTPGetAction(port="metrics"), TARGET, timeout=2)
    assert missing.message == "port metrics not found in the container's ports"


async def test_http_get_refused_and_timed_out_in_go_words():
    port = free_port()
    refused = await http_get(HTTPGetAction(path="/healthz", port=port), TARGET, timeout=2)
    assert refused.message == (f'Get "http://127.0.0.1:{port}/healthz": '
                               f"dial tcp 127.0.0.1:{port}: connect: connection refused")

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    quiet = server.sockets[0].getsockname()[1]
    try:
        slow = await http_get(HTTPGetAction(port=quiet), TARGET, timeout=0.2)
    finally:
        server.close()
    assert slow.message == (f'Get "http://127.0.0.1:{quiet}/": context deadline exceeded '
                            "(Client.Timeout exceeded while awaiting headers)")


async def test_https_is_probed_without_verifying_the_certificate(tmp_path: Path):
    key, cert = tmp_path / "k.pem", tmp_path / "c.pem"
    await asyncio.to_thread(
        subprocess.run, ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                         "/CN=nobody", "-days", "1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    async with http_server({"/": b"HTTP/1.1 204 No Content\r\n\r\n"}, context=context) as port:
        result = await http_get(HTTPGetAction(port=port, scheme="HTTPS"), TARGET, timeout=3)
    assert result.ok, result.message


async def test_a_line_break_in_a_header_is_never_sent():
    result = await http_get(HTTPGetAction(port=1, http_headers=[
        {"name": "X", "value": "a\r\nInjected: 1"}]), TARGET, timeout=1)
    assert not result.ok and "line break" in result.message


async def test_tcp_socket_open_and_refused():
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        assert (await tcp_socket(TCPSocketAction(port=port), TARGET, timeout=1)).ok
    finally:
        server.close()
    closed = free_port()
    refused = await tcp_socket(TCPSocketAction(port=closed), TARGET, timeout=1)
    assert refused.message == f"dial tcp 127.0.0.1:{closed}: connect: connection refused"


async def test_exec_output_exit_code_and_timeout():
    async def run(container_id: str, argv: list[str]) -> tuple[int, bytes]:
        if argv[0] == "hang":
            await asyncio.sleep(5)
        return (0 if argv[0] == "true" else 1), f"ran {' '.join(argv)} in {container_id}\n".encode()

    ok = await run_exec(ExecAction(command=["true"]), TARGET, run=run, timeout=1)
    assert ok.ok and ok.message == "ran true in c1\n"
    failed = await run_exec(ExecAction(command=["false", "x"]), TARGET, run=run, timeout=1)
    assert not failed.ok and failed.message == "ran false x in c1\n"
    hung = await run_exec(ExecAction(command=["hang", "on"]), TARGET, run=run, timeout=0.1)
    assert hung.message == "command 'hang on' timed out"

