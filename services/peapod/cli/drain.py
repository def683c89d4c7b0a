"""``drain NODE`` (or ``drain -l SELECTOR``): cordon nodes, then evict their pods and wait
until they are gone. ``--pod-selector`` evicts only the pods whose labels match.

As kubectl's ``drain`` (``k8s.io/kubectl/pkg/drain``): the node is cordoned
first (``node/x cordoned``), then each pod on it goes through kubectl's
filters, in its order, the last verdict winning:

* a pod whose controller is a DaemonSet stays (its DaemonSet would put it
  back): without ``--ignore-daemonsets`` the drain refuses (``cannot delete
  DaemonSet-managed Pods (use --ignore-daemonsets to ignore)``), with it the
  pod is listed in a warning; a DaemonSet that no longer exists makes its
  pod an orphan, deleted only with ``--force``;
* a mirror pod (a static pod's copy, ``kubernetes.io/config.mirror``) is
  skipped without a word: its kubelet runs it from a file, whatever the API says;
* a pod with an ``emptyDir`` volume (its data goes with it) needs
  ``--delete-emptydir-data``;
* a pod no controller owns (nothing would re-create it) needs ``--force``;
* a finished pod (Succeeded, Failed) passes the last two.

Any refusal stops the drain before a pod is touched; the node stays
cordoned, as in kubectl, and the message lists every refused pod. Otherwise
each pod is deleted with its own ``terminationGracePeriodSeconds`` (or
``--grace-period``), printed as ``evicting pod ns/name``, and the command
waits until each is gone (``pod/name evicted``) or ``--timeout`` passes
(``drain did not complete within 5s``), then prints ``node/x drained``.
peapod has no Eviction API (nor PodDisruptionBudgets), so an eviction is a
graceful delete. Pods of a ReplicaSet, Deployment or Job are re-created by
their owners on other nodes, since this one is cordoned.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass

from peapod.api import Pod
from peapod.api.selectors import parse_label_selector
from peapod.api.static import is_mirror
from peapod.cli.client import Client
from peapod.cli.labels import modify
from peapod.errors import Invalid, NotFound, PeapodError

DAEMONSET_FATAL = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
DAEMONSET_WARNING = "ignoring DaemonSet-managed Pods"
LOCAL_STORAGE_FATAL = "Pods with local storage (use --delete-emptydir-data to override)"
LOCAL_STORAGE_WARNING = "deleting Pods with local storage"
UNMANAGED_FATAL = "Pods declare no controller (use --force to override)"
UNMANAGED_WARNING = "deleting Pods that declare no controller"


@dataclass(frozen=True)
class Verdict:
    delete: bool
    reason: str = ""  # "", "warning" or "error"
    message: str = ""


OKAY = Verdict(True)


@dataclass(frozen=True)
class Options:
    force: bool = False
    ignore_daemonsets: bool = False
    delete_emptydir_data: bool = False
    pod_selector: str | None = None  # --pod-selector: only the pods whose labels match


def _finished(pod: Pod) -> bool:
    return bool(pod.status and pod.status.phase in ("Succeeded", "Failed"))


def daemonset_verdict(pod: Pod, opts: Options, *, daemonset_exists: bool) -> Verdict:
    ref = pod.metadata.controller_ref()
    if ref is None or ref.kind != "DaemonSet":
        return OKAY
    if not daemonset_exists:  # an orphan: kubectl deletes it with --force only
        message = f'daemonsets.apps "{ref.name}" not found'
        return Verdict(True, "warning", message) if opts.force else Verdict(False, "error", message)
    if not opts.ignore_daemonsets:
        return Verdict(False, "error", DAEMONSET_FATAL)
    return Verdict(False, "warning", DAEMONSET_WARNING)


def mirror_verdict(pod: Pod) -> Verdict:
    return Verdict(False) if is_mirror(pod) else OKAY


def local_storage_verdict(pod: Pod, opts: Options) -> Verdict:
    if not any(v.empty_dir is not None for v in pod.spec.volumes or []) or _finished(pod):
        return OKAY
    if not opts.delete_emptydir_data:
        return Verdict(False, "error", LOCAL_STORAGE_FATAL)
    return Verdict(True, "warning", LOCAL_STORAGE_WARNING)


def unreplicated_verdict(pod: Pod, opts: Options) -> Verdict:
    if _finished(pod) or pod.metadata.controller_ref() is not None:
        return OKAY
    if opts.force:
        return Verdict(True, "warning", UNMANAGED_WARNING)
    return Verdict(False, "error", UNMANAGED_FATAL)


def verdict(pod: Pod, opts: Options, *, daemonset_exists: bool = True) -> Verdict:
    """kubectl's filters in its order; the first that keeps the pod decides, else the last."""
    result = OKAY
    checks: tuple[Callable[[], Verdict], ...] = (
        lambda: daemonset_verdict(pod, opts, daemonset_exists=daemonset_exists),
        lambda: mirror_verdict(pod),
        lambda: local_storage_verdict(pod, opts),
        lambda: unreplicated_verdict(pod, opts))
    for check in checks:
        result = check()
        if not result.delete:
            break
    return result


