"""Admission: what the apiserver decides about an object before it is stored.

Validation is the same code the CLI runs (``parse_object``); admission adds
what only the server may set — uid, creationTimestamp, a clean status, the
default namespace — and the rules for changing a stored Pod. As in
Kubernetes, a Pod's spec is immutable once created (peapod does not yet
support the in-place image update Kubernetes allows), while labels and
annotations may change: ``apply`` of an identical manifest is "unchanged",
of new labels "configured", and of a new spec a clear Invalid error.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from peapod.api import Namespace, NamespaceStatus, Node, Pod, PodStatus, now_rfc3339, parse_object
from peapod.api.apps import DaemonSet, Deployment, ReplicaSet
from peapod.api.batch import CronJob, Job
from peapod.api.manifest import needs_generated_name, refuse_generate_name_for_apply
from peapod.api.meta import Condition, ObjectMeta
from peapod.api.namespace import FINALIZER_KUBERNETES, METADATA_NAME_LABEL
from peapod.api.node import Taint
from peapod.api.priority import PriorityClass
from peapod.api.resize import merge_resize_patch, resize_problems
from peapod.api.resources import qos_class
from peapod.api.scheduling import SCHEDULING_GATED, SCHEDULING_GATED_MESSAGE, PodSchedulingGate
from peapod.api.static import is_mirror
from peapod.api.storage import PersistentVolume, PersistentVolumeClaim
from peapod.api.validation import raise_if_problems
from peapod.errors import Invalid, invalid

# Kubernetes' utilrand alphabet (no vowels, no 0, 1, 3: no words, nothing misread) and
# SimpleNameGenerator's lengths: five random characters after at most 58 of the prefix.
SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
SUFFIX_LENGTH = 5
MAX_GENERATED_PREFIX = 63 - SUFFIX_LENGTH
# Kubernetes' RetryGenerateName: a generated name that is taken is drawn again, up to 8 times
GENERATE_NAME_ATTEMPTS = 8


T = TypeVar("T", Pod, Namespace, Node, ReplicaSet, Deployment, DaemonSet, Job, CronJob,
            PersistentVolume, PersistentVolumeClaim, PriorityClass)

def generate_name(prefix: str, *, choice: Callable[[str], str] = secrets.choice) -> str:
    """``prefix`` (cut to 58 characters) and five random characters, as Kubernetes names it."""
    return prefix[:MAX_GENERATED_PREFIX] + "".join(choice(SUFFIX_ALPHABET)
                                                    for _ in range(SUFFIX_LENGTH))


def with_generated_name(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with ``metadata.name`` made from ``generateName`` when it has no name."""
    if not needs_generated_name(doc):
        return doc
    meta = doc["metadata"]
    return {**doc, "metadata": {**meta, "name": generate_name(str(meta["generateName"]))}}


def admit_new_pod(doc: dict[str, Any], *, namespace: str | None = None) -> Pod:
    """A Pod ready to be stored for the first time (its name generated if it has none)."""
    obj = parse_object(with_generated_name(doc))
    if not isinstance(obj, Pod):
        raise Invalid(f"expected kind Pod, got {obj.kind}")
    prepare_namespaced(obj.metadata, namespace=namespace)
    obj.metadata.generation = 1
    obj.status = PodStatus(phase="Pending", qos_class=qos_class(obj))  # type: ignore[arg-type]
    if obj.spec.scheduling_gates:  # as Kubernetes' pod strategy: kubectl then shows SchedulingGated
        obj.status.conditions = [Condition(type="PodScheduled", status="False",
                                           reason=SCHEDULING_GATED,
                                           message=SCHEDULING_GATED_MESSAGE,
                                           last_transition_time=now_rfc3339())]
    return obj


def prepare_namespaced(meta: ObjectMeta, *, namespace: str | None) -> None:
    """What the server sets on any namespaced object's first write: its namespace (the
    request's unless the object names one; a contradiction is refused), uid, creation time."""
    if namespace and meta.namespace and meta.namespace != namespace:
        raise Invalid(f"the namespace of the provided object ({meta.namespace}) does not match "
                      f"the namespace sent on the request ({namespace})")
    meta.namespace = meta.namespace or namespace or "default"
    meta.uid = str(uuid.uuid4())
    meta.creation_timestamp = now_rfc3339()
    meta.resource_version = None
    meta.deletion_timestamp = None
    meta.deletion_grace_period_seconds = None


def refuse_new_finalizers_if_deleting(stored: ObjectMeta, finalizers: list[str] | None) -> None:
    """Kubernetes' rule: an object being deleted may lose finalizers, never gain one."""
    added = set(finalizers or []) - set(stored.finalizers or [])
    if stored.deletion_timestamp and added:
        raise Invalid(f"metadata.finalizers: Forbidden: no new finalizers can be added if the "
                      f"object is being deleted, found new finalizers {sorted(added)}")


