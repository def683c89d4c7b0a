"""kubectl's output formats for ``peapod get``: tables, ``-o wide|json|yaml|name``.

A Kubernetes user reads these tables without thinking, so each column is
computed by the same rules kubectl uses (``printPod``, ``printNode``,
``printEvent`` in kubectl's printers), and ages use kubectl's
``duration.HumanDuration`` rule for rule. Alignment is a small copy of Go's
``text/tabwriter``: rows are written as tab-separated cells and
``align_columns`` pads each column block to its widest cell, exactly as
kubectl's writer does (padding 3, minimum width 6 for tables; ``describe``
uses padding 2). The one deliberate difference is that trailing whitespace
is stripped from every line.

Every function is pure: ``now`` is passed in, so an age of ``4s`` is
asserted exactly instead of being approximated in tests.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import yaml

from peapod.api import (
    ConfigMap,
    ContainerStatus,
    Event,
    Namespace,
    Node,
    Pod,
    PodStatus,
    Secret,
    parse_rfc3339,
)
from peapod.api.meta import ListMeta, ObjectList
from peapod.api.priority import PREEMPT_LOWER_PRIORITY, PriorityClass
from peapod.api.scheduling import SCHEDULING_GATED
from peapod.cli import jsonpath
from peapod.cli.parser import OUTPUT_FORMATS
from peapod.errors import Invalid

TABLE_PADDING = 3
TABLE_MIN_WIDTH = 6
NODE_ROLE_PREFIX = "node-role.kubernetes.io/"
_TERMINAL_PHASES = ("Succeeded", "Failed")

POD_COLUMNS = ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
POD_WIDE_COLUMNS = ["IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
NODE_COLUMNS = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
NODE_WIDE_COLUMNS = ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
NAMESPACE_COLUMNS = ["NAME", "STATUS", "AGE"]
CONFIGMAP_COLUMNS = ["NAME", "DATA", "AGE"]
SECRET_COLUMNS = ["NAME", "TYPE", "DATA", "AGE"]
PRIORITY_CLASS_COLUMNS = ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
EVENT_COLUMNS = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
EVENT_WIDE_COLUMNS = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "SUBOBJECT", "SOURCE", "MESSAGE",
                      "FIRST SEEN", "COUNT", "NAME"]


# -- time ------------------------------------------------------------------------------

def human_duration(delta: timedelta) -> str:
    """kubectl's ``duration.HumanDuration``: two or three significant figures."""
    micros = delta // timedelta(microseconds=1)
    seconds = micros // 1_000_000 if micros >= 0 else -(-micros // 1_000_000)  # Go truncates to 0
    if seconds < -1:
        return "<invalid>"  # more than a second in the future: clocks disagree
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        return _two_units(minutes, "m", seconds % 60, "s")
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        return _two_units(hours, "h", minutes % 60, "m")
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return _two_units(hours // 24, "d", hours % 24, "h")
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        return _two_units(hours // 24 // 365, "y", (hours // 24) % 365, "d")
    return f"{hours // 24 // 365}y"


def _two_units(big: int, big_unit: str, small: int, small_unit: str) -> str:
    return f"{big}{big_unit}" if small == 0 else f"{big}{big_unit}{small}{small_unit}"


def age(timestamp: str | None, now: datetime) -> str:
    """kubectl's ``translateTimestampSince``: ``<unknown>`` when there is no timestamp."""
    if not timestamp:
        return "<unknown>"
    return human_duration(now - parse_rfc3339(timestamp))


# -- alignment -------------------------------------------------------------------------

def align_columns(text: str, *, padding: int, minwidth: int = 0) -> str:
    """Go's ``text/tabwriter``: tab-terminated cells in contiguous lines form a column.

    A line with fewer cells ends the column block, which is why kubectl's
    describe output realigns after a line such as ``Command:``. The last cell
    of a line belongs to no column and is never padded.
    """
    lines = [line.split("\t") for line in text.split("\n")]
    widths: list[int] = []
    out: list[str] = []

    def write(start: int, end: int) -> None:
        for cells in lines[start:end]:
            padded = (cell.ljust(widths[j]) if j < len(widths) else cell for j, cell in enumerate(cells))
            out.append("".join(padded).rstrip())

    def block(start: int, end: int) -> None:
        column, this = len(widths), start
        while this < end:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write(start, this)
            start, width = this, minwidth
            while this < end and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            widths.append(width)
            block(start, this)
            widths.pop()
            start = this
        write(start, end)

    block(0, len(lines))
    return "\n".join(out)


def _table(header: list[str], rows: list[list[str]], *, no_headers: bool) -> str:
    if not rows:
        return ""
    lines = rows if no_headers else [header, *rows]
    return align_columns("\n".join("\t".join(cells) for cells in lines),
                         padding=TABLE_PADDING, minwidth=TABLE_MIN_WIDTH)


# -- pods ------------------------------------------------------------------------------

def _sidecars(pod: Pod) -> set[str]:
    return {c.name for c in pod.spec.init_containers or [] if c.restart_policy == "Always"}


@dataclass
class _Restarts:
    """A RESTARTS count and the latest ``lastState.terminated.finishedAt`` among the
    containers counted (kubectl's ``lastRestartDate``)."""

    count: int = 0
    last: str | None = None

    def add(self, cs: ContainerStatus) -> None:
        self.count += cs.restart_count
        finished = cs.last_state.terminated.finished_at if cs.last_state.terminated else None
        if finished and (self.last is None or parse_rfc3339(finished) > parse_rfc3339(self.last)):
            self.last = finished


@dataclass
class _Init:
    reason: str | None = None  # Init:… while init containers run or after one failed
    ready: int = 0  # ready sidecars
    # restarts of the init containers up to the one the pod waits for, and of the sidecars
    restarts: _Restarts = field(default_factory=_Restarts)
    sidecar_restarts: _Restarts = field(default_factory=_Restarts)


def _init_reason(pod: Pod, status: PodStatus) -> _Init:
    """kubectl's printPod over ``initContainerStatuses``."""
    sidecars, seen = _sidecars(pod), _Init()
    total = len(pod.spec.init_containers or [])
    for i, cs in enumerate(status.init_container_statuses or []):
        seen.restarts.add(cs)
        if cs.name in sidecars:
            seen.sidecar_restarts.add(cs)
        seen.reason = _init_step(cs, i, total, sidecars=sidecars, seen=seen)
        if seen.reason is not None:
            break
    return seen


def _init_step(cs: ContainerStatus, i: int, total: int, *, sidecars: set[str],
               seen: _Init) -> str | None:
    """One init container's part of the STATUS; None when it does not hold the pod back."""
    waiting, terminated = cs.state.waiting, cs.state.terminated
    if terminated and terminated.exit_code == 0:
        return None
    if cs.name in sidecars and cs.started:
        seen.ready += 1 if cs.ready else 0
        return None
    if terminated:
        if terminated.reason:
            return f"Init:{terminated.reason}"
        return (f"Init:Signal:{terminated.signal}" if terminated.signal
                else f"Init:ExitCode:{terminated.exit_code}")
    if waiting and waiting.reason and waiting.reason != "PodInitializing":
        return f"Init:{waiting.reason}"
    return f"Init:{i}/{total}"


def _condition_true(status: PodStatus, kind: str) -> bool:
    return any(c.type == kind and c.status == "True" for c in status.conditions or [])


def pod_status_reason(pod: Pod) -> tuple[str, int]:
    """kubectl's STATUS column and the number of ready containers (``printPod``)."""
    status = pod.status or PodStatus()
    reason = status.reason or status.phase or ""
    if any(c.type == "PodScheduled" and c.reason == SCHEDULING_GATED
           for c in status.conditions or []):
        reason = SCHEDULING_GATED
    init = _init_reason(pod, status)
    reason, ready = init.reason or reason, init.ready
    if init.reason is None or _condition_true(status, "Initialized"):
        has_running = False
        for cs in reversed(status.container_statuses or []):
            waiting, terminated = cs.state.waiting, cs.state.terminated
            if waiting and waiting.reason:
                reason = waiting.reason
            elif terminated and terminated.reason:
                reason = terminated.reason
            elif terminated:
                reason = (f"Signal:{terminated.signal}" if terminated.signal
                          else f"ExitCode:{terminated.exit_code}")
            elif cs.ready and cs.state.running:
                has_running, ready = True, ready + 1
        if reason == "Completed" and has_running:
            reason = "Running" if _condition_true(status, "Ready") else "NotReady"
    if pod.metadata.deletion_timestamp and status.reason == "NodeLost":
        reason = "Unknown"
    elif pod.metadata.deletion_timestamp and status.phase not in _TERMINAL_PHASES:
        reason = "Terminating"
    return reason, ready


def pod_restarts(pod: Pod, *, now: datetime) -> str:
    """kubectl's (1.22+) RESTARTS: the init containers' restarts while the pod initializes,
    else the sidecars' and the app containers'; once any, with the age of the latest
    restart among them (``lastState.terminated.finishedAt``): ``1 (26s ago)``."""
    status = pod.status or PodStatus()
    init = _init_reason(pod, status)
    restarts = init.restarts
    if init.reason is None or _condition_true(status, "Initialized"):
        restarts = init.sidecar_restarts
        for cs in status.container_statuses or []:
            restarts.add(cs)
    if restarts.count and restarts.last:
        return f"{restarts.count} ({age(restarts.last, now)} ago)"
    return str(restarts.count)


def _pod_row(pod: Pod, *, now: datetime, wide: bool) -> list[str]:
    reason, ready = pod_status_reason(pod)
    total = len(pod.spec.containers) + len(_sidecars(pod))
    row = [pod.metadata.name or "", f"{ready}/{total}", reason,
           pod_restarts(pod, now=now), age(pod.metadata.creation_timestamp, now)]
    if wide:
        ip = pod.status.pod_ip if pod.status else None
        nominated = pod.status.nominated_node_name if pod.status else None
        row += [ip or "<none>", pod.spec.node_name or "<none>", nominated or "<none>", "<none>"]
    return row


def format_labels(labels: dict[str, str] | None) -> str:
    """kubectl's LABELS column (``labels.FormatLabels``): sorted ``k=v`` joined by commas."""
    return ",".join(f"{k}={v}" for k, v in sorted((labels or {}).items())) or "<none>"


def pods_table(pods: Sequence[Pod], *, now: datetime, wide: bool = False,
               all_namespaces: bool = False, no_headers: bool = False,
               show_labels: bool = False) -> str:
    header = POD_COLUMNS + (POD_WIDE_COLUMNS if wide else [])
    rows = [_pod_row(pod, now=now, wide=wide) for pod in pods]
    return namespaced_table(header, rows, pods, all_namespaces=all_namespaces,
                            show_labels=show_labels, no_headers=no_headers)


def namespaced_table(header: list[str], rows: list[list[str]], objs: Sequence[Any], *,
                     all_namespaces: bool, show_labels: bool, no_headers: bool) -> str:
    """A table of namespaced objects, with kubectl's LABELS last and NAMESPACE first if asked."""
    if show_labels:
        header = [*header, "LABELS"]
        rows = [[*row, format_labels(o.metadata.labels)] for o, row in zip(objs, rows, strict=True)]
    if all_namespaces:
        header = ["NAMESPACE", *header]
        rows = [[o.metadata.namespace or "default", *row] for o, row in zip(objs, rows, strict=True)]
    return _table(header, rows, no_headers=no_headers)


# -- nodes -----------------------------------------------------------------------------

def node_roles(node: Node) -> list[str]:
    """Roles from ``node-role.kubernetes.io/<role>`` and ``kubernetes.io/role`` labels, sorted."""
    roles = set()
    for key, value in (node.metadata.labels or {}).items():
        if key.startswith(NODE_ROLE_PREFIX) and key[len(NODE_ROLE_PREFIX):]:
            roles.add(key[len(NODE_ROLE_PREFIX):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def node_status(node: Node) -> str:
    ready = node.condition("Ready")
    status = ["Unknown"] if ready is None else ["Ready" if ready.status == "True" else "NotReady"]
    if node.spec.unschedulable:
        status.append("SchedulingDisabled")
    return ",".join(status)


def _node_address(node: Node, kind: str) -> str:
    addresses = (node.status.addresses if node.status else None) or []
    return next((a.address for a in addresses if a.type == kind), "<none>")


def _node_row(node: Node, *, now: datetime, wide: bool) -> list[str]:
    info = node.status.node_info if node.status else None
    row = [node.metadata.name or "", node_status(node), ",".join(node_roles(node)) or "<none>",
           age(node.metadata.creation_timestamp, now), info.kubelet_version if info else ""]
    if wide:
        row += [_node_address(node, "InternalIP"), _node_address(node, "ExternalIP")]
        row += [(getattr(info, attr, "") if info else "") or "<unknown>"
                for attr in ("os_image", "kernel_version", "container_runtime_version")]
    return row


def nodes_table(nodes: Sequence[Node], *, now: datetime, wide: bool = False,
                no_headers: bool = False, show_labels: bool = False) -> str:
    header = NODE_COLUMNS + (NODE_WIDE_COLUMNS if wide else [])
    rows = [_node_row(n, now=now, wide=wide) for n in nodes]
    if show_labels:
        header = [*header, "LABELS"]
        rows = [[*row, format_labels(n.metadata.labels)] for n, row in zip(nodes, rows, strict=True)]
    return _table(header, rows, no_headers=no_headers)


# -- namespaces ------------------------------------------------------------------------

def namespaces_table(namespaces: Sequence[Namespace], *, now: datetime, no_headers: bool = False,
                     show_labels: bool = False) -> str:
    """kubectl's ``printNamespace``: name, phase, age (``-o wide`` adds nothing)."""
    header = list(NAMESPACE_COLUMNS)
    rows = [[ns.metadata.name or "", (ns.status.phase if ns.status else None) or "",
             age(ns.metadata.creation_timestamp, now)] for ns in namespaces]
    if show_labels:
        header = [*header, "LABELS"]
        rows = [[*row, format_labels(ns.metadata.labels)]
                for ns, row in zip(namespaces, rows, strict=True)]
    return _table(header, rows, no_headers=no_headers)


# -- configmaps and secrets ------------------------------------------------------------

def configs_table(objs: Sequence[ConfigMap | Secret], *, now: datetime,
                  all_namespaces: bool = False, no_headers: bool = False,
                  show_labels: bool = False) -> str:
    """kubectl's ``printConfigMap`` (NAME DATA AGE) or ``printSecret`` (NAME TYPE DATA AGE)."""
    secrets = bool(objs) and isinstance(objs[0], Secret)
    header = list(SECRET_COLUMNS if secrets else CONFIGMAP_COLUMNS)
    rows = []
    for obj in objs:
        if isinstance(obj, Secret):
            rows.append([obj.metadata.name or "", obj.type or "", str(len(obj.data or {})),
                         age(obj.metadata.creation_timestamp, now)])
        else:
            rows.append([obj.metadata.name or "", str(len(obj.keys())),
                         age(obj.metadata.creation_timestamp, now)])
    return namespaced_table(header, rows, objs, all_namespaces=all_namespaces,
                            show_labels=show_labels, no_headers=no_headers)


# -- priority classes ------------------------------------------------------------------

def priority_classes_table(objs: Sequence[PriorityClass], *, now: datetime,
                           no_headers: bool = False, show_labels: bool = False) -> str:
    """kubectl's ``printPriorityClass``: NAME VALUE GLOBAL-DEFAULT AGE PREEMPTIONPOLICY."""
    header = list(PRIORITY_CLASS_COLUMNS)
    rows = [[pc.metadata.name or "", str(pc.value), "true" if pc.global_default else "false",
             age(pc.metadata.creation_timestamp, now),
             pc.preemption_policy or PREEMPT_LOWER_PRIORITY] for pc in objs]
    if show_labels:
        header = [*header, "LABELS"]
        rows = [[*row, format_labels(pc.metadata.labels)]
                for pc, row in zip(objs, rows, strict=True)]
    return _table(header, rows, no_headers=no_headers)


# -- events ----------------------------------------------------------------------------

def event_object(event: Event) -> str:
    """``pod/db``: the involved object's kind in lower case, then its name."""
    ref = event.involved_object
    kind = (ref.kind or "").lower()
    return f"{kind}/{ref.name}" if ref.name else kind


def _event_row(event: Event, *, now: datetime, wide: bool) -> list[str]:
    first = age(event.first_timestamp, now)
    last = age(event.last_timestamp, now) if event.last_timestamp else first
    message = event.message.strip()
    if not wide:
        return [last, event.type, event.reason, event_object(event), message]
    source = event.source
    component = (source.component if source else None) or event.reporting_component or ""
    host = (source.host if source else None) or event.reporting_instance or ""
    return [last, event.type, event.reason, event_object(event), event.involved_object.field_path or "",
            f"{component}, {host}" if host else component, message, first, str(event.count or 1),
            event.metadata.name or ""]


def events_table(events: Sequence[Event], *, now: datetime, all_namespaces: bool = False,
                 no_headers: bool = False, wide: bool = False) -> str:
    """``kubectl get events`` columns, in the order given (the stream's order)."""
    header = list(EVENT_WIDE_COLUMNS if wide else EVENT_COLUMNS)
    rows = [_event_row(e, now=now, wide=wide) for e in events]
    if all_namespaces:
        header = ["NAMESPACE", *header]
        rows = [[e.metadata.namespace or "", *row] for e, row in zip(events, rows, strict=True)]
    return _table(header, rows, no_headers=no_headers)


# -- everything together ---------------------------------------------------------------

def _document(objs: Sequence[Any], *, single: bool) -> dict[str, Any]:
    """One object as it is, or several (or none) wrapped in kubectl's ``kind: List``."""
    if single and len(objs) == 1:
        one: dict[str, Any] = objs[0].to_wire()
        return one
    wire = ObjectList(items=[o.to_wire() for o in objs], metadata=ListMeta(resource_version="")).to_wire()
    return {key: wire[key] for key in ("apiVersion", "items", "kind", "metadata")}


def check_output(output: str | None) -> None:
    """Refuse an ``-o`` kubectl would refuse, in its words, before anything is fetched."""
    if output is None or output in ("wide", "yaml", "json", "name"):
        return
    format_, _, template = output.partition("=")
    if format_ == "jsonpath" and template:
        jsonpath.Template(template)
    elif format_ == "custom-columns" and template:
        jsonpath.custom_columns(template)
    elif format_ == "jsonpath":
        raise Invalid("template format specified but no template given")
    elif format_ == "custom-columns":
        raise Invalid("custom-columns format specified but no custom columns given")
    else:
        raise Invalid(f'unable to match a printer suitable for the output format "{output}", '
                      f"allowed formats are: {OUTPUT_FORMATS}")


def line_end(output: str | None) -> str:
    """What follows a rendered list: nothing after a jsonpath template, as kubectl."""
    return "" if output is not None and output.startswith("jsonpath=") else "\n"


def kind_and_group(obj: Any) -> str:
    """kubectl's ``-o name`` prefix: ``pod``, ``deployment.apps``, ``job.batch``."""
    api_version = obj.to_wire().get("apiVersion") or ""
    group = api_version.split("/")[0] if "/" in api_version else ""
    return f"{obj.kind.lower()}.{group}" if group else obj.kind.lower()


def _custom_columns(objs: Sequence[Any], spec: str, *, no_headers: bool) -> str:
    """``-o custom-columns=HEADER:PATH,…``: one row per object, ``<none>`` where a path finds nothing."""
    columns = jsonpath.custom_columns(spec)
    rows = []
    for obj in objs:
        wire = obj.to_wire()
        rows.append([",".join(jsonpath.text(v) for v in template.values(wire)) or "<none>"
                     for _, template in columns])
    return _table([header for header, _ in columns], rows, no_headers=no_headers)


def render(objs: Sequence[Any], *, output: str | None, kind: str,
           now: datetime,
           all_namespaces: bool = False, single: bool = False, no_headers: bool = False,
           show_labels: bool = False) -> str:
    """``objs`` printed as ``peapod get -o OUTPUT`` prints them, without a trailing newline.

    ``show_labels`` (``--show-labels``) adds kubectl's LABELS column to pod, node and
    namespace tables.
    """
    if output == "json":
        # kubectl prints a map, so keys come sorted at every level
        return json.dumps(_document(objs, single=single), indent=4, sort_keys=True)
    if output == "yaml":
        return yaml.safe_dump(_document(objs, single=single), sort_keys=True,
                              default_flow_style=False, allow_unicode=True).rstrip("\n")
    if output == "name":
        return "\n".join(f"{kind_and_group(o)}/{o.metadata.name}" for o in objs)
    if output is not None and output.startswith("jsonpath="):
        return jsonpath.Template(output.removeprefix("jsonpath=")).render(
            _document(objs, single=single))
    if output is not None and output.startswith("custom-columns="):
        return _custom_columns(objs, output.removeprefix("custom-columns="), no_headers=no_headers)
    check_output(output)
    wide = output == "wide"
    if kind == "pods":
        return pods_table([o for o in objs if isinstance(o, Pod)], now=now, wide=wide,
                          all_namespaces=all_namespaces, no_headers=no_headers,
                          show_labels=show_labels)
    if kind == "nodes":
        return nodes_table([o for o in objs if isinstance(o, Node)], now=now, wide=wide,
                           no_headers=no_headers, show_labels=show_labels)
    if kind == "namespaces":
        return namespaces_table([o for o in objs if isinstance(o, Namespace)], now=now,
                                no_headers=no_headers, show_labels=show_labels)
    if kind in ("configmaps", "secrets"):
        return configs_table([o for o in objs if isinstance(o, ConfigMap | Secret)], now=now,
                             all_namespaces=all_namespaces, no_headers=no_headers,
                             show_labels=show_labels)
    if kind == "priorityclasses":
        return priority_classes_table([o for o in objs if isinstance(o, PriorityClass)], now=now,
                                      no_headers=no_headers, show_labels=show_labels)
    if kind == "events":
        return events_table([o for o in objs if isinstance(o, Event)], now=now, wide=wide,
                            all_namespaces=all_namespaces, no_headers=no_headers)
    if kind in ("replicasets", "deployments", "daemonsets", "jobs", "cronjobs"):
        from peapod.cli.workloads import workload_table  # it builds on this module
        return workload_table(kind, objs, now=now, wide=wide, all_namespaces=all_namespaces,
                              no_headers=no_headers, show_labels=show_labels)
    if kind in ("persistentvolumes", "persistentvolumeclaims"):
        from peapod.cli.storage import storage_table  # it builds on this module
        return storage_table(kind, objs, now=now, wide=wide, all_namespaces=all_namespaces,
                             no_headers=no_headers, show_labels=show_labels)
    raise Invalid(f'the server doesn\'t have a resource type "{kind}"')


def no_resources_message(namespace: str | None) -> str:
    """kubectl's message for an empty list; ``None`` means cluster-wide (``-A`` or nodes)."""
    if namespace is None:
        return "No resources found"
    return f"No resources found in {namespace} namespace."
