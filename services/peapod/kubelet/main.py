"""peapod-kubelet: runs this node's pods with podman and reports their status.

A kubelet starts before its control plane as often as after it (a Pi that
boots faster than the server, a wrong credentials file copied by hand), so
its first connection to NATS is its own loop: each failed attempt is one log
line naming the server, the user and why (``nats_connect_failed``), and the
next waits longer (1 s doubling to 30 s). Once connected, nats-py reconnects
by itself for ever, as every component does.

A node that boots while its control plane is away should not run nothing:
after the first failed attempt the kubelet starts the pods it last knew of
(``lastknown.py``) with a connection that is not there yet (every request
fails at once, events wait on the node), and keeps trying. Once connected it
carries on with the same pods, reading its partition as at any start.

Static pods (``--pod-manifest-path``, ``manifests.py``) start before the first
connection is even tried: they need no control plane at all.
"""

from __future__ import annotations

from peapod.kubelet import lean  # noqa: F401  # first: before anything imports structlog

# isort: split
import argparse
import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from nats.aio.client import Client as NATS

from peapod.api.resources import node_extended_problems, parse_extended_resources
from peapod.bus.auth import node_name_problem
from peapod.bus.client import connect, jetstream
from peapod.bus.events import EventRecorder
from peapod.bus.identity import Credentials
from peapod.bus.supervise import RestartBackoff, supervise
from peapod.errors import Invalid, PeapodError, Unavailable
from peapod.kubelet.agent import Kubelet
from peapod.kubelet.lastknown import LastKnown
from peapod.kubelet.manifests import DEFAULT_CHECK_SECONDS, ManifestDir
from peapod.kubelet.node import internal_ip
from peapod.kubelet.runtime import PodmanRuntime
from peapod.kubelet.service import PodmanService
from peapod.kubelet.stats import Stats
from peapod.kubelet.streams import Streams
from peapod.logging import configure_logging

log = structlog.get_logger("kubelet")

DEFAULT_SOCKET = "/run/podman/podman.sock"
TRIM_AFTER = 20.0  # seconds after the start: the first relists and status posts are done


async def connect_until_up(creds: Credentials, *, name: str, stop: asyncio.Event,
                           backoff: RestartBackoff | None = None,
                           on_failure: Callable[[], None] | None = None) -> NATS | None:
    """The first connection to NATS, tried until it works; None if ``stop`` came first.

    ``on_failure`` is called after each failed attempt."""
    backoff = backoff or RestartBackoff(initial=1, cap=30)
    attempt = 0
    while not stop.is_set():
        attempt += 1
        try:
            nc = await connect(creds, name=name, reconnect=False)  # one try of each server
        except Unavailable as exc:
            delay = backoff.after_run(0)
            log.warning("nats_connect_failed", url=creds.url, user=creds.user, attempt=attempt,
                        error=exc.message, retry_in=delay)
            if on_failure is not None:
                on_failure()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            continue
        # from now on nats-py reconnects by itself, for ever (its options are read at each loss)
        nc.options["allow_reconnect"] = True
        nc.options["max_reconnect_attempts"] = -1
        if attempt > 1:
            log.info("nats_connected", url=creds.url, user=creds.user, attempts=attempt)
        return nc
    return None


async def run(creds: Credentials, *, node_name: str, stop: asyncio.Event, state_dir: str,
              podman_socket: str = DEFAULT_SOCKET, labels: dict[str, str] | None = None,
              extended_resources: dict[str, str] | None = None,
              host_ip: str | None = None, relist_period: float = 1.0,
              heartbeat: float = 10.0, manifest_path: str | None = None,
              file_check_frequency: float = DEFAULT_CHECK_SECONDS) -> None:
    if problem := node_name_problem(node_name):
        raise Invalid(f"node name: {problem}")
    if problems := list(node_extended_problems(extended_resources or {})):
        raise Invalid("; ".join(problems))
    # the podman service this kubelet starts, or adopts from a killed predecessor (service.py)
    service = PodmanService(Path(state_dir), podman_socket, os.environ.get("CONTAINERS_CONF"))
    start_podman = service.ensure
    await asyncio.to_thread(start_podman)
    runtime = PodmanRuntime(socket_path=podman_socket, state_dir=state_dir)
    offline = NATS()  # until connected: requests fail at once, events wait on the node
    kubelet = Kubelet(node_name=node_name, nc=offline, js=jetstream(offline), runtime=runtime,
                      events=EventRecorder.for_node(offline, node_name, Path(state_dir)),
                      host_ip=host_ip or internal_ip(), labels=labels,
                      extended_resources=extended_resources,
                      relist_period=relist_period, heartbeat=heartbeat,
                      last_known=LastKnown(Path(state_dir)))
    kubelet.start_runtime = start_podman  # podman's service died: the relist starts it again
    offline_tasks: list[asyncio.Task[None]] = []
    tried: list[bool] = []

    def offline_relist() -> None:
        if not offline_tasks:
            offline_tasks.append(asyncio.create_task(kubelet.relist(), name="offline-relist"))

    def start_offline() -> None:  # the control plane cannot be reached: run what we knew
        if tried or kubelet.last_known is None:
            return
        tried.append(True)
        if pods := kubelet.last_known.load():
            offline_relist()
            kubelet.start_offline(pods)

    manifests = ManifestDir(Path(manifest_path), node_name=node_name) if manifest_path else None

    async def watch_manifests() -> None:
        assert manifests is not None  # started only with a manifest path
        await kubelet.watch_manifests(manifests, period=file_check_frequency)

    if manifests is not None:  # static pods need no control plane: they start at once
        kubelet.run_static(manifests.read() or {})
        offline_relist()
        offline_tasks.append(asyncio.create_task(watch_manifests(), name="offline-manifests"))

    try:
        nc = await connect_until_up(creds, name=f"peapod-kubelet-{node_name}", stop=stop,
                                    on_failure=start_offline)
    finally:
        for task in offline_tasks:  # the relist runs again under supervise, below
            task.cancel()
    if nc is None:  # stopped before the cluster was ever reached
        _stop_offline(kubelet)
        service.stop()
        return
    js = jetstream(nc)
    kubelet.attach(nc, js)
    events = kubelet.events

    def find_uid(namespace: str, name: str) -> Any:
        record = kubelet.pods.get(f"{namespace}/{name}")
        if record is None or record.deleted:
            return None
        spec = record.pod.spec
        return record.pod.metadata.uid, [*spec.containers, *(spec.init_containers or [])]

    streams = Streams(nc=nc, node_name=node_name, runtime=runtime, find_uid=find_uid,
                      podman_socket=podman_socket)
    await streams.start()
    await Stats(nc=nc, node_name=node_name, runtime=runtime).start()
    log.info("kubelet_ready", node=node_name, url=creds.url, podman_socket=podman_socket)
    asyncio.get_running_loop().call_later(TRIM_AFTER, release_freed_memory)
    try:
        # a kubelet without --pod-manifest-path has no manifests task (one that returned at
        # once would be restarted by supervise, with a warning, every back-off period)
        await supervise({"node-status": kubelet.post_node_status,
                         "lease": kubelet.renew_lease,
                         "partition": kubelet.watch_partition,
                         "relist": kubelet.relist,
                         **({"manifests": watch_manifests} if manifests is not None else {}),
                         "mirrors": kubelet.sync_mirrors,
                         "events": events.resend,
                         "volumes": lambda: kubelet.configs.run(lambda: [
                             r.pod for r in kubelet.pods.values()
                             if not r.deleted and not r.pod.metadata.deletion_timestamp])},
                        stop=stop)
        try:
            await kubelet.register(stopping=True)
        except PeapodError as exc:
            log.warning("not_ready_not_posted", error=exc.message)
    finally:
        for record in kubelet.pods.values():
            if record.task:
                record.task.cancel()
        kubelet.probes.close()
        streams.stop()
        await nc.drain()
        service.stop()


