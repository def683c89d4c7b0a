"""Leader election through a lease in the KV store, as client-go's ``leaderelection`` does it.

Two (or more) schedulers or controller managers may run; only the one that
holds the lease acts. The lease is the key ``leader.<component>`` of the
lease bucket (``peapod-leases``; node names are DNS labels, so no node's
heartbeat can be that key), a Kubernetes ``Lease`` spec in JSON:
``holderIdentity``, ``leaseDurationSeconds``, ``acquireTime``,
``renewTime``, ``leaseTransitions``. Every write is a compare-and-set on
the key's revision, so two candidates never both win the same round, and a
component's NATS user may write its own lease key only (``bus/auth.py``).

Kubernetes' timings (``--leader-elect-lease-duration`` 15 s,
``--leader-elect-renew-deadline`` 10 s, ``--leader-elect-retry-period``
2 s), with its rules:

* every ``retry_period`` a candidate reads the lease; it takes it when
  there is none, when the holder released it (empty holder), or when the
  record has not changed for ``lease_duration`` as measured on the
  candidate's own monotonic clock since it saw the record change (so clock
  skew between machines does not matter);
* the leader renews every ``retry_period``; when it could not renew for
  ``renew_deadline`` it stops leading at once (its work is cancelled and
  awaited), ``lease_duration - renew_deadline`` before anyone else may
  take over, and then campaigns again like any standby;
* on a clean stop the leader releases the lease (empty holder,
  ``leaseDurationSeconds: 1``), so a standby takes over within
  ``retry_period`` instead of ``lease_duration``.

So after a leader's ``kill -9`` a standby leads ``lease_duration`` after the
leader's last renewal (a standby wakes when the lease it saw expires, not at
its next poll): within 15 s of the kill. Time comes from the injected clock
(``bus/clock.py``), so tests move it instead of waiting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import nats.errors
import nats.js.errors
import structlog
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from peapod.api import parse_rfc3339
from peapod.bus import subjects as s
from peapod.bus.clock import SYSTEM_CLOCK, Clock

log = structlog.get_logger("election")

LEASE_DURATION = 15.0
RENEW_DEADLINE = 10.0
RETRY_PERIOD = 2.0

Work = Callable[[asyncio.Event], Coroutine[Any, Any, None]]  # runs until the event is set


def default_identity() -> str:
    """client-go's ``hostname_uuid``: unique even for two candidates on one host."""
    return f"{socket.gethostname()}_{uuid.uuid4()}"


@dataclass
class Observed:
    record: dict[str, Any]
    revision: int
    at: float  # our monotonic time when this record was first seen


