"""The CLI's contexts against real sockets and a real TLS nats-server, on loopback only.

An unreachable cluster must cost the user one line and a few seconds, never
a hang or a traceback: three kinds of dead server are real sockets here (a
closed port, a listener that accepts and never speaks, one that hangs up at
once) and the real ``peapod`` script runs against each, including the
long-running ``-w`` / ``-f`` commands. Certificates are made in the test with
``cryptography`` and served by a real nats-server whose configuration comes
from ``peapod.bus.auth.server_config``, as a fleet's does.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from peapod.bus.auth import server_config
from peapod.bus.identity import Credentials, ensure, new_seed
from peapod.cli import doctor
from peapod.cli.client import CONNECT_DEADLINE, ServerUnreachable, connect_cli
from peapod.cli.context import Context
from tests.natsd import NATSD, free_port

PEAPOD = [str(Path(sys.executable).parent / "peapod")]
NOW = datetime.now(UTC)


# -- dead servers ------------------------------------------------------------------------

class DeadServer:
    """A loopback listener that either never answers (``hang``) or closes at once (``close``)."""

    def __init__(self, mode: str) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.mode = mode
        self.held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed by stop()
            if self.mode == "close":
                conn.close()
            else:
                self.held.append(conn)

    def stop(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A private PEAPOD_HOME with admin credentials (a fresh NKEY: no server knows it)."""
    ensure(tmp_path / "creds" / "admin.json", user="admin", url="nats://unused")
    return tmp_path


def cli(home: Path, *args: str, timeout: float = 10) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {**os.environ, "PEAPOD_HOME": str(home)}
    for name in ("PEAPOD_CONFIG", "PEAPOD_CONTEXT"):
        env.pop(name, None)
    started = time.monotonic()
    result = subprocess.run([*PEAPOD, *args], env=env, capture_output=True, text=True,
                            timeout=timeout)  # the hang guard: a hung command fails the test
    return result, time.monotonic() - started


def point_at(home: Path, server: str, *, ca: Path | None = None) -> None:
    cli(home, "config", "set-cluster", "c", "--server", server,
        *(["--certificate-authority", str(ca)] if ca else []))
    cli(home, "config", "set-credentials", "u", "--credentials", str(home / "creds" / "admin.json"))
    cli(home, "config", "set-context", "c", "--cluster", "c", "--user", "u")
    cli(home, "config", "use-context", "c")


COMMANDS = [("get", "pods"), ("get", "pods", "-w"), ("events", "-f"), ("logs", "-f", "db"),
            ("get", "nodes", "-o", "wide"), ("apply", "-f", "-")]


@pytest.mark.parametrize("dead", ["refused", "hang", "close"])
def test_every_command_fails_fast_with_one_line_naming_the_server(home: Path, dead: str) -> None:
    server = None if dead == "refused" else DeadServer(dead)
    port = server.port if server else free_port()
    point_at(home, f"nats://127.0.0.1:{port}")
    reason = {"refused": "connection refused", "hang": f"no answer within {CONNECT_DEADLINE:.1f}s",
              "close": "the server closed the connection (is it a NATS server?)"}[dead]
    try:
        for args in COMMANDS:
            result, took = cli(home, *args)
            print(f"{dead:8} peapod {' '.join(args):22} {took:.2f}s")
            assert result.returncode == 1, (args, result)
            assert result.stderr == (f"Unable to connect to the server at nats://127.0.0.1:{port}: "
                                     f"{reason}\n"), (args, result.stderr)
            assert result.stdout == ""
    finally:
        if server:
            server.stop()


