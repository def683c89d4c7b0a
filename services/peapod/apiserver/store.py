"""Objects in the JetStream KV bucket, with compare-and-set on every write.

The KV revision of a key *is* the object's ``metadata.resourceVersion``. It is
not stored inside the value (it is only known once the write is committed);
it is put back into the object on every read. Every write states the
revision it expects (``Nats-Expected-Last-Subject-Sequence``), so two writers
racing on one object cannot both win: the loser gets ``Conflict`` and must
re-read, never a lost update.

Writes are published straight onto the bucket's subjects rather than through
nats-py's ``KeyValue`` helpers because each carries a ``Peapod-Op`` header
(ADDED/MODIFIED/DELETED) for the fan-out loop, and a deletion marker carries
the object's last state in its body, so the fan-out can tell the node
partition which pod went away without a second lookup.
"""

from __future__ import annotations

import asyncio
import builtins
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import nats.errors
import structlog
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.errors import APIError, BadRequestError, NoStreamResponseError, NotFoundError

from peapod.api import Namespace, Node, Pod
from peapod.api.manifest import decode_json_object, validate_model
from peapod.bus import subjects as s
from peapod.bus.replay import read_all
from peapod.errors import AlreadyExists, Conflict, Invalid, NotFound, PeapodError, Unavailable

OP_HEADER = "Peapod-Op"
KV_OP = "KV-Operation"
_WRONG_LAST_SEQUENCE = (10071, 10164)
# How long a write waits out a stream without a leader (a NATS server of a
# cluster died and the others elect a new one, which takes a few seconds);
# shorter than a client's request timeout (10 s), so the client hears the outcome.
WRITE_RETRY_FOR = 8.0
# how long the events stream remembers an event version's id (name/count), so a resend is
# stored once: the events a kubelet held across a restart come within minutes of it
EVENT_DUPLICATE_WINDOW = 600
log = structlog.get_logger("apiserver")


# the kinds whose stored values are checked against their model when read; any other kind's
# value must be a JSON object whose metadata names its key
STORED_MODELS: dict[str, type[Pod] | type[Node] | type[Namespace]] = {
    "pods": Pod, "nodes": Node, "namespaces": Namespace}


def decode_stored(key: str, data: bytes) -> dict[str, Any]:
    """A value read from the bucket, or ``Invalid`` saying why it is not the object its key
    names (not JSON, not that kind, another object's metadata).

    Only the apiserver writes the bucket, through the models; but a value written by hand
    with the store's credentials, or one left half-written, must not stop a list, the
    fan-out or a kubelet: every reader of stored values goes through here.
    """
    try:
        kind, namespace, name = s.parse_kv_key(key)
    except ValueError:  # a key from before names were encoded: Store.rekey_legacy moves it
        return decode_json_object(data, "stored object")
    model = STORED_MODELS.get(kind)
    doc = decode_json_object(data, model.__name__ if model else "stored object")
    if model is not None:
        validate_model(doc, model)
    meta = doc.get("metadata")
    meta = meta if isinstance(meta, dict) else {}
    if meta.get("name") != name or meta.get("namespace", namespace) != namespace:
        raise Invalid(f"not the object of its key: metadata names {meta.get('namespace')!r}/"
                      f"{meta.get('name')!r}")
    return doc


# The largest object stored. A NATS message carries at most 1 MiB (max_payload) and an
# object travels in one, with its resourceVersion, to the watch stream and its node's
# partition; half of that leaves room for the status its kubelet adds.
MAX_OBJECT_BYTES = 512 * 1024


def _check_size(value: dict[str, Any], what: str) -> None:
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_OBJECT_BYTES:
        raise Invalid(f"{what}: Request entity too large: the object is {size} bytes, "
                      f"at most {MAX_OBJECT_BYTES} may be stored")


@dataclass(frozen=True)
class Stored:
    key: str
    value: dict[str, Any]
    revision: int


def with_revision(value: dict[str, Any], revision: int) -> dict[str, Any]:
    obj = dict(value)
    obj["metadata"] = {**obj.get("metadata", {}), "resourceVersion": str(revision)}
    return obj


def without_revision(value: dict[str, Any]) -> dict[str, Any]:
    obj = dict(value)
    meta = dict(obj.get("metadata", {}))
    meta.pop("resourceVersion", None)
    obj["metadata"] = meta
    return obj


