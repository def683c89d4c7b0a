"""``peapod describe pod|node|namespace NAME``: kubectl's describe layout.

The text follows kubectl's ``PodDescriber``, ``NodeDescriber`` and
``NamespaceDescriber``: ``Key:``
cells aligned in blocks by the same tabwriter rule as the tables (padding 2),
nested sections indented by two spaces per level, ``<none>`` for what is
absent, and the object's events last. Like the printers, every function is
pure and takes ``now``, so the output is asserted exactly in tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from peapod.api import ConfigMap, Event, Namespace, Node, Pod, Secret, parse_rfc3339
from peapod.api.downward import Where, field_value, resource_value
from peapod.api.pod import Container, ContainerState, ContainerStatus, EnvVar, Volume
from peapod.api.priority import PREEMPT_LOWER_PRIORITY, PriorityClass
from peapod.api.probe import Probe
from peapod.api.quantity import cpu_millis, format_cpu, format_memory, memory_bytes
from peapod.api.resources import (
    EPHEMERAL_STORAGE,
    extended_allocatable,
    extended_requested_on,
    is_active,
    qos_class,
)
from peapod.api.scheduling import Toleration
from peapod.cli.printers import age, align_columns, human_duration, node_roles
from peapod.scheduler.filters import allocatable

DESCRIBE_PADDING = 2
NONE = "<none>"


class _Writer:
    """kubectl's ``PrefixWriter``: each level indents by two spaces; cells are tab-separated."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def line(self, level: int, *cells: str) -> None:
        self.lines.append("  " * level + "\t".join(cells))

    def mapping(self, level: int, title: str, values: dict[str, str] | None, sep: str = "=") -> None:
        """``Labels:  a=b`` with one line per pair, sorted, continuation lines in the same column.

        Annotations use ``sep=": "``, as kubectl's ``printAnnotationsMultiline`` does.
        """
        self.block(level, title, [f"{k}{sep}{v}" for k, v in sorted((values or {}).items())])

    def block(self, level: int, title: str, items: list[str]) -> None:
        """``Title:  first`` and the other items on lines of their own, in the same column."""
        items = items or [NONE]
        self.line(level, f"{title}:", items[0])
        for item in items[1:]:
            self.line(level, "", item)

    def text(self) -> str:
        return align_columns("\n".join(self.lines), padding=DESCRIBE_PADDING)


def _timestamp(value: str | None) -> str:
    """kubectl's ``time.RFC1123Z``: ``Mon, 02 Jan 2006 15:04:05 +0000``."""
    if not value:
        return NONE
    return parse_rfc3339(value).strftime("%a, %d %b %Y %H:%M:%S %z")


# -- pods ------------------------------------------------------------------------------


def _state(w: _Writer, level: int, title: str, state: ContainerState) -> None:
    if state.running:
        w.line(level, f"{title}:", "Running")
        w.line(level + 1, "Started:", _timestamp(state.running.started_at))
    elif state.waiting:
        w.line(level, f"{title}:", "Waiting")
        if state.waiting.reason:
            w.line(level + 1, "Reason:", state.waiting.reason)
        if state.waiting.message:
            w.line(level + 1, "Message:", state.waiting.message)
    elif state.terminated:
        t = state.terminated
        w.line(level, f"{title}:", "Terminated")
        if t.reason:
            w.line(level + 1, "Reason:", t.reason)
        if t.message:
            w.line(level + 1, "Message:", t.message)
        w.line(level + 1, "Exit Code:", str(t.exit_code))
        if t.signal:
            w.line(level + 1, "Signal:", str(t.signal))
        w.line(level + 1, "Started:", _timestamp(t.started_at))
        w.line(level + 1, "Finished:", _timestamp(t.finished_at))
    else:
        w.line(level, f"{title}:", "Waiting" if title == "State" else "")


def _ports(container: Container) -> tuple[str, str]:
    ports = container.ports or []
    if not ports:
        return NONE, NONE
    return (", ".join(f"{p.container_port}/{p.protocol}" for p in ports),
            ", ".join(f"{p.host_port or 0}/{p.protocol}" for p in ports))


