"""``get`` and ``describe`` of ReplicaSets (and Deployments): kubectl's columns and layout.

``get rs`` prints kubectl's ``printReplicaSet`` (NAME DESIRED CURRENT READY
AGE; ``-o wide`` adds CONTAINERS IMAGES SELECTOR) and ``get deploy`` its
``printDeployment`` (NAME READY UP-TO-DATE AVAILABLE AGE). ``describe``
follows kubectl's ``ReplicaSetDescriber``. Pure functions of their input
and ``now``, like the other printers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from peapod.api import Event, Pod, parse_rfc3339
from peapod.api.apps import DaemonSet, Deployment, PodTemplateSpec, ReplicaSet
from peapod.api.batch import CronJob, Job
from peapod.cli.describe import NONE, _events, _ports, _Writer, environment
from peapod.cli.printers import age, human_duration, namespaced_table

RS_COLUMNS = ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
DEPLOY_COLUMNS = ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
JOB_COLUMNS = ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
DS_COLUMNS = ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR",
              "AGE"]
WIDE_COLUMNS = ["CONTAINERS", "IMAGES", "SELECTOR"]


def _wide(template: PodTemplateSpec, selector: Any) -> list[str]:
    containers = template.spec.containers
    return [",".join(c.name for c in containers), ",".join(c.image for c in containers),
            selector.to_query() if selector else NONE]


def _rs_row(rs: ReplicaSet, now: datetime, wide: bool) -> list[str]:
    status = rs.status
    row = [rs.metadata.name or "", str(rs.spec.replicas), str(status.replicas if status else 0),
           str((status.ready_replicas if status else 0) or 0),
           age(rs.metadata.creation_timestamp, now)]
    return row + (_wide(rs.spec.template, rs.spec.selector) if wide else [])


def _deploy_row(d: Deployment, now: datetime, wide: bool) -> list[str]:
    status = d.status
    ready = (status.ready_replicas if status else 0) or 0
    row = [d.metadata.name or "", f"{ready}/{d.spec.replicas}",
           str((status.updated_replicas if status else 0) or 0),
           str((status.available_replicas if status else 0) or 0),
           age(d.metadata.creation_timestamp, now)]
    return row + (_wide(d.spec.template, d.spec.selector) if wide else [])


def _ds_row(ds: DaemonSet, now: datetime, wide: bool) -> list[str]:
    """kubectl's ``printDaemonSet``."""
    st = ds.status
    selector = ",".join(f"{k}={v}" for k, v in sorted(
        (ds.spec.template.spec.node_selector or {}).items())) or NONE
    row = [ds.metadata.name or "", str(st.desired_number_scheduled if st else 0),
           str(st.current_number_scheduled if st else 0), str(st.number_ready if st else 0),
           str((st.updated_number_scheduled if st else 0) or 0),
           str((st.number_available if st else 0) or 0), selector,
           age(ds.metadata.creation_timestamp, now)]
    return row + (_wide(ds.spec.template, ds.spec.selector) if wide else [])


def _job_row(job: Job, now: datetime, wide: bool) -> list[str]:
    """kubectl's ``printJob``: STATUS, succeeded/completions, how long it ran."""
    st = job.status
    finished = job.finished()
    state = finished.type if finished is not None else "Running"
    duration = ""
    if st and st.start_time:
        end = parse_rfc3339(st.completion_time) if st.completion_time else now
        duration = human_duration(end - parse_rfc3339(st.start_time))
    row = [job.metadata.name or "", state, f"{(st.succeeded if st else 0) or 0}/"
           f"{job.spec.completions}", duration, age(job.metadata.creation_timestamp, now)]
    return row + (_wide(job.spec.template, job.spec.selector) if wide else [])


def workload_table(kind: str, objs: Sequence[Any], *, now: datetime, wide: bool = False,
                   all_namespaces: bool = False, no_headers: bool = False,
                   show_labels: bool = False) -> str:
    """The table of ``replicasets``, ``deployments``, ``daemonsets``, ``jobs`` or ``cronjobs``."""
    items: list[Any]
    if kind == "cronjobs":
        from peapod.cli.cronjobs import CRONJOB_COLUMNS, cronjob_row  # it builds on this module
        items = [o for o in objs if isinstance(o, CronJob)]
        header, rows = CRONJOB_COLUMNS, [cronjob_row(o, now, wide) for o in items]
    elif kind == "replicasets":
        items = [o for o in objs if isinstance(o, ReplicaSet)]
        header, rows = RS_COLUMNS, [_rs_row(o, now, wide) for o in items]
    elif kind == "jobs":
        items = [o for o in objs if isinstance(o, Job)]
        header, rows = JOB_COLUMNS, [_job_row(o, now, wide) for o in items]
    elif kind == "daemonsets":
        items = [o for o in objs if isinstance(o, DaemonSet)]
        header, rows = DS_COLUMNS, [_ds_row(o, now, wide) for o in items]
    else:
        items = [o for o in objs if isinstance(o, Deployment)]
        header, rows = DEPLOY_COLUMNS, [_deploy_row(o, now, wide) for o in items]
    return namespaced_table(header + (WIDE_COLUMNS if wide else []), rows, items,
                            all_namespaces=all_namespaces, show_labels=show_labels,
                            no_headers=no_headers)


