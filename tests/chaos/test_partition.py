"""A kubelet cut off from NATS for two minutes, then healed: its pods run on, nothing is lost.

Kubelet ``chaos-b`` reaches nats-server only through a ``LinkProxy`` the test
cuts (every connection closed, new ones refused), or, in the second run,
stalls (nothing forwarded, nothing closed: a silent link, noticed only by
unanswered pings) for ``PARTITION_SECONDS``
(120 s, as issue 14 asks; ``PEAPOD_CHAOS_PARTITION_SECONDS`` shortens it when
trying the test by hand). On ``chaos-b`` run three pods: ``steady`` (sleeps),
``crasher`` (exits 1 after 3 s, restartPolicy Always, so it is restarted with
back-off all along) and ``finisher`` (exits 0 after 20 s, restartPolicy
Never, so it succeeds while cut off).

While cut off: ``steady`` keeps its one container, ``crasher`` is restarted by
the kubelet alone, no podman pod or container is doubled (read from podman
every 2 s), and the Node reads NotReady once its lease is older than
``LEASE_DURATION_SECONDS``. After the heal, within 30 s: the Node is Ready
again, ``finisher`` is Succeeded in the API, ``crasher``'s restart count in
the API is at least the one podman showed at the heal, and the events the
kubelet recorded while cut off (``Started`` folded into one event counted
once per attempt, ``BackOff``) are in the API, sent from the node's bounded
buffer (``EventRecorder.for_node``).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from peapod.api import Pod, parse_rfc3339
from peapod.bus import subjects as s
from peapod.cli.client import Client
from peapod.errors import Unavailable
from peapod.kubelet.runtime import LABEL_CONTAINER, LABEL_RESTART_COUNT
from tests.chaos.conftest import IMAGE, NODES, ChaosCluster, pod_uid_of, wait_nodes_ready

pytestmark = [pytest.mark.podman, pytest.mark.timeout(600)]  # 300 s in pyproject

PARTITION_SECONDS = float(os.environ.get("PEAPOD_CHAOS_PARTITION_SECONDS", "120"))
HEAL_WITHIN = 30.0
NODE = NODES[1]
SAMPLE_PERIOD = 2.0


def pod(name: str, command: str, restart_policy: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": NODE, "restartPolicy": restart_policy,
                     "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", **IMAGE, "command": ["sh", "-c", command]}]}}


PODS = [pod("steady", "sleep 3600", "Always"), pod("crasher", "sleep 3; exit 1", "Always"),
        pod("finisher", "sleep 20", "Never")]


def container_status(p: Pod) -> Any:
    statuses = (p.status.container_statuses or []) if p.status else []
    return statuses[0] if statuses else None


@dataclass
class Podman:
    """What podman shows of the cut-off node's pods."""
    sandboxes: Counter = field(default_factory=Counter)  # pod uid → podman pods
    running: Counter = field(default_factory=Counter)  # pod uid → running containers
    restarts: dict[str, int] = field(default_factory=dict)  # pod uid → highest restartCount label
    running_ids: dict[str, set[str]] = field(default_factory=dict)  # pod uid → running ids


def look(cluster: ChaosCluster) -> Podman:
    seen = Podman()
    for entry in cluster.podman_pods()[NODE]:
        seen.sandboxes[pod_uid_of(entry)] += 1
    for entry in cluster.podman_containers()[NODE]:
        labels = entry.get("Labels") or {}
        if LABEL_CONTAINER not in labels:
            continue
        uid = pod_uid_of(entry)
        seen.restarts[uid] = max(seen.restarts.get(uid, 0), int(labels.get(LABEL_RESTART_COUNT, 0)))
        if entry.get("State") == "running":
            seen.running[uid] += 1
            seen.running_ids.setdefault(uid, set()).add(entry["Id"])
    return seen


async def eventually(check: Callable[[], Awaitable[Any]], what: str, timeout: float) -> float:
    """Seconds until ``check()`` is true; Unavailable counts as not yet."""
    started = time.monotonic()
    while True:
        try:
            if await check():
                return time.monotonic() - started
        except Unavailable:
            pass
        assert time.monotonic() - started < timeout, f"{what}: not within {timeout:g} s"
        await asyncio.sleep(0.5)


async def node_ready(client: Client) -> bool:
    return (await client.get_node(NODE)).ready


def kubelet_log(cluster: ChaosCluster) -> list[dict]:
    lines = []
    for line in (cluster.home / "logs" / f"kubelet-{NODE[-1]}.log").read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


