"""Where the CLI finds its cluster: the context file ``peapod up`` leaves behind.

``$PEAPOD_HOME`` (default ``~/.peapod``) holds the local cluster's state: the
nats-server configuration, every component's credentials (mode 0600), the
JetStream store, logs, and ``context.json`` naming the URL and the admin
credentials. ``--context FILE`` or ``$PEAPOD_CONTEXT`` point elsewhere, for a
cluster installed with Ansible.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from peapod.bus.client import Credentials
from peapod.errors import Unavailable


def peapod_home() -> Path:
    return Path(os.environ.get("PEAPOD_HOME") or Path.home() / ".peapod")


def default_context_path() -> Path:
    env = os.environ.get("PEAPOD_CONTEXT")
    return Path(env) if env else peapod_home() / "context.json"


@dataclass(frozen=True)
class Context:
    url: str
    creds_file: str
    namespace: str = "default"

    def credentials(self) -> Credentials:
        creds = Credentials.load(self.creds_file)
        return Credentials(url=self.url, user=creds.user, seed=creds.seed, ca_file=creds.ca_file)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"url": self.url, "credentials": self.creds_file,
                                    "namespace": self.namespace}, indent=2) + "\n")


def load_context(path: str | None = None) -> Context:
    target = Path(path) if path else default_context_path()
    try:
        data = json.loads(target.read_text())
    except FileNotFoundError:
        raise Unavailable(f"no cluster configured: {target} does not exist "
                          "(run `peapod up` or pass --context)") from None
    except json.JSONDecodeError as exc:
        raise Unavailable(f"{target} is not valid JSON: {exc}") from None
    creds = data.get("credentials", "")
    if creds and not os.path.isabs(creds):
        creds = str(target.parent / creds)
    return Context(url=data["url"], creds_file=creds, namespace=data.get("namespace", "default"))
