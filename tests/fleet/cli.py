"""``python -m tests.fleet.hosts up|down|ssh``: simulated fleets that outlive the command.

``up`` leaves the hosts running and writes ``inventory.yml`` beside the
fleet's key in the state directory, for ``ansible-playbook -i``; ``down``
removes everything the fleet made, found by its labels, so it also cleans up
after a crashed run. Both start podman's socket service if nothing serves it
(it keeps running afterwards: every host has the socket mounted).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path

from tests.fleet.hosts import PODMAN_SOCKET, REPO, SimulatedFleet, remove_fleet


def parse_groups(values: Sequence[str]) -> dict[str, list[str]]:
    """``["cp=cp1", "nodes=node1,node2"]`` to ``{"cp": ["cp1"], "nodes": ["node1", "node2"]}``."""
    groups = {}
    for value in values:
        group, _, members = value.partition("=")
        groups[group] = [m for m in members.split(",") if m]
    return groups


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.fleet.hosts",
                                     description="Simulated fleet hosts for the fleet test.")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the hosts (create them if needed) and leave them running")
    down = commands.add_parser("down", help="remove every container, network and rule of the fleet")
    ssh = commands.add_parser("ssh", help="ssh to a host as root with the fleet's key")
    for command in (up, down, ssh):
        command.add_argument("--name", required=True, help="fleet name, e.g. fleet")
        command.add_argument("--state-dir", type=Path, help="default $PEAPOD_HOME/fleet/NAME")
    up.add_argument("--group", action="append", default=[], metavar="GROUP=HOST,HOST",
                    help="an inventory group; repeat for more")
    up.add_argument("--allow-degraded", action="store_true",
                    help="accept hosts whose systemd boots degraded")
    up.add_argument("hosts", nargs="+")
    ssh.add_argument("host")
    ssh.add_argument("remote", nargs=argparse.REMAINDER, help="command to run instead of a shell")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from peapod.kubelet.runtime import ensure_podman_service

    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "deploy" / "podman" / "containers.conf"))
    ensure_podman_service(PODMAN_SOCKET, containers_conf=os.environ["CONTAINERS_CONF"])
    if args.command == "down":
        for line in remove_fleet(args.name, state_dir=args.state_dir):
            print(f"removed {line}")
        return 0
    if args.command == "ssh":
        argv_ssh = SimulatedFleet(args.name, state_dir=args.state_dir).ssh_command(args.host, *args.remote)
        os.execvp(argv_ssh[0], argv_ssh)
    fleet = SimulatedFleet(args.name, state_dir=args.state_dir, allow_degraded=args.allow_degraded)
    started = time.monotonic()
    fleet.start(args.hosts)
    inventory = fleet.write_inventory(fleet.state_dir / "inventory.yml", parse_groups(args.group))
    for host, ip in sorted(fleet.hosts().items()):
        print(f"{host:<12} {ip}")
    print(f"ready in {time.monotonic() - started:.1f}s; inventory {inventory}; key {fleet.key_path}")
    return 0