@pytest.mark.parametrize("link", ["cut", "silent"])
async def test_a_node_cut_off_for_two_minutes_runs_on_and_reports_everything_after_the_heal(
        partition_cluster: ChaosCluster, partition_client: Client, capsys, link: str):
    cluster, client = partition_cluster, partition_client
    assert cluster.proxy is not None
    await wait_nodes_ready(client)
    uids = {}
    for manifest in PODS:
        uids[manifest["metadata"]["name"]] = (await client.create(manifest))["metadata"]["uid"]

    async def started() -> bool:
        pods = {p.metadata.name: p for p in await client.list_pods()}
        return all(container_status(pods[name]) and container_status(pods[name]).container_id
                   for name in uids) and pods["finisher"].status.phase == "Running"
    await eventually(started, "the three pods started", timeout=60)
    steady_id = look(cluster).running_ids[uids["steady"]]
    assert len(steady_id) == 1

    cut_at, cut_wall = time.monotonic(), time.time()
    if link == "cut":
        cluster.proxy.cut()
    else:
        cluster.proxy.stall()
    not_ready_after, samples, doubled = None, 0, []
    while (left := cut_at + PARTITION_SECONDS - time.monotonic()) > 0:
        await asyncio.sleep(min(SAMPLE_PERIOD, left))
        seen = await asyncio.to_thread(look, cluster)
        samples += 1
        doubled += [name for name, uid in uids.items()
                    if seen.sandboxes[uid] > 1 or seen.running[uid] > 1]
        assert seen.running_ids.get(uids["steady"]) == steady_id, "steady's container changed"
        if not_ready_after is None and not await node_ready(client):
            not_ready_after = time.monotonic() - cut_at
    at_heal = await asyncio.to_thread(look, cluster)
    cluster.proxy.heal()
    heal_wall = time.time()

    async def reported() -> bool:
        pods = {p.metadata.name: p for p in await client.list_pods()}
        crasher = container_status(pods["crasher"])
        started = [e for e in await client.list_events(kind="Pod", name="crasher")
                   if e.reason == "Started"]
        return (pods["finisher"].status.phase == "Succeeded" and crasher is not None
                and crasher.restart_count >= at_heal.restarts[uids["crasher"]]
                and sum(e.count for e in started) >= at_heal.restarts[uids["crasher"]] + 1
                and any(parse_rfc3339(e.last_timestamp).timestamp() > cut_wall for e in started))
    ready_after, reported_after = await asyncio.gather(
        eventually(lambda: node_ready(client), "Ready again", timeout=HEAL_WITHIN),
        eventually(reported, "status, restarts and events reported", timeout=HEAL_WITHIN))

    final = await asyncio.to_thread(look, cluster)
    pods = {p.metadata.name: p for p in await client.list_pods()}
    events = await client.list_events()
    during = [e for e in events if e.source and e.source.host == NODE
              and cut_wall < parse_rfc3339(e.last_timestamp).timestamp() < heal_wall]
    logged = Counter(line["event"] for line in kubelet_log(cluster))
    noticed = [parse_rfc3339(line["timestamp"]).timestamp() - cut_wall
               for line in kubelet_log(cluster) if line["event"] == "nats_disconnected"
               and cut_wall < parse_rfc3339(line["timestamp"]).timestamp() < heal_wall]
    figures = {"link": link, "partition_s": PARTITION_SECONDS, "samples": samples,
               "not_ready_after_cut_s": not_ready_after and round(not_ready_after, 1),
               "ready_after_heal_s": round(ready_after, 1),
               "reported_after_heal_s": round(reported_after, 1),
               "crasher_restarts_during_cut": at_heal.restarts[uids["crasher"]],
               "crasher_restarts_in_api": container_status(pods["crasher"]).restart_count,
               "events_recorded_while_cut_off": len(during),
               "held": logged["events_held"], "sent_after_outage": logged["events_sent_after_outage"],
               "buffer_full": logged["event_buffer_full"], "doubled": doubled,
               "disconnect_noticed_after_cut_s": noticed and round(noticed[0], 1)}
    with capsys.disabled():
        print("\npartition figures:", json.dumps(figures))
    assert not doubled and all(final.sandboxes[uid] == 1 for uid in uids.values()), figures
    assert final.running_ids.get(uids["steady"]) == steady_id, figures
    assert container_status(pods["steady"]).restart_count == 0, figures
    assert at_heal.restarts[uids["crasher"]] >= 2, figures  # restarted by the kubelet alone
    assert at_heal.running[uids["finisher"]] == 0 and at_heal.restarts[uids["finisher"]] == 0, \
        figures  # restartPolicy Never: it finished and stayed so
    if PARTITION_SECONDS > s.LEASE_DURATION_SECONDS + 20:
        assert not_ready_after is not None, figures
    assert during and logged["events_sent_after_outage"] and not logged["event_buffer_full"], figures
    # a silent link is noticed by two unanswered pings (20 s apart: 40-60 s), within the
    # partition; nats-py's default (two minutes apart) would notice it only after the heal
    assert noticed, figures
