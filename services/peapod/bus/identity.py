"""Who a component is: an NKEY per user, and how it reaches the bus (URL, TLS CA).

Every component and every node has its own NATS user, authenticated by an
NKEY (an Ed25519 key pair): the seed stays in a credentials file on the
machine that uses it, mode 0600, and the server's configuration holds only
the public key. So no secret is ever in ``nats.conf``, copied between hosts,
or shared between two components. ``peapod up`` and the Ansible roles make
identities with the same code (``python -m peapod.bus.identity ensure``).

A credentials file is JSON::

    {"url": "tls://10.0.0.2:4222", "user": "kubelet-pi1",
     "seed": "SU…", "ca_file": "/etc/peapod/ca.crt"}

``user`` is the component's name: it selects its permissions on the server
and its reply-inbox prefix. ``url`` may list several servers separated by
commas (a NATS cluster). With ``ca_file`` the client insists on TLS and
verifies the server's certificate against that CA; without it the link is
plaintext, which only the loopback-only ``peapod up`` uses.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import ssl
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import nkeys

from peapod.errors import Unavailable


def new_seed() -> str:
    """A fresh NKEY user seed (``SU…``)."""
    seed: bytes = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
    return seed.decode()


def public_key(seed: str) -> str:
    """The user's public key (``U…``), which is all a server needs to know."""
    try:
        keypair = nkeys.from_seed(bytearray(seed.encode()))
    except Exception:  # nkeys raises several unrelated types for malformed seeds
        raise ValueError("not an NKEY user seed") from None
    key: str = keypair.public_key.decode()
    keypair.wipe()
    if not key.startswith("U"):
        raise ValueError("not an NKEY user seed")
    return key


@dataclass(frozen=True)
class Credentials:
    """Where a component connects and as whom; stored as JSON, mode 0600."""

    url: str
    user: str
    seed: str = field(repr=False)
    ca_file: str | None = None

    @property
    def public_key(self) -> str:
        return public_key(self.seed)

    @property
    def servers(self) -> list[str]:
        return [u.strip() for u in self.url.split(",") if u.strip()]

    @classmethod
    def load(cls, path: str | Path) -> Credentials:
        target = Path(path)
        try:
            data = json.loads(target.read_text())
        except FileNotFoundError:
            raise Unavailable(f"credentials file {target} does not exist") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise Unavailable(f"cannot read credentials file {target}: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str)
                                                 for k in ("url", "user", "seed")):
            raise Unavailable(f"credentials file {target} lacks url, user or seed "
                              "(files from before NKEYs: run `peapod up` again to renew them)")
        ca = data.get("ca_file")
        if ca and not os.path.isabs(ca):
            ca = str(target.parent / ca)
        return cls(url=data["url"], user=data["user"], seed=data["seed"], ca_file=ca or None)

    def save(self, path: str | Path) -> None:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch(mode=0o600, exist_ok=True)
        target.chmod(0o600)
        body = {"url": self.url, "user": self.user, "seed": self.seed}
        if self.ca_file:
            body["ca_file"] = self.ca_file
        target.write_text(json.dumps(body, indent=2) + "\n")

    def tls_context(self) -> ssl.SSLContext | None:
        """A client TLS context that verifies the server against ``ca_file``."""
        if not self.ca_file:
            return None
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise Unavailable(f"cannot load the cluster CA {self.ca_file}: {exc}") from None


def ensure(path: str | Path, *, user: str, url: str, ca_file: str | None = None,
           dry_run: bool = False) -> tuple[Credentials, bool]:
    """The credentials at ``path``, created with a new seed if missing.

    An existing seed is kept (so re-running a playbook or ``peapod up`` never
    locks out a running component); ``url`` and ``ca_file`` are brought up to
    date. Returns the credentials and whether the file changed.
    """
    target = Path(path)
    current: Credentials | None = None
    if target.exists():
        try:
            current = Credentials.load(target)
        except Unavailable:
            current = None  # an old password file or garbage: replace it
    wanted = (replace(current, url=url, ca_file=ca_file) if current and current.user == user
              else Credentials(url=url, user=user, seed=new_seed(), ca_file=ca_file))
    changed = wanted != current
    if changed and not dry_run:
        wanted.save(target)
    return wanted, changed


def main(argv: list[str] | None = None) -> int:
    """``python -m peapod.bus.identity ensure FILE --user U --url URL [--ca CA]``.

    Prints ``{"user", "public_key", "changed"}`` as JSON (never the seed), so an
    Ansible task can register it and report ``changed`` truthfully.
    """
    parser = argparse.ArgumentParser(prog="python -m peapod.bus.identity")
    sub = parser.add_subparsers(dest="verb", required=True)
    cmd = sub.add_parser("ensure", help="create the credentials file if missing; print the public key")
    cmd.add_argument("file")
    cmd.add_argument("--user", required=True)
    cmd.add_argument("--url", required=True)
    cmd.add_argument("--ca", default=None, help="cluster CA certificate: the client requires TLS")
    cmd.add_argument("--dry-run", action="store_true", help="report what would change, write nothing")
    args = parser.parse_args(argv)
    creds, changed = ensure(args.file, user=args.user, url=args.url, ca_file=args.ca,
                            dry_run=args.dry_run)
    json.dump({"user": creds.user, "public_key": creds.public_key, "changed": changed}, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
