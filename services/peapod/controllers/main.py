"""peapod-controller-manager: the workload controllers and the garbage collector.

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
from peapod.controllers.daemonset import DaemonSetController
from peapod.controllers.deployment import DeploymentController
from peapod.controllers.garbage import GarbageCollector
from peapod.controllers.job import JobController
from peapod.controllers.nodelifecycle import DEFAULT_EVICTION_SECONDS, NodeLifecycleController
from peapod.controllers.replicaset import ReplicaSetController
from peapod.logging import configure_logging

log = structlog.get_logger("controller-manager")

USER = "controller-manager"


async def run(creds: Credentials, *, stop: asyncio.Event,
              eviction_seconds: float = DEFAULT_EVICTION_SECONDS, leader_elect: bool = True) -> None:
    """Run the controllers while this instance leads (``bus/election.py``)."""
    nc = await connect(creds, name="peapod-controller-manager")
    log.info("controller_manager_ready", url=creds.url, leader_elect=leader_elect)
    try:
        await lead_or_run(jetstream(nc), USER,
                          lambda halt: _control(nc, halt, eviction_seconds),
                          stop=stop, leader_elect=leader_elect)
    finally:
        await nc.drain()


async def _control(nc: NATS, halt: asyncio.Event, eviction_seconds: float) -> None:
    """Every controller, from a fresh cache, until ``halt`` (stop, or leadership lost)."""
    cache = ControllerCache(jetstream(nc))
    api = ApiClient(nc)
    host = socket.gethostname()
    replicasets = ReplicaSetController(
        cache=cache, api=api, events=EventRecorder(nc, component="replicaset-controller", host=host))
    deployments = DeploymentController(
        cache=cache, api=api, events=EventRecorder(nc, component="deployment-controller", host=host))
    daemonsets = DaemonSetController(
        cache=cache, api=api, events=EventRecorder(nc, component="daemonset-controller", host=host))
    jobs = JobController(
        cache=cache, api=api, events=EventRecorder(nc, component="job-controller", host=host))
    leases = Leases()
    nodes = NodeLifecycleController(
        cache=cache, api=api, leases=leases, eviction_seconds=eviction_seconds,
        events=EventRecorder(nc, component="node-controller", host=host))
    collector = GarbageCollector(cache=cache, api=api)
    await supervise({"watch": cache.informer.run, "replicaset": replicasets.run,
                     "deployment": deployments.run, "daemonset": daemonsets.run,
                     "job": jobs.run, "nodelifecycle": nodes.run,
                     "leases": lambda: leases.watch(jetstream(nc), on_alive=nodes.lease_changed,
                                                    on_gone=nodes.lease_changed),
                     "garbagecollector": collector.run},
                    stop=halt)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="peapod-controller-manager")
    parser.add_argument("--creds", required=True,
                        help="NKEY credentials file (JSON: url, user, seed, ca_file)")
    parser.add_argument("--pod-eviction-timeout", type=float, default=DEFAULT_EVICTION_SECONDS,
                        help="seconds a node may be unreachable before its pods are deleted "
                        "(default 300, Kubernetes' DefaultTolerationSeconds)")
    add_leader_elect_flag(parser)
    args = parser.parse_args(argv)
    configure_logging(component="controller-manager")
    asyncio.run(_main(Credentials.load(args.creds), args.pod_eviction_timeout, args.leader_elect))


async def _main(creds: Credentials, eviction_seconds: float, leader_elect: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(creds, stop=stop, eviction_seconds=eviction_seconds, leader_elect=leader_elect)


if __name__ == "__main__":
    main()