def pod_template(w: _Writer, template: PodTemplateSpec) -> None:
    w.line(0, "Pod Template:")
    w.mapping(1, "Labels", template.metadata.labels)
    if template.metadata.annotations:
        w.mapping(1, "Annotations", template.metadata.annotations, sep=": ")
    w.line(1, "Containers:")
    for container in template.spec.containers:
        w.line(2, f"{container.name}:")
        w.line(3, "Image:", container.image)
        port, host_port = _ports(container)
        w.line(3, "Port:", port)
        w.line(3, "Host Port:", host_port)
        environment(w, 3, container)
        mounts = ", ".join(f"{m.mount_path} from {m.name}" for m in container.volume_mounts or [])
        w.line(3, "Mounts:", mounts or NONE)
    volumes = ", ".join(v.name for v in template.spec.volumes or [])
    w.line(1, "Volumes:", volumes or NONE)


def pods_status(pods: Sequence[Pod]) -> str:
    """kubectl's ``Pods Status`` line: running / waiting (pending) / succeeded / failed."""
    phases = [p.status.phase if p.status else "Pending" for p in pods]
    return (f"{phases.count('Running')} Running / {phases.count('Pending')} Waiting / "
            f"{phases.count('Succeeded')} Succeeded / {phases.count('Failed')} Failed")


def describe_replicaset(rs: ReplicaSet, pods: Sequence[Pod], events: Sequence[Event], *,
                        now: datetime) -> str:
    meta, status = rs.metadata, rs.status
    w = _Writer()
    w.line(0, "Name:", meta.name or "")
    w.line(0, "Namespace:", meta.namespace or "default")
    w.line(0, "Selector:", rs.spec.selector.to_query() if rs.spec.selector else NONE)
    w.mapping(0, "Labels", meta.labels)
    w.mapping(0, "Annotations", meta.annotations, sep=": ")
    owner = meta.controller_ref()
    if owner is not None:
        w.line(0, "Controlled By:", f"{owner.kind}/{owner.name}")
    w.line(0, "Replicas:", f"{status.replicas if status else 0} current / {rs.spec.replicas} desired")
    w.line(0, "Pods Status:", pods_status(pods))
    pod_template(w, rs.spec.template)
    _conditions(w, (status.conditions if status else None) or [])
    _events(w, events, now)
    return w.text()


def describe_deployment(deploy: Deployment, owned: Sequence[ReplicaSet], events: Sequence[Event],
                        *, now: datetime) -> str:
    """kubectl's ``DeploymentDescriber``: counts, strategy, template, conditions, ReplicaSets."""
    from peapod.cli.describe import _timestamp
    meta, spec, status = deploy.metadata, deploy.spec, deploy.status
    w = _Writer()
    w.line(0, "Name:", meta.name or "")
    w.line(0, "Namespace:", meta.namespace or "default")
    w.line(0, "CreationTimestamp:", _timestamp(meta.creation_timestamp))
    w.mapping(0, "Labels", meta.labels)
    w.mapping(0, "Annotations", meta.annotations, sep=": ")
    w.line(0, "Selector:", spec.selector.to_query() if spec.selector else NONE)

    def count(field: str) -> int:
        return (getattr(status, field) or 0) if status else 0
    w.line(0, "Replicas:", f"{spec.replicas} desired | {count('updated_replicas')} updated | "
           f"{count('replicas')} total | {count('available_replicas')} available | "
           f"{count('unavailable_replicas')} unavailable")
    w.line(0, "StrategyType:", spec.strategy.type)
    w.line(0, "MinReadySeconds:", "0")
    rolling = spec.strategy.rolling_update
    if spec.strategy.type == "RollingUpdate" and rolling is not None:
        w.line(0, "RollingUpdateStrategy:", f"{rolling.max_unavailable} max unavailable, "
               f"{rolling.max_surge} max surge")
    pod_template(w, spec.template)
    _conditions(w, (status.conditions if status else None) or [])
    new = [rs for rs in owned if _same_template(rs, deploy)]
    old = [rs for rs in owned if rs not in new and (rs.spec.replicas or (rs.status and rs.status.replicas))]
    w.line(0, "OldReplicaSets:", ", ".join(_rs_summary(rs) for rs in old) or NONE)
    w.line(0, "NewReplicaSet:", ", ".join(_rs_summary(rs) for rs in new) or NONE)
    _events(w, events, now)
    return w.text()


