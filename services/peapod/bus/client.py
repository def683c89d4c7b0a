"""Connecting to NATS and the request/reply envelope every API call uses.

A request is a JSON object; a reply is ``{"result": ...}`` or ``{"error":
{"code": ..., "message": ...}}``. ``request`` turns an error reply back into
the same ``PeapodError`` subclass the server raised, and a missing responder
or a timeout into ``Unavailable``, so callers handle one exception hierarchy
whatever crossed the wire. ``serve`` is the other half: it decodes, calls the
handler, and always answers, so a client never waits out its timeout because
a handler crashed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import nats
import structlog
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import MaxPayloadError, NoRespondersError, OutboundBufferLimitError
from nats.js import JetStreamContext

from peapod.bus.identity import Credentials
from peapod.bus.subjects import API_PREFIX, inbox_prefix
from peapod.errors import Forbidden, Invalid, PeapodError, TooLarge, Unavailable, from_wire

log = structlog.get_logger("bus")

T = TypeVar("T")
Handler = Callable[[dict[str, Any], Msg], Awaitable[Any]]


class _QuietTlsEof(logging.Filter):
    """asyncio warns "returning true from eof_received() has no effect when using
    ssl" each time a TLS connection of nats-py's closes: harmless, and it would
    end up on the CLI's stderr."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "eof_received()" not in record.getMessage()


logging.getLogger("asyncio").addFilter(_QuietTlsEof())


class TLSOnlyClient(NATS):
    """A client that refuses a server which does not switch to TLS, before CONNECT is sent.

    nats-py upgrades to TLS only when the server's INFO says ``tls_required``: a
    ``tls://`` URL alone does not stop it from signing the server's nonce with
    the user's NKEY in the clear (which a server in the middle could relay).
    INFO is the last moment to refuse. (This overrides a private method of
    nats-py's; a test fails if nats-py renames it.)
    """

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        if initial_connection and not info.get("tls_required"):  # each (re)connection's first INFO
            raise nats.errors.Error("nats: the server does not require TLS, but the cluster has a "
                                    "certificate-authority")
        await super()._process_info(info, initial_connection)


PING_INTERVAL_SECONDS = 20


async def connect(creds: Credentials, *, name: str, connect_timeout: float = 5,
                  reconnect: bool = True) -> NATS:
    """Connect as ``creds.user`` (its NKEY) with its own reply inbox.

    With a cluster CA the link is TLS and the server's certificate is verified;
    a server that does not require TLS is refused. An unreachable or refusing
    server raises Unavailable naming the URL. Components reconnect for ever;
    with ``reconnect=False`` each server is tried once.
    """

    connected = False

    async def on_error(exc: Exception) -> None:
        if connected and not note_refusal(nc, exc, creds.user):  # connecting: raised below
            log.warning("nats_error", error=str(exc))

    async def on_disconnected() -> None:
        if nc.is_reconnecting:  # not a close of our own
            log.warning("nats_disconnected", user=creds.user)

    async def on_reconnected() -> None:
        url = nc.connected_url
        log.info("nats_reconnected", user=creds.user, server=url.netloc if url else None)

    tls = creds.tls_context()
    servers = creds.servers
    if tls is not None:
        servers = ["tls://" + u.split("://", 1)[-1] for u in servers]
    options: dict[str, Any] = {"tls": tls} if tls is not None else {}
    nc = NATS() if tls is None else TLSOnlyClient()
    try:
        await nc.connect(
            servers,
            nkeys_seed_str=creds.seed,
            name=name,
            inbox_prefix=inbox_prefix(creds.user),
            connect_timeout=connect_timeout,  # type: ignore[arg-type]  # nats-py: seconds, not int
            allow_reconnect=reconnect,
            # nats-py drops a server once it failed more than this many times: 0 is never
            max_reconnect_attempts=-1 if reconnect else 1,
            reconnect_time_wait=1,
            # a link that went silent (power or Wi-Fi cut at the other end, packets dropped)
            # is noticed after two unanswered pings: 40-60 s, not nats-py's 4-6 minutes
            ping_interval=PING_INTERVAL_SECONDS,
            max_outstanding_pings=2,
            error_cb=on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=on_reconnected,
            **options,
        )
    except (TimeoutError, OSError, nats.errors.NoServersError) as exc:
        raise Unavailable(f"cannot reach the cluster at {creds.url}: {exc or 'no servers'}") from None
    except nats.errors.Error as exc:  # e.g. 'Authorization Violation': another cluster, old credentials
        raise Unavailable(f"the server at {creds.url} refused user {creds.user!r}: "
                          f"{str(exc).removeprefix('nats: ')}") from None
    connected = True
    return nc


def encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def decode(data: bytes) -> Any:
    return json.loads(data) if data else None


_PERMISSION = re.compile(r'permissions violation for publish to "([^"]+)"', re.IGNORECASE)
# per connection: subject → (who, set once the NATS server refused that user to publish there)
_refusals: WeakKeyDictionary[NATS, dict[str, tuple[str, asyncio.Event]]] = WeakKeyDictionary()


def _refusal(nc: NATS, subject: str) -> tuple[str, asyncio.Event]:
    subject = subject.lower()
    known = _refusals.setdefault(nc, {})
    if subject not in known:
        known[subject] = ("", asyncio.Event())
    return known[subject]


def note_refusal(nc: NATS, exc: Exception, user: str) -> bool:
    """Record the server's "permissions violation" for a publish; True if ``exc`` was one.

    NATS answers a forbidden publish with an asynchronous error, not a
    reply, so ``request`` waits for either and says Forbidden at once.
    """
    match = _PERMISSION.search(str(exc))
    if match is None:
        return False
    subject = match.group(1).lower()  # nats-py lower-cases the server's message
    known = _refusals.setdefault(nc, {})
    event = known[subject][1] if subject in known else asyncio.Event()
    known[subject] = (user, event)
    event.set()
    return True


def forbidden(subject: str, user: str, payload: dict[str, Any]) -> Forbidden:
    """Kubernetes' words for a request this user may not make."""
    parts = subject.split(".")
    if subject.startswith(API_PREFIX + ".") and len(parts) == 5:
        resource, verb = parts[3], parts[4]
    elif parts[:2] == ["peapod", "kubelet"] and len(parts) == 4:
        resource, verb = f"pods/{parts[3]}", "create"
    else:
        return Forbidden(f'User "{user}" cannot publish on {subject}')
    where = f' in the namespace "{payload["namespace"]}"' if payload.get("namespace") else ""
    return Forbidden(f'{resource} is forbidden: User "{user}" cannot {verb} resource '
                     f'"{resource}" in API group ""{where}')


