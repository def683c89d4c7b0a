"""The read-only identity's permissions and the words for a refused request (pure; the server
enforcing them is tests/integration/cluster/test_viewer.py)."""

from __future__ import annotations

import pytest
from nats.aio.client import Client as NATS

from peapod.bus.auth import cluster_users, permissions_for, server_config
from peapod.bus.client import forbidden, note_refusal
from peapod.bus.identity import new_seed, public_key


@pytest.mark.parametrize("user", ["viewer", "viewer-alice", "viewer-ops-2"])
def test_viewers_read_everything_but_secrets_and_write_nothing(user: str) -> None:
    perms = permissions_for(user)
    allowed = perms["publish"]["allow"]
    assert "peapod.api.v1.*.get" in allowed and "peapod.api.v1.*.list" in allowed
    assert perms["publish"]["deny"] == ["peapod.api.v1.secrets.>"]
    assert "peapod.kubelet.*.logs" in allowed
    assert "peapod.kubelet.*.stats" in allowed  # top, as Kubernetes' view role may
    assert not any(verb in subject for subject in allowed
                   for verb in ("create", "apply", "delete", "bind", "exec", "$KV", "DELETE",
                                "PURGE", "DURABLE", "peapod.node", "events."))
    assert perms["subscribe"] == {"allow": [f"_INBOX_{user}.>"]}


@pytest.mark.parametrize("user", ["viewer-", "viewer-Alice", "viewer-a.b", "viewers"])
def test_malformed_viewer_names_are_refused(user: str) -> None:
    with pytest.raises(ValueError):
        server_config(users={user: public_key(new_seed())}, port=1, http_port=2, store_dir="/x")


def test_peapod_up_makes_a_viewer() -> None:
    assert "viewer" in cluster_users(["n"])


@pytest.mark.parametrize(("subject", "payload", "expected"), [
    ("peapod.api.v1.pods.create", {"namespace": "web"},
     'pods is forbidden: User "viewer" cannot create resource "pods" in API group "" in the '
     'namespace "web"'),
    ("peapod.api.v1.nodes.delete", {"name": "pi1"},
     'nodes is forbidden: User "viewer" cannot delete resource "nodes" in API group ""'),
    ("peapod.kubelet.pi1.exec", {"namespace": "default"},
     'pods/exec is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" '
     'in the namespace "default"'),
    ("$KV.peapod.x", {}, 'User "viewer" cannot publish on $KV.peapod.x'),
])
def test_refusals_read_as_kubernetes_forbidden(subject: str, payload: dict, expected: str) -> None:
    assert forbidden(subject, "viewer", payload).message == expected


def test_only_the_servers_permission_errors_are_noted_as_refusals() -> None:
    nc = NATS()
    assert not note_refusal(nc, Exception("nats: stale connection"), "viewer")
    assert note_refusal(nc, Exception('nats: permissions violation for publish to '
                                      '"peapod.api.v1.pods.create"'), "viewer")
