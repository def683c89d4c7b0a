"""``peapod describe pod|node``: kubectl's describe layout, asserted exactly with a fixed ``now``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from peapod.api import Event, Node, Pod
from peapod.cli.describe import describe_node, describe_pod

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc1123(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%a, %d %b %Y %H:%M:%S +0000")


def make_pod(name: str = "db", *, container: dict | None = None, status: dict | None = None,
             metadata: dict | None = None, **spec: Any) -> Pod:
    return Pod.model_validate({
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": ago(60), **(metadata or {})},
        "spec": {"containers": [{"name": "c0", "image": "postgres:16", **(container or {})}], **spec},
        "status": status or {"phase": "Pending"}})


def stripped(text: str) -> list[str]:
    return [line.strip() for line in text.split("\n")]


def field(text: str, key: str) -> str:
    """The value of the first ``Key:`` line, whatever its alignment."""
    return next(line.split(":", 1)[1].strip() for line in stripped(text) if line.startswith(f"{key}:"))


def event(reason: str, message: str, *, first: float, last: float, count: int = 1) -> Event:
    return Event.model_validate({
        "metadata": {"name": f"db.{reason.lower()}", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "db"}, "reason": reason, "message": message,
        "type": "Warning" if reason == "BackOff" else "Normal", "count": count,
        "source": {"component": "kubelet"}, "firstTimestamp": ago(first), "lastTimestamp": ago(last)})


# -- pods ------------------------------------------------------------------------------

def test_pending_pod_without_events_full_output() -> None:
    # "Events:" joins the aligned block above it, as kubectl's "Events:\t<none>" does.
    assert describe_pod(make_pod("web", container={"image": "nginx:1.25"}), [], now=NOW) == """\
Name:         web
Namespace:    default
Node:         <none>
Labels:       <none>
Annotations:  <none>
Status:       Pending
IP:
IPs:          <none>
Containers:
  c0:
    Image:        nginx:1.25
    Port:         <none>
    Host Port:    <none>
    Environment:  <none>
    Mounts:       <none>
Volumes:          <none>
QoS Class:        BestEffort
Node-Selectors:   <none>
Tolerations:      <none>
Events:           <none>"""  # no State/Ready/Restart Count until the kubelet reports, as kubectl


RUNNING = {
    "phase": "Running", "hostIP": "10.0.0.5", "podIP": "10.88.0.7", "startTime": ago(60),
    "conditions": [{"type": "Initialized", "status": "True"}, {"type": "ContainersReady", "status": "True"}],
    "containerStatuses": [{
        "name": "c0", "ready": True, "restartCount": 1, "containerID": "podman://abc123",
        "imageID": "sha256:def456", "state": {"running": {"startedAt": ago(26)}},
        "lastState": {"terminated": {"exitCode": 137, "signal": 9, "reason": "Error",
                                     "startedAt": ago(50), "finishedAt": ago(26)}}}]}


def running_pod() -> Pod:
    return make_pod(
        metadata={"labels": {"tier": "backend", "app": "db"}, "annotations": {"owner": "team-a"}},
        container={"command": ["docker-entrypoint.sh"], "args": ["postgres", "-c", "fsync=off"],
                   "ports": [{"containerPort": 5432}],
                   "env": [{"name": "POSTGRES_PASSWORD", "value": "secret"}],
                   "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                                 "limits": {"memory": "128Mi"}},
                   "volumeMounts": [
                       {"name": "data", "mountPath": "/var/lib/postgresql/data", "subPath": "pg"},
                       {"name": "host", "mountPath": "/srv", "readOnly": True}]},
        volumes=[{"name": "data", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/srv",
                                                                                 "type": "Directory"}}],
        nodeName="node-1", status=RUNNING)


def test_running_pod_header_labels_and_ips() -> None:
    lines = describe_pod(running_pod(), [], now=NOW).split("\n")
    assert lines[:11] == [
        "Name:         db",
        "Namespace:    default",
        "Node:         node-1/10.0.0.5",
        f"Start Time:   {rfc1123(60)}",
        "Labels:       app=db",
        "              tier=backend",  # sorted, continuation in the value column
        "Annotations:  owner: team-a",  # kubectl prints annotations as "key: value"
        "Status:       Running",
        "IP:           10.88.0.7",
        "IPs:",
        "  IP:  10.88.0.7",
    ]


def test_container_command_args_states_and_restart_count() -> None:
    text = describe_pod(running_pod(), [], now=NOW)
    assert """\
    Command:
      docker-entrypoint.sh
    Args:
      postgres
      -c
      fsync=off
""" in text
    lines = stripped(text)
    start = lines.index("State:          Running")
    assert lines[start:start + 10] == [
        "State:          Running",
        f"Started:      {rfc1123(26)}",
        "Last State:     Terminated",
        "Reason:       Error",
        "Exit Code:    137",
        "Signal:       9",
        f"Started:      {rfc1123(50)}",
        f"Finished:     {rfc1123(26)}",
        "Ready:          True",
        "Restart Count:  1",
    ]
    for line in ("Container ID:  podman://abc123", "Image ID:      sha256:def456", "Port:          5432/TCP",
                 "Host Port:     0/TCP", "POSTGRES_PASSWORD:  secret", "cpu:     250m", "memory:  128Mi",
                 '/var/lib/postgresql/data from data (rw,path="pg")', "/srv from host (ro)"):
        assert line in lines, line


def test_conditions_volumes_and_qos_section() -> None:
    text = describe_pod(running_pod(), [], now=NOW)
    # kubectl writes each condition as "%v \t%v \n": the trailing space widens the column.
    assert """
