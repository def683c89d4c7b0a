"""The node's last-known pods on local disk, so a node rebooted alone runs them again.

A Pi that reboots while the control plane is away (a power cut in a shed, the
server's machine down for the night) should not come back running nothing.
The kubelet therefore keeps, in ``<state-dir>/pods.json``, the pods bound to
it as it last learnt them from its partition: their metadata and spec, and
the phase it last reported. A kubelet that starts and cannot reach NATS
starts those pods by itself (``Kubelet.start_offline``); pods that had
finished (``Succeeded``, ``Failed``) stay finished. When the control plane
returns, the partition is the truth again: pods it no longer holds are
stopped, new ones started, and every status is reported.

Writes are few, because a node's disk is often an SD card: the file is
written only when that set changes (a pod bound, deleted or changed, a phase
reported), never for a status detail or a heartbeat, at most once per
relist, and atomically (a new file renamed over the old one), so a power cut
while writing leaves the previous version. It holds no Secret or ConfigMap
data: a pod that needs one waits for the control plane to read it. It is
readable by its owner only (it has the pods' environment values).

Beside the pods it keeps their image pull back-off (``pullBackOff``: per pod uid
and image, the delay and when it was last raised), so a restarted kubelet
does not pull again before the back-off its predecessor was counting is over
(the restart back-off needs no file: it is on the containers' labels). It is
written with the pods, when it changes, which is only when a pull fails or
succeeds after failing: an idle node writes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import structlog

from peapod.api import Pod
from peapod.api.decode import decode_model
from peapod.errors import Invalid
from peapod.kubelet.backoff import Entry

log = structlog.get_logger("kubelet.lastknown")

FILE_NAME = "pods.json"
FINISHED = ("Succeeded", "Failed")


class LastKnown:
    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / FILE_NAME
        self._written: str | None = None

    def _read(self) -> tuple[str, dict[str, Any]] | None:
        try:
            text = self.path.read_text()
            doc = json.loads(text)
            if not isinstance(doc, dict) or not isinstance(doc.get("pods"), list):
                raise ValueError("no list of pods")
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("last_known_pods_unreadable", path=str(self.path), error=str(exc))
            return None
        return text, doc

    def load_pull_backoff(self) -> dict[str, Entry]:
        """The image pull back-off saved with the pods (pod uid and image -> entry)."""
        read = self._read()
        saved = read[1].get("pullBackOff") if read else None
        entries = {}
        for key, value in (saved if isinstance(saved, dict) else {}).items():
            try:
                entries[key] = Entry(delay=float(value["delay"]),
                                     last_update=float(value["lastUpdate"]))
            except (TypeError, KeyError, ValueError):
                log.warning("last_known_backoff_skipped", path=str(self.path), key=key)
        return entries

    def load(self) -> list[Pod]:
        """The pods to start without a control plane: those saved that had not finished."""
        read = self._read()
        if read is None:
            return []
        text, doc = read
        items = doc["pods"]
        pods = []
        for item in items:
            try:
                pod = decode_model(json.dumps(item).encode(), Pod)
            except Invalid as exc:
                log.warning("last_known_pod_skipped", path=str(self.path), error=exc.message)
                continue
            if not (pod.status and pod.status.phase in FINISHED):
                pods.append(pod)
        self._written = text
        return pods

    def save(self, pods: Sequence[tuple[Pod, str | None]],
             pull_backoff: dict[str, Entry] | None = None) -> bool:
        """Write ``(pod, last reported phase)`` of each pod, and the pull back-off of those
        pods (keys ``<uid>_<image>``), if that differs from the file."""
        uids = {pod.metadata.uid for pod, _ in pods}
        doc: dict[str, Any] = {"pods": [_entry(pod, phase) for pod, phase in pods]}
        backoff = {key: {"delay": e.delay, "lastUpdate": e.last_update}
                   for key, e in (pull_backoff or {}).items() if key.split("_", 1)[0] in uids}
        if backoff:
            doc["pullBackOff"] = backoff
        text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
        if text == self._written:
            return False
        tmp = self.path.with_name(f".{FILE_NAME}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        tmp.replace(self.path)
        self._written = text
        return True


def _entry(pod: Pod, phase: str | None) -> dict[str, Any]:
    wire = pod.to_wire()
    wire.pop("status", None)
    for field in ("resourceVersion", "managedFields"):
        wire.get("metadata", {}).pop(field, None)
    if phase:
        wire["status"] = {"phase": phase}
    return wire
