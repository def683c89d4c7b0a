"""The kubelet's container runtime: podman, through its REST API (podman-py).

One podman *pod* per Pod: its infra container holds the network namespace,
so the Pod's containers reach each other on localhost, and host ports are
published on the pod. Everything peapod creates carries labels (the Pod's
uid, namespace and name; the container's name and restart count), which is
what makes the kubelet restartable: after a crash it finds its pods by label
and adopts them instead of starting duplicates.

Each restart of a container creates a *new* podman container whose
``restartCount`` label is one higher, as Kubernetes gives each attempt a new
containerID. The count therefore survives a kubelet restart, and the
previous attempt stays inspectable for ``lastState`` and ``logs --previous``.

A Pod's *sandbox* is the podman pod with its infra container running: the
infra container holds the network namespace and the host ports, so a port
already taken fails here, as ``CreatePodSandboxError``, before any container
of the Pod is created.

Every call is short and synchronous (podman-py uses requests): nothing here
sleeps or waits out a grace period. The kubelet runs the calls in its own
worker threads and does the waiting itself, asynchronously, so one pod's slow
stop never holds back another pod. Failures that a user must see become
``RuntimeFailure`` with Kubernetes' reason (``ErrImagePull``,
``CreateContainerError`` …); nothing is ever passed through a shell.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import structlog
from podman import PodmanClient
from podman.errors import APIError
from podman.errors import NotFound as PodmanNotFound

from peapod.api import Container, Pod, Volume
from peapod.api.quantity import cpu_millis, memory_bytes
from peapod.errors import NotFound, Unavailable
from peapod.kubelet import resize, sandbox, security
from peapod.kubelet.backoff import Entry
from peapod.kubelet.oom import KernelOomLog
from peapod.kubelet.pullsecrets import RegistryAuth, registry_of

if TYPE_CHECKING:
    from peapod.kubelet.env import Resolved

log = structlog.get_logger("kubelet.runtime")

LABEL_UID = "io.peapod.pod.uid"
LABEL_NAMESPACE = "io.peapod.pod.namespace"
LABEL_NAME = "io.peapod.pod.name"
LABEL_CONTAINER = "io.peapod.container.name"
LABEL_RESTART_COUNT = "io.peapod.container.restartCount"
# Which kubelet owns a podman pod: an id kept in the kubelet's state directory, so a
# restarted kubelet adopts its pods while another cluster's kubelet on the same host
# (a second `peapod up`, a test run) neither sees nor removes them.
LABEL_KUBELET = "io.peapod.kubelet.id"
# The crash-loop back-off in force when this attempt was started (delay, and when it was
# raised, in Unix seconds): a restarted kubelet reads it back instead of forgetting it.
LABEL_RESOURCES = "io.peapod.container.resources"  # cpu/memory it was created with (resize)
LABEL_BACKOFF_DELAY = "io.peapod.container.backoffSeconds"
LABEL_BACKOFF_SINCE = "io.peapod.container.backoffSince"
# terminationMessagePolicy FallbackToLogsOnError: read the log tail when the file is empty
LABEL_MESSAGE_FROM_LOGS = "io.peapod.container.messageFromLogs"
# Kubernetes' limits on a termination message: the file's first 4 KiB, or the log's
# last 80 lines and at most 2 KiB of them
MESSAGE_FILE_BYTES = 4096
MESSAGE_LOG_LINES = 80
MESSAGE_LOG_BYTES = 2048

CPU_PERIOD = 100_000
_INFRA_PREFIX = re.compile(r"^starting container [0-9a-f]{64}: ")


class RuntimeFailure(Exception):
    """A failure to show the user as a container's Waiting reason and a Warning event."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


class RuntimeDown(Exception):
    """podman's socket does not answer (its service died or was stopped)."""


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    restart_count: int
    state: str
    exit_code: int | None
    started_at: str | None
    finished_at: str | None
    image: str
    image_id: str
    oom_killed: bool = False
    finished_ts: float | None = None  # Unix seconds, for back-off arithmetic
    backoff: Entry | None = None  # the back-off recorded when this attempt started
    message: str | None = None  # its termination message, once it exited
    resources: str | None = None  # the cpu and memory it was created with (JSON, resize.py)


@dataclass(frozen=True)
class PodInfo:
    uid: str
    namespace: str
    name: str
    podman_id: str
    ip: str | None
    containers: list[ContainerInfo]


def normalize_image(image: str) -> str:
    """Docker's reference rules: no registry means docker.io, no path library/, no tag latest."""
    name, digest = ([*image.split("@", 1), ""])[:2]
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        name = f"docker.io/{name}" if rest else f"docker.io/library/{name}"
    if not digest and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return f"{name}@{digest}" if digest else name


