"""Two schedulers and two controller managers, each its own process: only the leaders act,
and after ``kill -9`` of both leaders the standbys take over within the lease (15 s).

The apiserver runs in-process against a real nats-server; node-a is registered by a fake
kubelet (its pods need not run: creating and binding them is what the leaders do). Which
process leads is read from the lease (``holderIdentity``) and found in that process's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from tests.integration.cluster.test_replicasets import pods_of, replicaset, update_rs
from tests.integration.cluster.test_replicasets_podman import ControllerManagerProcess
from tests.integration.cluster.test_scheduler import register
from tests.waiting import eventually

COMPONENTS = {"scheduler": "peapod.scheduler.main", "controller-manager": "peapod.controllers.main"}


async def holders(admin) -> dict[str, str]:
    kv = await jetstream(admin).key_value(s.LEASE_BUCKET)
    found = {}
    for component in COMPONENTS:
        try:
            entry = await kv.get(s.leader_lease_key(component))
        except Exception:
            continue
        found[component] = json.loads(entry.value).get("holderIdentity") or ""
    return found


async def owner(procs: list[ControllerManagerProcess], identity: str) -> ControllerManagerProcess:
    """The process that logged ``leader_elected`` as ``identity`` (its logs are JSON lines).

    The lease is written before the line is logged, so the line may lag the lease a little.
    """
    def elected(proc: ControllerManagerProcess) -> bool:
        for line in proc.log_file.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("event") == "leader_elected" and entry.get("identity") == identity:
                    return True
        return False
    async def found() -> list[ControllerManagerProcess] | None:
        return [p for p in procs if elected(p)] or None
    [proc] = await eventually(found, f"{identity} logs leader_elected", timeout=10)
    return proc


def acted(proc: ControllerManagerProcess, what: str) -> int:
    return proc.log_file.read_text().count(what)


async def test_only_the_leaders_act_and_standbys_take_over_after_kill_9(apiserver, tmp_path):
    admin = apiserver["admin"]
    await register(apiserver["creds"], "node-a")
    creds_dir = tmp_path / "state" / "creds"
    procs = {component: [ControllerManagerProcess(creds_dir / f"{component}.json",
                                                  tmp_path / f"{component}-{i}.log", module=module)
                         for i in (1, 2)]
             for component, module in COMPONENTS.items()}
    everyone = [p for pair in procs.values() for p in pair]
    for proc in everyone:
        proc.start()
    try:
        async def both_led() -> dict[str, str] | None:
            found = await holders(admin)
            return found if len(found) == 2 and all(found.values()) else None
        first = await eventually(both_led, "a scheduler and a controller manager lead", timeout=30)
        leaders = {c: await owner(procs[c], first[c]) for c in COMPONENTS}
        standbys = {c: next(p for p in procs[c] if p is not leaders[c]) for c in COMPONENTS}

        await request(admin, s.api("replicasets", "create"), {"object": replicaset(replicas=2)})

        async def bound(n: int) -> bool:
            pods = await pods_of(admin)
            return len(pods) == n and all(p["spec"].get("nodeName") == "node-a" for p in pods)
        await eventually(lambda: bound(2), "2 pods created and bound")
        assert acted(leaders["controller-manager"], "pod_created") == 2
        assert acted(leaders["scheduler"], "pod_scheduled") == 2
        assert acted(standbys["controller-manager"], "pod_created") == 0
        assert acted(standbys["scheduler"], "pod_scheduled") == 0

        killed_at = time.monotonic()
        for proc in leaders.values():
            proc.kill()
        took: dict[str, float] = {}

        async def taken_over() -> bool:
            now = await holders(admin)
            for component in COMPONENTS:
                if component not in took and now.get(component) not in ("", first[component]):
                    took[component] = time.monotonic() - killed_at
            return len(took) == 2
        await eventually(taken_over, "the standbys lead", timeout=30)
        print(f"takeover after kill -9: {took}")  # figures for docs/reliability.md
        assert all(seconds <= 15.5 for seconds in took.values()), took
        new = await holders(admin)
        assert all([await owner(procs[c], new[c]) is standbys[c] for c in COMPONENTS])

        await register(apiserver["creds"], "node-a")  # a fresh heartbeat for the scheduler
        await update_rs(admin, lambda rs: rs["spec"].update(replicas=3))
        await eventually(lambda: bound(3), "the new leaders create and bind the third pod")
        await asyncio.sleep(0.5)
        assert acted(standbys["controller-manager"], "pod_created") == 1
        assert acted(standbys["scheduler"], "pod_scheduled") == 1
    finally:
        for proc in everyone:
            proc.stop()
