"""``label``, ``annotate``, ``cordon`` and ``uncordon``: kubectl's metadata and node verbs.

``label TYPE NAME k=v k2- [--overwrite]`` (or ``-l SELECTOR`` instead of a
name): a key that already has another value needs ``--overwrite``, as
kubectl says (``'app' already has a value (web), and --overwrite is
false``); ``key-`` removes a key. Each object is read, changed and written
back at its ``resourceVersion`` (again on a conflict). ``cordon`` and
``uncordon`` set a Node's ``spec.unschedulable``, which the scheduler
honours and ``get nodes`` shows as ``Ready,SchedulingDisabled``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from peapod.api.base import Model
from peapod.cli.client import Client
from peapod.errors import Conflict, Invalid

LABELABLE = ("pods", "nodes", "namespaces", "replicasets", "deployments", "daemonsets", "jobs",
             "cronjobs")
_RETRIES = 10


def parse_changes(words: list[str], *, what: str) -> tuple[dict[str, str], list[str]]:
    """``k=v`` to set and ``k-`` to remove, refused as kubectl refuses them."""
    sets: dict[str, str] = {}
    removes: list[str] = []
    for word in words:
        if word.endswith("-") and "=" not in word:
            removes.append(word[:-1])
        elif "=" in word:
            key, _, value = word.partition("=")
            if not key:
                raise Invalid(f"invalid {what} spec: {word}")
            sets[key] = value
        else:
            raise Invalid(f"invalid {what} spec: {word}")
    if not sets and not removes:
        raise Invalid(f"at least one {what} update is required")
    both = set(sets) & set(removes)
    if both:
        raise Invalid(f"can not both modify and remove the following {what}(s) in the same "
                      f"command: {', '.join(sorted(both))}")
    return sets, removes


def changed(current: dict[str, str] | None, sets: dict[str, str], removes: list[str], *,
            overwrite: bool) -> dict[str, str] | None:
    """The new map, or the refusal kubectl gives for an existing key without ``--overwrite``."""
    result = dict(current or {})
    for key, value in sets.items():
        if not overwrite and key in result and result[key] != value:
            raise Invalid(f"'{key}' already has a value ({result[key]}), and --overwrite is false")
        result[key] = value
    for key in removes:
        result.pop(key, None)
    return result or None


async def modify(client: Client, resource: str, name: str, change: Callable[[Any], None]
                  ) -> tuple[Any, Any]:
    """(before, after) once written at the version read; again on a conflict."""
    for _ in range(_RETRIES):
        before = await client.get_any(resource, name)
        after = before.model_copy(deep=True)
        change(after)
        if after.to_wire() == before.to_wire():
            return before, after
        try:
            await client.update_any(resource, after.to_wire())
        except Conflict:
            continue
        return before, after
    raise Conflict(f'{resource} "{name}": too many concurrent updates, try again')


async def _names(client: Client, resource: str, args: argparse.Namespace) -> list[str]:
    if args.selector:
        if args.names:
            raise Invalid("name cannot be provided when a selector is specified")
        return [o.metadata.name for o in await client.list_any(resource, selector=args.selector)]
    if not args.names:
        raise Invalid("resource(s) were provided, but no name was specified")
    return list(args.names)


def _split(args: argparse.Namespace) -> tuple[str, list[str], list[str]]:
    """``TYPE NAME... k=v...`` or ``TYPE/NAME k=v``: resource, names, changes."""
    from peapod.cli.main import RESOURCES
    kind, _, first = args.resource.partition("/")
    resource = RESOURCES.get(kind.lower())
    if resource not in LABELABLE:
        raise Invalid(f'the server doesn\'t have a resource type "{kind}" that peapod labels '
                      "(pods, nodes, namespaces, replicasets, deployments, daemonsets)")
    words = ([first] if first else []) + list(args.words)
    names = [w for w in words if "=" not in w and not w.endswith("-")]
    return resource, names, [w for w in words if w not in names]


async def cmd_label(client: Client, args: argparse.Namespace) -> int:
    return await _metadata_verb(client, args, field="labels", word="label")


async def cmd_annotate(client: Client, args: argparse.Namespace) -> int:
    return await _metadata_verb(client, args, field="annotations", word="annotation")


async def _metadata_verb(client: Client, args: argparse.Namespace, *, field: str,
                         word: str) -> int:
    resource, args.names, words = _split(args)
    sets, removes = parse_changes(words, what=word)
    for name in await _names(client, resource, args):
        def change(obj: Model) -> None:
            meta = obj.metadata  # type: ignore[attr-defined]
            setattr(meta, field, changed(getattr(meta, field), sets, removes,
                                         overwrite=args.overwrite))
        before, after = await modify(client, resource, name, change)
        print(f"{_kind_word(resource)}/{name} {_verb(field, before, after, args.overwrite)}")
    return 0


def _verb(field: str, before: Any, after: Any, overwrite: bool) -> str:
    """kubectl's word: labeled, unlabeled, not labeled (annotations: annotated)."""
    if field == "annotations":
        return "annotated"
    old, new = before.metadata.labels or {}, after.metadata.labels or {}
    if old == new:
        return "not labeled"
    return "unlabeled" if not overwrite and len(new) < len(old) else "labeled"


def _kind_word(resource: str) -> str:
    from peapod.cli.main import _singular
    return _singular(resource)


async def cmd_cordon(client: Client, args: argparse.Namespace) -> int:
    return await _schedulable(client, args, unschedulable=True)


async def cmd_uncordon(client: Client, args: argparse.Namespace) -> int:
    return await _schedulable(client, args, unschedulable=False)


async def _schedulable(client: Client, args: argparse.Namespace, *, unschedulable: bool) -> int:
    names = [args.node] if args.node else []
    if args.selector:
        names = [n.metadata.name for n in await client.list_nodes(selector=args.selector)]
    if not names:
        raise Invalid("resource(s) were provided, but no name was specified")
    for name in names:
        def change(node: Any) -> None:
            node.spec.unschedulable = True if unschedulable else None
        before, _ = await modify(client, "nodes", name, change)
        word = "cordoned" if unschedulable else "uncordoned"
        done = bool(before.spec.unschedulable) == unschedulable
        print(f"node/{name} {'already ' if done else ''}{word}")
    return 0


def add_commands(add: Callable[..., argparse.ArgumentParser]) -> None:
    for name, fn, word in (("label", cmd_label, "labels"),
                           ("annotate", cmd_annotate, "annotations")):
        p = add(name, f"update the {word} of pods, nodes, replicasets or deployments: "
                f"{name} TYPE NAME KEY=VALUE ... KEY- ...", fn)
        p.add_argument("resource", metavar="TYPE[/NAME]")
        p.add_argument("words", nargs="*", metavar="NAME|KEY=VALUE|KEY-")
        p.add_argument("--overwrite", action="store_true",
                       help=f"allow {word} to be overwritten")
        p.add_argument("-l", "--selector", help="the objects whose labels match")
    for name, fn, text in (("cordon", cmd_cordon, "mark a node unschedulable"),
                           ("uncordon", cmd_uncordon, "mark a node schedulable")):
        p = add(name, text, fn)
        p.add_argument("node", nargs="?")
        p.add_argument("-l", "--selector")
