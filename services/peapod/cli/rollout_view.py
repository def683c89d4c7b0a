"""What ``rollout`` prints: history tables, one revision's template, the status line.

Pure functions of the objects, like the other printers. The messages are
kubectl's ``DeploymentStatusViewer`` and ``HistoryViewer`` texts.
"""

from __future__ import annotations

from peapod.api.apps import (
    CHANGE_CAUSE_ANNOTATION,
    POD_TEMPLATE_HASH,
    REVISION_ANNOTATION,
    Deployment,
    PodTemplateSpec,
    ReplicaSet,
)
from peapod.cli.describe import _Writer
from peapod.cli.printers import _table


def revisions(deploy: Deployment, replicasets: list[ReplicaSet]) -> dict[int, ReplicaSet]:
    """The Deployment's ReplicaSets by revision (those it controls, with a revision)."""
    found = {}
    for rs in replicasets:
        ref = rs.metadata.controller_ref()
        value = (rs.metadata.annotations or {}).get(REVISION_ANNOTATION, "")
        if ref is not None and ref.uid == deploy.metadata.uid and value.isdigit():
            found[int(value)] = rs
    return dict(sorted(found.items()))


def template_of(rs: ReplicaSet) -> PodTemplateSpec:
    """The ReplicaSet's template without the ``pod-template-hash`` label the Deployment added."""
    template = rs.spec.template.model_copy(deep=True)
    labels = {k: v for k, v in (template.metadata.labels or {}).items() if k != POD_TEMPLATE_HASH}
    template.metadata.labels = labels or None
    return template


def history_table(name: str, history: dict[int, ReplicaSet]) -> str:
    rows = [[str(revision), (rs.metadata.annotations or {}).get(CHANGE_CAUSE_ANNOTATION, "<none>")]
            for revision, rs in history.items()]
    table = _table(["REVISION", "CHANGE-CAUSE"], rows, no_headers=False)
    return f"deployment.apps/{name} \n{table}\n"


def revision_detail(name: str, revision: int, rs: ReplicaSet) -> str:
    from peapod.cli.workloads import pod_template
    w = _Writer()
    pod_template(w, rs.spec.template)
    return f"deployment.apps/{name} with revision #{revision}\n{w.text()}\n"


def rollout_message(deploy: Deployment) -> tuple[str, bool]:
    """kubectl's ``DeploymentStatusViewer.Status``: the line to print, and whether it is done."""
    name, status, want = deploy.metadata.name, deploy.status, deploy.spec.replicas
    if status is None or (status.observed_generation or 0) < (deploy.metadata.generation or 0):
        return "Waiting for deployment spec update to be observed...", False
    updated = status.updated_replicas or 0
    if updated < want:
        return (f'Waiting for deployment "{name}" rollout to finish: {updated} out of {want} '
                "new replicas have been updated..."), False
    if (status.replicas or 0) > updated:
        return (f'Waiting for deployment "{name}" rollout to finish: '
                f"{(status.replicas or 0) - updated} old replicas are pending termination..."), False
    if (status.available_replicas or 0) < updated:
        return (f'Waiting for deployment "{name}" rollout to finish: '
                f"{status.available_replicas or 0} of {updated} updated replicas are "
                "available..."), False
    return f'deployment "{name}" successfully rolled out', True
