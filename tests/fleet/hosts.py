"""Simulated fleet hosts: privileged podman containers that boot systemd and sshd.

The fleet test runs the real Ansible roles over real SSH, so each host must
look like a small Debian machine: systemd as PID 1, sshd taking the fleet's
key for root, a machine-id and SSH host keys of its own, a stable address.
A container from ``localhost/peapod-host:bookworm`` (``images/host/build.sh``)
gives that in about a second and a few tens of MB; a VM would need nested
virtualisation this machine does not have.

- systemd mode. podman turns it on by itself when the command is
  ``/sbin/init``, also through the Docker-compatible API that testcontainers
  speaks: tmpfs on /run, /run/lock and /tmp, ``container=podman``, a
  ``container_uuid`` that becomes the machine-id, and the container's own
  subtree of the name=systemd cgroup hierarchy. The image's STOPSIGNAL
  (SIGRTMIN+3) makes ``stop`` a clean shutdown. The machine's
  ``/sys/fs/cgroup`` is never bind-mounted: a systemd inside would take the
  machine's hierarchy over and every later pod on the machine would break.
- The host's kubelet drives the *machine's* podman through its socket, whose
  directory is mounted at /run/host-podman (the image links
  /run/host-podman.sock to it), rather than a podman nested in the host:
  nested podman needs storage of its own (overlay on overlay), a second image
  store to fill offline, and cgroup delegation that v1 cannot give. Pods on
  the machine's podman are what a real node runs; only the node is simulated.
- Paths cross that socket as they are: the kubelet hands podman its own
  paths (emptyDir volumes under its state directory), which podman resolves
  on the machine. So each host gets a directory that both see at the same
  path, ``/var/lib/peapod-fleet/<fleet>/<host>`` (``shared_dir``, inventory
  variable ``fleet_shared_dir``), for the kubelet's state directory. hostPath
  volumes name the machine's paths, shared by all hosts: a limit of the
  simulation.
- Static addresses, the network and the offline rule: see ``network.py``.
- Every container and network carries ``io.peapod.fleet=<name>``, so
  ``remove_fleet`` (the CLI's ``down``) finds all of it from the labels alone,
  even after a crash. Pods that kubelets inside the hosts create on the
  machine's podman are not ours: they carry ``io.peapod.kubelet.id``.

Command line: ``python -m tests.fleet.hosts up|down|ssh`` (``cli.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tests.fleet import inventory, network

if TYPE_CHECKING:
    from testcontainers.core.network import Network

REPO = Path(__file__).resolve().parents[2]
HOST_IMAGE = "localhost/peapod-host:bookworm"
# 32-bit ARM, as a Raspberry Pi on 32-bit Raspberry Pi OS: PEAPOD_HOST_ARCH=armhf images/host/build.sh
ARMHF_IMAGE = "localhost/peapod-host:bookworm-armhf"
# 64-bit ARM, as a Pi 4 or 5 on 64-bit Raspberry Pi OS: PEAPOD_HOST_ARCH=arm64 images/host/build.sh
ARM64_IMAGE = "localhost/peapod-host:bookworm-arm64"
PODMAN_SOCKET = os.environ.get("PEAPOD_PODMAN_SOCKET", "/run/podman/podman.sock")
HOST_PODMAN_DIR = "/run/host-podman"
SHARED_ROOT = Path("/var/lib/peapod-fleet")
FLEET_LABEL = "io.peapod.fleet"
HOST_LABEL = "io.peapod.fleet.host"
IP_LABEL = "io.peapod.fleet.ip"
STATE_MARKER = ".peapod-fleet"
SSH_OPTIONS = ("-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "BatchMode=yes")
NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")


class FleetError(RuntimeError):
    """A simulated host did not come up, or the fleet was asked for something it lacks."""


def default_state_dir(fleet: str) -> Path:
    """``$PEAPOD_HOME/fleet/<fleet>``, ``~/.peapod/fleet/<fleet>`` by default."""
    home = Path(os.environ.get("PEAPOD_HOME", Path.home() / ".peapod"))
    return home / "fleet" / fleet


def _docker(podman_socket: str) -> Any:
    """testcontainers' client wrapper, on podman's socket.

    testcontainers reads DOCKER_HOST and the Ryuk switch when a client is made,
    so they are set first, as tests/integration/conftest.py does; Ryuk (its
    reaper container) cannot be pulled here, and cleanup goes by labels anyway.
    """
    os.environ.setdefault("DOCKER_HOST", f"unix://{podman_socket}")
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    from testcontainers.core.docker_client import DockerClient

    return DockerClient()


def _check_name(kind: str, name: str) -> str:
    if not NAME.match(name):
        raise FleetError(f"{kind} name {name!r} must be lower-case letters, digits and dashes")
    return name


class SimulatedFleet:
    """Hosts of one fleet, by name; a context manager that removes them all on exit.

    ``start`` creates hosts or starts stopped ones and returns once every one
    answers ``ssh root@IP true`` with the fleet's key, which is made in
    ``state_dir`` (``id_ed25519``) on first use. A host whose systemd boots
    ``degraded`` is an error naming its failed units, unless ``allow_degraded``.
    """

    def __init__(self, name: str, *, state_dir: Path | None = None, image: str = HOST_IMAGE,
                 podman_socket: str = PODMAN_SOCKET, boot_timeout: float = 120.0,
                 allow_degraded: bool = False, offline: bool = True) -> None:
        self.name = _check_name("fleet", name)
        self.state_dir = (state_dir or default_state_dir(name)).expanduser().resolve()
        self.image = image
        self.podman_socket = podman_socket
        self.boot_timeout = boot_timeout
        self.allow_degraded = allow_degraded
        self.offline = offline
        self._testcontainers = _docker(podman_socket)
        self._client = self._testcontainers.client

    # --- the fleet -------------------------------------------------------------

    @property
    def network_name(self) -> str:
        return f"{self.name}-net"

    @property
    def key_path(self) -> Path:
        """The fleet's private key; the public half is in every host's authorized_keys."""
        return self.state_dir / "id_ed25519"

    def container_name(self, host: str) -> str:
        return f"{self.name}-{host}"

    def shared_dir(self, host: str) -> Path:
        """The host's directory that the machine's podman sees at the same path."""
        return SHARED_ROOT / self.name / host

    def hosts(self) -> dict[str, str]:
        """Every host of the fleet, running or stopped, with its address, by name."""
        return {c.labels[HOST_LABEL]: c.labels[IP_LABEL] for c in self._containers()}

    def ip(self, host: str) -> str:
        try:
            return self.hosts()[host]
        except KeyError:
            raise FleetError(f"fleet {self.name!r} has no host {host!r}") from None

    def start(self, names: Iterable[str], *, images: Mapping[str, str] | None = None) -> dict[str, str]:
        """Create or start the named hosts, wait until each takes SSH; their addresses.

        Hosts made now boot the fleet's image, or the one ``images`` gives for
        them, e.g. ``{"n4": ARMHF_IMAGE, "n5": ARM64_IMAGE}``.
        """
        names = [_check_name("host", n) for n in names]
        self._ensure_key()
        bridge, subnet = self._ensure_network()
        existing = {c.labels[HOST_LABEL]: c for c in self._containers()}
        addresses = {host: c.labels[IP_LABEL] for host, c in existing.items()}
        for host in names:
            if host not in addresses:
                addresses[host] = network.next_free_address(subnet, addresses.values())

        def bring_up(host: str) -> None:
            if host not in existing:
                self._create_host(host, bridge, addresses, (images or {}).get(host, self.image))
            elif existing[host].status != "running":
                existing[host].start()
            self._wait_until_ready(host)

        # Hosts boot in parallel, as a fleet powered on together does.
        with ThreadPoolExecutor(max_workers=8) as pool:
            for outcome in [pool.submit(bring_up, host) for host in names]:
                outcome.result()
        return {host: addresses[host] for host in names}

    def add_host(self, name: str) -> str:
        """One more host (or a stopped one started again); its address."""
        return self.start([name])[name]

    def stop_host(self, name: str) -> None:
        """Shut the host down as a machine is powered off; its filesystem stays."""
        self._container(name).stop(timeout=30)

    def kill_host(self, name: str) -> None:
        """Cut the host's power: SIGKILL to everything in it, no shutdown; its filesystem stays."""
        self._container(name).kill()

    def start_host(self, name: str) -> str:
        """Boot a stopped host again, at the same address; returns once it takes SSH."""
        container = self._container(name)
        container.start()
        self._wait_until_ready(name)
        return str(container.labels[IP_LABEL])

    def remove(self) -> list[str]:
        """Remove every container, network, volume and rule of the fleet, and its state."""
        return remove_fleet(self.name, state_dir=self.state_dir, podman_socket=self.podman_socket)

    def __enter__(self) -> SimulatedFleet:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.remove()

    # --- talking to hosts ---------------------------------------------------------

    def ssh_command(self, host: str, *command: str, connect_timeout: int = 5) -> list[str]:
        """The argv of ``ssh`` to the host as root with the fleet's key."""
        return ["ssh", "-i", str(self.key_path), *SSH_OPTIONS, "-o", f"ConnectTimeout={connect_timeout}",
                f"root@{self.ip(host)}", *command]

    def ssh(self, host: str, command: str, *, check: bool = True, timeout: float = 60,
            connect_timeout: int = 5) -> subprocess.CompletedProcess[str]:
        """Run a shell command on the host over real SSH."""
        return subprocess.run(self.ssh_command(host, command, connect_timeout=connect_timeout),
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, check=check,
                              timeout=timeout)

    def exec_in(self, host: str, *argv: str) -> tuple[int, str]:
        """Run a command through podman, not SSH: works before sshd does."""
        result = self._container(host).exec_run(list(argv))
        return int(result.exit_code), result.output.decode(errors="replace")

    def system_state(self, host: str) -> str:
        """What ``systemctl is-system-running`` says in the host."""
        return self.exec_in(host, "systemctl", "is-system-running")[1].strip()

    def failed_units(self, host: str) -> list[str]:
        output = self.exec_in(host, "systemctl", "--failed", "--no-legend", "--plain")[1]
        return [line.split()[0] for line in output.splitlines() if line.strip()]

    def write_inventory(self, path: Path, groups: Mapping[str, Sequence[str]] | None = None,
                        extra_host_vars: Mapping[str, Mapping[str, Any]] | None = None,
                        all_vars: Mapping[str, Any] | None = None) -> Path:
        """Write an Ansible YAML inventory of every host of the fleet, with these groups.

        Each host has ``fleet_shared_dir`` (see ``shared_dir``); ``extra_host_vars``
        maps a host's name to more variables of that host.
        """
        addresses = self.hosts()
        host_vars = {host: {"fleet_shared_dir": str(self.shared_dir(host))} for host in addresses}
        for host, variables in (extra_host_vars or {}).items():
            host_vars.setdefault(host, {}).update(variables)
        try:
            content = inventory.ansible_inventory(addresses, key_path=self.key_path, groups=groups,
                                                  host_vars=host_vars, all_vars=all_vars)
        except ValueError as error:
            raise FleetError(f"fleet {self.name!r}: {error}") from None
        return inventory.write_inventory(path, content)

    # --- internals ---------------------------------------------------------------

    def _containers(self) -> list[Any]:
        return list(self._client.containers.list(all=True, filters={"label": f"{FLEET_LABEL}={self.name}"}))

    def _container(self, host: str) -> Any:
        for container in self._containers():
            if container.labels.get(HOST_LABEL) == host:
                return container
        raise FleetError(f"fleet {self.name!r} has no host {host!r}")

    def _ensure_key(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        (self.state_dir / STATE_MARKER).write_text(f"{self.name}\n")
        if not self.key_path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"peapod-fleet-{self.name}",
                            "-f", str(self.key_path)], check=True)

    def _ensure_network(self) -> tuple[Network, network.Subnet]:
        """The fleet's bridge, made on first use, as testcontainers knows networks; its subnet."""
        from docker.types import IPAMConfig, IPAMPool
        from testcontainers.core.network import Network

        found = self._client.networks.list(names=[self.network_name])
        if found:
            subnet = network.Subnet(found[0].attrs["IPAM"]["Config"][0]["Subnet"])
        else:
            subnet = network.choose_subnet(self.name, self._podman_subnets())
        ipam = IPAMConfig(pool_configs=[IPAMPool(subnet=str(subnet), gateway=str(network.gateway(subnet)))])
        bridge = Network(docker_network_kw={"driver": "bridge", "ipam": ipam,
                                            "labels": {FLEET_LABEL: self.name}})
        bridge.name = self.network_name  # testcontainers names a network with a uuid; we find ours by name
        if not found:
            bridge.create()
        if self.offline:
            network.block_uplinks(self.name, subnet)
        return bridge, subnet

    def _podman_subnets(self) -> list[network.Subnet]:
        """The IPv4 subnets of every podman network on this machine."""
        return [network.Subnet(config["Subnet"]) for existing in self._client.networks.list()
                for config in (existing.attrs.get("IPAM") or {}).get("Config") or []
                if "." in config.get("Subnet", "")]

    def _create_host(self, host: str, bridge: Network, addresses: Mapping[str, str], image: str) -> None:
        """Create and start one host; the fleet's public key goes in before it boots."""
        from docker.errors import ImageNotFound
        from docker.types import EndpointConfig
        from testcontainers.core.container import DockerContainer

        public_key = self.key_path.with_suffix(".pub").read_bytes()
        shared = self.shared_dir(host)
        shared.mkdir(parents=True, exist_ok=True, mode=0o700)
        container = DockerContainer(
            image,
            name=self.container_name(host),
            volumes=[(str(Path(self.podman_socket).parent), HOST_PODMAN_DIR, "rw"),
                     (str(shared), str(shared), "rw")],
            hostname=host,
            privileged=True,
            labels={FLEET_LABEL: self.name, HOST_LABEL: host, IP_LABEL: addresses[host]},
            network=bridge,
            # overrides the networking_config testcontainers derives from `network`
            networking_config={self.network_name: EndpointConfig(
                self._client.api.api_version, ipv4_address=addresses[host],
                mac_address=network.mac_address(addresses[host]))},
            # /etc/hosts: the hosts known now; a host added later is known by its address.
            extra_hosts={other: ip for other, ip in addresses.items() if other != host},
        ).with_copy_into_container(public_key, "/root/.ssh/authorized_keys", 0o600)
        try:
            container.start()
        except ImageNotFound as error:
            raise FleetError(f"{image} is missing: run images/host/build.sh") from error

    def _boot_state(self, host: str) -> str:
        """``systemctl is-system-running``, or why it cannot answer yet; raises if the host died."""
        from docker.errors import APIError

        container = self._container(host)
        if container.status not in ("created", "running"):
            logs = container.logs(tail=20).decode(errors="replace")
            raise FleetError(f"{host}: container {container.status} while booting:\n{logs}")
        try:
            return self.system_state(host)
        except APIError as error:
            return f"not answering ({error.explanation})"

    def _wait_until_ready(self, host: str) -> None:
        """Until systemd has booted and sshd takes the fleet's key, or ``boot_timeout``."""
        deadline = time.monotonic() + self.boot_timeout
        state = ""
        while state not in ("running", "degraded"):
            if time.monotonic() > deadline:
                raise FleetError(f"{host}: systemd still {state or 'not answering'} after "
                                 f"{self.boot_timeout:.0f}s; `podman logs {self.container_name(host)}`")
            time.sleep(0.2)
            state = self._boot_state(host)
        if state == "degraded" and not self.allow_degraded:
            raise FleetError(f"{host}: systemd is degraded, failed units: {self.failed_units(host)}")
        probe = self.ssh_command(host, "true", connect_timeout=2)
        while subprocess.run(probe, capture_output=True, stdin=subprocess.DEVNULL).returncode != 0:
            if time.monotonic() > deadline:
                raise FleetError(f"{host}: ssh {probe[-2]} refused after {self.boot_timeout:.0f}s")
            time.sleep(0.2)


