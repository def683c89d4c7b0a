"""gRPC probes: ``grpc.health.v1.Health/Check`` over plaintext HTTP/2, on the event loop.

Kubernetes' prober (``pkg/probe/grpc``) dials the pod's IP with grpc-go,
without TLS, and calls the standard health service with the probe's
``service`` (empty by default); ``SERVING`` succeeds, anything else fails.
grpcio would do it with a large native library; a health check is one
request with a one-field protobuf, so here it is the pure-Python ``h2``
state machine over an asyncio connection, and the two messages are encoded
by hand (``HealthCheckRequest{string service = 1}``,
``HealthCheckResponse{ServingStatus status = 1}``).

The failures are worded as the prober words them, since they become
``Unhealthy`` events:

* the connection is not made within ``timeoutSeconds`` (grpc-go's blocking
  dial retries a refused connection until then):
  ``timeout: failed to connect service "10.88.0.5:9000" within 1s: context deadline exceeded``
* the call does not complete in the time left: ``timeout: health rpc did not complete within 1s``
* the server has no health service:
  ``error: this server does not implement the grpc health protocol (grpc.health.v1.Health): …``
* another gRPC error (an unknown service is ``NotFound``):
  ``error: health rpc probe failed: rpc error: code = NotFound desc = …``
* an answer other than SERVING: ``service unhealthy (responded with "NOT_SERVING")``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import unquote

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    Event,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
)
from h2.exceptions import ProtocolError

from peapod.api.probe import GRPCAction
from peapod.kubelet.actions import Outcome
from peapod.kubelet.backoff import go_duration

USER_AGENT = "kube-probe/1.31"
METHOD = "/grpc.health.v1.Health/Check"
RETRY = 1.0  # grpc-go's first reconnect back-off

# grpc-go's names of the status codes, as its errors print them
CODES = ("OK", "Canceled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
         "AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
         "Aborted", "OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss",
         "Unauthenticated")
UNIMPLEMENTED, DEADLINE_EXCEEDED = 12, 4
SERVING_STATUS = ("UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN")
# grpc-go's mapping of a non-200 HTTP answer to a gRPC code
HTTP_CODES = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}


class RPCError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code, self.message = code, message

    def __str__(self) -> str:
        name = CODES[self.code] if 0 <= self.code < len(CODES) else f"Code({self.code})"
        return f"rpc error: code = {name} desc = {self.message}"


async def check(action: GRPCAction, host: str, *, timeout: float) -> Outcome:
    """Kubernetes' gRPC probe of ``host``:``action.port``, bounded by ``timeout`` seconds."""
    address = f"[{host}]:{action.port}" if ":" in host else f"{host}:{action.port}"
    within = go_duration(timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        async with asyncio.timeout_at(deadline):
            channel = await _Channel.open(host, action.port, address)
    except TimeoutError:
        return Outcome(False, f"timeout: failed to connect service {json.dumps(address)} within "
                             f"{within}: context deadline exceeded")
    try:
        async with asyncio.timeout_at(deadline):
            status = await channel.call(encode_request(action.service or ""),
                                        max(deadline - loop.time(), 0.001))
    except TimeoutError:
        return Outcome(False, f"timeout: health rpc did not complete within {within}")
    except RPCError as exc:
        if exc.code == UNIMPLEMENTED:
            return Outcome(False, "error: this server does not implement the grpc health protocol "
                                 f"(grpc.health.v1.Health): {exc.message}")
        if exc.code == DEADLINE_EXCEEDED:
            return Outcome(False, f"timeout: health rpc did not complete within {within}")
        return Outcome(False, f"error: health rpc probe failed: {exc}")
    except (OSError, ProtocolError) as exc:
        return Outcome(False, "error: health rpc probe failed: "
                             f"{RPCError(14, f'connection error: {exc}')}")
    finally:
        channel.close()
    if status != 1:
        name = SERVING_STATUS[status] if 0 <= status < len(SERVING_STATUS) else str(status)
        return Outcome(False, f"service unhealthy (responded with {json.dumps(name)})")
    return Outcome(True, "service healthy")


class _Channel:
    """One HTTP/2 connection, ready once the server's SETTINGS arrived (as grpc-go's dial)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 authority: str) -> None:
        self.reader, self.writer, self.authority = reader, writer, authority
        self.h2 = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))

    @classmethod
    async def open(cls, host: str, port: int, authority: str) -> _Channel:
        while True:  # grpc-go's blocking dial retries until its deadline
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                await asyncio.sleep(RETRY)
                continue
            channel = cls(reader, writer, authority)
            try:
                if await channel._handshake():
                    return channel
            except (OSError, ProtocolError):
                pass
            channel.close()
            await asyncio.sleep(RETRY)

    async def _handshake(self) -> bool:
        self.h2.initiate_connection()
        await self._flush()
        while True:
            events = await self._receive()
            if events is None or any(isinstance(e, ConnectionTerminated) for e in events):
                return False
            if any(isinstance(e, RemoteSettingsChanged) for e in events):
                return True

    async def call(self, message: bytes, timeout: float) -> int:
        stream = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream, [
            (":method", "POST"), (":scheme", "http"), (":path", METHOD),
            (":authority", self.authority), ("content-type", "application/grpc"),
            ("te", "trailers"), ("user-agent", USER_AGENT),
            ("grpc-timeout", f"{max(int(timeout * 1000), 1)}m")])
        self.h2.send_data(stream, frame(message), end_stream=True)
        await self._flush()
        return await self._response(stream)

    async def _response(self, stream: int) -> int:
        headers: dict[str, str] = {}
        body = b""
        while True:
            events = await self._receive()
            if events is None:
                raise RPCError(14, "error reading from server: EOF")
            for event in events:
                if isinstance(event, ResponseReceived | TrailersReceived) and \
                        event.stream_id == stream:
                    headers.update(_text(event.headers or []))
                elif isinstance(event, DataReceived) and event.stream_id == stream:
                    body += event.data or b""
                    self.h2.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, StreamReset) and event.stream_id == stream:
                    raise RPCError(13, f"stream terminated by RST_STREAM with error code: "
                                       f"{event.error_code!s}")
                elif isinstance(event, ConnectionTerminated):
                    raise RPCError(14, "the connection is closing")
                elif isinstance(event, StreamEnded) and event.stream_id == stream:
                    return _status(headers, body)
            await self._flush()

    async def _receive(self) -> list[Event] | None:
        data = await self.reader.read(65536)
        if not data:
            return None
        events = self.h2.receive_data(data)
        await self._flush()
        return events

    async def _flush(self) -> None:
        if data := self.h2.data_to_send():
            self.writer.write(data)
            await self.writer.drain()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


def _text(headers: list[tuple[str, str]] | list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {(k.decode() if isinstance(k, bytes) else k):
            (v.decode(errors="replace") if isinstance(v, bytes) else v) for k, v in headers}


def _status(headers: dict[str, str], body: bytes) -> int:
    http = headers.get(":status", "")
    if http != "200":
        code = HTTP_CODES.get(int(http), 2) if http.isdigit() else 13
        raise RPCError(code, f"unexpected HTTP status code received from server: {http}")
    grpc_status = headers.get("grpc-status")
    if grpc_status is None:
        raise RPCError(13, "server closed the stream without sending trailers")
    code = int(grpc_status) if grpc_status.isdigit() else 2
    if code != 0:
        raise RPCError(code, unquote(headers.get("grpc-message", "")))
    return decode_response(unframe(body))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if at >= len(data) or shift > 63:
            raise RPCError(13, "grpc: failed to unmarshal the received message: bad varint")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def encode_request(service: str) -> bytes:
    """HealthCheckRequest: field 1 (string), left out when empty as proto3 does."""
    raw = service.encode()
    return b"\x0a" + _varint(len(raw)) + raw if raw else b""


def decode_response(data: bytes) -> int:
    """HealthCheckResponse's field 1 (an enum); unknown fields are skipped, absent is 0."""
    status, at = 0, 0
    while at < len(data):
        key, at = _read_varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _read_varint(data, at)
            if number == 1:
                status = value
        elif wire == 2:
            length, at = _read_varint(data, at)
            at += length
        elif wire in (1, 5):
            at += 8 if wire == 1 else 4
        else:
            raise RPCError(13, "grpc: failed to unmarshal the received message: bad wire type")
    if at > len(data):
        raise RPCError(13, "grpc: failed to unmarshal the received message: truncated")
    return status


def frame(message: bytes) -> bytes:
    """gRPC's length-prefixed message: not compressed, 4-byte big-endian length."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def unframe(body: bytes) -> bytes:
    if len(body) < 5 or body[0] != 0 or len(body) < 5 + int.from_bytes(body[1:5], "big"):
        raise RPCError(13, "grpc: failed to read the received message")
    return body[5:5 + int.from_bytes(body[1:5], "big")]
