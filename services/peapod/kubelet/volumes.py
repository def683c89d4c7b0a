"""Volumes as a container sees them: API-data volumes written to memory, mounts, subPath.

**API-data volumes** (``configMap``, ``secret``, ``projected``,
``downwardAPI``) are files the kubelet writes for the pod, laid out as
Kubernetes' AtomicWriter lays them out: the files live in a timestamped
directory ``..<time>``, ``..data`` is a symlink to it and each top-level
name a symlink through ``..data``; a rewrite makes a new directory and
swaps ``..data`` in one rename, so a reader never sees half an update. They
are written at every start of one of the pod's containers and again every
minute while the pod runs (``Configurator.run``), so a running container sees
a changed ConfigMap, Secret or label within about a minute, as in
Kubernetes (the volume directory is bind-mounted, and ``..data`` swapped).
They are mounted read-only, as Kubernetes mounts them. With the pod's ``fsGroup``
their files belong to that group and are group-readable (``mode | 0440``),
so a non-root user of that group reads a ``0400`` Secret, as in Kubernetes.

They are written under the kubelet's *memory directory*
(``/dev/shm/peapod/<kubelet id>`` by default, a tmpfs on every Linux), never
under its state directory: like Kubernetes' tmpfs per secret volume, a
Secret never reaches persistent disk; the pod's directory there is removed
with the pod. If that directory is not a tmpfs, the kubelet says so in its
log once per volume written (``volume_not_in_memory``).

**subPath** mounts one path inside the volume instead of its root, on any
volume. Kubernetes' rules: the path is relative without ``..`` (checked at
admission); in an ``emptyDir`` or ``hostPath`` a missing path is created as
a directory; the path, symlinks resolved, must stay inside the volume
(otherwise CreateContainerConfigError, as Kubernetes refuses a subPath that
escapes). A subPath into a ConfigMap or Secret volume is a copy at start, as
in Kubernetes (it never sees updates): a private copy made at the start,
so a later rewrite of the volume never pulls files away from under it.

**emptyDir** lives under the kubelet's state directory, or with ``medium:
Memory`` under its memory directory (a tmpfs): either way one directory per
pod, bind-mounted into each container that mounts it, so the pod's
containers share it and it outlives their restarts, as in Kubernetes.
``sizeLimit`` is enforced as Kubernetes' eviction manager enforces it: the
kubelet measures each limited emptyDir (``usage_bytes``, what ``du``
counts) every ``SIZE_CHECK_SECONDS`` and evicts the pod once one is over.

**image** volumes (Kubernetes 1.31+) are an OCI image's filesystem, pulled as a
container's image is (``ImagePuller.ensure_image``: its ``pullPolicy``, the pod's
imagePullSecrets, ErrImagePull/ImagePullBackOff) and handed to podman as the
container's ``image_volumes`` (what ``--mount type=image`` makes), always
read-only. podman 4.3 takes no mount options for them, so unlike Kubernetes'
``noexec`` their files stay executable, and a subPath into one is refused at
admission (``validation.py``).
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import structlog

from peapod.api import ConfigMap, Container, Pod, Secret, Volume
from peapod.api.config import KeyToPath
from peapod.api.downward import Where, field_value, resource_value
from peapod.api.quantity import memory_bytes
from peapod.api.sources import DEFAULT_MODE, DownwardAPIVolumeFile
from peapod.api.storage import PersistentVolume
from peapod.kubelet.env import ConfigFailure, Lookup

log = structlog.get_logger("kubelet.volumes")

DATA_DIR = "..data"
Files = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)


SIZE_CHECK_SECONDS = 10.0  # Kubernetes' eviction manager's monitoring interval


def limited_empty_dirs(pod: Pod) -> list[tuple[Volume, int]]:
    """The pod's emptyDirs with a ``sizeLimit``, and the limit in bytes."""
    return [(v, memory_bytes(v.empty_dir.size_limit)) for v in pod.spec.volumes or []
            if v.empty_dir is not None and v.empty_dir.size_limit
            and memory_bytes(v.empty_dir.size_limit) > 0]


