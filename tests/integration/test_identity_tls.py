"""NKEY identities and TLS against the real nats-server, configured as the fleet's.

The server gets the configuration the Ansible ``nats`` role renders
(``python -m peapod.bus.auth server-config``): public keys only, TLS required.
"""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from peapod.bus.auth import server_config
from peapod.bus.client import connect
from peapod.bus.identity import Credentials, ensure, new_seed, public_key
from peapod.errors import Unavailable
from tests.natsd import NATSD, TLSCluster, free_port
from tests.pki import TestCA


@pytest.fixture
def tls_cluster(tmp_path: Path) -> Iterator[dict[str, Credentials]]:
    """A TLS nats-server whose configuration comes from the fleet's spec command."""
    ca = TestCA(tmp_path / "pki")
    server = ca.issue("nats", dns=("localhost",), ips=("127.0.0.1",))
    port, http_port = free_port(), free_port()
    url = f"tls://127.0.0.1:{port}"
    creds = {user: ensure(tmp_path / "creds" / f"{user}.json", user=user, url=url,
                          ca_file=str(ca.cert_path))[0]
             for user in ("admin", "apiserver", "kubelet-pi1", "kubelet-pi2")}
    spec = {"users": {u: c.public_key for u, c in creds.items()}, "port": port,
            "http_port": http_port, "store_dir": str(tmp_path / "js"), "host": "127.0.0.1",
            "tls": {"cert_file": str(server.cert), "key_file": str(server.key)}}
    rendered = subprocess.run([sys.executable, "-m", "peapod.bus.auth", "server-config", "-"],
                              input=json.dumps(spec), text=True, capture_output=True, check=True)
    conf = tmp_path / "nats.conf"
    conf.write_text(rendered.stdout)
    natsd = NATSD(conf, http_port)
    natsd.start()
    try:
        yield creds | {"_ca": ca}  # type: ignore[dict-item]
    finally:
        natsd.stop()


def test_configuration_holds_public_keys_only(tls_cluster, tmp_path):
    text = (tmp_path / "nats.conf").read_text()
    for user in ("admin", "apiserver", "kubelet-pi1"):
        assert tls_cluster[user].public_key in text
        assert tls_cluster[user].seed not in text
    assert "password" not in text


async def test_verified_tls_with_the_nodes_own_key(tls_cluster):
    nc = await connect(tls_cluster["kubelet-pi1"], name="pi1", reconnect=False)
    assert nc.connected_url.scheme == "tls"
    assert nc._transport._io_writer.get_extra_info("peercert")["subject"] == ((("commonName", "nats"),),)
    await nc.close()


