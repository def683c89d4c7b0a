"""The node's static pod manifests: ``--pod-manifest-path`` (``/etc/peapod/manifests``).

As Kubernetes' file source (``pkg/kubelet/config/file.go``): every regular file
of the directory named ``*.yaml``, ``*.yml`` or ``*.json`` and not hidden
(a leading dot: editors' and Ansible's temporary files) holds static pods
(``api/static.py``), read at start and checked again every
``--file-check-frequency`` seconds. Kubernetes also listens to inotify; peapod
checks a ``stat`` of each file instead, cheap enough to do every few seconds,
and reads a file again only when its size, time or inode changed.

A file that cannot be read or whose pods are invalid, as ``create -f`` judges
them, is one log line (``static_pod_manifest_invalid``, naming the file and the
field) per change of the file, and changes nothing: the pods it held before, if
any, run on (a file caught half-written does not stop its pod). A pod whose
name another file already gave is refused the same way. Removing the file
stops its pods.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from peapod.api import Pod
from peapod.api.static import static_pod
from peapod.errors import Invalid

log = structlog.get_logger("kubelet.manifests")

SUFFIXES = (".yaml", ".yml", ".json")
DEFAULT_CHECK_SECONDS = 5.0
MAX_MANIFEST_BYTES = 1 << 20


@dataclass
class _File:
    stamp: tuple[int, int, int]  # size, mtime_ns, inode
    pods: list[Pod] = field(default_factory=list)  # the last good ones


class ManifestDir:
    def __init__(self, path: Path, *, node_name: str) -> None:
        self.path = path
        self.node_name = node_name
        self._files: dict[str, _File] = {}
        self._missing_logged = False
        self._last: dict[str, Pod] | None = None
        self._refused: dict[str, str] = {}  # pod key -> file of the name already taken
        self._lock = threading.Lock()  # a read cancelled in its thread may still be running

    def current(self) -> dict[str, Pod]:
        """The static pods as last read."""
        with self._lock:
            return dict(self._last or {})

    def read(self) -> dict[str, Pod] | None:
        """The static pods (by key) if they changed since the last call, else None."""
        with self._lock:
            return self._read()

    def _read(self) -> dict[str, Pod] | None:
        stamps = self._stamps()
        changed = set(stamps) != set(self._files)
        for name in set(self._files) - set(stamps):
            del self._files[name]
            log.info("static_pod_manifest_removed", file=str(self.path / name))
        for name, stamp in sorted(stamps.items()):
            known = self._files.get(name)
            if known is not None and known.stamp == stamp:
                continue
            changed = True
            entry = self._files[name] = _File(stamp, known.pods if known else [])
            try:
                entry.pods = self._parse(self.path / name)
            except (Invalid, OSError, UnicodeDecodeError) as exc:
                log.warning("static_pod_manifest_invalid", file=str(self.path / name),
                            error=getattr(exc, "message", None) or str(exc),
                            kept=[p.metadata.name for p in entry.pods])
        if not changed and self._last is not None:
            return None
        pods = self._combined()
        if pods == self._last:
            return None
        self._last = pods
        return pods

    def _stamps(self) -> dict[str, tuple[int, int, int]]:
        try:
            entries = list(os.scandir(self.path))
        except OSError as exc:
            if not self._missing_logged:
                log.warning("static_pod_path_unreadable", path=str(self.path), error=str(exc))
                self._missing_logged = True
            return {}
        self._missing_logged = False
        stamps = {}
        for entry in entries:
            if entry.name.startswith(".") or not entry.name.endswith(SUFFIXES):
                continue
            try:
                if not entry.is_file():
                    continue
                st = entry.stat()
            except OSError:
                continue  # gone meanwhile
            stamps[entry.name] = (st.st_size, st.st_mtime_ns, st.st_ino)
        return stamps

    def _parse(self, path: Path) -> list[Pod]:
        with path.open("rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise Invalid(f"{path}: larger than {MAX_MANIFEST_BYTES} bytes")
        from peapod.api.manifest import load_documents  # YAML: loaded only where manifests are
        docs = load_documents(data.decode(), source=str(path))
        pods = [static_pod(doc, node_name=self.node_name, source=str(path)) for doc in docs]
        keys = [p.key for p in pods]
        if len(set(keys)) != len(keys):
            raise Invalid(f"{path}: two pods named the same")
        return pods

    def _combined(self) -> dict[str, Pod]:
        pods: dict[str, Pod] = {}
        owner: dict[str, str] = {}
        refused: dict[str, str] = {}
        for name, entry in sorted(self._files.items()):
            for pod in entry.pods:
                if pod.key in pods:
                    refused[pod.key] = name
                    if self._refused.get(pod.key) != name:
                        log.warning("static_pod_manifest_invalid", file=str(self.path / name),
                                    error=f"pod {pod.key} is already defined in "
                                          f"{self.path / owner[pod.key]}")
                    continue
                pods[pod.key], owner[pod.key] = pod, name
        self._refused = refused
        return pods
