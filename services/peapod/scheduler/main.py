"""peapod-scheduler: binds unassigned pods to nodes that can run them."""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket

import structlog

from peapod.bus.client import connect, jetstream
from peapod.bus.events import EventRecorder
from peapod.bus.identity import Credentials
from peapod.bus.supervise import supervise
from peapod.logging import configure_logging
from peapod.scheduler.binder import Scheduler
from peapod.scheduler.cache import ClusterCache

log = structlog.get_logger("scheduler")


async def run(creds: Credentials, *, stop: asyncio.Event) -> None:
    nc = await connect(creds, name="peapod-scheduler")
    js = jetstream(nc)
    cache = ClusterCache(js)
    events = EventRecorder(nc, component="default-scheduler", host=socket.gethostname())
    scheduler = Scheduler(nc=nc, cache=cache, events=events)
    log.info("scheduler_ready", url=creds.url)
    try:
        await supervise({"watch": cache.informer.run, "leases": cache.watch_leases,
                         "schedule": scheduler.run}, stop=stop)
    finally:
        await nc.drain()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="peapod-scheduler")
    parser.add_argument("--creds", required=True,
                        help="NKEY credentials file (JSON: url, user, seed, ca_file)")
    args = parser.parse_args(argv)
    configure_logging(component="scheduler")
    asyncio.run(_main(Credentials.load(args.creds)))


async def _main(creds: Credentials) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(creds, stop=stop)


if __name__ == "__main__":
    main()
