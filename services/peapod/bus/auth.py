"""NATS users and least-privilege permissions, derived from the subject table.

``peapod up`` (and the Ansible control-plane role) write one nats-server
configuration with a user per component. What each may touch follows the
design's subject table exactly:

* the apiserver owns the JetStream objects and is the only writer of the KV;
* the scheduler may read the KV and ask for ``pods.bind`` — nothing else;
* a kubelet may use only ``peapod.api.v1.node.<its node>.…``, may create one
  named consumer whose filter is its own partition ``peapod.node.<node>.>``
  (the server checks the filter in the subject against the consumer's), and
  answers ``logs``/``exec`` requests; it cannot read another node's pods;
* the admin (CLI) may do everything.

Each user has its own reply inbox prefix (``_INBOX_<user>``), so no component
can subscribe to another's replies. Passwords are random per cluster and only
ever written to files readable by their owner.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from peapod.bus import subjects as s

JS = "$JS.API"


def kubelet_user(node: str) -> str:
    return f"kubelet-{node}"


def kubelet_consumer(node: str) -> str:
    return f"kubelet-{node}"


def _inbox(user: str) -> str:
    return f"{s.inbox_prefix(user)}.>"


def apiserver_permissions() -> dict[str, Any]:
    return {
        "publish": {"allow": [f"{JS}.>", f"$KV.{s.KV_BUCKET}.>", "$JS.ACK.>", "$JS.FC.>",
                              "peapod.node.>", "peapod.watch.>", "peapod.events.>"]},
        "subscribe": {"allow": [f"{s.API_PREFIX}.>", _inbox("apiserver")]},
        "allow_responses": True,
    }


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
            s.api("pods", "bind"), "peapod.events.>",
        ]},
        "subscribe": {"allow": [_inbox("scheduler")]},
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
            "peapod.events.>",
        ]},
        "subscribe": {"allow": [_inbox(kubelet_user(node)), f"peapod.kubelet.{node}.>"]},
        # logs -f streams many chunks to one request's reply subject, for at most a day.
        "allow_responses": {"max": 1_000_000, "expires": "24h"},
    }


def admin_permissions() -> dict[str, Any]:
    return {"publish": {"allow": [">"]}, "subscribe": {"allow": [">"]}}


def new_password() -> str:
    return secrets.token_urlsafe(24)


def server_config(*, users: dict[str, tuple[str, dict[str, Any]]], port: int, http_port: int,
                  store_dir: str, server_name: str = "peapod", host: str = "127.0.0.1") -> str:
    """A nats-server configuration file. ``users`` maps user → (password, permissions).

    Values are written as JSON strings, which nats-server's parser accepts, so no
    user-controlled text can break out of its field.
    """
    user_blocks = ",\n".join(
        f"    {{user: {json.dumps(user)}, password: {json.dumps(password)}, "
        f"permissions: {json.dumps(perms)}}}"
        for user, (password, perms) in sorted(users.items())
    )
    return (
        f"server_name: {json.dumps(server_name)}\n"
        f"host: {json.dumps(host)}\nport: {port}\nhttp_port: {http_port}\n"
        f"jetstream {{\n  store_dir: {json.dumps(store_dir)}\n}}\n"
        f"authorization {{\n  users: [\n{user_blocks}\n  ]\n}}\n"
    )


def cluster_users(nodes: list[str]) -> dict[str, dict[str, Any]]:
    """Every user of a cluster with its permissions."""
    users = {"admin": admin_permissions(), "apiserver": apiserver_permissions(),
             "scheduler": scheduler_permissions()}
    users.update({kubelet_user(node): kubelet_permissions(node) for node in nodes})
    return users


def write_cluster_config(state_dir: str, *, nodes: list[str], port: int, http_port: int,
                         host: str = "127.0.0.1", store_dir: str | None = None,
                         url: str | None = None) -> dict[str, Any]:
    """Write ``nats.conf`` and one credentials file per user into ``state_dir``.

    Returns ``{user: Credentials}``. Existing passwords are kept, so running it
    again (say, to add a node) does not lock out running components. ``host``
    is where the server listens; ``url`` is how clients reach it, when that
    differs (a server in a container); ``store_dir`` is the JetStream store as
    the server sees it.
    """
    from pathlib import Path

    from peapod.bus.client import Credentials

    root = Path(state_dir)
    (root / "creds").mkdir(parents=True, exist_ok=True, mode=0o700)
    (root / "jetstream").mkdir(parents=True, exist_ok=True, mode=0o700)
    url = url or f"nats://{host}:{port}"
    creds: dict[str, Any] = {}
    table: dict[str, tuple[str, dict[str, Any]]] = {}
    for user, perms in cluster_users(nodes).items():
        path = root / "creds" / f"{user}.json"
        password = Credentials.load(path).password if path.exists() else new_password()
        creds[user] = Credentials(url=url, user=user, password=password)
        creds[user].save(path)
        table[user] = (password, perms)
    conf = root / "nats.conf"
    conf.touch(mode=0o600, exist_ok=True)
    conf.write_text(server_config(users=table, port=port, http_port=http_port,
                                  store_dir=store_dir or str(root / "jetstream"), host=host))
    return creds
