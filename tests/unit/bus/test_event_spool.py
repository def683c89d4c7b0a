"""The events a kubelet holds, on its disk: appended, folded, bounded, compacted, removed.

Pure file behaviour, in a temporary directory; the restart with real podman and nats-server is
``tests/integration/cluster/test_event_spool.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

from structlog.testing import capture_logs

from peapod.api import Event, now_rfc3339
from peapod.bus.spool import EventSpool


def event(name: str, count: int = 1) -> Event:
    now = now_rfc3339()
    return Event.model_validate({
        "metadata": {"name": f"{name}.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": name, "namespace": "default", "uid": "u"},
        "reason": "Started", "message": "Started container main", "type": "Normal",
        "source": {"component": "kubelet", "host": "node-a"},
        "firstTimestamp": now, "lastTimestamp": now, "count": count})


def names(events: list[Event]) -> list[tuple[str, int]]:
    return [(e.involved_object.name or "", e.count) for e in events]


def test_held_events_are_read_back_in_order_with_repeats_folded_and_sent_ones_gone(
        tmp_path: Path):
    spool = EventSpool(tmp_path, limit=10)
    waiting: list[Event] = []
    for e in (event("p1"), event("p2"), event("p3"), event("p2", count=2)):
        waiting = [w for w in waiting if w.metadata.name != e.metadata.name] + [e]
        spool.held(e, waiting)
    spool.sent(event("p1"), waiting[1:])
    assert names(EventSpool(tmp_path, limit=10).load()) == [("p2", 2), ("p3", 1)]
    assert len(spool.path.read_text().splitlines()) == 5  # appended, never rewritten
    spool.sent(event("p2"), [event("p3")])
    spool.sent(event("p3"), [])
    assert not spool.path.exists()  # nothing waits: no file
    assert EventSpool(tmp_path, limit=10).load() == []


def test_reading_keeps_the_newest_within_the_bound_and_the_file_is_compacted(tmp_path: Path):
    spool = EventSpool(tmp_path, limit=3)
    held = [event(f"p{i}") for i in range(7)]
    for i, e in enumerate(held):
        spool.held(e, held[max(0, i - 2):i + 1])
    # the seventh line would pass twice the bound: the file was written anew with what waits
    assert len(spool.path.read_text().splitlines()) == 3
    assert names(EventSpool(tmp_path, limit=3).load()) == [("p4", 1), ("p5", 1), ("p6", 1)]
    assert names(EventSpool(tmp_path, limit=2).load()) == [("p5", 1), ("p6", 1)]
    assert len(spool.path.read_text().splitlines()) == 2  # read over the bound: compacted


def test_a_corrupt_or_cut_short_file_is_logged_once_and_its_bad_lines_dropped(tmp_path: Path):
    good = json.dumps({"held": event("p1").to_wire()})
    (tmp_path / "events.jsonl").write_text(
        "\n".join([good, "{not json", json.dumps({"held": {"reason": 3}}), '["x"]',
                   json.dumps({"sent": "default/p9.1"}), good[:40]]))
    with capture_logs() as logs:
        loaded = EventSpool(tmp_path, limit=10).load()
    assert names(loaded) == [("p1", 1)]
    assert [(e["event"], e["lines"]) for e in logs] == [("held_events_dropped", 4)]
    assert (tmp_path / "events.jsonl").read_text().count("\n") == 1  # only the good line left
    (tmp_path / "events.jsonl").write_bytes(b"\xff\xfe garbage")
    with capture_logs() as logs:
        assert EventSpool(tmp_path, limit=10).load() == []
    assert [e["event"] for e in logs] == ["held_events_unreadable"]


def test_a_write_that_fails_is_logged_once_and_the_next_that_works_starts_anew(tmp_path: Path):
    spool = EventSpool(tmp_path, limit=10)
    spool.path.mkdir()  # every write fails (IsADirectoryError); a full disk fails the same way
    with capture_logs() as logs:
        spool.held(event("p1"), [event("p1")])
        spool.held(event("p2"), [event("p1"), event("p2")])
    assert [e["event"] for e in logs] == ["held_events_not_saved"]
    spool.path.rmdir()  # writable again
    spool.held(event("p3"), [event("p1"), event("p2"), event("p3")])
    assert names(EventSpool(tmp_path, limit=10).load()) == [("p1", 1), ("p2", 1), ("p3", 1)]
