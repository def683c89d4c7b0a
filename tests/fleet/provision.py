"""Provision a simulated fleet with the real playbooks, as an operator would.

``SimulatedFleet`` (hosts.py) gives Debian hosts that take SSH; this module
runs ``deploy/ansible/site.yml`` against them from this machine with the
operator's state in ``PEAPOD_HOME``, so the CLI then drives the fleet through
the context the ``operator`` role writes. The fleet test and ``make
fleet-up`` / ``make fleet-down`` share it.

What differs from real hardware, and why (inventory variables, nothing in
the roles):

- ``peapod_podman_socket``: each node's kubelet drives this machine's podman
  through its mounted socket (see hosts.py), so the nodes' pods run beside
  each other on this machine, told apart by each kubelet's id.
- ``peapod_kubelet_state_dir``: the kubelet's state (emptyDir volumes) lives
  in a directory this machine's podman sees at the same path.

Command line::

    python -m tests.fleet.provision up [--name fleet] [--nodes 3]   # leaves it running
    python -m tests.fleet.provision down [--name fleet]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from peapod.cli.context import Config
from tests.fleet.hosts import PODMAN_SOCKET, REPO, SimulatedFleet, remove_fleet

ANSIBLE_DIR = REPO / "deploy" / "ansible"
VENV_BIN = Path(sys.executable).parent
CONTROL = "cp1"
# inventory labels the tests select on
NODE_LABELS = {"n1": {"disk": "ssd"}, "n2": {"topology.kubernetes.io/zone": "garage"}}
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


# Debian's names of the emulated ARM hosts' architectures, and `make wheel`'s (ansible_architecture)
ARM_ARCHES = {"armhf": "armv7l", "arm64": "aarch64"}


def build_prerequisites(*, arm: bool = False) -> None:
    """The host image (cached) and the wheelhouse the playbook copies.

    ``arm``: also the ARM host images, 32-bit (armhf) and 64-bit (arm64), each
    registering its qemu with binfmt_misc (images/host/binfmt-arm.sh), and the
    armv7l and aarch64 wheelhouses.
    """
    build = str(REPO / "images" / "host" / "build.sh")
    subprocess.run([build], check=True)
    arches = [platform.machine()]
    for debian, machine in ARM_ARCHES.items() if arm else ():
        subprocess.run([build], check=True, env={**os.environ, "PEAPOD_HOST_ARCH": debian})
        arches.append(machine)
    subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "wheel",
                    f"WHEEL_ARCHES={' '.join(arches)}"], check=True)


class ProvisionedFleet:
    """A simulated fleet, its inventory, and the playbooks run against it."""

    def __init__(self, name: str, *, peapod_home: Path, nodes: Sequence[str],
                 nats: Sequence[str] = (CONTROL,), state_dir: Path | None = None) -> None:
        self.name = name
        self.nats = list(nats)
        self.peapod_home = peapod_home
        self.nodes = list(nodes)
        self.hosts = SimulatedFleet(name, state_dir=state_dir)
        self.inventory = self.hosts.state_dir / "inventory.yml"
        self.log_dir = self.hosts.state_dir / "ansible"
        self.extra_host_vars: dict[str, dict[str, Any]] = {}
        self.all_vars: dict[str, Any] = {}  # the inventory's `all` group (group_vars/all)

    @property
    def cli(self) -> str:
        return str(VENV_BIN / "peapod")

    def env(self) -> dict[str, str]:
        """The environment of the operator's commands: its PEAPOD_HOME, the venv first."""
        env = {k: v for k, v in os.environ.items() if k not in ("PEAPOD_CONTEXT", "PEAPOD_CONFIG")}
        env.update(PEAPOD_HOME=str(self.peapod_home), PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
                   ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_FORCE_COLOR="0",
                   # each task's time in the log: where a run's minutes go (an emulated host's)
                   ANSIBLE_CALLBACKS_ENABLED="ansible.posix.profile_tasks")
        return env

    def start(self, nodes: Sequence[str] | None = None) -> None:
        """Boot the control host and the nodes (or more nodes) and write the inventory."""
        if nodes is not None:
            self.nodes = list(dict.fromkeys([*self.nodes, *nodes]))
        self.hosts.start([CONTROL, *self.nodes])
        self.write_inventory()

    def write_inventory(self) -> Path:
        host_vars: dict[str, dict[str, Any]] = {}
        for host in [CONTROL, *self.nodes]:
            shared = self.hosts.shared_dir(host)
            host_vars[host] = {"peapod_podman_socket": "/run/host-podman.sock",
                               "peapod_kubelet_state_dir": str(shared / "kubelet")}
            if host in NODE_LABELS:
                host_vars[host]["peapod_node_labels"] = NODE_LABELS[host]
            host_vars[host].update(self.extra_host_vars.get(host, {}))
        groups = {"nats": self.nats, "control_plane": [CONTROL], "nodes": self.nodes}
        return self.hosts.write_inventory(self.inventory, groups, host_vars, self.all_vars)

    def playbook(self, playbook: str, *args: str, check: bool = True) -> dict[str, dict[str, int]]:
        """Run a playbook against the fleet; the recap per host. Output goes to a log file."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{time.strftime('%H%M%S')}-{playbook.removesuffix('.yml')}.log"
        with log.open("w") as out:
            result = subprocess.run(
                [str(VENV_BIN / "ansible-playbook"), "-i", str(self.inventory), playbook, *args],
                cwd=ANSIBLE_DIR, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        text = log.read_text()
        recap = {m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]),
                        "failed": int(m[5])} for m in RECAP.finditer(text)}
        if check and (result.returncode != 0 or not recap):
            tail = "\n".join(text.splitlines()[-60:])
            raise RuntimeError(f"ansible-playbook {playbook} {' '.join(args)} failed "
                               f"(rc {result.returncode}); log {log}:\n{tail}")
        return recap

    def peapod(self, *args: str, check: bool = True, timeout: float = 60,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        """The operator's CLI, through the context the playbook selected."""
        result = subprocess.run([self.cli, *args], env=self.env(), text=True,
                                capture_output=True, timeout=timeout, input=input,
                                stdin=None if input is not None else subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"peapod {' '.join(args)} failed ({result.returncode}): "
                                 f"{result.stdout}{result.stderr}")
        return result

    def remove(self) -> list[str]:
        """Remove the fleet, then the pods its kubelets left on this machine's podman.

        In that order: a kubelet that is still running would recreate its pods.
        """
        ids = {}
        for host in [CONTROL, *self.nodes]:
            id_file = self.hosts.shared_dir(host) / "kubelet" / "kubelet-id"
            if id_file.exists():
                ids[host] = id_file.read_text().strip()
        removed = remove_fleet(self.name, state_dir=self.hosts.state_dir)
        for host, kubelet_id in ids.items():
            label = f"label=io.peapod.kubelet.id={kubelet_id}"
            pods = subprocess.run(["podman", "pod", "ps", "-q", "--filter", label],
                                  capture_output=True, text=True).stdout.split()
            if pods:
                subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", *pods], capture_output=True)
                removed.extend(f"pod {p[:12]} ({host})" for p in pods)
        return removed