def _selected(w: _Writer, obj: DaemonSet | Job) -> None:
    """The header kubectl's DaemonSet and Job describers share."""
    meta = obj.metadata
    w.line(0, "Name:", meta.name or "")
    w.line(0, "Namespace:", meta.namespace or "default")
    w.line(0, "Selector:", obj.spec.selector.to_query() if obj.spec.selector else NONE)


def describe_daemonset(ds: DaemonSet, pods: Sequence[Pod], events: Sequence[Event], *,
                       now: datetime) -> str:
    """kubectl's ``DaemonSetDescriber``."""
    status, w = ds.status, _Writer()
    _selected(w, ds)
    selector = ds.spec.template.spec.node_selector
    w.line(0, "Node-Selector:", ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
           if selector else NONE)
    w.mapping(0, "Labels", ds.metadata.labels)
    w.mapping(0, "Annotations", ds.metadata.annotations, sep=": ")

    def count(field: str) -> int:
        return (getattr(status, field) or 0) if status else 0
    w.line(0, "Desired Number of Nodes Scheduled:", str(count("desired_number_scheduled")))
    w.line(0, "Current Number of Nodes Scheduled:", str(count("current_number_scheduled")))
    w.line(0, "Number of Nodes Scheduled with Up-to-date Pods:",
           str(count("updated_number_scheduled")))
    w.line(0, "Number of Nodes Scheduled with Available Pods:", str(count("number_available")))
    w.line(0, "Number of Nodes Misscheduled:", str(count("number_misscheduled")))
    w.line(0, "Pods Status:", pods_status(pods))
    pod_template(w, ds.spec.template)
    _events(w, events, now)
    return w.text()


def describe_job(job: Job, pods: Sequence[Pod], events: Sequence[Event], *, now: datetime) -> str:
    """kubectl's ``JobDescriber``: counts, times, the pods' statuses, the template."""
    from peapod.cli.describe import _timestamp
    spec, status, w = job.spec, job.status, _Writer()
    _selected(w, job)
    w.mapping(0, "Labels", job.metadata.labels)
    w.mapping(0, "Annotations", job.metadata.annotations, sep=": ")
    w.line(0, "Parallelism:", str(spec.parallelism))
    w.line(0, "Completions:", str(spec.completions))
    w.line(0, "Completion Mode:", "NonIndexed")
    w.line(0, "Suspend:", "false")
    w.line(0, "Backoff Limit:", str(spec.backoff_limit))
    if spec.ttl_seconds_after_finished is not None:
        w.line(0, "TTL Seconds After Finished:", str(spec.ttl_seconds_after_finished))
    started = status.start_time if status else None
    if started:
        w.line(0, "Start Time:", _timestamp(started))
    finished = status.completion_time if status else None
    if started and finished:
        w.line(0, "Completed At:", _timestamp(finished))
        w.line(0, "Duration:", human_duration(parse_rfc3339(finished) - parse_rfc3339(started)))
    if spec.active_deadline_seconds is not None:
        w.line(0, "Active Deadline Seconds:", f"{spec.active_deadline_seconds}s")
    ready = sum(1 for p in pods if p.status and any(
        c.type == "Ready" and c.status == "True" for c in p.status.conditions or []))

    def count(field: str) -> int:
        return (getattr(status, field) or 0) if status else 0
    w.line(0, "Pods Statuses:", f"{count('active')} Active ({ready} Ready) / "
           f"{count('succeeded')} Succeeded / {count('failed')} Failed")
    pod_template(w, spec.template)
    _events(w, events, now)
    return w.text()


def _conditions(w: _Writer, conditions: Sequence[Any]) -> None:
    if conditions:
        w.line(0, "Conditions:")
        w.line(1, "Type", "Status", "Reason")
        w.line(1, "----", "------", "------")
        for c in conditions:
            w.line(1, c.type, c.status, c.reason or "")


def _rs_summary(rs: ReplicaSet) -> str:
    """kubectl's ``web-5d8f7b9c4 (3/3 replicas created)``."""
    return f"{rs.metadata.name} ({rs.status.replicas if rs.status else 0}/{rs.spec.replicas} " \
           "replicas created)"


def _same_template(rs: ReplicaSet, deploy: Deployment) -> bool:
    from peapod.cli.rollout_view import template_of
    return template_of(rs).to_wire() == deploy.spec.template.to_wire()
