"""Every NATS subject, stream and bucket name peapod uses, in one place.

The subject table in protos/subjects.md is generated from ``SUBJECT_TABLE``
here, and the NATS permissions ``peapod up`` writes are derived from the same
names, so the documentation, the permissions and the code cannot disagree.

**Names are single tokens.** A NATS subject is split into tokens at dots,
and a token may not contain ``.``, ``*``, ``>`` or whitespace; a KV key may
hold only ``A-Z a-z 0-9 - _ = / .``. Kubernetes names may contain dots
(``web.v1`` is a valid Pod name), so every namespace, name and node name is
written as one token by ``token``: letters, digits and ``-`` stay as they
are, ``.`` becomes ``_``, and any other character becomes ``=`` followed by
two upper-case hex digits per UTF-8 byte (so ``_`` itself is ``=5F`` and
``=`` is ``=3D``). ``_`` and ``=`` appear only as escapes, so the encoding
is injective and ``name_of`` reverses it. Because no token holds a dot,
``pods.<ns>.<name>`` always has three tokens, ``*`` matches exactly one
name, and a node's partition filter ``peapod.node.<node>.>`` can match no
other node's subjects. Every subject and key is built and parsed here and
nowhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

API_PREFIX = "peapod.api.v1"
KV_BUCKET = "peapod"
KV_STREAM = f"KV_{KV_BUCKET}"
NODES_STREAM = "PEAPOD_NODES"
WATCH_STREAM = "PEAPOD_WATCH"
# Secrets' changes have a stream of their own, which only the admin may read: a viewer may
# read every other change (Kubernetes' ``view`` role), and NATS permissions cannot tell a
# consumer's filter inside the one stream from a wildcard that would include Secrets.
SECRET_WATCH_STREAM = "PEAPOD_SECRET_WATCH"
SECRET_KINDS = frozenset({"secrets"})
EVENTS_STREAM = "PEAPOD_EVENTS"
FANOUT_DURABLE = "peapod-fanout"
API_QUEUE = "peapod-apiserver"
LEASE_BUCKET = "peapod-leases"
LEASE_STREAM = f"KV_{LEASE_BUCKET}"
LEASE_DURATION_SECONDS = 40
CLUSTER_SCOPED = "_"  # the namespace token of a cluster-scoped object on the watch stream

_PLAIN = re.compile(r"[A-Za-z0-9-]")
_ESCAPE = re.compile(r"=([0-9A-F]{2})")


def token(name: str) -> str:
    """``name`` as one subject token and KV key segment: ``web.v1`` → ``web_v1``."""
    if not name:
        raise ValueError("an empty name has no subject token")
    out = []
    for char in name:
        if _PLAIN.fullmatch(char):
            out.append(char)
        elif char == ".":
            out.append("_")
        else:
            out.extend(f"={byte:02X}" for byte in char.encode())
    return "".join(out)


def name_of(encoded: str) -> str:
    """The name ``token`` wrote as ``encoded``; ValueError if no name encodes to it."""
    raw = bytearray()
    at = 0
    while at < len(encoded):
        char = encoded[at]
        if char == "=":
            match = _ESCAPE.match(encoded, at)
            if match is None:
                raise ValueError(f"malformed escape in subject token {encoded!r}")
            raw.append(int(match.group(1), 16))
            at += 3
            continue
        if char != "_" and not _PLAIN.fullmatch(char):
            raise ValueError(f"{char!r} cannot appear in a subject token ({encoded!r})")
        raw.extend(b"." if char == "_" else char.encode())
        at += 1
    name = raw.decode()
    if not name or token(name) != encoded:  # e.g. '=41' for 'A', which token writes as 'A'
        raise ValueError(f"{encoded!r} is not the token of any name")
    return name


def api(kind: str, verb: str) -> str:
    """Cluster API request: ``peapod.api.v1.pods.apply``."""
    return f"{API_PREFIX}.{kind}.{verb}"


def node_api(node: str, verb: str) -> str:
    """A kubelet's own API request: ``peapod.api.v1.node.<node>.status``."""
    return f"{API_PREFIX}.node.{token(node)}.{verb}"