def usage_bytes(path: Path) -> int:
    """The space the files under ``path`` take (allocated blocks, as ``du`` counts them;
    symlinks not followed, a file with several links counted once). 0 if it is gone."""
    total, seen, stack = 0, set(), [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:  # gone, or removed while measured
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return total


def api_volumes(pod: Pod) -> list[Volume]:
    return [v for v in pod.spec.volumes or []
            if v.config_map or v.secret or v.projected or v.downward_api]


# -- what goes into a volume ---------------------------------------------------------------

def _missing(kind: str, name: str, volume: str) -> ConfigFailure:
    return ConfigFailure(f'MountVolume.SetUp failed for volume "{volume}" : '
                         f'{kind.lower()} "{name}" not found', event_reason="FailedMount",
                         reason="ContainerCreating")


def _object_files(volume: str, obj: ConfigMap | Secret, items: list[KeyToPath] | None,
                  mode: int, optional: bool | None) -> Files:
    contents = obj.contents()
    if not items:
        return {key: (value, mode) for key, value in contents.items()}
    files: Files = {}
    for item in items:
        if item.key not in contents:
            if optional:
                continue
            word = "config" if isinstance(obj, ConfigMap) else "secret"
            raise ConfigFailure(f'MountVolume.SetUp failed for volume "{volume}" : '
                                f"{obj.kind.lower()} references non-existent {word} key: "
                                f"{item.key}", event_reason="FailedMount",
                                reason="ContainerCreating")
        files[item.path] = (contents[item.key], item.mode if item.mode is not None else mode)
    return files


def _from_object(volume: str, lookup: Lookup, kind: str, name: str,
                 items: list[KeyToPath] | None, mode: int, optional: bool | None) -> Files:
    obj = lookup(kind, name)
    if obj is None:
        if optional:
            return {}
        raise _missing(kind, name, volume)
    return _object_files(volume, obj, items, mode, optional)


def _downward_files(pod: Pod, items: list[DownwardAPIVolumeFile] | None, mode: int,
                    where: Where) -> Files:
    files: Files = {}
    for item in items or []:
        if item.field_ref:
            text = field_value(pod, item.field_ref, where)
        elif item.resource_field_ref:
            text = resource_value(pod, pod.spec.containers[0], item.resource_field_ref, where)
        else:
            continue
        files[item.path] = (text.encode(), item.mode if item.mode is not None else mode)
    return files


def volume_files(pod: Pod, volume: Volume, lookup: Lookup, where: Where) -> Files:
    """The files of one API-data volume; ConfigFailure if a required object or key is missing."""
    name = volume.name
    if volume.config_map:
        src = volume.config_map
        return _from_object(name, lookup, "ConfigMap", src.name, src.items,
                            _mode(src.default_mode), src.optional)
    if volume.secret:
        sec = volume.secret
        return _from_object(name, lookup, "Secret", sec.secret_name, sec.items,
                            _mode(sec.default_mode), sec.optional)
    if volume.downward_api:
        return _downward_files(pod, volume.downward_api.items,
                               _mode(volume.downward_api.default_mode), where)
    files: Files = {}
    projected = volume.projected
    mode = _mode(projected.default_mode if projected else None)
    for source in projected.sources if projected else []:
        if source.config_map:
            cm = source.config_map
            files.update(_from_object(name, lookup, "ConfigMap", cm.name, cm.items, mode,
                                      cm.optional))
        elif source.secret:
            sec_proj = source.secret
            files.update(_from_object(name, lookup, "Secret", sec_proj.name, sec_proj.items,
                                      mode, sec_proj.optional))
        elif source.downward_api:
            files.update(_downward_files(pod, source.downward_api.items, mode, where))
    return files


def _mode(mode: int | None) -> int:
    return DEFAULT_MODE if mode is None else mode


# -- writing it, atomically ------------------------------------------------------------------

def write_atomic(directory: Path, files: Files, *, fs_group: int | None = None) -> None:
    """Kubernetes' AtomicWriter: a new timestamped directory, then one rename of ``..data``.

    With ``fs_group``, as Kubernetes' SetVolumeOwnership does for a read-only volume: every
    file and directory gets that group, files ``mode | 0440``, directories setgid."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o755)
    directory.chmod(0o755)
    stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{uuid.uuid4().hex[:8]}"
    target = directory / stamp
    target.mkdir(mode=0o755)
    for relative, (content, mode) in files.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        path.chmod(mode)
        if fs_group is not None:
            os.chown(path, -1, fs_group)
            path.chmod(mode | 0o440)
    if fs_group is not None:
        for folder in [target, *(p for p in target.rglob("*") if p.is_dir())]:
            os.chown(folder, -1, fs_group)
            folder.chmod(0o2755)
    old = os.readlink(directory / DATA_DIR) if (directory / DATA_DIR).is_symlink() else None
    temporary = directory / "..data_tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(stamp)
    temporary.rename(directory / DATA_DIR)
    tops = {relative.split("/", 1)[0] for relative in files}
    for top in tops:
        link = directory / top
        if not link.is_symlink():
            link.symlink_to(f"{DATA_DIR}/{top}")
    for entry in directory.iterdir():
        if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in tops:
            entry.unlink()
    if old and old != stamp:
        shutil.rmtree(directory / old, ignore_errors=True)


def in_memory(path: Path) -> bool:
    """Is ``path`` on a tmpfs (from /proc/mounts: the longest mount point above it)?"""
    best, fstype = "", ""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return False
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        above = len(fields) >= 3 and (resolved == fields[1] or
                                      resolved.startswith(fields[1].rstrip("/") + "/"))
        if above and len(fields[1]) >= len(best):
            best, fstype = fields[1], fields[2]
    return fstype == "tmpfs"


def write_volumes(pod: Pod, lookup: Lookup, where: Where, *,
                  volume_dir: Callable[[str], Path]) -> None:
    """Write every API-data volume of ``pod``; ConfigFailure before anything is written if a
    required object or key is missing."""
    prepared = [(v, volume_files(pod, v, lookup, where)) for v in api_volumes(pod)]
    for volume, files in prepared:
        directory = volume_dir(volume.name)
        context = pod.spec.security_context
        write_atomic(directory, files, fs_group=context.fs_group if context else None)
        if not in_memory(directory):
            log.warning("volume_not_in_memory", namespace=pod.metadata.namespace,
                        name=pod.metadata.name, uid=pod.metadata.uid, volume=volume.name,
                        path=str(directory))


# -- mounting it -----------------------------------------------------------------------------

def _sub_path(root: Path, sub_path: str, *, create: bool, container: str, mount: str) -> Path:
    """``root/sub_path``, created as a directory if allowed, refused if it leaves ``root``."""
    candidate = root / sub_path
    if create and not candidate.exists() and not candidate.is_symlink():
        candidate.mkdir(parents=True, exist_ok=True, mode=0o750)
    real_root, real = root.resolve(), candidate.resolve()
    if real != real_root and real_root not in real.parents:
        raise ConfigFailure(f'failed to prepare subPath for volumeMount "{mount}" of container '
                            f'"{container}": the path {sub_path!r} leaves the volume')
    if not real.exists():
        raise ConfigFailure(f'failed to prepare subPath for volumeMount "{mount}" of container '
                            f'"{container}": {sub_path!r} does not exist in the volume')
    return real


def _copy(source: Path, target: Path) -> Path:
    """A private copy of ``source`` (file or directory, modes kept) at ``target``."""
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    else:
        target.unlink(missing_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    if source.is_dir():
        shutil.copytree(source, target, symlinks=False)
    else:
        shutil.copy2(source, target)
    return target


def image_volumes(pod: Pod, container: Container) -> list[tuple[str, str]]:
    """(image reference, mount path) of each image volume ``container`` mounts."""
    images = {v.name: v.image.reference for v in pod.spec.volumes or [] if v.image is not None}
    return [(images[m.name], m.mount_path) for m in container.volume_mounts or []
            if m.name in images]


def container_mounts(pod: Pod, container: Container, *, disk_dir: Callable[[str], Path],
                     memory_dir: Callable[[str], Path],
                     prepare_host_path: Callable[[Path, str], None],
                     claimed: dict[str, PersistentVolume] | None = None) -> list[dict[str, Any]]:
    """podman's mount list for ``container``; ``disk_dir``/``memory_dir`` give a volume's
    directory on disk (emptyDir) and in memory (emptyDir of medium Memory, API-data volumes);
    ``claimed`` the PersistentVolume bound to each ``persistentVolumeClaim`` volume."""
    return list(_mounts(pod, container, disk_dir, memory_dir, prepare_host_path, claimed or {}))


def _claimed_source(pv: PersistentVolume,
                    prepare_host_path: Callable[[Path, str], None]) -> Path:
    """The directory of the bound volume on this node: a ``hostPath`` as a hostPath volume
    (its ``type`` checked or acted on), a ``local`` path that must be a directory."""
    source = Path(pv.path())
    kind = (pv.spec.host_path.type or "") if pv.spec.host_path else "Directory"
    prepare_host_path(source, kind)
    return source


# Kubernetes' mountPropagation as the bind option podman takes (recursiveReadOnly
# IfPossible is a plain read-only mount: podman 4.3 cannot do better, and Enabled is refused)
PROPAGATION = {"None": "rprivate", "HostToContainer": "rslave", "Bidirectional": "rshared"}


def _mounts(pod: Pod, container: Container, disk_dir: Callable[[str], Path],
            memory_dir: Callable[[str], Path],
            prepare_host_path: Callable[[Path, str], None],
            claimed: dict[str, PersistentVolume]) -> Iterator[dict[str, Any]]:
    volumes = {v.name: v for v in pod.spec.volumes or []}
    for index, mount in enumerate(container.volume_mounts or []):
        volume = volumes[mount.name]
        if volume.image is not None:  # not a bind mount: image_volumes()
            continue
        options = ["ro"] if mount.read_only else ["rw"]
        create = True
        if volume.persistent_volume_claim is not None:
            source = _claimed_source(claimed[volume.name], prepare_host_path)
            if volume.persistent_volume_claim.read_only:
                options = ["ro"]
        elif volume.empty_dir is not None:
            memory = volume.empty_dir.medium == "Memory"
            source = (memory_dir if memory else disk_dir)(volume.name)
            source.mkdir(parents=True, exist_ok=True)
        elif volume.host_path is not None:
            source = Path(volume.host_path.path)
            prepare_host_path(source, volume.host_path.type or "")
        else:  # an API-data volume: written before the container starts, always read-only
            source, options, create = memory_dir(volume.name), ["ro"], False
        if mount.sub_path:
            source = _sub_path(source, mount.sub_path, create=create, container=container.name,
                               mount=mount.name)
            if not create:  # API data: a copy, so a later rewrite of the volume cannot touch it
                source = _copy(source, memory_dir(f"..subpath-{container.name}-{index}"))
        yield {"type": "bind", "source": str(source), "destination": mount.mount_path,
               "options": ["rbind", *options, PROPAGATION[mount.mount_propagation or "None"]]}
