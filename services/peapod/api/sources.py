"""What a container sees besides its image: env sources and the volumes made of API data.

Kubernetes' core/v1 types for ``env[].valueFrom`` (``configMapKeyRef``,
``secretKeyRef``, ``fieldRef``, ``resourceFieldRef``), ``envFrom``, and the
``configMap``, ``secret``, ``projected`` and ``downwardAPI`` volume sources,
with the checks Kubernetes' ValidatePod makes on them, in its words.
``referenced_objects`` is what a pod needs from the API: the kubelet fetches
exactly those, and the apiserver lets a node read only those of its own pods.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from peapod.api.base import Model
from peapod.api.config import KeyToPath, config_key_problems
from peapod.api.quantity import parse_quantity

if TYPE_CHECKING:
    from peapod.api.pod import Container, Pod, Volume

ENV_FIELD_PATHS = ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
                   "status.podIPs")
VOLUME_FIELD_PATHS = ("metadata.annotations", "metadata.labels", "metadata.name",
                      "metadata.namespace", "metadata.uid")
RESOURCE_FIELDS = ("limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                   "requests.ephemeral-storage", "requests.memory")
SUBSCRIPTED = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")
DEFAULT_MODE = 0o644
MODE_RULE = "must be a number between 0 and 0777 (octal), both inclusive"


class ObjectFieldSelector(Model):
    api_version: str | None = None
    field_path: str


class ResourceFieldSelector(Model):
    container_name: str | None = None
    resource: str
    divisor: str | int | None = None


class ConfigMapKeySelector(Model):
    name: str = ""
    key: str
    optional: bool | None = None


class SecretKeySelector(Model):
    name: str = ""
    key: str
    optional: bool | None = None


class EnvVarSource(Model):
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    config_map_key_ref: ConfigMapKeySelector | None = None
    secret_key_ref: SecretKeySelector | None = None


class LocalObjectReference(Model):
    name: str = ""
    optional: bool | None = None


class EnvFromSource(Model):
    prefix: str | None = None
    config_map_ref: LocalObjectReference | None = None
    secret_ref: LocalObjectReference | None = None


class ConfigMapVolumeSource(Model):
    name: str = ""
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class SecretVolumeSource(Model):
    secret_name: str = ""
    items: list[KeyToPath] | None = None
    default_mode: int | None = None
    optional: bool | None = None


class DownwardAPIVolumeFile(Model):
    path: str
    field_ref: ObjectFieldSelector | None = None
    resource_field_ref: ResourceFieldSelector | None = None
    mode: int | None = None


class DownwardAPIVolumeSource(Model):
    items: list[DownwardAPIVolumeFile] | None = None
    default_mode: int | None = None


class ConfigMapProjection(Model):
    name: str = ""
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class SecretProjection(Model):
    name: str = ""
    items: list[KeyToPath] | None = None
    optional: bool | None = None


class DownwardAPIProjection(Model):
    items: list[DownwardAPIVolumeFile] | None = None


class VolumeProjection(Model):
    config_map: ConfigMapProjection | None = None
    secret: SecretProjection | None = None
    downward_api: DownwardAPIProjection | None = Field(default=None, alias="downwardAPI")


class ProjectedVolumeSource(Model):
    sources: list[VolumeProjection] = Field(default_factory=list)
    default_mode: int | None = None


# -- what a pod needs from the API ---------------------------------------------------------

Kind = Literal["ConfigMap", "Secret"]


def referenced_objects(pod: Pod) -> set[tuple[Kind, str]]:
    """Every ConfigMap and Secret (kind, name) the pod reads, as Kubernetes' Node
    authorizer builds its graph: env, envFrom, volumes, projections, imagePullSecrets."""
    found: set[tuple[Kind, str]] = set()
    for container in [*(pod.spec.init_containers or []), *pod.spec.containers]:
        found.update(container_references(container))
    for volume in pod.spec.volumes or []:
        found.update(volume_references(volume))
    found.update(("Secret", ref.name) for ref in pod.spec.image_pull_secrets or [] if ref.name)
    return found


def container_references(container: Container) -> Iterator[tuple[Kind, str]]:
    for env in container.env or []:
        source = env.value_from
        if source and source.config_map_key_ref:
            yield "ConfigMap", source.config_map_key_ref.name
        if source and source.secret_key_ref:
            yield "Secret", source.secret_key_ref.name
    for env_from in container.env_from or []:
        if env_from.config_map_ref:
            yield "ConfigMap", env_from.config_map_ref.name
        if env_from.secret_ref:
            yield "Secret", env_from.secret_ref.name


def volume_references(volume: Volume) -> Iterator[tuple[Kind, str]]:
    if volume.config_map:
        yield "ConfigMap", volume.config_map.name
    if volume.secret:
        yield "Secret", volume.secret.secret_name
    for projection in volume.projected.sources if volume.projected else []:
        if projection.config_map:
            yield "ConfigMap", projection.config_map.name
        if projection.secret:
            yield "Secret", projection.secret.name


# -- validation ------------------------------------------------------------------------------

def env_problems(where: str, container: Container, names: Iterable[str]) -> Iterator[str]:
    """``env[].valueFrom`` and ``envFrom`` as Kubernetes' validateEnv and validateEnvFrom."""
    containers = set(names)
    for j, env in enumerate(container.env or []):
        path = f"{where}.env[{j}].valueFrom"
        source = env.value_from
        if source is None:
            continue
        chosen = [n for n, v in (("fieldRef", source.field_ref),
                                 ("resourceFieldRef", source.resource_field_ref),
                                 ("configMapKeyRef", source.config_map_key_ref),
                                 ("secretKeyRef", source.secret_key_ref)) if v is not None]
        if env.value:
            yield f'{path}: Invalid value: "": may not be specified when `value` is not empty'
        if not chosen:
            yield (f"{path}: Invalid value: \"\": must specify one of: `fieldRef`, "
                   "`resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`")
        elif len(chosen) > 1:
            yield f'{path}: Invalid value: "": may not have more than one field specified at a time'
        if source.field_ref:
            yield from field_ref_problems(f"{path}.fieldRef", source.field_ref, ENV_FIELD_PATHS)
        if source.resource_field_ref:
            yield from resource_ref_problems(f"{path}.resourceFieldRef",
                                             source.resource_field_ref, containers,
                                             need_container=False)
        for name, ref in (("configMapKeyRef", source.config_map_key_ref),
                          ("secretKeyRef", source.secret_key_ref)):
            if ref is not None:
                if not ref.name:
                    yield f"{path}.{name}.name: Required value"
                yield from config_key_problems(f"{path}.{name}.key", ref.key)
    for j, env_from in enumerate(container.env_from or []):
        path = f"{where}.envFrom[{j}]"
        refs = [r for r in (env_from.config_map_ref, env_from.secret_ref) if r is not None]
        if len(refs) != 1:
            yield (f'{path}: Invalid value: "": may not have more than one field specified at a '
                   "time" if refs else f"{path}: Invalid value: \"\": must specify one of: "
                   "`configMapRef` or `secretRef`")
        for ref_name, source_ref in (("configMapRef", env_from.config_map_ref),
                                     ("secretRef", env_from.secret_ref)):
            if source_ref is not None and not source_ref.name:
                yield f"{path}.{ref_name}.name: Required value"
        if env_from.prefix and "=" in env_from.prefix:
            yield f'{path}.prefix: Invalid value: "{env_from.prefix}": must not contain \'=\''