def node_of_api(subject: str) -> str:
    """The node a ``node_api`` subject was sent for."""
    return name_of(subject.split(".")[4])


def kv_key(kind: str, namespace: str | None, name: str) -> str:
    """Key in the ``peapod`` bucket: ``pods.<namespace>.<name>`` or ``nodes.<name>``."""
    if namespace is None:
        return f"{kind}.{token(name)}"
    return f"{kind}.{token(namespace)}.{token(name)}"


def kv_prefix(kind: str, namespace: str | None = None) -> str:
    """The start of every key of ``kind`` (in ``namespace``): ``pods.`` or ``pods.default.``."""
    return f"{kind}.{token(namespace)}." if namespace is not None else f"{kind}."


def parse_kv_key(key: str) -> tuple[str, str | None, str]:
    """``(kind, namespace, name)`` from a key ``kv_key`` wrote; namespace None if cluster-scoped."""
    parts = key.split(".")
    if len(parts) == 2:
        return parts[0], None, name_of(parts[1])
    if len(parts) == 3:
        return parts[0], name_of(parts[1]), name_of(parts[2])
    raise ValueError(f"{key!r} is not a key of the {KV_BUCKET} bucket")


def lease(node: str) -> str:
    """A node's heartbeat key in the memory-backed lease bucket."""
    return f"$KV.{LEASE_BUCKET}.{token(node)}"


LEADER_PREFIX = "leader"  # leader leases share the bucket; a node name has no dot


def leader_lease_key(component: str) -> str:
    """The key of a component's leader-election lease in the lease bucket."""
    return f"{LEADER_PREFIX}.{token(component)}"


def leader_lease(component: str) -> str:
    return f"$KV.{LEASE_BUCKET}.{leader_lease_key(component)}"


def node_partition(node: str, namespace: str, name: str) -> str:
    """A bound pod on its node's own partition."""
    return f"peapod.node.{token(node)}.pods.{token(namespace)}.{token(name)}"


def node_partition_all(node: str) -> str:
    return f"peapod.node.{token(node)}.>"


def _watch_root(kind: str) -> str:
    return "peapod.secretwatch" if kind in SECRET_KINDS else "peapod.watch"


def watch_stream(kind: str) -> str:
    """The stream that holds the changes of ``kind``."""
    return SECRET_WATCH_STREAM if kind in SECRET_KINDS else WATCH_STREAM


def watch(kind: str, namespace: str | None, name: str) -> str:
    """The cluster watch stream: every change of every object (Secrets' on their own)."""
    ns = token(namespace) if namespace is not None else CLUSTER_SCOPED
    return f"{_watch_root(kind)}.{kind}.{ns}.{token(name)}"


def watch_all(kind: str, namespace: str | None = None) -> str:
    """Every change of ``kind`` (in ``namespace``), for ``get -w``."""
    root = _watch_root(kind)
    return f"{root}.{kind}.{token(namespace)}.>" if namespace else f"{root}.{kind}.>"


def watch_msg_id(revision: int) -> str:
    """The message id of a change on the watch stream (deduplication, and its revision)."""
    return f"watch-{revision}"


def watch_revision(headers: Mapping[str, str] | None) -> int | None:
    """The resourceVersion a watch-stream message carries in its id; None if it has none."""
    msg_id = (headers or {}).get("Nats-Msg-Id", "")
    number = msg_id.removeprefix("watch-")
    return int(number) if msg_id.startswith("watch-") and number.isdigit() else None


def event(namespace: str, kind: str, name: str) -> str:
    return f"peapod.events.{token(namespace)}.{kind.lower()}.{token(name)}"


def events_all(namespace: str | None = None) -> str:
    """Every event (in ``namespace``)."""
    return f"peapod.events.{token(namespace)}.>" if namespace else "peapod.events.>"


