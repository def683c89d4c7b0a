"""Init containers and sidecars in the kubelet's pure decisions: order, restarts, status.

The same paths run against real podman in tests/integration/cluster/test_lifecycle.py.
"""

from __future__ import annotations

from peapod.api import Pod, parse_object
from peapod.kubelet.backoff import Backoff
from peapod.kubelet.reconcile import Action, plan_pod, pod_status
from peapod.kubelet.runtime import PodInfo
from tests.unit.kubelet.test_reconcile import FINISHED, UID, container, observed


def make_pod(policy: str = "Always", inits: tuple[str, ...] = ("init-a", "init-b"),
             sidecars: tuple[str, ...] = ()) -> Pod:
    # the sidecars first, then the init containers that run to completion
    init = [{"name": n, "image": "busybox:1", "restartPolicy": "Always"} for n in sidecars]
    init += [{"name": n, "image": "busybox:1"} for n in inits]
    pod = parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "db"},
                        "spec": {"restartPolicy": policy, "initContainers": init,
                                 "containers": [{"name": "app", "image": "mongo:3.3"}]}})
    assert isinstance(pod, Pod)
    pod.metadata.namespace, pod.metadata.uid = "default", UID
    return pod


def starts(pod: Pod, obs: PodInfo | None, now: float = FINISHED + 1,
           backoff: Backoff | None = None) -> list[Action]:
    plan = plan_pod(pod, obs, backoff=backoff or Backoff(), now=now)
    return [a for a in plan.actions if a.kind == "start"]


def done(name: str) -> object:
    return container(name, state="exited", exit_code=0)


def test_init_containers_run_one_at_a_time_in_order_before_the_app():
    pod = make_pod()
    assert starts(pod, None) == [Action("start", "init-a")]
    assert starts(pod, observed(container("init-a"))) == []  # running: wait for it
    assert starts(pod, observed(done("init-a"))) == [Action("start", "init-b")]
    assert starts(pod, observed(done("init-a"), done("init-b"))) == [Action("start", "app")]


def test_a_failed_init_container_is_restarted_with_back_off_unless_the_policy_is_never():
    failed = observed(done("init-a"), container("init-b", state="exited", exit_code=1))
    for policy in ("Always", "OnFailure"):
        assert starts(make_pod(policy), failed) == [
            Action("start", "init-b", restart_count=1, finished_at=FINISHED)]
    backoff = Backoff()
    backoff.next(f"{UID}/init-b", FINISHED - 100, now=FINISHED - 100)
    plan = plan_pod(make_pod(), failed, backoff=backoff, now=FINISHED + 1)
    assert plan.actions == [] and plan.waiting["init-b"][0] == "CrashLoopBackOff"
    assert starts(make_pod("Never"), failed) == []
    status = pod_status(make_pod("Never"), failed, waiting={}, host_ip=None, start_time=None,
                        now="t")
    assert status.phase == "Failed"


def test_once_an_app_container_ran_init_containers_are_not_run_again():
    # the init attempts were removed (or the app container is all podman still has)
    obs = observed(container("app", state="exited", exit_code=1))
    assert starts(make_pod(), obs) == [
        Action("start", "app", restart_count=1, finished_at=FINISHED)]


def test_status_while_initializing():
    pod = make_pod()
    status = pod_status(pod, observed(done("init-a"), container("init-b")), waiting={},
                        host_ip=None, start_time=None, now="t")
    assert status.phase == "Pending"
    first, second = status.init_container_statuses or []
    assert first.ready and first.state.terminated and first.state.terminated.reason == "Completed"
    assert second.state.running and second.started and not second.ready
    (app,) = status.container_statuses or []
    assert app.state.waiting and app.state.waiting.reason == "PodInitializing"
    conditions = {c.type: c for c in status.conditions or []}
    assert conditions["Initialized"].status == "False"
    assert conditions["Initialized"].reason == "ContainersNotInitialized"
    assert conditions["Initialized"].message == "containers with incomplete status: [init-b]"
    assert conditions["Ready"].message == "containers with unready status: [app]"
    not_started = pod_status(pod, None, waiting={}, host_ip=None, start_time=None, now="t")
    for cs in not_started.init_container_statuses or []:
        assert cs.state.waiting and cs.state.waiting.reason == "PodInitializing"


def test_status_once_initialized():
    pod = make_pod()
    obs = observed(done("init-a"), done("init-b"), container("app"))
    status = pod_status(pod, obs, waiting={}, host_ip=None, start_time=None, now="t")
    assert status.phase == "Running"
    conditions = {c.type: c.status for c in status.conditions or []}
    assert conditions == {"Initialized": "True", "Ready": "True", "ContainersReady": "True",
                          "PodScheduled": "True"}
    wire = status.to_wire()
    assert [c["name"] for c in wire["initContainerStatuses"]] == ["init-a", "init-b"]


def test_a_sidecar_needs_only_to_run_and_stays_beside_the_app():
    pod = make_pod(inits=(), sidecars=("proxy",))
    assert starts(pod, None) == [Action("start", "proxy")]
    assert starts(pod, observed(container("proxy"))) == [Action("start", "app")]
    # it is restarted whatever its exit code, also once the app runs
    obs = observed(container("proxy", state="exited", exit_code=0), container("app"))
    assert starts(make_pod("Never", inits=(), sidecars=("proxy",)), obs) == [
        Action("start", "proxy", restart_count=1, finished_at=FINISHED)]
    status = pod_status(pod, observed(container("proxy"), container("app")), waiting={},
                        host_ip=None, start_time=None, now="t")
    assert status.phase == "Running"
    (side,) = status.init_container_statuses or []
    assert side.ready and side.started


def test_a_sidecar_before_an_init_container_lets_it_start():
    pod = make_pod(inits=("init-a",), sidecars=("proxy",))
    assert starts(pod, observed(container("proxy"))) == [Action("start", "init-a")]
    status = pod_status(pod, observed(container("proxy"), container("init-a")), waiting={},
                        host_ip=None, start_time=None, now="t")
    assert status.phase == "Pending"


def test_when_the_app_is_done_for_good_the_sidecars_are_stopped_not_restarted():
    pod = make_pod("Never", inits=(), sidecars=("proxy",))
    obs = observed(container("proxy"), container("app", state="exited", exit_code=0))
    plan = plan_pod(pod, obs, backoff=Backoff(), now=FINISHED + 1)
    assert plan.actions == [Action("stop", "proxy", container_id=container("proxy").id)]
    stopped = observed(container("proxy", state="exited", exit_code=143),
                       container("app", state="exited", exit_code=0))
    assert starts(pod, stopped) == []
    status = pod_status(pod, stopped, waiting={}, host_ip=None, start_time=None, now="t")
    assert status.phase == "Succeeded"
    # under Always the app restarts, so the sidecar stays
    assert plan_pod(make_pod(inits=(), sidecars=("proxy",)), obs, backoff=Backoff(),
                    now=FINISHED + 1).actions == [
        Action("start", "app", restart_count=1, finished_at=FINISHED)]


def test_stop_order_is_the_app_then_the_sidecars_last_started_first():
    from peapod.kubelet.agent import stop_order
    pod = make_pod(inits=(), sidecars=("log", "proxy"))
    obs = observed(container("log"), container("proxy"), container("app"))
    assert stop_order(pod, obs) == [[container("app").id], [container("proxy").id],
                                    [container("log").id]]
