"""The podman service a kubelet started, written down in its state directory and found again.

When nothing answers on its socket the kubelet starts ``podman system service``
itself (``runtime.ensure_podman_service``), in a session of its own, and stops
it when it stops. A kubelet killed (``kill -9``, the OOM killer, a crash)
cannot: the service lives on, with the environment and working directory of
the kubelet that started it, possibly a checkout deleted since. So the kubelet
records the service it started (``podman-service.json`` in its state
directory: pid, the process's start time, socket and ``CONTAINERS_CONF``), and
a kubelet starting on that state directory

- adopts it when it still runs on the same socket, with the same
  ``CONTAINERS_CONF``, and answers: nothing is restarted, and the new kubelet
  stops it when it stops;
- stops it otherwise (another socket, another configuration, or alive but not
  answering), then starts its own as usual.

A service the kubelet did not start (systemd's ``podman.socket``, an
operator's, a test session's) is never recorded, so never stopped. Stopping
the service does not stop containers: each runs under its own conmon.

``PR_SET_PDEATHSIG`` is not used: it fires when the *thread* that started the
child exits (the kubelet starts the service from a worker thread), and it
would take podman's API away at each kubelet crash rather than let the next
kubelet find it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import structlog

from peapod.kubelet.runtime import ensure_podman_service, podman_answers

log = structlog.get_logger("kubelet")

RECORD = "podman-service.json"
STOP_WAIT = 10.0  # seconds for a replaced service to exit after SIGTERM, then SIGKILL


@dataclass(frozen=True)
class ServiceRecord:
    pid: int
    started: int  # /proc/PID/stat's starttime: the same process, not a reused pid
    socket: str
    containers_conf: str | None


def start_ticks(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks after boot); None if gone or a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else int(fields[19])


def running(record: ServiceRecord) -> bool:
    return start_ticks(record.pid) == record.started


def signal_service(record: ServiceRecord, sig: signal.Signals) -> None:
    if running(record):
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, sig)


def stop_and_wait(record: ServiceRecord, timeout: float = STOP_WAIT) -> None:
    """SIGTERM, SIGKILL after ``timeout``; returns once the service has exited."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        signal_service(record, sig)
        deadline = time.monotonic() + timeout
        while running(record) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not running(record):
            return


class PodmanService:
    """The podman service of one kubelet: started by it, or adopted from a killed predecessor."""

    def __init__(self, state_dir: Path, socket_path: str, containers_conf: str | None) -> None:
        self.path = state_dir / RECORD
        self.socket, self.containers_conf = socket_path, containers_conf
        self.owned: ServiceRecord | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._looked = False

    def ensure(self) -> None:
        """Something answers on the socket: an earlier kubelet's service, or one started now.

        Blocking (it may wait for a service to start or stop): run it in a thread."""
        if not self._looked:
            self._looked = True
            self._take_over(self._load())
        elif self.owned is not None and not running(self.owned):
            self._forget()  # it died: the relist noticed podman gone
        started = ensure_podman_service(self.socket, containers_conf=self.containers_conf)
        if started is not None:
            self._child = started
            self.owned = ServiceRecord(started.pid, start_ticks(started.pid) or 0, self.socket,
                                       self.containers_conf)
            self._save(self.owned)

    def stop(self) -> None:
        """Stop the service this kubelet started or adopted (SIGTERM; the containers stay)."""
        if self.owned is None:
            return
        if self._child is not None:
            self._child.terminate()
        else:
            signal_service(self.owned, signal.SIGTERM)
        self._forget()

    def _take_over(self, previous: ServiceRecord | None) -> None:
        if previous is None or not running(previous):
            self.path.unlink(missing_ok=True)
            return
        same = (previous.socket, previous.containers_conf) == (self.socket, self.containers_conf)
        if same and podman_answers(self.socket):
            self.owned = previous
            log.info("podman_service_adopted", pid=previous.pid, socket=self.socket)
            return
        why = "not answering" if same else "started with another socket or CONTAINERS_CONF"
        log.warning("podman_service_replaced", pid=previous.pid, socket=previous.socket,
                    containers_conf=previous.containers_conf, reason=why)
        stop_and_wait(previous)
        self.path.unlink(missing_ok=True)

    def _load(self) -> ServiceRecord | None:
        try:
            return ServiceRecord(**json.loads(self.path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:  # unreadable: nothing to adopt
            log.warning("podman_service_record_unreadable", path=str(self.path), error=str(exc))
            return None

    def _save(self, record: ServiceRecord) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(asdict(record)))
            tmp.replace(self.path)
        except OSError as exc:  # a full disk: the service runs, a killed kubelet leaves it
            log.warning("podman_service_not_recorded", path=str(self.path), error=str(exc))

    def _forget(self) -> None:
        self.owned, self._child = None, None
        self.path.unlink(missing_ok=True)
