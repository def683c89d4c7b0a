"""The fleet harness itself: simulated hosts boot, take SSH, reach podman, and leave nothing behind.

Needs root, podman's socket and ``localhost/peapod-host:bookworm``
(``images/host/build.sh``); skipped when the image is missing.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from peapod.kubelet.runtime import ensure_podman_service
from tests.fleet.hosts import (
    FLEET_LABEL,
    HOST_IMAGE,
    PODMAN_SOCKET,
    SimulatedFleet,
    remove_fleet,
    running_fleet,
)

pytestmark = pytest.mark.podman
BUSYBOX = "localhost/peapod-busybox:latest"


@pytest.fixture(scope="module")
def podman() -> Iterator[None]:
    """podman's socket, served for this module if nothing serves it; the host image must exist."""
    service = ensure_podman_service(PODMAN_SOCKET, containers_conf=os.environ.get("CONTAINERS_CONF"))
    missing = subprocess.run(["podman", "image", "exists", HOST_IMAGE]).returncode != 0
    try:
        if missing:
            pytest.skip(f"{HOST_IMAGE} is missing: run images/host/build.sh")
        yield
    finally:
        if service is not None:
            service.terminate()
            service.wait(10)


@pytest.fixture(scope="module")
def fleet(podman: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedFleet]:
    with running_fleet(f"hosts-test-{os.getpid()}", ["cp1", "node1"],
                       state_dir=tmp_path_factory.mktemp("fleet")) as fleet:
        yield fleet


def test_hosts_take_the_fleet_key_over_ssh(fleet: SimulatedFleet) -> None:
    for host in ("cp1", "node1"):
        assert fleet.ssh(host, "hostname").stdout.strip() == host


def test_systemd_boots_to_running_with_no_failed_unit(fleet: SimulatedFleet) -> None:
    for host in ("cp1", "node1"):
        state = fleet.ssh(host, "systemctl is-system-running", check=False).stdout.strip()
        assert state == "running", fleet.failed_units(host)


def test_each_host_has_its_own_identity(fleet: SimulatedFleet) -> None:
    identity = "cat /etc/machine-id /etc/ssh/ssh_host_ed25519_key.pub"
    cp1, node1 = (fleet.ssh(host, identity).stdout.splitlines() for host in ("cp1", "node1"))
    assert cp1[0] != node1[0]  # machine-id
    assert cp1[1] != node1[1]  # SSH host key


def test_hosts_know_each_other_by_name(fleet: SimulatedFleet) -> None:
    assert fleet.ssh("cp1", "getent hosts node1").stdout.split()[0] == fleet.ip("node1")


def test_host_reaches_the_machines_podman_socket(fleet: SimulatedFleet) -> None:
    ping = "curl -sS --unix-socket /run/host-podman.sock http://podman/_ping"
    assert fleet.ssh("node1", ping).stdout == "OK"


def test_shared_dir_is_one_directory_for_the_host_and_the_machine(fleet: SimulatedFleet) -> None:
    shared = fleet.shared_dir("node1")
    fleet.ssh("node1", f"echo from-node1 > {shared}/probe")
    assert (shared / "probe").read_text() == "from-node1\n"


def test_fleet_is_not_forwarded_out_of_the_machine(fleet: SimulatedFleet) -> None:
    subnet = str(ipaddress.ip_network(f"{fleet.ip('cp1')}/24", strict=False))
    rules = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True, check=True).stdout
    ours = [shlex.split(r) for r in rules.splitlines() if f"peapod-fleet={fleet.name}" in r]
    assert ours
    assert all(rule[rule.index("-s") + 1] == subnet and "REJECT" in rule for rule in ours)


def test_stopped_host_boots_again_at_the_same_address(fleet: SimulatedFleet) -> None:
    before = fleet.ip("node1")
    fleet.stop_host("node1")
    assert fleet.ssh("node1", "true", check=False, connect_timeout=1).returncode != 0
    assert fleet.start_host("node1") == before
    assert fleet.ssh("node1", "systemctl is-system-running").stdout.strip() == "running"


def test_removal_leaves_nothing_and_podman_still_runs_containers(podman: None, tmp_path: Path) -> None:
    name = f"hosts-rm-{os.getpid()}"
    with running_fleet(name, ["solo"], state_dir=tmp_path / "state") as fleet:
        assert fleet.ssh("solo", "true").returncode == 0
    # and once more by labels alone, as after a crash: nothing left to remove
    assert remove_fleet(name, state_dir=tmp_path / "state") == []
    label = f"label={FLEET_LABEL}={name}"
    for listing in (["ps", "-a"], ["network", "ls"], ["volume", "ls"]):
        found = subprocess.run(["podman", *listing, "-q", "--filter", label],
                               capture_output=True, text=True, check=True).stdout
        assert found == "", listing
    assert not (tmp_path / "state").exists()
    assert not fleet.shared_dir("solo").parent.exists()
    if subprocess.run(["podman", "image", "exists", BUSYBOX]).returncode == 0:
        # a host's systemd must not have damaged the machine's cgroups for later containers
        assert subprocess.run(["podman", "run", "--rm", BUSYBOX, "true"], timeout=60).returncode == 0
