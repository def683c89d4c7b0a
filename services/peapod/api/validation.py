"""Validation as Kubernetes does it, with one readable line per problem.

Pydantic checks each field's type and refuses unknown fields; this module
adds the checks that span fields (unique container names, mounts that name a
declared volume, requests no larger than limits) and the name rules
(DNS-1123 names, label keys and values). Every problem is reported as
``path: message`` so a user can find it in the file, e.g.
``spec.containers[1].name: duplicate name "same"``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic.alias_generators import to_camel

from peapod.api.base import DNS1123_SUBDOMAIN, check_dns1123_label, check_dns1123_subdomain
from peapod.api.decode import format_location as format_location
from peapod.api.decode import pydantic_problems as pydantic_problems
from peapod.api.meta import GC_FINALIZERS, JOB_TRACKING_FINALIZER, ObjectMeta
from peapod.api.namespace import FINALIZER_KUBERNETES, Namespace
from peapod.api.node import Node
from peapod.api.pod import Pod, PodSpec
from peapod.api.podsecurity import label_problems
from peapod.api.probe import probe_problems
from peapod.api.quantity import parse_quantity
from peapod.api.resize import resize_policy_problems
from peapod.api.resources import (
    extended_pairing_problems,
    extended_problems,
    pod_level_problems,
)
from peapod.api.scheduling import scheduling_problems
from peapod.api.security import context_problems, host_problems
from peapod.api.sources import env_problems, path_problems, volume_source_problems
from peapod.errors import invalid

_RESOURCE_NAMES = {"cpu", "memory", "ephemeral-storage"}
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_RULE = ("must consist of alphanumeric characters, '-', '_' or '.', start and end with an "
               "alphanumeric character, and be at most 63 characters")


def meta_problems(meta: ObjectMeta, *, namespaced: bool,
                  check_name: Any = check_dns1123_subdomain,
                  finalizers: Sequence[str] = GC_FINALIZERS) -> list[str]:
    """Name rules as Kubernetes' ValidateObjectMeta: a name, or a generateName to make one from.

    ``generateName`` is checked as a prefix (a trailing '-' is allowed, since
    random characters follow); the apiserver fills in the name before storing.
    """
    problems: list[str] = []
    prefix = meta.generate_name
    if prefix and _name("metadata.generateName", _mask_trailing_dash(prefix), check_name):
        problems.extend(_name("metadata.generateName", prefix, check_name))
    if meta.name:
        problems.extend(_name("metadata.name", meta.name, check_name))
    elif not meta.generate_name:
        problems.append("metadata.name: required value: name or generateName is required")
    if namespaced and meta.namespace:
        problems.extend(_name("metadata.namespace", meta.namespace, check_dns1123_label))
    for key, value in (meta.labels or {}).items():
        problems.extend(_label_problems(key, value))
    problems.extend(_annotation_problems(meta.annotations or {}))
    return problems + owner_problems(meta, finalizers=finalizers)


# Node: a mirror pod's owner (api/static.py); the garbage collector leaves it to the node
# lifecycle controller, which ends the pods of a deleted Node
OWNER_KINDS = {"Pod": "v1", "ReplicaSet": "apps/v1", "Deployment": "apps/v1",
               "DaemonSet": "apps/v1", "Job": "batch/v1", "CronJob": "batch/v1", "Node": "v1"}


def owner_problems(meta: ObjectMeta, *, finalizers: Sequence[str] = GC_FINALIZERS) -> list[str]:
    """ownerReferences and finalizers, which the garbage collector acts on.

    As Kubernetes, at most one owner may be the controller. A finalizer is
    kept only if something removes it: the garbage collector's two
    (``foregroundDeletion``, ``orphan``); any other would block the object's
    deletion for ever, so it is refused by name.
    """
    problems: list[str] = []
    refs = meta.owner_references or []
    for i, ref in enumerate(refs):
        for field in ("api_version", "kind", "name", "uid"):
            if not getattr(ref, field):
                problems.append(f"metadata.ownerReferences[{i}].{to_camel(field)}: Required value")
        expected = OWNER_KINDS.get(ref.kind)
        if expected is None:
            problems.append(f"metadata.ownerReferences[{i}].kind: Unsupported value: "
                            f"{ref.kind!r}: supported values: \"CronJob\", \"DaemonSet\", "
                            "\"Deployment\", \"Job\", \"Node\", \"Pod\", \"ReplicaSet\" (the "
                            "kinds peapod's garbage collector follows, and a mirror pod's Node)")
        elif ref.api_version != expected:
            problems.append(f"metadata.ownerReferences[{i}].apiVersion: Invalid value: "
                            f"{ref.api_version!r}: kind {ref.kind} is {expected!r}")
    if sum(1 for ref in refs if ref.controller) > 1:
        problems.append("metadata.ownerReferences: Invalid value: only one reference can have "
                        "Controller set to true")
    supported = ", ".join(f'"{f}"' for f in finalizers)
    for i, finalizer in enumerate(meta.finalizers or []):
        if finalizer not in finalizers:
            problems.append(f"metadata.finalizers[{i}]: Unsupported value: {finalizer!r}: "
                            f"supported values: {supported} (peapod runs no other finalizer, "
                            "so the object could never be deleted)")
    return problems


ANNOTATIONS_LIMIT = 256 * 1024  # Kubernetes' TotalAnnotationSizeLimitB


def _annotation_problems(annotations: dict[str, str]) -> list[str]:
    """Kubernetes' ValidateAnnotations: qualified-name keys, at most 256 KiB in all."""
    problems = [problem for key in annotations
                for problem in _key_problems(key, field="metadata.annotations", what="annotation")]
    size = sum(len(k.encode()) + len(v.encode()) for k, v in annotations.items())
    if size > ANNOTATIONS_LIMIT:
        problems.append(f"metadata.annotations: Too long: must have at most {ANNOTATIONS_LIMIT} "
                        "bytes")
    return problems


def _mask_trailing_dash(prefix: str) -> str:
    # Kubernetes' maskTrailingDash: "web-" is a valid prefix because a suffix follows it
    return prefix[:-1] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix


def _key_problems(key: str, *, field: str = "metadata.labels", what: str = "label") -> list[str]:
    """A label or annotation key: Kubernetes' qualified name, ``[prefix/]name``."""
    problems = []
    prefix, slash, name = key.rpartition("/")
    if slash and (len(prefix) > 253 or not DNS1123_SUBDOMAIN.match(prefix)):
        problems.append(f"{field}: invalid {what} key {key!r}: prefix part must be "
                        "a lowercase RFC 1123 subdomain of at most 253 characters")
    if len(name) > 63 or not _LABEL_VALUE.match(name):
        problems.append(f"{field}: invalid {what} key {key!r}: name part {_LABEL_RULE}")
    return problems


def _label_problems(key: str, value: str) -> list[str]:
    # Label keys and values are what selectors match on; Kubernetes refuses malformed ones.
    problems = _key_problems(key)
    if value and (len(value) > 63 or not _LABEL_VALUE.match(value)):
        problems.append(f"metadata.labels.{key}: invalid label value {value!r}: "
                        f"a label value must be empty or {_LABEL_RULE}")
    return problems


def pod_problems(pod: Pod) -> list[str]:
    """A pod holds one finalizer only, the Job controller's (which that controller removes);
    the garbage collector's are for owners deleted with a propagation policy, and a pod is
    always deleted in the background."""
    return (meta_problems(pod.metadata, namespaced=True, finalizers=(JOB_TRACKING_FINALIZER,))
            + pod_spec_problems(pod.spec))


