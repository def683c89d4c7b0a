"""``peapod get`` output, asserted exactly against kubectl's rules with a fixed ``now``."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from peapod.api import Event, Node, Pod
from peapod.cli import printers
from peapod.cli.printers import align_columns, human_duration, pod_restarts, pod_status_reason, render
from peapod.errors import Invalid

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_pod(name: str = "db", *, phase: str = "Running", statuses: list[dict] | None = None,
             containers: int = 1, created: float = 4, **extra: Any) -> Pod:
    metadata = {"name": name, "namespace": extra.pop("namespace", "default"),
                "creationTimestamp": ago(created)}
    if "deleted" in extra:
        metadata["deletionTimestamp"] = ago(extra.pop("deleted"))
    status = {"phase": phase, "containerStatuses": statuses, **extra.pop("status", {})}
    return Pod.model_validate({
        "metadata": metadata,
        "spec": {"containers": [{"name": f"c{i}", "image": "postgres:16"} for i in range(containers)],
                 **extra},
        "status": {k: v for k, v in status.items() if v is not None}})


def running(name: str = "c0", *, ready: bool = True, restarts: int = 0,
            finished: float | None = None) -> dict:
    status: dict[str, Any] = {"name": name, "ready": ready, "restartCount": restarts,
                              "state": {"running": {"startedAt": ago(30)}}}
    if finished is not None:
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(finished)}}
    return status


def state(**state: Any) -> dict:
    return {"name": "c0", "state": state}


# -- durations and alignment -----------------------------------------------------------

@pytest.mark.parametrize(("delta", "expected"), [
    (timedelta(seconds=-3), "<invalid>"),
    (timedelta(seconds=-2), "<invalid>"),
    (timedelta(seconds=-1.5), "0s"),  # Go truncates -1.5s to -1: within the tolerated skew
    (timedelta(0), "0s"),
    (timedelta(seconds=4.9), "4s"),
    (timedelta(seconds=119), "119s"),
    (timedelta(seconds=120), "2m"),
    (timedelta(seconds=150), "2m30s"),
    (timedelta(minutes=9, seconds=59), "9m59s"),
    (timedelta(minutes=10), "10m"),
    (timedelta(minutes=10, seconds=30), "10m"),
    (timedelta(minutes=179), "179m"),
    (timedelta(hours=3), "3h"),
    (timedelta(hours=7, minutes=59), "7h59m"),
    (timedelta(hours=8), "8h"),
    (timedelta(hours=47, minutes=59), "47h"),
    (timedelta(hours=48), "2d"),
    (timedelta(hours=49), "2d1h"),
    (timedelta(days=8), "8d"),
    (timedelta(days=400), "400d"),
    (timedelta(days=730), "2y"),
    (timedelta(days=731), "2y1d"),
    (timedelta(days=365 * 8), "8y"),
])
def test_human_duration_follows_kubectl(delta: timedelta, expected: str) -> None:
    assert human_duration(delta) == expected


def test_age_of_a_missing_timestamp_is_unknown() -> None:
    assert printers.age(None, NOW) == "<unknown>"
    assert printers.age(ago(90), NOW) == "90s"


def test_align_columns_pads_each_block_to_its_widest_cell() -> None:
    text = "a\tbbbb\tlast\nccc\td\tx y\nno tabs here\nlong-cell\tz"
    assert align_columns(text, padding=2).split("\n") == [
        "a    bbbb  last",
        "ccc  d     x y",
        "no tabs here",   # a line with one cell ends the column block ...
        "long-cell  z",   # ... so this line is aligned on its own
    ]
    assert align_columns("a\tb\nc\td", padding=1, minwidth=4) == "a   b\nc   d"


# -- pods ------------------------------------------------------------------------------

def test_user_story_running_pod_then_one_restart() -> None:
    pod = make_pod(statuses=[running()])
    assert render([pod], output=None, kind="pods", now=NOW) == (
        "NAME   READY   STATUS    RESTARTS   AGE\n"
        "db     1/1     Running   0          4s")
    restarted = make_pod(created=60, statuses=[running(restarts=1, finished=26)])
    # kubectl 1.22+: the count, then how long ago the last restart was
    assert render([restarted], output=None, kind="pods", now=NOW) == (
        "NAME   READY   STATUS    RESTARTS      AGE\n"
        "db     1/1     Running   1 (26s ago)   60s")


def test_restarts_sum_every_container_with_the_age_of_the_latest_restart() -> None:
    pod = make_pod(containers=2, statuses=[running("c0", restarts=2, finished=30),
                                           running("c1", restarts=1, finished=600)])
    assert pod_restarts(pod, now=NOW) == "3 (30s ago)"
    assert pod_restarts(make_pod(statuses=[running(restarts=1, finished=3 * 3600)]),
                        now=NOW) == "1 (3h ago)"
    # a count without a lastState (a status written before it was kept) is the bare count
    assert pod_restarts(make_pod(statuses=[running(restarts=4)]), now=NOW) == "4"
    assert pod_restarts(make_pod(statuses=[running(finished=30)]), now=NOW) == "0"
    assert pod_restarts(make_pod(statuses=None), now=NOW) == "0"


@pytest.mark.parametrize(("phase", "statuses", "expected"), [
    ("Pending", None, "Pending"),
    ("Pending", [state(waiting={"reason": "ContainerCreating"})], "ContainerCreating"),
    ("Running", [state(waiting={"reason": "CrashLoopBackOff", "message": "back-off 10s"})],
     "CrashLoopBackOff"),
    ("Pending", [state(waiting={"reason": "ErrImageNeverPull"})], "ErrImageNeverPull"),
    ("Succeeded", [state(terminated={"exitCode": 0, "reason": "Completed"})], "Completed"),
    ("Failed", [state(terminated={"exitCode": 1, "reason": "Error"})], "Error"),
    ("Failed", [state(terminated={"exitCode": 137, "signal": 9})], "Signal:9"),
    ("Failed", [state(terminated={"exitCode": 3})], "ExitCode:3"),
    ("Running", [state(waiting={})], "Running"),  # a waiting state without a reason keeps the phase
])
def test_status_column_reason(phase: str, statuses: list[dict] | None, expected: str) -> None:
    assert pod_status_reason(make_pod(phase=phase, statuses=statuses))[0] == expected


def test_first_container_wins_and_ready_counts_running_ready_containers() -> None:
    pod = make_pod(containers=4, statuses=[
        {"name": "c0", "state": {"waiting": {"reason": "ImagePullBackOff"}}},
        running("c1"), running("c2", ready=False),
        {"name": "c3", "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}])
    assert pod_status_reason(pod) == ("ImagePullBackOff", 1)


def test_completed_sidecar_with_a_running_container_shows_running_or_not_ready() -> None:
    statuses = [state(terminated={"exitCode": 0, "reason": "Completed"}), running("c1")]
    ready_condition = {"conditions": [{"type": "Ready", "status": "True"}]}
    ready = make_pod(containers=2, statuses=statuses, status=ready_condition)
    assert pod_status_reason(ready) == ("Running", 1)
    assert pod_status_reason(make_pod(containers=2, statuses=statuses))[0] == "NotReady"


def init_pod(inits: list[dict], apps: list[dict] | None = None, *, phase: str = "Pending",
             sidecars: int = 0, initialized: bool = False) -> Pod:
    """Two init containers i0, i1 (the first ``sidecars`` of them sidecars) and one app c0."""
    spec = [{"name": f"i{i}", "image": "busybox:1", **({"restartPolicy": "Always"}
                                                        if i < sidecars else {})}
            for i in range(2)]
    waiting = [state(waiting={"reason": "PodInitializing"})]
    condition = {"type": "Initialized", "status": "True" if initialized else "False"}
    return make_pod(phase=phase, statuses=apps or waiting, initContainers=spec,
                    status={"initContainerStatuses": [{"name": f"i{i}", **s}
                                                      for i, s in enumerate(inits)],
                            "conditions": [condition]})


PENDING_INIT = {"state": {"waiting": {"reason": "PodInitializing"}}}
DONE = {"ready": True, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}


@pytest.mark.parametrize(("inits", "expected"), [
    ([PENDING_INIT, PENDING_INIT], "Init:0/2"),
    ([{"state": {"running": {}}}, PENDING_INIT], "Init:0/2"),
    ([DONE, {"state": {"running": {}}}], "Init:1/2"),
    ([DONE, {"state": {"terminated": {"exitCode": 1, "reason": "Error"}}}], "Init:Error"),
    ([{"state": {"terminated": {"exitCode": 2}}}, PENDING_INIT], "Init:ExitCode:2"),
    ([{"state": {"terminated": {"exitCode": 137, "signal": 9}}}, PENDING_INIT], "Init:Signal:9"),
    ([{"restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
       "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}, PENDING_INIT],
     "Init:CrashLoopBackOff"),
])
def test_status_column_while_init_containers_run(inits: list[dict], expected: str) -> None:
    pod = init_pod(inits)
    assert pod_status_reason(pod) == (expected, 0)
    assert render([pod], output=None, kind="pods", now=NOW).splitlines()[1].split()[1:3] == [
        "0/1", expected]


def test_status_column_once_initialized() -> None:
    assert pod_status_reason(init_pod([DONE, DONE], initialized=True))[0] == "PodInitializing"
    assert pod_status_reason(init_pod([DONE, DONE], [running()], phase="Running",
                                      initialized=True)) == ("Running", 1)
    crashed = {"restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}
    assert pod_restarts(init_pod([crashed, PENDING_INIT]), now=NOW) == "3"
    crashed["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ago(45)}}
    assert pod_restarts(init_pod([crashed, PENDING_INIT]), now=NOW) == "3 (45s ago)"
    assert pod_restarts(init_pod([DONE, DONE], [running(restarts=2)], initialized=True),
                        now=NOW) == "2"
    # once initialized, an init container's old restarts no longer count, nor their age
    assert pod_restarts(init_pod([crashed, DONE], [running(restarts=1, finished=90)],
                                 initialized=True), now=NOW) == "1 (90s ago)"


def test_a_started_sidecar_counts_in_ready_and_does_not_hold_the_status() -> None:
    sidecar = {"ready": True, "started": True, "restartCount": 1, "state": {"running": {}}}
    pod = init_pod([sidecar, DONE], [running()], phase="Running", sidecars=1, initialized=True)
    assert pod_status_reason(pod) == ("Running", 2)
    assert render([pod], output=None, kind="pods", now=NOW).splitlines()[1].split()[1:4] == [
        "2/2", "Running", "1"]
    unstarted = {"started": False, "state": {"running": {}}}
    assert pod_status_reason(init_pod([unstarted, PENDING_INIT], sidecars=1))[0] == "Init:0/2"


def test_deletion_timestamp_means_terminating_unless_terminal_or_node_lost() -> None:
    assert pod_status_reason(make_pod(deleted=3, statuses=[running()]))[0] == "Terminating"
    done = make_pod(phase="Succeeded", deleted=3, statuses=[state(terminated={"exitCode": 0,
                                                                              "reason": "Completed"})])
    assert pod_status_reason(done)[0] == "Completed"
    lost = make_pod(deleted=3, status={"reason": "NodeLost"})
    assert pod_status_reason(lost)[0] == "Unknown"


def test_wide_all_namespaces_and_no_headers() -> None:
    web = make_pod("web", namespace="shop", created=3 * 3600, statuses=[running()], nodeName="node-1",
                   status={"podIP": "10.88.0.7"})
    pending = make_pod("queued", phase="Pending", created=150)
    assert render([web, pending], output="wide", kind="pods", now=NOW, all_namespaces=True) == (
        "NAMESPACE   NAME     READY   STATUS    RESTARTS   AGE     IP          NODE     NOMINATED NODE"
        "   READINESS GATES\n"
        "shop        web      1/1     Running   0          3h      10.88.0.7   node-1   <none>"
        "           <none>\n"
        "default     queued   0/1     Pending   0          2m30s   <none>      <none>   <none>"
        "           <none>")
    assert render([pending], output=None, kind="pods", now=NOW, no_headers=True) == (
        "queued   0/1   Pending   0     2m30s")


def test_empty_lists_print_nothing_and_kubectl_says_no_resources() -> None:
    assert render([], output=None, kind="pods", now=NOW) == ""
    assert printers.no_resources_message("default") == "No resources found in default namespace."
    assert printers.no_resources_message(None) == "No resources found"


# -- nodes and events ------------------------------------------------------------------

def make_node(name: str, *, ready: str | None = "True", **spec: Any) -> Node:
    return Node.model_validate({
        "metadata": {"name": name, "creationTimestamp": ago(49 * 3600),
                     "labels": {"node-role.kubernetes.io/worker": "", "kubernetes.io/role": "db",
                                "node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/": ""}},
        "spec": spec,
        "status": {"conditions": [{"type": "Ready", "status": ready}] if ready else [],
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
                   "nodeInfo": {"kubeletVersion": "peapod/0.1.0", "osImage": "Debian 12"}}})


def test_nodes_table_with_roles_status_and_wide_columns() -> None:
    nodes = [make_node("node-1"), make_node("node-2", ready="False", unschedulable=True),
             make_node("node-3", ready=None)]
    assert render(nodes, output=None, kind="nodes", now=NOW) == (
        "NAME     STATUS                        ROLES                     AGE    VERSION\n"
        "node-1   Ready                         control-plane,db,worker   2d1h   peapod/0.1.0\n"
        "node-2   NotReady,SchedulingDisabled   control-plane,db,worker   2d1h   peapod/0.1.0\n"
        "node-3   Unknown                       control-plane,db,worker   2d1h   peapod/0.1.0")
    assert render(nodes[:1], output="wide", kind="nodes", now=NOW).split("\n")[1] == (
        "node-1   Ready    control-plane,db,worker   2d1h   peapod/0.1.0   10.0.0.5      <none>"
        "        Debian 12   <unknown>        <unknown>")


def make_event(reason: str, message: str, *, first: float, last: float | None = None, count: int = 1,
               type_: str = "Normal") -> Event:
    return Event.model_validate({
        "metadata": {"name": f"db.{reason.lower()}", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "db", "namespace": "default",
                           "fieldPath": "spec.containers{c0}"},
        "reason": reason, "message": message, "type": type_, "count": count,
        "source": {"component": "kubelet", "host": "node-1"},
        "firstTimestamp": ago(first), "lastTimestamp": ago(first if last is None else last)})


def test_events_table_columns_and_object() -> None:
    events = [make_event("Scheduled", "Successfully assigned default/db to node-1\n", first=40),
              make_event("BackOff", "Back-off restarting failed container", first=300, last=5, count=7,
                         type_="Warning")]
    assert render(events, output=None, kind="events", now=NOW) == (
        "LAST SEEN   TYPE      REASON      OBJECT   MESSAGE\n"
        "40s         Normal    Scheduled   pod/db   Successfully assigned default/db to node-1\n"
        "5s          Warning   BackOff     pod/db   Back-off restarting failed container")
    wide = printers.events_table(events[1:], now=NOW, wide=True, no_headers=True)
    assert wide == ("5s    Warning   BackOff   pod/db   spec.containers{c0}   kubelet, node-1   "
                    "Back-off restarting failed container   5m    7     db.backoff")  # minimum width 6


# -- structured output -----------------------------------------------------------------

def test_json_of_one_object_is_its_kubernetes_json() -> None:
    pod = make_pod(statuses=[running()], nodeName="node-1")
    doc = json.loads(render([pod], output="json", kind="pods", now=NOW, single=True))
    assert list(doc) == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert doc["metadata"] == {"name": "db", "namespace": "default", "creationTimestamp": ago(4)}
    assert doc["spec"]["nodeName"] == "node-1"
    assert doc["spec"]["restartPolicy"] == "Always"
    assert doc["status"]["containerStatuses"][0]["restartCount"] == 0
    assert Pod.model_validate(doc) == pod


def test_json_of_several_objects_is_a_kubectl_list_and_yaml_parses_back_to_it() -> None:
    pods = [make_pod("a"), make_pod("b")]
    text = render(pods, output="json", kind="pods", now=NOW)
    doc = json.loads(text)
    assert text.startswith('{\n    "apiVersion": "v1",\n    "items": [')
    assert list(doc) == ["apiVersion", "items", "kind", "metadata"]
    assert doc["kind"] == "List" and doc["metadata"] == {"resourceVersion": ""}
    assert [item["metadata"]["name"] for item in doc["items"]] == ["a", "b"]
    assert yaml.safe_load(render(pods, output="yaml", kind="pods", now=NOW)) == doc
    # a single name with single=False (a list query that matched one object) is still a List
    assert json.loads(render(pods[:1], output="json", kind="pods", now=NOW))["kind"] == "List"
    single_yaml = render(pods[:1], output="yaml", kind="pods", now=NOW, single=True)
    assert single_yaml.startswith("apiVersion: v1\nkind: Pod\nmetadata:\n")
    assert not single_yaml.endswith("\n")


def test_name_output_and_unknown_formats() -> None:
    objs = [make_pod("db"), make_node("node-1")]
    assert render(objs, output="name", kind="pods", now=NOW) == "pod/db\nnode/node-1"
    with pytest.raises(Invalid, match='output format "table"'):
        render(objs, output="table", kind="pods", now=NOW)
    with pytest.raises(Invalid, match='resource type "services"'):
        render(objs, output=None, kind="services", now=NOW)


def test_show_labels_adds_kubectls_labels_column() -> None:
    node = make_node("node-1")
    node.metadata.labels = {"kubernetes.io/arch": "arm64", "disk": "ssd"}
    bare = make_node("node-2")
    bare.metadata.labels = {}
    assert render([node, bare], output=None, kind="nodes", now=NOW, show_labels=True) == (
        "NAME     STATUS   ROLES    AGE    VERSION        LABELS\n"
        "node-1   Ready    <none>   2d1h   peapod/0.1.0   disk=ssd,kubernetes.io/arch=arm64\n"
        "node-2   Ready    <none>   2d1h   peapod/0.1.0   <none>")
