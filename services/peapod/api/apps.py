"""ReplicaSet and Deployment, as Kubernetes' apps/v1 defines them, limited to what peapod runs.

A ReplicaSet keeps ``spec.replicas`` pods made from ``spec.template`` whose
labels match ``spec.selector``; a Deployment keeps one ReplicaSet per pod
template and rolls from the old ones to the new one. The controller manager
(``peapod.controllers``) does both; the apiserver stores them, bumps
``metadata.generation`` when the spec changes and takes ``status`` only
from the controller manager. Fields peapod does not implement
(``minReadySeconds``, ``paused``, ``progressDeadlineSeconds``) are absent,
so a manifest using them is refused with the field's path.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from peapod.api.base import Model
from peapod.api.labelselector import LabelSelector, requirement_problems
from peapod.api.meta import ObjectMeta
from peapod.api.pod import PodSpec
from peapod.api.validation import meta_problems, pod_spec_problems

APPS_V1 = "apps/v1"
POD_TEMPLATE_HASH = "pod-template-hash"  # the label a Deployment's ReplicaSets select on
REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE_ANNOTATION = "kubernetes.io/change-cause"


class PodTemplateSpec(Model):
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)
    spec: PodSpec


class ReplicaSetCondition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class ReplicaSetSpec(Model):
    replicas: int = Field(default=1, ge=0)
    selector: LabelSelector | None = None
    template: PodTemplateSpec


class ReplicaSetStatus(Model):
    replicas: int = 0
    fully_labeled_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    observed_generation: int | None = None
    conditions: list[ReplicaSetCondition] | None = None


class ReplicaSet(Model):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["ReplicaSet"] = "ReplicaSet"
    metadata: ObjectMeta
    spec: ReplicaSetSpec
    status: ReplicaSetStatus | None = None


IntOrPercent = int | str


class RollingUpdateDeployment(Model):
    max_unavailable: IntOrPercent | None = None
    max_surge: IntOrPercent | None = None


class DeploymentStrategy(Model):
    type: Literal["RollingUpdate", "Recreate"] = "RollingUpdate"
    rolling_update: RollingUpdateDeployment | None = None

    @model_validator(mode="after")
    def _defaults(self) -> DeploymentStrategy:
        # Kubernetes' SetDefaults_Deployment: 25% and 25% for a rolling update
        if self.type == "RollingUpdate":
            self.rolling_update = self.rolling_update or RollingUpdateDeployment()
            if self.rolling_update.max_unavailable is None:
                self.rolling_update.max_unavailable = "25%"
            if self.rolling_update.max_surge is None:
                self.rolling_update.max_surge = "25%"
        return self


class DeploymentCondition(Model):
    type: str
    status: Literal["True", "False", "Unknown"]
    last_update_time: str | None = None
    last_transition_time: str | None = None
    reason: str | None = None
    message: str | None = None


class DeploymentSpec(Model):
    replicas: int = Field(default=1, ge=0)
    selector: LabelSelector | None = None
    template: PodTemplateSpec
    strategy: DeploymentStrategy = Field(default_factory=DeploymentStrategy)
    revision_history_limit: int = Field(default=10, ge=0)


class DeploymentStatus(Model):
    observed_generation: int | None = None
    replicas: int | None = None
    updated_replicas: int | None = None
    ready_replicas: int | None = None
    available_replicas: int | None = None
    unavailable_replicas: int | None = None
    conditions: list[DeploymentCondition] | None = None
    collision_count: int | None = None


class Deployment(Model):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"] = "Deployment"
    metadata: ObjectMeta
    spec: DeploymentSpec
    status: DeploymentStatus | None = None


class RollingUpdateDaemonSet(Model):
    max_unavailable: IntOrPercent = 1


class DaemonSetUpdateStrategy(Model):
    type: Literal["RollingUpdate", "OnDelete"] = "RollingUpdate"
    rolling_update: RollingUpdateDaemonSet | None = None

    @model_validator(mode="after")
    def _defaults(self) -> DaemonSetUpdateStrategy:
        if self.type == "RollingUpdate" and self.rolling_update is None:
            self.rolling_update = RollingUpdateDaemonSet()
        return self


class DaemonSetSpec(Model):
    selector: LabelSelector | None = None
    template: PodTemplateSpec
    update_strategy: DaemonSetUpdateStrategy = Field(default_factory=DaemonSetUpdateStrategy)


class DaemonSetStatus(Model):
    current_number_scheduled: int = 0
    number_misscheduled: int = 0
    desired_number_scheduled: int = 0
    number_ready: int = 0
    observed_generation: int | None = None
    updated_number_scheduled: int | None = None
    number_available: int | None = None
    number_unavailable: int | None = None


class DaemonSet(Model):
    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["DaemonSet"] = "DaemonSet"
    metadata: ObjectMeta
    spec: DaemonSetSpec
    status: DaemonSetStatus | None = None


_PERCENT = re.compile(r"^[0-9]+%$")


def _selector_problems(selector: LabelSelector | None, template: PodTemplateSpec,
                       kind: str) -> list[str]:
    if selector is None or selector.empty:
        if selector is not None and kind == "deployment":
            return ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]
        return ["spec.selector: Required value"]
    problems = requirement_problems("spec.selector", selector)
    if not problems and not selector.matches(template.metadata.labels):
        labels = ", ".join(f'"{k}":"{v}"' for k, v in sorted((template.metadata.labels or {}).items()))
        problems.append(f"spec.template.metadata.labels: Invalid value: "
                        f"map[string]string{{{labels}}}: `selector` does not match template "
                        "`labels`")
    return problems


def _template_problems(template: PodTemplateSpec) -> list[str]:
    problems = [f"spec.template.{p}" for p in pod_spec_problems(template.spec)]
    for key in ("name", "namespace", "generate_name"):
        if getattr(template.metadata, key):
            problems.append(f"spec.template.metadata.{key}: Forbidden: set by the controller")
    labels_only = ObjectMeta(name="template", labels=template.metadata.labels)
    problems.extend(f"spec.template.{p}" for p in meta_problems(labels_only, namespaced=True))
    if template.spec.restart_policy != "Always":
        problems.append(f"spec.template.spec.restartPolicy: Unsupported value: "
                        f'"{template.spec.restart_policy}": supported values: "Always"')
    if template.spec.node_name:
        problems.append("spec.template.spec.nodeName: Forbidden: peapod schedules a "
                        "controller's pods; use spec.template.spec.nodeSelector")
    return problems


def replicaset_problems(rs: ReplicaSet) -> list[str]:
    return (meta_problems(rs.metadata, namespaced=True)
            + _selector_problems(rs.spec.selector, rs.spec.template, "replicaset")
            + _template_problems(rs.spec.template))


def int_or_percent_problems(path: str, value: IntOrPercent | None) -> list[str]:
    if value is None or (isinstance(value, int) and value >= 0):
        return []
    if isinstance(value, str) and _PERCENT.match(value):
        return []
    return [f"{path}: Invalid value: {value!r}: must be a non-negative integer or a percentage "
            "(e.g. '25%')"]


def deployment_problems(deploy: Deployment) -> list[str]:
    problems = (meta_problems(deploy.metadata, namespaced=True)
                + _selector_problems(deploy.spec.selector, deploy.spec.template, "deployment")
                + _template_problems(deploy.spec.template))
    strategy = deploy.spec.strategy
    rolling = strategy.rolling_update
    if strategy.type == "Recreate" and rolling is not None:
        problems.append("spec.strategy.rollingUpdate: Forbidden: may not be specified when "
                        "strategy `type` is 'Recreate'")
    elif rolling is not None:
        where = "spec.strategy.rollingUpdate"
        problems += int_or_percent_problems(f"{where}.maxUnavailable", rolling.max_unavailable)
        problems += int_or_percent_problems(f"{where}.maxSurge", rolling.max_surge)
        if rolling.max_unavailable in (0, "0%") and rolling.max_surge in (0, "0%"):
            problems.append(f"{where}.maxUnavailable: Invalid value: {rolling.max_unavailable!r}: "
                            "may not be 0 when `maxSurge` is 0")
        if isinstance(rolling.max_unavailable, str) and _PERCENT.match(rolling.max_unavailable) \
                and int(rolling.max_unavailable[:-1]) > 100:
            problems.append(f"{where}.maxUnavailable: Invalid value: "
                            f"{rolling.max_unavailable!r}: must not be greater than 100%")
    return problems


def daemonset_problems(ds: DaemonSet) -> list[str]:
    problems = (meta_problems(ds.metadata, namespaced=True)
                + _selector_problems(ds.spec.selector, ds.spec.template, "daemonset")
                + _template_problems(ds.spec.template))
    strategy = ds.spec.update_strategy
    if strategy.type == "OnDelete" and strategy.rolling_update is not None:
        problems.append("spec.updateStrategy.rollingUpdate: Forbidden: may not be specified "
                        "when strategy `type` is 'OnDelete'")
    elif strategy.rolling_update is not None:
        where = "spec.updateStrategy.rollingUpdate.maxUnavailable"
        value = strategy.rolling_update.max_unavailable
        problems += int_or_percent_problems(where, value)
        if value in (0, "0%"):
            problems.append(f"{where}: Invalid value: {value!r}: cannot be 0")
    return problems
