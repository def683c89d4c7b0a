"""Does a pod fit this node: the kubelet's resource admission, in Kubernetes' words.

Kubernetes' kubelet checks each new pod against what the node's other active pods
request (its ``PredicateAdmitHandler``), and refuses one that does not fit: the pod is
``Failed`` with reason ``OutOf<resource>`` and the message ``Pod was rejected: Node didn't
have enough resource: cpu, requested: 1500, used: 1000, capacity: 2000`` (cpu in
millicores, memory and ephemeral-storage in bytes, extended resources in units). The
same check decides whether an in-place resize can be made now (``resize.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from peapod.api import Pod
from peapod.api.resources import (
    EPHEMERAL_STORAGE,
    ephemeral_storage_request,
    extended_requests,
    pod_requests,
)

ORDER = ("cpu", "memory", EPHEMERAL_STORAGE)  # then the extended resources, sorted


@dataclass(frozen=True)
class Shortage:
    resource: str
    requested: int
    used: int
    capacity: int

    @property
    def reason(self) -> str:
        return f"OutOf{self.resource}"

    @property
    def message(self) -> str:
        return (f"Node didn't have enough resource: {self.resource}, requested: "
                f"{self.requested}, used: {self.used}, capacity: {self.capacity}")


def requested(pod: Pod) -> dict[str, int]:
    """What the pod asks of the node, as the kubelet counts it."""
    amounts = pod_requests(pod)
    return {"cpu": amounts.cpu, "memory": amounts.memory,
            EPHEMERAL_STORAGE: ephemeral_storage_request(pod.spec), **extended_requests(pod.spec)}


def shortage(pod: Pod, others: Iterable[Pod], allocatable: dict[str, int]) -> Shortage | None:
    """The first resource ``pod`` does not fit in beside ``others``, or None."""
    want = requested(pod)
    used: dict[str, int] = {}
    for other in others:
        for name, value in requested(other).items():
            used[name] = used.get(name, 0) + value
    for name in [*ORDER, *sorted(set(want) - set(ORDER))]:
        amount = want.get(name, 0)
        if amount and used.get(name, 0) + amount > allocatable.get(name, 0):
            return Shortage(name, amount, used.get(name, 0), allocatable.get(name, 0))
    return None
