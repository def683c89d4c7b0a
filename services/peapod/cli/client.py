"""The CLI's view of the cluster: typed calls over the bus, nothing else.

Every command goes through here; the CLI never touches the KV bucket or a
node directly, except to read the event and watch streams, which the admin
user may read.

Connecting is the CLI's own, not the components': a component retries a
missing server for ever, while a command must fail within seconds, with one
line naming the server it tried. So the servers of the context are tried in
turn, never in a retry loop, and the whole attempt has a deadline
(``CONNECT_DEADLINE``) that covers the TCP connect, the server's ``INFO``, the
TLS handshake and the first ``PONG``: a refused port, a socket that never
answers and a server that hangs up all end in ``ServerUnreachable`` well
within five seconds. With a certificate authority, a server that does not
require TLS is refused before the NKEY signs anything.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import nats.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from peapod.api import ConfigMap, Event, Namespace, Node, Pod, Secret
from peapod.api.apps import DaemonSet, Deployment, ReplicaSet
from peapod.api.batch import CronJob, Job
from peapod.api.manifest import decode_model
from peapod.api.priority import PriorityClass
from peapod.api.storage import PersistentVolume, PersistentVolumeClaim
from peapod.bus import subjects as s
from peapod.bus.client import (
    CHUNK_SIZE,
    TLSOnlyClient,
    decode,
    encode,
    jetstream,
    list_in_pages,
    note_refusal,
    request,
    wait_or_refused,
)
from peapod.bus.events import latest_events, parse_event
from peapod.bus.identity import Credentials
from peapod.bus.replay import read_all
from peapod.cli.context import Context
from peapod.errors import Expired, Invalid, NotFound, Unavailable, from_wire

# seconds for the whole connection, every server included: with the interpreter's start-up
# (slow on a Raspberry Pi) a command still fails within five seconds
CONNECT_DEADLINE = 2.5
WARNING_LIMIT = 300  # characters of a skipped message's reason on the warning line
T = TypeVar("T")


def _printable(text: str) -> str:
    """Text from the bus made safe for one terminal line: no control characters."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def parsed_or_warning(msg: Msg, parse: Callable[[bytes], T]) -> T | None:
    """``parse(msg.data)``, or None after one warning line on stderr.

    Anything may sit on a stream the CLI reads (an old writer, an admin's
    typo): a reader skips what ``parse`` refuses and carries on, instead of
    failing for everyone until the stream's retention drops it.
    """
    try:
        return parse(msg.data)
    except Invalid as exc:
        seq = msg.metadata.sequence.stream if msg.metadata else "?"
        reason = _printable(exc.message)
        if len(reason) > WARNING_LIMIT:
            reason = reason[:WARNING_LIMIT] + "…"
        print(f"warning: skipped message {seq} on {_printable(msg.subject)}: {reason}",
              file=sys.stderr, flush=True)
        return None


def event_or_warning(msg: Msg) -> Event | None:
    """The Event in ``msg``, or None after one warning line on stderr."""
    return parsed_or_warning(msg, parse_event)


class ServerUnreachable(Unavailable):
    """No server of the context answered as a NATS server should; ``attempts`` says why."""

    def __init__(self, attempts: list[tuple[str, str]]) -> None:
        self.attempts = attempts
        super().__init__("; ".join(f"{server}: {reason}" for server, reason in attempts))

    def line(self) -> str:
        """kubectl's "Unable to connect to the server: …", naming the server(s) tried."""
        if len(self.attempts) == 1:
            server, reason = self.attempts[0]
            return f"Unable to connect to the server at {server}: {reason}"
        return f"Unable to connect to the servers: {self.message}"


def _reason(exc: BaseException | None, timeout: float) -> str:
    """One short phrase for why a connection attempt failed."""
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if exc is None or isinstance(exc, TimeoutError):
        return f"no answer within {timeout:.1f}s"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return str(exc.strerror or exc).lower()
    text = str(exc).removeprefix("nats: ")
    if "empty response" in text or "unexpected EOF" in text:
        return "the server closed the connection (is it a NATS server?)"
    return text or type(exc).__name__