class LeaderElector:
    def __init__(self, js: JetStreamContext, component: str, *, identity: str | None = None,
                 clock: Clock = SYSTEM_CLOCK, lease_duration: float = LEASE_DURATION,
                 renew_deadline: float = RENEW_DEADLINE,
                 retry_period: float = RETRY_PERIOD) -> None:
        self.js = js
        self.key = s.leader_lease_key(component)
        self.subject = s.leader_lease(component)
        self.identity = identity or default_identity()
        self.clock = clock
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        self._kv: KeyValue | None = None
        self._observed: Observed | None = None
        self._log = log.bind(lease=self.key, identity=self.identity)

    # -- one round ----------------------------------------------------------------------

    def _stamp(self) -> str:
        return datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self.js.key_value(s.LEASE_BUCKET)
        return self._kv

    async def _read(self) -> Observed | None:
        """The lease as stored now, and (when it changed) since when by our monotonic clock.

        As client-go, a lease's age is measured on the reader's own clock from
        the moment it saw the record change; the server's stamp on the write
        moves that moment back by at most ``retry_period`` (the reader polls
        that often), so a standby does not wait one poll longer than the lease,
        and clock skew between machines still cannot shorten a lease by more.
        """
        try:
            msg = await self.js.get_msg(s.LEASE_STREAM, subject=self.subject, direct=True)
        except nats.js.errors.NotFoundError:
            return None
        headers = msg.headers or {}
        if headers.get("KV-Operation") in ("DEL", "PURGE"):
            return None
        seen = self._observed
        if seen is not None and seen.revision == msg.seq:
            return seen
        try:
            record = json.loads(msg.data or b"{}")
            if not isinstance(record, dict):
                raise ValueError("not an object")
        except ValueError:
            record = {}  # junk in the key: taken over like an expired lease, never a crash
        age = 0.0
        with contextlib.suppress(KeyError, ValueError):
            age = self.clock.now() - parse_rfc3339(headers["Nats-Time-Stamp"]).timestamp()
        age = min(max(age, 0.0), self.retry_period)
        self._observed = Observed(record, msg.seq or 0, self.clock.monotonic() - age)
        return self._observed

    def _expires_in(self, observed: Observed) -> float:
        """Seconds until the observed lease expires by our clock (<= 0: expired or released)."""
        if not observed.record.get("holderIdentity"):
            return 0.0
        duration = observed.record.get("leaseDurationSeconds")
        duration = float(duration) if isinstance(duration, int | float) else self.lease_duration
        return observed.at + duration - self.clock.monotonic()

    async def try_acquire_or_renew(self) -> bool:
        """One round: True when we hold the lease after it (client-go's tryAcquireOrRenew)."""
        kv = await self._bucket()
        observed = await self._read()
        now = self._stamp()
        record = {"holderIdentity": self.identity,
                  "leaseDurationSeconds": int(self.lease_duration),
                  "acquireTime": now, "renewTime": now, "leaseTransitions": 0}
        if observed is None:
            revision = await kv.create(self.key, json.dumps(record).encode())
        else:
            old = observed.record
            ours = old.get("holderIdentity") == self.identity
            if not ours and self._expires_in(observed) > 0:
                return False
            transitions = old.get("leaseTransitions")
            transitions = transitions if isinstance(transitions, int) else 0
            if ours:
                record["acquireTime"] = old.get("acquireTime") or now
                record["leaseTransitions"] = transitions
            else:
                record["leaseTransitions"] = transitions + 1
            revision = await kv.update(self.key, json.dumps(record).encode(),
                                       last=observed.revision)
        self._observed = Observed(record, revision, self.clock.monotonic())
        return True

    async def _round(self) -> bool:
        """A round whose failure (lost race, no link, no bucket) counts as not holding."""
        try:
            return await self.try_acquire_or_renew()
        except nats.js.errors.KeyWrongLastSequenceError:
            return False  # another candidate wrote first
        except (nats.errors.Error, TimeoutError) as exc:
            self._log.warning("lease_round_failed", error=str(exc) or type(exc).__name__)
            self._kv = None
            return False

    async def release(self) -> None:
        """Give the lease up on a clean stop, so a standby need not wait for it to expire."""
        observed = self._observed
        if observed is None or observed.record.get("holderIdentity") != self.identity:
            return
        record = {**observed.record, "holderIdentity": "", "leaseDurationSeconds": 1,
                  "renewTime": self._stamp()}
        try:
            kv = await self._bucket()
            await kv.update(self.key, json.dumps(record).encode(), last=observed.revision)
            self._log.info("leader_lease_released")
        except (nats.errors.Error, TimeoutError) as exc:
            self._log.warning("leader_lease_not_released", error=str(exc) or type(exc).__name__)

    # -- the loop -----------------------------------------------------------------------

    async def run(self, work: Work, *, stop: asyncio.Event) -> None:
        """Campaign, lead (``work`` runs until leadership ends), campaign again; until ``stop``."""
        while not stop.is_set():
            if not await self._acquire(stop):
                break
            self._log.info("leader_elected")
            await self._lead(work, stop)
            await self._pause(stop, self.retry_period)  # no tight loop if the work failed
        await self.release()

    async def _acquire(self, stop: asyncio.Event) -> bool:
        waiting_logged = False
        while not stop.is_set():
            if await self._round():
                return True
            if not waiting_logged and self._observed is not None:
                self._log.info("leader_elsewhere",
                               holder=self._observed.record.get("holderIdentity"))
                waiting_logged = True
            observed = self._observed
            wait = self.retry_period if observed is None else \
                min(self.retry_period, max(self._expires_in(observed), 0.0) + 0.05)
            await self._pause(stop, wait)
        return False

    async def _lead(self, work: Work, stop: asyncio.Event) -> None:
        halt = asyncio.Event()
        task = asyncio.create_task(work(halt), name=f"leading {self.key}")
        renewed = self.clock.monotonic()
        try:
            while not stop.is_set() and not task.done():
                await self._pause(stop, self.retry_period, task)
                if stop.is_set() or task.done():
                    break
                if await self._round():
                    renewed = self.clock.monotonic()
                elif self.clock.monotonic() - renewed >= self.renew_deadline:
                    self._log.warning("leader_lost", not_renewed_for=self.renew_deadline)
                    break
        finally:
            halt.set()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if task.done() and not task.cancelled() and task.exception() is not None:
            self._log.error("leader_work_failed", error=repr(task.exception()))

    async def _pause(self, stop: asyncio.Event, seconds: float,
                     task: asyncio.Task[None] | None = None) -> None:
        """Sleep on the injected clock, woken early by ``stop`` (or the work ending)."""
        sleeper = asyncio.ensure_future(self.clock.sleep(seconds))
        stopped = asyncio.ensure_future(stop.wait())
        waits: set[asyncio.Future[Any]] = {sleeper, stopped}
        if task is not None:
            waits.add(task)
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (sleeper, stopped):
                future.cancel()


def add_leader_elect_flag(parser: argparse.ArgumentParser) -> None:
    """Kubernetes' ``--leader-elect`` (default true) on a component's command line."""
    parser.add_argument("--leader-elect", default=True, metavar="BOOL",
                        type=lambda v: v.lower() not in ("false", "0", "no"),
                        help="take part in leader election, so several instances may run and "
                        "only the leader acts (default true); false: act at once, alone")


async def lead_or_run(js: JetStreamContext, component: str, work: Work, *,
                      stop: asyncio.Event, leader_elect: bool = True,
                      clock: Clock = SYSTEM_CLOCK) -> None:
    """``work`` under leader election, or at once and alone with ``leader_elect=False``."""
    if not leader_elect:
        await work(stop)
        return
    await LeaderElector(js, component, clock=clock).run(work, stop=stop)
