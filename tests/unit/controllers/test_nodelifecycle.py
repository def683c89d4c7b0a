"""Node lifecycle decisions on a fake clock: taint when the lease expired, evict 300 s later.

The controller reads a cache and writes through an ApiClient; here the cache
is filled by hand (no informer runs) and the ApiClient is a recording double,
because what is checked is the decision and its timing, which the fake clock
moves in milliseconds; the same controller against a real cluster is in
tests/integration/cluster/test_node_lifecycle_podman.py.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from peapod.api import Node, Pod
from peapod.api.node import Taint
from peapod.api.scheduling import Toleration
from peapod.apiserver.admission import merge_updated_node
from peapod.bus import subjects as s
from peapod.bus.clock import FakeClock
from peapod.bus.leases import Leases
from peapod.bus.workqueue import Done, RetryAfter
from peapod.controllers.cache import ControllerCache
from peapod.controllers.nodelifecycle import UNREACHABLE, NodeLifecycleController, evictable


class RecordingApi:
    def __init__(self, cache: ControllerCache) -> None:
        self.cache, self.calls = cache, []  # type: ignore[var-annotated]

    async def update_node(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.calls.append(("update_node", obj["spec"].get("taints")))
        self.cache.objects[s.kv_key("nodes", None, obj["metadata"]["name"])] = \
            Node.model_validate(obj)
        return obj

    async def delete(self, resource: str, namespace: str, name: str, **_: Any) -> dict[str, Any]:
        self.calls.append(("delete", name))
        return {}


class NoEvents:
    async def record(self, *args: Any, **kwargs: Any) -> None:
        return None


def pod(name: str, node: str, owner: str | None = None) -> Pod:
    meta: dict = {"name": name, "namespace": "default", "uid": name}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": owner, "name": "x",
                                    "uid": "o", "controller": True}]
    return Pod.model_validate({"metadata": meta, "spec": {
        "nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}})


def setup() -> tuple[NodeLifecycleController, RecordingApi, Leases, FakeClock, str]:
    clock = FakeClock()
    cache = ControllerCache(None, clock=clock)  # type: ignore[arg-type]  # no informer runs
    key = s.kv_key("nodes", None, "n1")
    cache.objects[key] = Node.model_validate({"metadata": {"name": "n1"}})
    cache.objects["pods.default.web"] = pod("web", "n1", owner="ReplicaSet")
    cache.objects["pods.default.agent"] = pod("agent", "n1", owner="DaemonSet")
    api, leases = RecordingApi(cache), Leases()
    controller = NodeLifecycleController(cache=cache, api=api, events=NoEvents(),  # type: ignore[arg-type]
                                         leases=leases, clock=clock)
    return controller, api, leases, clock, key


async def test_a_live_node_is_left_alone_and_checked_when_its_lease_would_expire():
    controller, api, leases, clock, key = setup()
    leases.renewed["n1"] = clock.now() - 10
    assert await controller.reconcile(key) == RetryAfter(s.LEASE_DURATION_SECONDS - 10 + 0.5)
    assert api.calls == []


async def test_a_node_whose_lease_was_not_seen_yet_has_the_lease_duration_from_first_sight():
    # just registered, or the lease watch not caught up: not unreachable at once (that
    # made a NodeNotReady event and a NoExecute taint as a cluster started)
    controller, api, leases, clock, key = setup()
    assert await controller.reconcile(key) == RetryAfter(s.LEASE_DURATION_SECONDS + 0.5)
    assert api.calls == []
    clock.advance(s.LEASE_DURATION_SECONDS - 1)
    leases.renewed["n1"] = clock.now()  # it comes
    await controller.reconcile(key)
    assert api.calls == []
    del leases.renewed["n1"]  # a lease seen and then gone (expired): unreachable at once
    assert await controller.reconcile(key) == Done()
    [(verb, taints)] = api.calls
    assert verb == "update_node" and taints[0]["key"] == UNREACHABLE

    controller, api, leases, clock, key = setup()  # after a restart: the taint stays
    leases.renewed["n1"] = clock.now() - s.LEASE_DURATION_SECONDS - 1
    await controller.reconcile(key)
    assert len(api.calls) == 1  # tainted
    controller.first_seen.clear()  # a new controller, the lease watch not caught up yet
    leases.renewed.clear()
    await controller.reconcile(key)
    assert ("update_node", None) not in api.calls, "a node not heard from was untainted"

    controller, api, leases, clock, key = setup()  # a node whose lease never comes
    await controller.reconcile(key)
    clock.advance(s.LEASE_DURATION_SECONDS + 1)
    assert await controller.reconcile(key) == Done()
    [(verb, taints)] = api.calls
    assert verb == "update_node" and taints[0]["key"] == UNREACHABLE


async def test_silence_taints_then_evicts_after_300_seconds_but_not_the_daemon():
    controller, api, leases, clock, key = setup()
    leases.renewed["n1"] = clock.now() - s.LEASE_DURATION_SECONDS - 1
    assert await controller.reconcile(key) == Done()
    [(verb, taints)] = api.calls
    assert verb == "update_node" and taints[0]["key"] == UNREACHABLE
    assert taints[0]["effect"] == "NoExecute" and taints[0]["timeAdded"]
    outcome = await controller.reconcile(key)
    assert isinstance(outcome, RetryAfter) and 299 <= outcome.seconds <= 301
    clock.advance(301)
    await controller.reconcile(key)
    assert api.calls[1:] == [("delete", "web")]  # the DaemonSet's pod tolerates it


async def test_a_node_that_heartbeats_again_loses_the_taint():
    controller, api, leases, clock, key = setup()
    leases.renewed["n1"] = clock.now() - 100
    await controller.reconcile(key)
    leases.renewed["n1"] = clock.now()
    await controller.reconcile(key)
    assert api.calls[-1] == ("update_node", None)
    assert evictable(pod("p", "n1"), "n1") and not evictable(pod("p", "n2"), "n1")


async def test_a_pods_own_toleration_of_the_unreachable_taint_decides_when_it_goes():
    controller, api, leases, clock, key = setup()
    soon, forever = pod("soon", "n1"), pod("forever", "n1")
    soon.spec.tolerations = [Toleration(key=UNREACHABLE, operator="Exists", effect="NoExecute",
                                        toleration_seconds=60)]
    forever.spec.tolerations = [Toleration(key=UNREACHABLE, operator="Exists")]
    controller.cache.objects["pods.default.soon"] = soon
    controller.cache.objects["pods.default.forever"] = forever
    leases.renewed["n1"] = clock.now() - s.LEASE_DURATION_SECONDS - 1
    assert await controller.reconcile(key) == Done()  # tainted
    outcome = await controller.reconcile(key)
    assert isinstance(outcome, RetryAfter) and 59 <= outcome.seconds <= 61
    clock.advance(61)
    outcome = await controller.reconcile(key)
    assert api.calls[1:] == [("delete", "soon")]
    assert isinstance(outcome, RetryAfter) and 238 <= outcome.seconds <= 240  # web's 300 s
    soon.metadata.deletion_timestamp = "2026-01-01T00:00:00Z"  # as the apiserver marks it
    clock.advance(240)
    await controller.reconcile(key)
    assert api.calls[1:] == [("delete", "soon"), ("delete", "web")]  # never "forever"


def taint_node(controller: NodeLifecycleController, node_key: str, **taint: Any) -> None:
    node: Node = controller.cache.objects[node_key]
    node.spec.taints = [Taint.model_validate(taint)]


async def test_a_noexecute_taint_people_set_evicts_what_does_not_tolerate_it():
    # Kubernetes' taint manager: no matching toleration, at once (the DaemonSet's pod too:
    # its controller adds tolerations only for unreachable/not-ready); tolerationSeconds after
    # the taint's timeAdded; a toleration without seconds, never
    controller, api, leases, clock, key = setup()
    leases.renewed["n1"] = clock.now()
    while_ok, forever = pod("while-ok", "n1"), pod("forever", "n1")
    while_ok.spec.tolerations = [Toleration(key="dedicated", operator="Exists",
                                            toleration_seconds=30)]
    forever.spec.tolerations = [Toleration(key="dedicated", value="gpu", effect="NoExecute")]
    controller.cache.objects["pods.default.while-ok"] = while_ok
    controller.cache.objects["pods.default.forever"] = forever
    added = datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    taint_node(controller, key, key="dedicated", value="gpu", effect="NoExecute", timeAdded=added)
    outcome = await controller.reconcile(key)
    assert sorted(api.calls) == [("delete", "agent"), ("delete", "web")]
    assert isinstance(outcome, RetryAfter) and 29 <= outcome.seconds <= 31.1
    for name in ("web", "agent"):  # as the apiserver marks them
        controller.cache.objects[f"pods.default.{name}"].metadata.deletion_timestamp = "x"
    clock.advance(31)
    await controller.reconcile(key)
    assert api.calls[2:] == [("delete", "while-ok")]
    while_ok.metadata.deletion_timestamp = "x"
    clock.advance(1000)
    leases.renewed["n1"] = clock.now()
    await controller.reconcile(key)
    assert len(api.calls) == 3  # "forever" stays


async def test_other_taint_effects_evict_nothing():
    controller, api, leases, clock, key = setup()
    leases.renewed["n1"] = clock.now()
    taint_node(controller, key, key="dedicated", effect="NoSchedule")
    assert await controller.reconcile(key) == RetryAfter(s.LEASE_DURATION_SECONDS + 0.5)
    assert api.calls == []


def test_the_apiserver_stamps_time_added_on_noexecute_taints_only_and_keeps_it():
    stored = Node.model_validate({"metadata": {"name": "n1"}, "spec": {"taints": [
        {"key": "old", "effect": "NoExecute", "timeAdded": "2026-01-01T00:00:00Z"}]}})
    incoming = Node.model_validate({"metadata": {"name": "n1"}, "spec": {"taints": [
        {"key": "old", "effect": "NoExecute"}, {"key": "new", "effect": "NoExecute"},
        {"key": "soft", "effect": "NoSchedule", "timeAdded": "2026-01-01T00:00:00Z"}]}})
    old, new, soft = merge_updated_node(stored, incoming).spec.taints or []
    assert old.time_added == "2026-01-01T00:00:00Z"
    assert new.time_added and new.time_added > "2026-01-01"
    assert soft.time_added is None