def merge_updated_pod(stored: Pod, incoming: Pod) -> Pod:
    """A pod update (PUT): labels, annotations, owner references and finalizers change,
    nothing else."""
    refuse_new_finalizers_if_deleting(stored.metadata, incoming.metadata.finalizers)
    rest = incoming.model_copy(deep=True)
    rest.metadata.finalizers = stored.metadata.finalizers
    merged, _ = merge_applied_pod(stored, rest)
    merged = merged.model_copy(deep=True)
    merged.metadata.owner_references = incoming.metadata.owner_references
    merged.metadata.finalizers = incoming.metadata.finalizers or None
    return merged


def pod_gone(pod: Pod) -> bool:
    """A pod being deleted whose containers are done (or never ran) and that no finalizer
    holds: it leaves the store."""
    meta = pod.metadata
    return bool(meta.deletion_timestamp) and not meta.finalizers and (
        not pod.spec.node_name or meta.deletion_grace_period_seconds == 0)


def parse_applied(doc: dict[str, Any], kind: type[T]) -> T:
    """A manifest sent to ``apply``, parsed; it must be of ``kind`` and carry a name."""
    refuse_generate_name_for_apply(doc)
    applied = parse_object(doc)
    if not isinstance(applied, kind):
        raise Invalid(f"expected kind {kind.__name__}, got {applied.kind}")
    return applied


def merge_applied_pod(stored: Pod, applied: Pod) -> tuple[Pod, str]:
    """The result of applying ``applied`` over ``stored``, and kubectl's verb for it.

    Apply leaves finalizers as they are (the Job controller's own): a manifest that names
    others is refused rather than ignored; an update changes them."""
    if applied.metadata.finalizers is not None and \
            applied.metadata.finalizers != (stored.metadata.finalizers or []):
        raise invalid("Pod", stored.metadata.name, [
            "metadata.finalizers: Forbidden: apply does not change a pod's finalizers; replace "
            "the pod (update) to remove one"])
    incoming_spec = applied.spec.model_copy()
    # what the scheduler and the priority admission set stays unless the manifest says otherwise
    for field in ("node_name", "priority_class_name", "priority", "preemption_policy"):
        if getattr(incoming_spec, field) is None:
            setattr(incoming_spec, field, getattr(stored.spec, field))
    gates = _remaining_gates(stored, incoming_spec.scheduling_gates or [])
    incoming_spec.scheduling_gates = stored.spec.scheduling_gates
    if incoming_spec.to_wire() != stored.spec.to_wire():
        raise invalid("Pod", stored.metadata.name, [
            "spec: Forbidden: pod updates may not change fields of the spec other than the "
            "removal of spec.schedulingGates; delete the pod and create it again (peapod does "
            "not support in-place pod updates)"])
    merged, verb = merge_metadata(stored, applied.metadata.labels, applied.metadata.annotations)
    if gates == (stored.spec.scheduling_gates or []):
        return merged, verb
    merged = merged.model_copy(deep=True)
    merged.spec.scheduling_gates = gates or None
    if not gates and merged.status is not None:  # the scheduler takes the pod from here
        merged.status.conditions = [c for c in merged.status.conditions or []
                                    if c.reason != SCHEDULING_GATED] or None
    return merged, "configured"


def resize_pod(stored: Pod, patch: Any) -> Pod | None:
    """``stored`` after a ``pods/resize`` patch (Kubernetes 1.33), or None if it changes
    nothing; Invalid, naming the field, for anything but a valid cpu/memory resize."""
    name = stored.metadata.name
    if is_mirror(stored):
        raise invalid("Pod", name, ["Forbidden: static pods cannot be resized"])
    try:
        doc = merge_resize_patch(stored, patch)
    except ValueError as exc:
        raise invalid("Pod", name, [str(exc)]) from None
    resized = parse_object(doc)
    if not isinstance(resized, Pod):
        raise invalid("Pod", name, ["kind: may not change"])
    raise_if_problems(resize_problems(stored, resized), kind="Pod", name=name)
    if resized.spec.to_wire() == stored.spec.to_wire():
        return None
    resized.metadata.generation = (stored.metadata.generation or 1) + 1
    return resized


def _remaining_gates(stored: Pod, gates: list[PodSchedulingGate]) -> list[PodSchedulingGate]:
    """Kubernetes' rule for an update of ``schedulingGates``: gates may only be removed."""
    before = {g.name for g in stored.spec.scheduling_gates or []}
    for gate in gates:
        if gate.name not in before:
            raise invalid("Pod", stored.metadata.name, [
                "spec.schedulingGates: Forbidden: only deletion is allowed, but found new "
                f"scheduling gate '{gate.name}'"])
    return gates


