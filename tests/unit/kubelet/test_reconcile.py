"""The kubelet's reconcile decisions, from constructed observations (pure, no podman).

The same decisions run against real podman in tests/integration/kubelet and
the end-to-end test; here every branch is reached quickly and exactly.
"""

from __future__ import annotations

from peapod.api import Pod, parse_object
from peapod.kubelet.backoff import Backoff
from peapod.kubelet.reconcile import Action, plan_pod, pod_phase, pod_status
from peapod.kubelet.runtime import ContainerInfo, PodInfo

UID = "0f0e0d0c-0000-4000-8000-000000000001"


def make_pod(policy: str = "Always", containers: tuple[str, ...] = ("db",)) -> Pod:
    pod = parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db"},
                        "spec": {"restartPolicy": policy,
                                 "containers": [{"name": n, "image": "mongo:3.3"}
                                                for n in containers]}})
    assert isinstance(pod, Pod)
    pod.metadata.namespace, pod.metadata.uid = "default", UID
    return pod


def container(name: str = "db", *, state: str = "running", restarts: int = 0,
              exit_code: int | None = None) -> ContainerInfo:
    return ContainerInfo(id=f"{name}{restarts}".ljust(64, "0"), name=name,
                         restart_count=restarts, state=state, exit_code=exit_code,
                         started_at="2026-11-24T20:00:00Z",
                         finished_at="2026-11-24T20:01:00Z" if state == "exited" else None,
                         image="mongo:3.3", image_id="sha256:abc")


def observed(*containers: ContainerInfo) -> PodInfo:
    return PodInfo(uid=UID, namespace="default", name="db", podman_id="p1", ip="10.88.0.5",
                   containers=list(containers))


def test_a_new_pod_gets_a_sandbox_and_every_container_started():
    plan = plan_pod(make_pod(containers=("a", "b")), None, backoff=Backoff(), now=0)
    assert plan.actions == [Action("create_pod"), Action("start", "a"), Action("start", "b")]


def test_a_running_pod_needs_nothing():
    plan = plan_pod(make_pod(), observed(container()), backoff=Backoff(), now=0)
    assert plan.actions == [] and plan.waiting == {}


def test_first_crash_restarts_at_once_with_the_next_restart_count():
    plan = plan_pod(make_pod(), observed(container(state="exited", exit_code=0)),
                    backoff=Backoff(), now=0)
    assert plan.actions == [Action("start", "db", restart_count=1)]


def test_a_crash_inside_the_back_off_waits_in_crash_loop_back_off():
    backoff = Backoff()
    backoff.started(f"{UID}/db", now=100)
    plan = plan_pod(make_pod(), observed(container(state="exited", restarts=1, exit_code=1)),
                    backoff=backoff, now=104)
    assert plan.actions == []
    reason, message = plan.waiting["db"]
    assert reason == "CrashLoopBackOff"
    assert message.startswith("back-off 10s restarting failed container=db pod=db_default(")


def test_restart_policies():
    done = observed(container(state="exited", exit_code=0))
    failed = observed(container(state="exited", exit_code=3))
    assert plan_pod(make_pod("OnFailure"), done, backoff=Backoff(), now=0).actions == []
    assert plan_pod(make_pod("OnFailure"), failed, backoff=Backoff(), now=0).actions == [
        Action("start", "db", restart_count=1)]
    assert plan_pod(make_pod("Never"), failed, backoff=Backoff(), now=0).actions == []


def test_only_the_current_and_previous_attempts_are_kept():
    obs = observed(container(restarts=3), container(state="exited", restarts=2, exit_code=0),
                   container(state="exited", restarts=1, exit_code=0),
                   container(state="exited", restarts=0, exit_code=0))
    plan = plan_pod(make_pod(), obs, backoff=Backoff(), now=0)
    removed = sorted(a.container_id or "" for a in plan.actions if a.kind == "remove_container")
    assert removed == sorted([container(restarts=1).id, container(restarts=0).id])


def test_status_of_a_restarted_container_shows_restart_count_and_last_state():
    pod = make_pod()
    obs = observed(container(restarts=1), container(state="exited", restarts=0, exit_code=0))
    status = pod_status(pod, obs, waiting={}, host_ip="192.0.2.1", start_time="t0", now="t1")
    assert status.phase == "Running" and status.pod_ip == "10.88.0.5"
    (cs,) = status.container_statuses or []
    assert cs.ready and cs.restart_count == 1 and cs.state.running is not None
    assert cs.last_state.terminated is not None
    assert cs.last_state.terminated.reason == "Completed"
    assert cs.container_id == f"podman://{container(restarts=1).id}"
    wire = status.to_wire()
    assert wire["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 0
    ready = {c["type"]: c["status"] for c in wire["conditions"]}
    assert ready == {"Initialized": "True", "Ready": "True", "ContainersReady": "True",
                     "PodScheduled": "True"}


def test_status_while_creating_and_in_back_off():
    pod = make_pod()
    creating = pod_status(pod, None, waiting={}, host_ip=None, start_time=None, now="t")
    assert creating.phase == "Pending"
    assert (creating.container_statuses or [])[0].state.waiting.reason == "ContainerCreating"  # type: ignore[union-attr]
    crashed = observed(container(state="exited", restarts=2, exit_code=1))
    looping = pod_status(pod, crashed, waiting={"db": ("CrashLoopBackOff", "back-off 20s")},
                         host_ip=None, start_time=None, now="t")
    cs = (looping.container_statuses or [])[0]
    assert cs.state.waiting is not None and cs.state.waiting.reason == "CrashLoopBackOff"
    assert cs.last_state.terminated is not None and cs.last_state.terminated.exit_code == 1
    assert looping.phase == "Running"  # restartPolicy Always: a crash-looping pod is Running
    assert not cs.ready


def test_phase_rules_for_finished_pods():
    ok = observed(container(state="exited", exit_code=0))
    bad = observed(container(state="exited", exit_code=2))
    for policy, obs, phase in (("Never", ok, "Succeeded"), ("Never", bad, "Failed"),
                               ("OnFailure", ok, "Succeeded")):
        pod = make_pod(policy)
        status = pod_status(pod, obs, waiting={}, host_ip=None, start_time=None, now="t")
        assert status.phase == phase, policy
        assert pod_phase(pod, status.container_statuses or []) == phase


def test_condition_transition_time_is_kept_while_the_status_holds():
    pod = make_pod()
    obs = observed(container())
    first = pod_status(pod, obs, waiting={}, host_ip=None, start_time=None, now="t1")
    second = pod_status(pod, obs, waiting={}, host_ip=None, start_time=None, now="t2",
                        previous=first)
    times = {c.type: c.last_transition_time for c in second.conditions or []}
    assert times["Ready"] == "t1"
