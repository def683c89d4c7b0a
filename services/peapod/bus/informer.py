"""List+watch of the KV bucket: a local cache and typed change events (client-go's informer).

Why one consumer does both the list and the watch: the KV bucket is a
JetStream stream whose sequence is every object's ``resourceVersion``. A
consumer that delivers the last message per key and then every later
message is a list *at* a revision followed by a watch *from exactly* that
revision: the server hands both out in stream order, so there is no window
between them in which a write could be missed or seen twice.

Why we watch sequences ourselves rather than trust the consumer: a push
consumer keeps pushing while our connection is down and those messages are
lost; after a server restart the (in-memory) consumer is gone. So the
informer checks that consumer sequences follow one another, asks the server
about its consumer whenever nothing arrived for ``check_every`` seconds, and
on any gap, missing consumer or NATS error starts a new consumer at the last
revision it saw plus one (or lists again, if the first list was cut short:
keys that list no longer holds are then DELETED). A stream that was made
again meanwhile (a memory-backed bucket, such as the leases, after a
nats-server restart) starts its sequences over: resuming at the old revision
would wait, blind, until the new stream passed it, so the informer lists it
again instead (``watch_stream_recreated``). A message at or below that revision is dropped, so
a resume never delivers a change twice; the bucket keeps the latest value of
every key, so whatever changed meanwhile arrives as its latest state.

The cache maps each key to its object and revision. Handlers get ADDED (a
key new to the cache), MODIFIED or DELETED (with the last object the cache
held), after the cache was updated; they must be quick (put the key on a
``WorkQueue``) and must not raise: an exception is a bug and stops the
informer, whose supervisor restarts it from where it was. A value that is
not JSON or not a valid object is skipped with one log line and the cache
keeps what it had: no writer can crash a reader.

Read-your-writes: a process that wrote at revision R and then reads its own
cache awaits ``wait_for(R)``, which returns once the cache has seen R (the
write, or anything after it) or the timeout passed: the write is committed
either way, only the cache may lag. R must be the revision of a write to one
of the informer's keys (another key's write never arrives here).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Literal, TypeVar

import nats.errors
import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, ConsumerInfo, DeliverPolicy

from peapod.bus.clock import SYSTEM_CLOCK, Clock
from peapod.bus.supervise import RestartBackoff

log = structlog.get_logger("informer")

T = TypeVar("T")
EventType = Literal["ADDED", "MODIFIED", "DELETED"]
KV_OPERATION = "KV-Operation"


@dataclass(frozen=True)
class Stored(Generic[T]):
    obj: T
    revision: int


@dataclass(frozen=True)
class WatchEvent(Generic[T]):
    type: EventType
    key: str
    obj: T
    revision: int  # of this change (a DELETED's deletion marker)
    written_at: float  # the server's stamp on the change, epoch seconds


Decoder = Callable[[str, bytes], T]
Handler = Callable[[WatchEvent[T]], None]


def _delivered(info: ConsumerInfo) -> int:
    """How many messages the server says it delivered to the consumer."""
    return (info.delivered.consumer_seq or 0) if info.delivered else 0


class WatchInterrupted(Exception):
    """The consumer lost messages or vanished: resume from the last revision."""


class Informer(Generic[T]):
    def __init__(self, js: JetStreamContext, *, bucket: str, decode: Decoder[T],
                 keys: str | tuple[str, ...] = ">", check_every: float = 5.0, clock: Clock = SYSTEM_CLOCK,
                 resource_version: int | None = None, op_header: str | None = None) -> None:
        """``resource_version``: no list, only changes after that revision (``get -w
        --resource-version N``); the cache then holds only what changed since, so an
        event's type comes from ``op_header`` when the writer set it (the apiserver's
        ``Peapod-Op``) and a deletion carries the object its marker holds."""
        self.js = js
        self.bucket = bucket
        self.prefix = f"$KV.{bucket}."
        self.keys = (keys,) if isinstance(keys, str) else keys  # one consumer, one stream order
        self.cache: dict[str, Stored[T]] = {}
        self.revision = 0  # the last revision seen: the next consumer starts after it
        self.synced = asyncio.Event()
        self._decode = decode
        self._handlers: list[Handler[T]] = []
        self._check_every = check_every
        self._clock = clock
        self._listed = False
        self._watch_only = resource_version is not None
        self._op_header = op_header
        if resource_version is not None:
            self.revision, self._listed = resource_version, True
            self.synced.set()
        self._relisted: set[str] | None = None  # keys a relist delivered, while it runs
        self._advanced = asyncio.Event()  # set (and replaced) whenever ``revision`` grows
        self._consumer_seq = 0
        self._stream_created: datetime | None = None  # when the stream we list was made
        self._log = log.bind(bucket=bucket, keys=",".join(self.keys))

    def add_handler(self, handler: Handler[T]) -> None:
        self._handlers.append(handler)

    def objects(self) -> list[T]:
        return [stored.obj for stored in self.cache.values()]

    async def wait_for(self, revision: int, *, timeout: float) -> bool:
        """Wait until the cache has seen ``revision``: True, or False after ``timeout``
        seconds (the watch is down, or the revision is not of one of our keys)."""
        try:
            async with asyncio.timeout(timeout):
                while self.revision < revision:
                    await self._advanced.wait()
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        """List, then watch until cancelled, resuming after every interruption."""
        backoff = RestartBackoff(initial=0.2, cap=5.0, healthy=30.0)
        while True:
            started = self._clock.monotonic()
            try:
                await self._follow()
            except (nats.errors.Error, TimeoutError, WatchInterrupted) as exc:
                delay = backoff.after_run(self._clock.monotonic() - started)
                self._log.warning("watch_interrupted", resume_from=self.revision + 1,
                                  error=str(exc) or type(exc).__name__, retry_in=delay)
                await self._clock.sleep(delay)

    async def _follow(self) -> None:
        sub = await self._subscribe()
        try:
            info = await sub.consumer_info()
            if (info.num_pending or 0) + _delivered(info) == 0:
                self._mark_synced()
            while True:
                try:
                    msg = await sub.next_msg(timeout=self._check_every)
                except nats.errors.TimeoutError:
                    await self._check(sub)
                    continue
                self._receive(msg)
        finally:
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await sub.unsubscribe()

    async def _subscribe(self) -> JetStreamContext.PushSubscription:
        if not self._watch_only:
            await self._check_stream()
        config = ConsumerConfig(ack_policy=AckPolicy.NONE, mem_storage=True, num_replicas=1,
                                inactive_threshold=60.0)
        if self._listed:
            config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
            config.opt_start_seq = self.revision + 1
        else:
            config.deliver_policy = DeliverPolicy.LAST_PER_SUBJECT
            self._relisted = set() if self.cache else None
        self._consumer_seq = 0
        filters = [self.prefix + keys for keys in self.keys]
        if len(filters) > 1:
            config.filter_subjects = filters
        return await self.js.subscribe(filters[0], stream=f"KV_{self.bucket}", config=config)

    async def _check_stream(self) -> None:
        """List again, rather than resume, if the stream was made again since we read it."""
        info = await self.js.stream_info(f"KV_{self.bucket}")
        made, last = info.created, info.state.last_seq
        made_again = None not in (made, self._stream_created) and made != self._stream_created
        if self._listed and (last < self.revision or made_again):
            self._log.warning("watch_stream_recreated", revision=self.revision, last_seq=last)
            self._listed, self.revision = False, 0
        self._stream_created = made

    async def _check(self, sub: JetStreamContext.PushSubscription) -> None:
        """Nothing arrived for a while: is our consumer still there, and did we miss nothing?"""
        info = await sub.consumer_info()  # NotFoundError once the server lost it
        if _delivered(info) > self._consumer_seq and sub.pending_msgs == 0:
            raise WatchInterrupted(f"delivered {_delivered(info)}, received {self._consumer_seq}")

    def _receive(self, msg: Msg) -> None:
        meta = msg.metadata
        if meta.sequence.consumer != self._consumer_seq + 1:
            raise WatchInterrupted(f"consumer sequence {meta.sequence.consumer} after "
                                   f"{self._consumer_seq}")
        self._consumer_seq = meta.sequence.consumer
        if self._relisted is not None:
            self._relisted.add(msg.subject.removeprefix(self.prefix))
        if meta.sequence.stream > self.revision:
            self.revision = meta.sequence.stream
            self._apply(msg.subject.removeprefix(self.prefix), msg, meta.timestamp.timestamp())
            self._advanced.set()
            self._advanced = asyncio.Event()
        if not self._listed and meta.num_pending == 0:
            self._mark_synced()

    def _apply(self, key: str, msg: Msg, written_at: float) -> None:
        revision = self.revision
        if msg.headers and msg.headers.get(KV_OPERATION) in ("DEL", "PURGE"):
            old = self.cache.pop(key, None)
            last = old.obj if old is not None else self._marker_object(key, msg)
            if last is not None:
                self._emit(WatchEvent("DELETED", key, last, revision, written_at))
            return
        obj = self._decoded(key, msg)
        if obj is None:
            return
        kind = self._type_of(key, msg)
        self.cache[key] = Stored(obj, revision)
        self._emit(WatchEvent(kind, key, obj, revision, written_at))

    def _type_of(self, key: str, msg: Msg) -> EventType:
        """ADDED or MODIFIED: from the cache, or from the writer's header on a watch without a list."""
        said = msg.headers.get(self._op_header) if self._op_header and msg.headers else None
        if self._watch_only and said in ("ADDED", "MODIFIED"):
            return "ADDED" if said == "ADDED" else "MODIFIED"
        return "MODIFIED" if key in self.cache else "ADDED"

    def _decoded(self, key: str, msg: Msg) -> T | None:
        try:
            return self._decode(key, msg.data)
        except (ValueError, TypeError) as exc:  # JSON, UTF-8 and pydantic errors are ValueErrors
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self._log.warning("watch_value_skipped", key=key, revision=self.revision,
                              reason=reason)
            return None

    def _marker_object(self, key: str, msg: Msg) -> T | None:
        """A watch without a list never saw the object: its deletion marker may carry it."""
        if not self._watch_only or not msg.data:
            return None
        return self._decoded(key, msg)

    def _emit(self, event: WatchEvent[T]) -> None:
        for handler in self._handlers:
            handler(event)

    def _mark_synced(self) -> None:
        self._listed = True
        if self._relisted is not None:  # a list cut short, then done again: drop what is gone
            gone = [key for key in self.cache if key not in self._relisted]
            self._relisted = None
            for key in gone:
                self._emit(WatchEvent("DELETED", key, self.cache.pop(key).obj, self.revision,
                                      self._clock.now()))
        if not self.synced.is_set():
            self._log.info("watch_synced", objects=len(self.cache), revision=self.revision)
            self.synced.set()