def merge_metadata(stored: T, labels: dict[str, str] | None,
                   annotations: dict[str, str] | None) -> tuple[T, str]:
    """What ``apply`` may change of a stored object: its labels and annotations.

    Returns the object to store and kubectl's word for it, "unchanged" or "configured".
    """
    if labels == stored.metadata.labels and annotations == stored.metadata.annotations:
        return stored, "unchanged"
    merged = stored.model_copy(deep=True)
    merged.metadata.labels = labels
    merged.metadata.annotations = annotations
    return merged, "configured"


def admit_node(doc: dict[str, Any], *, existing: Node | None) -> Node:
    """A Node as its kubelet registers it; identity fields survive re-registration."""
    obj = parse_object(doc)
    if not isinstance(obj, Node):
        raise Invalid(f"expected kind Node, got {obj.kind}")
    obj.metadata.namespace = None
    obj.metadata.resource_version = None
    if existing is None:
        obj.metadata.uid = str(uuid.uuid4())
        obj.metadata.creation_timestamp = now_rfc3339()
    else:
        obj.metadata.uid = existing.metadata.uid
        obj.metadata.creation_timestamp = existing.metadata.creation_timestamp
        if obj.spec.unschedulable is None:
            obj.spec.unschedulable = existing.spec.unschedulable
        if obj.spec.taints is None:  # the controller manager's (unreachable) stay
            obj.spec.taints = existing.spec.taints
        # labels and annotations people set (peapod label node …) outlive a re-registration
        obj.metadata.labels = {**(existing.metadata.labels or {}), **(obj.metadata.labels or {})} \
            or None
        obj.metadata.annotations = {**(existing.metadata.annotations or {}),
                                    **(obj.metadata.annotations or {})} or None
    return obj


def merge_updated_node(stored: Node, incoming: Node) -> Node:
    """A node update by people or the controller manager: labels, annotations,
    ``spec.unschedulable`` and ``spec.taints``, nothing else (the rest of a Node is its
    kubelet's to report)."""
    merged = stored.model_copy(deep=True)
    merged.metadata.labels = incoming.metadata.labels
    merged.metadata.annotations = incoming.metadata.annotations
    merged.spec.unschedulable = incoming.spec.unschedulable or None
    merged.spec.taints = [_time_added(t, stored.spec.taints or []) for t in
                          incoming.spec.taints or []] or None
    return merged


def _time_added(taint: Taint, stored: list[Taint]) -> Taint:
    """A NoExecute taint carries ``timeAdded`` (evictions count from it): the stored one's
    if the node had this taint already, else now; other effects carry none."""
    if taint.effect != "NoExecute":
        return taint.model_copy(update={"time_added": None})
    if taint.time_added:
        return taint
    same = next((t for t in stored if (t.key, t.value, t.effect) == (taint.key, taint.value,
                                                                     taint.effect)), None)
    return taint.model_copy(update={"time_added": (same.time_added if same and same.time_added
                                                   else now_rfc3339())})


def admit_new_namespace(doc: dict[str, Any]) -> Namespace:
    """A Namespace as Kubernetes' namespace strategy prepares it for its first write.

    Status is ``Active`` whatever the manifest said, ``spec.finalizers`` holds
    ``kubernetes``, and the label ``kubernetes.io/metadata.name`` is its name.
    As for any cluster-scoped object, a ``metadata.namespace`` is cleared, as
    Kubernetes' BeforeCreate does.
    """
    obj = parse_object(with_generated_name(doc))
    if not isinstance(obj, Namespace):
        raise Invalid(f"expected kind Namespace, got {obj.kind}")
    meta = obj.metadata
    meta.namespace = None
    meta.uid = str(uuid.uuid4())
    meta.creation_timestamp = now_rfc3339()
    meta.resource_version = None
    meta.deletion_timestamp = None
    meta.deletion_grace_period_seconds = None
    meta.labels = {**(meta.labels or {}), METADATA_NAME_LABEL: meta.name or ""}
    obj.spec.finalizers = [FINALIZER_KUBERNETES]
    obj.status = NamespaceStatus(phase="Active")
    return obj


def merge_applied_namespace(stored: Namespace, applied: Namespace) -> tuple[Namespace, str]:
    """``applied`` over ``stored``: labels and annotations change; spec and status are the
    server's (Kubernetes keeps ``spec.finalizers`` and ``status`` on update)."""
    labels = {**(applied.metadata.labels or {}), METADATA_NAME_LABEL: stored.metadata.name or ""}
    return merge_metadata(stored, labels, applied.metadata.annotations)


def set_pod_condition(pod: Pod, condition: Condition) -> None:
    """Replace the pod's condition of that type (Kubernetes' ``UpdatePodCondition``): the
    transition time moves only when the status does."""
    status = pod.status or PodStatus(phase="Pending")
    old = next((c for c in status.conditions or [] if c.type == condition.type), None)
    if old is not None and old.status == condition.status:
        condition.last_transition_time = old.last_transition_time
    else:
        condition.last_transition_time = condition.last_transition_time or now_rfc3339()
    status.conditions = [*(c for c in status.conditions or [] if c.type != condition.type),
                         condition]
    pod.status = status
