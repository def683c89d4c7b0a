"""Before a container starts: fetch what it reads from the API, resolve its env, write volumes.

The kubelet asks the apiserver for each ConfigMap and Secret the pod
references, on its own subjects ``peapod.api.v1.node.<node>.configmap`` and
``.secret``; the apiserver answers only for objects that a pod bound to this
node references (the node cannot read the bucket itself). Objects are read
afresh at every start, so a container that waited for a missing ConfigMap
starts once it exists (the next attempt, after the pod worker's back-off),
and a restarted container sees current values. Nothing here logs a value.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import Callable, Iterable

import structlog
from nats.aio.client import Client as NATS

from peapod.api import ConfigMap, Container, Pod, Secret
from peapod.api.downward import Where
from peapod.api.sources import container_references, volume_references
from peapod.api.storage import PersistentVolume
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.errors import NotFound, PeapodError
from peapod.kubelet import pullsecrets, volumes
from peapod.kubelet.env import ConfigFailure, Resolved, resolve
from peapod.kubelet.node import memory_kib
from peapod.kubelet.pullsecrets import RegistryAuth
from peapod.kubelet.runtime import PodmanRuntime
from peapod.kubelet.threads import PodmanThreads

log = structlog.get_logger("kubelet.configure")

_VERB = {"ConfigMap": "configmap", "Secret": "secret"}
# How often mounted ConfigMaps, Secrets and downward API files are brought up to date
# (Kubernetes' kubelet resyncs them about once a minute too).
VOLUME_RESYNC_SECONDS = 60.0


class Configurator:
    def __init__(self, *, nc: NATS, node_name: str, runtime: PodmanRuntime,
                 threads: PodmanThreads, host_ip: str) -> None:
        self.nc = nc
        self.node_name = node_name
        self.runtime = runtime
        self.threads = threads
        self.host_ip = host_ip
        self.allocatable = {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_kib()}Ki"}
        self._writing = threading.Lock()  # a container start and a resync write one at a time

    async def fetch(self, pod: Pod, wanted: Iterable[tuple[str, str]]
                    ) -> dict[tuple[str, str], ConfigMap | Secret | None]:
        """Each (kind, name) from the apiserver; None for one that does not exist."""
        found: dict[tuple[str, str], ConfigMap | Secret | None] = {}
        namespace = pod.metadata.namespace or "default"
        for kind, name in sorted(set(wanted)):
            try:
                raw = await request(self.nc, s.node_api(self.node_name, _VERB[kind]),
                                    {"namespace": namespace, "name": name})
            except NotFound:
                found[kind, name] = None
                continue
            except PeapodError as exc:
                raise ConfigFailure(f"cannot read {kind.lower()} {namespace}/{name}: "
                                    f"{exc.message}") from None
            found[kind, name] = (ConfigMap if kind == "ConfigMap" else Secret).model_validate(raw)
        return found

    async def pull_secrets(self, pod: Pod) -> tuple[list[RegistryAuth], list[str]]:
        """The registry entries of the pod's ``imagePullSecrets``, and the names of those that
        could not be read (missing, or refused): Kubernetes pulls without them."""
        names = [ref.name for ref in pod.spec.image_pull_secrets or [] if ref.name]
        auths: list[RegistryAuth] = []
        missing: list[str] = []
        for name in names:
            try:
                found = (await self.fetch(pod, [("Secret", name)]))[("Secret", name)]
            except ConfigFailure:
                found = None
            if isinstance(found, Secret):
                auths.extend(pullsecrets.entries(found))
            else:
                missing.append(name)
        return auths, missing

    async def prepare(self, pod: Pod, container: Container, *, pod_id: str | None) -> Resolved:
        """Env, command, args and mounts of ``container``, its pod's volumes written."""
        wanted = list(container_references(container))
        for volume in volumes.api_volumes(pod):
            wanted.extend(volume_references(volume))
        objects = await self.fetch(pod, wanted)
        claimed = await self.claimed_volumes(pod)
        pod_ip = await self.threads.call(self.runtime.pod_ip, pod_id) \
            if _needs_pod_ip(container) else None
        where = Where(pod_ip=pod_ip or "", host_ip=self.host_ip, allocatable=self.allocatable)
        return await self.threads.call(self._prepare, pod, container, objects, where, claimed)

    async def claimed_volumes(self, pod: Pod) -> dict[str, PersistentVolume]:
        """The PersistentVolume bound to each ``persistentVolumeClaim`` volume of the pod, by
        volume name; ConfigFailure (``FailedMount``) for a claim that is missing or unbound."""
        namespace = pod.metadata.namespace or "default"
        found: dict[str, PersistentVolume] = {}
        for volume in pod.spec.volumes or []:
            if volume.persistent_volume_claim is None:
                continue
            claim = volume.persistent_volume_claim.claim_name
            where = (f"Unable to attach or mount volumes: unmounted volumes=[{volume.name}]: "
                     f"error processing PVC {namespace}/{claim}")
            try:
                raw = await request(self.nc, s.node_api(self.node_name, "persistentvolume"),
                                    {"namespace": namespace, "claimName": claim})
            except PeapodError as exc:
                raise ConfigFailure(f"{where}: failed to fetch PVC from API server: "
                                    f"{exc.message}", event_reason="FailedMount",
                                    reason="ContainerCreating") from None
            if not raw.get("volume"):
                raise ConfigFailure(f"{where}: PVC is not bound", event_reason="FailedMount",
                                    reason="ContainerCreating")
            found[volume.name] = PersistentVolume.model_validate(raw["volume"])
        return found

    def _prepare(self, pod: Pod, container: Container,
                 objects: dict[tuple[str, str], ConfigMap | Secret | None],
                 where: Where, claimed: dict[str, PersistentVolume]) -> Resolved:
        def lookup(kind: str, name: str) -> ConfigMap | Secret | None:
            return objects.get((kind, name))

        resolved = resolve(pod, container, lookup, where)
        self._write(pod, objects, where)
        mounts = volumes.container_mounts(
            pod, container, disk_dir=lambda name: self.runtime.disk_volume(pod, name),
            memory_dir=lambda name: self.runtime.memory_volume(pod, name),
            prepare_host_path=self.runtime.prepare_host_path, claimed=claimed)
        return dataclasses.replace(resolved, mounts=mounts,
                                   image_volumes=volumes.image_volumes(pod, container))


    def _write(self, pod: Pod, objects: dict[tuple[str, str], ConfigMap | Secret | None],
               where: Where, *, only_existing: bool = False) -> bool:
        """Write the pod's API-data volumes; with ``only_existing``, only once they exist (a
        resync never creates the volumes of a pod that has not started). True if written."""
        if not volumes.api_volumes(pod):
            return False
        with self._writing:
            if only_existing and not any(self.runtime.memory_volume(pod, v.name).exists()
                                         for v in volumes.api_volumes(pod)):
                return False
            self.runtime.memory_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            volumes.write_volumes(pod, lambda kind, name: objects.get((kind, name)), where,
                                  volume_dir=lambda name: self.runtime.memory_volume(pod, name))
        return True

    async def resync(self, pod: Pod) -> None:
        """Bring one running pod's API-data volumes up to date with their objects; a missing
        object leaves the files as they are, as Kubernetes does, and says why in the log."""
        wanted = [ref for v in volumes.api_volumes(pod) for ref in volume_references(v)]
        try:
            objects = await self.fetch(pod, wanted)
            where = Where(host_ip=self.host_ip, allocatable=self.allocatable)
            await self.threads.call(self._write, pod, objects, where, only_existing=True)
        except ConfigFailure as exc:
            log.info("volume_resync_failed", namespace=pod.metadata.namespace,
                     name=pod.metadata.name, uid=pod.metadata.uid, error=exc.message)

    async def run(self, pods: Callable[[], list[Pod]]) -> None:
        """Resync the volumes of ``pods()`` every ``VOLUME_RESYNC_SECONDS``."""
        while True:
            await asyncio.sleep(VOLUME_RESYNC_SECONDS)
            for pod in pods():
                if volumes.api_volumes(pod):
                    await self.resync(pod)


def _needs_pod_ip(container: Container) -> bool:
    paths = {e.value_from.field_ref.field_path for e in container.env or []
             if e.value_from and e.value_from.field_ref}
    return bool(paths & {"status.podIP", "status.podIPs"})
