"""The supervisor of ``peapod up``, with real child processes and an injected clock.

The components here are small Python processes whose command line names the
home directory, as peapod's do; the back-off reads a fake clock, so no
assertion depends on how long anything takes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from peapod.cli import doctor
from peapod.cli.supervisor import (
    Component,
    Supervisor,
    process_alive,
    read_pids,
    running,
    stop_process,
)

SLEEPER = "import sys, time; time.sleep(3600)"


def sleeper(home: Path, name: str) -> Component:
    return Component(name, (sys.executable, "-c", SLEEPER, str(home / name)),
                     str(home / "logs" / f"{name}.log"))


def wait_until(predicate, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def supervised(home: Path):
    now = [0.0]
    supervisor = Supervisor(home, [sleeper(home, n) for n in ("apiserver", "scheduler")],
                            http_port=0, clock=lambda: now[0])
    supervisor.start()
    try:
        yield supervisor, now
    finally:
        supervisor.stop()


def test_a_killed_component_is_restarted_after_its_pause_and_it_is_logged(supervised, home):
    supervisor, now = supervised
    first = supervisor.procs["apiserver"].pid
    with capture_logs() as logs:
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: (supervisor.poll(), "apiserver" not in supervisor.procs)[1],
                   "the exit is noticed")
        # waiting out its pause of 1 s
        assert "apiserver" not in read_pids(home)
        now[0] += 0.5
        supervisor.poll()
        assert "apiserver" not in supervisor.procs
        now[0] += 0.5
        supervisor.poll()
    second = supervisor.procs["apiserver"].pid
    assert second != first and read_pids(home)["apiserver"] == second
    exited, restarted = [e for e in logs if e["event"] in ("component_exited",
                                                            "component_restarted")]
    assert (exited["process"], exited["pid"], exited["signal"], exited["restart_in"]) == (
        "apiserver", first, "SIGKILL", 1)
    assert (restarted["process"], restarted["pid"], restarted["restarts"]) == ("apiserver", second, 1)
    assert supervisor.procs["scheduler"].poll() is None  # the others were left alone


def crash(supervisor: Supervisor, now: list[float], name: str, *, ran_for: float) -> float:
    """Kill ``name`` after it ran ``ran_for`` (fake) seconds; the pause the supervisor chose."""
    now[0] += ran_for
    with capture_logs() as logs:
        os.kill(supervisor.procs[name].pid, signal.SIGKILL)
        wait_until(lambda: (supervisor.poll(), name not in supervisor.procs)[1], "noticed")
    [exited] = [e for e in logs if e["event"] == "component_exited"]
    now[0] += exited["restart_in"]
    supervisor.poll()
    assert name in supervisor.procs
    return float(exited["restart_in"])


def test_the_pause_doubles_to_30_s_and_resets_after_a_healthy_minute(supervised):
    supervisor, now = supervised
    pauses = [crash(supervisor, now, "scheduler", ran_for=2) for _ in range(7)]
    assert pauses == [1, 2, 4, 8, 16, 30, 30]
    assert crash(supervisor, now, "scheduler", ran_for=61) == 1
    assert crash(supervisor, now, "scheduler", ran_for=2) == 2


def test_stop_ends_every_component_and_removes_pids_json(home):
    supervisor = Supervisor(home, [sleeper(home, n) for n in ("apiserver", "kubelet")],
                            http_port=0)
    supervisor.start()
    pids = read_pids(home)
    assert set(pids) == {"supervisor", "apiserver", "kubelet"}
    assert pids["supervisor"] == os.getpid()
    supervisor.stop()
    assert not (home / "pids.json").exists()
    assert not any(process_alive(pids[n]) for n in ("apiserver", "kubelet"))


def test_a_zombie_or_a_stranger_with_the_pid_is_not_running(home):
    child = subprocess.Popen([sys.executable, "-c", "pass", str(home)])
    wait_until(lambda: Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
               == "Z", "the child is a zombie")
    assert not process_alive(child.pid)  # exited, not yet reaped
    child.wait()
    assert not process_alive(child.pid)
    assert process_alive(os.getpid())
    assert not process_alive(os.getpid(), marker=str(home / "not-me"))  # a reused pid


def test_pids_json_is_read_defensively(home):
    assert read_pids(home) == {}
    (home / "pids.json").write_text("{not json")
    assert read_pids(home) == {}
    (home / "pids.json").write_text(json.dumps({"nats": "12", "apiserver": -1, "kubelet": 7}))
    assert read_pids(home) == {"kubelet": 7}
    (home / "pids.json").write_text(json.dumps([1, 2]))
    assert read_pids(home) == {}


def test_stop_process_returns_once_it_has_exited_killing_if_it_must(home):
    stubborn = subprocess.Popen([sys.executable, "-c",
                                 "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                                 "print('ready', flush=True); time.sleep(3600)", str(home)],
                                stdout=subprocess.PIPE)
    assert stubborn.stdout is not None and stubborn.stdout.readline() == b"ready\n"
    stop_process(stubborn.pid, str(home), grace=0.2)  # SIGTERM ignored: SIGKILL
    assert not process_alive(stubborn.pid)
    assert stubborn.wait() == -signal.SIGKILL


# -- what the doctor says --------------------------------------------------------------

def spawn(home: Path, marker: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SLEEPER, marker])


def test_the_doctor_reports_components_from_pids_json_and_liveness(home):
    assert doctor.check_components(home) == []  # peapod up never ran here
    procs = {"supervisor": spawn(home, "peapod-supervisor"),
             **{n: spawn(home, str(home / n)) for n in ("nats", "apiserver", "scheduler",
                                                        "controller-manager", "kubelet")}}
    try:
        (home / "pids.json").write_text(json.dumps({n: p.pid for n, p in procs.items()}))
        [ok] = doctor.check_components(home)
        assert ok.status == "ok" and ok.detail == (
            "nats, apiserver, scheduler, controller-manager, kubelet running, supervised by "
            "peapod up "
            f"(pid {procs['supervisor'].pid})")
        procs["apiserver"].kill()
        procs["apiserver"].wait()
        [down] = doctor.check_components(home)
        assert down.status == "fail" and down.detail.startswith("apiserver down: peapod up")
        assert down.fix == f"if it stays down, see {home}/logs/apiserver.log"
        procs["supervisor"].kill()
        procs["supervisor"].wait()
        [orphans] = doctor.check_components(home)
        assert orphans.status == "fail" and "supervisor is not running" in orphans.detail
        assert "apiserver down" in orphans.detail and orphans.fix.startswith("peapod down, then")
        assert set(running(home)) == {"nats", "scheduler", "controller-manager", "kubelet"}
        for proc in procs.values():
            proc.kill()
            proc.wait()
        [dead] = doctor.check_components(home)
        assert dead.status == "fail" and dead.detail.startswith("peapod up is not running")
        assert dead.fix == "peapod up"
    finally:
        for proc in procs.values():
            proc.kill()
            proc.wait()
