"""NATS users and least-privilege permissions, derived from the subject table.

``peapod up`` (and the Ansible control-plane role) write one nats-server
configuration with a user per component. What each may touch follows the
design's subject table exactly:

* the apiserver owns the JetStream objects and is the only writer of the KV;
* the scheduler may read the KV and ask for ``pods.bind`` and ``events.create``,
  and write its own leader-election lease (``$KV.peapod-leases.leader.scheduler``)
  — nothing else;
* the controller manager may read the KV and the leases and ask for
  ``create``, ``get``, ``update`` and ``delete`` of pods, the same and
  ``status`` of the workloads it controls, ``nodes.update`` (the unreachable
  taint) and ``events.create``, ``get``, ``update`` and ``status`` of
  PersistentVolumes and PersistentVolumeClaims (binding; only it writes their
  status, but the admin) and ``delete`` of PersistentVolumes (reclaim policy
  ``Delete``), and write its own leader-election lease;
* only the apiserver publishes on ``peapod.events.>``: the others record events
  by request, so the apiserver checks who writes about what;
* a kubelet may use only ``peapod.api.v1.node.<its node>.…``, may create one
  named consumer whose filter is its own partition ``peapod.node.<node>.>``
  (the server checks the filter in the subject against the consumer's), and
  answers ``logs``/``exec`` requests; it cannot read another node's pods;
* the admin (CLI) may do everything;
* a viewer (``viewer`` or ``viewer-<name>``, one per person) may only look,
  as Kubernetes' ``view`` role: ``get`` and ``list`` of every kind but
  Secrets, ``get -w``, events, ``logs`` and ``top``; no create, apply, delete, bind or
  exec, and no write to any stream or bucket. Secrets' changes go to a watch stream
  of their own, which a viewer cannot read.

Each user has its own reply inbox prefix (``_INBOX_<user>``), so no component
can subscribe to another's replies. Users authenticate with NKEYs
(``peapod.bus.identity``): the configuration lists public keys only.

``python -m peapod.bus.auth server-config SPEC.json`` renders the same
configuration for the Ansible ``nats`` role from a spec of public keys, TLS
files and cluster routes, so a fleet and ``peapod up`` share one source of
permissions.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from peapod.bus import subjects as s
from peapod.bus.identity import Credentials, ensure

JS = "$JS.API"


VIEWER = "viewer"


def kubelet_user(node: str) -> str:
    return f"kubelet-{node}"


def kubelet_consumer(node: str) -> str:
    return f"kubelet-{node}"


def _inbox(user: str) -> str:
    return f"{s.inbox_prefix(user)}.>"


def apiserver_permissions() -> dict[str, Any]:
    return {
        "publish": {"allow": [f"{JS}.>", f"$KV.{s.KV_BUCKET}.>", "$JS.ACK.>", "$JS.FC.>",
                              "peapod.node.>", "peapod.watch.>", "peapod.secretwatch.>",
                              "peapod.events.>"]},
        "subscribe": {"allow": [f"{s.API_PREFIX}.>", _inbox("apiserver")]},
        "allow_responses": True,
    }


def _not_the_apiservers(stream: str) -> list[str]:
    """What a reader of ``stream`` may not do to the apiserver's durable fan-out cursor: its
    creation subjects name the consumer, so a reader allowed to create and delete its own
    (server-named) watch consumers could otherwise delete or update that one."""
    fanout = s.FANOUT_DURABLE
    return [f"{JS}.CONSUMER.CREATE.{stream}.{fanout}", f"{JS}.CONSUMER.CREATE.{stream}.{fanout}.>",
            f"{JS}.CONSUMER.DURABLE.CREATE.{stream}.>", f"{JS}.CONSUMER.DELETE.{stream}.{fanout}"]


def _kv_reader(kv: str) -> list[str]:
    """The JetStream calls a KV watch makes, on one bucket only."""
    return [f"{JS}.STREAM.INFO.{kv}", f"{JS}.CONSUMER.CREATE.{kv}",
            f"{JS}.CONSUMER.CREATE.{kv}.>", f"{JS}.CONSUMER.INFO.{kv}.>",
            f"{JS}.CONSUMER.DELETE.{kv}.>", f"{JS}.DIRECT.GET.{kv}.>",
            f"{JS}.STREAM.MSG.GET.{kv}", f"$JS.FC.{kv}.>"]


def scheduler_permissions() -> dict[str, Any]:
    return {
        "publish": {"allow": [
            f"{JS}.INFO", *_kv_reader(s.KV_STREAM), *_kv_reader(s.LEASE_STREAM),
            s.api("pods", "bind"), s.api("pods", "unschedulable"), s.api("events", "create"),
            s.api("pods", "delete"),  # the victims of a preemption
            s.leader_lease("scheduler"),
        ], "deny": _not_the_apiservers(s.KV_STREAM)},
        "subscribe": {"allow": [_inbox("scheduler")]},
    }


CONTROLLED_RESOURCES = ("replicasets", "deployments", "daemonsets", "jobs", "cronjobs")
# the binding controller: it binds, releases and unprotects them, and writes their status; it
# never creates a claim, and it deletes only a volume whose reclaim policy is Delete
VOLUME_RESOURCES = ("persistentvolumes", "persistentvolumeclaims")


def controller_manager_permissions() -> dict[str, Any]:
    """Read the KV; create, update and delete pods and the workloads it controls."""
    return {
        "publish": {"allow": [
            f"{JS}.INFO", *_kv_reader(s.KV_STREAM), *_kv_reader(s.LEASE_STREAM),
            *(s.api("pods", verb) for verb in ("create", "get", "update", "delete")),
            s.api("nodes", "update"),  # the unreachable taint
            *(s.api(resource, verb) for resource in CONTROLLED_RESOURCES
              for verb in ("create", "get", "update", "status", "delete")),
            *(s.api(resource, verb) for resource in VOLUME_RESOURCES
              for verb in ("get", "update", "status")),
            s.api("persistentvolumes", "delete"),
            s.api("events", "create"), s.leader_lease("controller-manager"),
        ], "deny": _not_the_apiservers(s.KV_STREAM)},
        "subscribe": {"allow": [_inbox("controller-manager")]},
    }


def kubelet_permissions(node: str) -> dict[str, Any]:
    stream, consumer = s.NODES_STREAM, kubelet_consumer(node)
    return {
        "publish": {"allow": [
            f"{JS}.INFO",
            f"{JS}.CONSUMER.CREATE.{stream}.{consumer}.{s.node_partition_all(node)}",
            f"{JS}.CONSUMER.INFO.{stream}.{consumer}",
            f"{JS}.CONSUMER.DELETE.{stream}.{consumer}",
            f"{JS}.CONSUMER.MSG.NEXT.{stream}.{consumer}",
            f"$JS.ACK.{stream}.{consumer}.>",
            f"{s.API_PREFIX}.node.{node}.>",
            s.lease(node),
        ]},
        "subscribe": {"allow": [_inbox(kubelet_user(node)), f"peapod.kubelet.{node}.>"]},
        # logs -f streams many chunks to one request's reply subject, for at most a day.
        "allow_responses": {"max": 1_000_000, "expires": "24h"},
    }


def _stream_reader(stream: str) -> list[str]:
    """What an ordered (ephemeral, unacknowledged) consumer needs to read ``stream``."""
    return [f"{JS}.STREAM.INFO.{stream}", f"{JS}.CONSUMER.CREATE.{stream}",
            f"{JS}.CONSUMER.CREATE.{stream}.>", f"{JS}.CONSUMER.INFO.{stream}.>",
            f"$JS.FC.{stream}.>"]


def viewer_permissions(user: str) -> dict[str, Any]:
    """Kubernetes' ``view``: read everything but Secrets, follow logs; never write or exec."""
    return {
        "publish": {
            "allow": [f"{JS}.INFO", s.api("*", "get"), s.api("*", "list"),
                      *_stream_reader(s.WATCH_STREAM), *_stream_reader(s.EVENTS_STREAM),
                      # `get -w --resource-version N` reads the oldest change kept; the stream
                      # holds no Secret (those are in SECRET_WATCH_STREAM, not readable here)
                      f"{JS}.STREAM.MSG.GET.{s.WATCH_STREAM}",
                      "peapod.kubelet.*.logs", "peapod.kubelet.*.stats"],
            "deny": [s.api("secrets", ">")],
        },
        "subscribe": {"allow": [_inbox(user)]},
    }


