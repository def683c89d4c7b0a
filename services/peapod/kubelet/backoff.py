"""Crash-loop back-off, as the kubelet does it: 10 s doubling to 5 min.

The first restart of a container is immediate; each further restart must
wait twice as long as the previous one, up to five minutes. A container that
stayed up for twice the cap is forgiven and starts again from the bottom.
Time is injected (``now`` arguments), so a 5-minute back-off is tested in
microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    last_start: float


class Backoff:
    def __init__(self, *, initial: float = 10.0, cap: float = 300.0) -> None:
        self.initial = initial
        self.cap = cap
        self._entries: dict[str, _Entry] = {}

    def remaining(self, key: str, now: float) -> float:
        """Seconds until ``key`` may start again; 0 when it may start now."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        if now - entry.last_start > 2 * self.cap:
            del self._entries[key]
            return 0.0
        return max(0.0, entry.last_start + entry.delay - now)

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def started(self, key: str, now: float) -> None:
        """Record a restart of ``key`` at ``now``; the next one must wait longer."""
        entry = self._entries.get(key)
        if entry is None or now - entry.last_start > 2 * self.cap:
            self._entries[key] = _Entry(delay=self.initial, last_start=now)
        else:
            self._entries[key] = _Entry(delay=min(entry.delay * 2, self.cap), last_start=now)

    def forget(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            del self._entries[key]
