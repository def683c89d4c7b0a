"""Nodes that stopped heartbeating read as ``Ready=Unknown``, as Kubernetes reports them.

In Kubernetes the node lifecycle controller rewrites a node's Ready
condition to ``Unknown`` (reason ``NodeStatusUnknown``) once its kubelet has
not renewed its lease for the grace period, so ``kubectl get nodes`` shows
``NotReady``. peapod has no controller-manager yet; the apiserver applies
the same rule when it serves a Node, from the lease it follows. Nothing is
written: the stored Node keeps what its kubelet last posted, and a kubelet
that comes back is Ready again with its next heartbeat.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from peapod.api import parse_rfc3339
from peapod.bus import subjects as s

REASON = "NodeStatusUnknown"
MESSAGE = "Kubelet stopped posting node status."


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def with_heartbeat(node: dict[str, Any], renewed: float | None, now: float) -> dict[str, Any]:
    """``node`` (wire form) as Kubernetes would show it at ``now``, given its last lease renewal."""
    conditions = (node.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") != "True":
        return node  # already NotReady or Unknown: the kubelet said so itself
    posted = ready.get("lastHeartbeatTime")
    last = max(renewed or 0.0, parse_rfc3339(posted).timestamp() if posted else 0.0)
    if now - last < s.LEASE_DURATION_SECONDS:
        return node
    shown = copy.deepcopy(node)
    for condition in shown["status"]["conditions"]:
        if condition.get("type") == "Ready":
            condition.update(status="Unknown", reason=REASON, message=MESSAGE,
                             lastHeartbeatTime=_rfc3339(last) if last else posted,
                             lastTransitionTime=_rfc3339(last + s.LEASE_DURATION_SECONDS))
    return shown
