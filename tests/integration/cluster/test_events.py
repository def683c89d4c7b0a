"""Events on the real stream: repeats fold into one counted event, as Kubernetes' correlator does."""

from __future__ import annotations

import json

from peapod.api import Event
from peapod.bus import subjects as s
from peapod.bus.events import EventRecorder, latest_events
from peapod.bus.replay import read_all

POD = {"kind": "Pod", "metadata": {"name": "db", "namespace": "default", "uid": "u-1"}}


async def test_a_repeated_event_is_one_event_with_a_count(apiserver):
    js = apiserver["admin"].jetstream()
    recorder = EventRecorder(apiserver["admin"], component="kubelet", host="node-a")
    for _ in range(3):
        await recorder.record(POD, reason="BackOff", type="Warning",
                              message="Back-off restarting failed container db")
    await recorder.record(POD, reason="Started", message="Started container db")
    # the same words about another incarnation of the pod (new uid) are a new event
    await recorder.record({**POD, "metadata": {**POD["metadata"], "uid": "u-2"}},
                          reason="Started", message="Started container db")

    msgs = await read_all(js, stream=s.EVENTS_STREAM, subject=s.event("default", "Pod", "db"))
    copies = [Event.model_validate(json.loads(m.data)) for m in msgs]
    assert len(copies) == 5  # every repeat is published, so followers see it
    events = latest_events(copies)
    assert [(e.reason, e.count, e.involved_object.uid) for e in events] == [
        ("BackOff", 3, "u-1"), ("Started", 1, "u-1"), ("Started", 1, "u-2")]
    backoff = [c for c in copies if c.reason == "BackOff"]
    assert len({c.metadata.name for c in backoff}) == 1
    assert [c.count for c in backoff] == [1, 2, 3]
    assert backoff[-1].first_timestamp == backoff[0].first_timestamp