def describe_probe(probe: Probe) -> str:
    """kubectl's ``DescribeProbe``: ``exec [cat /tmp/ok] delay=0s timeout=1s period=10s …``."""
    attrs = (f"delay={probe.initial_delay_seconds or 0}s timeout={probe.timeout_seconds}s "
             f"period={probe.period_seconds}s #success={probe.success_threshold} "
             f"#failure={probe.failure_threshold}")
    if probe.exec is not None:
        return f"exec [{' '.join(probe.exec.command or [])}] {attrs}"
    if probe.http_get is not None:
        get = probe.http_get
        host = f"[{get.host}]" if get.host and ":" in get.host else (get.host or "")
        return f"http-get {get.scheme.lower()}://{host}:{get.port}{get.path} {attrs}"
    if probe.tcp_socket is not None:
        return f"tcp-socket {probe.tcp_socket.host or ''}:{probe.tcp_socket.port} {attrs}"
    return f"unknown {attrs}"


def _container(w: _Writer, pod: Pod, container: Container,
               status: ContainerStatus | None) -> None:
    w.line(1, f"{container.name}:")
    if status and status.container_id:
        w.line(2, "Container ID:", status.container_id)
    w.line(2, "Image:", container.image)
    if status:
        w.line(2, "Image ID:", status.image_id)
    port, host_port = _ports(container)
    plural = "s" if len(container.ports or []) > 1 else ""
    w.line(2, f"Port{plural}:", port)
    w.line(2, f"Host Port{plural}:", host_port)
    for title, words in (("Command", container.command), ("Args", container.args)):
        if words:
            w.line(2, f"{title}:")
            for word in words:
                w.line(3, word)
    if status:  # as kubectl: no State, Ready or Restart Count before the kubelet reports
        _state(w, 2, "State", status.state)
        last = status.last_state
        if last.running or last.waiting or last.terminated:
            _state(w, 2, "Last State", last)
        w.line(2, "Ready:", "True" if status.ready else "False")
        w.line(2, "Restart Count:", str(status.restart_count))
    res = container.resources
    for title, values in (("Limits", res.limits if res else None),
                          ("Requests", res.requests if res else None)):
        if values:
            w.line(2, f"{title}:")
            for key, value in sorted(values.items()):
                w.line(3, f"{key}:", str(value))
    for title, probe in (("Liveness", container.liveness_probe),
                         ("Readiness", container.readiness_probe),
                         ("Startup", container.startup_probe)):
        if probe is not None:
            w.line(2, f"{title}:", describe_probe(probe))
    environment(w, 2, container, pod)
    if container.volume_mounts:
        w.line(2, "Mounts:")
        for m in container.volume_mounts:
            mode = "ro" if m.read_only else "rw"
            sub = f",path={json.dumps(m.sub_path)}" if m.sub_path else ""  # Go's %q
            w.line(3, f"{m.mount_path} from {m.name} ({mode}{sub})")
    else:
        w.line(2, "Mounts:", NONE)


def environment(w: _Writer, level: int, container: Container, pod: Pod | None = None) -> None:
    """kubectl's describeContainerEnvFrom and describeContainerEnvVars (``pod`` is None for a
    pod template, whose fields have no values yet)."""
    if container.env_from:
        w.line(level, "Environment Variables from:")
        for env_from in container.env_from:
            ref, kind = ((env_from.config_map_ref, "ConfigMap") if env_from.config_map_ref
                         else (env_from.secret_ref, "Secret"))
            prefix = f" with prefix '{env_from.prefix}'" if env_from.prefix else ""
            w.line(level + 1, ref.name if ref else "", f"{kind}{prefix}",
                   f"Optional: {_bool(ref.optional if ref else None)}")
    if container.env:
        w.line(level, "Environment:")
        for env in container.env:
            w.line(level + 1, f"{env.name}:", *_env_value(pod, container, env))
    else:
        w.line(level, "Environment:", NONE)


def _bool(value: bool | None) -> str:
    return "true" if value else "false"