def default_peapod_home() -> Path:
    return Path(os.environ.get("PEAPOD_HOME") or Path.home() / ".peapod")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fleet.provision",
                                     description="A simulated peapod fleet, provisioned with Ansible.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="boot the hosts, run site.yml, select the fleet's context")
    down = sub.add_parser("down", help="remove every container, network, pod and file of the fleet")
    for command in (up, down):
        command.add_argument("--name", default="fleet")
    up.add_argument("--nodes", type=int, default=3)
    up.add_argument("--ha", action="store_true",
                    help="three NATS servers (cp1, n1, n2) with R3 streams instead of one on cp1")
    args = parser.parse_args(argv)
    from peapod.kubelet.runtime import ensure_podman_service

    # the nodes' kubelets use this machine's podman socket: a service started
    # here outlives this command, as the fleet does
    os.environ.setdefault("CONTAINERS_CONF", str(REPO / "deploy" / "podman" / "containers.conf"))
    ensure_podman_service(PODMAN_SOCKET, containers_conf=os.environ["CONTAINERS_CONF"])
    home = default_peapod_home()
    nodes = [f"n{i}" for i in range(1, getattr(args, "nodes", 0) + 1)]
    fleet = ProvisionedFleet(args.name, peapod_home=home, nodes=nodes,
                             nats=[CONTROL, *nodes[:2]] if getattr(args, "ha", False) else [CONTROL])
    if args.command == "down":
        fleet.nodes = sorted(h for h in fleet.hosts.hosts() if h != CONTROL)
        for line in fleet.remove():
            print(f"removed {line}")
        config = Config.load(home / "config")
        for section, entry in (("contexts", args.name), ("clusters", args.name),
                               ("users", f"{args.name}-admin")):
            if config.delete_entry(section, entry):
                print(f"removed {section[:-1]} {entry} from {config.path}")
        if config.current_context == args.name:  # back to the local cluster, if there is one
            config.doc["current-context"] = "local" if config.entry("contexts", "local") else None
        if config.path.exists():
            config.save()
        for directory in (home / "clusters" / args.name, fleet.hosts.state_dir):
            if directory.exists():
                shutil.rmtree(directory)
                print(f"removed {directory}")
        for parent in (home / "clusters", home / "fleet"):
            with contextlib.suppress(OSError):
                parent.rmdir()  # only if empty
        return 0
    started = time.monotonic()
    build_prerequisites()
    fleet.start()
    fleet.playbook("site.yml")
    print(fleet.peapod("get", "nodes", "-o", "wide").stdout, end="")
    print(f"fleet {args.name!r} is up in {time.monotonic() - started:.0f}s and is the current context "
          f"in {home / 'config'}; `make fleet-down` removes it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