_FILTER_ORDER = (LOCAL_STORAGE_FATAL, LOCAL_STORAGE_WARNING, UNMANAGED_FATAL, UNMANAGED_WARNING)


def grouped(judged: list[tuple[Pod, Verdict]], reason: str) -> list[str]:
    """``message: ns/a, ns/b`` for each message of that kind, in the filters' order (kubectl's
    is a map's, so random)."""
    groups: dict[str, list[str]] = {}
    for pod, v in judged:
        if v.reason == reason:
            groups.setdefault(v.message, []).append(f"{pod.metadata.namespace}/{pod.metadata.name}")
    order = sorted(groups, key=lambda m: _FILTER_ORDER.index(m) + 1 if m in _FILTER_ORDER else 0)
    return [f"{message}: {', '.join(groups[message])}" for message in order]


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration`` text, as kubectl prints ``--timeout``: 5s, 1m30s, 1h0m0s."""
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    frac = seconds - whole
    sec_text = f"{secs + frac:g}s"
    if hours:
        return f"{hours}h{minutes}m{sec_text}"
    return f"{minutes}m{sec_text}" if minutes else sec_text


class DrainError(PeapodError):
    """A drain that could not finish: kubectl's lines, printed as they are."""

    code = "DrainFailed"

    def __init__(self, node: str, errors: list[str], *, final: list[str],
                 pending: list[str] | None = None) -> None:
        joined = errors[0] if len(errors) == 1 else f"[{', '.join(errors)}]"
        lines = [f'error: unable to drain node "{node}" due to error:{joined}, continuing '
                 "command...", "There are pending nodes to be drained:",
                 *(f" {name}" for name in pending or [node]), *final]
        super().__init__("\n".join(lines))

    def line(self) -> str:
        return self.message


async def _cordon(client: Client, name: str) -> None:
    def change(node: object) -> None:
        node.spec.unschedulable = True  # type: ignore[attr-defined]
    before, _ = await modify(client, "nodes", name, change)
    print(f"node/{name} {'already ' if before.spec.unschedulable else ''}cordoned", flush=True)


async def _judge(client: Client, pods: list[Pod], opts: Options) -> list[tuple[Pod, Verdict]]:
    judged = []
    for pod in pods:
        ref = pod.metadata.controller_ref()
        exists = True
        if ref is not None and ref.kind == "DaemonSet":
            try:
                await client.get_object("daemonsets", ref.name, pod.metadata.namespace)
            except NotFound:
                exists = False
        judged.append((pod, verdict(pod, opts, daemonset_exists=exists)))
    return judged