def _env_value(pod: Pod | None, container: Container, env: EnvVar) -> list[str]:
    """kubectl's describeContainerEnvVars: where a value comes from, never a Secret's value.

    As kubectl's EnvValueRetriever, a ``fieldRef`` shows its value for ``metadata.*``
    paths only, and a resource its value, or ``node allocatable`` for an unset limit."""
    source = env.value_from
    if source is None:
        return [env.value or ""]
    if source.field_ref:
        ref = source.field_ref
        value = field_value(pod, ref, Where()) \
            if pod is not None and ref.field_path.startswith("metadata.") else ""
        return [f"{value} ({ref.api_version or 'v1'}:{ref.field_path})"]
    if source.resource_field_ref:
        resource = source.resource_field_ref.resource
        value = resource_value(pod, container, source.resource_field_ref, Where()) \
            if pod is not None else ""
        if value == "0" and resource in ("limits.cpu", "limits.memory"):
            value = "node allocatable"
        return [f"{value} ({resource})"]
    if source.secret_key_ref:
        secret = source.secret_key_ref
        return [f"<set to the key '{secret.key}' in secret '{secret.name}'>",
                f"Optional: {_bool(secret.optional)}"]
    if source.config_map_key_ref:
        cm = source.config_map_key_ref
        return [f"<set to the key '{cm.key}' of config map '{cm.name}'>",
                f"Optional: {_bool(cm.optional)}"]
    return [""]


def _api_volume(w: _Writer, volume: Volume) -> None:
    """kubectl's printConfigMapVolumeSource, printSecretVolumeSource, printProjected…, printDownward…"""
    if volume.config_map is not None:
        w.line(2, "Type:", "ConfigMap (a volume populated by a ConfigMap)")
        w.line(2, "Name:", volume.config_map.name)
        w.line(2, "Optional:", _bool(volume.config_map.optional))
    elif volume.secret is not None:
        w.line(2, "Type:", "Secret (a volume populated by a Secret)")
        w.line(2, "SecretName:", volume.secret.secret_name)
        w.line(2, "Optional:", _bool(volume.secret.optional))
    elif volume.downward_api is not None:
        w.line(2, "Type:", "DownwardAPI (a volume populated by information about the pod)")
        w.line(2, "Items:")
        for item in volume.downward_api.items or []:
            ref = item.field_ref.field_path if item.field_ref else (
                item.resource_field_ref.resource if item.resource_field_ref else "")
            w.line(3, f"{ref} -> {item.path}")
    elif volume.projected is not None:
        w.line(2, "Type:", "Projected (a volume that contains injected data from multiple sources)")
        for source in volume.projected.sources:
            if source.secret:
                w.line(2, "SecretName:", source.secret.name)
                w.line(2, "SecretOptionalName:", _optional(source.secret.optional))
            elif source.downward_api:
                w.line(2, "DownwardAPI:", "true")
            elif source.config_map:
                w.line(2, "ConfigMapName:", source.config_map.name)
                w.line(2, "ConfigMapOptional:", _optional(source.config_map.optional))
    else:
        w.line(2, "Type:", "<unknown>")


def _optional(value: bool | None) -> str:
    return "<nil>" if value is None else _bool(value)


def _volume(w: _Writer, volume: Volume) -> None:
    w.line(1, f"{volume.name}:")
    if volume.empty_dir is not None:
        w.line(2, "Type:", "EmptyDir (a temporary directory that shares a pod's lifetime)")
        w.line(2, "Medium:", volume.empty_dir.medium or "")
        w.line(2, "SizeLimit:", volume.empty_dir.size_limit or "<unset>")
    elif volume.host_path is not None:
        w.line(2, "Type:", "HostPath (bare host directory volume)")
        w.line(2, "Path:", volume.host_path.path)
        w.line(2, "HostPathType:", volume.host_path.type or "")
    elif volume.persistent_volume_claim is not None:
        w.line(2, "Type:", "PersistentVolumeClaim (a reference to a PersistentVolumeClaim in the "
               "same namespace)")
        w.line(2, "ClaimName:", volume.persistent_volume_claim.claim_name)
        w.line(2, "ReadOnly:", str(bool(volume.persistent_volume_claim.read_only)).lower())
    else:
        _api_volume(w, volume)


def _events(w: _Writer, events: Sequence[Event], now: datetime) -> None:
    if not events:
        w.line(0, "Events:", NONE)
        return
    w.line(0, "Events:")
    w.line(1, "Type", "Reason", "Age", "From", "Message")
    w.line(1, "----", "------", "----", "----", "-------")
    for e in events:
        last = e.last_timestamp or e.first_timestamp
        when = age(last, now)
        if e.count > 1 and e.first_timestamp:
            when = f"{when} (x{e.count} over {age(e.first_timestamp, now)})"
        source = e.source.component if e.source and e.source.component else e.reporting_component or ""
        w.line(1, e.type, e.reason, when, source, e.message.strip())


