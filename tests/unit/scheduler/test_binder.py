"""The scheduling pass as a reconciler: typed outcomes and event repeats on a fake clock."""

from __future__ import annotations

from typing import Any

from peapod.bus.clock import FakeClock
from peapod.bus.workqueue import Done, RetryAfter
from peapod.scheduler.binder import RETRY_PERIOD, Scheduler
from peapod.scheduler.cache import ClusterCache
from tests.unit.scheduler.test_filters import node, pod


class Recorder:
    def __init__(self) -> None:
        self.recorded: list[tuple[str, str]] = []

    async def record(self, obj: dict[str, Any], *, reason: str, message: str, **_: Any) -> None:
        self.recorded.append((reason, message))


def scheduler(clock: FakeClock) -> tuple[Scheduler, ClusterCache, Recorder]:
    cache = ClusterCache(js=None, clock=clock)  # type: ignore[arg-type]  # never listed here
    events = Recorder()
    sched = Scheduler(nc=None, cache=cache, events=events, clock=clock)  # type: ignore[arg-type]

    async def mark(pod: Any, message: str, **_: Any) -> None:  # the apiserver's part: no bus in unit tests
        events.recorded.append(("PodScheduled=False", message))
    sched._mark_unschedulable = mark  # type: ignore[method-assign]
    return sched, cache, events


async def test_nothing_pending_is_done() -> None:
    sched, _, _ = scheduler(FakeClock())
    assert await sched.reconcile("pending-pods") == Done()


async def test_a_pod_that_fits_nowhere_is_retried_and_its_event_repeated_after_a_minute() -> None:
    clock = FakeClock()
    sched, cache, events = scheduler(clock)
    cache.nodes["nodes.a"] = node("a", cpu="1")
    cache.leases.renewed["a"] = clock.now()
    cache.pods["pods.default.big"] = pod("big", cpu="2", phase="Pending")
    assert await sched.reconcile("pending-pods") == RetryAfter(RETRY_PERIOD)
    clock.advance(30)
    cache.leases.renewed["a"] = clock.now()
    assert await sched.reconcile("pending-pods") == RetryAfter(RETRY_PERIOD)
    clock.advance(30)
    cache.leases.renewed["a"] = clock.now()
    await sched.reconcile("pending-pods")
    message = ("0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
               "1 No preemption victims found for incoming pod.")
    assert events.recorded == [("FailedScheduling", message), ("PodScheduled=False", message)] * 2


async def test_higher_priority_pods_are_bound_first_whatever_their_age() -> None:
    clock = FakeClock()
    sched, cache, events = scheduler(clock)
    cache.nodes["nodes.a"] = node("a", cpu="1")
    cache.leases.renewed["a"] = clock.now()
    for name, priority, created in (("old-low", 1, "2026-01-01T00:00:00Z"),
                                    ("new-high", 5, "2026-01-02T00:00:00Z")):
        p = pod(name, cpu="1", phase="Pending")
        p.spec.priority, p.metadata.creation_timestamp = priority, created
        p.spec.preemption_policy = "Never"  # ordering only: nothing to preempt here
        cache.pods[f"pods.default.{name}"] = p
    assert [p.metadata.name for p in sched.pending()] == ["new-high", "old-low"]
    bound: list[str] = []

    async def bind(p: Any, node_name: str) -> bool:  # the apiserver's part
        bound.append(p.metadata.name)
        p.spec.node_name = node_name
        return True
    sched._bind = bind  # type: ignore[method-assign]
    await sched.reconcile("pending-pods")
    assert bound == ["new-high"]
    assert events.recorded[0] == ("FailedScheduling", "0/1 nodes are available: 1 Insufficient "
                                  "cpu. preemption: not eligible due to preemptionPolicy=Never.")