class _AttemptFailed(Exception):
    def __init__(self, reason: str, *, final: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.final = reason, final


async def _connect_once(creds: Credentials, server: str, tls: ssl.SSLContext | None,
                        timeout: float) -> NATS:
    nc = NATS() if tls is None else TLSOnlyClient()
    seen: list[BaseException] = []

    async def on_error(exc: Exception) -> None:
        if not note_refusal(nc, exc, creds.user):  # a forbidden publish: `request` says so
            seen.append(exc)  # what went wrong at TCP level: nats-py only says "no servers"

    options: dict[str, Any] = {"tls": tls} if tls is not None else {}
    try:
        await asyncio.wait_for(nc.connect(
            [server], nkeys_seed_str=creds.seed, name="peapod-cli",
            inbox_prefix=s.inbox_prefix(creds.user),
            connect_timeout=timeout,  # type: ignore[arg-type]  # nats-py: seconds, not int
            # nats-py gives up on a server only once it has failed more than
            # max_reconnect_attempts times: 0 would mean never
            allow_reconnect=False, max_reconnect_attempts=1, reconnect_time_wait=0.05,  # type: ignore[arg-type]
            error_cb=on_error, **options), timeout)
    except (OSError, TimeoutError, nats.errors.Error) as exc:
        # after a failed TLS handshake nats-py's close() waits for ever on the dead stream
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(nc.close(), 0.2)
        if "Authorization Violation" in str(exc):  # the same on every server: stop here
            raise _AttemptFailed(f'the server refused user "{creds.user}": Authorization Violation '
                                 "(credentials of another cluster?)", final=True) from None
        cause = seen[-1] if isinstance(exc, nats.errors.NoServersError) and seen else exc
        raise _AttemptFailed(_reason(cause, timeout)) from None
    return nc


async def connect_cli(context: Context, *, deadline: float = CONNECT_DEADLINE) -> NATS:
    """Connect to the first server of the context that answers, within ``deadline``.

    With a certificate authority the link is TLS (``tls://`` forced) and the
    server's certificate is verified against it.
    """
    creds = context.credentials()
    try:
        tls = creds.tls_context()
    except Unavailable as exc:  # a local file problem, not the cluster's
        raise Invalid(f'cluster of context "{context.name}": {exc.message}') from None
    servers = ["tls://" + u.split("://", 1)[-1] if tls else u for u in creds.servers]
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    attempts: list[tuple[str, str]] = []
    for i, server in enumerate(servers):
        timeout = max(end - loop.time(), 0.1) / (len(servers) - i)
        try:
            return await _connect_once(creds, server, tls, timeout)
        except _AttemptFailed as exc:
            attempts.append((server, exc.reason))
            if exc.final:
                break
    raise ServerUnreachable(attempts or [(context.server, "no server in the context")])


WORKLOAD_RESOURCES = {"ReplicaSet": "replicasets", "Deployment": "deployments",
                      "DaemonSet": "daemonsets", "Job": "jobs",
                      "CronJob": "cronjobs"}
WORKLOAD_MODELS: dict[str, Any] = {"replicasets": ReplicaSet, "deployments": Deployment,
                                   "daemonsets": DaemonSet, "jobs": Job,
                                   "cronjobs": CronJob}
CONFIG_RESOURCES = {"ConfigMap": "configmaps", "Secret": "secrets",
                    "PersistentVolume": "persistentvolumes",
                    "PersistentVolumeClaim": "persistentvolumeclaims"}
OBJECT_MODELS: dict[str, Any] = {**WORKLOAD_MODELS, "configmaps": ConfigMap, "secrets": Secret,
                                 "persistentvolumes": PersistentVolume,
                                 "persistentvolumeclaims": PersistentVolumeClaim,
                                 "priorityclasses": PriorityClass}
CLUSTER_SCOPED = ("nodes", "namespaces", "persistentvolumes", "priorityclasses")


class Client:
    def __init__(self, nc: NATS, *, namespace: str) -> None:
        self.nc = nc
        self.js = jetstream(nc)
        self.namespace = namespace
        self.chunk_size = CHUNK_SIZE  # objects per list page (get --chunk-size)

    @classmethod
    async def open(cls, context: Context, *, namespace: str | None = None) -> Client:
        nc = await connect_cli(context)
        return cls(nc, namespace=namespace or context.namespace)

    async def close(self) -> None:
        await self.nc.close()

    # -- pods ---------------------------------------------------------------------------

    def _write_request(self, obj: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """The resource and request of a manifest: its own namespace wins over the context's."""
        if obj.get("kind") == "Namespace":
            return "namespaces", {"object": obj}
        if obj.get("kind") == "PriorityClass":
            return "priorityclasses", {"object": obj}
        namespace = (obj.get("metadata") or {}).get("namespace") or self.namespace
        resource = {**WORKLOAD_RESOURCES, **CONFIG_RESOURCES}.get(str(obj.get("kind")), "pods")
        return resource, {"object": obj, "namespace": namespace}

    async def apply(self, obj: dict[str, Any]) -> tuple[dict[str, Any], str]:
        resource, payload = self._write_request(obj)
        result = await request(self.nc, s.api(resource, "apply"), payload)
        return result["object"], result["action"]

    async def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        resource, payload = self._write_request(obj)
        return await request(self.nc, s.api(resource, "create"),  # type: ignore[no-any-return]
                             payload)

    async def get_pod(self, name: str, namespace: str | None = None) -> Pod:
        return Pod.model_validate(await request(self.nc, s.api("pods", "get"), {
            "namespace": namespace or self.namespace, "name": name}))

    async def list_pods(self, *, all_namespaces: bool = False, selector: str | None = None,
                        field_selector: str | None = None,
                        namespace: str | None = None) -> list[Pod]:
        items = await list_in_pages(self.nc, s.api("pods", "list"), {
            "namespace": None if all_namespaces else namespace or self.namespace,
            "labelSelector": selector, "fieldSelector": field_selector},
            chunk_size=self.chunk_size)
        return [Pod.model_validate(item) for item in items]

    async def delete_pod(self, name: str, *, namespace: str | None = None,
                         grace: int | None = None,
                         propagation: str | None = None) -> dict[str, Any]:
        return await request(self.nc, s.api("pods", "delete"), {  # type: ignore[no-any-return]
            "namespace": namespace or self.namespace, "name": name,
            "gracePeriodSeconds": grace, "propagationPolicy": propagation})

    async def wait_deleted(self, name: str, uid: str, *, namespace: str | None = None,
                           timeout: float = 120) -> bool:
        return await _wait_gone(lambda: self.get_pod(name, namespace), uid, timeout)

    # -- workloads (apps/v1), configmaps and secrets ------------------------------------------

    async def get_object(self, resource: str, name: str, namespace: str | None = None) -> Any:
        return OBJECT_MODELS[resource].model_validate(await request(
            self.nc, s.api(resource, "get"), {"namespace": namespace or self.namespace,
                                              "name": name}))

    async def list_objects(self, resource: str, *, all_namespaces: bool = False,
                           selector: str | None = None) -> list[Any]:
        items = await list_in_pages(self.nc, s.api(resource, "list"), {
            "namespace": None if all_namespaces else self.namespace, "labelSelector": selector},
            chunk_size=self.chunk_size)
        return [OBJECT_MODELS[resource].model_validate(item) for item in items]

    async def update_object(self, resource: str, obj: dict[str, Any]) -> dict[str, Any]:
        """A compare-and-set write of the whole object at its ``resourceVersion``."""
        return await request(self.nc, s.api(resource, "update"),  # type: ignore[no-any-return]
                             {"object": obj, "namespace": obj["metadata"].get("namespace")})

    async def delete_object(self, resource: str, name: str, *, namespace: str | None = None,
                            propagation: str | None = None) -> dict[str, Any]:
        return await request(self.nc, s.api(resource, "delete"), {  # type: ignore[no-any-return]
            "namespace": namespace or self.namespace, "name": name,
            "propagationPolicy": propagation})

    async def get_any(self, resource: str, name: str) -> Any:
        """A pod, node or workload by name (``label``, ``annotate``, ``cordon``)."""
        if resource == "pods":
            return await self.get_pod(name)
        if resource == "nodes":
            return await self.get_node(name)
        if resource == "namespaces":
            return await self.get_namespace(name)
        return await self.get_object(resource, name)

    async def list_any(self, resource: str, *, selector: str | None = None) -> list[Any]:
        if resource == "pods":
            return await self.list_pods(selector=selector)
        if resource == "nodes":
            return await self.list_nodes(selector=selector)
        if resource == "namespaces":
            return await self.list_namespaces(selector=selector)
        return await self.list_objects(resource, selector=selector)

    async def update_any(self, resource: str, obj: dict[str, Any]) -> Any:
        """An update (PUT) at the object's ``resourceVersion``: a compare-and-set."""
        if resource in CLUSTER_SCOPED:
            return await request(self.nc, s.api(resource, "update"), {"object": obj})
        return await request(self.nc, s.api(resource, "update"), {
            "object": obj, "namespace": obj["metadata"].get("namespace") or self.namespace})

    async def wait_object_deleted(self, resource: str, name: str, uid: str, *,
                                  namespace: str | None = None, timeout: float = 120) -> bool:
        return await _wait_gone(lambda: self.get_object(resource, name, namespace), uid, timeout)

    # -- namespaces ---------------------------------------------------------------------

    async def get_namespace(self, name: str) -> Namespace:
        return Namespace.model_validate(await request(self.nc, s.api("namespaces", "get"),
                                                      {"name": name}))

    async def list_namespaces(self, *, selector: str | None = None) -> list[Namespace]:
        items = await list_in_pages(self.nc, s.api("namespaces", "list"),
                                    {"labelSelector": selector}, chunk_size=self.chunk_size)
        return [Namespace.model_validate(item) for item in items]

    async def delete_namespace(self, name: str) -> dict[str, Any]:
        return await request(self.nc, s.api("namespaces", "delete"),  # type: ignore[no-any-return]
                             {"name": name})

    async def wait_namespace_deleted(self, name: str, uid: str, *, timeout: float = 300) -> bool:
        """Until the namespace is gone: its pods stop within their grace periods first."""
        return await _wait_gone(lambda: self.get_namespace(name), uid, timeout)

    # -- nodes --------------------------------------------------------------------------

    async def get_node(self, name: str) -> Node:
        return Node.model_validate(await request(self.nc, s.api("nodes", "get"), {"name": name}))

    async def list_nodes(self, *, selector: str | None = None) -> list[Node]:
        items = await list_in_pages(self.nc, s.api("nodes", "list"), {"labelSelector": selector},
                                    chunk_size=self.chunk_size)
        return [Node.model_validate(item) for item in items]

    async def delete_node(self, name: str) -> dict[str, Any]:
        return await request(self.nc, s.api("nodes", "delete"),  # type: ignore[no-any-return]
                             {"name": name})

    # -- events -------------------------------------------------------------------------

    def _events_subject(self, *, all_namespaces: bool, kind: str | None = None,
                        name: str | None = None) -> str:
        if kind and name:
            return s.event(self.namespace, kind, name)
        return s.events_all(None if all_namespaces else self.namespace)

    async def list_events(self, *, all_namespaces: bool = False, kind: str | None = None,
                          name: str | None = None, namespace: str | None = None) -> list[Event]:
        if namespace:
            subject = s.event(namespace, kind or "Pod", name or "")
        else:
            subject = self._events_subject(all_namespaces=all_namespaces, kind=kind, name=name)
        msgs = await read_all(self.js, stream=s.EVENTS_STREAM, subject=subject)
        return latest_events(e for e in map(event_or_warning, msgs) if e is not None)

    async def follow_events(self, *, all_namespaces: bool = False) -> AsyncIterator[tuple[Event, bool]]:
        """Every stored event, then each new one; the flag is True once the backlog is read.

        One subscription from the start of the stream, so nothing recorded
        between reading the backlog and following is missed.
        """
        sub = await self.js.subscribe(self._events_subject(all_namespaces=all_namespaces),
                                      stream=s.EVENTS_STREAM, ordered_consumer=True,
                                      deliver_policy=DeliverPolicy.ALL)
        caught_up, last = False, None
        try:
            async for msg in sub.messages:
                done = msg.metadata.num_pending == 0
                event = event_or_warning(msg)
                if event is not None:
                    last, caught_up = event, caught_up or done
                    yield event, done
                elif done and not caught_up and last is not None:
                    # the backlog ended on a skipped message: say so with the last good
                    # event again (readers keep one copy of each event)
                    caught_up = True
                    yield last, True
        finally:
            await sub.unsubscribe()

    async def watch(self, resource: str, *, all_namespaces: bool = False,
                    since: int | None = None
                    ) -> AsyncIterator[tuple[str, Pod | Node | Namespace | ConfigMap | Secret]]:
        """Changes to pods, nodes or namespaces from now on, or every change after
        resourceVersion ``since`` that the watch stream still holds (an hour of them;
        ``Expired`` if it no longer holds the next one). Subscribed when called, not when
        first iterated, so a caller that subscribes and then lists misses nothing in between."""
        if resource in CLUSTER_SCOPED:
            subject = s.watch_all(resource)
        else:
            subject = s.watch_all(resource, None if all_namespaces else self.namespace)
        model: Any = {"nodes": Node, "namespaces": Namespace, **OBJECT_MODELS}.get(resource, Pod)
        stream = s.watch_stream(resource)
        if since is not None:
            await self._check_kept_after(since, stream)
        sub = await self.js.subscribe(
            subject, stream=stream, ordered_consumer=True,
            deliver_policy=DeliverPolicy.NEW if since is None else DeliverPolicy.ALL)

        async def changes() -> AsyncIterator[tuple[str, Pod | Node | Namespace | ConfigMap
                                                   | Secret]]:
            try:
                async for msg in sub.messages:
                    if since is not None and (s.watch_revision(msg.headers) or 0) <= since:
                        continue
                    kind = (msg.headers or {}).get("Peapod-Event-Type", "MODIFIED")
                    obj = parsed_or_warning(msg, lambda data: decode_model(data, model))
                    if obj is not None:
                        yield kind, obj
            finally:
                await sub.unsubscribe()

        return changes()

    async def _check_kept_after(self, since: int, stream: str) -> None:
        """Kubernetes' 410 Gone: the watch stream has dropped changes (its messages are kept
        an hour) and the oldest it holds comes after the one following ``since``."""
        if since < 0:
            raise Invalid(f"resourceVersion: Invalid value: {since}: must be a non-negative "
                          "integer")
        info = await self.js.stream_info(stream)
        if info.state.first_seq <= 1 or not info.state.messages:
            return  # nothing dropped yet
        first = await self.js.get_msg(stream, info.state.first_seq)
        oldest = s.watch_revision(first.headers)
        if oldest is not None and oldest > since + 1:
            raise Expired(f"too old resource version: {since} ({oldest - 1})")

    # -- exec and logs, straight to the pod's kubelet -------------------------------------

    async def exec(self, pod: Pod, container: str | None, command: list[str],
                   *, timeout: float = 60) -> tuple[int, bytes, bytes]:
        result = await request(self.nc, s.kubelet(node_of(pod), "exec"), {
            "namespace": pod.metadata.namespace, "name": pod.metadata.name,
            "container": container, "command": command}, timeout=timeout)
        return (int(result["exitCode"]), base64.b64decode(result["stdout"]),
                base64.b64decode(result["stderr"]))

    async def logs(self, pod: Pod, container: str | None, *, follow: bool, tail: int | None,
                   previous: bool) -> AsyncIterator[bytes]:
        subject = s.kubelet(node_of(pod), "logs")
        payload = {"namespace": pod.metadata.namespace, "name": pod.metadata.name,
                   "container": container, "follow": follow, "tail": tail, "previous": previous}
        if not follow:
            result = await request(self.nc, subject, payload, timeout=30)
            yield base64.b64decode(result["data"])
            return
        async for result in self.replies(node_of(pod), "logs", payload):
            if result.get("done"):
                return
            yield base64.b64decode(result["data"])

    async def replies(self, node: str, verb: str,
                      payload: dict[str, Any]) -> AsyncGenerator[dict[str, Any], None]:
        """The many replies of one streamed request to a kubelet (``logs -f``, a session)."""
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        try:
            subject = s.kubelet(node, verb)
            await self.nc.publish(subject, encode(payload), reply=inbox)
            try:  # the first reply; then the stream may idle
                msg = await wait_or_refused(self.nc, subject, payload, sub.next_msg(timeout=None),
                                            timeout=10)
            except TimeoutError:
                raise Unavailable(f"the kubelet of node {node} did not answer") from None
            while True:
                if (msg.headers or {}).get("Status") == "503":  # no responders
                    raise Unavailable(f"the kubelet of node {node} is not running")
                reply = decode(msg.data)
                if "error" in reply:
                    raise from_wire(reply["error"])
                yield reply["result"]
                msg = await sub.next_msg(timeout=None)
        finally:
            await sub.unsubscribe()

    async def send_input(self, node: str, session: str, message: dict[str, Any]) -> None:
        """One message of an interactive session's input (keys, a window size, end of input)."""
        await self.nc.publish(s.kubelet_input(node, session), encode(message))


async def _wait_gone(fetch: Callable[[], Awaitable[Any]], uid: str, timeout: float) -> bool:
    """Until the object is gone, or replaced by one with another uid; False after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        try:
            obj = await fetch()
        except NotFound:
            return True
        if obj.metadata.uid != uid:
            return True
        await asyncio.sleep(0.25)
    return False


def node_of(pod: Pod) -> str:
    if not pod.spec.node_name:
        raise Invalid(f"pod {pod.metadata.name} is not yet scheduled to a node")
    return pod.spec.node_name