def describe_toleration(tol: Toleration) -> str:
    """kubectl's ``printTolerationsMultilineWithIndent``: ``key=value:Effect for 300s``."""
    if tol.operator == "Exists" and not tol.value:
        text = f"{tol.key or ''}{':' + tol.effect if tol.effect else ''} op=Exists".lstrip()
    else:
        text = f"{tol.key or ''}{'=' + tol.value if tol.value else ''}" \
               f"{':' + tol.effect if tol.effect else ''}"
    return text + (f" for {tol.toleration_seconds}s" if tol.toleration_seconds is not None else "")


def describe_pod(pod: Pod, events: Sequence[Event], *, now: datetime) -> str:
    meta, spec, status = pod.metadata, pod.spec, pod.status
    w = _Writer()
    w.line(0, "Name:", meta.name or "")
    w.line(0, "Namespace:", meta.namespace or "default")
    if spec.priority is not None:
        w.line(0, "Priority:", str(spec.priority))
    if spec.priority_class_name:
        w.line(0, "Priority Class Name:", spec.priority_class_name)
    if spec.service_account_name:
        w.line(0, "Service Account:", spec.service_account_name)
    host_ip = status.host_ip if status else None
    node = f"{spec.node_name}/{host_ip}" if spec.node_name and host_ip else spec.node_name or NONE
    w.line(0, "Node:", node)
    if status and status.start_time:
        w.line(0, "Start Time:", _timestamp(status.start_time))
    w.mapping(0, "Labels", meta.labels)
    w.mapping(0, "Annotations", meta.annotations, sep=": ")
    phase = status.phase if status else None
    if meta.deletion_timestamp and phase not in ("Succeeded", "Failed"):
        since = human_duration(now - parse_rfc3339(meta.deletion_timestamp))
        w.line(0, "Status:", f"Terminating (lasts {since})")
        w.line(0, "Termination Grace Period:", f"{meta.deletion_grace_period_seconds or 0}s")
    else:
        w.line(0, "Status:", phase or "Pending")
    if status and status.reason:
        w.line(0, "Reason:", status.reason)
    if status and status.message:
        w.line(0, "Message:", status.message)
    ip = status.pod_ip if status else None
    w.line(0, "IP:", ip or "")
    if ip:
        w.line(0, "IPs:")
        w.line(1, "IP:", ip)
    else:
        w.line(0, "IPs:", NONE)
    if status and status.nominated_node_name:
        w.line(0, "NominatedNodeName:", status.nominated_node_name)
    if (owner := meta.controller_ref()) is not None:
        w.line(0, "Controlled By:", f"{owner.kind}/{owner.name}")
    if spec.init_containers:
        inits = {s.name: s for s in (status.init_container_statuses if status else None) or []}
        w.line(0, "Init Containers:")
        for container in spec.init_containers:
            _container(w, pod, container, inits.get(container.name))
    statuses = {s.name: s for s in (status.container_statuses if status else None) or []}
    w.line(0, "Containers:")
    for container in spec.containers:
        _container(w, pod, container, statuses.get(container.name))
    conditions = (status.conditions if status else None) or []
    if conditions:
        w.line(0, "Conditions:")
        w.line(1, "Type", "Status")
        for c in conditions:
            w.line(1, f"{c.type} ", f"{c.status} ")  # kubectl's "%v \t%v \n"
    if spec.volumes:
        w.line(0, "Volumes:")
        for volume in spec.volumes:
            _volume(w, volume)
    else:
        w.line(0, "Volumes:", NONE)
    w.line(0, "QoS Class:", (pod.status.qos_class if pod.status else None) or qos_class(pod))
    w.mapping(0, "Node-Selectors", spec.node_selector)
    w.block(0, "Tolerations", [describe_toleration(t) for t in spec.tolerations or []])
    _events(w, events, now)
    return w.text()


# -- nodes -----------------------------------------------------------------------------

def _percent(used: int, total: int) -> str:
    return f"{used * 100 // total}%" if total else "0%"


def _pod_resources(pod: Pod) -> tuple[int, int, int, int, int, int]:
    """CPU requests and limits in millicores, memory and ephemeral-storage requests and
    limits in bytes."""
    totals = [0] * 6
    for c in pod.spec.containers:
        res = c.resources
        req = dict(res.requests or {}) if res else {}
        lim = dict(res.limits or {}) if res else {}
        req = {**lim, **req}  # a limit without a request is the request, as in Kubernetes
        for i, (name, parse) in enumerate((("cpu", cpu_millis), ("memory", memory_bytes),
                                           (EPHEMERAL_STORAGE, memory_bytes))):
            totals[2 * i] += parse(req[name]) if name in req else 0
            totals[2 * i + 1] += parse(lim[name]) if name in lim else 0
    cpu_req, cpu_lim, mem_req, mem_lim, storage_req, storage_lim = totals
    return cpu_req, cpu_lim, mem_req, mem_lim, storage_req, storage_lim


