"""When the kubelet starts podman's REST service, when it leaves a slow one alone, and which
process serves a socket."""

from __future__ import annotations

import socket
from pathlib import Path

from peapod.kubelet.runtime import ensure_podman_service, podman_service_pid, something_listens


def test_a_listening_service_that_does_not_answer_in_time_is_left_alone(tmp_path: Path):
    path = str(tmp_path / "podman.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as busy:  # accepts, never answers
        busy.bind(path)
        busy.listen(8)
        assert something_listens(path)
        assert ensure_podman_service(path, timeout=1) is None  # no second service started


def test_nothing_listens_on_a_missing_or_dead_socket(tmp_path: Path):
    path = str(tmp_path / "podman.sock")
    assert not something_listens(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)  # the file exists, nobody listens: a killed service leaves this
    assert not something_listens(path)


def fake_proc(root: Path, processes: dict[str, list[str]]) -> Path:
    """A /proc with one ``cmdline`` (NUL-separated argv) per pid, beside a non-pid entry."""
    (root / "self").mkdir(parents=True)
    for pid, argv in processes.items():
        (root / pid).mkdir()
        (root / pid / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
    return root


def test_the_service_of_a_socket_is_found_by_its_exact_path(tmp_path: Path):
    proc = fake_proc(tmp_path / "proc", {
        "10": ["podman", "system", "service", "--time=0", "unix:///run/a/podman.sock2"],
        "11": ["podman", "ps", "unix:///run/a/podman.sock"],  # not a service
        "12": ["podman", "system", "service", "--time=0", "unix:///run/a/podman.sock"],
        "13": ["/usr/bin/podman", "system", "service", "/run/b/podman.sock"],
    })
    assert podman_service_pid("/run/a/podman.sock", proc) == 12
    assert podman_service_pid("/run/b/podman.sock", proc) == 13
    assert podman_service_pid("/run/c/podman.sock", proc) is None