def pod_spec_problems(spec: PodSpec) -> list[str]:
    problems: list[str] = []
    if not spec.containers:
        problems.append("spec.containers: required value: a pod needs at least one container")
    volume_names = set()
    names = [c.name for c in [*(spec.init_containers or []), *spec.containers]]
    for i, vol in enumerate(spec.volumes or []):
        where = f"spec.volumes[{i}]"
        problems.extend(_name(f"{where}.name", vol.name, check_dns1123_label))
        if vol.name in volume_names:
            problems.append(f"{where}.name: duplicate name {vol.name!r}")
        volume_names.add(vol.name)
        sources = [s for s in (vol.empty_dir, vol.host_path, vol.config_map, vol.secret,
                               vol.projected, vol.downward_api, vol.persistent_volume_claim,
                               vol.image) if s is not None]
        if len(sources) != 1:
            problems.append(f"{where}: must specify exactly one of emptyDir, hostPath, "
                            "configMap, secret, projected, downwardAPI, persistentVolumeClaim, "
                            "image")
        if vol.persistent_volume_claim is not None and not vol.persistent_volume_claim.claim_name:
            problems.append(f"{where}.persistentVolumeClaim.claimName: Required value")
        if vol.image is not None and not vol.image.reference.strip():
            problems.append(f"{where}.image.reference: Required value")
        problems.extend(volume_source_problems(where, vol, set(names)))
        if vol.host_path is not None and not vol.host_path.path.startswith("/"):
            problems.append(f"{where}.hostPath.path: must be an absolute path")
        if vol.empty_dir is not None and vol.empty_dir.size_limit is not None:
            problems.extend(_quantity(f"{where}.emptyDir.sizeLimit", vol.empty_dir.size_limit))
    image_volumes = {v.name for v in spec.volumes or [] if v.image is not None}
    seen: set[str] = set()  # init and app containers share one set of names, as in Kubernetes
    for kind, containers in (("initContainers", spec.init_containers or []),
                             ("containers", spec.containers)):
        for i, container in enumerate(containers):
            where = f"spec.{kind}[{i}]"
            problems.extend(_name(f"{where}.name", container.name, check_dns1123_label))
            if container.name in seen:
                problems.append(f"{where}.name: duplicate name {container.name!r}")
            seen.add(container.name)
            if not container.image.strip():
                problems.append(f"{where}.image: required value")
            if not container.termination_message_path.startswith("/"):
                problems.append(f"{where}.terminationMessagePath: must be an absolute path")
            if kind == "containers" and container.restart_policy is not None:
                problems.append(f"{where}.restartPolicy: Forbidden: may not be set for "
                                "non-init containers")
            problems.extend(probe_problems(
                where, {"livenessProbe": container.liveness_probe,
                        "readinessProbe": container.readiness_probe,
                        "startupProbe": container.startup_probe}, container.lifecycle,
                init=kind == "initContainers" and container.restart_policy != "Always",
                grace=spec.termination_grace_period_seconds))
            problems.extend(_container_problems(where, container, volume_names))
            problems.extend(_image_mount_problems(where, container, image_volumes))
            problems.extend(resize_policy_problems(where, container, init=kind == "initContainers",
                                                   pod_restart_policy=spec.restart_policy))
            problems.extend(env_problems(where, container, names))
            if container.security_context is not None:
                problems.extend(context_problems(f"{where}.securityContext",
                                                 container.security_context))
    if spec.security_context is not None:
        problems.extend(context_problems("spec.securityContext", spec.security_context))
    problems.extend(host_problems(spec))
    problems.extend(pod_level_problems(spec))
    if spec.node_name:
        problems.extend(_name("spec.nodeName", spec.node_name, check_dns1123_subdomain))
    return problems + scheduling_problems(spec)


def _image_mount_problems(where: str, container: Any, image_volumes: set[str]) -> Iterable[str]:
    """Kubernetes 1.33 allows a subPath into an image volume; podman 4.3 mounts an image
    volume only whole (``--mount type=image`` has no subpath), so it is refused here."""
    for j, mount in enumerate(container.volume_mounts or []):
        if mount.sub_path and mount.name in image_volumes:
            yield (f"{where}.volumeMounts[{j}].subPath: Forbidden: not supported for image "
                   f"volume {mount.name!r}: podman 4.3 mounts an image volume only whole")


def _mount_mode_problems(where: str, mount: Any, container: Any) -> Iterable[str]:
    """Kubernetes' validateMountPropagation and validateMountRecursiveReadOnly, and the one
    mode podman 4.3 cannot give (a recursively read-only mount)."""
    context = container.security_context
    if mount.mount_propagation == "Bidirectional" and not (context and context.privileged):
        yield (f"{where}.mountPropagation: Forbidden: Bidirectional mount propagation is "
               "available only to privileged containers")
    if mount.recursive_read_only in (None, "Disabled"):
        return
    if not mount.read_only:
        yield f"{where}.recursiveReadOnly: Forbidden: may only be specified when readOnly is true"
    if mount.mount_propagation not in (None, "None"):
        yield (f"{where}.recursiveReadOnly: Forbidden: may only be specified when "
               "mountPropagation is None or not specified")
    if mount.recursive_read_only == "Enabled":
        yield (f'{where}.recursiveReadOnly: Unsupported value: "Enabled": podman 4.3 cannot make '
               'a mount recursively read-only; "IfPossible" mounts it read-only (mounts beneath '
               "it stay as they are)")