def field_ref_problems(path: str, ref: ObjectFieldSelector, allowed: tuple[str, ...]
                       ) -> Iterator[str]:
    if ref.api_version not in (None, "v1"):
        yield f'{path}.apiVersion: Unsupported value: "{ref.api_version}": supported values: "v1"'
    if SUBSCRIPTED.match(ref.field_path):
        return
    if ref.field_path not in allowed:
        supported = ", ".join(f'"{p}"' for p in allowed)
        yield (f'{path}.fieldPath: Unsupported value: "{ref.field_path}": supported values: '
               f"{supported}")


def resource_ref_problems(path: str, ref: ResourceFieldSelector, containers: set[str], *,
                          need_container: bool) -> Iterator[str]:
    if need_container and not ref.container_name:
        yield f"{path}.containerName: Required value"
    elif ref.container_name and ref.container_name not in containers:
        yield f'{path}.containerName: Invalid value: "{ref.container_name}": must be a ' \
              "container name in the pod"
    if ref.resource not in RESOURCE_FIELDS:
        supported = ", ".join(f'"{r}"' for r in RESOURCE_FIELDS)
        yield f'{path}.resource: Unsupported value: "{ref.resource}": supported values: {supported}'
    if ref.divisor is not None:
        try:
            if parse_quantity(ref.divisor) <= 0:
                raise ValueError
        except ValueError:
            yield f'{path}.divisor: Invalid value: "{ref.divisor}": must be a positive quantity'


