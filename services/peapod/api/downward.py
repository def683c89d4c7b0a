"""The downward API: a pod's own fields and its containers' resources, as text.

Kubernetes' ``fieldpath.ExtractFieldPathAsString`` and the kubelet's
``podFieldSelectorRuntimeValue`` (``fieldRef``), and
``ExtractContainerResourceValue`` (``resourceFieldRef``): a CPU value is
``ceil(milli-CPU / divisor in milli-CPU)``, memory and ephemeral storage
``ceil(bytes / divisor)``, and a limit that is not set is the node's
allocatable amount, as the kubelet substitutes it. Label and annotation maps
are ``key="value"`` lines in key order (Kubernetes' ``FormatMap``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

from peapod.api.pod import Container, Pod
from peapod.api.quantity import parse_quantity
from peapod.api.sources import SUBSCRIPTED, ObjectFieldSelector, ResourceFieldSelector


@dataclass(frozen=True)
class Where:
    """What only the node knows: the pod's and the host's addresses, its allocatable."""

    pod_ip: str = ""
    host_ip: str = ""
    allocatable: dict[str, str] = field(default_factory=dict)


def format_map(values: dict[str, str] | None) -> str:
    return "\n".join(f"{k}={json.dumps(v, ensure_ascii=False)}"
                     for k, v in sorted((values or {}).items()))


def field_value(pod: Pod, ref: ObjectFieldSelector, where: Where) -> str:
    """The text of ``ref.fieldPath`` for ``pod`` (paths are checked at admission)."""
    path, meta = ref.field_path, pod.metadata
    if match := SUBSCRIPTED.match(path):
        values = meta.labels if match.group(1) == "labels" else meta.annotations
        return (values or {}).get(match.group(2), "")
    simple = {
        "metadata.name": meta.name, "metadata.namespace": meta.namespace or "default",
        "metadata.uid": meta.uid, "metadata.labels": format_map(meta.labels),
        "metadata.annotations": format_map(meta.annotations),
        "spec.nodeName": pod.spec.node_name,
        "spec.serviceAccountName": pod.spec.service_account_name or "default",
        "status.hostIP": where.host_ip, "status.hostIPs": where.host_ip,
        "status.podIP": where.pod_ip, "status.podIPs": where.pod_ip,
    }
    return simple.get(path) or ""


def resource_value(pod: Pod, container: Container, ref: ResourceFieldSelector,
                   where: Where) -> str:
    """The text of ``ref.resource`` of ``ref.containerName`` (default: ``container``)."""
    target = next((c for c in [*(pod.spec.init_containers or []), *pod.spec.containers]
                   if c.name == ref.container_name), container)
    section, _, name = ref.resource.partition(".")
    resources = target.resources
    limits = dict((resources.limits if resources else None) or {})
    requests = dict((resources.requests if resources else None) or {})
    requests = {**limits, **requests}  # Kubernetes defaults a missing request to the limit
    value = (limits if section == "limits" else requests).get(name)
    if value is None and section == "limits":  # the pod-level limit, else the node's allocatable
        pod_limits = (pod.spec.resources.limits if pod.spec.resources else None) or {}
        value = pod_limits.get(name, where.allocatable.get(name))
    amount = parse_quantity(value if value is not None else 0)
    divisor = parse_quantity(ref.divisor if ref.divisor not in (None, "", 0, "0") else 1)
    if name == "cpu":
        millis = math.ceil(amount * 1000)
        return str(math.ceil(millis / math.ceil(divisor * 1000)))
    return str(math.ceil(math.ceil(amount) / math.ceil(divisor)))