def release_freed_memory() -> None:
    """Give what the start allocated and freed back to the system (glibc's ``malloc_trim``).

    Reading the partition, building the models' validators and the first relists leave
    freed pages inside the C heap; glibc keeps them. Trimmed once, a little after the
    start, the kubelet's idle VmRSS is lower by about 0.5 MiB (docs/benchmarks.md).
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    # not glibc (musl has no malloc_trim): nothing to give back
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name).malloc_trim(0)


def _stop_offline(kubelet: Kubelet) -> None:
    """Stopped while offline: the pods keep running, as on any kubelet stop."""
    for record in kubelet.pods.values():
        if record.task:
            record.task.cancel()
    kubelet.probes.close()


def parse_labels(text: str | None) -> dict[str, str]:
    labels: dict[str, str] = {}
    for part in (text or "").split(","):
        if part.strip():
            key, _, value = part.partition("=")
            labels[key.strip()] = value.strip()
    return labels


def extended_resources_arg(text: str) -> dict[str, str]:
    """``--extended-resources example.com/dongle=2,…``: extended names, whole numbers."""
    try:
        return parse_extended_resources(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def node_name_arg(text: str) -> str:
    """``--node-name``, refused at start unless it is a DNS label."""
    if problem := node_name_problem(text):
        raise argparse.ArgumentTypeError(
            f"{problem}; the default is this machine's host name, lower-cased")
    return text


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="peapod-kubelet")
    parser.add_argument("--creds", required=True,
                        help="NKEY credentials file (JSON: url, user, seed, ca_file)")
    parser.add_argument("--node-name", type=node_name_arg, default=socket.gethostname().lower(),
                        help="this node's name, a DNS label (default: the host name)")
    parser.add_argument("--state-dir", default="/var/lib/peapod/kubelet")
    parser.add_argument("--podman-socket", default=os.environ.get("PEAPOD_PODMAN_SOCKET",
                                                                  DEFAULT_SOCKET))
    parser.add_argument("--node-labels", default="", help="k=v,k2=v2 added to the Node")
    parser.add_argument("--node-ip", default=None)
    parser.add_argument("--pod-manifest-path", default=None,
                        help="a directory of static pod manifests (*.yaml, *.yml, *.json), run "
                             "without any control plane (the Ansible node role: "
                             "/etc/peapod/manifests)")
    parser.add_argument("--file-check-frequency", type=_seconds, default=DEFAULT_CHECK_SECONDS,
                        help="seconds between checks of the manifest directory "
                             f"(default {DEFAULT_CHECK_SECONDS:g})")
    parser.add_argument("--extended-resources", type=extended_resources_arg, default={},
                        help="NAME=COUNT,… extended resources this node advertises "
                             "(e.g. example.com/dongle=2), counted by the scheduler")
    args = parser.parse_args(argv)
    configure_logging(component="kubelet")
    Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    asyncio.run(_main(args))


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await run(Credentials.load(args.creds), node_name=args.node_name, stop=stop,
              state_dir=args.state_dir, podman_socket=args.podman_socket,
              labels=parse_labels(args.node_labels), host_ip=args.node_ip,
              manifest_path=args.pod_manifest_path,
              file_check_frequency=args.file_check_frequency,
              extended_resources=args.extended_resources)


def _seconds(text: str) -> float:
    try:
        value = float(text.removesuffix("s"))
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise argparse.ArgumentTypeError(f"{text!r}: seconds between 0 and 3600, e.g. 5 or 20s")
    return value


if __name__ == "__main__":
    main()
