"""A kubelet whose state directory's disk is full: it logs, keeps running its pods, and loses
no event.

The state directory is a small tmpfs (mounted by the test: root only, skipped otherwise)
filled to the last byte. Real podman, a real nats-server and apiserver. The kubelet starts
cut off and runs its last-known pod (read before the disk filled); saving its last-known
pods and keeping its waiting events on disk both fail with ENOSPC: each is one log line, the
pod runs, the events wait in memory. Once space is freed and the kubelet connected, the
events reach the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from peapod.api import Pod
from peapod.bus import subjects as s
from peapod.bus.client import connect, jetstream, request
from peapod.kubelet.lastknown import LastKnown
from tests.integration.cluster.test_event_spool import stored_events
from tests.integration.cluster.test_offline_boot import (
    offline_kubelet,
    relisting,
    remove_pods_of,
    running_containers_of,
)
from tests.waiting import eventually

pytestmark = pytest.mark.podman


@contextlib.contextmanager
def small_disk(path: Path, size: str = "256k") -> Iterator[Path]:
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs",
                              str(path)], capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(path: Path) -> None:
    """Write ``path`` full, to the last byte."""
    fd = os.open(path / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)


async def test_a_full_state_disk_is_logged_and_the_kubelet_runs_on_losing_no_event(
        apiserver, podman_socket, tmp_path):
    name = f"fulldisk-{uuid.uuid4().hex[:6]}"
    pod = Pod.model_validate(await request(apiserver["admin"], s.api("pods", "create"), {
        "object": {"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": name, "namespace": "default"},
                   "spec": {"nodeName": "node-a", "terminationGracePeriodSeconds": 1,
                            "containers": [{"name": "main",
                                            "image": "localhost/peapod-busybox:latest",
                                            "imagePullPolicy": "IfNotPresent",
                                            "command": ["sleep", "3600"]}]}}}))
    uid = pod.metadata.uid or ""
    with small_disk(tmp_path / "kubelet") as state:
        LastKnown(state).save([(pod, "Running")])
        kubelet = offline_kubelet(podman_socket, state)
        fill(state)
        nc = None
        try:
            async with relisting(kubelet) as tasks:
                with capture_logs() as logs:
                    kubelet.start_offline(kubelet.last_known.load())  # type: ignore[union-attr]
                    await eventually(lambda: len(running_containers_of(uid)) == 1,
                                     "started offline", timeout=60)
                    await eventually(lambda: kubelet.events.held >= 3,
                                     "Pulled, Created, Started held", timeout=60)
                    await eventually(lambda: any(e["event"] == "last_known_pods_not_saved"
                                                 for e in logs), "the failed save logged",
                                     timeout=60)
                    await asyncio.sleep(2)  # two more relists: a full disk is not logged each time
                warned = sorted((e["event"], "No space left" in e["error"]) for e in logs
                                if e["log_level"] == "warning")
                assert warned == [("held_events_not_saved", True),
                                  ("last_known_pods_not_saved", True)], warned
                assert not [e for e in logs if e["log_level"] in ("error", "critical")]
                assert not tasks[0].done()  # the kubelet runs on
                os.unlink(state / "filler")  # space again
                nc = await connect(apiserver["creds"]["kubelet-node-a"], name="kubelet")
                kubelet.attach(nc, jetstream(nc))
                held = kubelet.events.held
                assert await kubelet.events.flush() == held
                reasons = sorted(e.reason for e in await stored_events(apiserver["admin"], name))
                assert reasons == ["Created", "Pulled", "Started"], reasons
        finally:
            await asyncio.to_thread(remove_pods_of, uid)
            if nc is not None:
                await nc.close()
