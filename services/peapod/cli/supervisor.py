"""Keeping what ``peapod up`` started running, and stopping all of it.

A local cluster has no systemd to restart a component that dies, so ``peapod
up`` supervises its own processes: nats-server first (until its ``/healthz``
answers), then the apiserver, the scheduler, the controller manager and the
kubelet, each in its own
session writing its own log file. A component that exits while the cluster
is not stopping is logged (``component_exited``, with its exit code or
signal) and started again after a pause of 1 s doubling to 30 s, which
resets once it had run for a healthy minute (``RestartBackoff``, as for the
tasks inside each component); the restart is logged too
(``component_restarted``). The components reconnect to a restarted
nats-server by themselves.

The supervisor is the ``peapod up`` process itself in the foreground, and a
process of its own (``python -m peapod.cli.supervisor PLAN``, logging to
``logs/supervisor.log``) under ``--detach``, so a detached cluster is
supervised too. It keeps ``pids.json`` current: its own pid under
``supervisor``, and the pid of each component while it runs. Stopping (a
signal, or ``peapod down``) stops the components in reverse order, the
kubelet first and nats-server last, and the supervisor exits only once every
one has exited.

A pid in ``pids.json`` counts as running only if that process exists, is not
a zombie, and its command line is still the one peapod started (``/proc``),
so a file left by a reboot or a ``kill -9`` never makes a dead cluster look
alive.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from peapod.bus.supervise import RestartBackoff
from peapod.errors import Unavailable

log = structlog.get_logger("supervisor")

# start order; stopped in reverse
COMPONENTS = ("nats", "apiserver", "scheduler", "controller-manager", "kubelet")
SUPERVISOR = "supervisor"
STOP_GRACE = 20.0  # seconds a component gets to stop before SIGKILL
PIDS_FILE = "pids.json"
PF_KTHREAD = 0x00200000  # /proc/<pid>/stat flags: a kernel thread, never one of ours


@dataclass(frozen=True)
class Component:
    name: str
    argv: tuple[str, ...]
    log_file: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "argv": list(self.argv), "log_file": self.log_file}

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Component:
        return cls(name=str(doc["name"]), argv=tuple(map(str, doc["argv"])),
                   log_file=str(doc["log_file"]))


# -- what is running --------------------------------------------------------------------

def process_alive(pid: int, marker: str | None = None) -> bool:
    """True if ``pid`` runs (a zombie does not) and its command line contains ``marker``."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc to read: all that can be known is whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    fields = stat.rsplit(")", 1)[-1].split()  # state, ppid, pgrp, session, tty, tpgid, flags, …
    if not fields or fields[0] in ("Z", "X") or int(fields[6]) & PF_KTHREAD:
        return False
    if not cmdline:  # an exiting process loses its command line before its files and sockets
        return True
    return marker is None or marker in cmdline.decode(errors="replace")


