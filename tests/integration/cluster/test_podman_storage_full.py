"""podman's own storage full: the pod says so in Kubernetes' words, the kubelet stays up.

A podman service of the test's own (its own socket, ``storage.conf`` and ``containers.conf``)
keeps its graph root, run root and libpod state on a small tmpfs the test mounts (root only;
skipped otherwise); the local test images are copied into it with ``podman save`` and
``podman load``, since nothing can be pulled. The kubelet of test_kubelet.py's cluster is
restarted on that service's socket. With the tmpfs filled to the last byte, a new pod's
sandbox cannot be made: its container waits with reason ``CreatePodSandboxError`` and
podman's message (``no space left on device``), a ``FailedCreatePodSandBox`` Warning event
says the same, the pod already running runs on, the Node stays Ready and the kubelet keeps
going; once space is freed the new pod starts, with one podman pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import NotFound
from peapod.kubelet.runtime import podman_answers
from tests.integration.cluster.test_kubelet import apply, pod_manifest, running, wait_pod
from tests.integration.cluster.test_kubelet_failures import (
    busybox,
    pod_events,
    shown_status,
    status_of,
    waiting,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.podman, pytest.mark.timeout(300)]

BUSYBOX = "localhost/peapod-busybox:latest"
STORE_SIZE = "32m"
NO_SPACE = "no space left on device"


class PrivatePodman:
    """A podman service on a storage of its own, a tmpfs that the test can fill."""

    def __init__(self, root: Path) -> None:
        self.root, self.store = root, root / "store"
        self.socket = str(root / "podman.sock")
        self.env = {**os.environ, "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
                    "CONTAINERS_CONF": str(root / "containers.conf")}
        self.service: subprocess.Popen[bytes] | None = None

    def configure(self, containers_conf: Path) -> None:
        (self.root / "storage.conf").write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{self.store}/graph"\n'
            f'runroot = "{self.store}/run"\n')
        # libpod's own state (tmp_dir) beside the storage, not in the machine's /run/libpod
        engine = f'[engine]\ntmp_dir = "{self.store}/run/libpod"\n'
        text = containers_conf.read_text() if containers_conf.is_file() else ""
        text = text.replace("[engine]\n", engine) if "[engine]" in text else text + engine
        (self.root / "containers.conf").write_text(text)

    def load_images(self) -> None:
        """The machine's local test images, saved one by one and loaded into this storage.

        With the pause image podman built here for its infra containers, if it did (else
        the private service builds its own from catatonit)."""
        version = run(["podman", "version", "--format", "{{.Client.Version}}"]).strip()
        pause = f"localhost/podman-pause:{version}-0"
        found = subprocess.run(["podman", "image", "exists", pause], check=False).returncode == 0
        for i, image in enumerate([BUSYBOX, *([pause] if found else [])]):
            archive = self.root / f"image-{i}.tar"
            run(["podman", "save", "-q", "-o", str(archive), image])
            run(["podman", "load", "-q", "-i", str(archive)], env=self.env)
            archive.unlink()

    def start(self) -> None:
        self.service = subprocess.Popen(
            ["podman", "system", "service", "--time=0", f"unix://{self.socket}"], env=self.env,
            cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.monotonic() + 30
        while not podman_answers(self.socket):
            assert self.service.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)

    def podman(self, *args: str) -> str:
        return run(["podman", "--url", f"unix://{self.socket}", *args], env=self.env)

    def fill(self) -> None:
        """Write zeros until the storage has not one byte left."""
        for name, size in (("filler", 1 << 20), ("filler-tail", 4096)):  # then the last pages
            with (self.store / name).open("wb", buffering=0) as out, \
                    contextlib.suppress(OSError):
                while True:
                    out.write(b"\0" * size)

    def free(self) -> None:
        for name in ("filler", "filler-tail"):
            (self.store / name).unlink(missing_ok=True)

    def close(self) -> None:
        """Remove what ran here (this storage's own pods only), stop the service, unmount."""
        self.free()
        if self.service is not None and self.service.poll() is None:
            for verb in (["pod", "rm", "-a", "-f", "-t", "0"], ["rm", "-a", "-f", "-t", "0"]):
                with contextlib.suppress(subprocess.CalledProcessError):
                    self.podman(*verb)
            self.service.terminate()
            self.service.wait(20)
        # the tmpfs with what podman mounted on it (overlay's own bind mount, layers, shm)
        unmounted = subprocess.run(["umount", "-R", str(self.store)], capture_output=True,
                                   text=True, check=False)
        assert unmounted.returncode == 0, f"{self.store} left mounted: {unmounted.stderr}"
        shutil.rmtree(self.root, ignore_errors=True)


def run(argv: list[str], *, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)
    return done.stdout


@pytest.fixture
def private_podman() -> Iterator[PrivatePodman]:
    if os.geteuid() != 0:
        pytest.skip("mounting the small filesystem needs root")
    root = Path(f"/tmp/peapod-sf-{uuid.uuid4().hex[:8]}")  # a socket path under 108 bytes
    made = PrivatePodman(root)
    made.store.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={STORE_SIZE},mode=0700",
                              "tmpfs", str(made.store)], capture_output=True, text=True)
    if mounted.returncode:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        made.configure(Path(os.environ.get("CONTAINERS_CONF", "/etc/containers/containers.conf")))
        made.load_images()
        made.start()
        yield made
    finally:
        made.close()


