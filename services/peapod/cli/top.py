"""``top nodes|pods``: resource usage as kubectl's ``top`` shows it, from podman's stats.

Each kubelet answers ``peapod.kubelet.<node>.stats`` (``kubelet/stats.py``)
with its node's and its containers' usage over a one-second window; there is
no metrics-server, the CLI asks the nodes it needs, in parallel. kubectl's
tables: ``NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)`` for nodes
(percentages of the node's allocatable), ``NAME CPU(cores) MEMORY(bytes)``
for pods (``NAMESPACE`` first with ``-A``, ``POD NAME …`` per container with
``--containers``); CPU in millicores (``12m``), memory in mebibytes
(``34Mi``); sorted by name, or ``--sort-by cpu|memory`` (largest first).
A node that does not answer shows ``<unknown>``, as kubectl shows a node
without metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from typing import Any

from peapod.api import Node, Pod
from peapod.api.quantity import parse_quantity
from peapod.bus import subjects as s
from peapod.bus.client import request
from peapod.cli.client import Client
from peapod.cli.printers import _table, no_resources_message
from peapod.errors import Invalid, NotFound, PeapodError

UNKNOWN = "<unknown>"
STATS_TIMEOUT = 10.0


def cores(nanocores: int) -> str:
    return f"{nanocores // 1_000_000}m"


def mebibytes(count: int) -> str:
    return f"{count // (1024 * 1024)}Mi"


def percent(used: float, of: float) -> str:
    return f"{int(used / of * 100)}%" if of > 0 else UNKNOWN


async def node_stats(client: Client, node: str) -> dict[str, Any] | None:
    """One kubelet's answer, or None when it does not answer (down, or no such subject)."""
    try:
        result: dict[str, Any] = await request(client.nc, s.kubelet(node, "stats"), {},
                                               timeout=STATS_TIMEOUT)
    except PeapodError:
        return None
    return result


def _allocatable(node: Node, resource: str) -> float:
    value = ((node.status.allocatable if node.status else None) or {}).get(resource)
    try:
        return float(parse_quantity(value)) if value is not None else 0.0
    except ValueError:
        return 0.0


def node_row(node: Node, stats: dict[str, Any] | None) -> tuple[list[str], tuple[int, int]]:
    name = node.metadata.name or ""
    if stats is None:
        return [name, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN], (-1, -1)
    cpu, memory = int(stats["usage"]["cpu"]), int(stats["usage"]["memory"])
    return [name, cores(cpu), percent(cpu / 1e9, _allocatable(node, "cpu")), mebibytes(memory),
            percent(memory, _allocatable(node, "memory"))], (cpu, memory)


def _sorted(rows: list[tuple[list[str], tuple[int, int]]], sort_by: str | None) -> list[list[str]]:
    if sort_by == "cpu":
        rows = sorted(rows, key=lambda r: -r[1][0])
    elif sort_by == "memory":
        rows = sorted(rows, key=lambda r: -r[1][1])
    return [row for row, _ in rows]


async def cmd_top(client: Client, args: argparse.Namespace) -> int:
    what = args.what.lower()
    if what in ("node", "nodes", "no"):
        return await _top_nodes(client, args)
    if what in ("pod", "pods", "po"):
        return await _top_pods(client, args)
    raise Invalid(f'unknown command "{args.what}" for "peapod top": top nodes or top pods')


async def _top_nodes(client: Client, args: argparse.Namespace) -> int:
    nodes = [await client.get_node(args.name)] if args.name else \
        await client.list_nodes(selector=args.selector)
    if not nodes:
        print(no_resources_message(None), file=sys.stderr)
        return 0
    answers = await asyncio.gather(*(node_stats(client, n.metadata.name or "") for n in nodes))
    if args.name and answers[0] is None:
        raise NotFound(f'nodemetrics.metrics.k8s.io "{args.name}" not found')
    rows = sorted((node_row(n, a["node"] if a else None) for n, a in zip(nodes, answers,
                                                                           strict=True)),
                  key=lambda r: r[0][0])
    header = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    print(_table(header, _sorted(rows, args.sort_by), no_headers=args.no_headers))
    return 0


def pod_rows(pods: Sequence[Pod], answers: dict[str, dict[str, Any]], *, containers: bool,
             all_namespaces: bool) -> list[tuple[list[str], tuple[int, int]]]:
    rows = []
    for pod in pods:
        stats = answers.get(pod.metadata.uid or "")
        if stats is None:
            continue
        lead = [pod.metadata.namespace or "default"] if all_namespaces else []
        if containers:
            for c in stats["containers"]:
                cpu, memory = int(c["usage"]["cpu"]), int(c["usage"]["memory"])
                rows.append(([*lead, pod.metadata.name or "", c["name"], cores(cpu),
                              mebibytes(memory)], (cpu, memory)))
            continue
        cpu = sum(int(c["usage"]["cpu"]) for c in stats["containers"])
        memory = sum(int(c["usage"]["memory"]) for c in stats["containers"])
        rows.append(([*lead, pod.metadata.name or "", cores(cpu), mebibytes(memory)],
                     (cpu, memory)))
    return rows


async def _top_pods(client: Client, args: argparse.Namespace) -> int:
    pods = [await client.get_pod(args.name)] if args.name else await client.list_pods(
        all_namespaces=args.all_namespaces, selector=args.selector)
    if not pods:
        print(no_resources_message(None if args.all_namespaces else client.namespace),
              file=sys.stderr)
        return 0
    nodes = sorted({p.spec.node_name for p in pods if p.spec.node_name})
    answers: dict[str, dict[str, Any]] = {}
    for answer in await asyncio.gather(*(node_stats(client, n) for n in nodes)):
        for pod_stats in (answer or {}).get("pods", []):
            answers[pod_stats["uid"]] = pod_stats
    rows = pod_rows(sorted(pods, key=lambda p: (p.metadata.namespace or "", p.metadata.name or "")),
                    answers, containers=args.containers, all_namespaces=args.all_namespaces)
    if not rows:
        raise Invalid("metrics not available yet")  # kubectl's "error: metrics not available yet"
    header = (["NAMESPACE"] if args.all_namespaces else []) + \
        (["POD", "NAME"] if args.containers else ["NAME"]) + ["CPU(cores)", "MEMORY(bytes)"]
    print(_table(header, _sorted(rows, args.sort_by), no_headers=args.no_headers))
    return 0


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("top", "show the CPU and memory use of nodes or pods (from podman's stats): "
            "top nodes [NAME], top pods [NAME] [-A] [--containers]", cmd_top)
    p.add_argument("what", metavar="nodes|pods")
    p.add_argument("name", nargs="?")
    p.add_argument("-A", "--all-namespaces", action="store_true")
    p.add_argument("-l", "--selector")
    p.add_argument("--containers", action="store_true", help="pods: one line per container")
    p.add_argument("--sort-by", choices=["cpu", "memory"], help="largest first")
    p.add_argument("--no-headers", action="store_true")