async def ensure_jetstream(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create (or update) the bucket and streams the cluster needs; idempotent."""
    await _ensure_stream(js, StreamConfig(
        name=s.KV_STREAM, subjects=[f"$KV.{s.KV_BUCKET}.>"], max_msgs_per_subject=5,
        allow_rollup_hdrs=True, deny_delete=True, allow_direct=True, num_replicas=replicas,
        storage=StorageType.FILE, discard=DiscardPolicy.NEW, duplicate_window=120,
    ))
    # Heartbeats live in memory: a Raspberry Pi's SD card never sees them.
    await _ensure_stream(js, StreamConfig(
        name=s.LEASE_STREAM, subjects=[f"$KV.{s.LEASE_BUCKET}.>"], max_msgs_per_subject=1,
        allow_direct=True, storage=StorageType.MEMORY, num_replicas=replicas,
        max_age=s.LEASE_DURATION_SECONDS * 3,
    ))
    await _ensure_stream(js, StreamConfig(
        name=s.NODES_STREAM, subjects=["peapod.node.>"], max_msgs_per_subject=1,
        storage=StorageType.FILE, num_replicas=replicas, duplicate_window=120,
    ))
    for name, subject in ((s.WATCH_STREAM, "peapod.watch.>"),
                          (s.SECRET_WATCH_STREAM, "peapod.secretwatch.>")):
        await _ensure_stream(js, StreamConfig(
            name=name, subjects=[subject], max_age=3600,
            storage=StorageType.FILE, num_replicas=replicas, duplicate_window=120,
        ))
    await _ensure_stream(js, StreamConfig(
        name=s.EVENTS_STREAM, subjects=["peapod.events.>"], max_age=3600, max_msgs=100_000,
        storage=StorageType.FILE, num_replicas=replicas, duplicate_window=EVENT_DUPLICATE_WINDOW,
    ))


async def _ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError:
        await js.update_stream(config)


class Store:
    """Typed access to the ``peapod`` bucket; values are wire-shaped dicts."""

    def __init__(self, js: JetStreamContext) -> None:
        self._js = js

    @property
    def js(self) -> JetStreamContext:
        """The JetStream context, for a watch over the same bucket (an informer)."""
        return self._js

    @staticmethod
    def _subject(key: str) -> str:
        return f"$KV.{s.KV_BUCKET}.{key}"

    async def get(self, key: str, *, what: str) -> Stored:
        try:
            msg = await self._js.get_msg(s.KV_STREAM, subject=self._subject(key), direct=True)
        except NotFoundError:
            raise NotFound(f"{what} not found") from None
        if msg.headers and msg.headers.get(KV_OP) in ("DEL", "PURGE"):
            raise NotFound(f"{what} not found")
        try:
            value = decode_stored(key, msg.data or b"")
        except Invalid as exc:  # InternalError, as Kubernetes' "unable to decode" from etcd
            log.warning("stored_value_unreadable", key=key, revision=msg.seq, reason=exc.message)
            raise PeapodError(f"{what} cannot be read: its stored value (revision {msg.seq}) is "
                              f"{exc.message}") from None
        revision = msg.seq or 0  # a direct get always carries the sequence
        return Stored(key=key, value=with_revision(value, revision), revision=revision)

    async def list(self, prefix: str) -> list[Stored]:
        """Every live object whose key starts with ``prefix`` (``pods.default.``)."""
        items: list[Stored] = []
        base = len(self._subject(""))
        for msg in await read_all(self._js, stream=s.KV_STREAM,
                                  subject=f"{self._subject(prefix)}>", last_per_subject=True):
            if msg.headers and msg.headers.get(KV_OP) in ("DEL", "PURGE"):
                continue
            seq, key = msg.metadata.sequence.stream, msg.subject[base:]
            try:
                value = decode_stored(key, msg.data)
            except Invalid as exc:  # one unreadable value must not stop every list
                log.warning("stored_value_skipped", key=key, revision=seq, reason=exc.message)
                continue
            items.append(Stored(key=key, revision=seq, value=with_revision(value, seq)))
        return sorted(items, key=lambda item: item.key)

    async def create(self, key: str, value: dict[str, Any], *, what: str) -> Stored:
        _check_size(value, what)
        try:
            revision = await self._write(key, value, expected=0, op="ADDED")
        except Conflict:
            # A deletion marker also counts as "last sequence"; recreate over it.
            try:
                await self.get(key, what=what)
            except NotFound:
                last = await self._last_sequence(key)
                revision = await self._write(key, value, expected=last, op="ADDED")
            else:
                raise AlreadyExists(f"{what} already exists") from None
        return Stored(key=key, value=with_revision(value, revision), revision=revision)

    async def update(self, key: str, value: dict[str, Any], *, expected: int, what: str) -> Stored:
        _check_size(value, what)
        try:
            revision = await self._write(key, value, expected=expected, op="MODIFIED")
        except Conflict:
            raise Conflict(f"Operation cannot be fulfilled on {what}: the object has been "
                           "modified; please apply your changes to the latest version and "
                           "try again") from None
        return Stored(key=key, value=with_revision(value, revision), revision=revision)

    async def delete(self, key: str, last_value: dict[str, Any], *, expected: int,
                     what: str) -> int:
        """Delete at ``expected``; returns the revision of the deletion marker."""
        try:
            return await self._write(key, last_value, expected=expected, op="DELETED",
                                     extra={KV_OP: "DEL"})
        except Conflict:
            raise Conflict(f"Operation cannot be fulfilled on {what}: the object has been "
                           "modified; please try again") from None

    async def rekey_legacy(self) -> builtins.list[str]:
        """Move objects stored under a key from before names were encoded to their encoded key.

        Before, ``web.v1`` was written into the key as it is (``pods.default.web.v1``),
        which nothing could parse back. Such an object is re-created under its encoded
        key from its own metadata, then its old key is deleted; the keys moved are
        returned. Safe to run from several replicas at once: each write is a CAS.
        """
        moved = []
        for item in await self.list(""):
            try:
                s.parse_kv_key(item.key)
                continue
            except ValueError:
                pass
            kind, meta = item.key.split(".", 1)[0], item.value.get("metadata") or {}
            name, namespace = meta.get("name"), meta.get("namespace")
            if not name:
                continue
            new_key = s.kv_key(kind, namespace or None, name)  # only namespaced kinds have one
            try:
                await self.create(new_key, item.value, what=new_key)
                await self.delete(item.key, item.value, expected=item.revision, what=item.key)
            except (AlreadyExists, Conflict):
                continue  # another replica moved it, or the object changed: next start
            moved.append(item.key)
        return moved

    async def _write(self, key: str, value: dict[str, Any], *, expected: int, op: str,
                     extra: dict[str, str] | None = None) -> int:
        """One compare-and-set write; retried while the stream has no leader.

        The message id is derived from the write itself (key, expected revision,
        operation, body), so when a retry follows a write whose acknowledgement
        was lost, JetStream's duplicate window answers with the first write's
        revision instead of storing it twice or calling it a conflict.
        """
        body = json.dumps(without_revision(value), separators=(",", ":")).encode()
        msg_id = hashlib.sha256(b"%s\0%d\0%s\0%s" % (key.encode(), expected, op.encode(), body)).hexdigest()
        headers = {"Nats-Expected-Last-Subject-Sequence": str(expected), OP_HEADER: op,
                   "Nats-Msg-Id": msg_id, **(extra or {})}
        deadline = time.monotonic() + WRITE_RETRY_FOR
        delay = 0.2
        while True:
            try:
                ack = await self._js.publish(self._subject(key), body, headers=headers)
            except APIError as exc:
                if exc.err_code in _WRONG_LAST_SEQUENCE:
                    raise Conflict(f"{key}: revision {expected} is not the latest") from None
                if exc.code != 503 or time.monotonic() > deadline:
                    raise
                error = str(exc)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError, NoStreamResponseError) as exc:
                if time.monotonic() > deadline:
                    raise Unavailable(f"the store did not acknowledge the write of {key} within "
                                      f"{WRITE_RETRY_FOR:g}s ({exc or type(exc).__name__}); "
                                      "nothing was written, or the write was kept once") from None
                error = str(exc) or type(exc).__name__
            else:
                return ack.seq
            log.warning("store_write_retry", key=key, error=error, retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _last_sequence(self, key: str) -> int:
        msg = await self._js.get_msg(s.KV_STREAM, subject=self._subject(key), direct=True)
        return int(msg.seq or 0)