def admin_permissions() -> dict[str, Any]:
    return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}


def permissions_for(user: str) -> dict[str, Any]:
    """The permissions of a user, from its name: admin, apiserver, scheduler, kubelet-<node>,
    viewer[-<name>]."""
    fixed = {"admin": admin_permissions, "apiserver": apiserver_permissions,
             "scheduler": scheduler_permissions,
             "controller-manager": controller_manager_permissions}
    if user in fixed:
        return fixed[user]()
    if user == VIEWER or user.startswith(f"{VIEWER}-"):
        if user == VIEWER or NODE_NAME.fullmatch(user.removeprefix(f"{VIEWER}-")):
            return viewer_permissions(user)
        raise ValueError(f"viewer name {user!r}: after 'viewer-' comes a DNS label (lower-case "
                         "letters, digits and '-', at most 63)")
    if user.startswith("kubelet-"):
        node = user.removeprefix("kubelet-")
        if NODE_NAME.fullmatch(node):
            return kubelet_permissions(node)
        raise ValueError(f"node name {node!r} is not a DNS label (lower-case letters, digits and "
                         "'-', at most 63): a node's name is one NATS subject token")
    raise ValueError(f"unknown NATS user {user!r}: expected admin, apiserver, scheduler, "
                     "controller-manager, kubelet-<node name>, viewer or viewer-<name>")


