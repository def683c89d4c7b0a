"""Every NATS subject, stream and bucket name peapod uses, in one place.

The subject table in protos/subjects.md is generated from ``SUBJECT_TABLE``
here, and the NATS permissions ``peapod up`` writes are derived from the same
names, so the documentation, the permissions and the code cannot disagree.
"""

from __future__ import annotations

API_PREFIX = "peapod.api.v1"
KV_BUCKET = "peapod"
KV_STREAM = f"KV_{KV_BUCKET}"
NODES_STREAM = "PEAPOD_NODES"
WATCH_STREAM = "PEAPOD_WATCH"
EVENTS_STREAM = "PEAPOD_EVENTS"
FANOUT_DURABLE = "peapod-fanout"
API_QUEUE = "peapod-apiserver"
LEASE_BUCKET = "peapod-leases"
LEASE_STREAM = f"KV_{LEASE_BUCKET}"
LEASE_DURATION_SECONDS = 40


def api(kind: str, verb: str) -> str:
    """Cluster API request: ``peapod.api.v1.pods.apply``."""
    return f"{API_PREFIX}.{kind}.{verb}"


def node_api(node: str, verb: str) -> str:
    """A kubelet's own API request: ``peapod.api.v1.node.<node>.status``."""
    return f"{API_PREFIX}.node.{node}.{verb}"


def kv_key(kind: str, namespace: str | None, name: str) -> str:
    """Key in the ``peapod`` bucket: ``pods.<namespace>.<name>`` or ``nodes.<name>``."""
    return f"{kind}.{namespace}.{name}" if namespace is not None else f"{kind}.{name}"


def lease(node: str) -> str:
    """A node's heartbeat key in the memory-backed lease bucket."""
    return f"$KV.{LEASE_BUCKET}.{node}"


def node_partition(node: str, namespace: str, name: str) -> str:
    """A bound pod on its node's own partition."""
    return f"peapod.node.{node}.pods.{namespace}.{name}"


def node_partition_all(node: str) -> str:
    return f"peapod.node.{node}.>"


def watch(kind: str, namespace: str | None, name: str) -> str:
    """The cluster watch stream: every change of every object."""
    ns = namespace if namespace is not None else "_"
    return f"peapod.watch.{kind}.{ns}.{name}"


def event(namespace: str, kind: str, name: str) -> str:
    return f"peapod.events.{namespace}.{kind.lower()}.{name}"


def kubelet(node: str, verb: str) -> str:
    """Requests the CLI sends straight to one kubelet: ``logs`` and ``exec``."""
    return f"peapod.kubelet.{node}.{verb}"


def inbox_prefix(user: str) -> str:
    """Each component gets its own reply inbox so it cannot read others' replies."""
    return f"_INBOX_{user}"


# (subject pattern, publisher, subscriber) — rendered into protos/subjects.md.
SUBJECT_TABLE: list[tuple[str, str, str]] = [
    (f"{API_PREFIX}.<kind>.<verb>", "CLI, scheduler, controllers",
     f"apiserver (queue group `{API_QUEUE}`)"),
    (f"{API_PREFIX}.node.<node>.<verb>", "the kubelet of `<node>` only",
     "apiserver, which checks the pod is bound to `<node>`"),
    (f"$KV.{KV_BUCKET}.<kind>.<namespace>.<name>", "apiserver only",
     "apiserver fan-out (durable cursor), scheduler, CLI watch"),
    (f"$KV.{LEASE_BUCKET}.<node>", "the kubelet of `<node>` only (heartbeat, memory storage)",
     "scheduler (skips nodes whose lease expired), apiserver (serves their Node as Ready=Unknown)"),
    ("peapod.node.<node>.pods.<namespace>.<name>", "apiserver fan-out",
     f"the kubelet of `<node>` only (stream `{NODES_STREAM}`, last value per subject)"),
    ("peapod.watch.<kind>.<namespace>.<name>", "apiserver fan-out",
     f"CLI `get -w` (stream `{WATCH_STREAM}`)"),
    ("peapod.events.<namespace>.<kind>.<name>", "all components",
     f"CLI `events`, `describe` (stream `{EVENTS_STREAM}`)"),
    ("peapod.kubelet.<node>.logs / .exec", "CLI (admin)", "the kubelet of `<node>`"),
]
