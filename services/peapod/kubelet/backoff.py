"""Back-off as the kubelet keeps it (client-go's ``flowcontrol.Backoff``): 10 s doubling to 5 min.

One table of entries, each a delay and the time it was last raised, serves
two questions Kubernetes asks of it:

* **crash loops** ask "is this container still inside its back-off *since it
  finished*?" (``in_backoff_since``): the delay is counted from the exited
  container's ``finishedAt``, not from the moment the kubelet restarted it,
  so a container that ran for a while before crashing waits the full delay
  after its exit;
* **image pulls** ask "is this pull inside its back-off *since the last
  failure*?" (``in_backoff_since_update``).

Each ``next`` doubles the delay, up to the cap; an entry whose last update
is more than twice the cap before the event is forgotten (a container that
stayed up for ten minutes starts again from 10 s). The first restart of a
container is immediate: only the restart itself creates the entry.

Entries can be ``restore``d from what podman keeps (labels on the container
the kubelet created at that restart), so a restarted kubelet honours the
back-off its predecessor was counting. Time is always passed in (Unix
seconds, because podman's finish times are wall-clock), so a 5-minute
back-off is tested in microseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_SECONDS = 10.0
CAP_SECONDS = 300.0


@dataclass(frozen=True)
class Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, *, initial: float = INITIAL_SECONDS, cap: float = CAP_SECONDS) -> None:
        self.initial = initial
        self.cap = cap
        self._entries: dict[str, Entry] = {}

    def entry(self, key: str) -> Entry | None:
        return self._entries.get(key)

    def delay(self, key: str) -> float:
        """The current delay of ``key``; 0 when it has none."""
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def _expired(self, entry: Entry, event_time: float) -> bool:
        return event_time - entry.last_update > 2 * self.cap

    def in_backoff_since(self, key: str, event_time: float, *, now: float) -> bool:
        """Is ``now`` still within the delay counted from ``event_time`` (a container's exit)?"""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            return False
        return now - event_time < entry.delay

    def in_backoff_since_update(self, key: str, *, now: float) -> bool:
        """Is ``now`` still within the delay counted from the last ``next`` (a failed pull)?"""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            return False
        return now - entry.last_update < entry.delay

    def next(self, key: str, event_time: float, *, now: float) -> Entry:
        """Raise the delay of ``key`` (first time: the initial delay) and stamp it ``now``."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            delay = self.initial
        else:
            delay = min(entry.delay * 2, self.cap)
        self._entries[key] = Entry(delay=delay, last_update=now)
        return self._entries[key]

    def restore(self, key: str, entry: Entry) -> None:
        """Take an entry recorded elsewhere (podman labels) unless a newer one is known."""
        known = self._entries.get(key)
        if known is None or known.last_update < entry.last_update:
            self._entries[key] = entry

    def forget(self, prefix: str) -> bool:
        """Drop the entries whose key starts with ``prefix``; True if there were any."""
        keys = [k for k in self._entries if k.startswith(prefix)]
        for key in keys:
            del self._entries[key]
        return bool(keys)

    def entries(self, *, now: float) -> dict[str, Entry]:
        """The entries not yet expired at ``now`` (what is worth keeping across a restart)."""
        return {k: e for k, e in self._entries.items() if not self._expired(e, now)}


def go_duration(seconds: float) -> str:
    """A duration as Go's ``time.Duration.String`` prints whole seconds: 10s, 1m20s, 5m0s."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