def _timestamp(value: Any) -> str | None:
    """podman's list gives Unix seconds; 0 or negative means never."""
    if not value or float(value) <= 0:
        return None
    return datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_go_time(value: str | None) -> float | None:
    """Unix seconds of a Go RFC 3339 time with nanoseconds; None for Go's zero time."""
    if not value or value.startswith("0001-"):
        return None
    head, dot, rest = value.partition(".")
    if dot:  # Python parses microseconds at most: cut the fraction to six digits
        digits = len(rest) - len(rest.lstrip("0123456789"))
        value = f"{head}.{rest[:min(digits, 6)]}{rest[digits:]}"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _backoff_entry(labels: dict[str, str]) -> Entry | None:
    try:
        return Entry(delay=float(labels[LABEL_BACKOFF_DELAY]),
                     last_update=float(labels[LABEL_BACKOFF_SINCE]))
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class _Exit:
    oom_killed: bool
    finished_ts: float | None
    message: str | None = None


class PodmanRuntime:
    def __init__(self, *, socket_path: str, state_dir: str, connections: int = 32,
                 oom_log: KernelOomLog | None = None, memory_dir: str | None = None) -> None:
        # one kept-alive connection per worker thread of the kubelet, none re-opened per call
        self.client = PodmanClient(base_url=f"unix://{socket_path}", timeout=120,
                                   max_pool_size=connections)
        self.api = self.client.api
        self.socket_path = socket_path
        self.state_dir = Path(state_dir)
        self.kubelet_id = _kubelet_id(self.state_dir)
        # API-data volumes (Secrets above all) live in memory, never in the state directory
        self.memory_dir = Path(memory_dir or f"/dev/shm/peapod/{self.kubelet_id}")
        self.oom_log = oom_log if oom_log is not None else KernelOomLog()
        self._ips: dict[str, str | None] = {}  # podman pod id -> the sandbox's address
        self._infra: dict[str, str] = {}  # podman pod id -> its infra container (id or name)
        self._exits: dict[str, _Exit] = {}  # an exited container never changes: inspect it once
        self.resolv_conf = Path("/etc/resolv.conf")  # the node's, as the kubelet's --resolv-conf

    # -- reading ------------------------------------------------------------------------

    def _unreachable(self, exc: OSError) -> RuntimeDown:
        return RuntimeDown(f"podman does not answer on {self.socket_path}: {type(exc).__name__}")

    def version(self) -> str:
        """podman's version, from the headers of its ``_ping``.

        Not from ``/version``: podman answers that by running conmon, the OCI runtime and
        slirp4netns to ask theirs, 0.6 to 2 s on a loaded 2-core machine, and the kubelet
        asks at its start, at every node status and as it stops (``_ping``: a few ms).
        """
        response = self.api.get("/_ping")  # unreachable: requests' errors are OSErrors
        response.raise_for_status()
        return response.headers.get("Libpod-API-Version") or "unknown"

    def list_pods(self) -> list[PodInfo]:
        # list() copies each cache at once: pod workers' threads add to them meanwhile; a
        # pod made while the listing ran is not in it, and keeps what is known of it
        before = {*list(self._ips), *list(self._infra)}
        try:
            response = self.api.get("/containers/json", params={
                "all": True, "filters": _json({"label": [f"{LABEL_KUBELET}={self.kubelet_id}"]})})
        except OSError as exc:  # requests' ConnectionError is one
            raise self._unreachable(exc) from None
        response.raise_for_status()
        groups: dict[str, list[dict[str, Any]]] = {}
        entries = response.json()
        for entry in entries:
            groups.setdefault(entry["Labels"][LABEL_UID], []).append(entry)
        listed = {entry["Id"] for entry in entries}
        for gone in [cid for cid in list(self._exits) if cid not in listed]:
            self._exits.pop(gone, None)
        for gone in before - {entry.get("Pod", "") for entry in entries}:
            self._ips.pop(gone, None)
            self._infra.pop(gone, None)
        return [self._pod_info(uid, entries) for uid, entries in groups.items()]

    def container_stats(self, container_ids: list[str]) -> dict[str, dict[str, Any]]:
        """podman's one-shot stats of these containers (``CPUNano``, ``SystemNano``,
        ``MemUsage``, …), by container id; a container that just went is left out."""
        if not container_ids:
            return {}
        response = self.api.get("/containers/stats", params={"containers": container_ids,
                                                             "stream": False})
        if response.status_code == 404:  # one of them is gone: ask for each alone
            return {k: v for cid in container_ids for k, v in self.container_stats_one(cid)}
        response.raise_for_status()
        return {entry["ContainerID"]: entry for entry in response.json().get("Stats") or []}

    def container_stats_one(self, container_id: str) -> list[tuple[str, dict[str, Any]]]:
        response = self.api.get("/containers/stats", params={"containers": [container_id],
                                                             "stream": False})
        if not response.ok:
            return []
        return [(e["ContainerID"], e) for e in response.json().get("Stats") or []]

    def get_pod(self, uid: str) -> PodInfo | None:
        response = self.api.get("/containers/json", params={
            "all": True, "filters": _json({"label": [f"{LABEL_UID}={uid}"]})})
        response.raise_for_status()
        entries = response.json()
        return self._pod_info(uid, entries) if entries else None

    def read_pod(self, uid: str, pod_id: str, container_ids: list[str]) -> PodInfo | None:
        """The pod read back right after the kubelet changed it: the containers it knows
        the pod has (it made them all) inspected, one short call each, rather than a
        listing that reads every container on the node; a container gone is left out.
        The infra container is inspected too while the sandbox's address is not known,
        or when no other container is left; without it, this is ``get_pod``."""
        entries = [entry for container_id in container_ids
                   if (entry := self._inspect_entry(container_id)) is not None]
        if not entries or pod_id not in self._ips:
            infra = self._infra.get(pod_id)
            entry = self._inspect_entry(infra) if infra else None
            if entry is None:  # a sandbox this kubelet did not make, or gone: list it
                return self.get_pod(uid)
            entries.insert(0, entry)
        return self._pod_info(uid, entries, pod_id=pod_id)

    def _inspect_entry(self, container_id: str) -> dict[str, Any] | None:
        response = self.api.get(f"/containers/{container_id}/json")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return self._inspected_entry(response.json())

    def _inspected_entry(self, data: dict[str, Any]) -> dict[str, Any]:
        """A container's inspection in the shape of its entry in podman's listing (times
        in Unix seconds); what it says of an exit is kept, as ``_exit`` would ask for it."""
        state = data.get("State") or {}
        status = str(state.get("Status", "unknown")).lower()
        entry = {"Id": data["Id"], "Labels": (data.get("Config") or {}).get("Labels") or {},
                 "State": status, "ExitCode": state.get("ExitCode", 0),
                 "StartedAt": parse_go_time(state.get("StartedAt")) or 0,
                 "ExitedAt": parse_go_time(state.get("FinishedAt")) or 0,
                 "Image": data.get("ImageName", ""), "ImageID": data.get("Image", ""),
                 "IsInfra": bool(data.get("IsInfra")), "Pod": data.get("Pod", "")}
        if status in ("exited", "stopped") and data["Id"] not in self._exits:
            self._exits[data["Id"]] = self._exit_from(entry, state)
        if entry["IsInfra"] and entry["Pod"] and (ip := _address(data)):
            self._ips[entry["Pod"]] = ip
        return entry

    def _pod_info(self, uid: str, entries: list[dict[str, Any]], *,
                  pod_id: str | None = None) -> PodInfo:
        labels = entries[0]["Labels"]
        pod_id = pod_id or entries[0].get("Pod", "")
        infra = next((entry["Id"] for entry in entries if entry.get("IsInfra")), None)
        if infra and pod_id:  # a sandbox an earlier kubelet made: its read-back needs it
            self._infra.setdefault(pod_id, infra)
        containers = []
        for entry in entries:
            if entry.get("IsInfra") or LABEL_CONTAINER not in entry["Labels"]:
                continue
            state = str(entry.get("State", "unknown")).lower()
            exited = state in ("exited", "stopped")
            details = self._exit(entry) if exited else None
            containers.append(ContainerInfo(
                id=entry["Id"], name=entry["Labels"][LABEL_CONTAINER],
                restart_count=int(entry["Labels"].get(LABEL_RESTART_COUNT, 0)),
                state=state,
                exit_code=int(entry.get("ExitCode", 0)) if exited else None,
                started_at=_timestamp(entry.get("StartedAt")),
                finished_at=_timestamp(details.finished_ts) if details else None,
                image=entry["Labels"].get("io.peapod.container.image", entry.get("Image", "")),
                image_id=entry.get("ImageID", ""),
                oom_killed=bool(details and details.oom_killed),
                finished_ts=details.finished_ts if details else None,
                backoff=_backoff_entry(entry["Labels"]),
                message=details.message if details else None,
                resources=entry["Labels"].get(LABEL_RESOURCES),
            ))
        return PodInfo(uid=uid, namespace=labels.get(LABEL_NAMESPACE, ""),
                       name=labels.get(LABEL_NAME, ""), podman_id=pod_id,
                       ip=self._pod_ip(pod_id, infra), containers=containers)

    def _exit(self, entry: dict[str, Any]) -> _Exit:
        """How an exited container ended: its exact finish time, and whether OOM killed it."""
        container_id = entry["Id"]
        known = self._exits.get(container_id)
        if known is not None:
            return known
        try:
            response = self.api.get(f"/containers/{container_id}/json")
            state = response.json().get("State", {}) if response.status_code == 200 else {}
        except (APIError, ValueError):
            state = {}
        details = self._exit_from(entry, state)
        if state:  # cache only a real answer
            self._exits[container_id] = details
        return details

    def _exit_from(self, entry: dict[str, Any], state: dict[str, Any]) -> _Exit:
        listed = float(entry.get("ExitedAt") or 0) or None
        finished = parse_go_time(state.get("FinishedAt")) or listed
        oom = bool(state.get("OOMKilled")) or self.oom_log.killed(entry["Id"])
        return _Exit(oom_killed=oom, finished_ts=finished,
                     message=self._termination_message(entry, int(entry.get("ExitCode", 0))))

    def pod_ip(self, pod_id: str | None) -> str | None:
        """The pod's address (its infra container's), once its sandbox runs."""
        return self._pod_ip(pod_id or "")

    def _termination_file(self, uid: str, container: str, restart_count: int) -> Path:
        return self._pod_dir(uid) / "termination" / f"{container}-{restart_count}"

    def _termination_message(self, entry: dict[str, Any], exit_code: int) -> str | None:
        """What the container wrote to its terminationMessagePath, else (FallbackToLogsOnError,
        a failure) the tail of its log, within Kubernetes' limits."""
        labels = entry["Labels"]
        path = self._termination_file(labels[LABEL_UID], labels.get(LABEL_CONTAINER, ""),
                                      int(labels.get(LABEL_RESTART_COUNT, 0)))
        try:
            with path.open("rb") as file:
                text = file.read(MESSAGE_FILE_BYTES).decode(errors="replace")
        except OSError:
            text = ""
        if not text and exit_code != 0 and labels.get(LABEL_MESSAGE_FROM_LOGS):
            response = self.api.get(f"/containers/{entry['Id']}/logs", params={
                "stdout": True, "stderr": True, "tail": MESSAGE_LOG_LINES})
            if response.status_code == 200:
                text = _demux(response.content)[-MESSAGE_LOG_BYTES:].decode(errors="replace")
        return text or None

    def _termination_mount(self, pod: Pod, spec: Container, restart_count: int,
                           labels: dict[str, str]) -> dict[str, Any]:
        """A file of the kubelet's at the container's terminationMessagePath."""
        path = self._termination_file(pod.metadata.uid or "", spec.name, restart_count)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        path.chmod(0o666)  # as Kubernetes: whatever user the container runs as may write it
        if spec.termination_message_policy == "FallbackToLogsOnError":
            labels[LABEL_MESSAGE_FROM_LOGS] = "true"
        return {"type": "bind", "source": str(path), "destination": spec.termination_message_path,
                "options": ["rbind", "rw"]}

    def _pod_ip(self, pod_id: str, infra: str | None = None) -> str | None:
        """The address of the sandbox's infra container: one inspect when the infra
        container is known (from the listing, or by the name ``create_pod`` gave it)."""
        if not pod_id:
            return None
        if pod_id in self._ips:
            return self._ips[pod_id]
        infra = infra or self._infra.get(pod_id)
        try:
            if not infra:  # a sandbox made before the kubelet started
                infra = self.api.get(f"/pods/{pod_id}/json").json().get("InfraContainerID")
            data = self.api.get(f"/containers/{infra}/json").json() if infra else {}
        except (APIError, ValueError):
            return None
        ip = _address(data)
        if ip:  # the infra container gets its address only once it runs: cache only a real one
            self._ips[pod_id] = ip
        return ip

    # -- images -------------------------------------------------------------------------

    def image_present(self, image: str) -> bool:
        return bool(self.api.get(f"/images/{normalize_image(image)}/exists").status_code == 204)

    def _image_user(self, image: str) -> str:
        """The user an image runs as (``Config.User``: a name or uid, maybe ``:group``)."""
        response = self.api.get(f"/images/{normalize_image(image)}/json")
        if response.status_code >= 400:
            raise security.Refusal("CreateContainerConfigError",
                                   f"cannot read the user of image {image}: {_explain(response)}")
        return str((response.json().get("Config") or {}).get("User") or "")

    def pull_image(self, image: str, auth: RegistryAuth | None = None) -> str | None:
        """Pull ``image`` (with ``auth``, an imagePullSecrets entry, as podman's
        ``X-Registry-Auth``); the error podman reported, or None when it is now present."""
        reference = normalize_image(image)
        headers = {"X-Registry-Auth": auth.header(registry_of(reference))} if auth else None
        return self._pull(reference, headers)

    def _pull(self, reference: str, headers: dict[str, str] | None = None) -> str | None:
        """Pull through libpod's ``/images/pull``; the error podman reported, or None.

        podman answers 200 and puts a failure in the body as ``{"error": ...}``
        (podman-py's ``images.pull`` then returns an empty Image instead of
        raising), so the body is read here.
        """
        try:
            response = self.api.post("/images/pull", params={"reference": reference, "quiet": True},
                                     headers=headers)
        except (APIError, OSError) as exc:
            return str(exc)
        if response.status_code >= 400:
            return _explain(response)
        errors, found = [], False
        for item in _json_stream(response.text):
            if item.get("error"):
                errors.append(str(item["error"]))
            found = found or bool(item.get("id") or item.get("images"))
        if errors or not found:
            return "; ".join(errors) or "podman reported no image"
        return None

    # -- pods and containers ------------------------------------------------------------

    def _labels(self, pod: Pod) -> dict[str, str]:
        meta = pod.metadata
        return {LABEL_UID: meta.uid or "", LABEL_NAMESPACE: meta.namespace or "default",
                LABEL_NAME: meta.name or "", LABEL_KUBELET: self.kubelet_id}

    def _pod_dir(self, uid: str) -> Path:
        return self.state_dir / "pods" / uid

    def disk_volume(self, pod: Pod, volume: str) -> Path:
        """Where an emptyDir of ``pod`` lives on disk."""
        return self._pod_dir(pod.metadata.uid or "") / "volumes" / volume

    def empty_dir(self, pod: Pod, volume: Volume) -> Path:
        """Where an emptyDir of ``pod`` lives: in memory with ``medium: Memory``, else on disk."""
        memory = volume.empty_dir is not None and volume.empty_dir.medium == "Memory"
        return (self.memory_volume if memory else self.disk_volume)(pod, volume.name)

    def memory_volume(self, pod: Pod, volume: str) -> Path:
        """Where a volume of ``pod`` that lives in memory is: API data (configMap, secret,
        projected, downwardAPI) and emptyDir with ``medium: Memory``."""
        return self.memory_dir / (pod.metadata.uid or "") / "volumes" / volume

    @staticmethod
    def prepare_host_path(path: Path, kind: str) -> None:
        _prepare_host_path(path, kind)

    def create_pod(self, pod: Pod) -> str:
        """The Pod's sandbox: a podman pod whose infra container runs (network, host ports).

        A sandbox that cannot start is removed again, so the next attempt starts clean.
        """
        uid = pod.metadata.uid or ""
        ports = [{"container_port": p.container_port, "host_port": p.host_port,
                  "protocol": p.protocol.lower(), **({"host_ip": p.host_ip} if p.host_ip else {})}
                 for c in [*(pod.spec.init_containers or []), *pod.spec.containers]
                 for p in (c.ports or []) if p.host_port]
        for volume in pod.spec.volumes or []:
            if volume.empty_dir is not None:
                if volume.empty_dir.medium == "Memory":
                    self.memory_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                security.prepare_empty_dir(self.empty_dir(pod, volume), pod)
        name = f"{pod.metadata.namespace}_{pod.metadata.name}_{uid[:8]}"
        body = {"name": name, "infra_name": f"{name}-infra",
                "labels": self._labels(pod),
                "hostname": pod.spec.hostname or pod.metadata.name,
                "portmappings": ports, **sandbox.pod_fields(pod, resolv_conf=self.resolv_conf)}
        pod_limits = _linux_limits((pod.spec.resources.limits or {}) if pod.spec.resources else {})
        if pod_limits:  # pod-level limits: the pod's cgroup, shared by all its containers
            body["resource_limits"] = pod_limits
        response = self.api.post("/pods/create", data=_json(body))
        if response.status_code == 409:  # made by an earlier attempt (its name is the uid's)
            existing = self._find_pod(uid)
            if existing:
                return existing
        if response.status_code >= 400:
            # podman may keep a pod it could not finish (no room for its infra container's
            # storage): removed, so that the next attempt starts clean rather than finds it
            self.api.delete(f"/pods/{body['name']}", params={"force": True, "timeout": 0})
            raise RuntimeFailure("CreatePodSandboxError", _explain(response))
        pod_id = str(response.json()["Id"])
        self._infra[pod_id] = str(body["infra_name"])
        started = self.api.post(f"/pods/{pod_id}/start")  # only the infra container exists yet
        if started.status_code >= 400:
            self.api.delete(f"/pods/{pod_id}", params={"force": True, "timeout": 0})
            # the infra container's id changes with every attempt and is gone: keep the cause
            why = _INFRA_PREFIX.sub("", _explain(started))
            raise RuntimeFailure("CreatePodSandboxError", why)
        return pod_id

    def _find_pod(self, uid: str) -> str | None:
        response = self.api.get("/pods/json", params={
            "filters": _json({"label": [f"{LABEL_UID}={uid}"]})})
        response.raise_for_status()
        pods = response.json() or []
        return str(pods[0]["Id"]) if pods else None

    def run_container(self, pod: Pod, container_name: str, *, restart_count: int,
                      resolved: Resolved, pod_id: str | None = None,
                      backoff: Entry | None = None) -> str:
        """Create and start one attempt; ``resolved`` is its env, command, args and mounts."""
        spec = next(c for c in [*(pod.spec.init_containers or []), *pod.spec.containers]
                    if c.name == container_name)
        pod_id = pod_id or self.create_pod(pod)
        try:
            body = self._container_body(pod, spec, pod_id=pod_id, restart_count=restart_count,
                                        resolved=resolved)
        except security.Refusal as exc:
            raise RuntimeFailure(exc.reason, exc.message) from None
        body["mounts"].append(self._termination_mount(pod, spec, restart_count, body["labels"]))
        if backoff is not None:
            body["labels"][LABEL_BACKOFF_DELAY] = f"{backoff.delay:g}"
            body["labels"][LABEL_BACKOFF_SINCE] = f"{backoff.last_update:.3f}"
        response = self.api.post("/containers/create", data=_json(body))
        if response.status_code >= 400:
            raise RuntimeFailure("CreateContainerError", _explain(response))
        container_id = str(response.json()["Id"])
        started = self.api.post(f"/containers/{container_id}/start")
        if started.status_code >= 400:
            self.remove_container(container_id)
            raise RuntimeFailure("RunContainerError", _explain(started))
        return container_id

    def _container_body(self, pod: Pod, spec: Container, *, pod_id: str,
                        restart_count: int, resolved: Resolved) -> dict[str, Any]:
        uid = pod.metadata.uid or ""
        body: dict[str, Any] = {
            "name": f"k8s_{spec.name}_{pod.metadata.name}_{pod.metadata.namespace}_{uid[:8]}"
                    f"_{restart_count}",
            "image": normalize_image(spec.image),
            "pod": pod_id,
            "labels": {**self._labels(pod), LABEL_CONTAINER: spec.name,
                       LABEL_RESTART_COUNT: str(restart_count),
                       LABEL_RESOURCES: resize.label(resize.wanted(spec)),
                       "io.peapod.container.image": spec.image},
            "env": resolved.env,
            "mounts": resolved.mounts,
            # an image's filesystem, read-only: podman's --mount type=image
            "image_volumes": [{"Source": normalize_image(reference), "Destination": path,
                               "ReadWrite": False} for reference, path in resolved.image_volumes],
            **security.container_fields(pod, spec, seccomp_dir=self.state_dir / "seccomp",
                                        image_user=cache(lambda: self._image_user(spec.image))),
            **sandbox.container_fields(pod, resolv_conf=self.resolv_conf),
        }
        # Kubernetes: command replaces ENTRYPOINT, args replaces CMD; a command drops CMD.
        if resolved.command is not None:
            body["entrypoint"] = resolved.command
            body["command"] = resolved.args or []
        elif resolved.args is not None:
            body["command"] = resolved.args
        if spec.working_dir:
            body["work_dir"] = spec.working_dir
        if spec.stdin:  # kept open by conmon for `attach -i`
            body["stdin"] = True
        if spec.tty:
            body["terminal"] = True
        # a container without a limit of its own gets the pod-level one in its cgroup, as
        # Kubernetes does (runtimes such as the JVM size themselves from it)
        limits = {**(pod.spec.resources.limits or {} if pod.spec.resources else {}),
                  **((spec.resources.limits or {}) if spec.resources else {})}
        resource_limits = _linux_limits(limits)
        if resource_limits:
            body["resource_limits"] = resource_limits
        return body

    def update_container(self, container_id: str, limits: dict[str, Any]) -> str | None:
        """Set a running container's cgroup cpu quota and memory limit (podman 4.3's
        ``POST /containers/{id}/update``); podman's error, or None."""
        response = self.api.post(f"/containers/{container_id}/update",
                                 data=_json(_linux_limits(limits)))
        return None if response.status_code < 300 else _explain(response)

    def signal_container(self, container_id: str, signal: str) -> None:
        """Send ``signal`` to a container's main process; one that already exited is fine."""
        response = self.api.post(f"/containers/{container_id}/kill", params={"signal": signal})
        if response.status_code not in (204, 404, 409):  # 409: it is not running any more
            log.warning("signal_failed", container_id=container_id[:12], signal=signal,
                        error=_explain(response))

    def still_running(self, container_ids: list[str]) -> list[str]:
        """Those of ``container_ids`` that still run (one inspect each)."""
        running = []
        for container_id in container_ids:
            response = self.api.get(f"/containers/{container_id}/json")
            if response.status_code == 200 and response.json().get("State", {}).get("Running"):
                running.append(container_id)
        return running

    def storage_bytes(self, container_id: str) -> int:
        """A container's local ephemeral storage: its writable layer and its log file."""
        response = self.api.get(f"/containers/{container_id}/json", params={"size": True})
        if response.status_code != 200:
            return 0
        info = response.json()
        log_path = ((info.get("HostConfig") or {}).get("LogConfig") or {}).get("Path")
        try:
            logs = os.stat(log_path).st_size if log_path else 0
        except OSError:
            logs = 0
        return int(info.get("SizeRw") or 0) + logs

    def remove_container(self, container_id: str) -> None:
        response = self.api.delete(f"/containers/{container_id}",
                                   params={"force": True, "v": True})
        if response.status_code not in (200, 204, 404):
            log.warning("remove_failed", container_id=container_id[:12], error=_explain(response))

    def remove_pod(self, uid: str) -> None:
        """Remove the Pod's podman pod now: whatever still runs is killed (SIGKILL).

        The grace period is the caller's to wait out (signal_container TERM first).
        """
        pod_id = self._find_pod(uid)
        if pod_id:
            # timeout=0: without it podman waits each container's own stop timeout (10 s)
            response = self.api.delete(f"/pods/{pod_id}", params={"force": True, "timeout": 0})
            if response.status_code not in (200, 204, 404):
                raise RuntimeFailure("KillPodSandboxError", _explain(response))
            self._ips.pop(pod_id, None)
            self._infra.pop(pod_id, None)
            log.info("pod_removed", uid=uid)
        shutil.rmtree(self._pod_dir(uid), ignore_errors=True)
        shutil.rmtree(self.memory_dir / uid, ignore_errors=True)

    # -- exec and logs ------------------------------------------------------------------

    def running_container(self, uid: str, container_name: str) -> str:
        """The id of the running attempt of a container; NotFound if none runs."""
        info = self.get_pod(uid)
        tries = sorted((c for c in (info.containers if info else []) if c.name == container_name),
                       key=lambda c: c.restart_count, reverse=True)
        if not tries:
            raise NotFound(f"container {container_name} not found in pod with uid {uid}")
        if tries[0].state != "running":
            raise NotFound(f"container {container_name} is not running")
        return tries[0].id

    def exec(self, uid: str, container_name: str, argv: list[str], *,
             timeout: float = 30) -> tuple[int, bytes, bytes]:
        container = self.client.containers.get(self.running_container(uid, container_name))
        try:
            code, output = container.exec_run(argv, demux=True)
        except (APIError, PodmanNotFound) as exc:
            raise NotFound(f"cannot exec in container {container_name}: {exc}") from None
        out, err = output if isinstance(output, tuple) else (output, b"")
        return int(code or 0), out or b"", err or b""

    def exec_in(self, container_id: str, argv: list[str]) -> tuple[int, bytes]:
        """Run ``argv`` in a running container (podman's exec API): exit code, combined output.
        ``RuntimeDown`` if podman does not answer (or stops answering meanwhile)."""
        try:
            return self._exec(container_id, argv)
        except OSError as exc:  # requests' ConnectionError and podman-py's APIError are ones
            raise self._unreachable(exc) from None

    def _exec(self, container_id: str, argv: list[str]) -> tuple[int, bytes]:
        created = self.api.post(f"/containers/{container_id}/exec", data=_json({
            "AttachStdout": True, "AttachStderr": True, "Cmd": argv}))
        if created.status_code >= 400:
            raise RuntimeFailure("ExecError", _explain(created))
        exec_id = created.json()["Id"]
        started = self.api.post(f"/exec/{exec_id}/start", data=_json({"Detach": False,
                                                                       "Tty": False}))
        if started.status_code >= 400:
            raise RuntimeFailure("ExecError", _explain(started))
        inspected = self.api.get(f"/exec/{exec_id}/json")
        code = inspected.json().get("ExitCode") if inspected.status_code == 200 else None
        return (int(code) if code is not None else -1), _demux(started.content)

    def logs(self, container_id: str, *, tail: int | None = None,
             follow: bool = False) -> Iterator[bytes]:
        container = self.client.containers.get(container_id)
        params: dict[str, Any] = {"stream": True, "follow": follow, "stdout": True,
                                  "stderr": True}
        if tail is not None:
            params["tail"] = tail
        yield from cast(Iterator[bytes], container.logs(**params))  # bytes when streamed


