"""Kill -9 of every component while 200 pods are being created and deleted: nothing lost or doubled.

A client creates 200 bare pods through the API, one every 0.3 s, and deletes
every other one a few seconds after its creation was acknowledged; a
Deployment is created and scaled meanwhile (4, 8, then 5 replicas). It
behaves as a real user or controller does: a request that fails because
nothing answers (``Unavailable``: no responders, a timeout) or that the
server could not finish (an internal error while nats-server restarts) is
sent again after half a second. A create retried after its first attempt was
stored answers ``AlreadyExists``: that counts as acknowledged; a delete
retried the same way answers ``NotFound``: that counts as deleted.

Meanwhile the apiserver, the scheduler, the controller manager, kubelet
``chaos-a``, nats-server and kubelet ``chaos-b`` are killed with SIGKILL one
after the other, each restarted by ``peapod up``'s supervisor. The creates are
paced so that every kill falls in the middle of the load. After each kill a
probe pod is created (on the killed kubelet's node for a kubelet) and the time
from the kill to that pod Running is its recovery time.

Then, once the cluster has settled, every acknowledged pod that was not
deleted exists once and runs on exactly one node, with exactly one podman pod
and one running container (read from podman itself); no deleted pod is in the
API or in podman; no podman pod of the two kubelets belongs to no pod; the
Deployment has its 5 pods. The figures are printed (``make chaos`` shows
them) and go to docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from peapod.cli.client import Client
from peapod.errors import AlreadyExists, Conflict, NotFound, PeapodError, Unavailable
from peapod.kubelet.runtime import LABEL_CONTAINER
from tests.chaos.conftest import IMAGE, NODES, ChaosCluster, pod_uid_of, wait_nodes_ready

pytestmark = [pytest.mark.podman, pytest.mark.timeout(600)]  # 300 s in pyproject

PODS = 200
PACE = 0.3  # seconds between two creates
KILLS = ("apiserver", "scheduler", "controller-manager", "kubelet-a", "nats", "kubelet-b")
RETRY_PAUSE = 0.5
RECOVERY_TIMEOUT = 120.0
SETTLE_TIMEOUT = 240.0
DEPLOYMENT = "chaos-web"
RETRYABLE = (Unavailable,)


def bare_pod(name: str, node: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "main", **IMAGE, "command": ["sleep", "3600"]}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"chaos": "bare"}}, "spec": spec}


def deployment(replicas: int) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": DEPLOYMENT},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": DEPLOYMENT}},
                     "template": {"metadata": {"labels": {"app": DEPLOYMENT}}, "spec": {
                         "terminationGracePeriodSeconds": 1,
                         "containers": [{"name": "web", **IMAGE, "command": ["sleep", "3600"]}]}}}}


async def until(check: Callable[[], bool], period: float = 0.05) -> None:
    while True:
        if check():
            return
        await asyncio.sleep(period)


def running(pod: Any) -> bool:
    statuses = (pod.status.container_statuses or []) if pod.status else []
    return bool(pod.status and pod.status.phase == "Running" and statuses
                and all(c.ready for c in statuses))


@dataclass
class Tally:
    attempted: Counter = field(default_factory=Counter)  # kind of operation → operations
    acknowledged: Counter = field(default_factory=Counter)
    retries: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)  # why a request was retried
    refused: list[str] = field(default_factory=list)  # a first attempt refused: a lost pod
    created: dict[str, str | None] = field(default_factory=dict)  # name → uid (None: AlreadyExists)
    deleted: set[str] = field(default_factory=set)
    recovery: dict[str, dict[str, float]] = field(default_factory=dict)


class Load:
    """The client's side: creates and deletes through the API, each retried until answered."""

    def __init__(self, client: Client, tally: Tally) -> None:
        self.client = client
        self.tally = tally
        self.tasks: set[asyncio.Task] = set()

    async def call(self, kind: str, fn: Any) -> tuple[Any, int]:
        """``fn()`` until it is answered; the answer and how many attempts it took."""
        self.tally.attempted[kind] += 1
        attempt = 0
        while True:
            attempt += 1
            try:
                result = await fn()
            except RETRYABLE as exc:
                self.tally.errors[type(exc).__name__] += 1
            except PeapodError as exc:
                if type(exc) is not PeapodError:  # a definite answer: the caller judges it
                    exc.attempts = attempt  # type: ignore[attr-defined]
                    raise
                self.tally.errors["InternalError"] += 1  # the server could not finish
            else:
                self.tally.acknowledged[kind] += 1
                return result, attempt
            self.tally.retries[kind] += 1
            await asyncio.sleep(RETRY_PAUSE)

    async def create(self, manifest: dict[str, Any]) -> None:
        name = manifest["metadata"]["name"]
        try:
            stored, _ = await self.call("pod create", lambda: self.client.create(manifest))
            self.tally.created[name] = stored["metadata"]["uid"]
        except AlreadyExists as exc:
            if exc.attempts == 1:  # type: ignore[attr-defined]
                raise
            self.tally.acknowledged["pod create"] += 1  # the first attempt was stored
            self.tally.created[name] = None

    async def delete(self, name: str) -> None:
        try:
            await self.call("pod delete", lambda: self.client.delete_pod(name))
        except NotFound as exc:
            if exc.attempts == 1:  # type: ignore[attr-defined]
                self.tally.refused.append(name)  # acknowledged, then not found: lost
                return
            self.tally.acknowledged["pod delete"] += 1
        self.tally.deleted.add(name)

    async def create_then_maybe_delete(self, i: int) -> None:
        name = f"bare-{i:03d}"
        await self.create(bare_pod(name))
        if i % 2 == 0:
            await asyncio.sleep(random.uniform(1, 8))
            await self.delete(name)

    async def scale(self, replicas: int) -> None:
        async def write() -> Any:
            current = await self.client.get_object("deployments", DEPLOYMENT)
            doc = current.model_dump(by_alias=True, exclude_none=True)
            doc["spec"]["replicas"] = replicas
            return await self.client.update_object("deployments", doc)
        while True:
            try:
                await self.call("deployment scale", write)
                return
            except Conflict:
                await asyncio.sleep(RETRY_PAUSE)

    def spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def run(self, kills_done: asyncio.Event, kills_count: list[int]) -> None:
        await self.call("deployment create", lambda: self.client.create(deployment(4)))
        for i in range(PODS):
            # keep the load going until each kill has happened: about PODS / (kills + 1) per kill
            await until(lambda i=i: kills_done.is_set()
                        or i < (kills_count[0] + 1) * PODS // (len(KILLS) + 1))
            self.spawn(self.create_then_maybe_delete(i))
            if i == PODS // 3:
                self.spawn(self.scale(8))
            if i == 2 * PODS // 3:
                self.spawn(self.scale(5))
            await asyncio.sleep(PACE)
        while self.tasks:
            await asyncio.gather(*list(self.tasks))


async def wait_running(client: Client, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if running(await client.get_pod(name)):
                return
        except (NotFound, Unavailable, PeapodError):
            pass
        await asyncio.sleep(0.2)
    raise AssertionError(f"{name} not Running {timeout:g} s after the kill")


async def kill_each(cluster: ChaosCluster, load: Load, kills_done: asyncio.Event,
                    kills_count: list[int]) -> None:
    await asyncio.sleep(5)
    for name in KILLS:
        old = cluster.pid(name)
        assert old is not None, f"{name} is not running before its kill"
        os.kill(old, signal.SIGKILL)
        killed_at = time.monotonic()
        await until(lambda name=name, old=old: cluster.pid(name) not in (None, old))
        restarted = time.monotonic() - killed_at
        node = NODES[0] if name == "kubelet-a" else NODES[1] if name == "kubelet-b" else None
        probe = f"probe-{name}"
        await load.create(bare_pod(probe, node))
        await wait_running(load.client, probe, RECOVERY_TIMEOUT)
        load.tally.recovery[name] = {"restarted_after_s": round(restarted, 2),
                                     "probe_running_after_s": round(time.monotonic() - killed_at, 2)}
        kills_count[0] += 1
        await asyncio.sleep(2)
    kills_done.set()


@dataclass
class Findings:
    lost: list[str] = field(default_factory=list)  # acknowledged, not deleted, not in the API
    duplicated: list[str] = field(default_factory=list)  # more than one podman pod or container
    not_running: list[str] = field(default_factory=list)
    resurrected: list[str] = field(default_factory=list)  # deleted, still in the API or podman
    orphans: list[str] = field(default_factory=list)  # podman pods no pod owns
    misplaced: list[str] = field(default_factory=list)  # podman pod on another node than bound
    deployment_pods: int = 0

    @property
    def clean(self) -> bool:
        return not (self.lost or self.duplicated or self.not_running or self.resurrected
                    or self.orphans or self.misplaced) and self.deployment_pods == 5


async def inspect(cluster: ChaosCluster, client: Client, tally: Tally) -> Findings:
    pods = {p.metadata.name: p for p in await client.list_pods()}
    podman = await asyncio.to_thread(cluster.podman_pods)
    containers = await asyncio.to_thread(cluster.podman_containers)
    found = Findings(lost=sorted(tally.refused))
    sandboxes: dict[str, list[str]] = {}  # uid → the nodes with a podman pod for it
    for node, entries in podman.items():
        for entry in entries:
            sandboxes.setdefault(pod_uid_of(entry), []).append(node)
    running_containers = Counter(pod_uid_of(c) for entries in containers.values() for c in entries
                                 if c.get("State") == "running"
                                 and (c.get("Labels") or {}).get(LABEL_CONTAINER))
    web = [name for name, p in pods.items() if (p.metadata.labels or {}).get("app") == DEPLOYMENT]
    found.deployment_pods = len(web)
    expected = {**{name: None for name in web},
                **{name: tally.created[name] for name in tally.created.keys() - tally.deleted}}
    for name, acknowledged_uid in expected.items():
        pod = pods.get(name)
        if pod is None:
            found.lost.append(name)
            continue
        uid = pod.metadata.uid or ""
        if acknowledged_uid not in (None, uid):
            found.lost.append(f"{name} (another uid)")
        nodes = sandboxes.get(uid, [])
        if len(nodes) > 1 or running_containers[uid] > 1:
            found.duplicated.append(name)
        elif pod.metadata.deletion_timestamp or not running(pod) or running_containers[uid] != 1:
            found.not_running.append(name)
        elif nodes != [pod.spec.node_name]:
            found.misplaced.append(name)
    found.resurrected = sorted(tally.deleted & pods.keys())
    live_uids = {p.metadata.uid for p in pods.values()}
    found.orphans = sorted(uid for uid in sandboxes if uid not in live_uids)
    return found


async def test_kill_9_of_each_component_under_load_loses_and_doubles_nothing(
        chaos_cluster: ChaosCluster, chaos_client: Client, capsys):
    client, tally = chaos_client, Tally()
    await wait_nodes_ready(client)
    load = Load(client, tally)
    kills_done, kills_count = asyncio.Event(), [0]
    load_started = time.monotonic()
    await asyncio.gather(load.run(kills_done, kills_count),
                         kill_each(chaos_cluster, load, kills_done, kills_count))
    load_seconds = time.monotonic() - load_started

    deadline = time.monotonic() + SETTLE_TIMEOUT
    while True:
        try:
            found = await inspect(chaos_cluster, client, tally)
        except Unavailable:
            found = None
        if found is not None and found.clean:
            break
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(2)
    settled = time.monotonic() - load_started - load_seconds
    await asyncio.sleep(5)  # a few relists later, still the same: nothing comes back
    found = await inspect(chaos_cluster, client, tally)

    figures = {"attempted": dict(tally.attempted), "acknowledged": dict(tally.acknowledged),
               "retries": dict(tally.retries), "retried_because": dict(tally.errors),
               "lost": found.lost, "duplicated": found.duplicated,
               "not_running": found.not_running[:20], "resurrected": found.resurrected,
               "orphans": found.orphans, "misplaced": found.misplaced,
               "deployment_pods_running": found.deployment_pods,
               "pods_expected": len(tally.created.keys() - tally.deleted),
               "load_seconds": round(load_seconds, 1), "settled_after_s": round(settled, 1),
               "recovery": tally.recovery}
    with capsys.disabled():
        print("\nchaos figures:", json.dumps(figures, indent=1))
    assert not found.lost and not found.duplicated and not found.resurrected, figures
    assert not found.orphans and not found.misplaced and not found.not_running, figures
    assert found.deployment_pods == 5, figures
    assert tally.attempted["pod create"] == PODS + len(KILLS), figures
