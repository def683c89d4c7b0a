"""The prober's rules (thresholds, initial results, startup gating) without waiting for periods.

Each probe run is driven by hand (``run_once``) with an exec function that
answers as told, so a failureThreshold of 3 takes three calls, not 30 s.
Real probes against real podman are in tests/integration/cluster/test_lifecycle.py.
"""

from __future__ import annotations

from typing import Any

import structlog

from peapod.api import Pod, parse_object
from peapod.kubelet.probes import ProbeManager
from peapod.kubelet.reconcile import ProbeView
from peapod.kubelet.runtime import RuntimeDown
from tests.unit.kubelet.test_reconcile import UID, container, observed

EXEC = {"exec": {"command": ["check"]}, "periodSeconds": 10}


def make_pod(**probes: Any) -> Pod:
    pod = parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db"},
                        "spec": {"containers": [{"name": "db", "image": "mongo:3.3", **probes}]}})
    assert isinstance(pod, Pod)
    pod.metadata.namespace, pod.metadata.uid = "default", UID
    return pod


class Harness:
    def __init__(self) -> None:
        self.answers: list[int] = []
        self.events: list[tuple[str, str]] = []
        self.failures: list[tuple[str, str, int]] = []
        self.changes = 0
        self.runtime_down = False
        self.manager = ProbeManager(exec_fn=self.exec, on_change=self.changed,
                                    on_failure=self.failed, event=self.event,
                                    paused=lambda: self.runtime_down,
                                    log=structlog.get_logger("test"))

    async def exec(self, container_id: str, argv: list[str]) -> tuple[int, bytes]:
        code = self.answers.pop(0)
        if code < 0:  # podman's socket does not answer
            raise RuntimeDown("podman does not answer on /run/podman/podman.sock")
        return code, b"" if code == 0 else b"not yet\n"

    def changed(self, pod: Pod) -> None:
        self.changes += 1

    async def failed(self, pod: Pod, name: str, container_id: str, kind: str, grace: int) -> None:
        self.failures.append((name, kind, grace))

    async def event(self, pod: Pod, reason: str, message: str) -> None:
        self.events.append((reason, message))

    async def run_once(self, kind: str, code: int) -> None:
        state = self.manager.pods[UID]
        worker = state.workers[(container().id, kind)]  # type: ignore[index]
        self.answers.append(code)
        await self.manager._probe(state, worker)

    def view(self) -> ProbeView:
        return self.manager.view(UID)


async def test_readiness_starts_not_ready_and_follows_its_thresholds():
    h = Harness()
    pod = make_pod(readinessProbe={**EXEC, "successThreshold": 2, "failureThreshold": 2})
    h.manager.sync(pod, observed(container()))
    try:
        cid = container().id
        assert cid in h.view().not_ready and cid not in h.view().not_started
        await h.run_once("readiness", 0)
        assert cid in h.view().not_ready  # one success of two
        await h.run_once("readiness", 0)
        assert cid not in h.view().not_ready and h.changes == 1
        await h.run_once("readiness", 1)
        assert cid not in h.view().not_ready  # one failure of two
        await h.run_once("readiness", 1)
        assert cid in h.view().not_ready
        assert h.events[-1] == ("Unhealthy", "Readiness probe failed: not yet\n")
        assert h.failures == []  # readiness never kills
    finally:
        h.manager.close()


async def test_liveness_kills_at_its_threshold_once_then_holds():
    h = Harness()
    pod = make_pod(livenessProbe={**EXEC, "failureThreshold": 3,
                                  "terminationGracePeriodSeconds": 7})
    h.manager.sync(pod, observed(container()))
    try:
        for _ in range(2):
            await h.run_once("liveness", 1)
        assert h.failures == [] and len(h.events) == 2
        await h.run_once("liveness", 1)
        assert h.failures == [("db", "liveness", 7)]
        await h.run_once("liveness", 1)  # on hold until a new container replaces it
        assert len(h.failures) == 1 and len(h.events) == 3
        # the restarted container (a new id) is probed afresh
        h.manager.sync(pod, observed(container(restarts=1)))
        assert list(h.manager.pods[UID].workers) == [(container(restarts=1).id, "liveness")]
    finally:
        h.manager.close()


async def test_probes_neither_run_nor_act_while_the_runtime_is_down_and_resume_as_they_were():
    h = Harness()
    pod = make_pod(livenessProbe={**EXEC, "failureThreshold": 2},
                   readinessProbe={**EXEC, "failureThreshold": 1})
    h.manager.sync(pod, observed(container()))
    h.manager.pods[UID].task.cancel()  # type: ignore[union-attr]  # driven by hand only
    try:
        await h.run_once("readiness", 0)
        await h.run_once("liveness", 1)  # one failure of two
        events = list(h.events)
        await h.run_once("liveness", -1)  # podman went away before the kubelet saw it: no result
        await h.run_once("readiness", -1)
        h.runtime_down = True  # the relist saw it: the node is NotReady
        for kind in ("liveness", "readiness"):
            await h.run_once(kind, 1)
        assert h.answers == [1, 1]  # nothing ran
        assert (h.events, h.failures) == (events, [])
        assert container().id not in h.view().not_ready  # readiness kept its last result
        h.runtime_down, h.answers = False, []  # podman is back
        await h.run_once("liveness", 0)  # the run of failures was not counted through the outage
        await h.run_once("liveness", 1)
        assert h.failures == []
        await h.run_once("liveness", 1)
        assert h.failures == [("db", "liveness", 30)]
    finally:
        h.manager.close()


async def test_startup_gates_liveness_and_readiness_and_runs_only_until_it_succeeds():
    h = Harness()
    pod = make_pod(startupProbe=EXEC, livenessProbe=EXEC, readinessProbe=EXEC)
    h.manager.sync(pod, observed(container()))
    try:
        cid = container().id
        assert cid in h.view().not_started and cid in h.view().not_ready
        await h.run_once("liveness", 1)  # not run: the answer stays queued
        assert h.answers == [1] and h.events == []
        h.answers.clear()
        await h.run_once("startup", 0)
        assert cid not in h.view().not_started and cid in h.view().not_ready
        await h.run_once("startup", 1)  # done: never run again
        assert h.answers == [1]
        h.answers.clear()
        await h.run_once("readiness", 0)
        assert h.view() == ProbeView()
    finally:
        h.manager.close()


async def test_an_exited_container_is_not_probed_and_a_pod_without_probes_costs_nothing():
    h = Harness()
    h.manager.sync(make_pod(livenessProbe=EXEC), observed(container(state="exited",
                                                                   exit_code=1)))
    assert h.manager.pods[UID].workers == {}
    h.manager.sync(make_pod(), observed(container()))
    assert UID not in h.manager.pods


async def test_a_host_network_pod_is_probed_at_the_node_address():
    h = Harness()
    h.manager.host_ip = "192.0.2.7"
    pod = make_pod(readinessProbe=EXEC)
    h.manager.sync(pod, observed(container()))
    assert h.manager.pods[UID].ip == "10.88.0.5"
    pod.spec.host_network = True
    h.manager.sync(pod, observed(container()))
    assert h.manager.pods[UID].ip == "192.0.2.7"
    h.manager.close()