def test_a_cluster_of_dead_servers_names_each_with_its_reason(home: Path) -> None:
    hang, close = DeadServer("hang"), DeadServer("close")
    refused = free_port()
    servers = [f"nats://127.0.0.1:{p}" for p in (refused, hang.port, close.port)]
    point_at(home, ",".join(servers))
    try:
        result, took = cli(home, "get", "pods")
    finally:
        hang.stop()
        close.stop()
    print(f"three dead servers: {took:.2f}s")
    assert result.returncode == 1
    assert len(result.stderr.splitlines()) == 1
    assert re.fullmatch(  # the deadline is shared: the hung server gets what the refused one left
        re.escape(f"Unable to connect to the servers: {servers[0]}: connection refused; {servers[1]}: ")
        + r"no answer within 1\.[0-9]s; "
        + re.escape(f"{servers[2]}: the server closed the connection (is it a NATS server?)\n"),
        result.stderr), result.stderr


# -- TLS -------------------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(path: Path, *, days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("peapod test CA")
    cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert


def make_server_cert(directory: Path, ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate], *,
                     days: int, expired: bool = False) -> dict[str, str]:
    """A server certificate for 127.0.0.1 signed by ``ca``; returns nats-server's tls block."""
    ca_key, ca_cert = ca
    key = ec.generate_private_key(ec.SECP256R1())
    start = NOW - timedelta(days=days + 2) if expired else NOW - timedelta(minutes=5)
    cert = (x509.CertificateBuilder().subject_name(_name("nats")).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(start + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    (directory / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "server.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return {"cert_file": str(directory / "server.crt"), "key_file": str(directory / "server.key")}


class Server:
    def __init__(self, home: Path, tls: dict[str, str] | None) -> None:
        self.port, http_port = free_port(), free_port()
        admin = ensure(home / "creds" / "admin.json", user="admin", url="nats://unused")[0]
        conf = home / "nats.conf"
        conf.write_text(server_config(users={"admin": admin.public_key}, port=self.port,
                                      http_port=http_port, store_dir=str(home / "js"), tls=tls))
        self.natsd = NATSD(conf, http_port)
        self.url = f"nats://127.0.0.1:{self.port}"


@pytest.fixture
def serve(home: Path) -> Iterator:
    started: list[Server] = []

    def start(tls: dict[str, str] | None) -> Server:
        server = Server(home, tls)
        server.natsd.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.natsd.stop()


def context(home: Path, server: Server, ca: Path | None) -> Context:
    return Context(name="c", server=server.url, creds_file=str(home / "creds" / "admin.json"),
                   ca_file=str(ca) if ca else None, user="u")


async def test_a_context_with_a_ca_connects_over_verified_tls(home: Path, serve) -> None:
    ca = home / "ca.crt"
    server = serve(make_server_cert(home, make_ca(ca, days=3650), days=400))
    nc = await connect_cli(context(home, server, ca))
    try:
        assert nc.is_connected
        assert nc.connected_url is not None and nc.connected_url.scheme == "tls"  # forced by the CA
    finally:
        await nc.close()


async def test_a_server_certificate_from_another_ca_is_refused(home: Path, serve) -> None:
    server = serve(make_server_cert(home, make_ca(home / "ca.crt", days=3650), days=400))
    make_ca(home / "other-ca.crt", days=3650)
    with pytest.raises(ServerUnreachable) as refused:
        await connect_cli(context(home, server, home / "other-ca.crt"))
    assert refused.value.line().startswith(
        f"Unable to connect to the server at tls://127.0.0.1:{server.port}: TLS: "), refused.value.line()


async def test_a_plaintext_server_is_refused_before_the_nkey_signs_anything(home: Path, serve) -> None:
    make_ca(home / "ca.crt", days=3650)
    server = serve(None)  # an impostor, or a server whose TLS was switched off
    with pytest.raises(ServerUnreachable) as refused:
        await connect_cli(context(home, server, home / "ca.crt"))
    assert refused.value.line() == (
        f"Unable to connect to the server at tls://127.0.0.1:{server.port}: the server does not "
        "require TLS, but the cluster has a certificate-authority")


async def test_unknown_credentials_are_refused_on_the_first_server(home: Path, serve) -> None:
    server = serve(None)
    Credentials(url="x", user="admin", seed=new_seed()).save(home / "creds" / "admin.json")  # unknown
    with pytest.raises(ServerUnreachable) as refused:
        await connect_cli(context(home, server, None))
    assert refused.value.line() == (
        f'Unable to connect to the server at {server.url}: the server refused user "admin": '
        "Authorization Violation (credentials of another cluster?)")


# -- doctor's certificate checks ---------------------------------------------------------

def test_a_ca_expiring_within_30_days_warns_and_a_long_one_is_ok(tmp_path: Path) -> None:
    make_ca(tmp_path / "short.crt", days=10)
    make_ca(tmp_path / "long.crt", days=400)
    short = doctor.check_ca_file(str(tmp_path / "short.crt"), now=NOW)
    assert (short.status, short.fix) == ("warn", "re-run the playbook to rotate it")
    assert short.detail.startswith(f"certificate of the cluster CA {tmp_path / 'short.crt'} "
                                   "expires in 9 days ("), short.detail
    long = doctor.check_ca_file(str(tmp_path / "long.crt"), now=NOW)
    assert long.status == "ok" and long.detail.endswith("(399 days)"), long
    assert long.detail.startswith(f"certificate of the cluster CA {tmp_path / 'long.crt'} valid until ")
    assert doctor.check_ca_file(str(tmp_path / "none.crt"), now=NOW).status == "fail"


@pytest.mark.parametrize(("days", "status", "detail"), [
    (10, "warn", "certificate of 127.0.0.1:{port} expires in 9 days ("),
    (400, "ok", "certificate of 127.0.0.1:{port} valid until "),
])
def test_server_certificate_expiry_is_read_from_the_tls_handshake(home: Path, serve, days: int,
                                                                  status: str, detail: str) -> None:
    ca = home / "ca.crt"
    server = serve(make_server_cert(home, make_ca(ca, days=3650), days=days))
    result = doctor.check_server_certificate(server.url, str(ca), now=NOW)
    assert result.status == status, result
    assert result.detail.startswith(detail.format(port=server.port)), result.detail


def test_an_expired_or_unverifiable_server_certificate_fails(home: Path, serve) -> None:
    ca = home / "ca.crt"
    authority = make_ca(ca, days=3650)
    server = serve(make_server_cert(home, authority, days=30, expired=True))
    expired = doctor.check_server_certificate(server.url, str(ca), now=NOW)
    assert expired.status == "fail" and "certificate has expired" in expired.detail, expired
    assert expired.fix == "re-run the playbook to rotate it"
    make_ca(home / "other.crt", days=3650)
    other = doctor.check_server_certificate(server.url, str(home / "other.crt"), now=NOW)
    assert other.status == "fail" and "does not verify against" in other.detail, other


def test_a_plaintext_server_behind_a_ca_fails_the_check(home: Path, serve) -> None:
    make_ca(home / "ca.crt", days=3650)
    server = serve(None)
    result = doctor.check_server_certificate(server.url, str(home / "ca.crt"), now=NOW)
    assert (result.status, result.detail) == ("fail", f"127.0.0.1:{server.port} does not require TLS")


def test_peapod_doctor_checks_the_current_contexts_certificates(home: Path, serve) -> None:
    ca = home / "ca.crt"
    server = serve(make_server_cert(home, make_ca(ca, days=3650), days=10))
    point_at(home, server.url, ca=ca)
    result, _ = cli(home, "doctor", timeout=120)
    lines = result.stdout.splitlines()
    assert any(line.startswith("[ok]   cluster CA: certificate of the cluster CA ") for line in lines), lines
    warned = [line for line in lines if line.startswith("[warn] server certificate: ")]
    assert warned and warned[0].endswith("-> fix: re-run the playbook to rotate it"), lines
    assert f"certificate of 127.0.0.1:{server.port} expires in 9 days (" in warned[0]
