"""``taint``: kubectl's node taint verb, its parsing, rules, words and errors.

``taint nodes NAME... KEY[=VALUE]:EFFECT ... KEY:EFFECT- KEY- [--overwrite]``
(or ``-l SELECTOR`` / ``--all`` instead of names). As kubectl's
``cmd/taint``: a taint is one per key and effect; adding one whose key and
effect a node already has needs ``--overwrite`` (``node x already has k
taint(s) with same effect(s) and --overwrite is false``); ``KEY:EFFECT-``
removes that taint, ``KEY-`` every taint of the key, and removing one the
node does not have is an error (``taint "k:NoSchedule" not found``) that
writes nothing. Each node prints ``node/NAME tainted``, ``untainted`` or
``modified``; a failing node prints its error and the others go on.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from peapod.api.node import Node, Taint
from peapod.api.validation import taint_problems
from peapod.cli.client import Client
from peapod.cli.labels import modify
from peapod.errors import Invalid, PeapodError

EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
NODE_WORDS = ("node", "nodes", "no")


@dataclass(frozen=True)
class Removal:
    key: str
    effect: str | None  # None: every taint of the key

    def text(self) -> str:
        return f"{self.key}:{self.effect}" if self.effect else self.key


def parse_taint(spec: str) -> Taint | Removal:
    """kubectl's parseTaint: ``key=value:effect``, ``key:effect``, or ``key`` (removal only)."""
    text, removal = (spec[:-1], True) if spec.endswith("-") else (spec, False)
    parts = text.split(":")
    key, value, effect = parts[0], "", None
    if len(parts) > 2:
        raise Invalid(f"invalid taint spec: {spec}")
    if len(parts) == 2:
        effect = parts[1]
        if effect not in EFFECTS:
            raise Invalid(f"invalid taint effect: {effect}, unsupported taint effect")
        pair = parts[0].split("=")
        if len(pair) > 2:
            raise Invalid(f"invalid taint spec: {spec}")
        key, value = pair[0], (pair[1] if len(pair) == 2 else "")
    problems = taint_problems(key, value, where="taint")
    if problems:
        raise Invalid(f"invalid taint spec: {spec}, {'; '.join(problems)}")
    if removal:
        return Removal(key, effect)
    if effect is None:
        raise Invalid(f"invalid taint spec: {spec}")
    return Taint(key=key, value=value or None, effect=effect)  # type: ignore[arg-type]


def parse_taints(specs: list[str]) -> tuple[list[Taint], list[Removal]]:
    adds: list[Taint] = []
    removals: list[Removal] = []
    for spec in specs:
        parsed = parse_taint(spec)
        if isinstance(parsed, Removal):
            removals.append(parsed)
            continue
        if any(t.key == parsed.key and t.effect == parsed.effect for t in adds):
            raise Invalid(f"duplicated taints with the same key and effect: {spec}")
        adds.append(parsed)
    conflicts = [f'{{"{r.key}":"{r.effect or ""}"}}' for a in adds for r in removals
                 if a.key == r.key and r.effect in (None, a.effect)]
    if conflicts:
        raise Invalid("can not both modify and remove the following taint(s) in the same "
                      f"command: {', '.join(conflicts)}")
    return adds, removals


def _same(a: Taint, b: Taint) -> bool:
    return a.key == b.key and a.effect == b.effect


def reorganize(node: Node, adds: list[Taint], removals: list[Removal], *,
               overwrite: bool) -> tuple[str, list[Taint]]:
    """kubectl's reorganizeTaints: the node's new taints and the word for what happened."""
    old = list(node.spec.taints or [])
    if not overwrite:
        existing = [t.key for t in adds for o in old if _same(t, o)]
        if existing:
            raise Invalid(f"node {node.metadata.name} already has {','.join(existing)} taint(s) "
                          "with same effect(s) and --overwrite is false")
    new = [*adds, *(o for o in old if not any(_same(o, t) for t in adds))]
    added = len(old) != len(new)
    missing, removed = [], False
    for removal in removals:
        kept = [t for t in new if not (t.key == removal.key and
                                       removal.effect in (None, t.effect))]
        removed = len(kept) != len(new)
        if not removed:
            missing.append(f'taint "{removal.text()}" not found')
        new = kept
    if missing:
        raise Invalid(", ".join(missing))
    if (added and removed) or overwrite:
        return "modified", new
    return ("tainted" if added else "untainted"), new


def split_words(words: list[str]) -> tuple[list[str], list[str]]:
    """kubectl's split of ``TYPE NAME... TAINT...``: names first, then taint changes."""
    names: list[str] = []
    specs: list[str] = []
    for word in words:
        if "=" in word or ":" in word or word.endswith("-"):
            specs.append(word)
        elif specs:
            raise Invalid(f"all resources must be specified before taint changes: {word}")
        else:
            names.append(word)
    return names, specs


async def _node_names(client: Client, resource: str, names: list[str],
                      args: argparse.Namespace) -> list[str]:
    kind, _, first = resource.partition("/")
    if kind.lower() not in NODE_WORDS:
        raise Invalid(f'invalid resource type {resource}, only ["node" "nodes"] are supported')
    names = ([first] if first else []) + names
    if args.all and args.selector:
        raise Invalid("setting 'all' parameter with a non empty selector is prohibited")
    if args.all or args.selector:
        if names:
            raise Invalid("name cannot be provided when a selector is specified")
        return [n.metadata.name or "" for n in await client.list_nodes(selector=args.selector)]
    if not names:
        raise Invalid("at least one resource name must be specified since 'all' parameter is "
                      "not set")
    return names


async def cmd_taint(client: Client, args: argparse.Namespace) -> int:
    names, specs = split_words(list(args.words))
    if not specs:
        raise Invalid("at least one taint update is required")
    adds, removals = parse_taints(specs)
    status = 0
    for name in await _node_names(client, args.resource, names, args):
        try:
            word = await _taint_node(client, name, adds, removals, overwrite=args.overwrite)
        except PeapodError as exc:
            from peapod.cli.main import _error_line
            print(_error_line(exc), file=sys.stderr)
            status = exc.exit_code
            continue
        print(f"node/{name} {word}", flush=True)
    return status


async def _taint_node(client: Client, name: str, adds: list[Taint], removals: list[Removal], *,
                      overwrite: bool) -> str:
    """The node's taints changed and written at the version read; kubectl's word for it."""
    words: list[str] = []

    def change(node: Node) -> None:
        word, taints = reorganize(node, adds, removals, overwrite=overwrite)
        node.spec.taints = taints or None
        words[:] = [word]
    await modify(client, "nodes", name, change)
    return words[0]


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add("taint", "update the taints on nodes: taint nodes NAME KEY=VALUE:EFFECT ... "
            "KEY:EFFECT- KEY-", cmd_taint)
    p.add_argument("resource", metavar="node|nodes[/NAME]")
    p.add_argument("words", nargs="*", metavar="NAME|KEY=VALUE:EFFECT|KEY:EFFECT-|KEY-")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a taint of the same key and effect")
    p.add_argument("-l", "--selector", help="the nodes whose labels match")
    p.add_argument("--all", action="store_true", help="every node of the cluster")
