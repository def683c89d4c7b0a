"""The kubelet when things go wrong, against real podman: force deletes, pulls, sandboxes, crashes.

Each test drives the real apiserver, scheduler and kubelet (the ``cluster``
fixture of conftest.py) and checks what a user would see: the status
``get pods`` and ``describe`` print, and the events, in Kubernetes' words.
Waits have generous bounds: they guard against hangs and are not speed
targets (those live in bench/).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from peapod.api import Event, Pod, parse_rfc3339
from peapod.bus import subjects as s
from peapod.bus.client import jetstream, request
from peapod.bus.events import latest_events
from peapod.bus.replay import read_all
from peapod.cli.describe import describe_pod
from peapod.cli.printers import pod_status_reason
from peapod.kubelet.runtime import podman_service_pid
from tests.integration.cluster.test_kubelet import (
    allow_privileged,
    apply,
    pod_manifest,
    podman_ids,
    running,
    wait_pod,
)
from tests.waiting import eventually

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"


def busybox(command: list[str], **fields: object) -> dict:
    return {"name": "c", "image": BUSYBOX, "imagePullPolicy": "IfNotPresent",
            "command": command, **fields}


def status_of(pod: dict) -> dict:
    return (pod.get("status", {}).get("containerStatuses") or [{}])[0]


def waiting(reason: str) -> Callable[[dict], bool]:
    return lambda pod: (status_of(pod).get("state", {}).get("waiting") or {}).get("reason") == reason


def shown_status(pod: dict) -> str:
    """The STATUS column of `peapod get pods` for this pod."""
    return pod_status_reason(Pod.model_validate(pod))[0]


async def pod_events(ctx: dict, name: str) -> list[Event]:
    js = ctx["admin"].jetstream()
    messages = await read_all(js, stream=s.EVENTS_STREAM, subject=s.event("default", "Pod", name))
    return latest_events(Event.model_validate(json.loads(m.data)) for m in messages)


def seconds_between(earlier: str, later: str) -> float:
    return (parse_rfc3339(later) - parse_rfc3339(earlier)).total_seconds()


async def test_force_deleted_pods_do_not_hold_back_another_pods_status(ctx):
    # `sleep` as PID 1 ignores SIGTERM, so each pod would use all of its spec's 30 s
    suffix = uuid.uuid4().hex[:6]
    doomed = [f"doomed-{i}-{suffix}" for i in range(10)]
    for name in doomed:
        await apply(ctx, pod_manifest(name, [busybox(["sleep", "3600"])]))
    uids = [(await wait_pod(ctx, name, running))["metadata"]["uid"] for name in doomed]
    for name in doomed:  # peapod delete pod NAME --grace-period=0 --force
        await request(ctx["admin"], s.api("pods", "delete"), {
            "namespace": "default", "name": name, "gracePeriodSeconds": 0})

    done = f"done-{suffix}"
    await apply(ctx, pod_manifest(done, [busybox(["sh", "-c", "exit 0"])],
                                      restartPolicy="OnFailure"))
    # hang guard, well inside the 30 s the force-deleted pods' spec asks for
    pod = await wait_pod(ctx, done, lambda p: p.get("status", {}).get("phase") == "Succeeded",
                         timeout=20)
    assert status_of(pod)["state"]["terminated"]["reason"] == "Completed"
    assert shown_status(pod) == "Completed"

    # and the force-deleted pods left podman long before those 30 s
    await eventually(lambda: not any(podman_ids(uid) for uid in uids), timeout=20)


async def test_a_failed_pull_becomes_image_pull_back_off_with_kubernetes_events(ctx):
    # No registry is reachable here, so every pull fails for real.
    name, image = f"pull-{uuid.uuid4().hex[:6]}", "localhost/no-such-image:2"
    await apply(ctx, pod_manifest(name, [
        {"name": "c", "image": image, "imagePullPolicy": "IfNotPresent"}]))
    pod = await wait_pod(ctx, name, waiting("ErrImagePull"), timeout=60)
    assert shown_status(pod) == "ErrImagePull" and pod["status"]["phase"] == "Pending"
    assert image in status_of(pod)["state"]["waiting"]["message"]

    pod = await wait_pod(ctx, name, waiting("ImagePullBackOff"), timeout=90)
    assert shown_status(pod) == "ImagePullBackOff"
    assert status_of(pod)["state"]["waiting"]["message"] == f'Back-off pulling image "{image}"'
    events = await pod_events(ctx, name)
    pulling = [e for e in events if e.reason == "Pulling"]
    failed = [e for e in events if e.reason == "Failed" and e.message.startswith(
        f'Failed to pull image "{image}": ')]
    backoff = [e for e in events if e.reason == "BackOff"]
    errors = {e.message for e in events if e.reason == "Failed" and e.message.startswith("Error:")}
    # the pull at once, one more 10 s later, and then nothing until 20 s after that one
    assert [e.count for e in pulling] == [2], [(e.reason, e.count, e.message) for e in events]
    assert [(e.type, e.count) for e in failed] == [("Warning", 2)]
    assert [(e.type, e.message) for e in backoff] == [("Normal", f'Back-off pulling image "{image}"')]
    assert errors == {"Error: ErrImagePull", "Error: ImagePullBackOff"}
    assert seconds_between(pulling[0].first_timestamp or "", pulling[0].last_timestamp or "") >= 9


async def test_an_image_removed_after_the_kubelet_saw_it_is_pulled_again(ctx):
    # The kubelet takes podman's "the image is present" as true for a few seconds (a burst
    # of pods asks once); an image removed meanwhile must not leave a pod failing until
    # then: the failed create makes the kubelet ask again, and then it pulls (which fails
    # here for real: no registry is reachable).
    image = f"localhost/peapod-gone-{uuid.uuid4().hex[:6]}:1"
    await asyncio.to_thread(subprocess.run, ["podman", "tag", BUSYBOX, image], check=True)
    first, second = (f"{n}-{uuid.uuid4().hex[:6]}" for n in ("seen", "after"))
    try:
        await apply(ctx, pod_manifest(first, [
            {"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
             "command": ["sleep", "3600"]}]))
        await wait_pod(ctx, first, running)
    finally:
        await asyncio.to_thread(subprocess.run, ["podman", "rmi", image], check=True,
                                capture_output=True)
    await apply(ctx, pod_manifest(second, [
        {"name": "c", "image": image, "imagePullPolicy": "IfNotPresent",
         "command": ["sleep", "3600"]}]))
    pod = await wait_pod(ctx, second, waiting("ErrImagePull"), timeout=30)
    assert image in status_of(pod)["state"]["waiting"]["message"]
    events = await pod_events(ctx, second)
    seen = [(e.reason, e.count, e.message) for e in events]
    # the kubelet may start from what it saw, once; the failed create makes it ask podman
    # again (and its retry, 10 s later, would outlive the remembered answer anyway)
    failed_creates = [e for e in events if e.reason == "Failed" and "image not known" in e.message]
    assert [e.count for e in failed_creates] in ([], [1]), seen
    assert [e for e in events if e.reason == "Pulling"], seen


async def test_the_pull_back_off_survives_a_kubelet_restart(ctx):
    # No registry is reachable here, so every pull fails for real.
    name, image = f"pullr-{uuid.uuid4().hex[:6]}", "localhost/no-such-image:5"
    await apply(ctx, pod_manifest(name, [
        {"name": "c", "image": image, "imagePullPolicy": "IfNotPresent"}]))

    def counted(events: list[Event], reason: str) -> int:
        return sum(e.count or 1 for e in events if e.reason == reason)

    async def pulls_and_backoffs() -> tuple[int, int]:
        events = await pod_events(ctx, name)
        return counted(events, "Pulling"), counted(events, "BackOff")

    async def failed_pulls() -> int:
        return sum(e.count or 1 for e in await pod_events(ctx, name)
                   if e.reason == "Failed" and e.message.startswith("Failed to pull image"))

    for _ in range(300):  # the second pull has failed: the back-off is now 20 s
        if await failed_pulls() >= 2:
            break
        await asyncio.sleep(0.2)
    pulls, backoffs = await pulls_and_backoffs()
    assert pulls == 2, (pulls, await pod_events(ctx, name))
    await ctx["node"].halt()  # the kubelet restarts inside those 20 s
    ctx["node"].start()
    for _ in range(150):  # the new kubelet says it is backing off ...
        pulls, after = await pulls_and_backoffs()
        if after > backoffs:
            break
        await asyncio.sleep(0.2)
    assert after > backoffs
    assert pulls == 2  # ... without pulling again first


async def test_a_sandbox_podman_cannot_create_is_shown_retried_with_back_off_and_recovers(ctx):
    taken = socket.socket()
    taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    taken.bind(("0.0.0.0", 0))
    taken.listen()
    port = taken.getsockname()[1]
    name = f"sandbox-{uuid.uuid4().hex[:6]}"
    await allow_privileged(ctx)  # a hostPort: not in the baseline level
    try:
        await apply(ctx, pod_manifest(name, [busybox(
            ["sleep", "3600"], ports=[{"containerPort": 8080, "hostPort": port}])]))
        pod = await wait_pod(ctx, name, waiting("CreatePodSandboxError"), timeout=30)
        message = status_of(pod)["state"]["waiting"]["message"]
        assert message.startswith("Failed to create pod sandbox: ") and "address already in use" \
            in message, message
        assert pod["status"]["phase"] == "Pending" and shown_status(pod) == "CreatePodSandboxError"
        assert podman_ids(pod["metadata"]["uid"]) == []  # the failed sandbox is not left behind

        async def attempts() -> list[Event]:
            return [e for e in await pod_events(ctx, name)
                    if e.reason == "FailedCreatePodSandBox"]

        async def retried() -> bool:
            return any(e.count >= 2 for e in await attempts())

        await eventually(retried, timeout=40)
        (event,) = await attempts()
        assert (event.type, event.message, event.count) == ("Warning", message, 2)
        assert seconds_between(event.first_timestamp or "", event.last_timestamp or "") >= 9
        text = describe_pod(Pod.model_validate(pod), await pod_events(ctx, name),
                            now=datetime.now(UTC))
        assert "CreatePodSandboxError" in text and "FailedCreatePodSandBox" in text
    finally:
        taken.close()
    await wait_pod(ctx, name, running, timeout=40)  # the next attempt finds the port free


async def test_restart_back_off_counts_from_the_exit_and_survives_a_kubelet_restart(ctx):
    name = f"loop-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [busybox(["sh", "-c", "sleep 2; exit 1"])]))
    pod = await wait_pod(ctx, name, lambda p: status_of(p).get("restartCount") == 2 and
                         waiting("CrashLoopBackOff")(p), timeout=90)
    cs = status_of(pod)
    assert cs["state"]["waiting"]["message"].startswith("back-off 20s restarting failed container=c")
    second_exit = cs["lastState"]["terminated"]["finishedAt"]

    await ctx["node"].halt()  # the kubelet restarts in the middle of the 20 s
    ctx["node"].start()

    pod = await wait_pod(ctx, name, lambda p: status_of(p).get("restartCount") == 3,
                         timeout=90)
    cs = status_of(pod)
    third_start = (cs["state"].get("running") or cs["lastState"]["terminated"])["startedAt"]
    # 20 s after the container's exit (not after its restart; not forgotten by the restart)
    assert seconds_between(second_exit, third_start) >= 20, (second_exit, third_start)


async def test_a_container_killed_for_memory_reads_oom_killed(ctx):
    hog = ["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"]
    limits = {"resources": {"limits": {"memory": "16Mi"}}}
    never, always = (f"oom-{kind}-{uuid.uuid4().hex[:6]}" for kind in ("never", "always"))
    await apply(ctx, pod_manifest(never, [busybox(hog, **limits)], restartPolicy="Never"))
    await apply(ctx, pod_manifest(always, [busybox(hog, **limits)]))

    pod = await wait_pod(ctx, never, lambda p: p.get("status", {}).get("phase") == "Failed")
    terminated = status_of(pod)["state"]["terminated"]
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137), terminated
    assert shown_status(pod) == "OOMKilled"

    pod = await wait_pod(ctx, always, lambda p: status_of(p).get("restartCount", 0) >= 1 and
                         "terminated" in status_of(p).get("lastState", {}))
    last = status_of(pod)["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"]) == ("OOMKilled", 137), last



async def test_podman_going_away_makes_the_node_not_ready_until_the_kubelet_starts_it_again(ctx):
    # The kubelet is restarted on a podman socket of its own, so that it starts (and this test
    # can kill) a podman service nothing else on the machine uses.
    node = ctx["node"]
    await node.halt()
    home = Path(f"/tmp/peapod-pd-{uuid.uuid4().hex[:8]}")  # a socket path under 108 bytes
    shared, node.socket = node.socket, str(home / "podman.sock")
    node.start()
    try:
        name = f"steady-{uuid.uuid4().hex[:6]}"
        # a liveness probe run every second, that one failure kills: it must not run (nor fail,
        # nor kill) while podman is away, and must run again once podman is back
        probe = {"exec": {"command": ["test", "!", "-e", "/sick"]}, "periodSeconds": 1,
                 "failureThreshold": 1}
        await apply(ctx, pod_manifest(name, [busybox(["sleep", "3600"], livenessProbe=probe)],
            terminationGracePeriodSeconds=1))
        uid = (await wait_pod(ctx, name, running))["metadata"]["uid"]
        containers = sorted(podman_ids(uid))
        first = podman_service_pid(node.socket)
        assert first is not None
        os.kill(first, signal.SIGKILL)

        async def ready() -> tuple[str, str | None, str | None]:
            got = await request(ctx["admin"], s.api("nodes", "get"), {"name": "node-a"})
            cond = next(c for c in got["status"]["conditions"] if c["type"] == "Ready")
            return cond["status"], cond.get("reason"), cond.get("message")

        seen: list[tuple[str, str | None, str | None]] = []

        async def went_not_ready() -> bool:
            seen.append(await ready())
            return seen[-1][0] == "False"
        await eventually(went_not_ready, timeout=30)
        assert seen[-1] == ("False", "KubeletNotReady", "container runtime is down")
        await eventually(lambda: ready_true(ready), timeout=60)
        again = podman_service_pid(node.socket)
        assert again is not None and again != first  # started again by the kubelet
        pod = await wait_pod(ctx, name, running)  # conmon kept the container: nothing doubled
        assert sorted(podman_ids(uid)) == containers
        assert status_of(pod)["restartCount"] == 0
        messages = await read_all(jetstream(ctx["admin"]), stream=s.EVENTS_STREAM,
                                  subject="peapod.events.>")
        node_events = [Event.model_validate(json.loads(m.data)) for m in messages]
        said = [(e.reason, e.message) for e in node_events if e.involved_object.kind == "Node"]
        assert ("NodeNotReady", "Node node-a status is now: NodeNotReady") in said, said
        assert ("NodeReady", "Node node-a status is now: NodeReady") in said, said
        reasons = [e.reason for e in await pod_events(ctx, name)]
        assert "Unhealthy" not in reasons and "Killing" not in reasons, reasons

        # probing resumed: made to fail, the container is killed and restarted
        made = await asyncio.to_thread(subprocess.run, [
            "podman", "exec", app_container(uid), "touch", "/sick"], capture_output=True,
            text=True, check=False)
        assert made.returncode == 0, made.stderr
        pod = await wait_pod(ctx, name, lambda p: status_of(p).get("restartCount") == 1,
                             timeout=60)
        reasons = [e.reason for e in await pod_events(ctx, name)]
        assert "Unhealthy" in reasons and "Killing" in reasons, reasons
    finally:
        await node.halt()
        node.socket = shared
        node.start()
        shutil.rmtree(home, ignore_errors=True)


def app_container(uid: str) -> str:
    out = subprocess.run(["podman", "ps", "-q", "--filter", f"label=io.peapod.pod.uid={uid}",
                          "--filter", "label=io.peapod.container.name"],
                         capture_output=True, text=True, check=True).stdout
    (container,) = out.split()
    return container


async def ready_true(ready: Callable[[], Any]) -> bool:
    return (await ready())[0] == "True"