def kubelet(node: str, verb: str) -> str:
    """Requests the CLI sends straight to one kubelet: ``logs``, ``exec``, ``attach`` and
    ``stats``."""
    return f"peapod.kubelet.{token(node)}.{verb}"


def kubelet_input(node: str, session: str) -> str:
    """The keys, window sizes and end-of-input of one interactive session on ``node``."""
    return f"peapod.kubelet.{token(node)}.input.{session}"


def inbox_prefix(user: str) -> str:
    """Each component gets its own reply inbox so it cannot read others' replies."""
    return f"_INBOX_{user}"


# (subject pattern, publisher, subscriber) — rendered into protos/subjects.md.
SUBJECT_TABLE: list[tuple[str, str, str]] = [
    (f"{API_PREFIX}.<kind>.<verb>", "CLI, scheduler, controllers",
     f"apiserver (queue group `{API_QUEUE}`)"),
    (f"{API_PREFIX}.node.<node>.<verb>", "the kubelet of `<node>` only",
     "apiserver, which checks the pod is bound to `<node>` (for `configmap`, `secret` and "
     "`persistentvolume`: that a pod bound to `<node>` references the object)"),
    (f"$KV.{KV_BUCKET}.<kind>.<namespace>.<name>", "apiserver only",
     "apiserver fan-out (durable cursor), scheduler, CLI watch"),
    (f"$KV.{KV_BUCKET}.<kind>.<name>", "apiserver only (cluster-scoped kinds: `nodes`, `namespaces`, "
     "`priorityclasses`)",
     "apiserver fan-out (durable cursor), scheduler"),
    (f"$KV.{LEASE_BUCKET}.<node>", "the kubelet of `<node>` only (heartbeat, memory storage)",
     "scheduler (skips nodes whose lease expired), apiserver (serves their Node as Ready=Unknown)"),
    (f"$KV.{LEASE_BUCKET}.{LEADER_PREFIX}.<component>",
     "the `scheduler` or `controller-manager` user, its own key only (leader election)",
     "the other instances of that component (standbys)"),
    ("peapod.node.<node>.pods.<namespace>.<name>", "apiserver fan-out",
     f"the kubelet of `<node>` only (stream `{NODES_STREAM}`, last value per subject)"),
    ("peapod.watch.<kind>.<namespace>.<name>", "apiserver fan-out",
     f"CLI `get -w` (stream `{WATCH_STREAM}`; admin and viewers); `<namespace>` is "
     f"`{CLUSTER_SCOPED}` for cluster-scoped kinds; every kind but Secrets"),
    ("peapod.secretwatch.secrets.<namespace>.<name>", "apiserver fan-out",
     f"CLI `get secrets -w` (stream `{SECRET_WATCH_STREAM}`; admin only)"),
    ("peapod.events.<namespace>.<kind>.<name>",
     f"apiserver only: components record events by request, on `{API_PREFIX}.events.create` "
     f"or, a kubelet, on `{API_PREFIX}.node.<node>.events` (its own Node and pods only)",
     f"CLI `events`, `describe` (stream `{EVENTS_STREAM}`)"),
    ("peapod.kubelet.<node>.logs / .stats", "CLI (admin, viewer)", "the kubelet of `<node>`"),
    ("peapod.kubelet.<node>.exec / .attach", "CLI (admin)",
     "the kubelet of `<node>`; an interactive session answers with many replies (output, then "
     "`{\"done\": true, \"exitCode\": n}`)"),
    ("peapod.kubelet.<node>.input.<session>", "CLI (admin): stdin, window size, end of input",
     "the kubelet of `<node>`, while that session lasts"),
]

# (name, why it is an example) — rendered into protos/subjects.md next to its token.
TOKEN_EXAMPLES: list[tuple[str, str]] = [
    ("web", "letters, digits and `-` are kept"),
    ("web.v1", "`.` is written `_` (a Pod name is a DNS subdomain)"),
    ("a_b", "any other character is `=` and its UTF-8 bytes in hex"),
    ("a=b", "so `=` itself is escaped too"),
]
