"""Event, as Kubernetes' core/v1 defines it: a sentence for people about an object."""

from __future__ import annotations

from typing import Literal

from peapod.api.base import Model
from peapod.api.meta import ObjectMeta, ObjectReference


class EventSource(Model):
    component: str | None = None
    host: str | None = None


class Event(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Event"] = "Event"
    metadata: ObjectMeta
    involved_object: ObjectReference
    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"
    source: EventSource | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    count: int = 1
    reporting_component: str | None = None
    reporting_instance: str | None = None
