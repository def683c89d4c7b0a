"""``exec -it``, ``exec -i`` and ``attach`` through the real CLI, over NATS, into real podman.

The CLI runs as a child process whose stdin, stdout and stderr are the slave
side of a real pseudo-terminal (python's ``pty``), which is also its
controlling terminal: the test types on the master side as a user types,
reads what the user would see, and resizes the terminal as a window manager
does (the kernel then sends the CLI ``SIGWINCH``).
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import re
import struct
import subprocess
import termios
import uuid
from pathlib import Path

import pytest

from tests.integration.cluster.cli import PEAPOD, cli_for
from tests.integration.cluster.test_kubelet import (
    apply,
    pod_manifest,
    running,
    wait_pod,
)

pytestmark = pytest.mark.podman

BUSYBOX = "localhost/peapod-busybox:latest"


def _become_session_leader_of_the_tty() -> None:  # runs in the child, before exec
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A pty with the CLI on its slave side; ``expect`` reads what the user would see."""

    def __init__(self, rows: int, cols: int) -> None:
        self.master, self.slave = os.openpty()
        self.resize(rows, cols)
        os.set_blocking(self.master, False)
        self.seen = b""
        self.grew = asyncio.Event()
        self.proc: asyncio.subprocess.Process | None = None

    def resize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def spawn(self, env: dict[str, str], *args: str) -> None:
        asyncio.get_running_loop().add_reader(self.master, self._readable)
        self.proc = await asyncio.create_subprocess_exec(
            PEAPOD, *args, env=env, stdin=self.slave, stdout=self.slave, stderr=self.slave,
            preexec_fn=_become_session_leader_of_the_tty)

    def _readable(self) -> None:
        try:
            self.seen += os.read(self.master, 65536)
        except OSError:  # EIO once the child closed the slave
            asyncio.get_running_loop().remove_reader(self.master)
        self.grew.set()

    async def expect(self, pattern: str, timeout: float = 20) -> re.Match[bytes]:
        async def find() -> re.Match[bytes]:
            while (match := re.search(pattern.encode(), self.seen)) is None:
                self.grew.clear()
                await self.grew.wait()
            self.seen = self.seen[match.end():]
            return match
        try:
            return await asyncio.wait_for(find(), timeout)
        except TimeoutError:
            raise AssertionError(f"never saw {pattern!r}; the screen: {self.seen!r}") from None

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    async def exit_code(self) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), 20)

    def echo_restored(self) -> bool:
        return bool(termios.tcgetattr(self.slave)[3] & termios.ECHO)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.master)
        if self.proc and self.proc.returncode is None:
            self.proc.kill()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def ctx(cluster: dict, apiserver: dict, tmp_path: Path) -> dict:
    """The cluster fixture (conftest.py) on real podman, and the real CLI as its admin."""
    return {**cluster, "peapod": cli_for(apiserver, tmp_path)}


def podman_config(pod_uid: str, container: str) -> dict:
    out = subprocess.run(["podman", "ps", "-q", "--filter", f"label=io.peapod.pod.uid={pod_uid}",
                          "--filter", f"label=io.peapod.container.name={container}"],
                         capture_output=True, text=True, check=True).stdout.split()
    inspect = subprocess.run(["podman", "inspect", "--format",
                              "{{.Config.OpenStdin}} {{.Config.Tty}}", out[0]],
                             capture_output=True, text=True, check=True).stdout.split()
    return {"stdin": inspect[0] == "true", "tty": inspect[1] == "true"}


async def test_exec_it_is_a_real_terminal_and_exec_i_pipes_stdin(ctx):
    name = f"shell-{uuid.uuid4().hex[:6]}"
    await apply(ctx, pod_manifest(name, [
        {"name": "app", "image": BUSYBOX, "command": ["sleep", "3600"]}]))
    await wait_pod(ctx, name, running)
    peapod = ctx["peapod"]
    term = Terminal(rows=30, cols=100)
    try:
        await term.spawn(peapod.env, "exec", "-it", name, "--", "sh")
        await term.expect(r"# ")
        term.type("stty size; tty\n")
        await term.expect(r"30 100\r\n/dev/pts/\d+")  # the window size at the start, a real pty
        term.resize(40, 120)
        await asyncio.sleep(0.5)  # SIGWINCH, then the resize, travel before the next command
        term.type("stty size\n")
        await term.expect(r"40 120")
        term.type("sleep 100\n")
        await asyncio.sleep(0.5)
        term.type("\x03")  # raw mode: Ctrl-C goes to the remote sleep, not to the CLI
        term.type("echo alive-$((6*7))\n")
        await term.expect(r"alive-42")
        term.type("exit 3\n")
        assert await term.exit_code() == 3
        await term.expect(r"command terminated with exit code 3")
        assert term.echo_restored(), "the user's terminal was left in raw mode"
    finally:
        term.close()

    piped = await peapod("exec", "-i", name, "--", "sh", "-c", "tr a-z A-Z; echo oops >&2; exit 4",
                         stdin="hello\nworld\n")
    assert (piped.code, piped.out) == (4, "HELLO\nWORLD\n")  # the EOF ended tr: stdin was closed
    assert "oops" in piped.err and "command terminated with exit code 4" in piped.err
    no_tty = await peapod("exec", "-it", name, "--", "cat", stdin="plain\n")
    assert (no_tty.code, no_tty.out) == (0, "plain\n")
    assert no_tty.err.startswith(
        "Unable to use a TTY - input is not a terminal or the right kind of file")


async def test_attach_to_a_container_started_with_stdin_and_tty(ctx):
    name = f"attach-{uuid.uuid4().hex[:6]}"
    pod = await apply(ctx, pod_manifest(name, [
        {"name": "app", "image": BUSYBOX, "command": ["sh"], "stdin": True, "tty": True},
        {"name": "plain", "image": BUSYBOX, "command": ["sleep", "3600"]}],
        restartPolicy="Never"))
    await wait_pod(ctx, name, running)
    uid = pod["metadata"]["uid"]
    assert podman_config(uid, "app") == {"stdin": True, "tty": True}
    assert podman_config(uid, "plain") == {"stdin": False, "tty": False}
    peapod = ctx["peapod"]
    refused = await peapod("attach", "-i", name, "-c", "plain")
    assert refused.code != 0 and "stdin is not enabled for container plain" in refused.err
    term = Terminal(rows=24, cols=80)
    try:
        await term.spawn(peapod.env, "attach", "-it", name, "-c", "app")
        await term.expect(r"If you don't see a command prompt, try pressing enter\.")
        term.type("\n")
        await term.expect(r"# ")  # the shell's prompt, redrawn
        term.type("echo $((6*7))-$(stty size)\n")
        await term.expect(r"42-24 80")
        term.type("exit 5\n")
        assert await term.exit_code() == 5
    finally:
        term.close()
    pod = await wait_pod(ctx, name, lambda p: any(
        (c.get("state") or {}).get("terminated") for c in p["status"]["containerStatuses"]))
    app = next(c for c in pod["status"]["containerStatuses"] if c["name"] == "app")
    assert app["state"]["terminated"]["exitCode"] == 5
