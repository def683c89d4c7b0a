"""``peapod up`` supervises what it started; ``peapod down`` leaves nothing running.

The real ``peapod`` script runs the real cluster (nats-server, apiserver,
scheduler, controller manager, kubelet on the real podman) in a private PEAPOD_HOME, and the
processes are killed with SIGKILL as a crash or the OOM killer would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from peapod.cli.supervisor import process_alive, read_pids
from tests.natsd import free_port

pytestmark = pytest.mark.podman

PEAPOD = [str(Path(sys.executable).parent / "peapod")]
COMPONENTS = {"nats", "apiserver", "scheduler", "controller-manager", "kubelet"}


def private_env(home: Path) -> dict[str, str]:
    env = {**os.environ, "PEAPOD_HOME": str(home)}
    for name in ("PEAPOD_CONFIG", "PEAPOD_CONTEXT"):
        env.pop(name, None)
    return env


def peapod(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PEAPOD, *args], env=env, capture_output=True, text=True, timeout=timeout)


def eventually(fn: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := fn()):
        assert time.monotonic() < deadline, what
        time.sleep(0.1)
    return result


def log_lines(path: Path) -> list[dict]:
    lines = []
    for line in path.read_text().splitlines():
        try:
            lines.append(json.loads(line))
        except ValueError:
            continue
    return lines


def restarted(home: Path, name: str, old: int) -> int | None:
    pid = read_pids(home).get(name)
    return pid if pid not in (None, old) and process_alive(pid) else None


def components_line(env: dict[str, str]) -> str:
    lines = peapod(env, "doctor", timeout=60).stdout.splitlines()
    return next(line for line in lines if " components: " in line)


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as nats-server binds
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def home(tmp_path: Path):
    home = tmp_path / "home"
    yield home
    peapod(private_env(home), "down", timeout=240)
    for pid in read_pids(home).values():  # a failed test must not leave a cluster running
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_detached_cluster_is_supervised_and_down_leaves_nothing(home: Path):
    env, port = private_env(home), free_port()
    up = peapod(env, "up", "--detach", "--node-name", "sup-node", "--port", str(port))
    assert up.returncode == 0, up.stdout + up.stderr
    pids = read_pids(home)
    assert set(pids) == {"supervisor", *COMPONENTS} and all(map(process_alive, pids.values()))
    assert components_line(env).startswith("[ok]   components: nats, apiserver, scheduler, "
                                           "controller-manager, kubelet running, supervised by "
                                           "peapod up")

    # kill -9 of the apiserver: restarted after a second, commands answer again
    os.kill(pids["apiserver"], signal.SIGKILL)
    new = eventually(lambda: restarted(home, "apiserver", pids["apiserver"]), "restarted")
    eventually(lambda: "Ready" in peapod(env, "get", "nodes", timeout=30).stdout, "answering")
    logged = log_lines(home / "logs" / "supervisor.log")
    exited = [e for e in logged if e["event"] == "component_exited"]
    again = [e for e in logged if e["event"] == "component_restarted"]
    assert [(e["process"], e["pid"], e["signal"], e["restart_in"]) for e in exited] == [
        ("apiserver", pids["apiserver"], "SIGKILL", 1)]
    assert [(e["process"], e["pid"], e["restarts"]) for e in again] == [("apiserver", new, 1)]
    assert all(e["component"] == "supervisor" for e in logged)

    # the supervisor killed too: the doctor says nothing restarts, up refuses to start twice
    pids = read_pids(home)
    os.kill(pids["supervisor"], signal.SIGKILL)
    os.kill(pids["scheduler"], signal.SIGKILL)
    eventually(lambda: not process_alive(pids["scheduler"]), "scheduler gone")
    line = components_line(env)
    assert line.startswith("[FAIL] components: peapod up's supervisor is not running") and \
        "scheduler down" in line, line
    refused = peapod(env, "up", "--detach", "--node-name", "sup-node")
    assert refused.returncode == 1
    assert ("partly running without its supervisor (nats, apiserver, controller-manager, "
            "kubelet)") in refused.stderr

    # down stops the rest and returns once each has exited: the port is free at once
    down = peapod(env, "down", timeout=240)
    assert down.returncode == 0 and down.stdout.strip() == "peapod stopped", down.stderr
    assert not any(process_alive(pid) for pid in pids.values())
    assert bindable(port) and not (home / "pids.json").exists()
    again_up = peapod(env, "up", "--detach", "--node-name", "sup-node", "--port", str(port))
    assert again_up.returncode == 0, again_up.stdout + again_up.stderr
    assert f"nats://127.0.0.1:{port}" in again_up.stdout

    # everything killed (a power cut): the stale pids.json does not say "already running"
    pids = read_pids(home)
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    eventually(lambda: not any(process_alive(pid) for pid in pids.values()), "all gone")
    assert components_line(env).startswith("[FAIL] components: peapod up is not running")
    stale = peapod(env, "up", "--detach", "--node-name", "sup-node", "--port", str(port))
    assert stale.returncode == 0, stale.stdout + stale.stderr
    assert "already running" not in stale.stderr
    assert peapod(env, "down", timeout=240).returncode == 0


def test_the_foreground_up_restarts_a_killed_kubelet_and_down_ends_it(home: Path):
    env = private_env(home)
    proc = subprocess.Popen([*PEAPOD, "up", "--node-name", "fg-node", "--port", str(free_port())],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith("peapod is up: ")
        pids = read_pids(home)
        assert pids["supervisor"] == proc.pid
        os.kill(pids["kubelet"], signal.SIGKILL)
        eventually(lambda: restarted(home, "kubelet", pids["kubelet"]), "kubelet restarted")
        down = peapod(env, "down", timeout=240)
        assert down.returncode == 0, down.stderr
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0 and out.rstrip().endswith("peapod stopped"), out + err
    told = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    assert [(e["event"], e["process"]) for e in told] == [("component_exited", "kubelet"),
                                                          ("component_restarted", "kubelet")]
    assert not any(process_alive(pid) for pid in read_pids(home).values())
    assert not (home / "pids.json").exists()


def test_up_refuses_a_node_name_that_is_not_a_dns_label_and_starts_nothing(home: Path):
    result = peapod(private_env(home), "up", "--detach", "--node-name", "pi.x")
    assert result.returncode == 1
    assert re.fullmatch(r'error: --node-name: Invalid value: "pi\.x": a lowercase RFC 1123 label '
                        r"must consist of .*\n", result.stderr), result.stderr
    assert not home.exists()
