"""The wire contract: Kubernetes-shaped models, validation and manifest parsing.

Imports nothing else of peapod's but ``errors``.
"""

from peapod.api.base import Model, now_rfc3339, parse_rfc3339
from peapod.api.config import ConfigMap, Secret
from peapod.api.event import Event, EventSource
from peapod.api.manifest import ApiObject, load_documents, parse_object
from peapod.api.meta import Condition, ObjectList, ObjectMeta, ObjectReference, OwnerReference
from peapod.api.namespace import Namespace, NamespaceSpec, NamespaceStatus
from peapod.api.node import Node, NodeAddress, NodeSpec, NodeStatus, NodeSystemInfo
from peapod.api.pod import (
    Container,
    ContainerPort,
    ContainerState,
    ContainerStateRunning,
    ContainerStateTerminated,
    ContainerStateWaiting,
    ContainerStatus,
    EnvVar,
    Pod,
    PodSpec,
    PodStatus,
    Volume,
    VolumeMount,
)

__all__ = [
    "ApiObject", "Condition", "ConfigMap", "Container", "ContainerPort", "ContainerState",
    "ContainerStateRunning", "ContainerStateTerminated", "ContainerStateWaiting",
    "ContainerStatus", "EnvVar", "Event", "EventSource", "Model", "Namespace", "NamespaceSpec",
    "NamespaceStatus", "Node", "NodeAddress",
    "NodeSpec", "NodeStatus", "NodeSystemInfo", "ObjectList", "ObjectMeta", "ObjectReference",
    "OwnerReference", "Pod", "PodSpec", "PodStatus", "Secret", "Volume", "VolumeMount",
    "load_documents", "now_rfc3339", "parse_object", "parse_rfc3339",
]