def path_problems(path: str, value: str) -> Iterator[str]:
    """Kubernetes' validateLocalDescendingPath (and, for a file, a non-empty path)."""
    if value.startswith("/"):
        yield f'{path}: Invalid value: "{value}": must be a relative path'
    if ".." in value.split("/"):
        yield f"{path}: Invalid value: \"{value}\": must not contain '..'"


def _mode_problems(path: str, mode: int | None) -> Iterator[str]:
    if mode is not None and not 0 <= mode <= 0o777:
        yield f'{path}: Invalid value: {mode}: {MODE_RULE}'


def _items_problems(path: str, items: list[KeyToPath] | None) -> Iterator[str]:
    seen: set[str] = set()
    for k, item in enumerate(items or []):
        where = f"{path}.items[{k}]"
        yield from config_key_problems(f"{where}.key", item.key)
        if not item.path:
            yield f"{where}.path: Required value"
        yield from path_problems(f"{where}.path", item.path)
        if item.path.startswith(".."):
            yield f"{where}.path: Invalid value: \"{item.path}\": must not start with '..'"
        yield from _mode_problems(f"{where}.mode", item.mode)
        if posixpath.normpath(item.path) in seen:
            yield f'{where}.path: Duplicate value: "{item.path}"'
        seen.add(posixpath.normpath(item.path))


def _downward_items(path: str, items: list[DownwardAPIVolumeFile] | None,
                    containers: set[str]) -> Iterator[str]:
    for k, item in enumerate(items or []):
        where = f"{path}.items[{k}]"
        if not item.path:
            yield f"{where}.path: Required value"
        yield from path_problems(f"{where}.path", item.path)
        if item.path.startswith(".."):
            yield f"{where}.path: Invalid value: \"{item.path}\": must not start with '..'"
        yield from _mode_problems(f"{where}.mode", item.mode)
        refs = [r for r in (item.field_ref, item.resource_field_ref) if r is not None]
        if len(refs) != 1:
            yield f"{where}: Invalid value: \"\": fieldRef and resourceFieldRef can not be " \
                  "specified simultaneously" if refs else f"{where}: Required value: one of " \
                  "fieldRef and resourceFieldRef is required"
        if item.field_ref:
            yield from field_ref_problems(f"{where}.fieldRef", item.field_ref, VOLUME_FIELD_PATHS)
        if item.resource_field_ref:
            yield from resource_ref_problems(f"{where}.resourceFieldRef", item.resource_field_ref,
                                             containers, need_container=True)


def volume_source_problems(where: str, volume: Volume, containers: set[str]) -> Iterator[str]:
    """The API-data volume sources of one volume, checked as Kubernetes does."""
    if volume.config_map is not None:
        if not volume.config_map.name:
            yield f"{where}.configMap.name: Required value"
        yield from _items_problems(f"{where}.configMap", volume.config_map.items)
        yield from _mode_problems(f"{where}.configMap.defaultMode", volume.config_map.default_mode)
    if volume.secret is not None:
        if not volume.secret.secret_name:
            yield f"{where}.secret.secretName: Required value"
        yield from _items_problems(f"{where}.secret", volume.secret.items)
        yield from _mode_problems(f"{where}.secret.defaultMode", volume.secret.default_mode)
    if volume.downward_api is not None:
        yield from _downward_items(f"{where}.downwardAPI", volume.downward_api.items, containers)
        yield from _mode_problems(f"{where}.downwardAPI.defaultMode",
                                  volume.downward_api.default_mode)
    if volume.projected is not None:
        yield from _mode_problems(f"{where}.projected.defaultMode", volume.projected.default_mode)
        for k, source in enumerate(volume.projected.sources):
            path = f"{where}.projected.sources[{k}]"
            chosen = [s for s in (source.config_map, source.secret, source.downward_api) if s]
            if len(chosen) != 1:
                yield f"{path}: Forbidden: may not specify more than 1 volume type" if chosen \
                    else f"{path}: Required value: must specify exactly one of configMap, " \
                         "secret, downwardAPI"
            if source.config_map:
                if not source.config_map.name:
                    yield f"{path}.configMap.name: Required value"
                yield from _items_problems(f"{path}.configMap", source.config_map.items)
            if source.secret:
                if not source.secret.name:
                    yield f"{path}.secret.name: Required value"
                yield from _items_problems(f"{path}.secret", source.secret.items)
            if source.downward_api:
                yield from _downward_items(f"{path}.downwardAPI", source.downward_api.items,
                                           containers)
