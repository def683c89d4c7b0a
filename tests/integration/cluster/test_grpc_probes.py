"""gRPC probes on real podman: the kubelet probes a real grpcio health server for real.

The server runs in the test process on 127.0.0.1 (``tests/grpchealth.py``);
the pods use ``hostNetwork``, so their IP is the node's (127.0.0.1 for the
test kubelet) and the kubelet's probe reaches the server as it would reach a
server in the pod. The words are Kubernetes' prober's.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.grpchealth import NOT_SERVING, SERVING, SLOW, health_server
from tests.integration.cluster.test_kubelet import (
    allow_privileged,
    apply,
    pod_manifest,
    wait_pod,
)
from tests.integration.cluster.test_kubelet_failures import pod_events
from tests.integration.cluster.test_lifecycle import BUSYBOX, app_status
from tests.natsd import free_port

pytestmark = pytest.mark.podman


def sleeper(name: str, **fields: object) -> dict:
    return {"name": name, "image": BUSYBOX, "command": ["sleep", "3600"], **fields}


def grpc(port: int, service: str | None = None) -> dict:
    action: dict = {"port": port}
    if service is not None:
        action["service"] = service
    return {"grpc": action, "periodSeconds": 1, "timeoutSeconds": 1}


async def test_readiness_follows_the_health_service_with_kubernetes_words(ctx):
    await allow_privileged(ctx)  # hostNetwork
    closed = free_port()
    name = f"grpc-{uuid.uuid4().hex[:6]}"
    with health_server({"": SERVING, "db": NOT_SERVING}) as port:
        await apply(ctx, pod_manifest(name, [
            sleeper("serving", readinessProbe=grpc(port)),
            sleeper("not-serving", readinessProbe=grpc(port, "db")),
            sleeper("unknown", readinessProbe=grpc(port, "nope")),
            sleeper("closed", readinessProbe=grpc(closed)),
            sleeper("slow", readinessProbe=grpc(port, SLOW)),
        ], hostNetwork=True, terminationGracePeriodSeconds=0))
        wanted = {
            'Readiness probe failed: service unhealthy (responded with "NOT_SERVING")',
            "Readiness probe failed: error: health rpc probe failed: rpc error: "
            "code = NotFound desc = ",
            f'Readiness probe failed: timeout: failed to connect service "127.0.0.1:{closed}" '
            "within 1s: context deadline exceeded",
            "Readiness probe failed: timeout: health rpc did not complete within 1s",
        }

        def ready(pod: dict) -> dict[str, bool]:
            return {c["name"]: c.get("ready", False)
                    for c in pod.get("status", {}).get("containerStatuses") or []}

        pod = await wait_pod(ctx, name, lambda p: ready(p).get("serving"), timeout=90)
        for _ in range(60):  # the timeouts take a second each
            messages = {e.message for e in await pod_events(ctx, name) if e.reason == "Unhealthy"}
            if wanted <= messages:
                break
            await asyncio.sleep(0.25)
        assert wanted <= messages, messages
        pod = await wait_pod(ctx, name, lambda p: True)
    assert ready(pod) == {"serving": True, "not-serving": False, "unknown": False,
                          "closed": False, "slow": False}
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "False"


async def test_a_failing_grpc_liveness_probe_restarts_the_container(ctx):
    await allow_privileged(ctx)
    name = f"grpclive-{uuid.uuid4().hex[:6]}"
    with health_server({"app": NOT_SERVING}) as port:
        await apply(ctx, pod_manifest(name, [sleeper(
            "c", livenessProbe={**grpc(port, "app"), "failureThreshold": 1})],
            hostNetwork=True, terminationGracePeriodSeconds=1))
        pod = await wait_pod(ctx, name, lambda p: app_status(p).get("restartCount", 0) >= 1,
                             timeout=90)
    assert app_status(pod)["lastState"]["terminated"]["exitCode"] in (137, 143)
    events = await pod_events(ctx, name)
    reasons = [e.reason for e in events]
    unhealthy = next(e for e in events if e.reason == "Unhealthy")
    assert unhealthy.type == "Warning" and unhealthy.message == (
        'Liveness probe failed: service unhealthy (responded with "NOT_SERVING")')
    killing = next(e for e in events if e.reason == "Killing")
    assert killing.message == "Container c failed liveness probe, will be restarted"
    assert reasons.index("Unhealthy") < reasons.index("Killing")