def _address(inspected: dict[str, Any]) -> str | None:
    """A container's address on its first network that gave it one."""
    settings = inspected.get("NetworkSettings") or {}
    networks = settings.get("Networks") or {}
    ip = next((n.get("IPAddress") for n in networks.values() if n.get("IPAddress")), None)
    return ip or settings.get("IPAddress") or None


def _demux(data: bytes) -> bytes:
    """The payload of a multiplexed attach stream (8-byte frame headers), stdout and stderr."""
    out, i = bytearray(), 0
    while i + 8 <= len(data) and data[i] in (0, 1, 2) and data[i + 1:i + 4] == b"\0\0\0":
        size = int.from_bytes(data[i + 4:i + 8], "big")
        out += data[i + 8:i + 8 + size]
        i += 8 + size
    return bytes(out) if i else data


def _prepare_host_path(path: Path, kind: str) -> None:
    if kind == "DirectoryOrCreate":
        path.mkdir(parents=True, exist_ok=True)
    elif kind == "FileOrCreate":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(exist_ok=True)
    elif kind == "Directory" and not path.is_dir():
        raise RuntimeFailure("CreateContainerConfigError", f"hostPath {path} is not a directory")
    elif kind == "File" and not path.is_file():
        raise RuntimeFailure("CreateContainerConfigError", f"hostPath {path} is not a file")


