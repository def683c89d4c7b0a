"""Recording Events: sentences for people, stored on the events stream by the apiserver.

Events are hints, not state: a failure to record one is logged and
swallowed, so it can never stop a reconcile or a bind. Each event is one
message on ``peapod.events.<namespace>.<kind>.<name>``, which is what lets
``peapod describe`` read one object's events with a subject filter. Only the
apiserver publishes there: a recorder sends each event as a request, on
``peapod.api.v1.events.create`` for a cluster component or on its node's
``peapod.api.v1.node.<node>.events`` for a kubelet, and the apiserver
validates it and checks that a kubelet writes only about its own Node and
pods (``peapod.apiserver.events``).

Like Kubernetes' event correlator, a recorder folds a repeat of the same
event (same object, type, reason and message) within ten minutes into the
first one: it publishes it again under the same name with ``count`` raised
and ``lastTimestamp`` moved on. Readers keep the last copy of each name
(``latest_events``), so a crash loop is one ``BackOff`` event counted, not a
screenful.

A kubelet's recorder keeps what it could not send (``buffer``): while its
link to NATS is down, or the apiserver does not answer, each event waits on
the node, in order, a repeat folded into the copy that waits, and
``resend`` sends them once the apiserver answers again, with the times they
happened. The buffer is bounded (``NODE_EVENT_BUFFER`` events, each at most
about 2 KiB): when it is full the oldest is dropped, and the number dropped
is logged (``event_buffer_full`` once, then ``events_sent_after_outage`` with
``dropped``). A refusal from the apiserver (``Forbidden``, ``Invalid``) is
never kept: sending it again would not change the answer. A request that
timed out may still have reached the apiserver; sent again, it carries the
same name and count, and the apiserver stores it once. A kubelet's buffer
is also kept in its state directory (``spool.py``), written only while
events wait, so a kubelet restarted while cut off sends them too.

``post`` records an event in the background, so that a kubelet starting a
container does not wait for the apiserver's answer before its next podman
call; the events about one object still go in the order they were posted or
recorded (each waits for the one before it), and ``settled`` waits until
those about an object are sent (the kubelet reports a pod's status after its
events).

Readers never trust the stream: ``parse_event`` turns one message into an
Event or an ``Invalid`` that says, in one line, why it is not one (not JSON,
not an object, a field of the wrong type, a timestamp that does not parse),
so a reader can skip it with a warning instead of failing for everyone until
the stream's retention drops it. ``event_problems`` holds the rules beyond
types; readers and the apiserver's event handler share them.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats.errors
import structlog
from nats.aio.client import Client as NATS

from peapod.api import Event, EventSource, ObjectMeta, ObjectReference, now_rfc3339, parse_rfc3339
from peapod.api.base import check_dns1123_label, check_dns1123_subdomain
from peapod.api.decode import decode_model
from peapod.api.meta import API_VERSIONS
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.bus.spool import EventSpool
from peapod.errors import Invalid, PeapodError, Unavailable

log = structlog.get_logger("events")

AGGREGATION_WINDOW = timedelta(minutes=10)
REMEMBERED = 4096  # distinct events a recorder can still fold repeats into
REASON_LIMIT = 128  # Kubernetes' limit on an event's reason
MESSAGE_LIMIT = 1024  # Kubernetes' limit on an event's note; recorders truncate to it
NODE_EVENT_BUFFER = 1000  # events a kubelet keeps while it cannot send them; oldest dropped
RESEND_PERIOD = 1.0  # seconds between two looks at the buffer
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def _name_problems(field: str, value: str | None, check: Any) -> list[str]:
    if not value:
        return [f"{field}: required value"]
    try:
        check(value)
    except ValueError as exc:
        return [f"{field}: {exc}"]
    return []


def _timestamp_problems(event: Event) -> list[str]:
    problems, parsed = [], {}
    for field, value in (("firstTimestamp", event.first_timestamp),
                         ("lastTimestamp", event.last_timestamp)):
        if not value:
            problems.append(f"{field}: required value")
            continue
        try:
            when = parse_rfc3339(value)
        except ValueError:
            when = None
        if when is None or when.tzinfo is None:
            problems.append(f"{field}: invalid value {value!r}: not an RFC 3339 time")
        else:
            parsed[field] = when
    if len(parsed) == 2 and parsed["lastTimestamp"] < parsed["firstTimestamp"]:
        problems.append("lastTimestamp: must not be before firstTimestamp")
    return problems


def event_problems(event: Event) -> list[str]:
    """What makes an Event unusable beyond its field types, one ``path: message`` each."""
    ref = event.involved_object
    problems = [*_name_problems("metadata.name", event.metadata.name, check_dns1123_subdomain),
                *_name_problems("metadata.namespace", event.metadata.namespace,
                                check_dns1123_label),
                *_name_problems("involvedObject.name", ref.name, check_dns1123_subdomain)]
    if not ref.kind or not _KIND.fullmatch(ref.kind):
        problems.append(f"involvedObject.kind: invalid value {ref.kind!r}: a kind is a word "
                        "of letters and digits (Pod, Node)")
    if ref.namespace and ref.namespace != event.metadata.namespace:
        problems.append(f"involvedObject.namespace: invalid value {ref.namespace!r}: does not "
                        "match the event's namespace")
    if not event.reason.strip() or len(event.reason) > REASON_LIMIT:
        problems.append(f"reason: must be 1 to {REASON_LIMIT} characters")
    if len(event.message) > MESSAGE_LIMIT:
        problems.append(f"message: must be at most {MESSAGE_LIMIT} characters")
    if event.count < 1:
        problems.append(f"count: invalid value {event.count}: must be at least 1")
    return problems + _timestamp_problems(event)


def parse_event(data: bytes) -> Event:
    """One message of the events stream as an Event; ``Invalid`` says why it is not one."""
    event = decode_model(data, Event)
    if problems := event_problems(event):
        raise Invalid("not an Event: " + "; ".join(problems))
    return event


def _object_key(obj: dict[str, Any]) -> tuple[str, str, str, str | None]:
    meta = obj.get("metadata", {})
    return (obj.get("kind", "Pod"), meta.get("namespace") or "default", meta.get("name", ""),
            meta.get("uid"))


def latest_events(events: Iterable[Event]) -> list[Event]:
    """The last copy of each event, in the order the events first appeared.

    A copy replaces an earlier one only if it is about the same object: a
    writer may fold repeats of its own events, never overwrite another
    object's.
    """
    latest: dict[tuple[str | None, ...], Event] = {}
    for event in events:
        ref = event.involved_object
        key = (event.metadata.namespace, ref.kind, ref.name, event.metadata.name)
        latest[key] = event  # a re-set key keeps its first position
    return list(latest.values())


class EventRecorder:
    """Records events about objects, folding repeats, through one API subject.

    ``EventRecorder(nc, component=...)`` asks on ``peapod.api.v1.events.create``
    (cluster components); ``EventRecorder.for_node(nc, node)`` on the node's own
    subject, where the apiserver lets it write about that node and its pods only.
    """

    def __init__(self, nc: NATS, *, component: str, host: str | None = None,
                 subject: str | None = None, timeout: float = 5, buffer: int = 0,
                 spool: EventSpool | None = None) -> None:
        self._nc = nc
        self._subject = subject or s.api("events", "create")
        self._timeout = timeout
        self._source = EventSource(component=component, host=host)
        self._component = component
        self._host = host
        self._seen: OrderedDict[tuple[Any, ...], Event] = OrderedDict()
        self._buffer_limit = buffer
        self._held: OrderedDict[tuple[Any, ...], Event] = OrderedDict()  # waiting to be sent
        self._dropped = 0  # held events dropped since the buffer last emptied
        self._spool = spool  # the held events on the node's disk, for a kubelet restart
        # per object (kind, namespace, name, uid): the last event posted, until it is sent
        self._tails: dict[tuple[str, str, str, str | None], asyncio.Task[None]] = {}
        for event in spool.load() if spool is not None else []:
            self._held[_key(event)] = event
        if self._held:
            log.info("events_held", subject=self._subject, held=len(self._held),
                     since="before the kubelet restarted")

    @classmethod
    def for_node(cls, nc: NATS, node: str, state_dir: Path | None = None, *,
                 timeout: float = 5) -> EventRecorder:
        """A kubelet's recorder: its events name the node as their source, and wait on the node
        while they cannot be sent (in ``state_dir`` too, if given: ``spool.py``)."""
        spool = EventSpool(state_dir, limit=NODE_EVENT_BUFFER) if state_dir else None
        return cls(nc, component="kubelet", host=node, subject=s.node_api(node, "events"),
                   timeout=timeout, buffer=NODE_EVENT_BUFFER, spool=spool)

    def attach(self, nc: NATS) -> None:
        """Send through ``nc`` from now on (a kubelet that started without a connection)."""
        self._nc = nc

    @property
    def held(self) -> int:
        """Events waiting on this node to be sent."""
        return len(self._held)

    async def record(self, obj: dict[str, Any], *, reason: str, message: str,
                     type: str = "Normal") -> None:
        """Record an Event about ``obj`` (a wire-shaped object with kind and metadata), after
        the events posted about it before."""
        await asyncio.wait([self.post(obj, reason=reason, message=message, type=type)])

    def post(self, obj: dict[str, Any], *, reason: str, message: str,
             type: str = "Normal") -> asyncio.Task[None]:
        """Record an Event about ``obj`` in the background, stamped now: the caller goes on at
        once; the events about one object are sent in the order they were posted."""
        key = _object_key(obj)
        previous, now = self._tails.get(key), now_rfc3339()

        async def send() -> None:
            if previous is not None:
                await asyncio.wait([previous])  # done, however it ended
            try:
                await self._record(obj, reason=reason, message=message, type=type, now=now)
            except Exception:  # events are hints: log, never break the caller's work
                log.exception("event_not_recorded", kind=key[0], namespace=key[1], name=key[2],
                              uid=key[3], reason=reason)

        task = asyncio.create_task(send(), name=f"event:{key[2]}:{reason}")
        self._tails[key] = task
        task.add_done_callback(lambda done: self._forget_tail(key, done))
        return task

    def _forget_tail(self, key: tuple[str, str, str, str | None], done: asyncio.Task[None]) -> None:
        if self._tails.get(key) is done:
            del self._tails[key]

    async def settled(self, obj: dict[str, Any]) -> None:
        """Wait until the events posted about ``obj`` so far are sent (or given up)."""
        tail = self._tails.get(_object_key(obj))
        if tail is not None:
            await asyncio.wait([tail])

    async def _record(self, obj: dict[str, Any], *, reason: str, message: str, type: str,
                      now: str) -> None:
        meta = obj.get("metadata", {})
        kind = obj.get("kind", "Pod")
        namespace = meta.get("namespace") or "default"
        name = meta.get("name", "")
        if len(message) > MESSAGE_LIMIT:
            message = message[:MESSAGE_LIMIT - 1] + "…"
        key = (kind, namespace, name, meta.get("uid"), type, reason, message)
        seen = self._held.get(key) or self._seen.pop(key, None)
        if seen is not None and (parse_rfc3339(now) - parse_rfc3339(seen.last_timestamp or now)
                                 < AGGREGATION_WINDOW):
            event = seen.model_copy(update={"count": seen.count + 1, "last_timestamp": now})
        else:
            event = self._new_event(kind, namespace, name, meta, reason=reason, message=message,
                                    type=type, now=now)
        if self._buffer_limit and (self._held or not self._nc.is_connected):
            self._hold(key, event)  # behind those already waiting, or no link at all
            return
        error = await self._send(event)
        if error is None:
            self._remember(key, event)
        elif self._buffer_limit and error[0]:
            self._hold(key, event)
        else:  # events are hints; the caller's work must go on
            log.warning("event_not_recorded", kind=kind, namespace=namespace, name=name,
                        uid=meta.get("uid"), reason=reason, error=error[1])

    async def _send(self, event: Event) -> tuple[bool, str] | None:
        """None once recorded, else (whether sending it again later may work, why not)."""
        try:
            await request(self._nc, self._subject, {"object": event.to_wire()},
                          timeout=self._timeout)
        except PeapodError as exc:
            return isinstance(exc, Unavailable), exc.message
        except (nats.errors.Error, OSError) as exc:
            return True, str(exc)
        return None

    def _remember(self, key: tuple[Any, ...], event: Event) -> None:
        self._seen.pop(key, None)
        self._seen[key] = event  # only what was recorded can be folded into
        while len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)

    def _hold(self, key: tuple[Any, ...], event: Event) -> None:
        if not self._held:
            log.info("events_held", subject=self._subject, connected=self._nc.is_connected)
        folded = key in self._held  # a repeat replaces the copy waiting, in its place
        self._held[key] = event
        while not folded and len(self._held) > self._buffer_limit:
            self._held.popitem(last=False)
            self._dropped += 1
            if self._dropped == 1:
                log.warning("event_buffer_full", limit=self._buffer_limit,
                            dropping="the oldest event")
        if self._spool is not None:
            self._spool.held(event, list(self._held.values()))

    async def resend(self, *, period: float = RESEND_PERIOD) -> None:
        """Send the events waiting on the node, for ever (a task of the kubelet)."""
        while True:
            await asyncio.sleep(period)
            if self._held and self._nc.is_connected:
                await self.flush()

    async def flush(self) -> int:
        """Send the waiting events in order, until one cannot be sent; how many were sent."""
        sent, refused = 0, 0
        while self._held:
            key, event = next(iter(self._held.items()))
            error = await self._send(event)
            if error is not None and error[0]:
                return sent  # still unreachable: later
            if self._held.get(key) is event:  # else a repeat replaced it meanwhile: send that too
                del self._held[key]
                if self._spool is not None:
                    self._spool.sent(event, list(self._held.values()))
            if error is None:
                self._remember(key, event)
                sent += 1
            else:
                refused += 1
                log.warning("event_not_recorded", kind=event.involved_object.kind,
                            namespace=event.metadata.namespace, name=event.involved_object.name,
                            uid=event.involved_object.uid, reason=event.reason, error=error[1])
        log.info("events_sent_after_outage", sent=sent, refused=refused, dropped=self._dropped)
        self._dropped = 0
        return sent

    def _new_event(self, kind: str, namespace: str, name: str, meta: dict[str, Any], *,
                   reason: str, message: str, type: str, now: str) -> Event:
        return Event(
            metadata=ObjectMeta(name=f"{name}.{time.time_ns():x}", namespace=namespace,
                                creation_timestamp=now),
            involved_object=ObjectReference(kind=kind, namespace=meta.get("namespace"), name=name,
                                            uid=meta.get("uid"),
                                            api_version=API_VERSIONS.get(kind, "v1"),
                                            resource_version=meta.get("resourceVersion")),
            reason=reason, message=message, type=type,  # type: ignore[arg-type]
            source=self._source, first_timestamp=now, last_timestamp=now, count=1,
            reporting_component=self._component, reporting_instance=self._host,
        )


def _key(event: Event) -> tuple[Any, ...]:
    """The key ``record`` folds repeats under, of an event read back from the node's disk."""
    ref = event.involved_object
    return (ref.kind, event.metadata.namespace or "default", ref.name, ref.uid, event.type,
            event.reason, event.message)
