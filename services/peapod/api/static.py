"""Static pods and their mirror pods, as Kubernetes' kubelet and NodeRestriction make them.

A static pod comes from a manifest file on the node (``/etc/peapod/manifests``),
not from the API: its kubelet runs it with or without a control plane. As in
Kubernetes (``pkg/kubelet/config/common.go``), the pod read from a file is
named ``<name>-<node>``, put in ``default`` unless it names a namespace, bound
to the node, given the toleration ``Exists:NoExecute`` (node problems never
evict it), and a uid that is a hash of its content, its node and its file, also
kept in the annotation ``kubernetes.io/config.hash``: an edited file is a new
pod. ``kubernetes.io/config.source: file`` and ``kubernetes.io/config.seen``
say where and when it was read.

Its **mirror pod** is the copy the kubelet creates in the API so people see it:
the same pod with ``kubernetes.io/config.mirror`` (the static pod's hash) and
one controller owner reference, its Node. The apiserver lets a node create and
delete mirror pods of its own only (``mirror_problem`` is Kubernetes'
NodeRestriction admission, with its words), and a mirror pod may reference no
ConfigMap or Secret, or a node could read any of them through its pods.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from peapod.api.base import now_rfc3339
from peapod.api.pod import Pod, PodStatus
from peapod.api.resources import qos_class
from peapod.api.scheduling import Toleration
from peapod.api.sources import referenced_objects
from peapod.errors import Invalid, invalid

CONFIG_SOURCE = "kubernetes.io/config.source"
CONFIG_HASH = "kubernetes.io/config.hash"
CONFIG_SEEN = "kubernetes.io/config.seen"
CONFIG_MIRROR = "kubernetes.io/config.mirror"
FILE_SOURCE = "file"


def is_mirror(pod: Pod) -> bool:
    return CONFIG_MIRROR in (pod.metadata.annotations or {})


def mirror_hash(pod: Pod) -> str | None:
    """The hash (the static pod's uid) a mirror pod stands for."""
    return (pod.metadata.annotations or {}).get(CONFIG_MIRROR)


def own_uids(pod: Pod) -> set[str | None]:
    """The uids an event about ``pod`` may name: none, its own, and for a mirror pod its static
    pod's (the kubelet records events about the static pod)."""
    return {None, pod.metadata.uid, mirror_hash(pod)}


def static_pod(doc: dict[str, Any], *, node_name: str, source: str) -> Pod:
    """The static pod of one manifest document read from ``source`` on ``node_name``.

    Validated as ``create -f`` validates a Pod (``Invalid`` naming the field), then
    defaulted as Kubernetes' file source defaults it."""
    from peapod.api.manifest import parse_object  # the manifest reader: only for static pods
    obj = parse_object(doc)
    if not isinstance(obj, Pod):
        raise Invalid(f"{obj.kind} {obj.metadata.name!r}: a static pod manifest holds kind "
                      f"Pod, not {obj.kind}")
    meta = obj.metadata
    if not meta.name:
        raise invalid("Pod", "", ["metadata.name: Required value: a static pod needs a name "
                                  "(generateName cannot be used)"])
    problems = static_problems(obj)
    if problems:
        raise invalid("Pod", meta.name, problems)
    hasher = hashlib.md5(usedforsecurity=False)  # Kubernetes' DeepHashObject uses md5 too
    hasher.update(json.dumps(obj.to_wire(), sort_keys=True, separators=(",", ":")).encode())
    hasher.update(f"host:{node_name}".encode())
    hasher.update(f"file:{source}".encode())
    uid = hasher.hexdigest()
    meta.uid = uid
    meta.name = f"{meta.name}-{node_name}"
    meta.namespace = meta.namespace or "default"
    meta.resource_version = meta.creation_timestamp = None
    meta.annotations = {**(meta.annotations or {}), CONFIG_HASH: uid,
                        CONFIG_SOURCE: FILE_SOURCE, CONFIG_SEEN: now_rfc3339()}
    obj.spec.node_name = node_name
    tolerate_all = Toleration(operator="Exists", effect="NoExecute")
    if tolerate_all not in (obj.spec.tolerations or []):
        obj.spec.tolerations = [*(obj.spec.tolerations or []), tolerate_all]
    obj.status = PodStatus(phase="Pending", qos_class=qos_class(obj))  # type: ignore[arg-type]
    again = parse_object(obj.to_wire())  # the full name must be a valid name too
    assert isinstance(again, Pod)
    return again


def static_problems(pod: Pod) -> list[str]:
    """What a static pod may not hold: what only the API could give it, or what would let
    its mirror pod claim something of the cluster's."""
    meta = pod.metadata
    problems = []
    if meta.finalizers:
        problems.append("metadata.finalizers: Forbidden: a static pod holds no finalizer")
    if meta.owner_references:
        problems.append("metadata.ownerReferences: Forbidden: a static pod is owned by its "
                        "node only")
    if CONFIG_MIRROR in (meta.annotations or {}):
        problems.append(f"metadata.annotations[{CONFIG_MIRROR}]: Forbidden: set by the kubelet "
                        "on the mirror pod")
    for kind, name in sorted(referenced_objects(pod)):
        problems.append(f"spec: Forbidden: static pods may not reference {kind}s "
                        f"({kind} {name!r}): they run without the API")
    return problems


def mirror_of(static: Pod, *, node_uid: str) -> dict[str, Any]:
    """The mirror pod to create in the API for ``static``, as a manifest."""
    wire = static.to_wire()
    wire.pop("status", None)
    meta = wire["metadata"]
    for field in ("uid", "resourceVersion", "creationTimestamp"):
        meta.pop(field, None)
    meta["annotations"] = {**meta.get("annotations", {}), CONFIG_MIRROR: static.metadata.uid}
    meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "Node",
                                "name": static.spec.node_name, "uid": node_uid,
                                "controller": True}]
    return wire


def mirror_problem(pod: Pod, *, node_name: str, node_uid: str | None) -> str | None:
    """Why node ``node_name`` may not create ``pod``, in Kubernetes' NodeRestriction words."""
    node = f'node "{node_name}"'
    if not is_mirror(pod):
        return (f'pod does not have "{CONFIG_MIRROR}" annotation, {node} can only create '
                "mirror pods")
    if pod.spec.node_name != node_name:
        return f"{node} can only create pods with spec.nodeName set to itself"
    refs = pod.metadata.owner_references or []
    if len(refs) != 1:
        what = "a single owner reference" if refs else "an owner reference"
        return f"{node} can only create pods with {what} set to itself"
    owner = refs[0]
    if owner.api_version != "v1" or owner.kind != "Node" or owner.name != node_name:
        return f"{node} can only create pods with an owner reference set to itself"
    if not owner.controller:
        return f"{node} can only create pods with a controller owner reference set to itself"
    if owner.block_owner_deletion:
        return f"{node} must not set blockOwnerDeletion on an owner reference"
    if owner.uid != node_uid:
        return f"node {node_name} UID mismatch: expected {node_uid} got {owner.uid}"
    kinds = sorted({kind for kind, _ in referenced_objects(pod)})
    if kinds:
        return f"{node} can not create pods that reference {kinds[0].lower()}s"
    return None