def _storage_allocatable(node: Node) -> int:
    status = node.status
    values = (status.allocatable or status.capacity or {}) if status else {}
    return memory_bytes(values[EPHEMERAL_STORAGE]) if EPHEMERAL_STORAGE in values else 0


def describe_node(node: Node, pods: Sequence[Pod], events: Sequence[Event], *, now: datetime) -> str:
    meta, status = node.metadata, node.status
    w = _Writer()
    w.line(0, "Name:", meta.name or "")
    w.line(0, "Roles:", ",".join(node_roles(node)) or NONE)
    w.mapping(0, "Labels", meta.labels)
    w.mapping(0, "Annotations", meta.annotations, sep=": ")
    w.line(0, "CreationTimestamp:", _timestamp(meta.creation_timestamp))
    taints = [f"{t.key}={t.value}:{t.effect}" if t.value else f"{t.key}:{t.effect}"
              for t in node.spec.taints or []] or [NONE]
    w.line(0, "Taints:", taints[0])
    for taint in taints[1:]:
        w.line(0, "", taint)
    w.line(0, "Unschedulable:", "true" if node.spec.unschedulable else "false")
    conditions = (status.conditions if status else None) or []
    if conditions:
        w.line(0, "Conditions:")
        w.line(1, "Type", "Status", "LastHeartbeatTime", "LastTransitionTime", "Reason", "Message")
        w.line(1, "----", "------", "-----------------", "------------------", "------", "-------")
        for c in conditions:
            w.line(1, f"{c.type} ", f"{c.status} ", f"{_timestamp(c.last_heartbeat_time)} ",
                   f"{_timestamp(c.last_transition_time)} ", f"{c.reason or ''} ", c.message or "")
    addresses = (status.addresses if status else None) or []
    if addresses:
        w.line(0, "Addresses:")
        for a in addresses:
            w.line(1, f"{a.type}:", a.address)
    for title, values in (("Capacity", status.capacity if status else None),
                          ("Allocatable", status.allocatable if status else None)):
        if values:
            w.line(0, f"{title}:")
            for key, value in sorted(values.items()):
                w.line(1, f"{key}:", value)
    info = status.node_info if status else None
    if info:
        w.line(0, "System Info:")
        for title, value in (("Machine ID", info.machine_id), ("Kernel Version", info.kernel_version),
                             ("OS Image", info.os_image), ("Operating System", info.operating_system),
                             ("Architecture", info.architecture),
                             ("Container Runtime Version", info.container_runtime_version),
                             ("Kubelet Version", info.kubelet_version)):
            w.line(1, f"{title}:", value)
    running = [p for p in pods if p.spec.node_name == meta.name and is_active(p)]
    alloc = allocatable(node)
    w.line(0, "Non-terminated Pods:", f"({len(running)} in total)")
    # kubectl's "Name\t\t" leaves an empty column after Name.
    w.line(1, "Namespace", "Name", "", "CPU Requests", "CPU Limits", "Memory Requests", "Memory Limits",
           "Age")
    w.line(1, "---------", "----", "", "------------", "----------", "---------------", "-------------",
           "---")
    totals = [0] * 6
    for pod in running:
        cpu_req, cpu_lim, mem_req, mem_lim, storage_req, storage_lim = _pod_resources(pod)
        totals = [a + b for a, b in zip(
            totals, (cpu_req, cpu_lim, mem_req, mem_lim, storage_req, storage_lim), strict=True)]
        w.line(1, pod.metadata.namespace or "default", pod.metadata.name or "", "",
               f"{format_cpu(cpu_req)} ({_percent(cpu_req, alloc.cpu_millis)})",
               f"{format_cpu(cpu_lim)} ({_percent(cpu_lim, alloc.cpu_millis)})",
               f"{format_memory(mem_req)} ({_percent(mem_req, alloc.memory)})",
               f"{format_memory(mem_lim)} ({_percent(mem_lim, alloc.memory)})",
               age(pod.metadata.creation_timestamp, now))
    w.line(0, "Allocated resources:")
    w.line(1, "(Total limits may be over 100 percent, i.e., overcommitted.)")
    w.line(1, "Resource", "Requests", "Limits")
    w.line(1, "--------", "--------", "------")
    w.line(1, "cpu", f"{format_cpu(totals[0])} ({_percent(totals[0], alloc.cpu_millis)})",
           f"{format_cpu(totals[1])} ({_percent(totals[1], alloc.cpu_millis)})")
    w.line(1, "memory", f"{format_memory(totals[2])} ({_percent(totals[2], alloc.memory)})",
           f"{format_memory(totals[3])} ({_percent(totals[3], alloc.memory)})")
    # kubectl prints this row always, 0 (0%) on a node that reports no ephemeral-storage
    storage = _storage_allocatable(node)
    w.line(1, EPHEMERAL_STORAGE, f"{format_memory(totals[4])} ({_percent(totals[4], storage)})",
           f"{format_memory(totals[5])} ({_percent(totals[5], storage)})")
    # kubectl: the node's extended resources, sorted, without percentages; requests equal limits
    used = extended_requested_on(node, running)
    for name in sorted(extended_allocatable(node)):
        w.line(1, name, str(used[name]), str(used[name]))
    _events(w, events, now)
    return w.text()