# a node name is one subject token: DNS-label characters only, so no node's
# subject filter (peapod.node.<node>.>) can match another node's subjects
NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
DNS_LABEL_RULE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters "
                  "or '-', and must start and end with an alphanumeric character (e.g. 'my-name', "
                  "or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?'), "
                  "and be at most 63 characters")


def node_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a node, in Kubernetes' words (``Invalid value: …``), or None.

    Kubernetes allows a DNS subdomain; peapod a DNS label only, because the
    name is also its kubelet's NATS user (``kubelet-<node>``) and subjects.
    """
    if NODE_NAME.fullmatch(name):
        return None
    return f'Invalid value: "{name}": {DNS_LABEL_RULE} (a node name is a DNS label in peapod)'


def _q(value: Any) -> str:
    # JSON strings and lists are valid nats-server configuration values, so no
    # text from an inventory can break out of its field
    return json.dumps(value)


def server_config(*, users: dict[str, str], port: int, http_port: int, store_dir: str,
                  server_name: str = "peapod", host: str = "127.0.0.1",
                  http_host: str | None = None, tls: dict[str, str] | None = None,
                  cluster: dict[str, Any] | None = None) -> str:
    """A nats-server configuration. ``users`` maps user name → NKEY public key.

    The monitoring endpoint listens on ``http_host`` (default: ``host``).
    ``tls`` (``cert_file``, ``key_file``, ``ca_file``) makes TLS mandatory for
    clients. ``cluster`` (``name``, ``port``, ``routes``) joins the server to a
    cluster whose routes use the same certificates, verified both ways.
    """
    entries = []
    for user, key in sorted(users.items()):
        if not re.fullmatch(r"U[A-Z2-7]{55}", key):
            raise ValueError(f"user {user!r}: {key!r} is not an NKEY user public key")
        entries.append(f"    {{nkey: {_q(key)}, permissions: {_q(permissions_for(user))}}}"
                       f"  # {user}")
    lines = [f"server_name: {_q(server_name)}", f"host: {_q(host)}", f"port: {port}",
             f"http: {_q(f'{http_host or host}:{http_port}')}",
             f"jetstream {{\n  store_dir: {_q(store_dir)}\n}}"]
    if tls:
        lines.append("tls {\n" + "".join(f"  {k}: {_q(tls[k])}\n" for k in
                                          ("cert_file", "key_file", "ca_file") if tls.get(k))
                     + "  timeout: 5\n}")
    if cluster:
        routes = [f"nats-route://{r}" for r in cluster.get("routes", [])]
        listen = f"{host}:{cluster.get('port', 6222)}"
        block = [f"  name: {_q(cluster.get('name', 'peapod'))}", f"  listen: {_q(listen)}",
                 f"  routes: {_q(routes)}"]
        if tls:
            block.append("  tls {\n" + "".join(f"    {k}: {_q(tls[k])}\n" for k in
                                               ("cert_file", "key_file", "ca_file") if tls.get(k))
                         + "    verify: true\n    timeout: 5\n  }")
        lines.append("cluster {\n" + "\n".join(block) + "\n}")
    lines.append("authorization {\n  users: [\n" + ",\n".join(entries) + "\n  ]\n}")
    return "\n".join(lines) + "\n"


def cluster_users(nodes: list[str]) -> list[str]:
    """Every user of a cluster."""
    return ["admin", "apiserver", "scheduler", "controller-manager", VIEWER,
            *(kubelet_user(node) for node in nodes)]


def write_cluster_config(state_dir: str, *, nodes: list[str], port: int, http_port: int,
                         host: str = "127.0.0.1", store_dir: str | None = None,
                         url: str | None = None) -> dict[str, Credentials]:
    """Write ``nats.conf`` and one credentials file per user into ``state_dir``.

    Returns ``{user: Credentials}``. Existing seeds are kept, so running it
    again (say, to add a node) does not lock out running components. ``host``
    is where the server listens; ``url`` is how clients reach it, when that
    differs (a server in a container); ``store_dir`` is the JetStream store as
    the server sees it.
    """
    root = Path(state_dir)
    (root / "creds").mkdir(parents=True, exist_ok=True, mode=0o700)
    (root / "jetstream").mkdir(parents=True, exist_ok=True, mode=0o700)
    url = url or f"nats://{host}:{port}"
    creds = {user: ensure(root / "creds" / f"{user}.json", user=user, url=url)[0]
             for user in cluster_users(nodes)}
    conf = root / "nats.conf"
    conf.touch(mode=0o600, exist_ok=True)
    conf.write_text(server_config(users={u: c.public_key for u, c in creds.items()}, port=port,
                                  http_port=http_port, host=host,
                                  store_dir=store_dir or str(root / "jetstream")))
    return creds


def main(argv: list[str] | None = None) -> int:
    """``server-config SPEC.json``: print a nats-server configuration for a fleet.

    SPEC is JSON: ``{"users": {name: public key}, "port", "http_port",
    "store_dir", "server_name", "host", "tls": {...}, "cluster": {...}}``.
    """
    parser = argparse.ArgumentParser(prog="python -m peapod.bus.auth")
    sub = parser.add_subparsers(dest="verb", required=True)
    sub.add_parser("server-config", help="render nats.conf from a JSON spec "
                   "('-' reads standard input)").add_argument("spec")
    args = parser.parse_args(argv)
    try:
        spec = json.loads(sys.stdin.read() if args.spec == "-" else Path(args.spec).read_text())
        sys.stdout.write(server_config(
            users=spec["users"], port=int(spec.get("port", 4222)),
            http_port=int(spec.get("http_port", 8222)), store_dir=spec["store_dir"],
            server_name=spec.get("server_name", "peapod"), host=spec.get("host", "0.0.0.0"),
            http_host=spec.get("http_host", "127.0.0.1"),
            tls=spec.get("tls"), cluster=spec.get("cluster")))
    except (KeyError, ValueError, TypeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