def _kubelet_id(state_dir: Path) -> str:
    path = state_dir / "kubelet-id"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        state_dir.mkdir(parents=True, exist_ok=True)
        kubelet_id = uuid.uuid4().hex
        path.write_text(kubelet_id + "\n")
        return kubelet_id


def _json_stream(text: str) -> list[dict[str, Any]]:
    """The objects of a libpod progress stream: one JSON object per line."""
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError:
        return [{"error": f"unreadable reply from podman: {text[:200]!r}"}]


def _linux_limits(limits: dict[str, Any]) -> dict[str, Any]:
    """podman's resource_limits (OCI LinuxResources) for cpu and memory limits."""
    resource_limits: dict[str, Any] = {}
    if "memory" in limits:
        resource_limits["memory"] = {"limit": memory_bytes(limits["memory"])}
    if "cpu" in limits:
        resource_limits["cpu"] = {"quota": cpu_millis(limits["cpu"]) * CPU_PERIOD // 1000,
                                  "period": CPU_PERIOD}
    return resource_limits


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body)


def _explain(response: Any) -> str:
    try:
        data = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if data.get("Errs"):  # pod verbs answer with one error per container
        return "; ".join(str(e) for e in data["Errs"])
    return str(data.get("message") or data.get("cause") or data)


