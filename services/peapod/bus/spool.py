"""Events waiting on a node, kept on its disk so that a kubelet restart does not lose them.

A kubelet cut off from NATS holds its events in memory (``EventRecorder``'s
buffer); this file keeps the same events in ``<state-dir>/events.jsonl`` so
that a kubelet restarted while cut off (a crash, an upgrade, a reboot) sends
them once the control plane answers again, with the times they happened.

The file is append-only, one JSON object a line, because a node's disk is
often an SD card and the buffer may hold a thousand events:

* ``{"held": <Event>}`` when an event starts to wait, or a repeat folded into
  a waiting one raises its ``count`` (the later line wins on reading);
* ``{"sent": "<namespace>/<name>"}`` once that event was recorded by the
  apiserver, or refused for good: it is not sent again after a restart.

Nothing is written while nothing waits, so an idle node writes nothing
(bench/edge.py counts it). Once the buffer is empty the file is removed; when
it grows past twice the buffer's bound, it is compacted (written anew beside
it and renamed over it, so a power cut leaves one version or the other).
Reading keeps the last ``limit`` waiting events, as the buffer does.

A line that is not an event (a write cut short by a power cut, a corrupt
card) is dropped with one log line for the whole file; a file that cannot be
read or written (a full or read-only disk) is logged once, and the events
still wait in memory. The resend is idempotent on the other side too: the
apiserver stores each version of an event (name and count) once
(``apiserver/events.py``), so an event sent just before a crash, whose
``sent`` line was never written, is not stored twice.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path

import structlog
from pydantic import ValidationError

from peapod.api import Event

log = structlog.get_logger("events.spool")

FILE_NAME = "events.jsonl"


def event_id(event: Event) -> str:
    """The name an event is held and sent under: unique in its namespace."""
    return f"{event.metadata.namespace or 'default'}/{event.metadata.name}"


class EventSpool:
    """The events waiting on this node, on its disk (``<state_dir>/events.jsonl``)."""

    def __init__(self, state_dir: Path, *, limit: int) -> None:
        self.path = state_dir / FILE_NAME
        self.limit = limit
        self._lines = 0  # lines in the file, to know when to compact it
        self._failed = False  # a write failed: logged once until one works again

    def load(self) -> list[Event]:
        """The events that were waiting when the kubelet stopped, oldest first."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            log.warning("held_events_unreadable", path=str(self.path), error=str(exc))
            return []
        held, bad = self._parse(text.splitlines())
        events = list(held.values())[-self.limit:]
        if bad:
            log.warning("held_events_dropped", path=str(self.path), lines=bad,
                        error="not an event (a write cut short, or a corrupt file)")
        self._lines = len(text.splitlines())
        if bad or len(events) < len(held):
            self.rewrite(events)
        return events

    @staticmethod
    def _parse(lines: list[str]) -> tuple[OrderedDict[str, Event], int]:
        held: OrderedDict[str, Event] = OrderedDict()
        bad = 0
        for line in lines:
            try:
                entry = json.loads(line)
                if "held" in entry:
                    event = Event.model_validate(entry["held"])
                    held[event_id(event)] = event
                else:
                    held.pop(str(entry["sent"]), None)
            except (ValueError, TypeError, KeyError, ValidationError):
                bad += 1
        return held, bad

    def held(self, event: Event, waiting: list[Event]) -> None:
        """``event`` waits (new, or a repeat folded into it); ``waiting`` is all that waits."""
        if self._failed or self._lines >= 2 * self.limit:  # a failed append may have left half
            self.rewrite(waiting)                            # a line: start the file anew
            return
        self._append({"held": event.to_wire()})

    def sent(self, event: Event, waiting: list[Event]) -> None:
        """``event`` no longer waits (recorded or refused); ``waiting`` is what still does."""
        if not waiting or self._failed:
            self.rewrite(waiting)
        else:
            self._append({"sent": event_id(event)})

    def remove(self) -> None:
        try:
            self.path.unlink(missing_ok=True)
        except OSError as exc:
            self._failure(exc)
            return
        self._lines = 0

    def rewrite(self, waiting: list[Event]) -> None:
        """The file anew, holding only what waits (written beside it, then renamed)."""
        if not waiting:
            self.remove()
            return
        text = "".join(_line({"held": e.to_wire()}) for e in waiting)
        tmp = self.path.with_name(f".{FILE_NAME}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(text)
            tmp.replace(self.path)
        except OSError as exc:
            self._failure(exc)
            return
        self._lines = len(waiting)
        self._failed = False

    def _append(self, entry: dict[str, object]) -> None:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            with os.fdopen(fd, "a") as out:
                out.write(_line(entry))
        except OSError as exc:
            self._failure(exc)
            return
        self._lines += 1
        self._failed = False

    def _failure(self, exc: OSError) -> None:
        if not self._failed:  # a full disk fails every write: one line until one works
            log.warning("held_events_not_saved", path=str(self.path), error=str(exc))
        self._failed = True


def _line(entry: dict[str, object]) -> str:
    return json.dumps(entry, separators=(",", ":")) + "\n"