async def test_podman_storage_full_shows_on_the_pod_and_the_pod_starts_once_freed(
        cluster, private_podman):
    ctx, podman = cluster, private_podman
    node = ctx["node"]
    await node.halt()
    shared, node.socket = node.socket, podman.socket
    node.start()
    suffix = uuid.uuid4().hex[:6]
    steady, fresh = f"steady-{suffix}", f"fresh-{suffix}"
    try:
        await apply(ctx, pod_manifest(steady, [busybox(["sleep", "3600"])],
                                      terminationGracePeriodSeconds=1))
        await wait_pod(ctx, steady, running)

        await asyncio.to_thread(podman.fill)
        await apply(ctx, pod_manifest(fresh, [busybox(["sleep", "3600"])],
                                      terminationGracePeriodSeconds=1))
        pod = await wait_pod(ctx, fresh, waiting("CreatePodSandboxError"), timeout=60)
        message = status_of(pod)["state"]["waiting"]["message"]
        assert message.startswith("Failed to create pod sandbox: ") and NO_SPACE in message
        assert pod["status"]["phase"] == "Pending"
        assert shown_status(pod) == "CreatePodSandboxError"
        events = [e for e in await pod_events(ctx, fresh) if e.reason == "FailedCreatePodSandBox"]
        assert events and events[0].type == "Warning" and NO_SPACE in (events[0].message or "")
        assert not podman.podman("pod", "ps", "-q", "--filter", f"name={fresh}").split()

        # the kubelet stays up: it is still running, its Node Ready, the other pod Running
        await asyncio.sleep(3)
        assert node.task is not None and not node.task.done()
        got = await request(ctx["admin"], s.api("nodes", "get"), {"name": node.name})
        ready = next(c for c in got["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True", ready
        assert running(await wait_pod(ctx, steady, running))

        podman.free()
        pod = await wait_pod(ctx, fresh, running, timeout=90)  # the sandbox is retried
        uid = pod["metadata"]["uid"]
        pods = podman.podman("pod", "ps", "-q", "--filter", f"label=io.peapod.pod.uid={uid}")
        assert len(pods.split()) == 1
        assert status_of(pod)["restartCount"] == 0
    finally:  # its pods go with the private podman: gone from the API before the switch back
        for name in (steady, fresh):
            with contextlib.suppress(NotFound):
                await request(ctx["admin"], s.api("pods", "delete"), {
                    "namespace": "default", "name": name, "gracePeriodSeconds": 0})
        await eventually(lambda: no_pods(ctx, {steady, fresh}), "its pods gone", timeout=30)
        await node.halt()
        node.socket = shared
        node.start()


async def no_pods(ctx: dict, names: set[str]) -> bool:
    listed = await request(ctx["admin"], s.api("pods", "list"), {})
    return not names & {p["metadata"]["name"] for p in listed}
