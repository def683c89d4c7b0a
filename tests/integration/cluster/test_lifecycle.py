"""A container's life on real podman: init containers, sidecars (and, later, probes and hooks).

Each test drives the real apiserver, scheduler and kubelet (the ``cluster``
fixture of conftest.py) and reads what a user would: the pod's status,
the STATUS column ``get pods`` prints, and what the containers themselves saw.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest

from peapod.api import Pod
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.cli.printers import pod_status_reason
from peapod.errors import NotFound
from tests.integration.cluster.test_kubelet import (
    allow_privileged,
    apply,
    kubelet_exec,
    pod_manifest,
    running,
    wait_pod,
)
from tests.integration.cluster.test_kubelet_failures import pod_events

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"


def box(name: str, script: str, **fields: object) -> dict:
    return {"name": name, "image": BUSYBOX, "command": ["sh", "-c", script], **fields}


def column(pod: dict) -> str:
    return pod_status_reason(Pod.model_validate(pod))[0]


def init_states(pod: dict) -> list[dict]:
    return [c.get("state", {}) for c in pod.get("status", {}).get("initContainerStatuses") or []]


async def test_init_containers_run_in_order_to_completion_before_the_app(ctx):
    name = f"init-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [
        box("app", "cat /work/log; sleep 3600", volumeMounts=[{"name": "w", "mountPath": "/work"}]),
    ], initContainers=[
        box("first", "sleep 2; echo first >> /work/log",
            volumeMounts=[{"name": "w", "mountPath": "/work"}]),
        box("second", "echo second >> /work/log",
            volumeMounts=[{"name": "w", "mountPath": "/work"}]),
    ], volumes=[{"name": "w", "emptyDir": {}}]))
    seen = set()

    def watch(pod: dict) -> bool:
        seen.add(column(pod))
        return running(pod)

    pod = await wait_pod(ctx, name, watch)
    assert "Init:0/2" in seen, seen  # the first init container sleeps 2 s: the column shows it
    assert [s["terminated"]["reason"] for s in init_states(pod)] == ["Completed", "Completed"]
    first, second = (s["terminated"] for s in init_states(pod))
    assert first["finishedAt"] <= second["startedAt"]
    assert all(c["ready"] for c in pod["status"]["initContainerStatuses"])
    conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
    assert conditions["Initialized"] == "True" and column(pod) == "Running"
    assert await kubelet_exec(ctx, name, "app", ["cat", "/work/log"]) == (0, "first\nsecond\n")


async def test_a_failing_init_container_fails_the_pod_under_never(ctx):
    name = f"initfail-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [box("app", "sleep 3600")],
                                      initContainers=[box("check", "exit 3")],
                                      restartPolicy="Never"))
    pod = await wait_pod(ctx, name, lambda p: p.get("status", {}).get("phase") == "Failed")
    assert column(pod) == "Init:Error"
    assert init_states(pod)[0]["terminated"]["exitCode"] == 3
    app = pod["status"]["containerStatuses"][0]
    assert app["state"]["waiting"]["reason"] == "PodInitializing" and "containerID" not in app


async def test_a_failing_init_container_crash_loops_under_on_failure(ctx):
    name = f"initloop-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [box("app", "sleep 3600")],
                                      initContainers=[box("check", "exit 1")],
                                      restartPolicy="OnFailure"))
    pod = await wait_pod(ctx, name, lambda p: column(p) == "Init:CrashLoopBackOff")
    status = pod["status"]["initContainerStatuses"][0]
    assert status["restartCount"] >= 1
    assert status["lastState"]["terminated"]["exitCode"] == 1
    assert pod["status"]["phase"] == "Pending"


def app_status(pod: dict) -> dict:
    return (pod.get("status", {}).get("containerStatuses") or [{}])[0]


def condition(pod: dict, kind: str) -> str | None:
    return next((c["status"] for c in pod.get("status", {}).get("conditions") or []
                 if c["type"] == kind), None)


async def test_a_failing_liveness_probe_restarts_the_container_with_kubernetes_events(ctx):
    name = f"live-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [box(
        "c", "mkdir -p /tmp; touch /tmp/healthy; sleep 2; rm /tmp/healthy; sleep 3600",
        livenessProbe={"exec": {"command": ["cat", "/tmp/healthy"]},
                       "periodSeconds": 1, "failureThreshold": 2})],
        terminationGracePeriodSeconds=2))
    pod = await wait_pod(ctx, name, lambda p: app_status(p).get("restartCount", 0) >= 1)
    last = app_status(pod)["lastState"]["terminated"]
    assert last["reason"] == "Error" and last["exitCode"] in (137, 143), last
    events = await pod_events(ctx, name)
    reasons = [e.reason for e in events]
    unhealthy = next(e for e in events if e.reason == "Unhealthy")
    assert unhealthy.type == "Warning"
    assert unhealthy.message == ("Liveness probe failed: cat: can't open '/tmp/healthy': "
                                 "No such file or directory\n")
    killing = next(e for e in events if e.reason == "Killing")
    assert killing.message == "Container c failed liveness probe, will be restarted"
    assert reasons.index("Unhealthy") < reasons.index("Killing")


async def test_readiness_drives_ready_and_the_conditions_and_tcp_liveness_holds(ctx):
    name = f"ready-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [box(
        "web", "mkdir -p /www; httpd -f -p 8080 -h /www",
        ports=[{"name": "http", "containerPort": 8080}],
        readinessProbe={"httpGet": {"path": "/ready.html", "port": "http"},
                        "periodSeconds": 1},
        livenessProbe={"tcpSocket": {"port": 8080}, "periodSeconds": 1})]))
    pod = await wait_pod(ctx, name, lambda p: app_status(p).get("state", {}).get("running")
                         and condition(p, "ContainersReady") == "False")
    await asyncio.sleep(2)  # several probe periods: still not ready, the page is missing
    pod = await wait_pod(ctx, name, lambda p: True)
    assert not app_status(pod)["ready"] and condition(pod, "Ready") == "False"
    assert column(pod) == "Running"
    assert Pod.model_validate(pod) and pod_status_reason(Pod.model_validate(pod))[1] == 0
    events = await pod_events(ctx, name)
    assert any(e.reason == "Unhealthy" and e.message ==
               "Readiness probe failed: HTTP probe failed with statuscode: 404" for e in events)
    assert await kubelet_exec(ctx, name, "web", ["touch", "/www/ready.html"]) == (0, "")
    pod = await wait_pod(ctx, name, lambda p: app_status(p).get("ready") is True)
    assert condition(pod, "Ready") == "True" and app_status(pod)["restartCount"] == 0


async def test_a_startup_probe_gates_started_and_a_sidecar_gates_what_follows(ctx):
    name = f"startup-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [box("app", "sleep 3600")], initContainers=[box(
        "proxy", "mkdir -p /tmp; sleep 3; touch /tmp/up; sleep 3600", restartPolicy="Always",
        startupProbe={"exec": {"command": ["test", "-e", "/tmp/up"]}, "periodSeconds": 1,
                      "failureThreshold": 30})]))
    pod = await wait_pod(ctx, name, lambda p: init_states(p) and "running" in init_states(p)[0])
    sidecar = pod["status"]["initContainerStatuses"][0]
    assert sidecar["started"] is False and column(pod) == "Init:0/1"
    assert app_status(pod)["state"]["waiting"]["reason"] == "PodInitializing"
    pod = await wait_pod(ctx, name, running)
    sidecar = pod["status"]["initContainerStatuses"][0]
    assert sidecar["started"] and sidecar["ready"]
    assert pod_status_reason(Pod.model_validate(pod)) == ("Running", 2)


async def test_sidecars_are_stopped_when_the_app_containers_finish(ctx):
    name = f"side-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [box("job", "sleep 2; echo done")], initContainers=[
        box("logger", "trap 'exit 0' TERM; while true; do sleep 1; done",
            restartPolicy="Always")], restartPolicy="Never"))
    pod = await wait_pod(ctx, name, lambda p: p.get("status", {}).get("phase") == "Succeeded")
    assert "terminated" in init_states(pod)[0]
    assert column(pod) == "Completed"
    events = await pod_events(ctx, name)
    assert any(e.reason == "Killing" and e.message == "Stopping container logger"
               for e in events)


async def test_post_start_and_pre_stop_hooks(ctx, tmp_path: Path):
    out = tmp_path / "out"
    out.mkdir()
    name = f"hooks-{uuid.uuid4().hex[:6]}"
    mount = [{"name": "out", "mountPath": "/out"}]
    await allow_privileged(ctx)  # a hostPath shows what the hooks wrote: not in baseline
    await apply(ctx, pod_manifest(name, [box(
        "c", "sleep 3600", volumeMounts=mount,
        lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "echo hi > /out/started"]}},
                   "preStop": {"exec": {"command": ["sh", "-c", "echo bye > /out/stopped"]}}})],
        volumes=[{"name": "out", "hostPath": {"path": str(out)}}],
        terminationGracePeriodSeconds=5))
    await wait_pod(ctx, name, running)
    assert (out / "started").read_text() == "hi\n"
    await request(ctx["admin"], s.api("pods", "delete"), {"namespace": "default", "name": name})
    for _ in range(100):
        try:
            await request(ctx["admin"], s.api("pods", "get"), {"namespace": "default",
                                                                "name": name})
        except NotFound:
            break
        await asyncio.sleep(0.2)
    assert (out / "stopped").read_text() == "bye\n"

    failing = f"hookfail-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(failing, [box(
        "c", "sleep 3600", lifecycle={"postStart": {"exec": {"command": ["sh", "-c", "exit 3"]}}})],
        terminationGracePeriodSeconds=2))
    pod = await wait_pod(ctx, failing, lambda p: app_status(p).get("restartCount", 0) >= 1)
    events = await pod_events(ctx, failing)
    hook = next(e for e in events if e.reason == "FailedPostStartHook")
    uid = pod["metadata"]["uid"]
    assert hook.message == (
        f'Exec lifecycle hook ([sh -c exit 3]) for Container "c" in Pod '
        f'"{failing}_default({uid})" failed - error: command \'sh -c exit 3\' exited with 3: , '
        'message: ""')
    assert any(e.reason == "Killing" and e.message == "FailedPostStartHook" for e in events)


async def test_active_deadline_fails_the_pod_and_stops_its_containers(ctx):
    name = f"deadline-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [box("c", "sleep 3600")], activeDeadlineSeconds=3,
                                  terminationGracePeriodSeconds=2))
    pod = await wait_pod(ctx, name, lambda p: p.get("status", {}).get("phase") == "Failed"
                         and "terminated" in app_status(p).get("state", {}))
    status = pod["status"]
    assert (status["reason"], status["message"]) == (
        "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
    await asyncio.sleep(2)  # restartPolicy Always, yet nothing is started again
    pod = await wait_pod(ctx, name, lambda p: True)
    assert app_status(pod)["restartCount"] == 0 and "terminated" in app_status(pod)["state"]
    events = await pod_events(ctx, name)
    assert any(e.reason == "DeadlineExceeded" for e in events)


async def test_termination_messages_from_the_file_or_the_log_tail(ctx):
    name = f"msg-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [
        box("file", "echo 'bye now' > /dev/termination-log; exit 2"),
        box("custom", "echo 'from a custom path' > /var/msg", terminationMessagePath="/var/msg"),
        box("logs", "echo first; echo oops; exit 1",
            terminationMessagePolicy="FallbackToLogsOnError"),
        box("quiet", "echo not a message; exit 1"),
    ], restartPolicy="Never"))
    pod = await wait_pod(ctx, name, lambda p: p.get("status", {}).get("phase") == "Failed"
                         and all("terminated" in c.get("state", {})
                                 for c in p["status"].get("containerStatuses") or []))
    messages = {c["name"]: c["state"]["terminated"].get("message")
                for c in pod["status"]["containerStatuses"]}
    assert messages == {"file": "bye now\n", "custom": "from a custom path\n",
                        "logs": "first\noops\n", "quiet": None}
