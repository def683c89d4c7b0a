"""What a kubelet says about its machine: the Node object it registers.

Capacity comes from the machine itself (CPU count, MemTotal), plus the
extended resources the kubelet is configured to advertise (``example.com/dongle``:
a count nothing on the node measures, as Kubernetes' hand-advertised ones), the runtime
version from podman, and the labels Kubernetes users select on
(``kubernetes.io/hostname``, ``kubernetes.io/arch``, ``kubernetes.io/os``).
Addresses are read locally; nothing is sent on the network to find them.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import struct
from pathlib import Path

from peapod import __version__
from peapod.api import Condition, Node, NodeAddress, NodeStatus, NodeSystemInfo, ObjectMeta
from peapod.api.base import now_rfc3339

# uname's machine to Go's GOARCH, which Kubernetes' kubernetes.io/arch holds
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv8l": "arm", "armv7l": "arm", "armv6l": "arm",
         "i686": "386", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
# the 32-bit userland a 64-bit kernel may run (32-bit Raspberry Pi OS on a Pi 4 or 5)
_ARCH_32 = {"x86_64": "386", "aarch64": "arm"}


def architecture(machine: str | None = None, pointer_bytes: int | None = None) -> str:
    """``kubernetes.io/arch``: the architecture of this userland, as a kubelet's GOARCH is.

    uname names the kernel's; a 32-bit Python on a 64-bit kernel is a 32-bit
    userland, whose podman pulls and runs 32-bit images.
    """
    machine = machine or platform.machine()
    pointer_bytes = pointer_bytes or struct.calcsize("P")
    if pointer_bytes == 4 and machine in _ARCH_32:
        return _ARCH_32[machine]
    return _ARCH.get(machine, machine)


def memory_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def machine_id() -> str:
    try:
        return Path("/etc/machine-id").read_text().strip()
    except OSError:
        return ""


def internal_ip() -> str:
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
    return address


def storage_capacity(state_dir: Path) -> int:
    """The node's ephemeral-storage: the size of the filesystem of the kubelet's state
    directory (Kubernetes' nodefs, the kubelet's root directory), in bytes; 0 if unknown."""
    try:
        return shutil.disk_usage(state_dir).total // 1024 * 1024  # as the Node reports it, in Ki
    except OSError:
        return 0


def build_node(name: str, *, runtime_version: str, labels: dict[str, str] | None = None,
               extended_resources: dict[str, str] | None = None,
               ephemeral_storage: int = 0,
               address: str | None = None, ready: bool = True,
               reason: str = "KubeletReady", message: str = "kubelet is posting ready status") -> Node:
    now = now_rfc3339()
    capacity = {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib()}Ki", "pods": "110",
                **({"ephemeral-storage": f"{ephemeral_storage // 1024}Ki"}
                   if ephemeral_storage else {}),
                **(extended_resources or {})}  # advertised as configured, all allocatable
    all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                  "kubernetes.io/arch": architecture(), **(labels or {})}
    return Node(
        metadata=ObjectMeta(name=name, labels=all_labels),
        status=NodeStatus(
            capacity=capacity,
            allocatable=dict(capacity),
            conditions=[Condition(type="Ready", status="True" if ready else "False",
                                  reason=reason, message=message,
                                  last_heartbeat_time=now, last_transition_time=now)],
            addresses=[NodeAddress(type="InternalIP", address=address or internal_ip()),
                       NodeAddress(type="Hostname", address=socket.gethostname())],
            node_info=NodeSystemInfo(
                machine_id=machine_id(), kernel_version=platform.release(),
                os_image=os_image(), container_runtime_version=f"podman://{runtime_version}",
                kubelet_version=f"v{__version__}", operating_system="linux",
                architecture=architecture(),
            ),
        ),
    )
