"""``ephemeral-storage`` limits, enforced as Kubernetes' eviction manager enforces them.

Each container's local ephemeral storage is its writable layer (podman's
``SizeRw``) plus its log file; the pod's is the sum of its containers' and of
its emptyDirs on disk (one of ``medium: Memory`` counts as memory, not
storage). Checked every ``SIZE_CHECK_SECONDS`` with the emptyDir sizeLimits,
in Kubernetes' order: emptyDirs, then the pod against the sum of its
containers' limits, then each container against its own. The first one over
evicts the pod with Kubernetes' message.
"""

from __future__ import annotations

from collections.abc import Mapping

from peapod.api import Pod
from peapod.api.quantity import format_memory, memory_bytes

RESOURCE = "ephemeral-storage"


def limits(pod: Pod) -> dict[str, int]:
    """Container name -> its ``limits.ephemeral-storage`` in bytes, for those that have one."""
    found = {}
    for container in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        value = ((container.resources.limits or {}) if container.resources else {}).get(RESOURCE)
        if value is not None:
            found[container.name] = memory_bytes(value)
    return found


def _limit_text(pod: Pod, name: str) -> str:
    container = next(c for c in [*(pod.spec.init_containers or []), *pod.spec.containers]
                     if c.name == name)
    assert container.resources is not None and container.resources.limits is not None
    return str(container.resources.limits[RESOURCE])


def eviction(pod: Pod, *, containers: Mapping[str, int], empty_dirs: int) -> str | None:
    """Kubernetes' eviction message if the pod is over a limit, else None.

    ``containers`` is each container's usage in bytes, ``empty_dirs`` the pod's
    emptyDirs on disk.
    """
    limited = limits(pod)
    if not limited:
        return None
    total = sum(limited.values())
    if sum(containers.values()) + empty_dirs > total:
        return ("Pod ephemeral local storage usage exceeds the total limit of containers "
                f"{format_memory(total)}. ")
    for name, limit in limited.items():
        if containers.get(name, 0) > limit:
            return (f"Container {name} exceeded its local ephemeral storage limit "
                    f'"{_limit_text(pod, name)}". ')
    return None
