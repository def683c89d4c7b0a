"""The kubelet's reconcile decisions, from constructed observations (pure, no podman).

The same decisions run against real podman in tests/integration/kubelet and
the end-to-end test; here every branch is reached quickly and exactly.
"""

from __future__ import annotations

from peapod.api import Pod, parse_object
from peapod.kubelet.backoff import Backoff, Entry
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


FINISHED = 1_795_000_060.0  # 2026-11-24T20:01:00Z, when exited test containers ended


def container(name: str = "db", *, state: str = "running", restarts: int = 0,
              exit_code: int | None = None, finished: float = FINISHED,
              backoff: Entry | None = None, oom_killed: bool = False) -> ContainerInfo:
    exited = state == "exited"
    return ContainerInfo(id=f"{name}{restarts}".ljust(64, "0"), name=name,
                         restart_count=restarts, state=state, exit_code=exit_code,
                         started_at="2026-11-24T20:00:00Z",
                         finished_at="2026-11-24T20:01:00Z" if exited else None,
                         image="mongo:3.3", image_id="sha256:abc", oom_killed=oom_killed,
                         finished_ts=finished if exited else None, backoff=backoff)


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
                    backoff=Backoff(), now=FINISHED + 1)
    assert plan.actions == [Action("start", "db", restart_count=1, finished_at=FINISHED)]


def test_a_crash_inside_the_back_off_waits_in_crash_loop_back_off():
    backoff = Backoff()
    backoff.next(f"{UID}/db", FINISHED - 100, now=FINISHED - 100)  # the first restart
    plan = plan_pod(make_pod(), observed(container(state="exited", restarts=1, exit_code=1)),
                    backoff=backoff, now=FINISHED + 4)
    assert plan.actions == []
    reason, message = plan.waiting["db"]
    assert reason == "CrashLoopBackOff"
    assert message == f"back-off 10s restarting failed container=db pod=db_default({UID})"


def test_back_off_is_counted_from_the_exit_not_from_the_restart():
    backoff = Backoff()
    backoff.next(f"{UID}/db", 0, now=1000)  # restarted at 1000; delay now 10 s
    ran_long = observed(container(state="exited", restarts=1, exit_code=1, finished=1008))
    # 11 s after the restart, but only 3 s after the exit: still backing off
    assert plan_pod(make_pod(), ran_long, backoff=backoff, now=1011).waiting
    assert plan_pod(make_pod(), ran_long, backoff=backoff, now=1018).actions == [
        Action("start", "db", restart_count=2, finished_at=1008)]


def test_a_restarted_kubelet_takes_the_back_off_from_the_container_labels():
    # a fresh Backoff is what a restarted kubelet has; the label holds the 80 s in force
    crashed = container(state="exited", restarts=4, exit_code=1, finished=5000,
                        backoff=Entry(delay=80, last_update=4990))
    plan = plan_pod(make_pod(), observed(crashed), backoff=Backoff(), now=5030)
    assert plan.actions == []
    assert plan.waiting["db"][1].startswith("back-off 1m20s restarting failed container=db")
    assert plan_pod(make_pod(), observed(crashed), backoff=Backoff(), now=5080).actions == [
        Action("start", "db", restart_count=5, finished_at=5000)]


def test_restart_policies():
    done = observed(container(state="exited", exit_code=0))
    failed = observed(container(state="exited", exit_code=3))
    assert plan_pod(make_pod("OnFailure"), done, backoff=Backoff(), now=0).actions == []
    assert plan_pod(make_pod("OnFailure"), failed, backoff=Backoff(), now=0).actions == [
        Action("start", "db", restart_count=1, finished_at=FINISHED)]
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


def test_an_oom_killed_container_reads_oom_killed_in_state_and_last_state():
    killed = container(state="exited", exit_code=137, oom_killed=True)
    never = pod_status(make_pod("Never"), observed(killed), waiting={}, host_ip=None,
                       start_time=None, now="t")
    cs = (never.container_statuses or [])[0]
    assert cs.state.terminated is not None
    assert (cs.state.terminated.reason, cs.state.terminated.exit_code) == ("OOMKilled", 137)
    assert never.phase == "Failed"
    restarted = observed(container(restarts=1), container(state="exited", exit_code=137,
                                                          oom_killed=True))
    always = pod_status(make_pod(), restarted, waiting={}, host_ip=None, start_time=None, now="t")
    last = (always.container_statuses or [])[0].last_state.terminated
    assert last is not None and last.reason == "OOMKilled"


def test_a_reason_from_the_reason_cache_is_the_waiting_state():
    # a sandbox podman cannot create: no container exists, every container says why
    why = ("CreatePodSandboxError", "Failed to create pod sandbox: address already in use")
    status = pod_status(make_pod(containers=("a", "b")), None, waiting={"a": why, "b": why},
                        host_ip=None, start_time=None, now="t")
    assert status.phase == "Pending"
    for cs in status.container_statuses or []:
        assert cs.state.waiting is not None
        assert (cs.state.waiting.reason, cs.state.waiting.message) == why


def test_a_pod_failed_by_the_kubelet_reads_failed_with_its_reason_and_is_never_ready():
    why = ("DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
    status = pod_status(make_pod(), observed(container()), waiting={}, host_ip=None,
                        start_time=None, now="t", terminal=why)
    assert (status.phase, status.reason, status.message) == ("Failed", *why)
    ready = next(c for c in status.conditions or [] if c.type == "Ready")
    assert (ready.status, ready.reason) == ("False", "PodFailed")


def test_a_container_created_but_never_started_is_made_again():
    # the kubelet was killed between podman's create and start (seen under chaos): Kubernetes
    # restarts a container in the created state instead of waiting for it forever
    for state in ("created", "configured", "initialized"):
        stale = container(state=state)
        plan = plan_pod(make_pod(), observed(stale), backoff=Backoff(), now=FINISHED)
        assert plan.actions == [Action("remove_container", "db", container_id=stale.id),
                                Action("start", "db", restart_count=0)]


def test_a_restart_created_but_never_started_is_made_again_with_its_restart_count():
    stale = container(state="created", restarts=2)
    plan = plan_pod(make_pod(), observed(stale, container(state="exited", restarts=1, exit_code=1)),
                    backoff=Backoff(), now=FINISHED + 100)
    assert plan.actions == [Action("remove_container", "db", container_id=stale.id),
                            Action("start", "db", restart_count=2, finished_at=FINISHED)]
