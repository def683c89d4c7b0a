"""Expectations, as client-go's ControllerExpectations: no second pass on a stale cache.

A ReplicaSet controller that created two pods must not count again before
its informer has seen both, or it would create them twice. Before writing,
a reconcile records how many creations and deletions it expects for its
key; the informer's handler lowers the counts as the pods show up or go
away (a write that failed lowers them at once). While counts remain the
key is not "satisfied" and its reconcile only waits. An expectation older
than ``TTL`` is dropped, as in client-go, so a lost event cannot stall a
controller for ever. After a restart there are none: the informer lists
before any reconcile runs, so every pod the previous process created is
already in the cache.
"""

from __future__ import annotations

from dataclasses import dataclass

from peapod.bus.clock import SYSTEM_CLOCK, Clock

TTL = 300.0  # client-go's ExpectationsTimeout: five minutes


@dataclass
class _Expected:
    adds: int
    deletes: set[str]  # the uids whose deletion we wait to see
    since: float


class Expectations:
    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._by_key: dict[str, _Expected] = {}

    def expect(self, key: str, *, adds: int = 0, deletes: set[str] | None = None) -> None:
        self._by_key[key] = _Expected(adds, set(deletes or ()), self._clock.monotonic())

    def satisfied(self, key: str) -> bool:
        expected = self._by_key.get(key)
        if expected is None:
            return True
        if (expected.adds <= 0 and not expected.deletes) or \
                self._clock.monotonic() - expected.since > TTL:
            del self._by_key[key]
            return True
        return False

    def created(self, key: str) -> None:
        """A pod of ``key`` was seen (or its creation failed)."""
        if (expected := self._by_key.get(key)) is not None:
            expected.adds -= 1

    def deleted(self, key: str, uid: str) -> None:
        """The pod ``uid`` of ``key`` was seen going away (or its deletion failed)."""
        if (expected := self._by_key.get(key)) is not None:
            expected.deletes.discard(uid)

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)
