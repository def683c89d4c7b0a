"""When the kubelet starts podman's REST service, and when it leaves a slow one alone."""

from __future__ import annotations

import socket
from pathlib import Path

from peapod.kubelet.runtime import ensure_podman_service, something_listens


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