def read_pids(home: Path) -> dict[str, int]:
    """``pids.json`` as written by the supervisor; anything else in it is ignored."""
    try:
        doc = json.loads((home / PIDS_FILE).read_text())
    except (FileNotFoundError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    return {name: pid for name, pid in doc.items() if isinstance(pid, int) and pid > 0}


def marker_of(name: str, home: Path) -> str:
    """What the command line of ``name`` contains: every component's names its home."""
    return "peapod" if name == SUPERVISOR else str(home)


def running(home: Path) -> dict[str, int]:
    """The processes of ``pids.json`` that still run as peapod started them."""
    return {name: pid for name, pid in read_pids(home).items()
            if process_alive(pid, marker_of(name, home))}


def wait_gone(pid: int, marker: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while process_alive(pid, marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_process(pid: int, marker: str, *, grace: float = STOP_GRACE) -> None:
    """SIGTERM, SIGKILL after ``grace``; returns once the process has exited."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10.0)):
        if not process_alive(pid, marker):
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        if wait_gone(pid, marker, wait):
            return
    raise Unavailable(f"process {pid} did not exit after SIGKILL")


# -- supervising --------------------------------------------------------------------------

def _spawn(argv: tuple[str, ...], log_file: str) -> subprocess.Popen[bytes]:
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as out:
        return subprocess.Popen(list(argv), stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                start_new_session=True)


def wait_healthy(http_port: int, proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Unavailable("nats-server exited at start; see its log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise Unavailable("nats-server did not become healthy in time")


def _exit_fields(code: int) -> dict[str, Any]:
    if code < 0:
        try:
            return {"signal": signal.Signals(-code).name}
        except ValueError:
            return {"signal": -code}
    return {"exit_code": code}


class Supervisor:
    def __init__(self, home: Path, components: list[Component], *, http_port: int,
                 clock: Callable[[], float] = time.monotonic,
                 backoff: Callable[[], RestartBackoff] = lambda: RestartBackoff(initial=1, cap=30),
                 pid: int | None = None) -> None:
        self.home = home
        self.components = {c.name: c for c in components}
        self.http_port = http_port
        self.clock = clock
        self.pid = pid or os.getpid()
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.started_at: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}
        self.restarts = dict.fromkeys(self.components, 0)
        self.backoffs = {name: backoff() for name in self.components}

    def start(self) -> None:
        """Every component, nats-server first and healthy; raises if nats-server is not."""
        for name in self.components:
            self._start(name)
            if name == "nats":
                wait_healthy(self.http_port, self.procs[name])
        self.write_pids()

    def _start(self, name: str) -> subprocess.Popen[bytes]:
        component = self.components[name]
        proc = self.procs[name] = _spawn(component.argv, component.log_file)
        self.started_at[name] = self.clock()
        return proc

    def poll(self) -> None:
        """Notice components that exited, and restart those whose pause is over."""
        now, changed = self.clock(), False
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is None:
                continue
            ran_for = now - self.started_at[name]
            delay = self.backoffs[name].after_run(ran_for)
            log.warning("component_exited", process=name, pid=proc.pid, ran_for=round(ran_for, 1),
                        restart_in=delay, log_file=self.components[name].log_file,
                        **_exit_fields(code))
            del self.procs[name]
            self.restart_at[name] = now + delay
            changed = True
        for name, when in list(self.restart_at.items()):
            if now < when:
                continue
            del self.restart_at[name]
            self.restarts[name] += 1
            proc = self._start(name)
            log.info("component_restarted", process=name, pid=proc.pid,
                     restarts=self.restarts[name])
            changed = True
        if changed:
            self.write_pids()

    def run(self, stopping: Callable[[], bool], *, period: float = 0.2) -> None:
        while not stopping():
            self.poll()
            time.sleep(period)

    def stop(self) -> None:
        """Every component, in reverse start order, each until it has exited."""
        self.restart_at.clear()
        for name in reversed(list(self.components)):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                log.warning("component_killed", process=name, pid=proc.pid,
                            after_seconds=STOP_GRACE)
                proc.kill()
                proc.wait()
        (self.home / PIDS_FILE).unlink(missing_ok=True)

    def write_pids(self) -> None:
        pids = {SUPERVISOR: self.pid, **{name: p.pid for name, p in self.procs.items()}}
        tmp = self.home / f".{PIDS_FILE}.tmp"
        tmp.write_text(json.dumps(pids))
        tmp.replace(self.home / PIDS_FILE)  # readers never see half a file


# -- the detached supervisor's process ---------------------------------------------------

def write_plan(path: Path, *, home: Path, http_port: int, components: list[Component]) -> None:
    path.write_text(json.dumps({"home": str(home), "http_port": http_port,
                                "components": [c.to_json() for c in components]}, indent=1))


def main(argv: list[str] | None = None) -> int:
    """``python -m peapod.cli.supervisor PLAN.json``: what ``peapod up --detach`` leaves running."""
    from peapod.logging import configure_logging

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m peapod.cli.supervisor PLAN.json", file=sys.stderr)
        return 2
    plan = json.loads(Path(args[0]).read_text())
    configure_logging(component="supervisor", json=True)
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    supervisor = Supervisor(Path(plan["home"]), [Component.from_json(c) for c in plan["components"]],
                            http_port=int(plan["http_port"]))
    try:
        supervisor.start()
    except Unavailable as exc:
        log.error("start_failed", error=exc.message)
        supervisor.stop()
        return 1
    log.info("supervising", components=list(supervisor.components), pid=supervisor.pid)
    supervisor.run(lambda: stopping)
    supervisor.stop()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
