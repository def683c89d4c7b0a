"""hostNetwork, hostPID, hostIPC, shareProcessNamespace, hostAliases and DNS, on real podman.

Containers print what they see (links, hostname, processes, namespace
inodes, /etc/hosts, /etc/resolv.conf) and the test compares it with the
host's own view.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from pathlib import Path

import pytest

from peapod.kubelet.sandbox import read_resolv_conf
from tests.integration.cluster.test_kubelet import (
    allow_privileged,
    apply,
    pod_manifest,
    wait_pod,
)
from tests.integration.cluster.test_security_context import IMAGE, done, logs

pytestmark = pytest.mark.podman


def sh(name: str, script: str) -> dict:
    return {"name": name, **IMAGE, "command": ["sh", "-c", script]}


async def run_to_end(ctx: dict, manifest: dict) -> dict:
    await apply(ctx, manifest)
    pod = await wait_pod(ctx, manifest["metadata"]["name"], done, timeout=90)
    assert pod["status"]["phase"] == "Succeeded", pod["status"]
    return pod


async def test_host_network_pid_and_ipc_are_the_hosts(ctx):
    await allow_privileged(ctx)  # host namespaces: not in the baseline level
    # a host process the pod must see: a duration no other test run uses
    seconds = f"{3000 + uuid.uuid4().int % 100000}.5"
    marker = await asyncio.create_subprocess_exec("sleep", seconds)
    try:
        name = f"hostns-{uuid.uuid4().hex[:6]}"
        pod = await run_to_end(ctx, pod_manifest(name, [
            sh("c", "hostname; readlink /proc/self/ns/net; "
                    f"ps -o args | grep -c '^sleep {seconds}'; readlink /proc/self/ns/ipc; "
                    "grep -c 'example.internal' /etc/hosts")],
            restartPolicy="Never", hostNetwork=True, hostPID=True, hostIPC=True,
            hostAliases=[{"ip": "10.9.8.7", "hostnames": ["example.internal"]}]))
        text = (await logs(ctx, name, "c")).splitlines()
    finally:
        marker.kill()
        await marker.wait()
    assert text[0] == socket.gethostname()
    assert text[1] == os.readlink("/proc/self/ns/net")  # interfaces come and go: compare the ns
    assert text[2] == "1"
    assert text[3] == os.readlink("/proc/self/ns/ipc")
    assert text[4] == "1"  # hostAliases under hostNetwork too
    assert pod["status"]["podIP"] == pod["status"]["hostIP"]


async def test_shared_process_namespace_aliases_and_dns(ctx):
    name = f"share-{uuid.uuid4().hex[:6]}"
    # the sidecar sleeps, the other container sees it and PID 1 is the sandbox's init
    await run_to_end(ctx, pod_manifest(name, [
        sh("sidecar", "sleep 4.25"),
        sh("main", "sleep 0.5; ps -o pid,args; cat /etc/hosts /etc/resolv.conf; "
                   "readlink /proc/self/ns/net; readlink /proc/self/ns/ipc")],
        restartPolicy="Never", shareProcessNamespace=True,
        hostAliases=[{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]}],
        dnsPolicy="None",
        dnsConfig={"nameservers": ["192.0.2.53"], "searches": ["ns1.svc.example"],
                   "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}))
    text = await logs(ctx, name, "main")
    lines = text.splitlines()
    assert "sleep 4.25" in text
    assert any(line.split()[:1] == ["1"] and "catatonit" in line for line in lines), text
    assert "10.1.2.3\tfoo.local" in text and "10.1.2.3\tbar.local" in text
    resolv = [line for line in lines
              if line.split()[:1] in (["nameserver"], ["search"], ["options"])]
    assert resolv == ["search ns1.svc.example", "nameserver 192.0.2.53", "options ndots:2 edns0"]
    assert lines[-1] != os.readlink("/proc/self/ns/ipc")  # not the host's IPC namespace
    assert lines[-2] != os.readlink("/proc/self/ns/net")  # its own network

    # Default merges dnsConfig into the node's resolv.conf
    merged = f"dns-{uuid.uuid4().hex[:6]}"
    await run_to_end(ctx, pod_manifest(merged, [sh("c", "cat /etc/resolv.conf")],
                                       restartPolicy="Never", dnsPolicy="Default",
                                       dnsConfig={"nameservers": ["192.0.2.54"]}))
    servers = [line.split()[1] for line in (await logs(ctx, merged, "c")).splitlines()
               if line.startswith("nameserver")]
    node_servers = read_resolv_conf(Path("/etc/resolv.conf"))[0]
    assert servers == [*node_servers, "192.0.2.54"][:3]
