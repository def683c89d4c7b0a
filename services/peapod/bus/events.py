"""Recording Events: sentences for people, published onto the events stream.

Events are hints, not state: a failure to record one is logged and
swallowed, so it can never stop a reconcile or a bind. Each event is one
message on ``peapod.events.<namespace>.<kind>.<name>``, which is what lets
``peapod describe`` read one object's events with a subject filter.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from nats.js import JetStreamContext

from peapod.api import Event, EventSource, ObjectMeta, ObjectReference, now_rfc3339
from peapod.bus import subjects as s
from peapod.bus.client import encode

log = structlog.get_logger("events")


class EventRecorder:
    def __init__(self, js: JetStreamContext, *, component: str, host: str | None = None) -> None:
        self._js = js
        self._source = EventSource(component=component, host=host)
        self._component = component
        self._host = host

    async def record(self, obj: dict[str, Any], *, reason: str, message: str,
                     type: str = "Normal") -> None:
        """Record an Event about ``obj`` (a wire-shaped object with kind and metadata)."""
        meta = obj.get("metadata", {})
        kind = obj.get("kind", "Pod")
        namespace = meta.get("namespace") or "default"
        name = meta.get("name", "")
        now = now_rfc3339()
        event = Event(
            metadata=ObjectMeta(name=f"{name}.{time.time_ns():x}", namespace=namespace,
                                creation_timestamp=now),
            involved_object=ObjectReference(kind=kind, namespace=namespace, name=name,
                                            uid=meta.get("uid"), api_version="v1",
                                            resource_version=meta.get("resourceVersion")),
            reason=reason, message=message, type=type,  # type: ignore[arg-type]
            source=self._source, first_timestamp=now, last_timestamp=now, count=1,
            reporting_component=self._component, reporting_instance=self._host,
        )
        try:
            await self._js.publish(s.event(namespace, kind, name), encode(event.to_wire()))
        except Exception as exc:  # events are hints; the caller's work must go on
            log.warning("event_not_recorded", reason=reason, error=str(exc))
