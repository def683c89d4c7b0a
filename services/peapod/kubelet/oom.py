"""Which containers the kernel killed for running out of memory, read from the kernel log.

podman reports ``State.OOMKilled`` only when it finds the marker file conmon
writes on the cgroup's OOM event. With podman 4.3.1 and conmon 2.1.6 on a
cgroup v1 machine the kill is caught but the marker lands in conmon's working
directory, where podman does not look: the container exits 137 and podman
says ``OOMKilled: false``.
The kernel itself is never wrong: each kill of a memory cgroup is one
``oom-kill:`` record in its log naming the task's cgroup, and podman's cgroup
names carry the container id (``/libpod_parent/libpod-<id>`` with cgroupfs,
``libpod-<id>.scope`` with systemd). cAdvisor, and so Kubernetes' own
kubelet, reads the same records.

``/dev/kmsg`` is read without blocking: each ``drain`` takes the records
logged since the last one (the first takes the whole ring buffer, so a
restarted kubelet still knows recent kills) and returns at once. Reading it
needs root, as the kubelet runs; where it cannot be read the log is simply
empty and podman's own flag is all there is.
"""

from __future__ import annotations

import errno
import os
import re
import threading
from collections import OrderedDict

import structlog

log = structlog.get_logger("kubelet.oom")

KMSG = "/dev/kmsg"
REMEMBERED = 4096
_TASK_MEMCG = re.compile(r"task_memcg=\S*?libpod-(?:conmon-)?([0-9a-f]{64})")


def oom_killed_container(record: str) -> str | None:
    """The podman container id an ``oom-kill:`` kernel record names, if any."""
    _, _, text = record.partition(";")
    if not text.startswith("oom-kill:"):
        return None
    found = _TASK_MEMCG.search(text)
    return found.group(1) if found else None


class KernelOomLog:
    def __init__(self, path: str = KMSG) -> None:
        self._path = path
        self._fd: int | None = None
        self._disabled = False
        self._killed: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def killed(self, container_id: str) -> bool:
        """Did the kernel OOM-kill a process of this container (as far as its log shows)?"""
        self.drain()
        return container_id in self._killed

    def drain(self) -> None:
        """Read every record logged since the last call; never blocks."""
        with self._lock:
            fd = self._open()
            while fd is not None:
                try:
                    data = os.read(fd, 8192)
                except BlockingIOError:
                    return
                except OSError as exc:
                    if exc.errno == errno.EPIPE:  # records overwritten before we read them
                        continue
                    log.warning("kernel_log_unreadable", path=self._path, error=str(exc))
                    self._close()
                    return
                if not data:
                    return
                container_id = oom_killed_container(data.decode(errors="replace"))
                if container_id:
                    self._killed[container_id] = None
                    while len(self._killed) > REMEMBERED:
                        self._killed.popitem(last=False)

    def _open(self) -> int | None:
        if self._fd is None and not self._disabled:
            try:
                self._fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as exc:
                self._disabled = True
                log.info("kernel_log_not_read", path=self._path, error=str(exc),
                         consequence="OOMKilled is reported only when podman reports it")
        return self._fd

    def _close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self._disabled = None, True
