"""A container's environment, command and args, as Kubernetes' kubelet makes them.

``makeEnvironmentVariables`` step by step: ``envFrom`` first, in order (a
later source overrides an earlier one, ``prefix`` prepended), then ``env``
in order, each entry overriding what came before: a ``value`` is expanded
(``$(VAR)``) against the variables defined so far, a ``valueFrom`` resolved
from its ConfigMap, Secret, the pod's own fields or its resources. Command
and args are then expanded against the whole environment.

A ConfigMap or Secret that is missing, or a key it lacks, fails the start
with Kubernetes' message (``configmap "x" not found``, ``couldn't find key k
in ConfigMap default/x``) unless the reference is ``optional``. The
objects are fetched beforehand (``ApiObjects``); everything here is pure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from peapod.api import ConfigMap, Container, Pod, Secret
from peapod.api.downward import Where, field_value, resource_value
from peapod.kubelet.expansion import expand, mapping_for
from peapod.kubelet.runtime import RuntimeFailure

# (kind, name) -> the object, or None when it does not exist
Lookup = Callable[[str, str], ConfigMap | Secret | None]


class ConfigFailure(RuntimeFailure):
    """A container that cannot be configured: Kubernetes' CreateContainerConfigError."""

    def __init__(self, message: str, *, event_reason: str = "Failed",
                 reason: str = "CreateContainerConfigError") -> None:
        super().__init__(reason, message)
        self.event_reason = event_reason


@dataclass(frozen=True)
class Resolved:
    """What podman is given for one attempt of a container."""

    env: dict[str, str]
    command: list[str] | None
    args: list[str] | None
    mounts: list[dict[str, Any]] = field(default_factory=list)
    image_volumes: list[tuple[str, str]] = field(default_factory=list)  # (reference, path)


def not_found(kind: str, name: str) -> ConfigFailure:
    # the kubelet's object managers name the resource in the singular
    return ConfigFailure(f'{kind.lower()} "{name}" not found')


def _source(lookup: Lookup, kind: str, name: str, optional: bool | None
            ) -> ConfigMap | Secret | None:
    obj = lookup(kind, name)
    if obj is None and not optional:
        raise not_found(kind, name)
    return obj


def _text_values(obj: ConfigMap | Secret) -> dict[str, str]:
    """What env can take from an object: a ConfigMap's ``data`` (never ``binaryData``, as in
    Kubernetes), a Secret's decoded values."""
    if isinstance(obj, ConfigMap):
        return dict(obj.data or {})
    return {k: v.decode(errors="replace") for k, v in obj.contents().items()}


def _env_from(pod: Pod, container: Container, lookup: Lookup) -> dict[str, str]:
    env: dict[str, str] = {}
    for env_from in container.env_from or []:
        kind, ref = (("ConfigMap", env_from.config_map_ref) if env_from.config_map_ref
                     else ("Secret", env_from.secret_ref))
        if ref is None:
            continue
        obj = _source(lookup, kind, ref.name, ref.optional)
        if obj is None:
            continue
        for key, value in _text_values(obj).items():
            env[(env_from.prefix or "") + key] = value
    return env


def _key_value(pod: Pod, lookup: Lookup, kind: str, name: str, key: str,
               optional: bool | None) -> str | None:
    obj = _source(lookup, kind, name, optional)
    if obj is None:
        return None
    values = _text_values(obj)
    if key not in values:
        if optional:
            return None
        raise ConfigFailure(f"couldn't find key {key} in {kind} "
                            f"{pod.metadata.namespace or 'default'}/{name}")
    return values[key]


def container_env(pod: Pod, container: Container, lookup: Lookup, where: Where) -> dict[str, str]:
    env = _env_from(pod, container, lookup)
    mapping = mapping_for(env)  # reads env as it grows: order of definition matters
    for var in container.env or []:
        source = var.value_from
        value: str | None = var.value or ""
        if var.value:
            value = expand(var.value, mapping)
        elif source and source.field_ref:
            value = field_value(pod, source.field_ref, where)
        elif source and source.resource_field_ref:
            value = resource_value(pod, container, source.resource_field_ref, where)
        elif source and source.config_map_key_ref:
            cm = source.config_map_key_ref
            value = _key_value(pod, lookup, "ConfigMap", cm.name, cm.key, cm.optional)
        elif source and source.secret_key_ref:
            secret = source.secret_key_ref
            value = _key_value(pod, lookup, "Secret", secret.name, secret.key, secret.optional)
        if value is None:
            continue  # an optional reference to something missing: no variable at all
        env[var.name] = value
    return env


def resolve(pod: Pod, container: Container, lookup: Lookup, where: Where) -> Resolved:
    """The environment, command and args podman gets for ``container``."""
    env = container_env(pod, container, lookup, where)
    mapping = mapping_for(env)
    command = [expand(word, mapping) for word in container.command] \
        if container.command is not None else None
    args = [expand(word, mapping) for word in container.args] \
        if container.args is not None else None
    return Resolved(env=env, command=command, args=args)
