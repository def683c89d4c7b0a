"""peapod-controller-manager: the workload controllers and the garbage collector.

``--controllers`` chooses among them as kube-controller-manager's flag does.

One process, one NATS user (``controller-manager``, see ``bus/auth.py``):
it reads the KV bucket through one informer and writes only through the
apiserver's verbs. Each controller runs as a supervised task with its own
work queue; the informer runs beside them and resumes after a reconnect.
Several may run; only the one holding the ``controller-manager`` lease runs
the controllers (``bus/election.py``), the others wait to take over.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from collections.abc import Awaitable, Callable

import structlog
from nats.aio.client import Client as NATS

from peapod.bus.client import connect, jetstream
from peapod.bus.election import add_leader_elect_flag, lead_or_run
from peapod.bus.events import EventRecorder
from peapod.bus.identity import Credentials
from peapod.bus.leases import Leases
from peapod.bus.supervise import supervise
from peapod.controllers.apiclient import ApiClient
from peapod.controllers.cache import ControllerCache
from peapod.controllers.cronjob import CronJobController
from peapod.controllers.daemonset import DaemonSetController
from peapod.controllers.deployment import DeploymentController
from peapod.controllers.garbage import GarbageCollector
from peapod.controllers.job import JobController
from peapod.controllers.nodelifecycle import DEFAULT_EVICTION_SECONDS, NodeLifecycleController
from peapod.controllers.replicaset import ReplicaSetController
from peapod.controllers.volumes import VolumeController
from peapod.logging import configure_logging

log = structlog.get_logger("controller-manager")

USER = "controller-manager"


CONTROLLERS = ("replicaset", "deployment", "daemonset", "job", "cronjob", "nodelifecycle",
               "garbagecollector", "persistentvolume-binder")  # Kubernetes' names for them


def enabled_controllers(spec: str) -> set[str]:
    """kube-controller-manager's ``--controllers``: ``*`` is every controller, ``foo`` enables
    one, ``-foo`` disables one (``*,-cronjob``)."""
    items = [i.strip() for i in spec.split(",") if i.strip()]
    for item in items:
        if item != "*" and item.removeprefix("-") not in CONTROLLERS:
            raise ValueError(f'"{item.removeprefix("-")}" is not in the list of known controllers')
    chosen = set(CONTROLLERS) if "*" in items else set()
    chosen |= {i for i in items if i != "*" and not i.startswith("-")}
    return chosen - {i[1:] for i in items if i.startswith("-")}


async def run(creds: Credentials, *, stop: asyncio.Event,
              eviction_seconds: float = DEFAULT_EVICTION_SECONDS, leader_elect: bool = True,
              controllers: set[str] | None = None) -> None:
    """Run the controllers while this instance leads (``bus/election.py``)."""
    nc = await connect(creds, name="peapod-controller-manager")
    chosen = set(CONTROLLERS) if controllers is None else controllers
    log.info("controller_manager_ready", url=creds.url, leader_elect=leader_elect,
             controllers=sorted(chosen))
    try:
        await lead_or_run(jetstream(nc), USER,
                          lambda halt: _control(nc, halt, eviction_seconds, chosen),
                          stop=stop, leader_elect=leader_elect)
    finally:
        await nc.drain()


async def _control(nc: NATS, halt: asyncio.Event, eviction_seconds: float,
                   chosen: set[str]) -> None:
    """The chosen controllers, from a fresh cache, until ``halt`` (stop, or leadership lost)."""
    cache = ControllerCache(jetstream(nc))
    api = ApiClient(nc)
    host = socket.gethostname()

    def recorder(name: str) -> EventRecorder:
        return EventRecorder(nc, component=f"{name}-controller", host=host)

    tasks: dict[str, Callable[[], Awaitable[None]]] = {"watch": cache.informer.run}
    makers: dict[str, Callable[[], Callable[[], Awaitable[None]]]] = {
        "replicaset": lambda: ReplicaSetController(
            cache=cache, api=api, events=recorder("replicaset")).run,
        "deployment": lambda: DeploymentController(
            cache=cache, api=api, events=recorder("deployment")).run,
        "daemonset": lambda: DaemonSetController(
            cache=cache, api=api, events=recorder("daemonset")).run,
        "job": lambda: JobController(cache=cache, api=api, events=recorder("job")).run,
        "cronjob": lambda: CronJobController(cache=cache, api=api, events=recorder("cronjob")).run,
        "garbagecollector": lambda: GarbageCollector(cache=cache, api=api).run,
    }
    for name, make in makers.items():
        if name in chosen:
            tasks[name] = make()
    if "persistentvolume-binder" in chosen:
        binder = VolumeController(js=jetstream(nc), api=api,
                                  events=recorder("persistentvolume"))
        tasks["volumes-watch"] = binder.informer.run
        tasks["persistentvolume-binder"] = binder.run
    if "nodelifecycle" in chosen:
        leases = Leases()
        nodes = NodeLifecycleController(
            cache=cache, api=api, leases=leases, eviction_seconds=eviction_seconds,
            events=EventRecorder(nc, component="node-controller", host=host))
        tasks["nodelifecycle"] = nodes.run
        tasks["leases"] = lambda: leases.watch(jetstream(nc), on_alive=nodes.lease_changed,
                                               on_gone=nodes.lease_changed)
    await supervise(tasks, stop=halt)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="peapod-controller-manager")
    parser.add_argument("--creds", required=True,
                        help="NKEY credentials file (JSON: url, user, seed, ca_file)")
    parser.add_argument("--pod-eviction-timeout", type=float, default=DEFAULT_EVICTION_SECONDS,
                        help="seconds a node may be unreachable before its pods are deleted "
                        "(default 300, Kubernetes' DefaultTolerationSeconds)")
    parser.add_argument("--controllers", default="*",
                        help="controllers to run: '*' is all, 'foo' enables foo, '-foo' "
                        f"disables it (e.g. '*,-cronjob'); known: {', '.join(CONTROLLERS)}")
    add_leader_elect_flag(parser)
    args = parser.parse_args(argv)
    try:
        chosen = enabled_controllers(args.controllers)
    except ValueError as exc:
        parser.error(str(exc))
    configure_logging(component="controller-manager")
    asyncio.run(_main(Credentials.load(args.creds), args.pod_eviction_timeout, args.leader_elect,
                      chosen))


async def _main(creds: Credentials, eviction_seconds: float, leader_elect: bool,
                chosen: set[str]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(creds, stop=stop, eviction_seconds=eviction_seconds, leader_elect=leader_elect,
              controllers=chosen)


if __name__ == "__main__":
    main()
