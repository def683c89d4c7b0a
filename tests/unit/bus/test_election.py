"""Leader election on a real nats-server, with clocks that move only when told.

Two candidates share the scheduler's NATS user, as two schedulers do; each has its own
``FakeClock`` (its own monotonic time, its wall clock set to now so the server's stamps
read as fresh). Kubernetes' timings: lease 15 s, renew deadline 10 s, retry 2 s.
"""

from __future__ import annotations

import asyncio
import json
import time

from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream
from peapod.bus.clock import FakeClock
from peapod.bus.election import LeaderElector
from tests.unit.bus.conftest import Server


async def lease_record(js) -> dict:
    kv = await js.key_value(s.LEASE_BUCKET)
    return json.loads((await kv.get(s.leader_lease_key("scheduler"))).value)


async def setup(server: Server) -> tuple:
    admin = await connect(server.creds["admin"], name="test-admin")
    await jetstream(admin).create_key_value(bucket=s.LEASE_BUCKET, direct=True)  # as the apiserver
    one = await connect(server.creds["scheduler"], name="scheduler-1")
    two = await connect(server.creds["scheduler"], name="scheduler-2")
    return admin, one, two


async def test_one_leader_a_standby_takes_an_expired_lease_only(server: Server):
    admin, one, two = await setup(server)
    clock_a, clock_b = FakeClock(now=time.time()), FakeClock(now=time.time())
    a = LeaderElector(jetstream(one), "scheduler", identity="a", clock=clock_a)
    b = LeaderElector(jetstream(two), "scheduler", identity="b", clock=clock_b)
    try:
        assert await a.try_acquire_or_renew()
        assert not await b.try_acquire_or_renew()
        clock_b.advance(14)
        assert not await b.try_acquire_or_renew()  # 14 s since b saw it: still a's
        clock_a.advance(2)
        assert await a.try_acquire_or_renew()  # a renews: b's count starts again
        assert not await b.try_acquire_or_renew()
        # b's wall clock is now 14 s ahead of the server's stamp on a's renewal: the stamp
        # moves b's count back by at most the retry period (2 s), never more
        clock_b.advance(12)
        assert not await b.try_acquire_or_renew()
        record = await lease_record(jetstream(admin))
        assert record["holderIdentity"] == "a" and record["leaseTransitions"] == 0
        assert record["leaseDurationSeconds"] == 15 and record["renewTime"] >= record["acquireTime"]
        clock_b.advance(1.1)  # a silent for 15 s by b's clock: b takes over
        assert await b.try_acquire_or_renew()
        record = await lease_record(jetstream(admin))
        assert (record["holderIdentity"], record["leaseTransitions"]) == ("b", 1)
        assert not await a.try_acquire_or_renew()  # a sees b's lease, fresh
    finally:
        for nc in (one, two, admin):
            await nc.close()


async def moved(clock: FakeClock, seconds: float) -> None:
    """Advance once the elector sleeps on the clock (it does, between rounds)."""
    for _ in range(500):
        if clock.sleepers:
            break
        await asyncio.sleep(0.01)
    assert clock.sleepers, "the elector never slept"
    clock.advance(seconds)
    await asyncio.sleep(0.05)


async def test_the_leader_stops_work_after_the_renew_deadline_and_releases_on_stop(
        server: Server):
    admin, one, two = await setup(server)
    clock = FakeClock(now=time.time())
    elector = LeaderElector(jetstream(one), "scheduler", identity="a", clock=clock)
    log: list[str] = []

    async def work(halt: asyncio.Event) -> None:
        log.append("lead")
        await halt.wait()
        log.append("halt")

    stop = asyncio.Event()
    task = asyncio.create_task(elector.run(work, stop=stop))
    kv = await jetstream(admin).key_value(s.LEASE_BUCKET)
    try:
        for _ in range(200):
            if log:
                break
            await asyncio.sleep(0.01)
        assert log == ["lead"]
        # someone else holds the lease now (a split brain a lost link would leave behind)
        await kv.put(s.leader_lease_key("scheduler"), json.dumps(
            {"holderIdentity": "x", "leaseDurationSeconds": 15}).encode())
        for _ in range(4):
            await moved(clock, 2)
        assert log == ["lead"]  # 8 s without renewing: still leading
        await moved(clock, 2)
        await moved(clock, 0)
        assert log == ["lead", "halt"]  # 10 s: the renew deadline, work stopped
        for _ in range(2):
            await moved(clock, 2)
        assert log == ["lead", "halt"]  # x's lease is not yet 15 s old by this clock
        await moved(clock, 2)
        await moved(clock, 0)
        assert log == ["lead", "halt", "lead"]  # x silent for 15 s: a leads again
        stop.set()
        await asyncio.wait_for(task, 5)
        assert log == ["lead", "halt", "lead", "halt"]
        record = json.loads((await kv.get(s.leader_lease_key("scheduler"))).value)
        assert record["holderIdentity"] == "" and record["leaseTransitions"] == 1
        # a released lease is taken at once by the next candidate
        b = LeaderElector(jetstream(two), "scheduler", identity="b",
                          clock=FakeClock(now=time.time()))
        assert await b.try_acquire_or_renew()
    finally:
        stop.set()
        await asyncio.gather(task, return_exceptions=True)
        for nc in (one, two, admin):
            await nc.close()
