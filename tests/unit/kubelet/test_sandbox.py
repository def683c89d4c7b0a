"""hostNetwork, hostPID/IPC, shareProcessNamespace, hostAliases and DNS → podman fields (pure;
podman itself is in tests/integration/cluster/test_host_namespaces.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from peapod.api import Pod, parse_object
from peapod.errors import Invalid
from peapod.kubelet.sandbox import container_fields, pod_fields, read_resolv_conf


def make(**spec: Any) -> Pod:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox",
                                    "ports": [{"containerPort": 80, "hostPort": 80}]}], **spec}}
    pod = parse_object(doc)
    assert isinstance(pod, Pod)
    return pod


@pytest.fixture
def resolv(tmp_path: Path) -> Path:
    path = tmp_path / "resolv.conf"
    path.write_text("# node\nnameserver 127.0.0.53\nnameserver 10.0.0.1\nsearch lan home\n"
                    "options ndots:1 rotate\n")
    return path


def test_defaults_add_nothing(resolv: Path) -> None:
    assert pod_fields(make(), resolv_conf=resolv) == {}
    assert container_fields(make(), resolv_conf=resolv) == {}


def test_host_network_pid_ipc(resolv: Path) -> None:
    pod = make(hostNetwork=True, hostPID=True, hostIPC=True,
               hostAliases=[{"ip": "10.1.1.1", "hostnames": ["a", "b"]}])
    assert pod_fields(pod, resolv_conf=resolv) == {
        "netns": {"nsmode": "host"}, "utsns": {"nsmode": "host"}, "portmappings": [],
        "hostname": ""}
    assert container_fields(pod, resolv_conf=resolv) == {
        "pidns": {"nsmode": "host"}, "ipcns": {"nsmode": "host"},
        "hostadd": ["a:10.1.1.1", "b:10.1.1.1"]}


def test_share_process_namespace_and_aliases_on_the_sandbox(resolv: Path) -> None:
    pod = make(shareProcessNamespace=True, hostAliases=[{"ip": "::1", "hostnames": ["six"]}])
    assert pod_fields(pod, resolv_conf=resolv) == {
        "shared_namespaces": ["ipc", "net", "uts", "pid"], "hostadd": ["six:::1"]}


def test_dns_config_merges_into_the_nodes_resolv_conf(resolv: Path) -> None:
    pod = make(dnsConfig={"nameservers": ["10.0.0.2", "10.0.0.3", "10.0.0.4"],
                          "searches": ["svc.local", "lan"],
                          "options": [{"name": "ndots", "value": "5"}, {"name": "edns0"}]})
    assert pod_fields(pod, resolv_conf=resolv) == {
        "dns_server": ["10.0.0.1", "10.0.0.2", "10.0.0.3"],  # at most 3, loopback left out
        "dns_search": ["lan", "home", "svc.local"],
        "dns_option": ["ndots:5", "rotate", "edns0"]}


def test_dns_policy_none_is_the_whole_file(resolv: Path) -> None:
    pod = make(dnsPolicy="None", dnsConfig={"nameservers": ["192.0.2.1"]})
    assert pod_fields(pod, resolv_conf=resolv) == {"dns_server": ["192.0.2.1"]}


def test_an_unreadable_resolv_conf_is_empty(tmp_path: Path) -> None:
    assert read_resolv_conf(tmp_path / "absent") == ([], [], {})


@pytest.mark.parametrize(("spec", "expected"), [
    ({"hostPID": True, "shareProcessNamespace": True},
     "spec.shareProcessNamespace: Invalid value: true: ShareProcessNamespace and HostPID cannot "
     "both be enabled"),
    ({"hostNetwork": True, "containers": [{"name": "c", "image": "b", "ports": [
        {"containerPort": 80, "hostPort": 8080}]}]},
     "spec.containers[0].ports[0].hostPort: Invalid value: 8080: must match `containerPort` when "
     "`hostNetwork` is true"),
    ({"dnsPolicy": "None"},
     "spec.dnsConfig: Required value: must provide `dnsConfig` when `dnsPolicy` is None"),
    ({"dnsPolicy": "None", "dnsConfig": {"searches": ["a"]}},
     "spec.dnsConfig.nameservers: Required value"),
    ({"dnsConfig": {"nameservers": ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4"]}},
     "must not have more than 3 nameservers"),
    ({"dnsConfig": {"nameservers": ["dns.example"]}},
     'spec.dnsConfig.nameservers[0]: Invalid value: "dns.example": must be a valid IP address'),
    ({"dnsConfig": {"searches": ["Bad_Domain"]}}, 'spec.dnsConfig.searches[0]: Invalid value'),
    ({"dnsPolicy": "ClusterFirstWithHostNetwork"}, "spec.dnsPolicy: unsupported value"),
    ({"hostAliases": [{"ip": "not-ip", "hostnames": ["a"]}]},
     'spec.hostAliases[0].ip: Invalid value: "not-ip": must be a valid IP address'),
    ({"hostAliases": [{"ip": "10.0.0.1", "hostnames": ["UPPER"]}]},
     'spec.hostAliases[0].hostnames[0]: Invalid value: "UPPER"'),
])
def test_invalid_specs_are_refused_by_name(spec: dict, expected: str) -> None:
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}
    with pytest.raises(Invalid) as info:
        parse_object(doc)
    assert expected in info.value.message