# -- namespaces ------------------------------------------------------------------------

def describe_namespace(namespace: Namespace) -> str:
    """kubectl's ``describeNamespace``. peapod has no ResourceQuota or LimitRange, so it
    says there is none, as kubectl does for a namespace without them. peapod never sets
    status conditions (Kubernetes' namespace controller reports deletion problems there)."""
    meta, status = namespace.metadata, namespace.status
    w = _Writer()
    w.line(0, "Name:", meta.name or "")
    w.mapping(0, "Labels", meta.labels)
    w.mapping(0, "Annotations", meta.annotations, sep=": ")
    w.line(0, "Status:", (status.phase if status else None) or "")
    w.line(0, "")
    w.line(0, "No resource quota.")
    w.line(0, "")
    w.line(0, "No LimitRange resource.")
    return w.text()


# -- configmaps and secrets ----------------------------------------------------------

def describe_config(obj: ConfigMap | Secret, *, now: datetime) -> str:
    """kubectl's ``describeConfigMap`` (values shown) or ``describeSecret`` (byte counts only,
    never a value), keys in order."""
    meta = obj.metadata
    w = _Writer()
    w.line(0, "Name:", meta.name or "")
    w.line(0, "Namespace:", meta.namespace or "default")
    w.mapping(0, "Labels", meta.labels)
    w.mapping(0, "Annotations", meta.annotations, sep=": ")
    if isinstance(obj, Secret):
        w.line(0, "")
        w.line(0, "Type:", obj.type or "Opaque")
        w.line(0, "")
        w.line(0, "Data")
        w.line(0, "====")
        for key, value in sorted(obj.contents().items()):
            w.line(0, f"{key}:", f"{len(value)} bytes")
        return w.text()
    w.line(0, "")
    w.line(0, "Data")
    w.line(0, "====")
    for key, text in sorted((obj.data or {}).items()):
        w.line(0, f"{key}:")
        w.line(0, "----")
        w.lines.extend(text.split("\n"))  # the value as it is: no cells, no indent
    w.line(0, "")
    w.line(0, "BinaryData")
    w.line(0, "====")
    for key, raw in sorted(obj.contents().items()):
        if key in (obj.binary_data or {}):
            w.line(0, f"{key}: {len(raw)} bytes")
    w.line(0, "")
    _events(w, [], now)
    return w.text()


# -- priority classes ----------------------------------------------------------------

def describe_priority_class(pc: PriorityClass, *, now: datetime) -> str:
    """kubectl's ``describePriorityClass``."""
    w = _Writer()
    w.line(0, "Name:", pc.metadata.name or "")
    w.line(0, "Value:", str(pc.value))
    w.line(0, "GlobalDefault:", "true" if pc.global_default else "false")
    w.line(0, "PreemptionPolicy:", pc.preemption_policy or PREEMPT_LOWER_PRIORITY)
    w.line(0, "Description:", pc.description or "")
    w.mapping(0, "Annotations", pc.metadata.annotations, sep=": ")
    _events(w, [], now)
    return w.text()
