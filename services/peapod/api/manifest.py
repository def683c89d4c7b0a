"""Reading manifests: YAML (block or flow style), JSON, multi-document files, Lists.

The CLI and the apiserver both go through ``parse_object`` so a manifest is
judged by the same code on both sides; the CLI refuses bad input before it
reaches the bus, and the apiserver refuses it again from any other client.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

from peapod.api.apps import (
    DaemonSet,
    Deployment,
    ReplicaSet,
    daemonset_problems,
    deployment_problems,
    replicaset_problems,
)
from peapod.api.batch import CronJob, Job, cronjob_problems, job_problems
from peapod.api.config import ConfigMap, Secret, configmap_problems, secret_problems, undecodable
from peapod.api.decode import decode_json_object as decode_json_object
from peapod.api.decode import decode_model as decode_model
from peapod.api.decode import validate_model as validate_model
from peapod.api.event import Event
from peapod.api.meta import API_VERSIONS as API_VERSIONS
from peapod.api.meta import GC_FINALIZERS, qualified_kind
from peapod.api.namespace import Namespace
from peapod.api.node import Node
from peapod.api.pod import Pod
from peapod.api.priority import PriorityClass, priority_class_problems
from peapod.api.storage import (
    PV_PROTECTION,
    PVC_PROTECTION,
    PersistentVolume,
    PersistentVolumeClaim,
    persistent_volume_claim_problems,
    persistent_volume_problems,
)
from peapod.api.validation import (
    meta_problems,
    namespace_problems,
    node_problems,
    pod_problems,
    pydantic_problems,
)
from peapod.errors import Invalid, invalid

KINDS: dict[str, type[Pod] | type[Node] | type[Event] | type[Namespace] | type[ReplicaSet]
            | type[Deployment] | type[DaemonSet] | type[Job] | type[CronJob] | type[ConfigMap]
            | type[Secret] | type[PersistentVolume] | type[PersistentVolumeClaim]
            | type[PriorityClass]] = {
    "Pod": Pod, "Node": Node, "Event": Event, "Namespace": Namespace,
    "ReplicaSet": ReplicaSet, "Deployment": Deployment, "DaemonSet": DaemonSet, "Job": Job,
    "CronJob": CronJob,
    "ConfigMap": ConfigMap, "Secret": Secret,
    "PersistentVolume": PersistentVolume, "PersistentVolumeClaim": PersistentVolumeClaim,
    "PriorityClass": PriorityClass}
ApiObject = (Pod | Node | Event | Namespace | ReplicaSet | Deployment | DaemonSet | Job | CronJob
             | ConfigMap
             | Secret | PersistentVolume | PersistentVolumeClaim | PriorityClass)


def load_documents(text: str, *, source: str = "<stdin>") -> list[dict[str, Any]]:
    """Every object in the text, with ``kind: List`` flattened into its items."""
    try:
        loaded = _parse_text(text)
    except yaml.YAMLError as exc:
        raise Invalid(f"{source}: cannot parse: {_yaml_problem(exc)}") from exc
    docs: list[dict[str, Any]] = []
    for index, doc in enumerate(loaded):
        if doc is None:
            continue
        if isinstance(doc, list):
            doc = {"apiVersion": "v1", "kind": "List", "items": doc}
        if not isinstance(doc, dict):
            raise Invalid(f"{source}: document {index}: expected an object, got {type(doc).__name__}")
        if doc.get("kind") == "List":
            items = doc.get("items") or []
            if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                raise Invalid(f"{source}: document {index}: items: expected a list of objects")
            docs.extend(items)
        else:
            docs.append(doc)
    if not docs:
        raise Invalid(f"{source}: no objects passed to apply")
    return docs


def parse_object(doc: dict[str, Any]) -> ApiObject:
    """One validated object, or Invalid naming every problem with its path."""
    kind = doc.get("kind")
    api_version = doc.get("apiVersion")
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    name = name if isinstance(name, str) else None
    if not kind:
        raise invalid("object", name, ["kind: required value"])
    if kind not in KINDS:
        raise invalid(str(kind), name, [f"kind: unsupported kind {kind!r}, "
                                        f"supported kinds: {', '.join(sorted(KINDS))}"])
    expected = API_VERSIONS.get(kind, "v1")
    if api_version != expected:
        raise invalid(qualified_kind(kind), name, [
            f"apiVersion: unsupported version {api_version!r} for kind {kind}, "
            f"expected {expected!r}"])
    model = KINDS[kind]
    try:
        obj = model.model_validate(doc)
    except ValidationError as exc:
        raise invalid(qualified_kind(kind), name, pydantic_problems(exc)) from None
    problems: list[str] = []
    if isinstance(obj, ConfigMap | Secret):
        if error := undecodable(obj):
            raise Invalid(error)
        problems = meta_problems(obj.metadata, namespaced=True)
        problems += configmap_problems(obj) if isinstance(obj, ConfigMap) else secret_problems(obj)
    elif isinstance(obj, PersistentVolume):
        problems = meta_problems(obj.metadata, namespaced=False,
                                 finalizers=(*GC_FINALIZERS, PV_PROTECTION))
        problems += persistent_volume_problems(obj)
    elif isinstance(obj, PersistentVolumeClaim):
        problems = meta_problems(obj.metadata, namespaced=True,
                                 finalizers=(*GC_FINALIZERS, PVC_PROTECTION))
        problems += persistent_volume_claim_problems(obj)
    elif isinstance(obj, Pod):
        problems = pod_problems(obj)
    elif isinstance(obj, Node):
        problems = node_problems(obj)
    elif isinstance(obj, Namespace):
        problems = namespace_problems(obj)
    elif isinstance(obj, ReplicaSet):
        problems = replicaset_problems(obj)
    elif isinstance(obj, Deployment):
        problems = deployment_problems(obj)
    elif isinstance(obj, DaemonSet):
        problems = daemonset_problems(obj)
    elif isinstance(obj, Job):
        problems = job_problems(obj)
    elif isinstance(obj, CronJob):
        problems = cronjob_problems(obj)
    elif isinstance(obj, PriorityClass):
        problems = meta_problems(obj.metadata, namespaced=False) + priority_class_problems(obj)
    if problems:
        raise invalid(qualified_kind(kind), name, problems)
    return obj


def needs_generated_name(doc: dict[str, Any]) -> bool:
    """True when the object has no name but a ``generateName`` for the server to make one."""
    meta = doc.get("metadata")
    return isinstance(meta, dict) and not meta.get("name") and bool(meta.get("generateName"))


def refuse_generate_name_for_apply(doc: dict[str, Any]) -> None:
    """apply finds its object by name, so a name still to be generated cannot be applied."""
    if needs_generated_name(doc):
        raise Invalid(f"from {doc['metadata']['generateName']}: cannot use generate name with apply")


def _parse_text(text: str) -> list[Any]:
    # A flow-style YAML mapping starts with "{" too, so text that is not JSON gets a second
    # chance as YAML (whose error message then names the line and column).
    if text.lstrip().startswith(("{", "[")):
        try:
            return [json.loads(text)]
        except json.JSONDecodeError:
            pass
    return list(yaml.safe_load_all(text))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """``yaml: line 5, column 2: expected <block end>, …``: where and what, as kubectl's
    ``yaml: line 5: …``, without PyYAML's context and the quoted source lines."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or not problem:
        return _one_line(str(exc))
    return f"yaml: line {mark.line + 1}, column {mark.column + 1}: {_one_line(problem)}"


def _one_line(text: str) -> str:
    return " ".join(text.split())