def _container_problems(where: str, container: Any, volume_names: set[str]) -> Iterable[str]:
    for j, env in enumerate(container.env or []):
        if not env.name or "=" in env.name:
            yield f"{where}.env[{j}].name: invalid environment variable name {env.name!r}"
    port_names: set[str] = set()
    for j, port in enumerate(container.ports or []):
        if port.name:
            if port.name in port_names:
                yield f"{where}.ports[{j}].name: duplicate port name {port.name!r}"
            port_names.add(port.name)
    mount_paths: set[str] = set()
    for j, mount in enumerate(container.volume_mounts or []):
        if mount.name not in volume_names:
            yield f"{where}.volumeMounts[{j}].name: volume {mount.name!r} not found in spec.volumes"
        if not mount.mount_path.startswith("/"):
            yield f"{where}.volumeMounts[{j}].mountPath: must be an absolute path"
        if mount.sub_path:
            yield from path_problems(f"{where}.volumeMounts[{j}].subPath", mount.sub_path)
        if mount.mount_path in mount_paths:
            yield f"{where}.volumeMounts[{j}].mountPath: duplicate mount path {mount.mount_path!r}"
        mount_paths.add(mount.mount_path)
        yield from _mount_mode_problems(f"{where}.volumeMounts[{j}]", mount, container)
    if container.stdin and not container.stdin_once and not container.tty:
        yield (f"{where}.stdinOnce: Unsupported value: false: without a tty, podman closes a "
               "container's stdin when the first attach ends; set stdinOnce: true or tty: true")
    res = container.resources
    if res is None:
        return
    values: dict[str, dict[str, Any]] = {"requests": res.requests or {}, "limits": res.limits or {}}
    for section, mapping in values.items():
        for name, value in mapping.items():
            path = f"{where}.resources.{section}.{name}"
            if "/" in name:  # an extended resource: Kubernetes' words and path
                yield from extended_problems(f"{where}.resources.{section}[{name}]", name, value)
                continue
            if name not in _RESOURCE_NAMES:
                yield (f"{path}: unsupported resource name, supported: cpu, memory, "
                       "ephemeral-storage and extended resources (example.com/dongle)")
                continue
            yield from _quantity(path, value)
    yield from extended_pairing_problems(where, values["requests"], values["limits"])
    for name, request in values["requests"].items():
        limit = values["limits"].get(name)
        if limit is None or "/" in name:
            continue
        try:
            if parse_quantity(request) > parse_quantity(limit):
                yield (f"{where}.resources.requests.{name}: must be less than or equal to "
                       f"{name} limit of {limit}")
        except ValueError:
            pass  # already reported by _quantity


def namespace_problems(namespace: Namespace) -> list[str]:
    """A Namespace's name is a DNS label (Kubernetes' ValidateNamespaceName)."""
    problems = meta_problems(namespace.metadata, namespaced=False, check_name=check_dns1123_label)
    problems.extend(label_problems(namespace.metadata.labels or {}))
    for i, finalizer in enumerate(namespace.spec.finalizers or []):
        if finalizer != FINALIZER_KUBERNETES:
            problems.append(f"spec.finalizers[{i}]: unsupported value {finalizer!r}: peapod has no "
                            f"finalize subresource to remove it, the only finalizer is "
                            f"{FINALIZER_KUBERNETES!r}")
    return problems


def node_problems(node: Node) -> list[str]:
    problems = meta_problems(node.metadata, namespaced=False)
    for section in ("capacity", "allocatable"):
        mapping = getattr(node.status, section, None) if node.status else None
        for name, value in (mapping or {}).items():
            problems.extend(_quantity(f"status.{section}.{name}", value))
    seen: set[tuple[str, str]] = set()
    for i, taint in enumerate(node.spec.taints or []):
        problems.extend(taint_problems(taint.key, taint.value or "", where=f"spec.taints[{i}]"))
        if (taint.key, taint.effect) in seen:
            problems.append(f"spec.taints[{i}]: Duplicate value: \"{taint.key}:{taint.effect}\": "
                            "taints must be unique by key and effect pair")
        seen.add((taint.key, taint.effect))
    return problems


def taint_problems(key: str, value: str, *, where: str = "spec.taints") -> list[str]:
    """Kubernetes' validateNodeTaints: a qualified-name key, a label-value value."""
    problems = _key_problems(key, field=f"{where}.key", what="taint")
    if value and (len(value) > 63 or not _LABEL_VALUE.match(value)):
        problems.append(f"{where}.value: invalid taint value {value!r}: {_LABEL_RULE}")
    return problems


def _name(path: str, value: str, check: Any) -> list[str]:
    try:
        check(value)
    except ValueError as exc:
        return [f"{path}: {exc}"]
    return []


def _quantity(path: str, value: Any) -> list[str]:
    try:
        parse_quantity(value)
    except ValueError as exc:
        return [f"{path}: {exc}"]
    return []


def raise_if_problems(problems: list[str], *, kind: str, name: str | None) -> None:
    if problems:
        raise invalid(kind, name, problems)
