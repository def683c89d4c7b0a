"""Pod, as Kubernetes' core/v1 defines it, limited to what peapod runs.

Fields peapod does not implement are absent, so a manifest using them is
refused with the field's path instead of being silently ignored. Structural
checks live in the types; checks across fields (unique names, mounts that
name a volume) live in ``validation.py`` so each error names its exact path.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from peapod.api.base import Model
from peapod.api.meta import Condition, ObjectMeta
from peapod.api.priority import PreemptionPolicy
from peapod.api.probe import Lifecycle, Probe
from peapod.api.resources import default_pod_requests
from peapod.api.scheduling import (
    DEFAULT_SCHEDULER,
    Affinity,
    PodSchedulingGate,
    Toleration,
    TopologySpreadConstraint,
)
from peapod.api.security import HostAlias, PodDNSConfig, PodSecurityContext, SecurityContext
from peapod.api.sources import (
    ConfigMapVolumeSource,
    DownwardAPIVolumeSource,
    EnvFromSource,
    EnvVarSource,
    ProjectedVolumeSource,
    SecretVolumeSource,
)

PullPolicy = Literal["Always", "IfNotPresent", "Never"]


class EnvVar(Model):
    name: str
    value: str | None = None
    value_from: EnvVarSource | None = None


class ContainerPort(Model):
    container_port: int = Field(ge=1, le=65535)
    host_port: int | None = Field(default=None, ge=1, le=65535)
    host_ip: str | None = Field(default=None, alias="hostIP")
    protocol: Literal["TCP", "UDP", "SCTP"] = "TCP"
    name: str | None = None


class ResourceRequirements(Model):
    requests: dict[str, str | int | float] | None = None
    limits: dict[str, str | int | float] | None = None


class ContainerResizePolicy(Model):
    """How a resize of one resource is applied (checked in resize.py, Kubernetes' words)."""

    resource_name: Literal["cpu", "memory"]
    restart_policy: Literal["NotRequired", "RestartContainer"]


class VolumeMount(Model):
    name: str
    mount_path: str
    read_only: bool | None = None
    sub_path: str | None = None
    # None: rprivate (the default), HostToContainer: rslave, Bidirectional: rshared
    mount_propagation: Literal["None", "HostToContainer", "Bidirectional"] | None = None
    # Enabled is refused in validation: podman 4.3 has no recursive read-only mount
    recursive_read_only: Literal["Disabled", "IfPossible", "Enabled"] | None = None


class Container(Model):
    name: str
    image: str
    command: list[str] | None = None
    args: list[str] | None = None
    working_dir: str | None = None
    env: list[EnvVar] | None = None
    env_from: list[EnvFromSource] | None = None
    ports: list[ContainerPort] | None = None
    resources: ResourceRequirements | None = None
    resize_policy: list[ContainerResizePolicy] | None = None
    volume_mounts: list[VolumeMount] | None = None
    image_pull_policy: PullPolicy | None = None
    # only on an init container: "Always" makes it a sidecar (validation.py refuses it elsewhere)
    restart_policy: Literal["Always"] | None = None
    security_context: SecurityContext | None = None
    liveness_probe: Probe | None = None
    readiness_probe: Probe | None = None
    startup_probe: Probe | None = None
    lifecycle: Lifecycle | None = None
    termination_message_path: str = "/dev/termination-log"  # Kubernetes' defaults
    termination_message_policy: Literal["File", "FallbackToLogsOnError"] = "File"
    # a stdin kept open for `attach -i` (closed after the first attach ends if stdinOnce)
    # and a terminal for the main process (`attach -t`); Kubernetes' defaults are false
    stdin: bool | None = None
    stdin_once: bool | None = None
    tty: bool | None = None

    @model_validator(mode="after")
    def _default_pull_policy(self) -> Container:
        if self.image_pull_policy is None and self.image:
            self.image_pull_policy = default_pull_policy(self.image)
        return self


def default_pull_policy(image: str) -> PullPolicy:
    """Kubernetes' rule: ':latest' or no tag means Always, anything else IfNotPresent."""
    last = image.rsplit("/", 1)[-1]
    tagged = ":" in last and not last.endswith(":latest")
    return "IfNotPresent" if tagged or "@" in last else "Always"


class EmptyDirVolumeSource(Model):
    medium: Literal["", "Memory"] | None = None
    size_limit: str | None = None


class HostPathVolumeSource(Model):
    path: str
    type: Literal[
        "", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
        "CharDevice", "BlockDevice",
    ] | None = None


class PersistentVolumeClaimVolumeSource(Model):
    claim_name: str
    read_only: bool | None = None


class ImageVolumeSource(Model):
    """An OCI image's filesystem as a read-only volume (Kubernetes 1.31+)."""

    reference: str = ""
    pull_policy: PullPolicy | None = None

    @model_validator(mode="after")
    def _default_pull_policy(self) -> ImageVolumeSource:
        if self.pull_policy is None and self.reference:
            self.pull_policy = default_pull_policy(self.reference)
        return self


class Volume(Model):
    name: str
    empty_dir: EmptyDirVolumeSource | None = None
    host_path: HostPathVolumeSource | None = None
    config_map: ConfigMapVolumeSource | None = None
    secret: SecretVolumeSource | None = None
    projected: ProjectedVolumeSource | None = None
    downward_api: DownwardAPIVolumeSource | None = Field(default=None, alias="downwardAPI")
    persistent_volume_claim: PersistentVolumeClaimVolumeSource | None = None
    image: ImageVolumeSource | None = None


class PullSecretReference(Model):
    """Kubernetes' LocalObjectReference: a Secret of the pod's namespace."""

    name: str = ""


class PodSpec(Model):
    init_containers: list[Container] | None = None
    containers: list[Container]
    volumes: list[Volume] | None = None
    # kubernetes.io/dockerconfigjson (or dockercfg) Secrets: the registry auth of the pulls
    image_pull_secrets: list[PullSecretReference] | None = None
    restart_policy: Literal["Always", "OnFailure", "Never"] = "Always"
    node_selector: dict[str, str] | None = None
    node_name: str | None = None
    # pod-level requests and limits (cpu, memory), Kubernetes' PodLevelResources
    resources: ResourceRequirements | None = None
    termination_grace_period_seconds: int = Field(default=30, ge=0)
    active_deadline_seconds: int | None = Field(default=None, ge=1)
    hostname: str | None = None
    security_context: PodSecurityContext | None = None
    host_network: bool | None = None
    host_pid: bool | None = Field(default=None, alias="hostPID")
    host_ipc: bool | None = Field(default=None, alias="hostIPC")
    share_process_namespace: bool | None = None
    host_aliases: list[HostAlias] | None = None
    dns_policy: Literal["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"] | None = None
    dns_config: PodDNSConfig | None = None
    # scheduling (api/scheduling.py; the scheduler honours them, docs/scheduling.md)
    scheduler_name: str = DEFAULT_SCHEDULER
    tolerations: list[Toleration] | None = None
    affinity: Affinity | None = None
    topology_spread_constraints: list[TopologySpreadConstraint] | None = None
    scheduling_gates: list[PodSchedulingGate] | None = None
    # resolved by the apiserver's priority admission from the PriorityClass (api/priority.py);
    # the scheduler pops higher priority first and preempts lower (scheduler/preemption.py)
    priority_class_name: str | None = None
    priority: int | None = Field(default=None, ge=-(2**31), le=2**31 - 1)
    preemption_policy: PreemptionPolicy | None = None
    service_account_name: str | None = None  # stored and shown; peapod has no ServiceAccounts

    @model_validator(mode="after")
    def _default_pod_requests(self) -> PodSpec:
        default_pod_requests(self)
        return self


class ContainerStateWaiting(Model):
    reason: str | None = None
    message: str | None = None


class ContainerStateRunning(Model):
    started_at: str | None = None


class ContainerStateTerminated(Model):
    exit_code: int
    signal: int | None = None
    reason: str | None = None
    message: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    container_id: str | None = Field(default=None, alias="containerID")


class ContainerState(Model):
    waiting: ContainerStateWaiting | None = None
    running: ContainerStateRunning | None = None
    terminated: ContainerStateTerminated | None = None


class ContainerStatus(Model):
    name: str
    ready: bool = False
    restart_count: int = 0
    state: ContainerState = Field(default_factory=ContainerState)
    last_state: ContainerState = Field(default_factory=ContainerState)
    image: str = ""
    image_id: str = Field(default="", alias="imageID")
    container_id: str | None = Field(default=None, alias="containerID")
    started: bool | None = None
    # what the kubelet gave the container (in-place resize: what it runs with now) and the
    # requests it allocated to it on the node
    allocated_resources: dict[str, str] | None = None
    resources: ResourceRequirements | None = None


class PodIP(Model):
    ip: str


class HostIP(Model):
    ip: str


class PodStatus(Model):
    phase: Literal["Pending", "Running", "Succeeded", "Failed", "Unknown"] | None = None
    conditions: list[Condition] | None = None
    message: str | None = None
    reason: str | None = None
    host_ip: str | None = Field(default=None, alias="hostIP")
    host_ips: list[HostIP] | None = Field(default=None, alias="hostIPs")
    pod_ip: str | None = Field(default=None, alias="podIP")
    pod_ips: list[PodIP] | None = Field(default=None, alias="podIPs")
    nominated_node_name: str | None = None  # the node a preemption freed for this pod
    start_time: str | None = None
    init_container_statuses: list[ContainerStatus] | None = None
    container_statuses: list[ContainerStatus] | None = None
    qos_class: Literal["Guaranteed", "Burstable", "BestEffort"] | None = Field(
        default=None, alias="qosClass")


class Pod(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Pod"] = "Pod"
    metadata: ObjectMeta
    spec: PodSpec
    status: PodStatus | None = None

    @property
    def key(self) -> str:
        return f"{self.metadata.namespace or 'default'}/{self.metadata.name}"
