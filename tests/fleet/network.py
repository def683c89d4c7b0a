"""The simulated fleet's network: its address plan and the rule that keeps it offline.

Each fleet gets one rootful podman bridge with a /24 of its own, taken from
10.89.128.0/17 (podman hands out 10.89.0.0/24 upward to networks created
without a subnet, so the top half stays clear). The first candidate is a hash of the
fleet's name, so the same fleet gets the same subnet run after run, and taken
subnets (other podman networks, routes of this machine) are skipped. Hosts get
static addresses from .10 upward: podman's CNI backend hands out a new address
at every start, and a machine that reboots keeps its address in the inventory
(and its MAC, see ``mac_address``).

The bridge keeps its gateway on this machine, which is how the machine reaches
the hosts' addresses (an ``internal`` network has no gateway and its traffic
would follow the default route out instead). Being a gateway, podman also
masquerades the hosts to the internet; one iptables rule, tagged with the
fleet's name so that cleanup finds it, rejects everything the fleet would
forward out of the machine's uplinks. A role that quietly needs a mirror then
fails here as it would on an offline Raspberry Pi.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shlex
import subprocess
from collections.abc import Iterable

SUBNET_POOL = ipaddress.IPv4Network("10.89.128.0/17")
FIRST_HOST = 10

Subnet = ipaddress.IPv4Network


def choose_subnet(fleet: str, taken: Iterable[Subnet]) -> Subnet:
    """The fleet's /24: the one its name hashes to, or the next free one in the pool."""
    taken = list(taken) + _routed_subnets()
    candidates = list(SUBNET_POOL.subnets(new_prefix=24))
    start = int(hashlib.sha256(fleet.encode()).hexdigest()[:8], 16) % len(candidates)
    for offset in range(len(candidates)):
        subnet = candidates[(start + offset) % len(candidates)]
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise RuntimeError(f"no free /24 left in {SUBNET_POOL} for fleet {fleet!r}")


def gateway(subnet: Subnet) -> ipaddress.IPv4Address:
    """The bridge's own address on this machine: the subnet's first."""
    return subnet.network_address + 1


def next_free_address(subnet: Subnet, used: Iterable[str]) -> str:
    """The lowest host address from .10 up that no host of the fleet holds."""
    held = {ipaddress.IPv4Address(address) for address in used}
    for address in list(subnet.hosts())[FIRST_HOST - 1:]:
        if address not in held:
            return str(address)
    raise RuntimeError(f"subnet {subnet} is full")


def mac_address(address: str) -> str:
    """A fixed, locally administered MAC for a host's address.

    A machine keeps its MAC across reboots, and so must a host here: with a
    new MAC at every start, this machine's ARP cache would keep sending to the
    old one for up to a minute after the host came back.
    """
    octets = ipaddress.IPv4Address(address).packed
    return "02:50:" + ":".join(f"{octet:02x}" for octet in octets)


def _routed_subnets() -> list[Subnet]:
    """Destinations this machine already routes (its LANs, VPNs, bridges)."""
    routes = json.loads(_run(["ip", "-4", "-json", "route", "show"]) or "[]")
    subnets = []
    for route in routes:
        destination = route.get("dst", "default")
        if destination != "default":
            subnets.append(ipaddress.IPv4Network(destination, strict=False))
    return subnets


def _uplinks() -> list[str]:
    """The interfaces of this machine's default routes: the way out of the machine."""
    routes = json.loads(_run(["ip", "-4", "-json", "route", "show", "default"]) or "[]")
    return sorted({route["dev"] for route in routes if "dev" in route})


def _comment(fleet: str) -> str:
    return f"peapod-fleet={fleet}"


def block_uplinks(fleet: str, subnet: Subnet) -> None:
    """Reject what the fleet would forward out of the machine; idempotent."""
    for uplink in _uplinks():
        rule = ["FORWARD", "-s", str(subnet), "-o", uplink, "-m", "comment",
                "--comment", _comment(fleet), "-j", "REJECT"]
        if subprocess.run(["iptables", "-C", *rule], capture_output=True).returncode != 0:
            _run(["iptables", "-I", *rule])


def unblock_uplinks(fleet: str) -> int:
    """Delete every rule tagged with the fleet's name; returns how many there were."""
    rules = [shlex.split(line) for line in _run(["iptables", "-S", "FORWARD"]).splitlines()]
    ours = [rule for rule in rules if rule[:2] == ["-A", "FORWARD"] and _comment(fleet) in rule]
    for rule in ours:
        _run(["iptables", "-D", *rule[1:]])
    return len(ours)


def _run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout
