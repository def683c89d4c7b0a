"""A Node whose kubelet stopped heartbeating reads as Ready=Unknown, by Kubernetes' rule."""

from __future__ import annotations

from datetime import UTC, datetime

from peapod.apiserver.heartbeat import MESSAGE, REASON, with_heartbeat
from peapod.bus.subjects import LEASE_DURATION_SECONDS

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()


def node(status: str = "True", heartbeat: str | None = "2026-01-01T12:00:00Z") -> dict:
    ready = {"type": "Ready", "status": status, "lastHeartbeatTime": heartbeat,
             "lastTransitionTime": "2026-01-01T11:00:00Z", "reason": "KubeletReady"}
    return {"metadata": {"name": "n"}, "status": {"conditions": [
        {"type": "MemoryPressure", "status": "False"}, ready]}}


def ready_of(obj: dict) -> dict:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def test_a_renewed_lease_keeps_the_node_ready() -> None:
    stored = node(heartbeat="2026-01-01T11:00:00Z")  # Node object posted long ago...
    shown = with_heartbeat(stored, renewed=T0, now=T0 + LEASE_DURATION_SECONDS - 1)  # ...lease fresh
    assert shown is stored


def test_an_expired_lease_makes_ready_unknown_without_touching_the_stored_object() -> None:
    stored = node(heartbeat="2026-01-01T11:59:00Z")
    shown = with_heartbeat(stored, renewed=T0, now=T0 + LEASE_DURATION_SECONDS)
    assert ready_of(shown) == {
        "type": "Ready", "status": "Unknown", "reason": REASON, "message": MESSAGE,
        "lastHeartbeatTime": "2026-01-01T12:00:00Z",
        "lastTransitionTime": f"2026-01-01T12:00:{LEASE_DURATION_SECONDS}Z"}
    assert shown["status"]["conditions"][0] == {"type": "MemoryPressure", "status": "False"}
    assert ready_of(stored)["status"] == "True"  # a copy was changed, not the stored value


def test_without_a_lease_the_posted_heartbeat_counts() -> None:
    stored = node(heartbeat="2026-01-01T12:00:00Z")
    assert with_heartbeat(stored, renewed=None, now=T0 + 5) is stored
    assert ready_of(with_heartbeat(stored, renewed=None, now=T0 + 600))["status"] == "Unknown"


def test_a_node_already_not_ready_is_shown_as_its_kubelet_said() -> None:
    stopped = node(status="False")
    assert with_heartbeat(stopped, renewed=None, now=T0 + 3600) is stopped
    no_conditions = {"metadata": {"name": "n"}, "status": {}}
    assert with_heartbeat(no_conditions, renewed=None, now=T0 + 3600) is no_conditions
