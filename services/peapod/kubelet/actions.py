"""The actions probes and lifecycle hooks run: exec, httpGet, tcpSocket, sleep.

Everything here runs on the kubelet's event loop: ``httpGet`` and
``tcpSocket`` are plain asyncio connections to the pod's IP (podman's pod
network, reachable from the node), so a probe costs a socket, not a thread.
``exec`` goes through podman's exec API, whose call blocks, so it runs in the
kubelet's probe threads (``threads.py``) and is abandoned at its timeout.

Failures are worded as Kubernetes' prober words them, because they end up
in events a user reads: ``HTTP probe failed with statuscode: 500``,
``Get "http://10.88.0.5:8080/": dial tcp 10.88.0.5:8080: connect: connection
refused``. Nothing reaches a shell: a command is an argv list, and a path or
header with a line break is refused instead of being sent.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

from peapod.api import Container
from peapod.api.probe import ExecAction, HTTPGetAction, TCPSocketAction

USER_AGENT = "kube-probe/1.31"
MAX_REDIRECTS = 10

# (container id, argv) -> (exit code, combined output)
ExecFn = Callable[[str, list[str]], Awaitable[tuple[int, bytes]]]


@dataclass(frozen=True)
class Target:
    """Where an action runs: a container of a pod."""

    container_id: str
    pod_ip: str | None
    ports: dict[str, int] = field(default_factory=dict)  # the container's named ports


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str = ""  # a failure in Kubernetes' words; an exec's output


def named_ports(container: Container) -> dict[str, int]:
    return {p.name: p.container_port for p in container.ports or [] if p.name}


def resolve_port(port: int | str, target: Target) -> int | None:
    if isinstance(port, int):
        return port
    if port.isdigit():
        return int(port)
    return target.ports.get(port)


async def run_exec(action: ExecAction, target: Target, *, run: ExecFn,
                   timeout: float | None) -> Outcome:
    argv = list(action.command or [])
    try:
        code, output = await asyncio.wait_for(run(target.container_id, argv), timeout)
    except TimeoutError:
        return Outcome(False, f"command {' '.join(argv)!r} timed out")
    except Exception as exc:  # podman refused the exec: the container is gone or stopped
        return Outcome(False, str(exc))
    return Outcome(code == 0, output.decode(errors="replace"))


async def tcp_socket(action: TCPSocketAction, target: Target, *, timeout: float) -> Outcome:
    host = action.host or target.pod_ip
    port = resolve_port(action.port, target)
    if host is None or port is None:
        return Outcome(False, _unresolved(host, action.port))
    address = f"{host}:{port}"
    try:
        async with asyncio.timeout(timeout):
            _reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        return Outcome(False, f"dial tcp {address}: i/o timeout")
    except OSError as exc:
        return Outcome(False, f"dial tcp {address}: {_connect_error(exc)}")
    writer.close()
    return Outcome(True)


async def http_get(action: HTTPGetAction, target: Target, *, timeout: float) -> Outcome:
    host = action.host or target.pod_ip
    port = resolve_port(action.port, target)
    if host is None or port is None:
        return Outcome(False, _unresolved(host, action.port))
    headers = {h.name: h.value for h in action.http_headers or []}
    if any(_has_break(text) for text in [action.path, *headers, *headers.values()]):
        return Outcome(False, "a path or header with a line break is not sent")
    url = f"{action.scheme.lower()}://{_join(host, port)}{action.path or '/'}"
    try:
        async with asyncio.timeout(timeout):
            code = await _follow(url, headers)
    except TimeoutError:
        return Outcome(False, f'Get "{url}": context deadline exceeded '
                              "(Client.Timeout exceeded while awaiting headers)")
    except OSError as exc:
        return Outcome(False, f'Get "{url}": dial tcp {_join(host, port)}: {_connect_error(exc)}')
    except ValueError as exc:
        return Outcome(False, f'Get "{url}": {exc}')
    if 200 <= code < 400:
        return Outcome(True, f"HTTP probe succeeded with statuscode: {code}")
    return Outcome(False, f"HTTP probe failed with statuscode: {code}")


async def _follow(url: str, headers: dict[str, str]) -> int:
    """GET ``url``, following redirects to the same host as Go's client does for the prober.

    A redirect to another host ends the probe as a success, as in Kubernetes.
    """
    for _ in range(MAX_REDIRECTS + 1):
        code, location = await _get_once(url, headers)
        if not (300 <= code < 400) or not location:
            return code
        nxt = urljoin(url, location)
        if urlsplit(nxt).netloc != urlsplit(url).netloc:
            return code
        url = nxt
    raise ValueError(f"stopped after {MAX_REDIRECTS} redirects")


async def _get_once(url: str, headers: dict[str, str]) -> tuple[int, str | None]:
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    context = _insecure_context() if parts.scheme == "https" else None
    reader, writer = await asyncio.open_connection(host, port, ssl=context)
    try:
        sent = {"Host": parts.netloc, "User-Agent": USER_AGENT, "Accept": "*/*",
                **headers, "Connection": "close"}
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        request = f"GET {path or '/'} HTTP/1.1\r\n" + "".join(
            f"{name}: {value}\r\n" for name, value in sent.items()) + "\r\n"
        writer.write(request.encode("latin-1", errors="replace"))
        await writer.drain()
        status = (await reader.readline()).decode("latin-1").split()
        if len(status) < 2 or not status[0].startswith("HTTP/") or not status[1].isdigit():
            raise ValueError("malformed HTTP response")
        location = None
        while line := (await reader.readline()).decode("latin-1").strip():
            name, _, value = line.partition(":")
            if name.strip().lower() == "location":
                location = value.strip()
        return int(status[1]), location
    finally:
        writer.close()


def _insecure_context() -> ssl.SSLContext:
    # Kubernetes' HTTPS probes skip certificate verification
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _has_break(text: str) -> bool:
    return "\r" in text or "\n" in text


def _connect_error(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connect: connection refused"
    return f"connect: {(exc.strerror or str(exc)).lower()}"


def _unresolved(host: str | None, port: int | str) -> str:
    if host is None:
        return "the pod has no IP address yet"
    return f"port {port} not found in the container's ports"
