"""Node, as Kubernetes' core/v1 defines it: what the kubelet reports about its machine."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from peapod.api.base import Model
from peapod.api.meta import Condition, ObjectMeta


class Taint(Model):
    key: str
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]
    time_added: str | None = None  # NoExecute taints: when it was added (evictions count from it)


class NodeSpec(Model):
    unschedulable: bool | None = None
    taints: list[Taint] | None = None


class NodeAddress(Model):
    type: Literal["InternalIP", "ExternalIP", "Hostname"]
    address: str


class NodeSystemInfo(Model):
    machine_id: str = Field(default="", alias="machineID")
    kernel_version: str = ""
    os_image: str = ""
    container_runtime_version: str = ""
    kubelet_version: str = ""
    operating_system: str = "linux"
    architecture: str = ""


class NodeStatus(Model):
    capacity: dict[str, str] | None = None
    allocatable: dict[str, str] | None = None
    conditions: list[Condition] | None = None
    addresses: list[NodeAddress] | None = None
    node_info: NodeSystemInfo | None = None


class Node(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Node"] = "Node"
    metadata: ObjectMeta
    spec: NodeSpec = Field(default_factory=NodeSpec)
    status: NodeStatus | None = None

    def condition(self, kind: str) -> Condition | None:
        for cond in (self.status.conditions if self.status else None) or []:
            if cond.type == kind:
                return cond
        return None

    @property
    def ready(self) -> bool:
        cond = self.condition("Ready")
        return cond is not None and cond.status == "True"