Conditions:
  Type              Status
  Initialized       True
  ContainersReady   True
Volumes:
  data:
    Type:       EmptyDir (a temporary directory that shares a pod's lifetime)
    Medium:
    SizeLimit:  <unset>
  host:
    Type:          HostPath (bare host directory volume)
    Path:          /srv
    HostPathType:  Directory
QoS Class:         Burstable
Node-Selectors:    <none>
Tolerations:       <none>
Events:            <none>""" in text
    assert text.endswith("Events:            <none>")


def test_several_ports_use_kubectls_plural_titles() -> None:
    pod = make_pod(container={"ports": [{"containerPort": 80}, {"containerPort": 53, "hostPort": 5353,
                                                                  "protocol": "UDP"}]})
    lines = stripped(describe_pod(pod, [], now=NOW))
    assert "Ports:        80/TCP, 53/UDP" in lines
    assert "Host Ports:   0/TCP, 5353/UDP" in lines


def test_events_table_with_repeated_event() -> None:
    events = [event("Scheduled", "Successfully assigned default/db to node-1", first=60, last=60),
              event("BackOff", "Back-off restarting failed container\n", first=300, last=5, count=3)]
    text = describe_pod(running_pod(), events, now=NOW)
    assert text.endswith("""
Tolerations:       <none>
Events:
  Type     Reason     Age              From     Message
  ----     ------     ----             ----     -------
  Normal   Scheduled  60s              kubelet  Successfully assigned default/db to node-1
  Warning  BackOff    5s (x3 over 5m)  kubelet  Back-off restarting failed container""")


@pytest.mark.parametrize(("resources", "expected"), [
    (None, "BestEffort"),
    ({"requests": {"ephemeral-storage": "1Gi"}}, "BestEffort"),  # only cpu and memory count
    ({"requests": {"cpu": "0", "memory": "0"}}, "BestEffort"),  # zero quantities do not count
    ({"requests": {"cpu": "100m"}}, "Burstable"),
    ({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "200m", "memory": "64Mi"}},
     "Burstable"),
    ({"limits": {"cpu": "1"}}, "Burstable"),
    ({"requests": {"cpu": "0.5", "memory": "1Gi"}, "limits": {"cpu": "500m", "memory": "1024Mi"}},
     "Guaranteed"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),  # requests default to limits
])
def test_qos_class(resources: dict | None, expected: str) -> None:
    pod = make_pod(container={"resources": resources} if resources else None)
    assert field(describe_pod(pod, [], now=NOW), "QoS Class") == expected


def test_terminating_pod_shows_how_long_and_grace_period_unless_finished() -> None:
    deleting = {"deletionTimestamp": ago(150), "deletionGracePeriodSeconds": 30}
    lines = stripped(describe_pod(make_pod(metadata=deleting, status={"phase": "Running"}), [], now=NOW))
    assert "Status:                    Terminating (lasts 2m30s)" in lines
    assert "Termination Grace Period:  30s" in lines
    finished = make_pod(metadata=deleting, status={"phase": "Failed", "reason": "Evicted"})
    lines = stripped(describe_pod(finished, [], now=NOW))
    assert "Status:       Failed" in lines
    assert "Reason:       Evicted" in lines
    assert not any(line.startswith("Termination Grace Period") for line in lines)


# -- nodes -----------------------------------------------------------------------------

def make_node() -> Node:
    return Node.model_validate({
        "metadata": {"name": "node-1", "creationTimestamp": ago(49 * 3600),
                     "labels": {"node-role.kubernetes.io/worker": "", "disk": "ssd"}},
        "spec": {"taints": [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]},
        "status": {
            "capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
            "allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
            "addresses": [{"type": "InternalIP", "address": "10.0.0.5"}],
            "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": ago(10),
                            "lastTransitionTime": ago(3600), "reason": "KubeletReady",
                            "message": "kubelet is posting ready status"}],
            "nodeInfo": {"machineID": "m-1", "kernelVersion": "6.1.0", "osImage": "Debian 12",
                         "containerRuntimeVersion": "podman://4.9.3", "kubeletVersion": "peapod/0.1.0",
                         "architecture": "amd64"}}})


def node_pod(name: str, resources: dict, *, phase: str = "Running", node: str = "node-1") -> Pod:
    return make_pod(name, container={"resources": resources}, nodeName=node, status={"phase": phase})


def test_describe_node_resources_and_system_info() -> None:
    pods = [node_pod("db", {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}}),
            node_pod("cache", {"limits": {"cpu": "1", "memory": "512Mi"}}),
            node_pod("done", {"requests": {"cpu": "1"}}, phase="Succeeded"),
            node_pod("elsewhere", {"requests": {"cpu": "1"}}, node="node-2")]
    text = describe_node(make_node(), pods, [], now=NOW)
    assert text.split("\n")[:8] == [
        "Name:               node-1",
        "Roles:              worker",
        "Labels:             disk=ssd",
        "                    node-role.kubernetes.io/worker=",
        "Annotations:        <none>",
        f"CreationTimestamp:  {rfc1123(49 * 3600)}",
        "Taints:             dedicated=db:NoSchedule",
        "Unschedulable:      false",
    ]
    assert f"""
Conditions:
  Type    Status  LastHeartbeatTime                 LastTransitionTime                Reason         Message
  ----    ------  -----------------                 ------------------                ------         -------
  Ready   True    {rfc1123(10)}   {rfc1123(3600)}   KubeletReady   kubelet is posting ready status
Addresses:
  InternalIP:  10.0.0.5
Capacity:
  cpu:     4
  memory:  8Gi
  pods:    110
Allocatable:
  cpu:     2
  memory:  4Gi
  pods:    110
System Info:
  Machine ID:                 m-1
  Kernel Version:             6.1.0
  OS Image:                   Debian 12
  Operating System:           linux
  Architecture:               amd64
  Container Runtime Version:  podman://4.9.3
  Kubelet Version:            peapod/0.1.0
Non-terminated Pods:          (2 in total)
  Namespace                   Name     CPU Requests  CPU Limits  Memory Requests  Memory Limits  Age
  ---------                   ----     ------------  ----------  ---------------  -------------  ---
  default                     db       500m (25%)    0 (0%)      1Gi (25%)        2Gi (50%)      60s
  default                     cache    1 (50%)       1 (50%)     512Mi (12%)      512Mi (12%)    60s
Allocated resources:
  (Total limits may be over 100 percent, i.e., overcommitted.)
  Resource           Requests      Limits
  --------           --------      ------
  cpu                1500m (75%)   1 (50%)
  memory             1536Mi (37%)  2560Mi (62%)
  ephemeral-storage  0 (0%)        0 (0%)
Events:              <none>""" in text


def test_probes_are_described_as_kubectl_does() -> None:
    from peapod.api.probe import Probe
    from peapod.cli.describe import describe_probe
    assert describe_probe(Probe.model_validate({"exec": {"command": ["cat", "/tmp/ok"]},
                                                "initialDelaySeconds": 5})) == (
        "exec [cat /tmp/ok] delay=5s timeout=1s period=10s #success=1 #failure=3")
    assert describe_probe(Probe.model_validate({"httpGet": {"path": "/healthz", "port": 8080}})) \
        == "http-get http://:8080/healthz delay=0s timeout=1s period=10s #success=1 #failure=3"
    assert describe_probe(Probe.model_validate({"tcpSocket": {"port": "http"}})).startswith(
        "tcp-socket :http delay=0s")


def test_describe_node_lists_extended_resources_as_kubectl_does() -> None:
    node = make_node()
    assert node.status is not None and node.status.allocatable is not None
    node.status.allocatable.update({"example.com/dongle": "3", "example.com/fan": "1"})
    pods = [node_pod("a", {"limits": {"example.com/dongle": "2"}}),
            node_pod("b", {"requests": {"example.com/dongle": "1"},
                           "limits": {"example.com/dongle": "1"}}),
            node_pod("gone", {"limits": {"example.com/dongle": "1"}}, phase="Failed")]
    lines = [" ".join(line.split()) for line in describe_node(node, pods, [], now=NOW).split("\n")]
    section = lines[lines.index("Allocated resources:"):]
    assert section[4:9] == ["cpu 0 (0%) 0 (0%)", "memory 0 (0%) 0 (0%)",
                            "ephemeral-storage 0 (0%) 0 (0%)",
                            "example.com/dongle 3 3", "example.com/fan 0 0"]


def test_describe_node_shows_ephemeral_storage_against_what_the_node_reports() -> None:
    node = make_node()
    assert node.status is not None and node.status.allocatable is not None
    node.status.allocatable["ephemeral-storage"] = "10Gi"
    pods = [node_pod("logs", {"requests": {"ephemeral-storage": "1Gi"},
                              "limits": {"ephemeral-storage": "2Gi"}}),
            node_pod("scratch", {"limits": {"ephemeral-storage": "512Mi"}}),
            node_pod("gone", {"limits": {"ephemeral-storage": "5Gi"}}, phase="Failed")]
    lines = [" ".join(line.split()) for line in describe_node(node, pods, [], now=NOW).split("\n")]
    section = lines[lines.index("Allocated resources:"):]
    # kubectl's describeNodeResource: cpu, memory, then ephemeral-storage with percentages
    # of allocatable (a limit without a request is the request)
    assert section[2:7] == ["Resource Requests Limits", "-------- -------- ------",
                            "cpu 0 (0%) 0 (0%)", "memory 0 (0%) 0 (0%)",
                            "ephemeral-storage 1536Mi (15%) 2560Mi (25%)"]
