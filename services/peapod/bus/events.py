"""Recording Events: sentences for people, published onto the events stream.

Events are hints, not state: a failure to record one is logged and
swallowed, so it can never stop a reconcile or a bind. Each event is one
message on ``peapod.events.<namespace>.<kind>.<name>``, which is what lets
``peapod describe`` read one object's events with a subject filter.

Like Kubernetes' event correlator, a recorder folds a repeat of the same
event (same object, type, reason and message) within ten minutes into the
first one: it publishes it again under the same name with ``count`` raised
and ``lastTimestamp`` moved on. Readers keep the last copy of each name
(``latest_events``), so a crash loop is one ``BackOff`` event counted, not a
screenful.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import structlog
from nats.js import JetStreamContext

from peapod.api import Event, EventSource, ObjectMeta, ObjectReference, now_rfc3339, parse_rfc3339
from peapod.bus import subjects as s
from peapod.bus.client import encode

log = structlog.get_logger("events")

AGGREGATION_WINDOW = timedelta(minutes=10)
REMEMBERED = 4096  # distinct events a recorder can still fold repeats into


def latest_events(events: Iterable[Event]) -> list[Event]:
    """The last copy of each event name, in the order the names first appeared."""
    latest: dict[str, Event] = {}
    for event in events:
        latest[event.metadata.name or ""] = event  # a re-set key keeps its first position
    return list(latest.values())


class EventRecorder:
    def __init__(self, js: JetStreamContext, *, component: str, host: str | None = None) -> None:
        self._js = js
        self._source = EventSource(component=component, host=host)
        self._component = component
        self._host = host
        self._seen: OrderedDict[tuple[Any, ...], Event] = OrderedDict()

    async def record(self, obj: dict[str, Any], *, reason: str, message: str,
                     type: str = "Normal") -> None:
        """Record an Event about ``obj`` (a wire-shaped object with kind and metadata)."""
        meta = obj.get("metadata", {})
        kind = obj.get("kind", "Pod")
        namespace = meta.get("namespace") or "default"
        name = meta.get("name", "")
        now = now_rfc3339()
        key = (kind, namespace, name, meta.get("uid"), type, reason, message)
        seen = self._seen.pop(key, None)
        if seen is not None and (parse_rfc3339(now) - parse_rfc3339(seen.last_timestamp or now)
                                 < AGGREGATION_WINDOW):
            event = seen.model_copy(update={"count": seen.count + 1, "last_timestamp": now})
        else:
            event = self._new_event(kind, namespace, name, meta, reason=reason, message=message,
                                    type=type, now=now)
        self._seen[key] = event
        while len(self._seen) > REMEMBERED:
            self._seen.popitem(last=False)
        try:
            await self._js.publish(s.event(namespace, kind, name), encode(event.to_wire()))
        except Exception as exc:  # events are hints; the caller's work must go on
            log.warning("event_not_recorded", reason=reason, error=str(exc))

    def _new_event(self, kind: str, namespace: str, name: str, meta: dict[str, Any], *,
                   reason: str, message: str, type: str, now: str) -> Event:
        return Event(
            metadata=ObjectMeta(name=f"{name}.{time.time_ns():x}", namespace=namespace,
                                creation_timestamp=now),
            involved_object=ObjectReference(kind=kind, namespace=namespace, name=name,
                                            uid=meta.get("uid"), api_version="v1",
                                            resource_version=meta.get("resourceVersion")),
            reason=reason, message=message, type=type,  # type: ignore[arg-type]
            source=self._source, first_timestamp=now, last_timestamp=now, count=1,
            reporting_component=self._component, reporting_instance=self._host,
        )