def podman_answers(socket_path: str) -> bool:
    """Does a podman REST service answer on ``socket_path``?"""
    try:
        client = PodmanClient(base_url=f"unix://{socket_path}", timeout=2)
        return bool(client.ping())
    except Exception:  # any failure means "not answering"
        return False


def something_listens(socket_path: str) -> bool:
    """Does a process accept connections on ``socket_path`` (however slow it is to answer)?"""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1)
        try:
            probe.connect(socket_path)
        except TimeoutError:  # its backlog is full: busy, not gone
            return True
        except OSError:  # no such file, or nothing listening (ECONNREFUSED)
            return False
    return True


def ensure_podman_service(socket_path: str, *, containers_conf: str | None = None,
                          timeout: float = 15) -> subprocess.Popen[bytes] | None:
    """Start ``podman system service`` on ``socket_path`` unless something answers there.

    A service that is only slow to answer (a loaded machine) is left alone: a second one
    would take the socket's path over, and stopping it later would leave none there.
    """
    if podman_answers(socket_path) or something_listens(socket_path):
        return None
    podman = shutil.which("podman")
    if podman is None:
        raise Unavailable("podman is not installed (apt-get install podman); see `peapod doctor`")
    Path(socket_path).parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if containers_conf:
        env["CONTAINERS_CONF"] = containers_conf
    # conmon inherits the service's working directory and drops files there (an "oom"
    # marker per OOM kill): keep them beside the socket, not in whoever's checkout.
    proc = subprocess.Popen([podman, "system", "service", "--time=0", f"unix://{socket_path}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            cwd=Path(socket_path).parent, start_new_session=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if podman_answers(socket_path):
            log.info("podman_service_started", socket=socket_path, pid=proc.pid)
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise Unavailable(f"podman system service did not answer on {socket_path}; "
                      "run `peapod doctor`")


def podman_service_pid(socket_path: str, proc: Path = Path("/proc")) -> int | None:
    """The ``podman system service`` answering on ``socket_path`` (as ``ensure_podman_service``
    starts one, or with the bare path), found from /proc; None when there is none."""
    wanted = {socket_path.encode(), f"unix://{socket_path}".encode()}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if b"system" in argv and b"service" in argv and wanted.intersection(argv):
            return int(entry.name)
    return None