def remove_fleet(name: str, *, state_dir: Path | None = None,
                 podman_socket: str = PODMAN_SOCKET) -> list[str]:
    """Remove everything labelled as the fleet's, its firewall rule, shared and state directories.

    Works from labels alone, so also after a crash. The state directory goes
    only if it holds the marker ``start`` wrote: a mistyped ``--state-dir`` is
    left alone. Returns what was removed.
    """
    client = _docker(podman_socket).client
    selector = {"label": f"{FLEET_LABEL}={name}"}
    removed = []
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True, v=True)
        removed.append(f"container {container.name}")
    for net in client.networks.list(filters=selector):
        net.remove()
        removed.append(f"network {net.name}")
    for volume in client.volumes.list(filters=selector):
        volume.remove(force=True)
        removed.append(f"volume {volume.name}")
    if network.unblock_uplinks(name):
        removed.append(f"iptables rules peapod-fleet={name}")
    if (SHARED_ROOT / name).exists():
        shutil.rmtree(SHARED_ROOT / name)
        removed.append(f"shared {SHARED_ROOT / name}")
        with contextlib.suppress(OSError):  # only when no other fleet has a directory there
            SHARED_ROOT.rmdir()
    state_dir = (state_dir or default_state_dir(name)).expanduser()
    if (state_dir / STATE_MARKER).exists():
        shutil.rmtree(state_dir)
        removed.append(f"state {state_dir}")
    return removed


@contextlib.contextmanager
def running_fleet(name: str, hosts: Iterable[str], **options: Any) -> Iterator[SimulatedFleet]:
    """A fleet with these hosts up and taking SSH, removed on exit whatever happened."""
    with SimulatedFleet(name, **options) as fleet:
        fleet.start(hosts)
        yield fleet


if __name__ == "__main__":
    from tests.fleet.cli import main

    sys.exit(main())
