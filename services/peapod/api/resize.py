"""In-place resize of a pod's cpu and memory (Kubernetes 1.33's ``pods/resize`` subresource).

``resizePolicy`` is checked as Kubernetes' ``validateResizePolicy`` checks it, and a resize
as ``ValidatePodResize`` does, with its words: only the cpu and memory requests and limits
of app containers (and their ``resizePolicy``) may change, none may be removed, the pod's
QoS class may not change, and a pod with pod-level resources cannot be resized (nor a
static pod: the apiserver's handler says so). The kubelet applies an accepted resize (``kubelet/resize.py``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from peapod.api.pod import Container, ContainerResizePolicy, Pod
from peapod.api.resources import qos_class

RESIZABLE = ("cpu", "memory")
POLICIES = ("NotRequired", "RestartContainer")


def resize_policy_problems(where: str, container: Container, *, init: bool,
                           pod_restart_policy: str) -> Iterator[str]:
    """Kubernetes' validateResizePolicy, and its refusal on a (non-sidecar) init container."""
    policies = container.resize_policy or []
    if init and policies and container.restart_policy != "Always":
        yield f"{where}.resizePolicy: Forbidden: must not be set for init containers"
        return
    seen: set[str] = set()
    for i, policy in enumerate(policies):
        path = f"{where}.resizePolicy[{i}]"
        if policy.resource_name in seen:
            yield f'{path}: Duplicate value: "{policy.resource_name}"'
        seen.add(policy.resource_name)
        if pod_restart_policy == "Never" and policy.restart_policy != "NotRequired":
            yield (f"{where}.resizePolicy: Invalid value: {_policies(policies)}: must be "
                   "'NotRequired' when `restartPolicy` is 'Never'")


def _policies(policies: list[ContainerResizePolicy]) -> str:
    return json.dumps([p.to_wire() for p in policies], separators=(",", ":"))


def restart_policy(container: Container, resource: str) -> str:
    """The container's policy for resizing ``resource``: NotRequired unless it says otherwise."""
    for policy in container.resize_policy or []:
        if policy.resource_name == resource:
            return policy.restart_policy
    return "NotRequired"


def cpu_memory(section: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (section or {}).items() if k in RESIZABLE}


def merge_resize_patch(stored: Pod, patch: Any) -> dict[str, Any]:
    """``patch`` (a strategic merge patch, as ``kubectl patch --subresource resize`` sends)
    applied to ``stored``: containers are matched by name, ``resources`` merged key by key
    (null removes a key). Raises ValueError for a patch that is not of that shape."""
    if not isinstance(patch, dict):
        raise ValueError("the patch must be a JSON object")
    doc = stored.to_wire()
    if set(patch) - {"spec"} or not isinstance(patch.get("spec"), dict):
        raise ValueError("the resize subresource takes a patch of spec only")
    for field, part in patch["spec"].items():
        if field in ("containers", "initContainers"):
            doc["spec"][field] = _merge_named(doc["spec"].get(field) or [], part, field)
        else:
            doc["spec"][field] = _merge(doc["spec"].get(field), part)
    return doc


def _merge_named(current: list[dict[str, Any]], patch: Any, field: str) -> list[dict[str, Any]]:
    if not isinstance(patch, list) or not all(isinstance(p, dict) and isinstance(p.get("name"), str)
                                              for p in patch):
        raise ValueError(f"spec.{field} must be a list of objects with a name")
    merged = [dict(c) for c in current]
    for part in patch:
        found = next((c for c in merged if c.get("name") == part["name"]), None)
        if found is None:
            merged.append(part)
        else:
            merged[merged.index(found)] = _merge(found, part)
    return merged


def _merge(current: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386): objects merged key by key, null removes a key."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(current) if isinstance(current, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


def _resources(container: Container, section: str) -> dict[str, Any]:
    res = container.resources
    return dict((getattr(res, section) if res else None) or {})


def _without_cpu_memory(pod: Pod) -> dict[str, Any]:
    """The pod's spec with its app containers' cpu/memory and resizePolicy left out."""
    spec = pod.spec.model_copy(deep=True)
    for container in spec.containers:
        container.resize_policy = None
        if container.resources is not None:
            container.resources.requests = {k: v for k, v in _resources(container, "requests")
                                            .items() if k not in RESIZABLE} or None
            container.resources.limits = {k: v for k, v in _resources(container, "limits")
                                          .items() if k not in RESIZABLE} or None
            if not container.resources.requests and not container.resources.limits:
                container.resources = None
    return spec.to_wire()


def resize_problems(old: Pod, new: Pod) -> list[str]:
    """Kubernetes' ValidatePodResize (the checks between the old and the new pod)."""
    if old.spec.resources is not None or new.spec.resources is not None:
        return ["Forbidden: pods with pod-level resources cannot be resized"]
    problems: list[str] = []
    if qos_class(old) != qos_class(new):
        problems.append(f'spec: Invalid value: "{qos_class(new)}": Pod QOS Class may not change '
                        "as a result of resizing")
    names = [c.name for c in new.spec.containers]
    for ix, container in enumerate(old.spec.containers):
        if ix >= len(names) or names[ix] != container.name:
            break  # the spec check below says so
        after = new.spec.containers[ix]
        for section, word in (("requests", "requests"), ("limits", "limits")):
            if set(cpu_memory(_resources(container, section))) - \
                    set(cpu_memory(_resources(after, section))):
                problems.append(f"spec.containers[{ix}].resources.{section}: Forbidden: "
                                f"resource {word} cannot be removed")
    if _without_cpu_memory(old) != _without_cpu_memory(new):
        problems.append("spec: Forbidden: only cpu and memory resources are mutable")
    return problems


def resized(old: Pod, new: Pod) -> bool:
    """Did the resize change any container's cpu or memory?"""
    return any(cpu_memory(_resources(a, s)) != cpu_memory(_resources(b, s))
               for a, b in zip(old.spec.containers, new.spec.containers, strict=False)
               for s in ("requests", "limits"))
