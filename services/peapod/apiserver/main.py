"""peapod-apiserver: validates, admits and commits every write; fans changes out.

Replicas are stateless: they share the request queue group and the fan-out
cursor, so more replicas mean more throughput and no extra coordination.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import structlog
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from peapod.api.podsecurity import DEFAULT_POLICY, Policy, parse_policy
from peapod.apiserver.fanout import run_fanout
from peapod.apiserver.handlers import Api
from peapod.apiserver.store import Store, ensure_jetstream
from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream, serve
from peapod.bus.identity import Credentials
from peapod.bus.leases import Leases
from peapod.bus.supervise import supervise
from peapod.logging import configure_logging

log = structlog.get_logger("apiserver")


async def run(creds: Credentials, *, stop: asyncio.Event, replicas: int = 1,
              pod_security: Policy = DEFAULT_POLICY) -> None:
    nc = await connect(creds, name="peapod-apiserver")
    js = jetstream(nc)
    await ensure_jetstream(js, replicas=replicas)
    store = Store(js)
    for key in await store.rekey_legacy():
        log.info("legacy_key_moved", key=key)
    leases = Leases()
    api = Api(store, leases=leases, pod_security=pod_security)
    await api.namespaces.ensure_initial()
    await api.priority_classes.ensure_system_classes()
    for subject, handler in api.routes().items():
        await serve(nc, subject, handler, queue=s.API_QUEUE)
    log.info("apiserver_ready", url=creds.url)
    try:
        await supervise({"fanout": lambda: run_fanout(js, stop=stop),
                         "streams": lambda: keep_streams(js, replicas=replicas),
                         "leases": lambda: leases.watch(js),
                         "namespaces": api.namespaces.run,
                         "priorityclasses": api.priority_classes.run}, stop=stop)
    finally:
        await nc.drain()


STREAM_CHECK_PERIOD = 10.0


async def keep_streams(js: JetStreamContext, *, replicas: int,
                       period: float = STREAM_CHECK_PERIOD) -> None:
    """Recreate the streams when one is gone.

    The lease bucket lives in memory (heartbeats never wear a disk), so a
    single nats-server that restarts comes back without it, and every node
    would read NotReady until an apiserver started again. Checked every
    ``period`` seconds; the file-backed streams survive a restart and are
    only created if someone removed them.
    """
    while True:
        await asyncio.sleep(period)
        try:
            await js.stream_info(s.LEASE_STREAM)
        except NotFoundError:
            log.warning("stream_missing", stream=s.LEASE_STREAM)
            await ensure_jetstream(js, replicas=replicas)
            log.info("streams_recreated")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="peapod-apiserver")
    parser.add_argument("--creds", required=True,
                        help="NKEY credentials file (JSON: url, user, seed, ca_file)")
    parser.add_argument("--replicas", type=int, default=1, help="JetStream replicas for streams")
    parser.add_argument("--pod-security", type=_policy, default=DEFAULT_POLICY,
                        metavar="LEVEL[:VERSION]",
                        help="Pod Security level of namespaces without the label "
                             "pod-security.kubernetes.io/enforce: privileged, baseline (default) "
                             "or restricted")
    args = parser.parse_args(argv)
    configure_logging(component="apiserver")
    asyncio.run(_main(Credentials.load(args.creds), args.replicas, args.pod_security))


def _policy(text: str) -> Policy:
    try:
        return parse_policy(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


async def _main(creds: Credentials, replicas: int, pod_security: Policy) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(creds, stop=stop, replicas=replicas, pod_security=pod_security)


if __name__ == "__main__":
    main()