async def test_plaintext_is_refused(tls_cluster):
    plain = replace(tls_cluster["admin"], ca_file=None,
                    url=tls_cluster["admin"].url.replace("tls://", "nats://"))
    # a client without TLS: the server requires it, and nats-py would need a CA to verify it;
    # with no CA given the client uses the system store, which does not trust the cluster CA
    with pytest.raises(Unavailable, match=r"cannot reach|refused"):
        await connect(plain, name="plain", reconnect=False, connect_timeout=2)
    # and the server itself refuses a client that speaks plaintext after INFO
    port = int(plain.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        info = sock.recv(4096)
        assert b'"tls_required":true' in info
        sock.sendall(b'CONNECT {"verbose":false}\r\nPING\r\n')
        answer = sock.recv(4096)
    assert b"PONG" not in answer


async def test_a_plaintext_server_is_refused_before_the_key_signs_anything(cluster_creds, tmp_path):
    # a server in the middle that does not ask for TLS must not get a signed nonce to relay
    ca = TestCA(tmp_path / "pki")
    creds = replace(cluster_creds["kubelet-node-a"], ca_file=str(ca.cert_path))
    with pytest.raises(Unavailable, match="does not require TLS"):
        await connect(creds, name="downgraded", reconnect=False, connect_timeout=2)


async def test_a_server_certificate_from_another_ca_is_refused(tls_cluster, tmp_path):
    other = TestCA(tmp_path / "other", name="someone else")
    wrong = replace(tls_cluster["admin"], ca_file=str(other.cert_path))
    with pytest.raises(Unavailable, match=r"cannot reach the cluster at tls://127\.0\.0\.1"):
        await connect(wrong, name="wrong", reconnect=False, connect_timeout=2)


async def test_an_unknown_key_is_refused(tls_cluster):
    stranger = replace(tls_cluster["admin"], seed=new_seed())
    with pytest.raises(Unavailable, match="refused user 'admin'"):
        await connect(stranger, name="stranger", reconnect=False)


def test_ensure_keeps_the_seed_and_updates_url(tmp_path):
    path = tmp_path / "c.json"
    first, changed = ensure(path, user="kubelet-pi1", url="tls://a:4222", ca_file="/ca.crt")
    assert changed and path.stat().st_mode & 0o777 == 0o600
    again, changed = ensure(path, user="kubelet-pi1", url="tls://a:4222", ca_file="/ca.crt")
    assert not changed and again == first
    moved, changed = ensure(path, user="kubelet-pi1", url="tls://b:4222,tls://c:4222", ca_file="/ca.crt")
    assert changed and moved.seed == first.seed and moved.servers == ["tls://b:4222", "tls://c:4222"]
    _, changed = ensure(tmp_path / "d.json", user="x", url="u", dry_run=True)
    assert changed and not (tmp_path / "d.json").exists()
    assert first.seed not in repr(first)
    assert public_key(first.seed).startswith("U")


def test_identity_command_prints_the_public_key_never_the_seed(tmp_path):
    path = tmp_path / "k.json"
    out = subprocess.run([sys.executable, "-m", "peapod.bus.identity", "ensure", str(path),
                          "--user", "kubelet-pi1", "--url", "tls://x:4222", "--ca", "/etc/peapod/ca.crt"],
                         capture_output=True, text=True, check=True).stdout
    result = json.loads(out)
    creds = Credentials.load(path)
    assert result == {"user": "kubelet-pi1", "public_key": creds.public_key, "changed": True}
    assert creds.seed not in out


@pytest.mark.parametrize("user", ["root", "scheduler2", "Admin"])
def test_users_outside_the_table_are_refused(user):
    with pytest.raises(ValueError, match="unknown NATS user"):
        server_config(users={user: public_key(new_seed())}, port=1, http_port=2, store_dir="/x")


@pytest.mark.parametrize("node", ["pi.x", "", "A", "a>b", "a*", "-a"])
def test_node_names_must_be_one_subject_token(node):
    # pi's filter peapod.node.pi.> would match the subjects of a node named pi.x
    with pytest.raises(ValueError, match="is not a DNS label"):
        server_config(users={f"kubelet-{node}": public_key(new_seed())}, port=1, http_port=2,
                      store_dir="/x")


def test_a_bad_public_key_is_refused():
    with pytest.raises(ValueError, match="not an NKEY user public key"):
        server_config(users={"admin": 'U" }, {user: evil'}, port=1, http_port=2, store_dir="/x")


async def test_three_servers_form_a_tls_cluster_with_r3_streams(tmp_path):
    """The cluster block the nats role renders for three hosts: routes over TLS, R3 streams."""
    ca = TestCA(tmp_path / "pki")
    cert = ca.issue("nats", dns=("localhost",), ips=("127.0.0.1",))
    admin, _ = ensure(tmp_path / "admin.json", user="admin", url="", ca_file=str(ca.cert_path))
    cluster = TLSCluster(tmp_path, users={"admin": admin.public_key}, cert=cert.cert, key=cert.key,
                         ca=ca.cert_path)
    try:
        cluster.start()
        creds = replace(admin, url=cluster.url)
        nc = await connect(creds, name="admin", reconnect=False)
        js = nc.jetstream(timeout=5)
        deadline = asyncio.get_running_loop().time() + 30
        while True:  # the meta leader is elected once the routes are up
            try:
                info = await js.add_stream(name="R3", subjects=["r3.>"], num_replicas=3)
                break
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.5)
        assert info.config.num_replicas == 3
        assert len(info.cluster.replicas or []) == 2  # a leader and two followers
        await nc.close()
    finally:
        cluster.stop()
