"""CronJobs in the CLI: kubectl's ``get cronjobs`` columns, ``describe cronjob``, and the
generators ``create cronjob NAME --image --schedule`` and ``create job NAME --from=cronjob/X``.

``get cj`` prints kubectl's ``printCronJob`` (NAME SCHEDULE TIMEZONE SUSPEND
ACTIVE LAST SCHEDULE AGE; ``-o wide`` adds CONTAINERS IMAGES SELECTOR);
``describe`` follows kubectl's ``describeCronJob``. The generators build
what kubectl's ``create cronjob`` and ``create job --from`` build, except
that kubectl also names the Job template (``jobTemplate.metadata.name``),
which Kubernetes ignores and peapod refuses, so it is left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from peapod.api import Event
from peapod.api.batch import CronJob
from peapod.cli.describe import NONE, _events, _timestamp, _Writer
from peapod.cli.printers import age
from peapod.cli.workloads import _wide, pod_template
from peapod.errors import Invalid

CRONJOB_COLUMNS = ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
INSTANTIATE = "cronjob.kubernetes.io/instantiate"  # kubectl marks a Job made by hand so


def cronjob_row(cj: CronJob, now: datetime, wide: bool) -> list[str]:
    status = cj.status
    last = status.last_schedule_time if status else None
    row = [cj.metadata.name or "", cj.spec.schedule, cj.spec.time_zone or NONE,
           str(cj.spec.suspend), str(len((status.active if status else None) or [])),
           age(last, now) if last else NONE, age(cj.metadata.creation_timestamp, now)]
    return row + (_wide(cj.spec.job_template.spec.template, None) if wide else [])


def describe_cronjob(cj: CronJob, events: Sequence[Event], *, now: datetime) -> str:
    """kubectl's ``describeCronJob``: the schedule and policies, the Job template, the last
    run, the active Jobs and the events."""
    meta, spec, status, w = cj.metadata, cj.spec, cj.status, _Writer()
    w.line(0, "Name:", meta.name or "")
    w.line(0, "Namespace:", meta.namespace or "default")
    w.mapping(0, "Labels", meta.labels)
    w.mapping(0, "Annotations", meta.annotations, sep=": ")
    w.line(0, "Schedule:", spec.schedule)
    w.line(0, "Concurrency Policy:", spec.concurrency_policy)
    w.line(0, "Suspend:", str(spec.suspend))
    w.line(0, "Successful Job History Limit:", str(spec.successful_jobs_history_limit))
    w.line(0, "Failed Job History Limit:", str(spec.failed_jobs_history_limit))
    deadline = spec.starting_deadline_seconds
    w.line(0, "Starting Deadline Seconds:", f"{deadline}s" if deadline is not None else "<unset>")
    job = spec.job_template.spec
    w.line(0, "Selector:", "<unset>")  # a Job's selector is made when the Job is
    w.line(0, "Parallelism:", str(job.parallelism))
    w.line(0, "Completions:", str(job.completions))
    if job.active_deadline_seconds is not None:
        w.line(0, "Active Deadline Seconds:", f"{job.active_deadline_seconds}s")
    pod_template(w, job.template)
    last = status.last_schedule_time if status else None
    w.line(0, "Last Schedule Time:", _timestamp(last) if last else "<unset>")
    active = (status.active if status else None) or []
    w.line(0, "Active Jobs:", ", ".join(ref.name or "" for ref in active) or NONE)
    _events(w, events, now)
    return w.text()


def generate_cronjob(names: list[str], args: Any) -> dict[str, Any]:
    """kubectl's ``create cronjob NAME --image=I --schedule=S [--restart=R] [-- CMD ARGS…]``."""
    if not names:
        raise Invalid("NAME is required")
    missing = [f'"{f}"' for f in ("image", "schedule") if not getattr(args, f, None)]
    if missing:
        raise Invalid(f"required flag(s) {', '.join(missing)} not set")
    restart = args.restart or "OnFailure"
    if restart not in ("OnFailure", "Never"):
        raise Invalid(f"restart must be either OnFailure or Never, got {restart}")
    name, command = names[0], names[1:]
    container: dict[str, Any] = {"name": name, "image": args.image}
    if command:
        container["command"] = command
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name},
            "spec": {"schedule": args.schedule, "jobTemplate": {"spec": {"template": {
                "spec": {"containers": [container], "restartPolicy": restart}}}}}}


def job_from_cronjob(name: str, cj: CronJob) -> dict[str, Any]:
    """kubectl's ``create job NAME --from=cronjob/X``: the CronJob's Job template, owned by
    it (``controller: true``, no ``blockOwnerDeletion``, as kubectl does it), annotated
    ``cronjob.kubernetes.io/instantiate: manual``."""
    template = cj.spec.job_template
    annotations = {INSTANTIATE: "manual", **(template.metadata.annotations or {})}
    meta: dict[str, Any] = {"name": name, "annotations": annotations, "ownerReferences": [{
        "apiVersion": "batch/v1", "kind": "CronJob", "name": cj.metadata.name,
        "uid": cj.metadata.uid, "controller": True}]}
    if template.metadata.labels:
        meta["labels"] = dict(template.metadata.labels)
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": template.spec.to_wire()}


def generate_job(names: list[str], args: Any) -> dict[str, Any]:
    """kubectl's ``create job NAME --image=I [-- CMD ARGS…]`` (``--from`` is handled by the
    caller, which reads the CronJob)."""
    if not names:
        raise Invalid("NAME is required")
    if not args.image:
        raise Invalid("either --image or --from must be specified")
    name, command = names[0], names[1:]
    container: dict[str, Any] = {"name": name, "image": args.image}
    if command:
        container["command"] = command
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [container],
                                           "restartPolicy": "Never"}}}}
