"""Lifecycle hooks: ``postStart`` after a container starts, ``preStop`` before it is signalled.

The handlers are Kubernetes' (``exec``, ``httpGet``, ``sleep``) and so are
the failure messages, which end up in ``FailedPostStartHook`` and
``FailedPreStopHook`` events::

    Exec lifecycle hook ([sh -c exit 3]) for Container "web" in Pod "web_default(uid)"
    failed - error: command 'sh -c exit 3' exited with 3: , message: ""

As in Kubernetes, an ``httpGet`` hook fails only when no answer comes (any
status code will do), and a ``preStop`` hook is bounded by the grace period:
whatever time it takes is taken from the grace the container gets after
SIGTERM.
"""

from __future__ import annotations

import asyncio

from peapod.api import Container, Pod
from peapod.api.probe import LifecycleHandler
from peapod.kubelet.actions import ExecFn, Target, http_get, run_exec


def pod_ref(pod: Pod) -> str:
    """Kubernetes' ``format.Pod``: ``name_namespace(uid)``."""
    return f"{pod.metadata.name}_{pod.metadata.namespace}({pod.metadata.uid})"


def _go_list(words: list[str]) -> str:
    return "[" + " ".join(words) + "]"


async def run_hook(handler: LifecycleHandler, pod: Pod, container: Container, target: Target, *,
                   exec_fn: ExecFn, timeout: float | None) -> str | None:
    """Run one hook; None when it succeeded, else the message of the failure event."""
    who = f"for Container {_quote(container.name)} in Pod {_quote(pod_ref(pod))}"
    if handler.sleep is not None:
        await asyncio.sleep(handler.sleep.seconds if timeout is None
                            else min(handler.sleep.seconds, timeout))
        return None
    if handler.exec is not None:
        argv = list(handler.exec.command or [])
        outcome = await run_exec(handler.exec, target, run=_checked(exec_fn), timeout=timeout)
        if outcome.ok:
            return None
        error, _, output = outcome.message.partition("\0")
        return (f"Exec lifecycle hook ({_go_list(argv)}) {who} failed - error: {error}, "
                f"message: {_quote(output)}")
    if handler.http_get is not None:
        outcome = await http_get(handler.http_get, target, timeout=timeout or 3600.0)
        if outcome.ok or "statuscode" in outcome.message:  # any answer will do
            return None
        return (f"HTTP lifecycle hook ({handler.http_get.path}) {who} failed - error: "
                f"{outcome.message}")
    return None  # pragma: no cover - validation requires a handler


def _checked(exec_fn: ExecFn) -> ExecFn:
    """An exec whose failure message carries Kubernetes' error, then the output after a NUL."""
    async def run(container_id: str, argv: list[str]) -> tuple[int, bytes]:
        code, output = await exec_fn(container_id, argv)
        if code == 0:
            return code, output
        error = f"command {' '.join(argv)!r} exited with {code}: "
        return code, error.encode() + b"\0" + output
    return run


def _quote(text: str) -> str:
    """Go's %q for the plain text these messages carry."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'

