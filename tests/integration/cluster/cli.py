"""The real ``peapod`` script against the in-process apiserver of a test.

The script runs as a child process (``asyncio`` subprocess, so the apiserver
in the test's own event loop keeps answering) with a private ``PEAPOD_HOME``
whose config names the test's nats-server and admin credentials.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

PEAPOD = str(Path(sys.executable).parent / "peapod")


@dataclass
class Result:
    code: int
    out: str
    err: str


class Cli:
    def __init__(self, home: Path, *, server: str, credentials: Path, namespace: str = "default"):
        home.mkdir(parents=True, exist_ok=True)
        config = {"apiVersion": "v1", "kind": "Config", "current-context": "test",
                  "clusters": [{"name": "test", "cluster": {"server": server}}],
                  "users": [{"name": "admin", "user": {"credentials": str(credentials)}}],
                  "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin",
                                                            "namespace": namespace}}]}
        (home / "config").write_text(yaml.safe_dump(config))
        self.env = {**os.environ, "PEAPOD_HOME": str(home)}
        for name in ("PEAPOD_CONFIG", "PEAPOD_CONTEXT"):
            self.env.pop(name, None)

    async def __call__(self, *args: str, stdin: str | None = None, timeout: float = 60) -> Result:
        proc = await asyncio.create_subprocess_exec(
            PEAPOD, *args, env=self.env, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else b""),
                                          timeout)
        return Result(proc.returncode or 0, out.decode(), err.decode())


def cli_for(apiserver: dict, tmp_path: Path, *, namespace: str = "default") -> Cli:
    creds = apiserver["creds"]["admin"]
    return Cli(tmp_path / "home", server=creds.url, namespace=namespace,
               credentials=tmp_path / "state" / "creds" / "admin.json")
