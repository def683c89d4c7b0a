"""A Pod's host namespaces, /etc/hosts and DNS as podman's API expresses them.

* ``hostNetwork`` puts the pod's sandbox in the host's network and UTS
  namespaces (the node's hostname, as Kubernetes), with no port mappings: a
  ``hostPort`` is the container's own port on the host;
* ``shareProcessNamespace`` adds ``pid`` to the namespaces the pod's
  containers share (podman's catatonit is PID 1, as Kubernetes' pause);
* ``hostPID`` and ``hostIPC`` put each container in the host's namespace;
* ``hostAliases`` become extra ``/etc/hosts`` lines, and ``dnsConfig`` the
  pod's resolv.conf. podman keeps them on the sandbox, except under
  ``hostNetwork``, where it takes them per container.

DNS policies. peapod has no cluster DNS, so ``ClusterFirst`` (the default)
and ``ClusterFirstWithHostNet`` resolve as ``Default`` does: with the node's
resolv.conf, as Kubernetes itself falls back to when a pod cannot use the
cluster's DNS. Service names do not resolve. ``dnsConfig`` is merged into the
node's resolv.conf as Kubernetes merges it (nameservers and searches added,
options by name), except under ``None``, where it is the whole file.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from peapod.api import Pod
from peapod.api.security import MAX_NAMESERVERS, MAX_SEARCHES, PodDNSConfig
from peapod.kubelet import security

SHARED = ["ipc", "net", "uts"]  # podman's default for a pod's containers


def pod_fields(pod: Pod, *, resolv_conf: Path) -> dict[str, Any]:
    """podman's pod fields for the sandbox (overriding the ones create_pod made)."""
    spec = pod.spec
    body: dict[str, Any] = dict(security.sandbox_fields(pod))
    if spec.host_network:
        body.update({"netns": {"nsmode": "host"}, "utsns": {"nsmode": "host"},
                     "portmappings": [], "hostname": ""})
    if spec.share_process_namespace:
        body["shared_namespaces"] = [*SHARED, "pid"]
    if not spec.host_network:
        body.update(_names(pod, resolv_conf))
    return body


def container_fields(pod: Pod, *, resolv_conf: Path) -> dict[str, Any]:
    """podman's container fields: host PID and IPC, and names under hostNetwork."""
    spec = pod.spec
    body: dict[str, Any] = {}
    if spec.host_pid:
        body["pidns"] = {"nsmode": "host"}
    if spec.host_ipc:
        body["ipcns"] = {"nsmode": "host"}
    if spec.host_network:
        body.update(_names(pod, resolv_conf))
    return body


def _names(pod: Pod, resolv_conf: Path) -> dict[str, Any]:
    spec = pod.spec
    body: dict[str, Any] = {}
    hosts = [f"{name}:{alias.ip}" for alias in spec.host_aliases or []
             for name in alias.hostnames or []]
    if hosts:
        body["hostadd"] = hosts
    if spec.dns_config is not None:
        body.update(dns_fields(spec.dns_policy, spec.dns_config, resolv_conf))
    return body


def dns_fields(policy: str | None, config: PodDNSConfig, resolv_conf: Path) -> dict[str, Any]:
    """The pod's resolv.conf as podman's dns_server/dns_search/dns_option."""
    servers, searches, options = ([], [], {}) if policy == "None" else read_resolv_conf(
        resolv_conf)
    servers = [*servers, *(config.nameservers or [])][:MAX_NAMESERVERS]
    searches = list(dict.fromkeys([*searches, *(config.searches or [])]))[:MAX_SEARCHES]
    for option in config.options or []:
        options[option.name] = option.value
    body: dict[str, Any] = {"dns_server": servers}
    if searches:
        body["dns_search"] = searches
    if options:
        body["dns_option"] = [name if value is None else f"{name}:{value}"
                              for name, value in options.items()]
    return body


def read_resolv_conf(path: Path) -> tuple[list[str], list[str], dict[str, str | None]]:
    """Nameservers (loopback ones left out, as podman does), searches and options of a file."""
    servers: list[str] = []
    searches: list[str] = []
    options: dict[str, str | None] = {}
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return servers, searches, options
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[0] == "nameserver" and not _loopback(fields[1]):
            servers.append(fields[1])
        elif fields and fields[0] in ("search", "domain"):
            searches = fields[1:]
        elif fields and fields[0] == "options":
            for option in fields[1:]:
                name, _, value = option.partition(":")
                options[name] = value or None
    return servers, searches, options


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return True  # not an address: leave it out
