"""peapod-scheduler: binds unassigned pods to nodes that can run them.

Several may run; only the one holding the ``scheduler`` lease schedules
(``bus/election.py``), the others wait to take over.
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
from peapod.bus.supervise import supervise
from peapod.logging import configure_logging
from peapod.scheduler.binder import Scheduler
from peapod.scheduler.cache import ClusterCache

log = structlog.get_logger("scheduler")


async def run(creds: Credentials, *, stop: asyncio.Event, leader_elect: bool = True) -> None:
    """Schedule while this instance leads (``bus/election.py``); a standby only campaigns."""
    nc = await connect(creds, name="peapod-scheduler")
    log.info("scheduler_ready", url=creds.url, leader_elect=leader_elect)
    try:
        await lead_or_run(jetstream(nc), "scheduler", lambda halt: _schedule(nc, halt),
                          stop=stop, leader_elect=leader_elect)
    finally:
        await nc.drain()


async def _schedule(nc: NATS, halt: asyncio.Event) -> None:
    """The scheduler's work, from a fresh cache, until ``halt`` (stop, or leadership lost)."""
    cache = ClusterCache(jetstream(nc))
    events = EventRecorder(nc, component="default-scheduler", host=socket.gethostname())
    scheduler = Scheduler(nc=nc, cache=cache, events=events)
    await supervise({"watch": cache.informer.run, "leases": cache.watch_leases,
                     "schedule": scheduler.run}, stop=halt)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="peapod-scheduler")
    parser.add_argument("--creds", required=True,
                        help="NKEY credentials file (JSON: url, user, seed, ca_file)")
    add_leader_elect_flag(parser)
    args = parser.parse_args(argv)
    configure_logging(component="scheduler")
    asyncio.run(_main(Credentials.load(args.creds), args.leader_elect))


async def _main(creds: Credentials, leader_elect: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(creds, stop=stop, leader_elect=leader_elect)


if __name__ == "__main__":
    main()