async def _evict(client: Client, pod: Pod, grace: int | None, timeout: float) -> bool:
    """Delete the pod gracefully and wait until it is gone (True) or the time is up."""
    name, namespace = pod.metadata.name or "", pod.metadata.namespace or "default"
    try:
        await client.delete_pod(name, namespace=namespace, grace=grace)
    except NotFound:
        pass
    else:
        if not await client.wait_deleted(name, pod.metadata.uid or "", namespace=namespace,
                                         timeout=timeout):
            return False
    print(f"pod/{name} evicted", flush=True)
    return True


async def drain(client: Client, name: str, opts: Options, *, grace: int | None,
                timeout: float, pending: list[str] | None = None) -> None:
    """Evict the pods of ``name`` (cordoned already); ``pending``: the nodes not drained yet,
    this one first, named in the error as kubectl does."""
    pods = await client.list_pods(all_namespaces=True, field_selector=f"spec.nodeName={name}",
                                  selector=opts.pod_selector)
    judged = await _judge(client, pods, opts)
    errors = [f"cannot delete {line}" for line in grouped(judged, "error")]
    if errors:
        raise DrainError(name, errors, final=errors, pending=pending)
    warnings = grouped(judged, "warning")
    if warnings:
        print(f"Warning: {'; '.join(warnings)}", file=sys.stderr, flush=True)
    going = [pod for pod, v in judged if v.delete]
    for pod in going:
        print(f"evicting pod {pod.metadata.namespace}/{pod.metadata.name}", flush=True)
    limit = timeout or float("inf")
    done = await asyncio.gather(*(_evict(client, pod, grace, limit) for pod in going))
    if not all(done):
        message = f"drain did not complete within {go_duration(timeout)}"
        raise DrainError(name, [message], final=[f"error: {message}"], pending=pending)
    print(f"node/{name} drained", flush=True)


async def _nodes(client: Client, args: argparse.Namespace) -> list[str]:
    """The node named, or those ``--selector`` matches (kubectl's rules and words)."""
    if args.node and args.selector:
        raise Invalid("cannot specify both a node name and a --selector option")
    if args.node:
        await client.get_node(args.node)  # NotFound before anything is written
        return [args.node]
    if args.selector is None:
        raise Invalid("USAGE: drain NODE [flags]")
    names = [node.metadata.name or "" for node in await client.list_nodes(selector=args.selector)]
    if not names:
        print("No resources found", file=sys.stderr)
    return names


async def cmd_drain(client: Client, args: argparse.Namespace) -> int:
    """As kubectl: every node is cordoned first, then drained in turn; the first failure
    stops it and names the nodes left."""
    parse_label_selector(args.pod_selector)  # a bad selector is refused before any write
    opts = Options(force=args.force, ignore_daemonsets=args.ignore_daemonsets,
                   delete_emptydir_data=args.delete_emptydir_data, pod_selector=args.pod_selector)
    grace = args.grace_period if args.grace_period is not None and args.grace_period >= 0 \
        else None
    names = await _nodes(client, args)
    for name in names:
        await _cordon(client, name)
    for i, name in enumerate(names):
        await drain(client, name, opts, grace=grace, timeout=args.timeout, pending=names[i:])
    return 0


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    from peapod.cli.rollout import _duration
    p = add("drain", "cordon nodes and evict their pods, waiting until they are gone", cmd_drain)
    p.add_argument("node", nargs="?")
    p.add_argument("-l", "--selector", help="drain the nodes whose labels match")
    p.add_argument("--pod-selector", help="evict only the pods whose labels match")
    p.add_argument("--force", action="store_true",
                   help="also delete pods no controller owns (nothing re-creates them)")
    p.add_argument("--ignore-daemonsets", action="store_true",
                   help="leave DaemonSet-managed pods where they are")
    p.add_argument("--delete-emptydir-data", action="store_true",
                   help="also delete pods with emptyDir volumes (their data is lost)")
    p.add_argument("--grace-period", type=int, default=-1,
                   help="seconds each pod gets to stop; -1 (default): the pod's own "
                   "terminationGracePeriodSeconds")
    p.add_argument("--timeout", type=_duration, default=0,
                   help="give up after this long (e.g. 5m); 0 (default): wait as long as it takes")