def decode_request(data: bytes) -> dict[str, Any]:
    """A request body, which must be a JSON object; ``Invalid`` otherwise (not JSON, not
    UTF-8, empty, a list …), so a handler only ever sees an object."""
    try:
        payload = decode(data)
    except ValueError as exc:  # JSONDecodeError, or bytes that are not UTF-8
        raise Invalid(f"request body is not JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise Invalid("request body must be a JSON object")
    return payload


async def wait_or_refused(nc: NATS, subject: str, payload: dict[str, Any],
                          waiting: Awaitable[T], timeout: float) -> T:
    """``waiting`` (the first reply to a publish on ``subject``); Forbidden at once if the NATS
    server refused this user the publish, TimeoutError after ``timeout``."""
    refused = _refusal(nc, subject)[1]
    ask = asyncio.ensure_future(waiting)
    watch = asyncio.ensure_future(refused.wait())
    try:
        await asyncio.wait({ask, watch}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not ask.done():
        ask.cancel()
        if refused.is_set():
            raise forbidden(subject, _refusal(nc, subject)[0], payload)
        raise TimeoutError
    return ask.result()


async def request(nc: NATS, subject: str, payload: dict[str, Any], *,
                  timeout: float = 10) -> Any:
    """Send one API request and return its result, or raise the server's error."""
    if nc.is_closed or not (nc.is_connected or nc.is_reconnecting):  # never connected, or closed
        raise Unavailable(f"not connected to NATS; nothing sent on {subject}")
    refused = _refusal(nc, subject)[1]
    data = encode(payload)
    ask = asyncio.ensure_future(nc.request(subject, data, timeout=timeout))
    watch = asyncio.ensure_future(refused.wait())
    try:
        await asyncio.wait({ask, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not ask.done():
        ask.cancel()
        raise forbidden(subject, _refusal(nc, subject)[0], payload)
    try:
        msg = ask.result()
    except NoRespondersError:
        raise Unavailable(f"no server is answering on {subject}") from None
    except TimeoutError:  # nats-py raises both its own and asyncio's
        raise Unavailable(f"timed out after {timeout:g}s waiting for {subject}") from None
    except MaxPayloadError:
        raise TooLarge(f"the request is {len(data)} bytes, over the {nc.max_payload} bytes one "
                       f"NATS message may carry (max_payload); nothing sent on {subject}") from None
    except OutboundBufferLimitError:  # cut off long enough to fill nats-py's buffer
        raise Unavailable(f"not connected, and what waits to be sent fills the client's buffer; "
                          f"nothing sent on {subject}") from None
    reply = decode(msg.data)
    if not isinstance(reply, dict):
        raise Unavailable(f"malformed reply on {subject}")
    if "error" in reply:
        raise from_wire(reply["error"])
    return reply.get("result")


CHUNK_SIZE = 500  # kubectl's --chunk-size


async def list_in_pages(nc: NATS, subject: str, payload: dict[str, Any], *,
                        chunk_size: int = CHUNK_SIZE) -> list[Any]:
    """Every item of a list, asked for in pages (``limit``/``continue``) as kubectl does,
    so that no reply is larger than one NATS message may be. An apiserver from before pages
    answers the whole list as a plain list, which is taken as it is."""
    items: list[Any] = []
    token: str | None = None
    while True:
        reply = await request(nc, subject, {**payload, "limit": chunk_size, "continue": token})
        if token is None and isinstance(reply, list):
            return reply
        if not isinstance(reply, dict) or not isinstance(reply.get("items"), list):
            raise Unavailable(f"malformed list page on {subject}")
        items.extend(reply["items"])
        token = (reply.get("metadata") or {}).get("continue")
        if not token:
            return items


async def respond(msg: Msg, *, result: Any = None, error: PeapodError | None = None,
                  limit: int = 0) -> None:
    """Reply to ``msg``; a result over ``limit`` bytes (max_payload) is an error instead,
    which the client reads at once rather than waiting out its timeout for a reply that
    the server would never deliver."""
    if not msg.reply:
        return
    data = encode({"error": error.to_wire()} if error else {"result": result})
    if limit and len(data) > limit:
        log.warning("reply_too_large", subject=msg.subject, size=len(data), max_payload=limit)
        data = encode({"error": TooLarge(
            f"the reply is {len(data)} bytes, over the {limit} bytes one NATS message may "
            "carry (max_payload); ask for a list in pages (limit and continue)").to_wire()})
    await msg.respond(data)


async def serve(nc: NATS, subject: str, handler: Handler, *,
                queue: str = "") -> Subscription:
    """Answer requests on ``subject`` with ``handler``; every request gets a reply."""

    async def on_message(msg: Msg) -> None:
        try:
            result = await handler(decode_request(msg.data), msg)
        except PeapodError as exc:
            await respond(msg, error=exc)
        except Exception as exc:  # answer, then let the operator see the traceback
            log.exception("handler_failed", subject=msg.subject)
            await respond(msg, error=PeapodError(f"internal error: {exc}"))
        else:
            await respond(msg, result=result, limit=nc.max_payload)

    return await nc.subscribe(subject, queue=queue, cb=on_message)


def jetstream(nc: NATS, *, timeout: float = 5) -> JetStreamContext:
    return nc.jetstream(timeout=timeout)
