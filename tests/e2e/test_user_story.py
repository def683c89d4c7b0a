"""The walking skeleton's user story, exactly as a user types it.

``peapod up --detach`` starts the real cluster (nats-server, apiserver,
scheduler, kubelet) in a private PEAPOD_HOME; every step then runs the real
``peapod`` CLI as a subprocess against it, and podman is checked directly at
the end. Nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from peapod.kubelet.service import RECORD, ServiceRecord, stop_and_wait

ROOT = Path(__file__).resolve().parents[2]
PEAPOD = [str(Path(sys.executable).parent / "peapod")]  # the script a user runs: .venv/bin/peapod
NODE = "e2e-node"


def peapod(env: dict[str, str], *args: str, check: bool = True,
           timeout: float = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([*PEAPOD, *args], env=env, capture_output=True, text=True,
                            timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"peapod {' '.join(args)} failed ({result.returncode}):\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def eventually(fn, *, timeout: float = 60, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


def podman_ps(label: str) -> list[str]:
    out = subprocess.run(["podman", "ps", "-a", "--filter", f"label={label}", "--format",
                          "{{.ID}}"], capture_output=True, text=True, check=True).stdout
    return out.split()


def private_env(home: Path) -> dict[str, str]:
    """The environment of a user whose only cluster is the one in ``home``."""
    env = {**os.environ, "PEAPOD_HOME": str(home)}
    for name in ("PEAPOD_CONFIG", "PEAPOD_CONTEXT"):
        env.pop(name, None)
    return env


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, str]]:
    env = private_env(tmp_path / "home")
    up = peapod(env, "up", "--detach", "--node-name", NODE, check=False, timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield env
    finally:
        peapod(env, "delete", "pod", "db", "--ignore-not-found", "--grace-period", "5",
               check=False)
        peapod(env, "down", check=False)
        # a test that kills the kubelet leaves its podman pods behind: remove them
        kubelet_id = tmp_path / "home" / "kubelet" / "kubelet-id"
        if kubelet_id.exists():
            label = f"label=io.peapod.kubelet.id={kubelet_id.read_text().strip()}"
            left = subprocess.run(["podman", "pod", "ps", "-q", "--filter", label],
                                  capture_output=True, text=True, check=False).stdout.split()
            if left:
                subprocess.run(["podman", "pod", "rm", "-f", "-t", "0", *left], check=False,
                               capture_output=True)
        # and the podman service it started, if it did: a killed kubelet cannot stop it
        record = tmp_path / "home" / "kubelet" / RECORD
        if record.exists():
            stop_and_wait(ServiceRecord(**json.loads(record.read_text())))
        logs = tmp_path / "home" / "logs"
        if logs.exists():
            for log in sorted(logs.iterdir()):
                tail = log.read_text(errors="replace").splitlines()[-15:]
                print(f"--- {log.name}\n" + "\n".join(tail))


def output_while(env: dict[str, str], args: list[str], action: Callable[[], None]) -> tuple[str, str]:
    """What a long-running ``peapod ARGS`` (a watch) prints while ``action`` runs."""
    watcher = subprocess.Popen([*PEAPOD, *args], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.5)  # let the watch subscribe first
        action()
        time.sleep(1)  # and print what the action caused
    finally:
        watcher.terminate()
        out, err = watcher.communicate(timeout=10)
    return out, err


def rows(output: str) -> list[list[str]]:
    return [line.split() for line in output.strip().splitlines()]


def test_seed_pod_runs_restarts_and_is_deleted(cluster):
    env = cluster
    # the second terminal of the user story: `peapod events -f` tails the stream
    follower = subprocess.Popen([*PEAPOD, "events", "-f"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    applied = peapod(env, "apply", "-f", str(ROOT / "examples" / "db.yml"))
    assert applied.stdout.strip() == "pod/db created"

    def running(restarts: str) -> list[str] | None:
        table = rows(peapod(env, "get", "pods").stdout)
        assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
        row = table[1]
        # exactly the row: NAME READY STATUS RESTARTS AGE, five cells, RESTARTS as
        # kubectl 1.22+ writes it: "0", then the count with the last restart's age, "1 (5s ago)"
        cells = [*row[:3], " ".join(row[3:-1]), row[-1]]
        return cells if cells[:3] == ["db", "1/1", "Running"] and re.fullmatch(
            restarts, cells[3]) else None

    eventually(lambda: running("0"))
    wide = rows(peapod(env, "get", "pods", "-o", "wide").stdout)
    assert wide[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                       "READINESS", "GATES"]
    assert wide[1][6:] == [NODE, "<none>", "<none>"]  # after the pod's IP
    pod = json.loads(peapod(env, "get", "pods", "db", "-o", "json").stdout)
    assert pod["kind"] == "Pod" and pod["spec"]["nodeName"] == NODE
    uid = pod["metadata"]["uid"]
    assert podman_ps(f"io.peapod.pod.uid={uid}"), "podman runs the pod's container"

    killed = peapod(env, "exec", "db", "--", "pkill", "mongod")
    assert killed.returncode == 0

    row = eventually(lambda: running(r"1 \(\S+ ago\)"))
    assert row[:3] == ["db", "1/1", "Running"] and row[3].startswith("1 (")

    events = peapod(env, "get", "events").stdout
    for reason in ("Scheduled", "Pulled", "Created", "Started"):
        assert reason in events, events

    deleted = peapod(env, "delete", "pod", "db")
    assert deleted.stdout.strip() == 'pod "db" deleted'
    gone = peapod(env, "get", "pods", "db", check=False)
    assert gone.returncode == 1
    assert gone.stderr.strip() == 'Error from server (NotFound): pods "db" not found'
    eventually(lambda: podman_ps(f"io.peapod.pod.uid={uid}") == [], timeout=30)
    assert "Killing" in peapod(env, "get", "events").stdout

    # operators' side: every log line is JSON with its component, pod lines carry
    # namespace, name and uid, and no secret from the credentials is ever logged
    home = Path(env["PEAPOD_HOME"])
    secrets = [json.loads(f.read_text())["seed"] for f in (home / "creds").glob("*.json")]
    for component in ("apiserver", "scheduler", "kubelet"):
        text = (home / "logs" / f"{component}.log").read_text()
        lines = [json.loads(line) for line in text.splitlines()]
        assert lines and all(line["component"] == component for line in lines)
        assert not [secret for secret in secrets if secret in text]
    kubelet_log = [json.loads(line) for line in (home / "logs" / "kubelet.log").read_text().splitlines()]
    started = [line for line in kubelet_log if line["event"] == "container_started"]
    assert [(line["namespace"], line["name"], line["uid"], line["restart_count"]) for line in started] == [
        ("default", "db", uid, 0), ("default", "db", uid, 1)]

    time.sleep(1)
    follower.terminate()
    followed, errors = follower.communicate(timeout=10)
    table = rows(followed)
    assert table[0] == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"], followed + errors
    reasons = [row[2] for row in table[1:]]
    assert reasons[:4] == ["Scheduled", "Pulled", "Created", "Started"], followed
    assert reasons.count("Started") == 2 and "Killing" in reasons, followed


def test_errors_read_as_kubectls_and_nothing_is_stored(cluster, tmp_path):
    env = cluster
    bad = tmp_path / "bad.yml"
    bad.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\n"
                   "spec: {containers: [{name: a, image: x}, {name: a, image: y}]}\n")
    result = peapod(env, "apply", "-f", str(bad), check=False)
    assert result.returncode == 1
    # kubectl's checkErr for an Invalid with several causes: the heading, one "* " line each
    heading, *causes = result.stderr.splitlines()
    assert heading == 'The Pod "Bad_Name" is invalid: ', result.stderr
    assert [c.split(":")[0] for c in causes] == ["* metadata.name", "* spec.containers[1].name"]
    assert causes[1].endswith("duplicate name 'a'"), result.stderr
    assert peapod(env, "get", "pods", "-o", "json").stdout.count('"items": []') == 1
    parked = tmp_path / "parked.yml"  # schedules nowhere, so nothing starts in podman
    parked.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: parked}\n"
                      "spec: {nodeSelector: {disk: none}, containers: [{name: a, image: x}]}\n")
    assert peapod(env, "create", "-f", str(parked)).stdout.strip() == "pod/parked created"
    again = peapod(env, "create", "-f", str(parked), check=False)
    assert again.returncode == 1
    assert again.stderr.strip() == 'Error from server (AlreadyExists): pods "parked" already exists'
    stale = parked.read_text().replace("{name: parked}",
                                       "{name: parked, resourceVersion: '1', labels: {v: '2'}}")
    conflict = subprocess.run([*PEAPOD, "apply", "-f", "-"], input=stale, env=env,
                              capture_output=True, text=True, timeout=60)
    assert conflict.returncode == 1
    assert conflict.stderr.startswith('Error from server (Conflict): Operation cannot be fulfilled on '
                                      'pods "parked"'), conflict.stderr
    assert peapod(env, "delete", "pod", "parked").returncode == 0
    missing = peapod(env, "logs", "nope", check=False)
    assert missing.returncode == 1
    assert missing.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    nowhere = private_env(tmp_path / "nowhere")
    unconfigured = peapod(nowhere, "get", "pods", check=False)
    assert unconfigured.returncode == 1
    assert unconfigured.stderr == (f"error: no context is set in {tmp_path / 'nowhere' / 'config'}: "
                                   'run "peapod up" or select one with "peapod config use-context NAME"\n')
    # the local context of a cluster that is gone: one line naming the server, at once
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    minified = json.loads(peapod(env, "config", "view", "--minify", "-o", "json").stdout)
    creds = minified["users"][0]["user"]["credentials"]
    peapod(nowhere, "config", "set-cluster", "gone", "--server", f"nats://127.0.0.1:{port}")
    peapod(nowhere, "config", "set-credentials", "admin", "--credentials", creds)
    peapod(nowhere, "config", "set-context", "gone", "--cluster", "gone", "--user", "admin")
    gone = peapod(nowhere, "--context", "gone", "get", "pods", check=False, timeout=10)
    assert (gone.returncode, gone.stderr) == (
        1, f"Unable to connect to the server at nats://127.0.0.1:{port}: connection refused\n")


def test_watch_describe_logs_and_delete_by_file(cluster, tmp_path):
    env = cluster
    manifest = tmp_path / "web.yml"
    manifest.write_text(
        "apiVersion: v1\nkind: Pod\nmetadata: {name: web, labels: {app: web}}\n"
        "spec:\n  terminationGracePeriodSeconds: 2\n  containers:\n"
        "  - name: web\n    image: localhost/peapod-busybox:latest\n    imagePullPolicy: IfNotPresent\n"
        "    command: [sh, -c, 'echo serving; exec sleep 3600']\n")
    def start_web() -> None:
        assert peapod(env, "apply", "-f", str(manifest)).stdout.strip() == "pod/web created"
        eventually(lambda: "Running" in peapod(env, "get", "pods", "web").stdout)
        eventually(lambda: peapod(env, "logs", "web").stdout == "serving\n")

    watched, errors = output_while(env, ["get", "pods", "-w", "-l", "app=web"], start_web)
    table = rows(watched)
    assert table[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], watched + errors
    statuses = [row[2] for row in table[1:] if row[0] == "web"]
    assert statuses[0] == "Pending" and statuses[-1] == "Running", watched

    described = peapod(env, "describe", "pod", "web").stdout
    for line in ("Name:         web", "Labels:       app=web", "Status:       Running",
                 "    Restart Count:  0", "QoS Class:          BestEffort"):
        assert line in described.splitlines(), described
    assert "Started container web" in described
    node = peapod(env, "describe", "node", NODE).stdout
    assert "Non-terminated Pods:          (1 in total)" in node.splitlines(), node
    assert peapod(env, "get", "pods", "-o", "name").stdout.strip() == "pod/web"
    assert peapod(env, "exec", "web", "-c", "web", "--", "echo", "-n", "hi").stdout == "hi"
    failed = peapod(env, "exec", "web", "--", "sh", "-c", "exit 3", check=False)
    assert (failed.returncode, failed.stderr.strip()) == (3, "command terminated with exit code 3")
    nope = peapod(env, "exec", "web", "-c", "nope", "--", "true", check=False)
    assert nope.returncode == 1 and nope.stderr.startswith("Error from server (NotFound):"), nope.stderr

    assert peapod(env, "get", "pods", "-l", "app in (web,db)", "-o", "name").stdout.strip() == \
        "pod/web"  # a set-based selector, as kubectl writes it
    assert peapod(env, "get", "pods", "-l", "app notin (web)", "-o", "name").stdout.strip() == ""
    bad = peapod(env, "get", "pods", "-l", "app in web", check=False)
    assert bad.returncode == 1 and "'app in web' is none of key=value" in bad.stderr, bad.stderr
    unknown = peapod(env, "get", "statefulsets", check=False)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == 'error: the server doesn\'t have a resource type "statefulsets"'

    assert peapod(env, "delete", "-f", str(manifest)).stdout.strip() == 'pod "web" deleted'
    assert peapod(env, "get", "pods", "web", check=False).returncode == 1


def test_logs_and_exec_say_so_when_the_kubelet_is_down(cluster):
    env = cluster
    # bound to the node, but never started: its image is absent and may not be pulled
    manifest = ("apiVersion: v1\nkind: Pod\nmetadata: {name: orphan}\nspec: {containers: "
                "[{name: a, image: localhost/absent:1, imagePullPolicy: Never}]}\n")
    subprocess.run([*PEAPOD, "apply", "-f", "-"], input=manifest, env=env, check=True,
                   capture_output=True, text=True, timeout=60)
    eventually(lambda: "ErrImageNeverPull" in peapod(env, "get", "pod", "orphan").stdout)
    pids = json.loads((Path(env["PEAPOD_HOME"]) / "pids.json").read_text())
    os.kill(pids["supervisor"], 9)  # or peapod up restarts the kubelet within a second or two
    os.kill(pids["kubelet"], 9)  # a crashed kubelet: nothing answers on its node's subjects
    for args in (("logs", "-f", "orphan"), ("logs", "orphan"), ("exec", "orphan", "--", "true")):
        result = peapod(env, *args, check=False, timeout=30)
        assert result.returncode == 1, (args, result)
        assert result.stderr.startswith("Unable to connect to the server:"), (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert peapod(env, "delete", "pod", "orphan", "--force").returncode == 0

    # with its kubelet gone, the node is removed by hand; a node watch sees it go
    def delete_node() -> None:
        assert peapod(env, "delete", "node", NODE).stdout.strip() == f'node "{NODE}" deleted'

    watched, errors = output_while(env, ["get", "nodes", "-w"], delete_node)
    table = rows(watched)
    assert table[0] == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"], watched + errors
    assert [row[0] for row in table[1:]] == [NODE, NODE], watched  # the list, then the deletion
    assert peapod(env, "get", "nodes", NODE, check=False).returncode == 1


def test_up_in_the_foreground_runs_until_ctrl_c(tmp_path):
    # what `make up` runs: the cluster in the foreground, stopped by Ctrl-C (SIGINT)
    env = private_env(tmp_path / "home")
    up = subprocess.Popen([*PEAPOD, "up", "--node-name", NODE], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    try:
        assert up.stdout is not None
        first = up.stdout.readline()  # printed once the node is Ready
        assert first.startswith("peapod is up: nats://127.0.0.1:") and f"node {NODE} Ready" in first
        config = tmp_path / "home" / "config"
        assert up.stdout.readline().startswith(f'  context: "local" (current, in {config})   logs: ')
        assert peapod(env, "config", "get-contexts").stdout == (
            "CURRENT   NAME    CLUSTER   AUTHINFO      NAMESPACE\n"
            "*         local   local     local-admin   default\n")
        assert peapod(env, "config", "current-context").stdout == "local\n"
        nodes = rows(peapod(env, "get", "nodes").stdout)
        assert nodes[1][:2] == [NODE, "Ready"]
        pids = json.loads((tmp_path / "home" / "pids.json").read_text())
    finally:
        up.send_signal(2)
        out, err = up.communicate(timeout=60)
    assert up.returncode == 0, out + err
    assert out.rstrip().endswith("peapod stopped")
    assert peapod(env, "config", "current-context").stdout == "local\n"  # down leaves it alone
    assert not (tmp_path / "home" / "context.json").exists()
    for pid in pids.values():  # every component stopped with it
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert not (tmp_path / "home" / "pids.json").exists()
